package httpapi

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// CertReloader serves a certificate read from files, read again by Reload
// (serve calls it on SIGHUP): a renewed certificate is taken up without a
// restart, and a bad one is refused while the old one stays in use.
type CertReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// NewCertReloader reads the pair once; an error says what is wrong.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile}
	return r, r.Reload()
}

// Reload reads the files again.
func (r *CertReloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert.Store(&c)
	return nil
}

// Config is a server TLS configuration (TLS 1.2 and later) on the pair.
func (r *CertReloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.cert.Load(), nil },
	}
}
