// Package store keeps tenantmesh objects in etcd: every management change
// is one transaction together with its audit record, and Watch turns the
// stored objects into a stream of tenants.Catalogs.
//
// Key layout below the prefix (docs/architecture.md#etcd-layout):
//
//	tenants/<id>              Tenant (canonical JSON, never resourceVersion)
//	tiers/<name>              Tier
//	meshconfig/default        MeshConfig singleton
//	shared/<name>             SharedService
//	hosts/<host>              id of the tenant that claimed the host
//	issuers/<escaped issuer>  tenants holding a JWT issuer (issuers.go)
//	apikeys/<tenant>/<id>     tenants.APIKey (hash only)
//	status/<tenant>           Status written by the control plane
//	accepted/<tenant>         the tenant's last version every proxy accepted (accepted.go)
//	audit/<seq>-<time>        AuditRecord, hash-chained and signed
//	audit-head                the chain head, compared in every audited txn
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// DefaultPrefix is the etcd key prefix used when Options.Prefix is empty.
const DefaultPrefix = "/tenantmesh/v1/"

// Key segments below the prefix.
const (
	tenantsDir    = "tenants/"
	tiersDir      = "tiers/"
	meshConfigDir = "meshconfig/"
	sharedDir     = "shared/"
	apiKeysDir    = "apikeys/"
	statusDir     = "status/"
	auditDir      = "audit/"
	auditHeadKey  = "audit-head"
)

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("not found")

// Options configure a Store.
type Options struct {
	// Prefix of every key (default DefaultPrefix). It should end in "/".
	Prefix string
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// Registerer, when set, registers the store's Prometheus metrics.
	Registerer prometheus.Registerer
	// Now is the clock of audit and status records (default time.Now).
	Now func() time.Time
	// Audit signs and verifies the audit trail (audit_key.go).
	Audit AuditOptions
}

// Store is the etcd-backed tenant store. It is safe for concurrent use.
type Store struct {
	cli     *clientv3.Client
	prefix  string
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	audit   AuditOptions

	synced   atomic.Bool
	revision atomic.Int64
	errMu    sync.Mutex
	lastErr  error

	// pauseWatch, when set by tests in this package, is received from by
	// the watch loop; it then drops its watch and waits for the channel it
	// was sent to be closed before watching again from where it left off.
	pauseWatch chan chan struct{}
}

// New returns a Store that reads and writes through cli.
func New(cli *clientv3.Client, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{
		cli:     cli,
		prefix:  opts.Prefix,
		log:     opts.Logger,
		now:     opts.Now,
		metrics: newMetrics(opts.Registerer),
		audit:   opts.Audit,
	}
}

// Prefix returns the key prefix of the store.
func (s *Store) Prefix() string { return s.prefix }

// Synced reports whether Watch has completed its first full read.
func (s *Store) Synced() bool { return s.synced.Load() }

// Revision is the etcd revision of the last Catalog Watch built.
func (s *Store) Revision() int64 { return s.revision.Load() }

// LastError is the last error Watch met talking to etcd, nil once it
// recovered.
func (s *Store) LastError() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.lastErr
}

func (s *Store) setLastError(err error) {
	s.errMu.Lock()
	s.lastErr = err
	s.errMu.Unlock()
}

// kindDir returns the key directory of a kind.
func kindDir(kind tenants.Kind) (string, error) {
	switch kind {
	case tenants.KindTenant:
		return tenantsDir, nil
	case tenants.KindTier:
		return tiersDir, nil
	case tenants.KindMeshConfig:
		return meshConfigDir, nil
	case tenants.KindSharedService:
		return sharedDir, nil
	}
	return "", fmt.Errorf("unknown kind %q (want Tenant, Tier, MeshConfig or SharedService)", kind)
}

// objectKey returns the key of an object. Names reach here from the CLI
// before validation, so anything that could escape its directory is
// refused.
func (s *Store) objectKey(kind tenants.Kind, name string) (string, error) {
	dir, err := kindDir(kind)
	if err != nil {
		return "", err
	}
	if err := checkName(name); err != nil {
		return "", fmt.Errorf("%s name: %w", kind, err)
	}
	return s.prefix + dir + name, nil
}

func checkName(name string) error {
	if name == "" || len(name) > 253 || strings.ContainsAny(name, "/ \t\n") {
		return fmt.Errorf("invalid name %q", name)
	}
	return nil
}

// kindNoun is the lower-case name of a kind used in messages
// (tenant/tenant-a), as kubectl does.
func kindNoun(kind tenants.Kind) string { return strings.ToLower(string(kind)) }

// canonical returns the stored form of o: its JSON without resourceVersion.
func canonical(o tenants.Object) ([]byte, error) {
	var c tenants.Object
	switch v := o.(type) {
	case *tenants.Tenant:
		x := *v
		c = &x
	case *tenants.Tier:
		x := *v
		c = &x
	case *tenants.MeshConfig:
		x := *v
		c = &x
	case *tenants.SharedService:
		x := *v
		c = &x
	default:
		return nil, fmt.Errorf("unsupported object type %T", o)
	}
	c.GetMeta().ResourceVersion = ""
	b, err := tenants.EncodeJSON(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", o.GetTypeMeta().Kind, o.GetMeta().Name, err)
	}
	return b, nil
}

// decodeStored decodes a stored value and stamps its mod revision as
// resourceVersion.
func decodeStored(value []byte, modRev int64) (tenants.Object, error) {
	o, err := tenants.DecodeObject(value)
	if err != nil {
		return nil, err
	}
	o.GetMeta().ResourceVersion = strconv.FormatInt(modRev, 10)
	return o, nil
}

// sameValue reports whether a stored value equals a canonical encoding.
func sameValue(stored, next []byte) bool { return bytes.Equal(stored, next) }

// withTimeout bounds ctx so that a single etcd round trip cannot hang a
// caller whose context has no deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, 30*time.Second)
}
