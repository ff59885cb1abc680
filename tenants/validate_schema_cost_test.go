package tenants

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// explosiveSchema is the schema of the issue: anyOf branches that each
// recurse through $ref. A 37-byte body ([[[…[1]…]]], 18 deep) took over a
// second to validate — k^depth evaluations.
func explosiveSchema(branches int) json.RawMessage {
	br := make([]string, branches)
	for i := range br {
		br[i] = `{"type":"array","items":{"$ref":"#/$defs/n"}}`
	}
	return json.RawMessage(`{"$defs":{"n":{"anyOf":[` + strings.Join(br, ",") + `]}},"$ref":"#/$defs/n"}`)
}

func TestExplosiveBodySchemaRefusedAtApply(t *testing.T) {
	runValidationCases(t, baseTenant, nil, []validationCase[*Tenant]{
		{"anyOf branches recursing through $ref", func(tn *Tenant) {
			route0(tn).RequestValidation.BodySchema = explosiveSchema(2)
		}, "spec.routes[0].requestValidation.bodySchema", "validation cost can explode"},
		{"oneOf as well, named where it grows", func(tn *Tenant) {
			route0(tn).RequestValidation.BodySchema = json.RawMessage(
				`{"type":"object","properties":{"tree":{"$ref":"#/$defs/t"}},"$defs":{"t":{"oneOf":[` +
					`{"type":"object","properties":{"l":{"$ref":"#/$defs/t"}}},{"type":"object","properties":{"r":{"$ref":"#/$defs/t"}}}]}}}`)
		}, "spec.routes[0].requestValidation.bodySchema", "growing at bodySchema/$defs/t"},
		{"in-place $ref cycle", func(tn *Tenant) {
			route0(tn).RequestValidation.BodySchema = json.RawMessage(`{"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"string"}]}},"$ref":"#/$defs/a"}`)
		}, "spec.routes[0].requestValidation.bodySchema", "bodySchema/$defs/a applies itself to the same value again"},
		// Recursion through one branch is a tree: constant per level.
		{"tree recursion is fine", func(tn *Tenant) {
			route0(tn).RequestValidation.BodySchema = json.RawMessage(
				`{"$defs":{"node":{"type":"object","required":["name"],"properties":{"name":{"type":"string"},` +
					`"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}`)
		}, "", ""},
		{"a single anyOf branch recursing is fine", func(tn *Tenant) {
			route0(tn).RequestValidation.BodySchema = json.RawMessage(
				`{"$defs":{"v":{"anyOf":[{"type":"string"},{"type":"number"},{"type":"array","items":{"$ref":"#/$defs/v"}}]}},"$ref":"#/$defs/v"}`)
		}, "", ""},
		// Fan without recursion is linear in the body; a large maxBodyBytes
		// leaves less per value.
		{"wide allOf on 1 MiB bodies", func(tn *Tenant) {
			route0(tn).RequestValidation.MaxBodyBytes = MaxBodyBytesLimit
			route0(tn).RequestValidation.BodySchema = json.RawMessage(
				`{"type":"array","items":{"allOf":[{"type":"integer"},{"minimum":0},{"maximum":9},{"multipleOf":1}]}}`)
		}, "spec.routes[0].requestValidation.bodySchema", "lower maxBodyBytes"},
		// Every enum value is one comparison (a big.Rat for numbers) per
		// value checked.
		{"huge enum on every array element", func(tn *Tenant) {
			nums := make([]string, 2000)
			for i := range nums {
				nums[i] = fmt.Sprint(i)
			}
			route0(tn).RequestValidation.BodySchema = json.RawMessage(`{"type":"array","items":{"enum":[` + strings.Join(nums, ",") + `]}}`)
		}, "spec.routes[0].requestValidation.bodySchema", "at bodySchema/items"},
		{"small enum on every array element", func(tn *Tenant) {
			route0(tn).RequestValidation.BodySchema = json.RawMessage(`{"type":"array","items":{"enum":[1,2,3,4,5,6,7,8,9,10]}}`)
		}, "", ""},
		{"the same allOf on 8 KiB bodies", func(tn *Tenant) {
			route0(tn).RequestValidation.MaxBodyBytes = 8192
			route0(tn).RequestValidation.BodySchema = json.RawMessage(
				`{"type":"array","items":{"allOf":[{"type":"integer"},{"minimum":0},{"maximum":9},{"multipleOf":1}]}}`)
		}, "", ""},
	})
}

// The bound holds for the schemas of the examples and the usual shapes,
// and the compiled result is usable.
func TestBodySchemaCostOrdinarySchemas(t *testing.T) {
	for _, s := range []string{
		`{"type":"object"}`,
		`{"type":"object","required":["action","parameters"],"properties":{"action":{"type":"string","enum":["a","b"]},"parameters":{"type":"object","additionalProperties":{"type":["string","number","boolean"]}}}}`,
		`{"type":"object","properties":{"items":{"type":"array","uniqueItems":true,"items":{"type":"object","properties":{"sku":{"type":"string","pattern":"^[A-Z0-9-]+$"},"qty":{"type":"integer","minimum":1}}}}},"if":{"required":["coupon"]},"then":{"properties":{"coupon":{"type":"string"}}},"else":{"not":{"required":["discount"]}}}`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"p":{"type":"object","properties":{"next":{"$ref":"#/definitions/p"}}}},"$ref":"#/definitions/p"}`,
	} {
		sch, err := CompileBodySchema(json.RawMessage(s), 65536)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if err := sch.Validate(map[string]any{}); err != nil && !strings.Contains(s, "required") {
			t.Errorf("%s: {} fails: %v", s, err)
		}
	}
}

// $dynamicRef is costed at the most expensive anchor it may resolve to, so
// an explosion through it is found too.
func TestBodySchemaCostDynamicRef(t *testing.T) {
	s := `{"$dynamicAnchor":"n","anyOf":[{"type":"array","items":{"$dynamicRef":"#n"}},{"type":"array","items":{"$dynamicRef":"#n"}}]}`
	if _, err := CompileBodySchema(json.RawMessage(s), 0); err == nil || !strings.Contains(err.Error(), "validation cost can explode") {
		t.Fatalf("err %v", err)
	}
}
