package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileSchema compiles a route's body schema once per tenant version.
// $ref may only point inside the schema: a tenant must not make the
// control plane read local files or fetch URLs.
func compileSchema(tenantID, route string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("body schema of route %s: %w", route, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	loc := "tenantmesh:///" + url.PathEscape(tenantID) + "/routes/" + url.PathEscape(route) + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("body schema of route %s: %w", route, err)
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("body schema of route %s: %w", route, err)
	}
	return s, nil
}

type noLoader struct{}

func (noLoader) Load(u string) (any, error) {
	return nil, errors.New("external $ref " + u + " is not allowed")
}

// methodsWithBody are the methods whose empty body is still validated (and
// so rejected as not JSON); a GET on a route with a schema has no body to
// check.
func methodHasBody(m string) bool {
	switch m {
	case "POST", "PUT", "PATCH":
		return true
	}
	return false
}

// checkBody validates the request body against the route's schema.
func checkBody(rt *routeEntry, r *request) (Reason, error) {
	if rt.schemaErr != nil {
		return ReasonRouteMisconfigured, rt.schemaErr
	}
	if rt.schema == nil {
		return ReasonOK, nil
	}
	if r.partialBody {
		return ReasonBodyTooLarge, errors.New("envoy sent a partial body")
	}
	body := r.body()
	if len(body) == 0 && !methodHasBody(r.method) {
		return ReasonOK, nil
	}
	if rt.maxBody > 0 && len(body) > rt.maxBody {
		return ReasonBodyTooLarge, fmt.Errorf("body of %d bytes exceeds %d", len(body), rt.maxBody)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return ReasonBodyNotJSON, err
	}
	if err := rt.schema.Validate(v); err != nil {
		return ReasonBodyInvalid, err
	}
	return ReasonOK, nil
}
