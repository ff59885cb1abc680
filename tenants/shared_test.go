package tenants

import (
	"strings"
	"testing"
)

func TestSharedServiceValidation(t *testing.T) {
	good := `apiVersion: tenantmesh.io/v1alpha1
kind: SharedService
metadata: {name: geo}
spec:
  endpoints: [{address: geo.shared.svc, port: 8080}]
  features: [maps]
  perTenant: {circuitBreaker: {maxRequests: 10}}
`
	docs, err := Decode("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateDocuments(docs, nil); err != nil {
		t.Fatalf("valid shared service: %v", err)
	}
	bad := `apiVersion: tenantmesh.io/v1alpha1
kind: SharedService
metadata: {name: Geo}
spec:
  endpoints: [{address: "http://x", port: 0}]
  lbPolicy: fastest
  timeout: soon
  features: [Maps]
  perTenant: {circuitBreaker: {maxRequests: -1}}
`
	docs, err = Decode("bad.yaml", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	err = ValidateDocuments(docs, nil)
	if err == nil {
		t.Fatal("invalid shared service accepted")
	}
	for _, p := range []string{"metadata.name", "spec.endpoints[0].address", "spec.endpoints[0].port", "spec.lbPolicy",
		"spec.timeout", "spec.features[0]", "spec.perTenant.circuitBreaker.maxRequests"} {
		if !strings.Contains(err.Error(), p+":") {
			t.Errorf("no error for %s in:\n%v", p, err)
		}
	}
	if strings.Contains(err.Error(), "up[0]") {
		t.Errorf("internal path leaked: %v", err)
	}
}

func TestSharedServiceEntitlementAndBreakers(t *testing.T) {
	s := &SharedService{Metadata: ObjectMeta{Name: "geo"}, Spec: SharedServiceSpec{
		Features:  []string{"maps", "routing"},
		PerTenant: &SharedPerTenant{CircuitBreaker: &CircuitBreaker{MaxConnections: 5, MaxRequests: 100}},
	}}
	mk := func(status TenantStatus, maxConc int, features ...string) *Tenant {
		return &Tenant{Metadata: ObjectMeta{Name: "t"}, Spec: TenantSpec{Status: status, Features: features, MaxConcurrentRequests: maxConc}}
	}
	if !s.Entitles(mk(StatusActive, 0, "routing")) || s.Entitles(mk(StatusActive, 0, "other")) || s.Entitles(mk(StatusSuspended, 0, "maps")) {
		t.Error("entitlement: any listed feature, active tenants only")
	}
	all := &SharedService{}
	if !all.Entitles(mk(StatusActive, 0)) {
		t.Error("a service without features entitles every active tenant")
	}
	for _, tc := range []struct{ tenant, want int }{{0, 100}, {50, 50}, {500, 100}} {
		cb := s.AliasThresholds(mk(StatusActive, tc.tenant))
		if cb.MaxRequests != tc.want || cb.MaxConnections != 5 {
			t.Errorf("tenant max %d: %+v, want max_requests %d", tc.tenant, cb, tc.want)
		}
	}
	if got := all.AliasThresholds(mk(StatusActive, 30)); got.MaxRequests != 30 {
		t.Errorf("no per-tenant cap: %+v, want the tenant's 30", got)
	}
}
