package authz

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

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
