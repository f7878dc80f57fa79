// Command manage-licenses is the operator CLI of the CAIO license server.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/awsconf"
	"github.com/caio-licensing/caio-licensing/shared/awsconf/sdkchain"
	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/secretstrength"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

// The CLI runs where operators keep their AWS credentials: profiles, SSO,
// instance roles. The functions, which link none of that, read theirs from
// the environment Lambda gives them (package awsconf).
func init() { awsconf.Use(sdkchain.Load) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], config.OS(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130 // 128 + SIGINT, as shells report it
)

// app holds the global flags, the environment and the streams a command
// runs with: the process's from main, a test's own in-process.
type app struct {
	env            config.Env
	stdin          io.Reader
	stdout, stderr io.Writer
	dbFlag         string
	jsonOut        bool
	secretFlag     string
	secretFile     string
	secretARN      string
	secretRead     *string // the secret once read (a file or stdin is read once)
	secretSource   string  // where it came from, for messages
	multiValues    bool    // --features took several values up to the next flag
}

func countPrefix(args []string, prefix string) int {
	n := 0
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			n++
		}
	}
	return n
}

// usageError marks errors in the command line itself.
type usageError struct{ error }

// isInputError: the domain refused a value the command line gave it (an
// address, an id, a limit, nothing to change) before doing anything. That
// is a mistake in the command line too, so it exits 2 like one; 1 is kept
// for operations that ran and failed.
func isInputError(err error) bool {
	switch licensing.ErrorCode(err) {
	case licensing.CodeBadRequest, licensing.CodeInstanceIDRequired:
		return true
	}
	return false
}

// run runs the command line args with env and the streams given, and
// returns the exit status.
func run(ctx context.Context, args []string, env config.Env, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{env: env, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	expanded := expandMultiValueFlags(args, "--features")
	// Values after --features up to the next flag are features: arguments
	// placed there are taken too, and the command then lacks them.
	a.multiValues = len(expanded) != len(args) || countPrefix(expanded, "--features=") > 1
	root.SetArgs(expanded)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if strings.HasPrefix(err.Error(), "unknown command ") {
		// Cobra stops before parsing flags: --json is looked for here.
		a.jsonOut = a.jsonOut || slices.Contains(args, "--json")
		err = unknownCommand(root, err)
	}
	if ctx.Err() != nil && licensing.ErrorCode(err) == licensing.CodeInternal {
		// Ctrl-C surfaces as a canceled context deep in a call (the key
		// derivation, a query): say what happened, not "context canceled".
		// A write not yet committed is rolled back; UNKNOWN_OUTCOME and
		// other codes pass through as they are.
		err = licensing.Errorf(licensing.CodeInterrupted, "interrupted before the command finished; a change it had not committed was not made")
	}
	a.printError(err)
	var ue usageError
	switch {
	case errors.As(err, &ue), isInputError(err):
		return exitUsage
	case licensing.ErrorCode(err) == licensing.CodeInterrupted:
		return exitInterrupted
	}
	return exitError
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "manage-licenses",
		Short:         "Operate the CAIO license server: customers, licenses, activations, reports",
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       currentVersion().String("manage-licenses"),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	nonEmptyFlag(root.PersistentFlags(), &a.dbFlag, "db", "database path (default $CAIO_LICENSE_DB_PATH, else ~/.caio/caio_licenses.db)")
	root.PersistentFlags().BoolVar(&a.jsonOut, "json", false, "print machine-readable JSON on stdout")
	nonEmptyFlag(root.PersistentFlags(), &a.secretFile, "secret-file", "read the signing secret from FILE ('-': standard input) instead of $CAIO_LICENSE_SECRET")
	nonEmptyFlag(root.PersistentFlags(), &a.secretARN, "secret-arn", "read the signing secret from AWS Secrets Manager (the stack's LicenseSecretArn) instead of $CAIO_LICENSE_SECRET_ARN")
	nonEmptyFlag(root.PersistentFlags(), &a.secretFlag, "secret", "the signing secret itself (visible to other users in the process list: prefer --secret-file or $CAIO_LICENSE_SECRET)")
	root.SetFlagErrorFunc(flagError)
	root.PersistentPreRunE = checkFlagRanges
	root.AddCommand(
		a.initDBCommand(),
		a.addCustomerCommand(), a.updateCustomerCommand(), a.listCustomersCommand(),
		a.generateLicenseCommand(), a.distributeLicenseCommand(), a.renewLicenseCommand(), a.updateLicenseCommand(),
		a.statusCommand("revoke-license", licensing.StatusRevoked, "Revoke a license for good"),
		a.statusCommand("suspend-license", licensing.StatusSuspended, "Suspend a license until it is reinstated"),
		a.statusCommand("reinstate-license", licensing.StatusActive, "Reinstate a suspended license"),
		a.listLicensesCommand(), a.showLicenseCommand(), a.verifyLicenseCommand(), a.publicKeyCommand(), a.exportLicensesCommand(),
		a.trackActivationCommand(), a.deactivateCommand(), a.listActivationsCommand(),
		a.statsCommand(), a.renewalRemindersCommand(), a.listEventsCommand(),
		a.serveCommand(), a.backupCommand(), a.restoreCommand(), a.repairCommand(), a.reportCommand(), a.resendLicenseCommand(), a.listDeliveriesCommand(),
		a.newSecretCommand(), a.rotateSecretCommand(),
		a.certifyServerKeyCommand(), a.rotateServerKeyCommand(), a.issueOfflineLeaseCommand(),
		a.maintainCommand(), a.vacuumCommand(), a.exportEventsCommand(),
		a.versionCommand(),
	)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			// Cobra's completion only has subcommands: an unknown shell
			// would print its help and exit 0.
			shells := c.Commands()
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(c *cobra.Command, args []string) error {
				names := []string{}
				for _, sh := range shells {
					names = append(names, sh.Name())
				}
				if len(args) == 0 {
					return usageErrorf("name the shell: manage-licenses completion %s", strings.Join(names, "|"))
				}
				return usageErrorf("unknown shell %q: use %s", args[0], orList(names))
			}
		}
		if c.Args == nil {
			c.Args = cobra.NoArgs
		}
		c.Args = a.usageArgs(c.Args)
	}
	a.addCompletions(root)
	return root
}

