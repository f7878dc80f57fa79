package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"fmt"
	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// writeOutput writes data where --output says: standard output for "-"
// (or no --output), else FILE, atomically with mode 0600. It reports
// whether it wrote a file, for the summary line.
func (a *app) writeOutput(output string, data []byte) (toFile bool, err error) {
	if output == "" || output == "-" {
		_, err := a.stdout.Write(data)
		return false, err
	}
	if err := atomicfile.Write(output, data, 0o600); err != nil {
		return false, licensing.Wrap(licensing.CodeFileUnwritable, err, "cannot write %s: %v", output, err)
	}
	return true, nil
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned columns.
type table struct {
	w *tabwriter.Writer
}

func newTable(out io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		// Tabs or newlines in data would break the alignment.
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(c)
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.w.Flush() }

// column is one column of a listing: its heading, the most characters it
// shows by default (0: no cut), and whether only --wide shows it.
type column struct {
	head     string
	max      int
	wideOnly bool
}

// listing prints a table that fits 100 columns by default (long cells cut
// with …, some columns only under --wide) and everything under --wide.
type listing struct {
	t    *table
	cols []column
	wide bool
}

func newListing(out io.Writer, wide bool, cols ...column) *listing {
	l := &listing{t: &table{w: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}, cols: cols, wide: wide}
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	l.t.row(l.pick(heads)...)
	return l
}

func (l *listing) pick(cells []string) []string {
	out := make([]string, 0, len(cells))
	for i, c := range cells {
		col := l.cols[i]
		if l.wide {
			out = append(out, c)
			continue
		}
		if col.wideOnly {
			continue
		}
		out = append(out, cut(c, col.max))
	}
	return out
}

func (l *listing) row(cells ...string) { l.t.row(l.pick(cells)...) }
func (l *listing) flush() error        { return l.t.flush() }

// cut shortens s to n characters with an ellipsis in the middle: ids
// that differ only at the end (node-1, node-2) stay apart.
func cut(s string, n int) string {
	r := []rune(s)
	if n <= 0 || len(r) <= n {
		return s
	}
	tail := (n - 1) / 2
	return string(r[:n-1-tail]) + "…" + string(r[len(r)-tail:])
}

// id is a license id as listings show it: its first digits, which every
// command accepts back, as gh and kubectl shorten theirs.
func (l *listing) id(id string) string {
	if !l.wide && len(id) > licensing.MinIDPrefix {
		return id[:licensing.MinIDPrefix]
	}
	return id
}

// minute is a time to the minute, for listings; --wide shows RFC 3339.
func (l *listing) when(t time.Time) string {
	if l.wide || t.IsZero() {
		return rfc3339(t)
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// fields prints name/value pairs, aligned.
func (a *app) fields(pairs ...string) error {
	t := &table{w: tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)}
	for i := 0; i+1 < len(pairs); i += 2 {
		t.row("  "+pairs[i], pairs[i+1])
	}
	return t.flush()
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// filtered keeps the items keep accepts, in order.
func filtered[T any](items []T, keep func(T) bool) []T {
	out := items[:0:0]
	for _, it := range items {
		if keep(it) {
			out = append(out, it)
		}
	}
	return out
}

// limited keeps the first n items (all when n is 0).
func limited[T any](items []T, n int) []T {
	if n > 0 && len(items) > n {
		return items[:n]
	}
	return items
}

// wideFlag defines --wide: every column, whole values, full ids and times.
func wideFlag(c *cobra.Command, p *bool) {
	c.Flags().BoolVar(p, "wide", false, "show every column and whole values (default: fit 100 columns; --json has everything)")
}
