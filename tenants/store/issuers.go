package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// Issuer claims: issuers/<escaped issuer> holds the tenants that list the
// issuer (spec.auth.jwt[].issuer) and whether they share it. As with host
// claims (hosts.go), every apply that adds or drops an issuer updates its
// claim in the same transaction, guarded by the claim's revision, so two
// tenants can never both be stored holding one issuer unless both set
// shared: true — whatever the order or concurrency of their applies.
// Platform issuers (MeshConfig spec.jwt) are checked against the
// MeshConfig by tenants.ValidateSet; a tenant sharing one holds a claim
// as well, so that the rule holds if the MeshConfig drops the issuer.
// Values written by hand bypass claims; the Catalog then leaves the
// newer conflicting tenant out (tenants.tenantIndex.admit).
const issuersDir = "issuers/"

// issuerClaim is the value of an issuer claim.
type issuerClaim struct {
	// Shared: every holder set shared: true. Without it there is one.
	Shared  bool     `json:"shared,omitempty"`
	Tenants []string `json:"tenants"` // sorted
}

// issuerKey escapes the issuer (a URL, with slashes) into one key segment.
func (s *Store) issuerKey(iss string) string {
	return s.prefix + issuersDir + url.PathEscape(iss)
}

// tenantIssuers returns the issuers of a stored tenant value; a value
// that does not decode has none.
func tenantIssuers(value []byte) []tenants.JWTIssuer {
	if value == nil {
		return nil
	}
	o, err := tenants.DecodeObject(value)
	if err != nil {
		return nil
	}
	if t, ok := o.(*tenants.Tenant); ok {
		return t.Spec.Auth.JWT
	}
	return nil
}

// issuerClaims adds to ch what moving tenant id from the issuers in
// before to those in after takes: claims created, joined, updated or
// released. An issuer another tenant holds without both sharing it is a
// conflict, reported at its field path in doc.
func (s *Store) issuerClaims(ctx context.Context, ch *change, doc *tenants.Document, id string, before, after []tenants.JWTIssuer) (tenants.ErrorList, error) {
	keep := map[string]bool{}
	var keys []string
	for _, j := range after {
		keep[j.Issuer] = true
		keys = append(keys, s.issuerKey(j.Issuer))
	}
	for _, j := range before {
		if !keep[j.Issuer] {
			keys = append(keys, s.issuerKey(j.Issuer))
		}
	}
	kvs, err := s.readKeys(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read issuer claims of tenant %s: %w", id, err)
	}
	var conflicts tenants.ErrorList
	put := func(k string, c issuerClaim) error {
		b, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode issuer claim: %w", err)
		}
		ch.ops = append(ch.ops, clientv3.OpPut(k, string(b)))
		return nil
	}
	for i, j := range after {
		k := s.issuerKey(j.Issuer)
		kv := kvs[k]
		var cur issuerClaim
		if kv != nil {
			if err := json.Unmarshal(kv.Value, &cur); err != nil {
				// Not written by tenantmesh: refuse rather than guess.
				return nil, fmt.Errorf("issuer claim %s does not decode (written by hand?): %w", k, err)
			}
			ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision))
		} else {
			ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		}
		others := slices.DeleteFunc(slices.Clone(cur.Tenants), func(x string) bool { return x == id })
		if msg := tenants.IssuerClaimProblem(j.Issuer, j.Shared, others, cur.Shared); msg != "" {
			fe := tenants.FieldError{Kind: tenants.KindTenant, Name: id, Path: tenants.Path("spec.auth.jwt").Index(i).Child("issuer"), Cause: msg}
			if doc != nil {
				fe.File, fe.Doc = doc.File, doc.Index
			}
			conflicts = append(conflicts, fe)
			continue
		}
		next := issuerClaim{Shared: j.Shared, Tenants: append(others, id)}
		slices.Sort(next.Tenants)
		if kv == nil || next.Shared != cur.Shared || !slices.Equal(next.Tenants, cur.Tenants) {
			if err := put(k, next); err != nil {
				return nil, err
			}
		}
	}
	for _, j := range before {
		k := s.issuerKey(j.Issuer)
		kv := kvs[k]
		if keep[j.Issuer] || kv == nil {
			continue
		}
		var cur issuerClaim
		if err := json.Unmarshal(kv.Value, &cur); err != nil {
			continue // not ours to release; the next writer reports it
		}
		if !slices.Contains(cur.Tenants, id) {
			continue
		}
		ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision))
		cur.Tenants = slices.DeleteFunc(cur.Tenants, func(x string) bool { return x == id })
		if len(cur.Tenants) == 0 {
			ch.ops = append(ch.ops, clientv3.OpDelete(k))
		} else if err := put(k, cur); err != nil {
			return nil, err
		}
	}
	return conflicts, nil
}
