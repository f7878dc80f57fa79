package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/secretstrength"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

// Where secrets come from. A value on the command line is visible to every
// user of the machine (ps, /proc/PID/cmdline), so --secret works but warns.
const envNewSecret = "CAIO_NEW_LICENSE_SECRET"

// maxSecretFile bounds what is read from a secret file or stdin.
const maxSecretFile = 4096

// secret returns the signing secret from --secret-file, --secret,
// --secret-arn, CAIO_LICENSE_SECRET or CAIO_LICENSE_SECRET_ARN, in that
// order (the environment as the functions read it); "" when none is given.
func (a *app) secret(ctx context.Context) (string, error) {
	if a.secretRead != nil {
		return *a.secretRead, nil
	}
	given := 0
	for _, f := range []string{a.secretFile, a.secretFlag, a.secretARN} {
		if f != "" {
			given++
		}
	}
	if given > 1 {
		return "", usageError{fmt.Errorf("give the signing secret once: --secret-file, --secret or --secret-arn, not several")}
	}
	var s string
	var err error
	switch {
	case a.secretFile != "":
		s, err = a.readSecretFile(a.secretFile, "--secret-file")
		a.secretSource = "--secret-file " + a.secretFile
	case a.secretFlag != "":
		a.warn("--secret puts the secret in the process list, where other users of this machine can read it: use --secret-file FILE or CAIO_LICENSE_SECRET")
		s, a.secretSource = a.secretFlag, "--secret"
	case a.secretARN != "":
		a.secretSource = "--secret-arn " + a.secretARN
		s, err = readSecretARN(ctx, a.secretARN, a.secretSource)
	case a.env.Get(config.EnvSecret) != "":
		s, a.secretSource = a.env.Get(config.EnvSecret), config.EnvSecret
	case a.env.Get(config.EnvSecretARN) != "":
		arn := a.env.Get(config.EnvSecretARN)
		a.secretSource = config.EnvSecretARN + " " + arn
		s, err = readSecretARN(ctx, arn, a.secretSource)
	default:
		a.secretSource = config.EnvSecret
	}
	if err != nil {
		return "", err
	}
	a.secretRead = &s
	return s, nil
}

// readSecretARN reads the signing secret from Secrets Manager, as the
// functions do, so an operator works on the deployed database without
// copying the secret anywhere. Errors name source.
func readSecretARN(ctx context.Context, arn, source string) (string, error) {
	s, err := wiring.SecretFromARN(ctx, arn)
	if err != nil {
		return "", licensing.Wrap(licensing.CodeConfig, err, "%s: %s", source, licensing.ErrorMessage(err))
	}
	return s, nil
}

// readSecretFile reads a secret from path ("-": standard input): the first
// line, without its line ending.
func (a *app) readSecretFile(path, flag string) (string, error) {
	var r io.Reader = a.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", licensing.Wrap(licensing.CodeConfig, err, "%s %s: cannot read it: %v", flag, path, err)
		}
		defer f.Close()
		// A pipe is fine (--secret-file <(pass show caio)); a directory is not.
		info, err := f.Stat()
		if err != nil || info.IsDir() {
			return "", licensing.Errorf(licensing.CodeConfig, "%s %s: not a file", flag, path)
		}
		if info.Mode().IsRegular() && info.Mode().Perm()&0o077 != 0 {
			a.warn("%s %s can be read by other users (mode %04o): chmod 600 it", flag, path, info.Mode().Perm())
		}
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxSecretFile+1))
	if err != nil {
		return "", licensing.Wrap(licensing.CodeConfig, err, "%s %s: cannot read it", flag, path)
	}
	if len(data) > maxSecretFile {
		return "", licensing.Errorf(licensing.CodeConfig, "%s %s: over %d bytes; a secret is one line", flag, path, maxSecretFile)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return "", licensing.Errorf(licensing.CodeConfig, "%s %s: empty; put the secret on its first line", flag, path)
	}
	return string(line), nil
}

func (a *app) newSecretCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "new-secret",
		Short: "Print a fresh random signing secret (256 bits, base64)",
		Long: `Print a fresh random signing secret: 32 bytes from the system's secure
random source, in base64. Store it where the operators and the functions read
it (a file of mode 0600 for --secret-file, an environment variable, or AWS
Secrets Manager) and keep a copy: it alone unlocks the signing key.`,
		Example: `  manage-licenses new-secret > ~/.caio/secret && chmod 600 ~/.caio/secret
  export CAIO_LICENSE_SECRET="$(manage-licenses new-secret)"`,
		RunE: func(c *cobra.Command, _ []string) error {
			s := secretstrength.New()
			if a.jsonOut {
				return a.printJSON(map[string]string{"secret": s})
			}
			_, err := fmt.Fprintln(a.stdout, s)
			return err
		},
	}
}

func (a *app) rotateSecretCommand() *cobra.Command {
	var newSecretFile string
	c := &cobra.Command{
		Use:   "rotate-secret --new-secret-file FILE",
		Short: "Re-seal the signing keys and stored license keys under a new secret",
		Long: `Re-seal every sealed value (signing keys, stored license keys) under a new
signing secret, with a fresh salt and the current key derivation, in one
transaction (local or S3). No license key and no public key changes; CAIO
instances notice nothing. Afterwards only the new secret works: update every
place the old one is kept (CAIO_LICENSE_SECRET, Secrets Manager) right away.

The current secret comes as usual (CAIO_LICENSE_SECRET, --secret-file); the new
one from --new-secret-file FILE ('-': standard input) or CAIO_NEW_LICENSE_SECRET,
never from the command line.`,
		Example: `  manage-licenses new-secret > new-secret && chmod 600 new-secret
  manage-licenses rotate-secret --new-secret-file new-secret`,
		RunE: func(c *cobra.Command, _ []string) error {
			newSecret := a.env.Get(envNewSecret)
			if newSecretFile != "" {
				v, err := a.readSecretFile(newSecretFile, "--new-secret-file")
				if err != nil {
					return err
				}
				newSecret = v
			}
			if newSecret == "" {
				return usageError{fmt.Errorf("no new secret: pass --new-secret-file FILE or set %s (make one with 'manage-licenses new-secret')", envNewSecret)}
			}
			svc, done, err := a.service(c, wiring.Write, secretRequired)
			if err != nil {
				return err
			}
			defer done()
			res, err := svc.RotateSecret(c.Context(), newSecret)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "Re-sealed %d signing keys and %d license keys under the new secret (%s).\n", res.SigningKeys, res.LicenseKeys, res.KDF)
			fmt.Fprintln(a.stdout, "The old secret no longer works: replace it wherever it is kept (CAIO_LICENSE_SECRET, Secrets Manager) now.")
			return nil
		},
	}
	nonEmptyFlag(c.Flags(), &newSecretFile, "new-secret-file", "read the new secret from FILE ('-': standard input); default $"+envNewSecret)
	return c
}
