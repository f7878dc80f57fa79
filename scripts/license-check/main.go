// Command license-check runs the license client as a CAIO instance would:
// the reference for CAIO's integration, and what the tests drive.
//
//	license-check activate|check|deactivate --server URL --key-file FILE [--instance-id ID | --instance-id-from SOURCE] --state-dir DIR [--offline-lease FILE]
//
// Without --instance-id the id comes from --instance-id-from (hostname,
// machine-id, env:NAME), else it is generated once and kept in the state
// directory: a restart takes back its own seat.
//
// The key comes from --key-file FILE or $CAIO_LICENSE_KEY (or --key KEY,
// which other local users can read in the process list).
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
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/buildinfo"
	"github.com/caio-licensing/caio-licensing/shared/licenseclient"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

type usageError struct{ error }

type options struct {
	server, key, keyFile, instance, instanceFrom, stateDir, offline, publicKey string
	timeout                                                                    time.Duration
	jsonOut                                                                    bool
}

// Build information, set by make build (-ldflags -X).
var commit, buildDate string

func version() string { return buildinfo.Read(commit, buildDate).String("license-check") }

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
		Use:           "license-check activate|check|deactivate --key-file FILE [--instance-id ID | --instance-id-from SOURCE] --state-dir DIR [--server URL] [--offline-lease FILE]",
		Short:         "Check a CAIO license the way a CAIO instance does",
		Args:          cobra.ExactArgs(1),
		ValidArgs:     []string{"activate", "check", "deactivate"},
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version(),
		RunE: func(c *cobra.Command, args []string) error {
			r, err := o.do(c.Context(), args[0])
			res = &r
			return err
		},
	}
	f := root.Flags()
	f.StringVar(&o.server, "server", "", "the licensing API's base URL (may be omitted with --offline-lease)")
	f.StringVar(&o.keyFile, "key-file", "", "read the license key from FILE (default $CAIO_LICENSE_KEY)")
	f.StringVar(&o.key, "key", "", "the license key itself (visible to other users in the process list: prefer --key-file or $CAIO_LICENSE_KEY)")
	f.StringVar(&o.instance, "instance-id", "", "this instance's id (default: from --instance-id-from, else made once and kept in --state-dir)")
	f.StringVar(&o.instanceFrom, "instance-id-from", "", "where the id comes from: hostname, machine-id (/etc/machine-id, hashed) or env:NAME (a StatefulSet's pod name)")
	f.StringVar(&o.stateDir, "state-dir", "", "where the lease and the latest time seen are kept (required)")
	f.StringVar(&o.offline, "offline-lease", "", "an offline lease file (issue-offline-lease), for air-gapped sites")
	f.StringVar(&o.publicKey, "public-key", "", "the pinned license public key (default $CAIO_LICENSE_PUBLIC_KEY)")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "time allowed per request")
	f.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetVersionTemplate("{{.Version}}\n")
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
	case o.stateDir == "":
		return licenseclient.Result{}, usageError{errors.New("--state-dir is required: the lease, the latest time seen and the instance id are kept there")}
	case o.instance != "" && o.instanceFrom != "":
		return licenseclient.Result{}, usageError{errors.New("give the instance id once: --instance-id ID or --instance-id-from SOURCE, not both")}
	case o.server == "" && o.offline == "":
		return licenseclient.Result{}, usageError{errors.New("--server URL is required (or --offline-lease FILE)")}
	case o.offline != "" && action != "check":
		return licenseclient.Result{}, usageError{errors.New("--offline-lease goes with check")}
	}
	key, err := o.licenseKey()
	if err != nil {
		return licenseclient.Result{}, err
	}
	if o.instance == "" {
		if o.instance, err = licenseclient.InstanceID(o.instanceFrom, o.stateDir, os.Getenv); err != nil {
			if o.instanceFrom != "" {
				err = usageError{err}
			}
			return licenseclient.Result{}, err
		}
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
		return client.CheckOffline(key, o.instance, file), nil
	case action == "activate":
		return client.Activate(ctx, key, o.instance), nil
	case action == "deactivate":
		return client.Deactivate(ctx, key, o.instance), nil
	}
	return client.Check(ctx, key, o.instance), nil
}

// licenseKey reads the key from exactly one of --key-file, --key and
// $CAIO_LICENSE_KEY (the flags win over the environment).
func (o *options) licenseKey() (string, error) {
	switch {
	case o.keyFile != "" && o.key != "":
		return "", usageError{errors.New("give the key once: --key-file FILE or --key KEY, not both")}
	case o.keyFile != "":
		b, err := os.ReadFile(o.keyFile)
		if err != nil {
			return "", usageError{fmt.Errorf("cannot read --key-file: %v", err)}
		}
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
		return "", usageError{fmt.Errorf("--key-file %s is empty: it should hold the license key (CAIO-v1-...)", o.keyFile)}
	case o.key != "":
		return o.key, nil
	case os.Getenv("CAIO_LICENSE_KEY") != "":
		return strings.TrimSpace(os.Getenv("CAIO_LICENSE_KEY")), nil
	}
	return "", usageError{errors.New("no license key: pass --key-file FILE or set CAIO_LICENSE_KEY")}
}
