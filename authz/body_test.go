package authz

import (
	"encoding/json"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// authz compiles body schemas with the compiler validation uses
// (tenants.CompileBodySchema): a schema validation refuses is never
// enforced by a more lenient compiler of its own, the route denies
// instead. A boolean schema is JSON Schema, but not the schema object
// bodySchema must be; its own compiler used to accept it, so a tenant that
// reached authz unvalidated had a route that let every body through.
func TestBodySchemaValidationRefusesDeniesTheRoute(t *testing.T) {
	w := newWorld(t)
	w.edit("tenant-a", func(sp *tenants.TenantSpec) {
		for i := range sp.Routes {
			if sp.Routes[i].Name == "executive" {
				sp.Routes[i].RequestValidation = &tenants.RequestValidation{BodySchema: json.RawMessage(`true`)}
			}
		}
	})
	w.build()
	_, cl := newServer(t, w, Options{})
	resp := check(t, cl, creq{tenant: "tenant-a", route: "executive", method: "POST", body: `{"action":"x","parameters":{}}`,
		headers: bearer(w.tokenA(claimsA()))})
	wantDenied(t, resp, 500, ReasonRouteMisconfigured)
}
