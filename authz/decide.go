package authz

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// decision is the outcome of one Check.
type decision struct {
	reason       Reason
	tenant       *tenantEntry // the route's tenant, when known
	p            *principal
	contextToken string
	err          error // why, for the log; never sent to the client
}

// locale is the language of the error body: the route tenant's, else en.
func (d *decision) locale() string {
	if d.tenant != nil {
		return d.tenant.locale
	}
	return tenants.DefaultLocale
}

func (d *decision) deny(r Reason, err error) *decision {
	d.reason, d.err = r, err
	return d
}

// decide runs the one security sequence every request goes through:
// resolve the tenant the request is decided for → verify the credential
// for that tenant → the x-tenant-id claim and the route's tenant must be
// the credential's → the tenant must be active → what the route demands →
// mint the context token. Every failure denies. Tenant and shared service
// routes differ only in how the tenant is resolved (resolve) and in what
// the route demands (target.allows).
func (s *Server) decide(ctx context.Context, r *request) *decision {
	d := &decision{}
	idx := s.idx.Load()
	if idx == nil {
		return d.deny(ReasonNotReady, errNotReady)
	}
	tg, reason, err := idx.resolve(r)
	if reason != ReasonOK {
		return d.deny(reason, err)
	}
	te := tg.tenant
	d.tenant = te
	now := s.now()

	ent, reason, err := s.verify(ctx, idx, te, r, now)
	if reason != ReasonOK {
		return d.deny(reason, err)
	}
	p := ent.p
	d.p = p

	if r.hasTenant && r.tenantHdr != p.tenant {
		return d.deny(ReasonTenantHeaderMismatch, fmt.Errorf("x-tenant-id %q, credential of tenant %s", clip(r.tenantHdr), p.tenant))
	}
	if p.tenant != r.routeTenant {
		return d.deny(ReasonCrossTenant, tg.crossTenant(p.tenant))
	}
	if !te.t.Active() {
		return d.deny(ReasonTenantSuspended, nil)
	}
	if reason, err := tg.allows(ctx, p, r); reason != ReasonOK {
		return d.deny(reason, err)
	}

	tok, err := s.contextToken(ent, te, now)
	if err != nil {
		// Without a signed context we cannot vouch for the tenant upstream.
		return d.deny(ReasonInternal, err)
	}
	d.reason, d.contextToken = ReasonOK, tok
	return d
}

// target is what a request is decided against: the tenant whose
// credential it must carry, and on a shared service route the service.
type target struct {
	tenant *tenantEntry
	shared *tenants.SharedService // nil on a tenant route
}

// resolve finds the target of r. A tenant route names its tenant in the
// tenant_id context extension; a shared service route names none, so
// resolveShared derives a candidate from the request.
func (idx *index) resolve(r *request) (target, Reason, error) {
	if r.sharedService != "" && r.routeTenant == "" {
		return idx.resolveShared(r)
	}
	if r.routeTenant == "" {
		// Only tenant routes carry context_extensions; anything else
		// reaching us is a misrouted request and gets no tenant.
		return target{}, ReasonNotTenantRoute, errors.New("no tenant_id context extension")
	}
	te, ok := idx.tenants[r.routeTenant]
	if !ok {
		return target{}, ReasonUnknownTenant, fmt.Errorf("route tenant %s is not in the catalog", r.routeTenant)
	}
	return target{tenant: te}, ReasonOK, nil
}

// crossTenant explains a credential of another tenant than the target's.
func (tg target) crossTenant(credTenant string) error {
	if tg.shared != nil {
		return fmt.Errorf("credential of tenant %s, identified as %s", credTenant, tg.tenant.t.ID())
	}
	return fmt.Errorf("credential of tenant %s on a route of tenant %s", credTenant, tg.tenant.t.ID())
}

