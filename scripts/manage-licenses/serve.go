package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/metrics/prommetrics"
	"github.com/caio-licensing/caio-licensing/shared/ratelimit"
	"github.com/caio-licensing/caio-licensing/shared/secretstrength"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func (a *app) serveCommand() *cobra.Command {
	var addr, keyFile, tlsCert, tlsKey, proxies, metricsAddr string
	var perAddress, perKey float64
	var burstAddress, burstKey int
	c := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--server-key FILE]",
		Short: "Serve the activation API over HTTP (for on-premises use instead of API Gateway)",
		Long: `Serve the activation API over HTTP. Every answer is signed with the server key
(--server-key FILE, else CAIO_SERVER_KEY, else ~/.caio/server_key), whose
certificate is in the database. On first start with the signing secret at hand
and no server key, serve certifies one itself and keeps it in ~/.caio/server_key
(mode 0600); the secret is not kept. Without either, answers are unsigned and
CAIO instances reject them: serve says so at start.

On a real network: --tls-cert and --tls-key serve HTTPS (the pair is read
again on SIGHUP, so a renewed certificate needs no restart), or run behind a
reverse proxy that terminates TLS and name it with --trusted-proxies: the
caller's address (rate limits, the activation record) is then taken from
X-Forwarded-For, rightmost hop first, skipping trusted proxies; from anyone
else X-Forwarded-For is ignored.

--metrics-addr serves the metrics (requests and refusals by code, latency,
S3 commits and conflicts, database size) for Prometheus at /metrics, on an
address of its own: keep it off the network CAIO instances reach.`,
		Example: `  manage-licenses serve
  manage-licenses serve --addr 0.0.0.0:8443 --tls-cert /etc/caio/tls.crt --tls-key /etc/caio/tls.key
  manage-licenses serve --addr 10.0.0.5:3000 --trusted-proxies 10.0.0.0/24
  manage-licenses serve --metrics-addr 127.0.0.1:9090`,
		RunE: func(c *cobra.Command, _ []string) error {
			trusted, err := httpapi.ParseProxies(proxies)
			if err != nil {
				return usageErrorf("--trusted-proxies: %v", err)
			}
			if (tlsCert == "") != (tlsKey == "") {
				return usageErrorf("--tls-cert and --tls-key go together: give both, or neither (plain HTTP, for behind a proxy)")
			}
			var certs *httpapi.CertReloader
			if tlsCert != "" {
				if certs, err = httpapi.NewCertReloader(tlsCert, tlsKey); err != nil {
					return licensing.Wrap(licensing.CodeConfig, err, "%v", err)
				}
			}
			db, err := a.env.DB(a.dbFlag)
			if err != nil {
				return err
			}
			keys, err := a.env.PublicKeys()
			if err != nil {
				return err
			}
			var sink *prommetrics.Sink
			var msink metrics.Sink
			if metricsAddr != "" {
				sink = prommetrics.New()
				msink = sink
			}
			store, err := wiring.OpenStore(c.Context(), a.env, db, wiring.Write, msink)
			if err != nil {
				return err
			}
			defer store.Close()
			// No secret is kept: like the activate function, the server
			// verifies keys and cannot mint them. Given the secret at start,
			// it certifies its server key if it has none and proves the
			// database's public keys once, then pins them; without either,
			// it has only the database's word for which keys are genuine.
			prover, err := a.startProver(c.Context(), store)
			if err != nil {
				return err
			}
			key, err := a.serverKey(c, prover, keyFile)
			if err != nil {
				return err
			}
			if keys == nil && prover != nil {
				if keys, err = prover.TrustedPublicKeys(c.Context()); err != nil {
					return err
				}
				if len(keys) == 0 {
					keys = nil
				}
			}
			if keys == nil {
				// Keys the secret proved (or a command made) on this
				// machine, as the other commands use them.
				keys = openTrustedKeys(a.env).Keys(store.Location())
			}
			if keys == nil {
				a.warn("verifying license keys with the database's public keys, which anyone who can write the database could add to: pin them with CAIO_LICENSE_PUBLIC_KEY=\"$(manage-licenses public-key)\" (run with the secret)")
			}
			svc := wiring.NewService(store, "cli:serve", wiring.Trust{Pinned: keys, Unproven: keys == nil}, nil, nil)
			var signer *httpapi.Signer
			if key != nil {
				if signer, err = wiring.Signer(c.Context(), svc, key); err != nil {
					return err
				}
				if cert, err := servercert.Parse(signer.Certificate); err == nil &&
					time.Now().After(licensing.ServerKeyRenewal(licensing.ServerCertificate{NotBefore: cert.NotBefore, NotAfter: cert.NotAfter})) {
					a.warn("the server key's certificate ends %s: start serve with the signing secret to renew it, or run 'manage-licenses rotate-server-key'", rfc3339(cert.NotAfter))
				}
			}
			api := httpapi.New(svc, wiring.NewLogger(a.stdout, a.env, "serve"), signer)
			api.SetLimits(httpapi.Limits{
				PerAddress: ratelimit.New(perAddress, burstAddress, maxRateKeys),
				PerKey:     ratelimit.New(perKey, burstKey, maxRateKeys),
			})
			api.SetTrustedProxies(trusted)
			if sink != nil {
				api.SetMetrics(sink)
				bound, stop, err := serveMetrics(metricsAddr, sink)
				if err != nil {
					return licensing.Wrap(licensing.CodeConfig, err, "cannot serve metrics on %s: %v", metricsAddr, err)
				}
				defer stop()
				fmt.Fprintf(a.stderr, "Metrics for Prometheus on http://%s/metrics\n", bound)
			}
			var tlsConfig *tls.Config
			scheme := "http"
			if certs != nil {
				tlsConfig, scheme = certs.Config(), "https"
				stop := reloadOnHangup(certs, a.warn)
				defer stop()
			}
			err = api.ListenAndServe(c.Context(), addr, tlsConfig, func(bound net.Addr) {
				url := scheme + "://" + bound.String()
				fmt.Fprintf(a.stderr, "Serving the licensing API on %s (database %s); Ctrl-C stops it.\n", url, store.Location())
				fmt.Fprintf(a.stderr, "Try:\n  curl -s %s%s\n  curl -s -X POST %s%s -H '%s: instance-001' -d '{\"license_key\":\"CAIO-v1-...\"}'\n",
					url, contract.PathHealth, url, contract.PathActivate, contract.HeaderInstanceID)
			})
			if errors.Is(err, syscall.EADDRINUSE) {
				return licensing.Wrap(licensing.CodeConfig, err, "cannot serve on %s: the address is in use (another serve?); choose another with --addr HOST:PORT (make run ADDR=HOST:PORT)", addr)
			}
			if err != nil {
				return licensing.Wrap(licensing.CodeConfig, err, "cannot serve on %s: %v", addr, err)
			}
			fmt.Fprintln(a.stderr, "Stopped.")
			return nil
		},
	}
	addr = "127.0.0.1:3000"
	c.Flags().Var(&addrValue{&addr}, "addr", "address to listen on, HOST:PORT (a port alone: 127.0.0.1:PORT)")
	c.Flags().Var(&fileValue{p: &keyFile}, "server-key", "the server key file (default $CAIO_SERVER_KEY, else ~/.caio/server_key)")
	c.Flags().Float64Var(&perAddress, "rate-per-address", 20, "requests per second allowed from one source address (0: no limit)")
	c.Flags().IntVar(&burstAddress, "burst-per-address", 40, "requests one source address may send at once")
	c.Flags().Float64Var(&perKey, "rate-per-key", 10, "requests per second allowed for one license key (0: no limit)")
	c.Flags().IntVar(&burstKey, "burst-per-key", 50, "requests one license key may have at once (a fleet starting together)")
	c.Flags().Var(&fileValue{p: &tlsCert}, "tls-cert", "serve HTTPS with this certificate (PEM; read again on SIGHUP)")
	c.Flags().Var(&fileValue{p: &tlsKey}, "tls-key", "the certificate's private key (PEM)")
	c.Flags().StringVar(&proxies, "trusted-proxies", "", "CIDRs of reverse proxies whose X-Forwarded-For is believed (comma-separated)")
	c.Flags().Var(&addrValue{&metricsAddr}, "metrics-addr", "serve Prometheus metrics at http://ADDR/metrics (a separate address from the API)")
	return c
}

