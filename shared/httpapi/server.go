package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Handler adapts the API to net/http, for `manage-licenses serve`.
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := Request{
			Method: req.Method, Path: req.URL.Path, Header: req.Header,
			SourceIP: ClientIP(req.RemoteAddr, req.Header.Values("X-Forwarded-For"), a.proxies), RequestID: requestID(),
		}
		// Read one byte past the limit to tell "too large" from "exactly the limit".
		body, err := io.ReadAll(io.LimitReader(req.Body, MaxBodyBytes+1))
		if err != nil {
			a.log.Warn("reading request body", slog.String("request_id", r.RequestID), slog.String("error", err.Error()))
			http.Error(w, `{"valid":false,"code":"BAD_REQUEST","detail":"could not read the request body"}`, http.StatusBadRequest)
			return
		}
		r.Body = body
		resp := a.Serve(req.Context(), r)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.Header().Set("X-Request-ID", r.RequestID)
		w.WriteHeader(resp.Status)
		if req.Method != http.MethodHead {
			w.Write(resp.Body)
		}
	})
}

func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return host
}

// SetTrustedProxies names the proxies (load balancers, reverse proxies)
// whose X-Forwarded-For is believed.
func (a *API) SetTrustedProxies(p []netip.Prefix) { a.proxies = p }

// ParseProxies reads --trusted-proxies: CIDRs or addresses, comma-separated.
func ParseProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR (like 10.0.0.0/8 or 192.0.2.7)", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// ClientIP is the caller's address: the connection's, unless that is a
// trusted proxy; then the rightmost X-Forwarded-For hop that is not a
// trusted proxy (the hops to its left are the client's word, never
// believed). A malformed hop ends the walk at the last trusted one.
func ClientIP(remoteAddr string, forwarded []string, trusted []netip.Prefix) string {
	ip := remoteIP(remoteAddr)
	addr, err := netip.ParseAddr(ip)
	if err != nil || !inAny(addr, trusted) {
		return ip
	}
	var hops []string
	for _, h := range forwarded {
		hops = append(hops, strings.Split(h, ",")...)
	}
	last := addr
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		hop = hop.Unmap()
		if !inAny(hop, trusted) {
			return hop.String()
		}
		last = hop
	}
	return last.String()
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func requestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ListenAndServe serves the API on addr until ctx is done, then shuts down
// gracefully, letting requests in flight finish (up to 10 s). ready, when
// not nil, receives the bound address once the listener is up. With
// tlsConfig, it serves HTTPS.
func (a *API) ListenAndServe(ctx context.Context, addr string, tlsConfig *tls.Config, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
