package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

func (a *app) initDBCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init-db",
		Short: "Create the database, or migrate an existing one to the current schema",
		RunE: func(c *cobra.Command, _ []string) error {
			db, err := config.ResolveDB(a.dbFlag)
			if err != nil {
				return err
			}
			store, err := config.OpenStore(c.Context(), db, config.Init)
			if err != nil {
				return err
			}
			defer store.Close()
			from, err := store.Migrate(c.Context())
			if err != nil {
				return err
			}
			result := map[string]any{"path": store.Location(), "schema_version": sqlitestore.SchemaVersion, "previous_version": from}
			if a.jsonOut {
				return a.printJSON(result)
			}
			switch {
			case from == sqlitestore.SchemaVersion:
				fmt.Fprintf(a.stdout, "Database %s is up to date (schema version %d)\n", store.Location(), from)
			case from == 0:
				fmt.Fprintf(a.stdout, "Database initialised at %s (schema version %d)\n", store.Location(), sqlitestore.SchemaVersion)
			default:
				fmt.Fprintf(a.stdout, "Database %s migrated from schema version %d to %d\n", store.Location(), from, sqlitestore.SchemaVersion)
			}
			return nil
		},
	}
}

func (a *app) backupCommand() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "backup --output FILE",
		Short: "Write a consistent copy of the database (local or S3) to a local file",
		RunE: func(c *cobra.Command, _ []string) error {
			db, err := config.ResolveDB(a.dbFlag)
			if err != nil {
				return err
			}
			store, err := config.OpenStore(c.Context(), db, config.Read)
			if err != nil {
				return err
			}
			defer store.Close()
			// Written in a private directory beside the target, then renamed:
			// FILE is whole or untouched, and no one can plant a file or a
			// symlink where the backup is written.
			err = atomicfile.WriteWith(output, 0o600, func(tmp string) error { return store.Backup(c.Context(), tmp) })
			if err != nil {
				return licensing.Wrap(licensing.CodeBadRequest, err, "cannot write the backup to %s: %v", output, err)
			}
			if a.jsonOut {
				return a.printJSON(map[string]string{"source": store.Location(), "output": output})
			}
			fmt.Fprintf(a.stdout, "Backed up %s to %s\n", store.Location(), output)
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "the local file to write (required)")
	requireFlags(c, "output")
	return c
}
