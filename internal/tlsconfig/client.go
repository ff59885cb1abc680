package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ClientFiles are the PEM files of a TLS client of the control plane (the
// CLI's xDS connection; tests).
type ClientFiles struct {
	// CA verifies the server; required.
	CA string
	// Cert and Key are the client certificate for mutual TLS; both or none.
	Cert, Key string
	// ServerName replaces the host dialled as the name (DNS or IP SAN) the
	// server's certificate must carry.
	ServerName string
}

// Config loads f once.
func (f ClientFiles) Config() (*tls.Config, error) {
	if f.CA == "" {
		return nil, errors.New("TLS to the control plane needs the CA that signed its certificate")
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("a TLS client certificate needs both the certificate and the key file")
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("TLS CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS CA %s: no PEM certificate in it", f.CA)
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.Cert != "" {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %s with key %s: %w", f.Cert, f.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
