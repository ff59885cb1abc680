package authz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// Limits of a body before it is validated. Depth and the cost of the
// schema are what tenants.CompileBodySchema bounds the validation work
// by; numbers are limited because the validator turns every number it
// checks into a big.Rat, whose cost grows with the exponent (1e999999
// takes ~30 ms, each time a numeric keyword looks at it) and with the
// digits (quadratically).
const (
	maxNumberChars    = 100
	maxNumberExponent = 400 // beyond float64's ±308, for decimal precision
)

// fallbackBodyBudget is the validation time budget of a Check without a
// deadline. Envoy always sends one: ext_authz sets its grpc_service
// timeout on the request (source/extensions/filters/common/ext_authz/
// ext_authz_grpc_impl.cc, GrpcClientImpl::check), and Envoy's gRPC client
// sends it as grpc-timeout (source/common/grpc/async_client_impl.cc,
// AsyncStreamImpl::initialize → Common::prepareHeaders in
// source/common/grpc/common.cc), which grpc-go turns into the deadline of
// the Check's context. The fallback is the timeout tenantmesh configures
// by default.
const fallbackBodyBudget = tenants.DefaultAuthzTimeout

// bodySlots bounds the validations running at once to the CPUs: the
// validator cannot be interrupted, so one that outlives its request keeps
// its CPU until it ends (the schema cost bound is what makes that end
// soon); requests beyond the slots wait for one until their deadline
// instead of piling goroutines onto the scheduler. Shared by every Server
// of the process, as the CPUs are.
var bodySlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// methodHasBody reports the methods whose empty body is still validated
// (and so rejected as not JSON); a GET on a route with a schema has no
// body to check.
func methodHasBody(m string) bool {
	switch m {
	case "POST", "PUT", "PATCH":
		return true
	}
	return false
}

// checkBody validates the request body against the route's schema: size,
// then nesting depth and numbers (scanBody), then JSON, then the schema
// within the Check's deadline.
func checkBody(ctx context.Context, rt *routeEntry, r *request) (Reason, error) {
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
	if len(body) > rt.maxBody {
		return ReasonBodyTooLarge, fmt.Errorf("body of %d bytes exceeds %d", len(body), rt.maxBody)
	}
	if err := scanBody(body); err != nil {
		return ReasonBodyTooLarge, err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return ReasonBodyNotJSON, err
	}
	verr, err := validateWithin(ctx, rt.schema, v)
	if err != nil {
		return ReasonBodyValidationTimeout, err
	}
	if verr != nil {
		return ReasonBodyInvalid, verr
	}
	return ReasonOK, nil
}

// validateWithin runs sch.Validate(v) until shortly before the Check's
// deadline (or for fallbackBodyBudget). It returns the validation error, or err when the
// budget ran out first; the abandoned validation then finishes in the
// background and its result is dropped.
func validateWithin(ctx context.Context, sch *jsonschema.Schema, v any) (verr, err error) {
	budget := fallbackBodyBudget
	if dl, ok := ctx.Deadline(); ok {
		// The denial must reach Envoy before its own timeout fires (that
		// would answer authz_unavailable instead): keep a fifth in hand.
		budget = time.Until(dl) * 4 / 5
	}
	timer := time.NewTimer(budget)
	defer timer.Stop()
	select {
	case bodySlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a body validation slot: %w", ctx.Err())
	case <-timer.C:
		return nil, fmt.Errorf("no body validation slot within %v", budget)
	}
	done := make(chan error, 1) // buffered: an abandoned validation must not block
	go func() {
		defer func() { <-bodySlots }()
		done <- sch.Validate(v)
	}()
	select {
	case verr := <-done:
		return verr, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("body validation: %w", ctx.Err())
	case <-timer.C:
		return nil, fmt.Errorf("body validation took longer than %v", budget)
	}
}

// scanBody refuses, without parsing, a body nested deeper than
// tenants.MaxBodyDepth or holding a number the validator cannot check
// cheaply. It does not judge JSON syntax; UnmarshalJSON does that next.
func scanBody(b []byte) error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case c == '[' || c == '{':
			if depth++; depth > tenants.MaxBodyDepth {
				return fmt.Errorf("body nested deeper than %d levels", tenants.MaxBodyDepth)
			}
		case c == ']' || c == '}':
			depth--
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(b) && isNumberByte(b[j]) {
				j++
			}
			if err := numberProblem(b[i:j]); err != nil {
				return err
			}
			i = j - 1
		}
	}
	return nil
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// numberProblem limits a number literal's length and exponent.
func numberProblem(num []byte) error {
	if len(num) > maxNumberChars {
		return fmt.Errorf("number of %d characters (at most %d)", len(num), maxNumberChars)
	}
	e := bytes.IndexAny(num, "eE")
	if e < 0 {
		return nil
	}
	exp := bytes.TrimLeft(bytes.TrimLeft(num[e+1:], "+-"), "0")
	n := 0
	for _, c := range exp {
		if c < '0' || c > '9' {
			return nil // not a number; UnmarshalJSON says so
		}
		if n = n*10 + int(c-'0'); n > maxNumberExponent {
			return fmt.Errorf("number %q has an exponent beyond ±%d", clip(string(num)), maxNumberExponent)
		}
	}
	return nil
}
