package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func (a *app) initDBCommand() *cobra.Command {
	return &cobra.Command{
		Use: "init-db",
		Example: `  manage-licenses init-db
  CAIO_LICENSE_DB_PATH=s3://my-licenses/prod/caio_licenses.db manage-licenses init-db`,
		Short: "Create the database, or migrate an existing one to the current schema",
		RunE: func(c *cobra.Command, _ []string) error {
			db, err := a.env.DB(a.dbFlag)
			if err != nil {
				return err
			}
			// A local file that is not there yet is created by the open.
			_, statErr := os.Stat(db.Path)
			created := !strings.HasPrefix(db.Path, "s3://") && errors.Is(statErr, fs.ErrNotExist)
			store, err := wiring.OpenStore(c.Context(), a.env, db, wiring.Init, nil)
			if err != nil {
				return err
			}
			defer store.Close()
			from, err := store.Migrate(c.Context())
			if err != nil {
				return err
			}
			if created {
				from = 0
			}
			result := map[string]any{"path": store.Location(), "schema_version": sqlitestore.SchemaVersion, "previous_version": from}
			if a.jsonOut {
				return a.printJSON(result)
			}
			switch {
			case from == sqlitestore.SchemaVersion:
				fmt.Fprintf(a.stdout, "Database %s is up to date (schema version %d)\n", store.Location(), from)
			case from == 0:
				fmt.Fprintf(a.stdout, "Database created at %s (schema version %d)\n", store.Location(), sqlitestore.SchemaVersion)
			default:
				fmt.Fprintf(a.stdout, "Database %s migrated from schema version %d to %d\n", store.Location(), from, sqlitestore.SchemaVersion)
			}
			return nil
		},
	}
}

func (a *app) backupCommand() *cobra.Command {
	var output string
	var when time.Time
	var force bool
	c := &cobra.Command{
		Use:   "backup --output FILE [--at TIME] [--force]",
		Short: "Write a consistent copy of the database (local or S3) to a local file",
		Long: `Write a consistent, standalone SQLite copy of the database to FILE.

With --at (S3 mode), write the database as it was at that time: the newest
snapshot from then and the deltas committed by then. History is kept for
CAIO_S3_HISTORY_DAYS (default 7) days.`,
		Example: `  manage-licenses backup --output caio-$(date +%F).db
  manage-licenses backup --output before-incident.db --at 2026-11-28T09:00:00Z`,
		RunE: func(c *cobra.Command, _ []string) error {
			at := c.Flags().Changed("at")
			// Lstat: a symlink there is replaced (or refused), never followed.
			if info, err := os.Lstat(output); output != "-" && err == nil {
				switch {
				case info.IsDir():
					return usageErrorf("--output %s is a directory: give a file name", output)
				case !force:
					return usageErrorf("--output %s already exists: add --force to replace it, or choose another file", output)
				}
			}
			store, err := a.openStore(c, wiring.Read)
			if err != nil {
				return err
			}
			defer store.Close()
			backup := store.Backup
			if at {
				s3, ok := store.(wiring.PointInTime)
				if !ok {
					return licensing.Errorf(licensing.CodeBadRequest, "--at needs an S3 database (points in time come from its deltas); a local database is backed up as it is now")
				}
				backup = func(ctx context.Context, dest string) error { return s3.BackupAt(ctx, when, dest) }
			}
			if output == "-" {
				return a.backupToStdout(c.Context(), backup)
			}
			// Written in a private directory beside the target, then renamed:
			// FILE is whole or untouched, and no one can plant a file or a
			// symlink where the backup is written.
			err = atomicfile.WriteWith(output, 0o600, func(tmp string) error { return backup(c.Context(), tmp) })
			if err != nil {
				if licensing.ErrorCode(err) != "" && licensing.ErrorCode(err) != licensing.CodeInternal {
					return err
				}
				return licensing.Wrap(licensing.CodeFileUnwritable, err, "cannot write the backup to %s: %v", output, err)
			}
			if a.jsonOut {
				out := map[string]string{"source": store.Location(), "output": output}
				if at {
					out["at"] = when.UTC().Format(time.RFC3339)
				}
				return a.printJSON(out)
			}
			if at {
				fmt.Fprintf(a.stdout, "Backed up %s as it was at %s to %s\n", store.Location(), when.UTC().Format(time.RFC3339), output)
				return nil
			}
			fmt.Fprintf(a.stdout, "Backed up %s to %s\n", store.Location(), output)
			return nil
		},
	}
	outputFlag(c, &output, true, "the local file to write ('-': standard output; required)")
	sinceFlag(c, &when, "at", "S3 mode: the database as it was at this time (RFC 3339, a date, or an age such as 2h or 1d)")
	c.Flags().BoolVar(&force, "force", false, "replace --output if it exists")
	requireFlags(c, "output")
	return c
}

