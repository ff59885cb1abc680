package controlplane

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// certReloader serves the key pair in certFile and keyFile and loads it
// again when either file changes, so a rotated certificate (cert-manager
// renewing a Secret, a reissued `tenantmesh certs` file) is used for new
// TLS handshakes without a restart; connections already open keep theirs.
//
// Each handshake stats both files (cheap next to the handshake) instead of
// watching them: Kubernetes replaces mounted Secrets by swapping a
// symlinked directory, which file watches miss and os.Stat follows.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certInfo os.FileInfo // of the files cert was loaded from
	keyInfo  os.FileInfo
	// failed is the last reload error logged, so a broken state of the
	// files is logged once, not on every handshake.
	failed string
}

// newCertReloader loads the pair once; a pair that does not load is an
// error at start-up, where the operator sees it.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	ci, ki, err := r.stat()
	if err != nil {
		return nil, err
	}
	if err := r.load(ci, ki); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) stat() (cert, key os.FileInfo, err error) {
	if cert, err = os.Stat(r.certFile); err != nil {
		return nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if key, err = os.Stat(r.keyFile); err != nil {
		return nil, nil, fmt.Errorf("TLS key: %w", err)
	}
	return cert, key, nil
}

// load reads the pair; the FileInfos were taken before reading, so a file
// replaced meanwhile is seen as changed on the next handshake.
func (r *certReloader) load(ci, ki os.FileInfo) error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS key pair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return fmt.Errorf("TLS certificate %s: %w", r.certFile, err)
	}
	c.Leaf = leaf
	r.cert, r.certInfo, r.keyInfo, r.failed = &c, ci, ki, ""
	return nil
}

// GetCertificate implements tls.Config.GetCertificate. While a rotation
// is half done (the certificate replaced, not yet its key) the pair does
// not load: the previous certificate keeps being served and the problem
// is logged once.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ci, ki, err := r.stat()
	if err != nil {
		r.logFailure(err)
		return r.cert, nil
	}
	if sameFile(r.certInfo, ci) && sameFile(r.keyInfo, ki) {
		return r.cert, nil
	}
	if err := r.load(ci, ki); err != nil {
		r.logFailure(err)
		return r.cert, nil
	}
	r.log.Info("admin TLS certificate reloaded", "cert", r.certFile, "subject", r.cert.Leaf.Subject.String(), "not_after", r.cert.Leaf.NotAfter)
	return r.cert, nil
}

func (r *certReloader) logFailure(err error) {
	if err.Error() == r.failed {
		return
	}
	r.failed = err.Error()
	r.log.Warn("admin TLS certificate not reloaded; serving the previous one", "error", err)
}

// sameFile reports whether b is the file a was, unchanged: the same inode
// (a rename over it makes a new one), size and modification time.
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
