package authz

import (
	"testing"
	"time"
)

// iat is checked with the leeway of nbf: issued in the future beyond it is
// not valid yet; within it (clock skew) is fine.
func TestIssuedAtInTheFuture(t *testing.T) {
	w := newWorld(t)
	_, cl := newServer(t, w, Options{})
	tok := func(iat time.Time) creq {
		c := claimsA()
		c["iat"] = iat.Unix()
		return creq{tenant: "tenant-a", route: "orders", headers: bearer(w.tokenA(c))}
	}
	now := time.Now()
	wantDenied(t, check(t, cl, tok(now.Add(5*time.Minute))), 401, ReasonTokenNotYetValid)
	wantDenied(t, check(t, cl, tok(now.Add(Leeway+10*time.Second))), 401, ReasonTokenNotYetValid)
	wantAllowed(t, check(t, cl, tok(now.Add(Leeway-10*time.Second))), "tenant-a")
	wantAllowed(t, check(t, cl, tok(now.Add(-time.Hour))), "tenant-a")

	// iat must be a NumericDate when present.
	c := claimsA()
	c["iat"] = "yesterday"
	wantDenied(t, check(t, cl, creq{tenant: "tenant-a", route: "orders", headers: bearer(w.tokenA(c))}), 401, ReasonInvalidToken)
}
