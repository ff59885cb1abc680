// Package devca is a small certificate authority for development and
// tests, in the spirit of the dev CAs linkerd and istioctl ship: it makes
// a self-signed root and issues ECDSA P-256 X.509-SVIDs (one SPIFFE URI
// SAN each, internal/identity's scheme) for the control plane and its
// clients. `tenantmesh certs` is its command line.
//
// Production deployments should issue the same SANs from their own PKI
// (cert-manager, SPIRE): nothing in tenantmesh depends on this package
// outside the CLI and the tests.
package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/identity"
)

// Defaults of validity: a root that outlives a development cycle, and
// leaves short enough that a leaked one does not stay useful for long but
// long enough that a demo does not break mid-week.
const (
	DefaultCAValidity   = 365 * 24 * time.Hour
	DefaultLeafValidity = 30 * 24 * time.Hour
	// backdate covers clock skew between the issuing host and the peers.
	backdate = 5 * time.Minute
)

// File names, the layout of a Kubernetes TLS Secret (what cert-manager
// writes), so the same flags work with a dev CA and a cert-manager one.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	CertFile   = "tls.crt"
	KeyFile    = "tls.key"
)

// CA is a root certificate and its key.
type CA struct {
	Cert        *x509.Certificate
	Key         *ecdsa.PrivateKey
	TrustDomain string
}

// Usage says what a leaf certificate authenticates.
type Usage int

// Usages: a server certificate (the control plane), a client one, or
// both: envoyproxy/ratelimit is an xDS client of the control plane and
// serves the edges' gRPC calls, and its one certificate can do both.
const (
	ServerAuth Usage = iota + 1
	ClientAuth
	ServerAndClientAuth
)

// Request describes one leaf certificate.
type Request struct {
	// ID is the SPIFFE ID, the certificate's only URI SAN; its trust
	// domain must be the CA's.
	ID identity.ID
	// DNSNames and IPs are further SANs (a server's addresses).
	DNSNames []string
	IPs      []net.IP
	Usage    Usage
	// Validity defaults to DefaultLeafValidity; it is cut to the CA's.
	Validity time.Duration
}

// Leaf is an issued certificate and its key, PEM-encoded.
type Leaf struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA makes a self-signed root for trustDomain. Its only SAN is the
// trust domain's SPIFFE ID (X.509-SVID spec §5.1: a signing certificate may
// carry the trust domain's ID, never a workload's).
func NewCA(trustDomain string, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	if err := identity.ControlPlane(trustDomain).Validate(); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"tenantmesh"}, CommonName: "tenantmesh development CA (" + trustDomain + ")"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: trustDomain}},
		// SubjectKeyId: x509.CreateCertificate derives it for a CA, and
		// the leaves' AuthorityKeyId from it.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, TrustDomain: trustDomain}, nil
}

// Issue signs a leaf certificate for r.
func (ca *CA) Issue(r Request) (*Leaf, error) {
	if r.ID.TrustDomain != ca.TrustDomain {
		return nil, fmt.Errorf("%w: trust domain %q is not the CA's (%q)", identity.ErrInvalidID, r.ID.TrustDomain, ca.TrustDomain)
	}
	uri, err := r.ID.URI()
	if err != nil {
		return nil, err
	}
	var eku []x509.ExtKeyUsage
	switch r.Usage {
	case ServerAuth:
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case ClientAuth:
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case ServerAndClientAuth:
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	default:
		return nil, errors.New("certificate usage: want server or client authentication, or both")
	}
	validity := r.Validity
	if validity <= 0 {
		validity = DefaultLeafValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The subject is informational; peers check the SANs.
		Subject:     pkix.Name{Organization: []string{"tenantmesh"}, CommonName: commonName(r.ID)},
		NotBefore:   now.Add(-backdate),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: eku,
		URIs:        []*url.URL{uri},
		DNSNames:    r.DNSNames,
		IPAddresses: r.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", uri, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", uri, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("key for %s: %w", uri, err)
	}
	return &Leaf{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// commonName is a readable name for logs and openssl output.
func commonName(id identity.ID) string {
	switch id.Kind {
	case identity.KindService:
		return id.Tenant + "." + id.Service
	case identity.KindControlPlane:
		return "tenantmesh control plane"
	default:
		return string(id.Kind) + " " + id.Name
	}
}

// CertPEM is the CA certificate, PEM-encoded.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Save writes ca.crt and ca.key (mode 0600) into dir, creating it. It
// refuses to overwrite a CA key: replacing the root by accident would
// invalidate every certificate issued from it.
func (ca *CA) Save(dir string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("CA directory: %w", err)
	}
	keyPath := filepath.Join(dir, CAKeyFile)
	f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	_, werr := f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", keyPath, err)
	}
	return writeAtomic(filepath.Join(dir, CACertFile), ca.CertPEM(), 0o644)
}

// Load reads the CA that Save wrote into dir.
func Load(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CACertFile), err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("%s: no PEM block", filepath.Join(dir, CAKeyFile))
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", filepath.Join(dir, CAKeyFile), filepath.Join(dir, CACertFile))
	}
	if len(cert.URIs) != 1 || cert.URIs[0].Scheme != "spiffe" || cert.URIs[0].Path != "" {
		return nil, fmt.Errorf("%s: not a tenantmesh CA (want one URI SAN spiffe://<trust-domain>)", filepath.Join(dir, CACertFile))
	}
	return &CA{Cert: cert, Key: key, TrustDomain: cert.URIs[0].Host}, nil
}

// Save writes tls.crt, tls.key (mode 0600) and the CA's ca.crt into dir,
// each by rename, so a watcher never reads half a file. The key is
// written before the certificate: a reader that sees the new certificate
// finds its key already in place.
func (l *Leaf) Save(dir string, ca *CA) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certificate directory: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CACertFile, ca.CertPEM(), 0o644},
		{KeyFile, l.KeyPEM, 0o600},
		{CertFile, l.CertPEM, 0o644},
	} {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	err = errors.Join(werr, tmp.Chmod(mode), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", path, err), os.Remove(tmp.Name()))
	}
	return nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n, nil
}

// IssueTo issues a certificate for r and saves it into dir (Leaf.Save).
func (ca *CA) IssueTo(dir string, r Request) (*Leaf, error) {
	l, err := ca.Issue(r)
	if err != nil {
		return nil, err
	}
	if err := l.Save(dir, ca); err != nil {
		return nil, err
	}
	return l, nil
}