// allows checks what the route demands of the verified principal of an
// active tenant: on a shared service route, the tenant's entitlement to
// the service; on a tenant route, its roles, the tenant's features and
// the body schema (validated within ctx's deadline).
func (tg target) allows(ctx context.Context, p *principal, r *request) (Reason, error) {
	te := tg.tenant
	if svc := tg.shared; svc != nil {
		if !svc.Entitles(te.t) {
			return ReasonMissingFeature, fmt.Errorf("not entitled to shared service %s (needs one of %v)", svc.Name(), svc.Spec.Features)
		}
		return ReasonOK, nil
	}
	rt, ok := te.routes[r.route]
	if !ok {
		return ReasonUnknownRoute, fmt.Errorf("route %q not in tenant %s", r.route, te.t.ID())
	}
	if len(rt.roles) > 0 && !slices.ContainsFunc(rt.roles, func(role string) bool { return slices.Contains(p.roles, role) }) {
		return ReasonMissingRole, fmt.Errorf("needs one of %v, has %v", rt.roles, p.roles)
	}
	for _, f := range rt.features {
		if !te.t.HasFeature(f) {
			return ReasonMissingFeature, fmt.Errorf("feature %s not enabled", f)
		}
	}
	return checkBody(ctx, rt, r)
}

// clip bounds a client-supplied value before it goes into a log line.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// verify returns the verified credential of the request, from the decision
// cache when possible. Only successful verifications are cached, so a
// denial (and in particular one caused by an unavailable issuer) is always
// decided afresh.
func (s *Server) verify(ctx context.Context, idx *index, te *tenantEntry, r *request, now time.Time) (*cacheEntry, Reason, error) {
	var cred string
	switch {
	case r.hasBearer:
		cred = r.bearer
	case r.apiKey != "":
		cred = r.apiKey
	default:
		return nil, ReasonMissingCredentials, nil
	}
	var key cacheKey
	if s.cache != nil {
		key = cacheKey{digest: digest(cred), tenant: r.routeTenant, route: r.route, gen: idx.gen}
		if ent := s.cache.get(key, now); ent != nil {
			return ent, ReasonOK, nil
		}
	}
	var (
		p      *principal
		reason Reason
		err    error
	)
	if r.hasBearer {
		p, reason, err = idx.verifyJWT(ctx, te, cred)
	} else {
		p, reason, err = idx.verifyAPIKey(cred, now)
	}
	if reason != ReasonOK {
		return nil, reason, err
	}
	ent := &cacheEntry{p: p, expires: now.Add(maxEntryTTL)}
	if !p.expires.IsZero() && p.expires.Before(ent.expires) {
		ent.expires = p.expires
	}
	if s.cache != nil {
		s.cache.put(key, ent)
	}
	return ent, ReasonOK, nil
}

// digestBufs avoid a heap copy of every credential just to hash it.
var digestBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func digest(cred string) [sha256.Size]byte {
	bp := digestBufs.Get().(*[]byte)
	b := append((*bp)[:0], cred...)
	sum := sha256.Sum256(b)
	if cap(b) <= 16<<10 { // do not keep a huge buffer for the next caller
		*bp = b[:0]
		digestBufs.Put(bp)
	}
	return sum
}

// contextToken reuses the entry's x-tenant-context while it has more than
// contextTokenMinRemaining left, else mints a new one. Two requests racing
// here may both mint; either token is valid.
func (s *Server) contextToken(ent *cacheEntry, te *tenantEntry, now time.Time) (string, error) {
	if m := ent.ctx.Load(); m != nil && m.exp.Sub(now) > contextTokenMinRemaining {
		return m.token, nil
	}
	p := ent.p
	tok, exp, err := s.signer.mint(ContextClaims{
		Audience: te.t.ID(),
		Subject:  p.subject,
		TenantID: te.t.ID(),
		Tier:     te.t.Spec.Tier,
		Features: te.t.Spec.Features,
		Roles:    p.roles,
	}, now)
	if err != nil {
		return "", err
	}
	ent.ctx.Store(&mintedContext{token: tok, exp: exp})
	return tok, nil
}
