package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

func (a *app) serveCommand() *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "serve [--addr HOST:PORT]",
		Short: "Serve the activation API over HTTP (for on-premises use instead of API Gateway)",
		RunE: func(c *cobra.Command, _ []string) error {
			db, err := config.ResolveDB(a.dbFlag)
			if err != nil {
				return err
			}
			keys, err := config.PublicKeys()
			if err != nil {
				return err
			}
			store, err := config.OpenStore(c.Context(), db, config.Write)
			if err != nil {
				return err
			}
			defer store.Close()
			// No secret: like the activate function, the server verifies keys
			// and cannot mint them. Without a pinned key it has only the
			// database's word for which keys are genuine.
			if keys == nil {
				a.warn("verifying license keys with the database's public keys, which anyone who can write the database could add to: pin them with CAIO_LICENSE_PUBLIC_KEY=\"$(manage-licenses public-key)\" (run with the secret)")
			}
			svc := licensing.New(licensing.Config{Store: store, Actor: "cli:serve", PublicKeys: keys, TrustUnprovenKeys: keys == nil})
			api := httpapi.New(svc, config.NewLogger(a.stdout, "serve"))
			err = api.ListenAndServe(c.Context(), addr, func(bound net.Addr) {
				url := "http://" + bound.String()
				fmt.Fprintf(a.stderr, "Serving the licensing API on %s (database %s); Ctrl-C stops it.\n", url, store.Location())
				fmt.Fprintf(a.stderr, "Try:\n  curl -s %s%s\n  curl -s -X POST %s%s -H 'X-CAIO-Instance-ID: instance-001' -d '{\"license_key\":\"CAIO-v1-...\"}'\n",
					url, httpapi.PathHealth, url, httpapi.PathActivate)
			})
			if err != nil {
				return licensing.Wrap(licensing.CodeConfig, err, "cannot serve on %s: %v", addr, err)
			}
			fmt.Fprintln(a.stderr, "Stopped.")
			return nil
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:3000", "address to listen on")
	return c
}
