package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Handler adapts the API to net/http, for `manage-licenses serve`.
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := Request{
			Method: req.Method, Path: req.URL.Path, Header: req.Header,
			SourceIP: remoteIP(req.RemoteAddr), RequestID: requestID(),
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

func requestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ListenAndServe serves the API on addr until ctx is done, then shuts down
// gracefully, letting requests in flight finish (up to 10 s). ready, when
// not nil, receives the bound address once the listener is up.
func (a *API) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
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
