package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/buildinfo"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/report"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func (a *app) reportCommand() *cobra.Command {
	var output string
	var days int
	c := &cobra.Command{
		Use:   "report --output FILE [--days N]",
		Short: "Write the operator report: one self-contained HTML page with charts",
		Long: `Write the operator report as one HTML file that opens with no network access
and prints well: headline numbers, licenses expiring per week by tier, seats in
use against seats sold per customer (those at their limit flagged), seat
activity per day, reminders and deliveries with the failures listed. Read
with SQL aggregates (local or S3 database).`,
		Example: `  manage-licenses report --output report.html
  manage-licenses report --output q4.html --days 90`,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, store, done, err := a.serviceAndStore(c, wiring.Read, secretNone)
			if err != nil {
				return err
			}
			defer done()
			data, err := svc.Report(c.Context(), store.Archive(), days)
			if err != nil {
				return err
			}
			var page bytes.Buffer
			if err := report.Render(&page, data, report.Meta{Database: store.Location(), Version: buildinfo.Read("", "").Short()}); err != nil {
				return licensing.Wrap(licensing.CodeInternal, err, "cannot render the report: %v", err)
			}
			if toFile, err := a.writeOutput(output, page.Bytes()); !toFile {
				return err // the page itself went to standard output
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"output": output, "days": days, "bytes": page.Len()})
			}
			fmt.Fprintf(a.stdout, "Wrote the report on %s (%d days) to %s\n", store.Location(), days, output)
			return nil
		},
	}
	outputFlag(c, &output, true, "the HTML file to write ('-': standard output; required)")
	c.Flags().IntVar(&days, "days", 90, "the window: expiring in the next N days, activity in the last N")
	requireFlags(c, "output")
	return c
}
