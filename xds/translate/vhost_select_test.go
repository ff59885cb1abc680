package translate

import (
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// selectVirtualHost emulates Envoy's virtual host selection on an edge as
// the route API documents it (VirtualHost.domains): the value of the
// route configuration's vhost_header — here the key
// envoy.VirtualHostKeyFormat, "<path>|<authority>" — lower-cased, is
// matched against exact domains, then suffix wildcards ("*…", longest
// first), then prefix wildcards ("…*", longest first), then "*". The
// candidates are the inline virtual hosts and the VHDS ones, as Envoy
// merges them.
func selectVirtualHost(t *testing.T, res *Resources, authority, path string) *routev3.VirtualHost {
	t.Helper()
	rc := edgeRouteConfigOf(t, res)
	if rc.GetVhostHeader() != EdgeVirtualHostKey {
		t.Fatalf("edge-routes selects virtual hosts by %q, want %q", rc.GetVhostHeader(), EdgeVirtualHostKey)
	}
	all := append([]*routev3.VirtualHost(nil), rc.GetVirtualHosts()...)
	for _, r := range res.VirtualHosts {
		all = append(all, r.(*routev3.VirtualHost))
	}
	key := strings.ToLower(path + "|" + authority)
	var (
		best     *routev3.VirtualHost
		bestRank int // 4 exact, 3 suffix, 2 prefix, 1 "*"
		bestLen  int
	)
	consider := func(vh *routev3.VirtualHost, rank, n int) {
		if rank > bestRank || (rank == bestRank && n > bestLen) {
			best, bestRank, bestLen = vh, rank, n
		}
	}
	for _, vh := range all {
		for _, d := range vh.GetDomains() {
			switch {
			case d == "*":
				consider(vh, 1, 0)
			case strings.HasPrefix(d, "*"):
				if strings.HasSuffix(key, d[1:]) && len(key) > len(d)-1 {
					consider(vh, 3, len(d))
				}
			case strings.HasSuffix(d, "*"):
				if strings.HasPrefix(key, d[:len(d)-1]) && len(key) > len(d)-1 {
					consider(vh, 2, len(d))
				}
			case d == key:
				consider(vh, 4, len(d))
			}
		}
	}
	return best
}

// edgeRoute is the route an edge selects for authority and path: the
// virtual host's first matching route (the shared virtual host: through its
// match tree). "" means the virtual host has no route for it (Envoy's
// no-route 404); nil virtual host fails the test.
func edgeRoute(t *testing.T, res *Resources, authority, path string) string {
	t.Helper()
	vh := selectVirtualHost(t, res, authority, path)
	if vh == nil {
		t.Fatalf("%s%s: no virtual host (the shared one should catch everything)", authority, path)
	}
	if vh.GetName() == SharedVirtualHost && vh.GetMatcher() != nil {
		return sharedMatch(t, edgeRouteConfigOf(t, res), path)
	}
	return firstMatch(vh.GetRoutes(), path).GetName()
}

// virtualHostOf returns the tenant's VHDS virtual host, nil if it has none.
func virtualHostOf(res *Resources, tenant string) *routev3.VirtualHost {
	for _, r := range res.VirtualHosts {
		if vh := r.(*routev3.VirtualHost); vh.GetName() == VirtualHostName(tenant) {
			return vh
		}
	}
	return nil
}

// TestVirtualHostKeySelectsTenant pins how the key finds the tenant, for
// both ways of addressing it and with the port a client may send.
func TestVirtualHostKeySelectsTenant(t *testing.T) {
	res := translateEdge(t, load(t, "both"))
	for _, c := range []struct{ authority, path, want string }{
		{"tenant-a.api.example.com", "/api/executive/x", VirtualHostName("tenant-a")},
		{"TENANT-A.api.example.com", "/api/executive/x", VirtualHostName("tenant-a")},
		{"tenant-a.api.example.com:10000", "/api/executive/x", VirtualHostName("tenant-a")},
		{"tenant-a.api.example.com:10000", "/", VirtualHostName("tenant-a")},
		{"api.example.com", "/tenants/tenant-a/api/executive/x", VirtualHostName("tenant-a")},
		{"api.example.com:10000", "/tenants/tenant-ab/api/executive/x", VirtualHostName("tenant-ab")},
		// The host wins over the path: a tenant's host never serves another tenant.
		{"tenant-a.api.example.com", "/tenants/tenant-ab/api/executive/x", VirtualHostName("tenant-a")},
		{"tenant-ab.api.example.com", "/tenants/tenant-a/api/executive/x", VirtualHostName("tenant-ab")},
		// A client cannot put the other tenant's host into the path.
		{"api.example.com", "/x|tenant-a.api.example.com", SharedVirtualHost},
		{"evil.example.com", "/tenants/tenant-a", SharedVirtualHost},
		{"tenant-a.api.example.com.evil.com", "/", SharedVirtualHost},
		{"xtenant-a.api.example.com", "/", SharedVirtualHost},
	} {
		if got := selectVirtualHost(t, res, c.authority, c.path).GetName(); got != c.want {
			t.Errorf("%s %s: virtual host %q, want %q", c.authority, c.path, got, c.want)
		}
	}
	// A host route never takes a path-form request unrewritten.
	if got := edgeRoute(t, res, "api.example.com", "/tenants/tenant-a/nothing-here"); got != MountGuardRouteName("tenant-a") {
		t.Errorf("unmatched path under the mount: %q, want the mount's 404", got)
	}
}
