package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func (a *app) maintainCommand() *cobra.Command {
	var days int
	c := &cobra.Command{
		Use:   "maintain [--retention-days N]",
		Short: "Move history older than the retention to archive files (dead seats included), compact",
		Long: `Move events, deliveries, spent reminder claims and the seats that ended
(deactivated, or whose lease ran out) older than the retention to compressed
JSON-lines archive files beside the database (local: <db>.archive/, S3:
<key>.archive/), each written once, read back and counted before the same
rows are deleted; and compact the file when its free pages pass 1 MiB and a
fifth of it. In S3 mode, also remove deltas and snapshots older than the
history window (CAIO_S3_HISTORY_DAYS, default 7) that no point in time
within it needs. Idempotent, and safe to run while anything else runs.

The retention is --retention-days, else CAIO_EVENT_RETENTION_DAYS, else 0:
everything up to now is archived, and the database holds the live state and
what happened since. list-events --since, list-deliveries --since,
export-events, show-license and the report read the archives too.`,
		Example: `  manage-licenses maintain
  manage-licenses maintain --retention-days 30 --json`,
		RunE: func(c *cobra.Command, _ []string) error {
			retention, err := a.env.RetentionDays(days, c.Flags().Changed("retention-days"))
			if err != nil {
				return err
			}
			svc, store, done, err := a.serviceAndStore(c, wiring.Write, secretNone)
			if err != nil {
				return err
			}
			defer done()
			rep, err := wiring.Maintain(c.Context(), svc, store, retention)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(rep)
			}
			fmt.Fprintf(a.stdout, "Archived %d events, %d deliveries, %d reminder claims and %d ended seats older than %s to %s.\n",
				rep.EventsArchived, rep.DeliveriesArchived, rep.ClaimsArchived, rep.ActivationsArchived, rfc3339(rep.Cutoff), store.Archive().Location())
			fmt.Fprintf(a.stdout, "Database size %s before, %s after%s.\n", mib(rep.SizeBefore), mib(rep.SizeAfter), map[bool]string{true: " (compacted)", false: ""}[rep.Vacuumed])
			if h := rep.History; h != nil {
				fmt.Fprintf(a.stdout, "S3 history: removed %d deltas and %d snapshots past the window", h.DeltasRemoved, h.SnapshotsRemoved)
				if !h.OldestPoint.IsZero() {
					fmt.Fprintf(a.stdout, "; backup --at reaches back to %s", rfc3339(h.OldestPoint))
				}
				fmt.Fprintln(a.stdout, ".")
			}
			return nil
		},
	}
	c.Flags().IntVar(&days, "retention-days", 0, "days of history kept in the database (default $CAIO_EVENT_RETENTION_DAYS, else 0: archive everything)")
	return c
}

func mib(n int64) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }

func (a *app) vacuumCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "vacuum",
		Example: `  manage-licenses vacuum`,
		Short:   "Compact the database file (local or S3)",
		RunE: func(c *cobra.Command, _ []string) error {
			_, store, done, err := a.serviceAndStore(c, wiring.Write, secretNone)
			if err != nil {
				return err
			}
			defer done()
			before, err := store.Size(c.Context())
			if err != nil {
				return err
			}
			if err := store.Vacuum(c.Context()); err != nil {
				return err
			}
			after, err := store.Size(c.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]int64{"size_before": before, "size_after": after})
			}
			fmt.Fprintf(a.stdout, "Compacted %s: %s before, %s after.\n", store.Location(), mib(before), mib(after))
			return nil
		},
	}
}

func (a *app) exportEventsCommand() *cobra.Command {
	var format, output string
	var from time.Time
	c := &cobra.Command{
		Use:   "export-events --since TIME --format jsonl|csv [--output FILE]",
		Short: "Write the event log since a time, archives included, for reporting tools",
		Long: `Write every event since TIME, from the archives and the database, in id order:
JSON lines (one object per line, what Athena, DuckDB and jq read as is) or CSV.`,
		Example: `  manage-licenses export-events --since 2026-01-01 --format jsonl --output events.jsonl
  manage-licenses export-events --since 720h --format csv`,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, store, done, err := a.serviceAndStore(c, wiring.Read, secretNone)
			if err != nil {
				return err
			}
			defer done()
			evs, err := svc.EventsWithArchive(c.Context(), store.Archive(), licensing.EventFilter{Since: from})
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if format == "jsonl" {
				enc := json.NewEncoder(&buf)
				for _, e := range evs {
					enc.Encode(e)
				}
			} else {
				w := csv.NewWriter(&buf)
				w.Write([]string{"id", "at", "kind", "actor", "customer_id", "license_id", "instance_id", "detail"})
				for _, e := range evs {
					w.Write(neutralise([]string{strconv.FormatInt(e.ID, 10), rfc3339(e.At), e.Kind, e.Actor, e.CustomerID, e.LicenseID, e.InstanceID, e.Detail}))
				}
				w.Flush()
			}
			if toFile, err := a.writeOutput(output, buf.Bytes()); !toFile {
				return err
			}
			fmt.Fprintf(a.stderr, "Wrote %d events since %s to %s\n", len(evs), from.UTC().Format(time.RFC3339), output)
			return nil
		},
	}
	sinceFlag(c, &from, "since", "the first time (RFC 3339, a date, or an age such as 30d or 720h; required)")
	choiceFlag(c, &format, "format", "jsonl", "jsonl or csv", "jsonl", "csv")
	outputFlag(c, &output, true, "write to FILE (mode 0600) instead of standard output ('-')")
	requireFlags(c, "since")
	return c
}
