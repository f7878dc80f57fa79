// Command license-check runs the license client as a CAIO instance would:
// the reference for CAIO's integration, and what the tests drive.
//
//	license-check activate|check|deactivate --server URL --key KEY --instance-id ID --state-dir DIR [--offline-lease FILE]
//
// It prints the outcome code and one line (or JSON with --json) and exits
// 0 when CAIO may run, 1 when it may not, 2 for a mistake in the command.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/licenseclient"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

type usageError struct{ error }

type options struct {
	server, key, instance, stateDir, offline, publicKey string
	timeout                                             time.Duration
	jsonOut                                             bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	var res *licenseclient.Result
	root := &cobra.Command{
		Use:           "license-check activate|check|deactivate --key KEY --instance-id ID --state-dir DIR [--server URL] [--offline-lease FILE]",
		Short:         "Check a CAIO license the way a CAIO instance does",
		Args:          cobra.ExactArgs(1),
		ValidArgs:     []string{"activate", "check", "deactivate"},
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(c *cobra.Command, args []string) error {
			r, err := o.do(c.Context(), args[0])
			res = &r
			return err
		},
	}
	f := root.Flags()
	f.StringVar(&o.server, "server", "", "the licensing API's base URL (may be omitted with --offline-lease)")
	f.StringVar(&o.key, "key", "", "the license key (required)")
	f.StringVar(&o.instance, "instance-id", "", "this instance's id (required)")
	f.StringVar(&o.stateDir, "state-dir", "", "where the lease and the latest time seen are kept (required)")
	f.StringVar(&o.offline, "offline-lease", "", "an offline lease file (issue-offline-lease), for air-gapped sites")
	f.StringVar(&o.publicKey, "public-key", "", "the pinned license public key (default $CAIO_LICENSE_PUBLIC_KEY)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "time allowed per request")
	f.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ue usageError
	switch {
	case errors.As(err, &ue) || (err != nil && res == nil):
		fmt.Fprintf(stderr, "license-check: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "license-check: %v\n", err)
		return 1
	case res == nil:
		return 0 // --help
	}
	if o.jsonOut {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "%s: %s\n", res.Code, res.Detail)
	}
	if !res.OK {
		return 1
	}
	return 0
}

func (o *options) do(ctx context.Context, action string) (licenseclient.Result, error) {
	switch {
	case action != "activate" && action != "check" && action != "deactivate":
		return licenseclient.Result{}, usageError{fmt.Errorf("unknown action %q: use activate, check or deactivate", action)}
	case o.key == "" || o.instance == "" || o.stateDir == "":
		return licenseclient.Result{}, usageError{errors.New("--key, --instance-id and --state-dir are required")}
	case o.server == "" && o.offline == "":
		return licenseclient.Result{}, usageError{errors.New("--server URL is required (or --offline-lease FILE)")}
	case o.offline != "" && action != "check":
		return licenseclient.Result{}, usageError{errors.New("--offline-lease goes with check")}
	}
	pk := o.publicKey
	if pk == "" {
		pk = os.Getenv("CAIO_LICENSE_PUBLIC_KEY")
	}
	keys, err := licensekey.ParsePublicKeys(pk)
	if err != nil || len(keys) == 0 {
		return licenseclient.Result{}, usageError{errors.New("no usable public key: pass --public-key or set CAIO_LICENSE_PUBLIC_KEY")}
	}
	client, err := licenseclient.New(licenseclient.Config{ServerURL: o.server, PublicKeys: keys, StateDir: o.stateDir, Timeout: o.timeout})
	if err != nil {
		return licenseclient.Result{}, usageError{err}
	}
	switch {
	case o.offline != "":
		file, err := os.ReadFile(o.offline)
		if err != nil {
			return licenseclient.Result{}, usageError{fmt.Errorf("cannot read --offline-lease: %v", err)}
		}
		return client.CheckOffline(o.key, o.instance, file), nil
	case action == "activate":
		return client.Activate(ctx, o.key, o.instance), nil
	case action == "deactivate":
		return client.Deactivate(ctx, o.key, o.instance), nil
	}
	return client.Check(ctx, o.key, o.instance), nil
}
