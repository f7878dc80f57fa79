package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func (a *app) exportLicensesCommand() *cobra.Command {
	var format, output string
	c := &cobra.Command{
		Use:     "export-licenses --format csv|json [--output FILE]",
		Example: `  manage-licenses export-licenses --format csv --output licenses.csv`,
		Short:   "Export every license with its key and activation count",
		RunE: func(c *cobra.Command, _ []string) error {
			if a.jsonOut && format == "" {
				format = "json"
			}
			if format == "" {
				return usageErrorf("--format is required: use --format csv or --format json; usage: %s", c.UseLine())
			}
			svc, done, err := a.service(c, wiring.Read, secretRequired)
			if err != nil {
				return err
			}
			defer done()
			rows, err := svc.Export(c.Context())
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if format == "csv" {
				err = writeCSV(&buf, rows)
			} else {
				enc := json.NewEncoder(&buf)
				enc.SetIndent("", "  ")
				err = enc.Encode(rows)
			}
			if err != nil {
				return err
			}
			if toFile, err := a.writeOutput(output, buf.Bytes()); !toFile {
				return err
			}
			fmt.Fprintf(a.stderr, "Exported %d licenses to %s\n", len(rows), output)
			return nil
		},
	}
	choiceFlag(c, &format, "format", "", "csv or json (required; json is the default under --json)", "csv", "json")
	outputFlag(c, &output, true, "write to FILE (mode 0600: it holds keys) instead of standard output ('-')")
	return c
}

var csvHeader = []string{
	"license_id", "customer_id", "tier", "status", "stored_status", "issued_at", "expires_at", "features",
	"max_instances", "max_services", "max_requests_per_day", "recipient", "key_id",
	"created_at", "updated_at", "active_instances",
	// Added with grace and overage: before the key, which stays the last
	// column (the guide's walkthrough reads it there), after the others,
	// which keep their place.
	"grace_days", "overage_percent",
	"license_key",
}

// writeCSV writes RFC 4180 CSV (CRLF line ends).
func writeCSV(buf *bytes.Buffer, rows []licensing.Exported) error {
	w := csv.NewWriter(buf)
	w.UseCRLF = true
	w.Write(csvHeader)
	for _, r := range rows {
		w.Write(neutralise([]string{
			r.ID, r.CustomerID, r.Tier, string(r.EffectiveStatus), string(r.Status),
			rfc3339(r.IssuedAt), rfc3339(r.ExpiresAt), strings.Join(r.Features, ";"),
			strconv.FormatUint(uint64(r.MaxInstances), 10), strconv.FormatUint(uint64(r.MaxServices), 10),
			strconv.FormatUint(uint64(r.MaxRequestsPerDay), 10), r.Recipient, r.KeyID,
			rfc3339(r.CreatedAt), rfc3339(r.UpdatedAt), strconv.Itoa(r.ActiveInstances),
			strconv.FormatInt(r.GraceDays, 10), strconv.FormatInt(r.OveragePercent, 10), r.Key,
		}))
	}
	w.Flush()
	return w.Error()
}

// neutralise prefixes cells that a spreadsheet would run as a formula.
func neutralise(cells []string) []string {
	for i, c := range cells {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			cells[i] = "'" + c
		}
	}
	return cells
}
