package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The cost model is an upper bound: for random schemas (applicators,
// $ref recursion, failing branches) and random bodies, the evaluations the validator really
// makes — counted by a format every subschema carries — never exceed the
// model's count for each value at its depth, summed over the body's
// values (bodySchemaCostProblem bounds that sum by values × the worst).
func TestBodySchemaCostModelIsAnUpperBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		schema := randomSchema(rng)
		var count atomic.Int64
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		c.RegisterFormat(&jsonschema.Format{Name: "count", Validate: func(any) error { count.Add(1); return nil }})
		// Failing subschemas keep anyOf and oneOf from stopping early.
		c.RegisterFormat(&jsonschema.Format{Name: "countfail", Validate: func(any) error { count.Add(1); return errors.New("fails") }})
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(bodySchemaURL, doc); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile(bodySchemaURL)
		if err != nil {
			t.Fatalf("%s: %v", schema, err)
		}
		sc := newSchemaCost(sch)
		if sc.evals(sch, 0); sc.cycle != nil {
			continue
		}
		for range 5 {
			body := randomValue(rng, 6)
			raw, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			count.Store(0)
			_ = sch.Validate(v) // valid or not, only the work counts
			if got, bound := count.Load(), modelBound(sc, sch, v, 0); got > bound {
				t.Fatalf("case %d: %d evaluations > the model's %d\nschema %s\nbody %s", i, got, bound, schema, raw)
			}
		}
	}
}

// randomSchema builds a schema of applicators over three $defs that may
// refer to each other; every subschema carries a counting format, one
// in four a failing one.
func randomSchema(rng *rand.Rand) string {
	var gen func(depth int) string
	gen = func(depth int) string {
		parts := []string{`"format":"count"`}
		if rng.IntN(4) == 0 {
			parts[0] = `"format":"countfail"`
		}
		if depth > 0 {
			switch rng.IntN(12) {
			case 0:
				parts = append(parts, `"anyOf":[`+gen(depth-1)+`,`+gen(depth-1)+`]`)
			case 1:
				parts = append(parts, `"oneOf":[`+gen(depth-1)+`,`+gen(depth-1)+`]`)
			case 2:
				parts = append(parts, `"allOf":[`+gen(depth-1)+`,`+gen(depth-1)+`]`)
			case 3:
				parts = append(parts, `"items":`+gen(depth-1))
			case 4:
				parts = append(parts, `"prefixItems":[`+gen(depth-1)+`],"items":`+gen(depth-1))
			case 5:
				parts = append(parts, `"properties":{"a":`+gen(depth-1)+`,"b":`+gen(depth-1)+`},"additionalProperties":`+gen(depth-1))
			case 6:
				parts = append(parts, `"patternProperties":{"^a":`+gen(depth-1)+`},"propertyNames":`+gen(depth-1))
			case 7:
				parts = append(parts, `"if":`+gen(depth-1)+`,"then":`+gen(depth-1)+`,"else":`+gen(depth-1))
			case 8:
				parts = append(parts, `"not":`+gen(depth-1)+`,"contains":`+gen(depth-1))
			case 9:
				parts = append(parts, `"unevaluatedItems":`+gen(depth-1)+`,"unevaluatedProperties":`+gen(depth-1))
			case 10:
				parts = append(parts, `"dependentSchemas":{"a":`+gen(depth-1)+`},"uniqueItems":true`)
			}
		}
		if rng.IntN(3) == 0 {
			parts = append(parts, fmt.Sprintf(`"items":{"format":"count","$ref":"#/$defs/d%d"}`, rng.IntN(3)))
		}
		if rng.IntN(6) == 0 {
			parts = append(parts, fmt.Sprintf(`"$ref":"#/$defs/d%d"`, rng.IntN(3)))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	defs := make([]string, 3)
	for i := range defs {
		defs[i] = fmt.Sprintf(`"d%d":%s`, i, gen(3))
	}
	return `{"format":"count","$defs":{` + strings.Join(defs, ",") + `},"$ref":"#/$defs/d0"}`
}

func randomValue(rng *rand.Rand, depth int) any {
	if depth == 0 {
		return rng.IntN(3)
	}
	switch rng.IntN(4) {
	case 0:
		n := rng.IntN(4)
		arr := make([]any, n)
		for i := range arr {
			arr[i] = randomValue(rng, depth-1)
		}
		return arr
	case 1:
		obj := map[string]any{}
		for _, k := range []string{"a", "b", "ab", "c"}[:rng.IntN(5)] {
			obj[k] = randomValue(rng, depth-1)
		}
		return obj
	case 2:
		return "a"
	}
	return rng.IntN(3)
}

// modelBound sums evals(root, depth) over the values of v.
func modelBound(sc *schemaCost, root *jsonschema.Schema, v any, depth int) int64 {
	n := sc.evals(root, depth)
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			n += modelBound(sc, root, x, depth+1)
		}
	case map[string]any:
		for _, x := range v {
			n += modelBound(sc, root, x, depth+1)
		}
	}
	return n
}
