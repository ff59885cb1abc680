package authz

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// explosive is the schema of the issue: anyOf branches that each recurse
// through $ref; a body nested d deep costs ~2^d evaluations.
const explosive = `{"$defs":{"n":{"anyOf":[{"type":"array","items":{"$ref":"#/$defs/n"}},{"type":"array","items":{"$ref":"#/$defs/n"}}]}},"$ref":"#/$defs/n"}`

func nested(d int) string { return strings.Repeat("[", d) + "1" + strings.Repeat("]", d) }

func setExecutiveSchema(w *world, schema string, maxBody int) {
	w.edit("tenant-a", func(sp *tenants.TenantSpec) {
		for i := range sp.Routes {
			if sp.Routes[i].Name == "executive" {
				sp.Routes[i].RequestValidation = &tenants.RequestValidation{BodySchema: json.RawMessage(schema), MaxBodyBytes: maxBody}
			}
		}
	})
	w.build()
}

func executive(w *world, body string) creq {
	return creq{tenant: "tenant-a", route: "executive", method: "POST", body: body, headers: bearer(w.tokenA(claimsA()))}
}

// Written to etcd by hand, past apply's validation, the explosive schema
// is refused by authz's compiler too: the route denies at once.
func TestExplosiveSchemaByHandDeniesTheRoute(t *testing.T) {
	w := newWorld(t)
	setExecutiveSchema(w, explosive, 0)
	_, cl := newServer(t, w, Options{})
	start := time.Now()
	wantDenied(t, check(t, cl, executive(w, nested(18))), 500, ReasonRouteMisconfigured)
	if d := time.Since(start); d > time.Second {
		t.Errorf("denial took %v", d)
	}
}

// Whatever the static bound misses, validation ends with the Check's
// deadline. The schema is compiled here without the bound (as a
// validator bug or a hand-made index would have it): a 35-byte body that
// takes about a second is denied before the client's deadline passes.
func TestBodyValidationBoundedByDeadline(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{})
	s.idx.Load().tenants["tenant-a"].routes["executive"].schema = unboundedSchema(t, explosive)
	// Warm up: connection, issuer keys and the verified token cached, so
	// the deadline below is spent on the body.
	wantDenied(t, check(t, cl, executive(w, `{}`)), 400, ReasonBodyInvalid)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp, err := cl.Check(ctx, executive(w, nested(17)).proto())
	if err != nil {
		t.Fatalf("Check: %v (the denial must arrive before the deadline)", err)
	}
	wantDenied(t, resp, 503, ReasonBodyValidationTimeout)
	if took := time.Since(start); took > 200*time.Millisecond {
		t.Errorf("answered after %v; the deadline was 200ms", took)
	}
	waitBodySlots(t)
}

// The budget mechanics, with a validation that ends only when told: the
// deadline's four fifths, the fallback budget without a deadline, and the
// slots, which a validation holds until it really ends.
func TestValidateWithin(t *testing.T) {
	sch, release := blockingSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := validateWithin(ctx, sch, "x"); err == nil {
		t.Fatal("a blocked validation finished")
	}
	if d := time.Since(start); d < 75*time.Millisecond || d >= 100*time.Millisecond {
		t.Errorf("gave up after %v; want about 80ms (four fifths of 100ms), before the deadline", d)
	}

	start = time.Now()
	if _, err := validateWithin(context.Background(), sch, "x"); err == nil {
		t.Fatal("a blocked validation finished")
	}
	if d := time.Since(start); d < fallbackBodyBudget || d > fallbackBodyBudget+100*time.Millisecond {
		t.Errorf("without a deadline gave up after %v; want %v", d, fallbackBodyBudget)
	}
	if len(bodySlots) != min(2, cap(bodySlots)) {
		t.Errorf("%d slots held by the two abandoned validations", len(bodySlots))
	}
	release()
	waitBodySlots(t)
	if verr, err := validateWithin(context.Background(), sch, "x"); err != nil || verr != nil {
		t.Errorf("after release: %v, %v", verr, err)
	}
}