// backupToStdout writes the backup in a private temporary directory, then
// copies it out: SQLite writes a backup to a file, not a stream.
func (a *app) backupToStdout(ctx context.Context, backup func(context.Context, string) error) error {
	dir, err := os.MkdirTemp("", "caio-backup-")
	if err != nil {
		return licensing.Wrap(licensing.CodeFileUnwritable, err, "cannot make a temporary directory for the backup: %v", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "backup.db")
	if err := backup(ctx, tmp); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(a.stdout, f)
	return err
}

func (a *app) restoreCommand() *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "restore FILE --yes",
		Short: "Make a database file (a backup) the database's current state",
		Long: `Publish FILE, a CAIO license database such as one written by backup, as the
database's next state. In S3 mode it goes through the same commit as any
write (one delta holding every page), so running processes catch up to it;
locally it replaces the contents in one transaction. Everything written
since FILE was taken is undone: take a backup first.`,
		Example: `  manage-licenses backup --output before-upgrade.db
  manage-licenses restore before-upgrade.db --yes`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if !yes {
				return usageErrorf("restore replaces everything in the database with %s: add --yes to confirm", args[0])
			}
			store, err := a.openStore(c, wiring.Write)
			if err != nil {
				return err
			}
			defer store.Close()
			if err := store.Restore(c.Context(), args[0]); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]string{"database": store.Location(), "restored_from": args[0]})
			}
			fmt.Fprintf(a.stdout, "Restored %s from %s\n", store.Location(), args[0])
			return nil
		},
	}
	c.Flags().BoolVar(&yes, "yes", false, "confirm replacing the database's contents")
	return c
}

func (a *app) repairCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "repair",
		Short: "Move an S3 database's log past a missing or damaged delta (needs the bucket, not the secret)",
		Long: `Repair an S3 database whose readers stop with DB_INVALID because a delta of
its log is missing (deleted) or damaged, or its snapshot was replaced.

It publishes the newest sound state this machine reaches (its working copy if
it has one, else the snapshot and the log up to the damage) as a new delta
numbered after every delta the log holds, and as the snapshot at that number.
Readers at the end of the log apply it; readers behind the damage start over
from the new snapshot. Run it where the newest copy is (a machine that was
working on the database when the damage happened): writes made past the
damage that this machine never saw cannot be rebuilt, and the command says
which deltas they were. A log that reads through is left alone. To go back to
an earlier state instead, use backup --at and restore.`,
		Example: `  manage-licenses repair --db s3://my-licenses/prod/caio_licenses.db`,
		RunE: func(c *cobra.Command, _ []string) error {
			store, err := a.openStore(c, wiring.Read)
			if err != nil {
				return err
			}
			defer store.Close()
			r, ok := store.(wiring.Repairer)
			if !ok {
				return licensing.Errorf(licensing.CodeBadRequest, "repair moves the log of a database in S3; %s is a local file, which has none: check it with sqlite3 (PRAGMA integrity_check) or restore it from a backup", store.Location())
			}
			rep, err := r.Repair(c.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(rep)
			}
			if len(rep.Removed) > 0 {
				fmt.Fprintf(a.stdout, "Deleted %d objects from the log that were no delta's or numbered far past it (planted): %s\n", len(rep.Removed), strings.Join(rep.Removed, ", "))
			}
			if rep.Healthy {
				fmt.Fprintf(a.stdout, "The log of %s reads through to delta %d: nothing to repair\n", store.Location(), rep.From)
				return nil
			}
			fmt.Fprintf(a.stdout, "Repaired %s: %s\n", store.Location(), rep.Damage)
			fmt.Fprintf(a.stdout, "Published the state at delta %d as delta %d and the snapshot at %d: readers behind the damage start over from it\n", rep.From, rep.Published, rep.Published)
			if rep.SkippedTo > 0 {
				a.warn("deltas %d to %d were written past the damage and are not in the published state: their changes are lost; compare list-events with what you expect, and redo what is missing", rep.SkippedFrom, rep.SkippedTo)
			}
			return nil
		},
	}
}

// openStore opens the database the command line and environment name, for
// access.
func (a *app) openStore(c *cobra.Command, access wiring.Access) (wiring.Store, error) {
	db, err := a.env.DB(a.dbFlag)
	if err != nil {
		return nil, err
	}
	return wiring.OpenStore(c.Context(), a.env, db, access, nil)
}
