package tenants

import (
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Bounds on the work of validating one request body. ext_authz validates
// bodies on the shared authz process within the request's deadline, and
// the validator cannot be interrupted, so a schema whose validation cost
// can explode is refused when it is applied, not discovered per request.
const (
	// MaxBodyDepth is the deepest nesting of arrays and objects a validated
	// body may have; authz refuses deeper bodies before validating them.
	MaxBodyDepth = 64
	// MaxBodyValidationCost bounds the subschema evaluations one body of
	// maxBodyBytes can cause (each costs about a microsecond): the
	// evaluations one body value can receive at its worst nesting depth,
	// times the number of values maxBodyBytes can hold.
	MaxBodyValidationCost = 1 << 21
)

// maxBodyValues is how many JSON values a body of n bytes can hold ("[1,1,…]").
func maxBodyValues(n int) int64 { return int64(n)/2 + 1 }

// costCap keeps the saturating sums far from overflow.
const costCap = int64(1) << 50

func addCost(a, b int64) int64 { return min(a+b, costCap) }

// schemaCost computes evals(s, d) for every subschema s and depth
// d ≤ MaxBodyDepth: an upper bound on the evaluations that validating a
// value with s causes on any one value d levels below it (d = 0: the value
// itself, counting s). In-place applicators (allOf, anyOf, oneOf, not,
// if/then/else, $ref, $dynamicRef, $recursiveRef, dependentSchemas) add
// their subschemas' counts at the same depth; child applicators
// (properties, patternProperties, additionalProperties, propertyNames,
// items, prefixItems, additionalItems, contains, unevaluated*) add theirs
// at depth d-1. Branches that each recurse through $ref therefore multiply
// per level — the explosion this exists to find — while ordinary
// recursion (a tree of items) stays constant. Each evaluation counts 1,
// and each enum value compared 1 more: regular expressions are RE2
// (linear), numbers are length-bounded by authz, and the other keyword
// lists (required, dependentRequired) cost a map lookup per entry.
type schemaCost struct {
	memo   []map[*jsonschema.Schema]int64 // by depth
	active []map[*jsonschema.Schema]bool  // in-place path being computed, by depth
	// dynamic and recursive anchors of the whole graph: a dynamic
	// reference may resolve to any of them, so it costs their maximum.
	dynamic   map[string][]*jsonschema.Schema
	recursive []*jsonschema.Schema
	cycle     *jsonschema.Schema // set when an in-place cycle is found
}

func newSchemaCost(sch *jsonschema.Schema) *schemaCost {
	c := &schemaCost{
		memo:    make([]map[*jsonschema.Schema]int64, MaxBodyDepth+1),
		active:  make([]map[*jsonschema.Schema]bool, MaxBodyDepth+1),
		dynamic: map[string][]*jsonschema.Schema{},
	}
	for d := range c.memo {
		c.memo[d] = map[*jsonschema.Schema]int64{}
		c.active[d] = map[*jsonschema.Schema]bool{}
	}
	c.collectAnchors(sch, map[*jsonschema.Schema]bool{})
	return c
}

// bodySchemaCostProblem returns "" when validating any body of at most
// maxBodyBytes (and MaxBodyDepth) against sch stays within
// MaxBodyValidationCost, else why not, naming the subschema where the
// cost grows.
func bodySchemaCostProblem(sch *jsonschema.Schema, maxBodyBytes int) string {
	c := newSchemaCost(sch)
	values := maxBodyValues(maxBodyBytes)
	perValue := MaxBodyValidationCost / values
	for d := 0; d <= MaxBodyDepth; d++ {
		n := c.evals(sch, d)
		if c.cycle != nil {
			return fmt.Sprintf("%s applies itself to the same value again ($ref cycle that does not descend into the body)",
				schemaPlace(c.cycle))
		}
		if n > perValue {
			where := c.culprit(sch, d, perValue, map[*jsonschema.Schema]bool{})
			return fmt.Sprintf("validation cost can explode: one body value at nesting depth %d can take %s subschema evaluations, "+
				"growing at %s (anyOf/oneOf/allOf branches that each recurse through $ref multiply per level, each enum value counts one); with maxBodyBytes %d "+
				"(up to %d values) at most %d per value are allowed (%d per body): recurse through one branch only, or lower maxBodyBytes",
				d, costString(n), schemaPlace(where), maxBodyBytes, values, perValue, MaxBodyValidationCost)
		}
	}
	return ""
}

func costString(n int64) string {
	if n >= costCap {
		return "more than 10^15"
	}
	return fmt.Sprint(n)
}

// schemaPlace names a subschema the way the field reads: bodySchema/$defs/n.
func schemaPlace(s *jsonschema.Schema) string {
	if rest, ok := strings.CutPrefix(s.Location, bodySchemaURL+"#"); ok {
		return "bodySchema" + rest
	}
	return s.Location
}

// applicators are the subschemas s applies: inPlace to the value itself,
// each group summed except alternative groups (one member applies: its
// maximum counts); object and array to a child value, where the members of
// byKey/byIndex are alternatives (one applies per key or index) and the
// others are summed. keyNames applies to each property name.
type applicators struct {
	inPlace         []costGroup
	byKey, objAll   []*jsonschema.Schema
	keyNames        *jsonschema.Schema
	byIndex, arrAll []*jsonschema.Schema
	// self is what evaluating s costs on the value itself: 1, plus one
	// comparison per enum value (each turns numbers into big.Rat).
	self int64
	// whole is what s costs on each descendant of the value: uniqueItems
	// and const walk the value once, enum once per enum value.
	whole int64
}

type costGroup struct {
	members     []*jsonschema.Schema
	alternative bool
}

func (c *schemaCost) applicators(s *jsonschema.Schema) applicators {
	var a applicators
	sum := func(ms ...*jsonschema.Schema) {
		for _, m := range ms {
			if m != nil {
				a.inPlace = append(a.inPlace, costGroup{members: []*jsonschema.Schema{m}})
			}
		}
	}
	sum(s.Ref, s.Not, s.If)
	sum(s.AllOf...)
	sum(s.AnyOf...)
	sum(s.OneOf...)
	for _, d := range s.DependentSchemas {
		sum(d)
	}
	for _, d := range s.Dependencies {
		if ds, ok := d.(*jsonschema.Schema); ok {
			sum(ds)
		}
	}
	if s.Then != nil || s.Else != nil {
		a.inPlace = append(a.inPlace, costGroup{members: nonNil(s.Then, s.Else), alternative: true})
	}
	if r := s.RecursiveRef; r != nil {
		g := costGroup{members: []*jsonschema.Schema{r}, alternative: true}
		if r.RecursiveAnchor {
			g.members = append(g.members, c.recursive...)
		}
		a.inPlace = append(a.inPlace, g)
	}
	if r := s.DynamicRef; r != nil {
		g := costGroup{members: nonNil(r.Ref), alternative: true}
		if r.Anchor != "" {
			g.members = append(g.members, c.dynamic[r.Anchor]...)
		}
		a.inPlace = append(a.inPlace, g)
	}

	for _, p := range s.Properties {
		a.byKey = append(a.byKey, p)
	}
	if ap, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		a.byKey = append(a.byKey, ap) // only when no property matched
	}
	for _, p := range s.PatternProperties {
		a.objAll = append(a.objAll, p)
	}
	a.objAll = append(a.objAll, nonNil(s.UnevaluatedProperties)...)
	a.keyNames = s.PropertyNames

	a.byIndex = append(a.byIndex, s.PrefixItems...)
	a.byIndex = append(a.byIndex, nonNil(s.Items2020)...)
	switch it := s.Items.(type) {
	case *jsonschema.Schema:
		a.byIndex = append(a.byIndex, it)
	case []*jsonschema.Schema:
		a.byIndex = append(a.byIndex, it...)
	}
	if ai, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
		a.byIndex = append(a.byIndex, ai)
	}
	a.arrAll = nonNil(s.Contains, s.UnevaluatedItems)
	// contentSchema is only compiled with content assertions, which
	// CompileBodySchema leaves off.
	a.self = 1
	if s.UniqueItems || s.Const != nil {
		a.whole = 1
	}
	if s.Enum != nil {
		a.self += int64(len(s.Enum.Values))
		a.whole = max(a.whole, int64(len(s.Enum.Values)))
	}
	return a
}