// Bodies are bounded before validation: size (maxBodyBytes, its default
// when unset), nesting depth, and number literals whose exponent or
// length would make every numeric check expensive.
func TestBodyLimits(t *testing.T) {
	w := newWorld(t)
	// Numeric keywords, so the validator does look at numbers.
	setExecutiveSchema(w, `{"type":"object","required":["action","parameters"],"properties":{"action":{"type":"string"},`+
		`"parameters":{"type":"object","additionalProperties":{"minimum":-1e300}}}}`, 0)
	_, cl := newServer(t, w, Options{})
	params := func(p string) string { return `{"action":"x","parameters":` + p + `}` }
	// params is at depth 2; a value v under key "a" nested d more levels.
	deep := func(d int) string { return params(`{"a":` + strings.Repeat("[", d) + strings.Repeat("]", d) + `}`) }

	for _, tc := range []struct {
		name   string
		body   string
		status int
		reason Reason
	}{
		{"depth 64", deep(tenants.MaxBodyDepth - 2), 200, ReasonOK},
		{"depth 65", deep(tenants.MaxBodyDepth - 1), 413, ReasonBodyTooLarge},
		{"depth 10000", deep(10000)[:8000], 413, ReasonBodyTooLarge},
		{"brackets inside strings do not count", params(`{"a":"` + strings.Repeat("[", 500) + `\"` + `"}`), 200, ReasonOK},
		{"exponent 400", params(`{"n":1e400}`), 200, ReasonOK},
		{"exponent 0400 is 400", params(`{"n":1E+0400}`), 200, ReasonOK},
		{"exponent 999999", params(`{"n":1e999999}`), 413, ReasonBodyTooLarge},
		{"negative exponent 999999", params(`{"n":-1.5e-999999}`), 413, ReasonBodyTooLarge},
		{"100-character number", params(`{"n":` + strings.Repeat("7", 100) + `}`), 200, ReasonOK},
		{"101-character number", params(`{"n":` + strings.Repeat("7", 101) + `}`), 413, ReasonBodyTooLarge},
		{"8 KiB (the default maxBodyBytes)", params(`{"s":"` + strings.Repeat("x", tenants.DefaultMaxBodyBytes-40) + `"}`), 200, ReasonOK},
		{"over 8 KiB with maxBodyBytes unset", params(`{"s":"` + strings.Repeat("x", tenants.DefaultMaxBodyBytes) + `"}`), 413, ReasonBodyTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := check(t, cl, executive(w, tc.body))
			if tc.status == 200 {
				wantAllowed(t, resp, "tenant-a")
				return
			}
			wantDenied(t, resp, tc.status, tc.reason)
		})
	}
}

// The static cost bound and the scan agree on what they bound: a body at
// the depth limit against the deepest schema the bound accepts stays fast.
func TestAcceptedSchemaAtDepthLimitIsFast(t *testing.T) {
	schema := `{"$defs":{"v":{"anyOf":[{"type":"string"},{"type":"number"},{"type":"array","items":{"$ref":"#/$defs/v"}}]}},"$ref":"#/$defs/v"}`
	sch, err := tenants.CompileBodySchema(json.RawMessage(schema), 0)
	if err != nil {
		t.Fatal(err)
	}
	body := nested(tenants.MaxBodyDepth - 1)
	if err := scanBody([]byte(body)); err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := sch.Validate(v); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("validation took %v", d)
	}
}

// unboundedSchema compiles schema without CompileBodySchema's cost bound.
func unboundedSchema(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem:///s", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("mem:///s")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// waitBodySlots lets abandoned validations finish, so that they do not
// slow the tests after this one.
func waitBodySlots(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for len(bodySlots) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("abandoned body validations still running after 2 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockingSchema's validation blocks until release is called (a format
// check that waits), so the budget can be tested without timing a slow
// validation.
func blockingSchema(t *testing.T) (*jsonschema.Schema, func()) {
	t.Helper()
	ch := make(chan struct{})
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.RegisterFormat(&jsonschema.Format{Name: "blocks", Validate: func(any) error { <-ch; return nil }})
	if err := c.AddResource("mem:///b", map[string]any{"format": "blocks"}); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("mem:///b")
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return sch, release
}
