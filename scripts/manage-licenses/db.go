package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/config"
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
			result := map[string]any{"path": store.Path(), "schema_version": sqlitestore.SchemaVersion, "previous_version": from}
			if a.jsonOut {
				return a.printJSON(result)
			}
			switch {
			case from == sqlitestore.SchemaVersion:
				fmt.Fprintf(a.stdout, "Database %s is up to date (schema version %d)\n", store.Path(), from)
			case from == 0:
				fmt.Fprintf(a.stdout, "Database initialised at %s (schema version %d)\n", store.Path(), sqlitestore.SchemaVersion)
			default:
				fmt.Fprintf(a.stdout, "Database %s migrated from schema version %d to %d\n", store.Path(), from, sqlitestore.SchemaVersion)
			}
			return nil
		},
	}
}
