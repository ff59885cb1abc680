package xds

import (
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

func TestValidateSharedSkipsOnlyTenantVirtualHosts(t *testing.T) {
	tenantVH := &routev3.VirtualHost{Name: "tenant-a"} // no domains: invalid, but validated with its tenant
	shared := &routev3.VirtualHost{Name: "shared", Domains: []string{"*"}}
	rc := &routev3.RouteConfiguration{Name: "edge-routes", VirtualHosts: []*routev3.VirtualHost{tenantVH, shared}}
	if err := validateShared(rc, map[*routev3.VirtualHost]bool{tenantVH: true}); err != nil {
		t.Fatalf("tenant virtual host was validated again: %v", err)
	}
	if len(rc.VirtualHosts) != 2 {
		t.Fatal("validateShared changed the resource")
	}
	shared.Domains = nil
	if err := validateShared(rc, map[*routev3.VirtualHost]bool{tenantVH: true}); err == nil {
		t.Fatal("an invalid shared virtual host passed")
	}
	if err := validateShared(rc, nil); err == nil {
		t.Fatal("an invalid route configuration passed with no tenant hosts")
	}
}