// serveMetrics serves /metrics on addr until stop is called.
func serveMetrics(addr string, sink *prommetrics.Sink) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", sink.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return ln.Addr(), func() { srv.Close() }, nil
}

// reloadOnHangup reads the certificate again on each SIGHUP.
func reloadOnHangup(certs *httpapi.CertReloader, warn func(string, ...any)) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if err := certs.Reload(); err != nil {
					warn("SIGHUP: keeping the current certificate: %v", err)
				} else {
					warn("SIGHUP: certificate reloaded")
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// startProver is a service with the secret for serve's start (nil when
// the secret is not at hand); it is dropped once serving begins.
func (a *app) startProver(ctx context.Context, store wiring.Store) (*licensing.Service, error) {
	secret, err := a.secret(ctx)
	if err != nil || secret == "" {
		return nil, err
	}
	// It proves with the secret, whatever this machine remembers, and
	// records what it proved for the commands that come after.
	trust := wiring.Trust{Secret: secret, Memory: a.keyMemory(true), Policy: secretstrength.Check}
	return wiring.NewService(store, "cli:serve", trust, a.warnLine, nil), nil
}

// maxRateKeys bounds the memory of each rate limiter: the buckets of the
// least recently seen addresses or keys beyond it are dropped.
const maxRateKeys = 10000

// serverKey reads the server key (--server-key FILE, CAIO_SERVER_KEY, or
// ~/.caio/server_key). With the secret at hand (prover), a key file is
// kept current first: a new key is certified into it when there is none
// or its certificate has less than a third of its term left (the old key
// retired). Without a key and without the secret, nil after saying how.
func (a *app) serverKey(c *cobra.Command, prover *licensing.Service, keyFile string) (ed25519.PrivateKey, error) {
	if keyFile == "" {
		key, err := wiring.ServerKeyFromEnv(c.Context(), a.env)
		if err != nil || key != nil {
			return key, err
		}
		keyFile = a.env.DefaultServerKeyFile()
	}
	if prover != nil && keyFile != "" {
		// A second database served from the same home finds the first
		// one's key in the default file: each needs a file of its own.
		r, err := prover.RenewServerKey(c.Context(), wiring.ServerKeyFile(keyFile), licensing.Renewal{Days: licensing.DefaultServerKeyDays,
			Instead: "serving a second database from this home? give it a key file of its own with --server-key FILE"})
		if err != nil {
			return nil, err
		}
		if r.Renewed {
			a.note("certified a new server key %s (valid until %s), kept in %s", r.Certificate.KeyID, rfc3339(r.Certificate.NotAfter), keyFile)
		}
		if r.Retired != "" {
			a.note("server key %s retired: it was due for renewal", r.Retired)
		}
	}
	if keyFile != "" {
		if _, err := os.Stat(keyFile); err == nil {
			return wiring.ServerKeyFromFile(keyFile)
		}
	}
	a.warn("no server key: answers are unsigned, and CAIO instances reject them. Certify one with 'manage-licenses certify-server-key --output %s' (needs the signing secret), or start serve once with the secret set", orDefault(keyFile, "FILE"))
	return nil, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
