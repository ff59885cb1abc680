package authz

import (
	"crypto/subtle"
	"errors"
	"time"

	"github.com/tenantmesh/tenantmesh/tenants"
)

var errBadAPIKey = errors.New("api key not found or secret mismatch")

// verifyAPIKey checks an x-api-key value. The key id embedded in the key
// finds the one record to compare against, so there is no scan and no
// timing signal about other keys; the secret's hash is compared in
// constant time.
func (idx *index) verifyAPIKey(raw string, now time.Time) (*principal, Reason, error) {
	id, secret, ok := tenants.ParseAPIKey(raw)
	if !ok {
		return nil, ReasonInvalidAPIKey, errors.New("not a tenantmesh api key")
	}
	rec, ok := idx.cat.APIKey(id)
	if !ok {
		return nil, ReasonInvalidAPIKey, errBadAPIKey
	}
	if subtle.ConstantTimeCompare([]byte(tenants.HashAPIKeySecret(secret)), []byte(rec.Hash)) != 1 {
		return nil, ReasonInvalidAPIKey, errBadAPIKey
	}
	if rec.Revoked {
		return nil, ReasonAPIKeyRevoked, errors.New("api key " + id + " is revoked")
	}
	if rec.ExpiresAt != nil && !now.Before(*rec.ExpiresAt) {
		return nil, ReasonAPIKeyExpired, errors.New("api key " + id + " expired at " + rec.ExpiresAt.Format(time.RFC3339))
	}
	te, ok := idx.tenants[rec.Tenant]
	if !ok {
		return nil, ReasonUnknownTenant, errors.New("api key " + id + " belongs to unknown tenant " + rec.Tenant)
	}
	if !te.t.Spec.Auth.APIKeys {
		return nil, ReasonAPIKeysDisabled, errors.New("tenant " + rec.Tenant + " does not accept api keys")
	}
	p := &principal{tenant: rec.Tenant, subject: "apikey:" + id}
	if rec.ExpiresAt != nil {
		p.expires = *rec.ExpiresAt
	}
	return p, ReasonOK, nil
}