// usageArgs marks argument-count errors as usage errors.
func (a *app) usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			if a.multiValues {
				return usageError{fmt.Errorf("%v: the words after --features, up to the next flag, were all taken as features; put the arguments first, or write --features a,b; usage: %s", err, c.UseLine())}
			}
			return usageError{fmt.Errorf("%v; usage: %s", err, c.UseLine())}
		}
		return nil
	}
}

// expandMultiValueFlags lets a flag take several values the way the Python
// CLI did (--features analytics audit): the values up to the next flag are
// rewritten as repeated --flag=value.
func expandMultiValueFlags(args []string, flag string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			return append(out, args[i:]...)
		}
		if args[i] != flag {
			out = append(out, args[i])
			continue
		}
		n := 0
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			n++
			out = append(out, flag+"="+args[i])
			if strings.Contains(args[i], ",") {
				break // --features a,b is one value: what follows is arguments
			}
		}
		if n == 0 {
			out = append(out, flag) // let the flag parser report the missing value
		}
	}
	return out
}

// unknownCommandError is a usage error naming the command and the nearest ones.
type unknownCommandError struct {
	usageError
	suggestions []string
}

func (u unknownCommandError) Unwrap() error { return u.usageError }

func unknownCommand(root *cobra.Command, err error) error {
	first, _, _ := strings.Cut(err.Error(), "\n")
	typed := ""
	if i := strings.Index(first, `"`); i >= 0 {
		if j := strings.Index(first[i+1:], `"`); j >= 0 {
			typed = first[i+1 : i+1+j]
		}
	}
	return unknownCommandError{usageError{fmt.Errorf("%s; see 'manage-licenses --help'", first)}, root.SuggestionsFor(typed)}
}

// keyBody matches the signed body of a license key (which never holds a
// dash), after its customer id.
var keyBody = regexp.MustCompile(`(CAIO-v1-[A-Za-z0-9._-]+-)[A-Za-z0-9._]{16,}`)

// redactKeys cuts license keys out of an error message: a key given where
// the command wanted something else (cobra quotes it back) must not reach
// a terminal log or a ticket.
func redactKeys(msg string) string { return keyBody.ReplaceAllString(msg, "${1}…") }

