package contract

import "testing"

// The name functions invert where the xDS server has to go back from a
// name to a tenant, and produce what grpc-go asks for.
func TestNames(t *testing.T) {
	if got, ok := TenantOfVirtualHost(VirtualHostName("tenant-a")); !ok || got != "tenant-a" {
		t.Errorf("TenantOfVirtualHost(VirtualHostName(tenant-a)) = %q, %v", got, ok)
	}
	if _, ok := TenantOfVirtualHost(SharedVirtualHost); ok {
		t.Errorf("%s is no tenant's virtual host", SharedVirtualHost)
	}
	if got, want := GRPCServerListenerName("127.0.0.1:50051"), "grpc/server?xds.resource.listening_address=127.0.0.1:50051"; got != want {
		t.Errorf("GRPCServerListenerName = %q, want %q", got, want)
	}
	if got, want := ClusterName("tenant-a", "orders"), "tenant-a.orders"; got != want {
		t.Errorf("ClusterName = %q, want %q", got, want)
	}
}