func nonNil(ss ...*jsonschema.Schema) []*jsonschema.Schema {
	out := make([]*jsonschema.Schema, 0, len(ss))
	for _, s := range ss {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// successors lists every subschema s applies (for walking the graph).
func (a *applicators) successors() []*jsonschema.Schema {
	var out []*jsonschema.Schema
	for _, g := range a.inPlace {
		out = append(out, g.members...)
	}
	out = append(out, a.byKey...)
	out = append(out, a.objAll...)
	out = append(out, nonNil(a.keyNames)...)
	out = append(out, a.byIndex...)
	return append(out, a.arrAll...)
}

// collectAnchors finds the dynamic and recursive anchors of the graph.
func (c *schemaCost) collectAnchors(s *jsonschema.Schema, seen map[*jsonschema.Schema]bool) {
	if seen[s] {
		return
	}
	seen[s] = true
	if s.DynamicAnchor != "" {
		c.dynamic[s.DynamicAnchor] = append(c.dynamic[s.DynamicAnchor], s)
	}
	if s.RecursiveAnchor {
		c.recursive = append(c.recursive, s)
	}
	// Anchors are collected before they are used, so the references'
	// targets are walked through their Ref fields here.
	a := c.applicators(s)
	for _, t := range a.successors() {
		c.collectAnchors(t, seen)
	}
}

// evals is evals(s, d) above; it records an in-place cycle in c.cycle.
func (c *schemaCost) evals(s *jsonschema.Schema, d int) int64 {
	if n, ok := c.memo[d][s]; ok {
		return n
	}
	if c.cycle != nil {
		return costCap
	}
	if c.active[d][s] {
		c.cycle = s
		return costCap
	}
	if s.Bool != nil {
		return boolCost(d)
	}
	c.active[d][s] = true
	defer delete(c.active[d], s)

	a := c.applicators(s)
	var n int64
	if d == 0 {
		n = a.self
	} else {
		n = a.whole
		obj, arr := c.childEvals(&a, d-1)
		n = addCost(n, max(obj, arr))
	}
	for _, g := range a.inPlace {
		var gn int64
		for _, m := range g.members {
			if g.alternative {
				gn = max(gn, c.evals(m, d))
			} else {
				gn = addCost(gn, c.evals(m, d))
			}
		}
		n = addCost(n, gn)
	}
	if c.cycle == nil {
		c.memo[d][s] = n
	}
	return n
}

func boolCost(d int) int64 {
	if d == 0 {
		return 1
	}
	return 0
}

// childEvals is what s's child applicators cost on a value k levels below
// a child: the object case and the array case (a child is one or the
// other).
func (c *schemaCost) childEvals(a *applicators, k int) (obj, arr int64) {
	for _, t := range a.byKey {
		obj = max(obj, c.evals(t, k))
	}
	for _, t := range a.objAll {
		obj = addCost(obj, c.evals(t, k))
	}
	if a.keyNames != nil && k == 0 {
		obj = addCost(obj, c.evals(a.keyNames, 0))
	}
	for _, t := range a.byIndex {
		arr = max(arr, c.evals(t, k))
	}
	for _, t := range a.arrAll {
		arr = addCost(arr, c.evals(t, k))
	}
	return obj, arr
}

// culprit descends from s (over the limit at depth d) to a subschema that
// is over the limit while every subschema it applies is within it: where
// the branches combine.
func (c *schemaCost) culprit(s *jsonschema.Schema, d int, limit int64, seen map[*jsonschema.Schema]bool) *jsonschema.Schema {
	seen[s] = true
	a := c.applicators(s)
	for _, g := range a.inPlace {
		for _, t := range g.members {
			if !seen[t] && c.evals(t, d) > limit {
				return c.culprit(t, d, limit, seen)
			}
		}
	}
	if d > 0 {
		for _, t := range append(append(append(append(a.byKey, a.objAll...), nonNil(a.keyNames)...), a.byIndex...), a.arrAll...) {
			if !seen[t] && c.evals(t, d-1) > limit {
				return c.culprit(t, d-1, limit, seen)
			}
		}
	}
	return s
}