func (a *app) printError(err error) {
	code := licensing.ErrorCode(err)
	msg := licensing.ErrorMessage(err)
	var ue usageError
	if errors.As(err, &ue) {
		code, msg = licensing.CodeBadRequest, ue.Error()
	} else if code == licensing.CodeInternal {
		// The operator's own machine: the cause helps and holds no secret.
		msg = "unexpected error: " + err.Error()
	} else if code == licensing.CodeSecretMismatch && a.secretSource != "" {
		msg = "the signing secret from " + a.secretSource + " does not match the secret this database was set up with: use the original secret"
	}
	msg = redactKeys(msg)
	var unknown unknownCommandError
	errors.As(err, &unknown)
	if a.jsonOut {
		out := map[string]any{"code": string(code), "message": msg}
		if len(unknown.suggestions) > 0 {
			out["suggestions"] = unknown.suggestions
		}
		b, _ := json.Marshal(out)
		fmt.Fprintln(a.stderr, string(b))
		return
	}
	fmt.Fprintf(a.stderr, "error [%s]: %s\n", code, strings.ReplaceAll(msg, "\n", " "))
	if len(unknown.suggestions) > 0 {
		fmt.Fprintf(a.stderr, "Did you mean this? %s\n", strings.Join(unknown.suggestions, ", "))
	}
}

func (a *app) warn(format string, args ...any) {
	a.warnLine(fmt.Sprintf(format, args...))
}

// note tells the operator of something done on their behalf that needs
// no action (a first certification): stderr, but not a warning.
func (a *app) note(format string, args ...any) { a.tell("note", "", fmt.Sprintf(format, args...)) }

func (a *app) warnLine(msg string) { a.tell("warning", "warning: ", msg) }

// tell writes one line to stderr: {"kind": msg} under --json, else msg
// after prefix.
func (a *app) tell(kind, prefix, msg string) {
	if a.jsonOut {
		b, _ := json.Marshal(map[string]string{kind: msg})
		fmt.Fprintln(a.stderr, string(b))
		return
	}
	fmt.Fprintln(a.stderr, prefix+msg)
}

// secretUse is what a command does with the signing secret.
type secretUse int

const (
	// secretNone: never read it (counts, lists by customer, maintenance):
	// a wrong --secret-arn cannot break them, and nothing is derived.
	secretNone secretUse = iota
	// secretOptional: use it if given, to prove the database's public keys
	// on first use; a secret that cannot be read is a warning, not a stop.
	secretOptional
	// secretRequired: the command cannot work without it, so its absence
	// is refused before the database is touched.
	secretRequired
)

// secretIf is secretRequired when need, else secretOptional.
func secretIf(need bool) secretUse {
	if need {
		return secretRequired
	}
	return secretOptional
}

// service opens the database and builds the licensing service for command c.
func (a *app) service(c *cobra.Command, access wiring.Access, use secretUse) (*licensing.Service, func(), error) {
	svc, _, done, err := a.serviceAndStore(c, access, use)
	return svc, done, err
}

// serviceAndStore is service for commands that also need the store itself
// (its archive, size, vacuum).
func (a *app) serviceAndStore(c *cobra.Command, access wiring.Access, use secretUse) (*licensing.Service, wiring.Store, func(), error) {
	var secret string
	var err error
	switch use {
	case secretRequired:
		if secret, err = a.secret(c.Context()); err != nil {
			return nil, nil, nil, err
		}
		if secret == "" {
			return nil, nil, nil, licensing.Errorf(licensing.CodeSecretRequired, "%s needs the signing secret: set CAIO_LICENSE_SECRET, or pass --secret-file FILE or --secret-arn ARN", c.Name())
		}
	case secretOptional:
		if secret, err = a.secret(c.Context()); err != nil {
			if _, usage := err.(usageError); usage || c.Context().Err() != nil {
				return nil, nil, nil, err
			}
			a.warnLine("going on without the signing secret (" + c.Name() + " does not need it): " + licensing.ErrorMessage(err))
			secret = ""
		}
	}
	keys, err := a.env.PublicKeys()
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := a.env.DB(a.dbFlag)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := wiring.OpenStore(c.Context(), a.env, db, access, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	trust := wiring.Trust{Secret: secret, Pinned: keys, Memory: a.keyMemory(false), Policy: secretstrength.Check}
	return wiring.NewService(store, "cli:"+c.Name(), trust, a.warnLine, nil), store, func() { store.Close() }, nil
}

// requireFlags makes flags mandatory, reporting a missing one as a usage
// error (cobra's own check returns an error without a code).
func requireFlags(c *cobra.Command, names ...string) {
	c.PreRunE = func(c *cobra.Command, _ []string) error {
		for _, n := range names {
			if !c.Flags().Changed(n) {
				return usageError{fmt.Errorf("--%s is required; usage: %s", n, c.UseLine())}
			}
		}
		return nil
	}
}

// usageErrorf is a usage error (exit 2) with a message that says what to fix.
func usageErrorf(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }
