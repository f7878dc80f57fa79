// Command license-check runs the license client as a CAIO instance would:
// the reference for CAIO's integration, and what the tests drive.
//
//	license-check activate|check|deactivate --server URL --key-file FILE [--instance-id ID | --instance-id-from SOURCE] --state-dir DIR [--offline-lease FILE]
//	license-check run [same flags] [--stop-grace DURATION] [--status-file FILE] -- COMMAND [ARGS...]
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
// GRACE (the license expired, within its grace) and OVERAGE (a seat above
// max instances) run, with a warning line on stderr.
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
	stopGrace                                                                  time.Duration
	statusFile                                                                 string
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
	exit := -1 // run's status, once it ran
	root := &cobra.Command{
		Use:   "license-check activate|check|deactivate|run --key-file FILE [--instance-id ID | --instance-id-from SOURCE] --state-dir DIR [--server URL] [--offline-lease FILE] [-- COMMAND [ARGS...]]",
		Short: "Check a CAIO license the way a CAIO instance does, or hold its seat for COMMAND (run)",
		Long: `activate, check and deactivate do one thing and say the outcome.

run holds the seat for CAIO: it takes the seat (or uses the offline lease),
then starts COMMAND; renews in the background as check decides, through
outages on the lease; passes SIGINT, SIGTERM and SIGHUP to COMMAND; and when
COMMAND exits, frees the seat and exits with COMMAND's status. When the
instance may no longer run (the lease ended without renewal; the license
revoked, suspended or expired past its grace; the seat taken), it sends
COMMAND SIGTERM, then SIGKILL after --stop-grace, and exits 1 with the outcome
line. Each change of outcome is one line on stderr; --status-file keeps the
current outcome as JSON.

GRACE (the license expired, within its grace days) and OVERAGE (a seat above
max instances, within the license's overage allowance) run, exit 0, and add a
warning line on stderr.`,
		Args:          cobra.MinimumNArgs(1),
		ValidArgs:     []string{"activate", "check", "deactivate", "run"},
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version(),
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] == "run" {
				code, err := o.supervise(c, args, stdout, stderr)
				var ue usageError
				if err != nil && !errors.As(err, &ue) {
					res = &licenseclient.Result{} // it ran, and failed: 1
				}
				exit = code
				return err
			}
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s takes no arguments after it (got %q); only run takes -- COMMAND", args[0], args[1:])}
			}
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
	f.DurationVar(&o.stopGrace, "stop-grace", 30*time.Second, "run: how long COMMAND has after SIGTERM before SIGKILL")
	f.StringVar(&o.statusFile, "status-file", "", "run: keep the current outcome in FILE as JSON, for CAIO to read")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ue usageError
	switch {
	case exit >= 0 && err == nil:
		return exit
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
	warn(stderr, *res)
	if !res.OK {
		return 1
	}
	return 0
}

// warn writes the warning line of an outcome that runs but should be
// acted on (GRACE names the grace's end; OVERAGE the seat above max
// instances), for the logs that collect stderr.
func warn(stderr io.Writer, r licenseclient.Result) {
	if r.OK && r.Code != licenseclient.CodeValid && r.Code != licenseclient.CodeDeactivated {
		fmt.Fprintf(stderr, "license-check: warning: %s: %s\n", r.Code, r.Detail)
	}
}

func (o *options) do(ctx context.Context, action string) (licenseclient.Result, error) {
	client, key, err := o.client(action)
	if err != nil {
		return licenseclient.Result{}, err
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

// supervise is run: args are "run", then COMMAND after --.
func (o *options) supervise(c *cobra.Command, args []string, stdout, stderr io.Writer) (int, error) {
	if dash := c.ArgsLenAtDash(); dash != 1 || len(args) < 2 {
		return 0, usageError{errors.New("run needs the command to start after --: license-check run [flags] -- COMMAND [ARGS...]")}
	}
	if o.stopGrace <= 0 {
		return 0, usageError{fmt.Errorf("--stop-grace %s: give a positive duration such as 30s", o.stopGrace)}
	}
	client, key, err := o.client("run")
	if err != nil {
		return 0, err
	}
	s := &supervisor{stderr: stderr, statusFile: o.statusFile, stopGrace: o.stopGrace}
	if o.offline != "" {
		file, err := os.ReadFile(o.offline)
		if err != nil {
			return 0, usageError{fmt.Errorf("cannot read --offline-lease: %v", err)}
		}
		s.check = func(context.Context) licenseclient.Result { return client.CheckOffline(key, o.instance, file) }
	} else {
		first := true
		s.check = func(ctx context.Context) licenseclient.Result {
			if first { // take the seat before COMMAND starts
				first = false
				return client.Activate(ctx, key, o.instance)
			}
			return client.Check(ctx, key, o.instance)
		}
		s.release = func(ctx context.Context) licenseclient.Result { return client.Deactivate(ctx, key, o.instance) }
	}
	return s.run(c.Context(), args[1:], stdout), nil
}

// client checks the command line and builds the client, with the key and
// the instance id it is about.
func (o *options) client(action string) (*licenseclient.Client, string, error) {
	switch {
	case action != "activate" && action != "check" && action != "deactivate" && action != "run":
		return nil, "", usageError{fmt.Errorf("unknown action %q: use activate, check, deactivate or run", action)}
	case o.stateDir == "":
		return nil, "", usageError{errors.New("--state-dir is required: the lease, the latest time seen and the instance id are kept there")}
	case o.instance != "" && o.instanceFrom != "":
		return nil, "", usageError{errors.New("give the instance id once: --instance-id ID or --instance-id-from SOURCE, not both")}
	case o.server == "" && o.offline == "":
		return nil, "", usageError{errors.New("--server URL is required (or --offline-lease FILE)")}
	case o.offline != "" && action != "check" && action != "run":
		return nil, "", usageError{errors.New("--offline-lease goes with check or run")}
	}
	key, err := o.licenseKey()
	if err != nil {
		return nil, "", err
	}
	if o.instance == "" {
		if o.instance, err = licenseclient.InstanceID(o.instanceFrom, o.stateDir, os.Getenv); err != nil {
			if o.instanceFrom != "" {
				err = usageError{err}
			}
			return nil, "", err
		}
	}
	pk := o.publicKey
	if pk == "" {
		pk = os.Getenv("CAIO_LICENSE_PUBLIC_KEY")
	}
	keys, err := licensekey.ParsePublicKeys(pk)
	if err != nil || len(keys) == 0 {
		return nil, "", usageError{errors.New("no usable public key: pass --public-key or set CAIO_LICENSE_PUBLIC_KEY")}
	}
	client, err := licenseclient.New(licenseclient.Config{ServerURL: o.server, PublicKeys: keys, StateDir: o.stateDir, Timeout: o.timeout})
	if err != nil {
		return nil, "", usageError{err}
	}
	return client, key, nil
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
