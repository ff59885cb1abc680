package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxNesting bounds how deep a document may nest objects and lists. The
// manifest types nest about ten levels; the rest is for body schemas.
// encoding/json allows 10,000, but the strict check recurses once per
// level, and a document that deep is a mistake or an attack.
const maxNesting = 1000

// fieldAliaser is implemented by types that accept a second key for one
// of their fields (Retries: "true" for "on", see retries_json.go). The
// strict check treats such a type as the struct it is, with the alias as
// one more known key, instead of trusting its UnmarshalJSON blindly.
type fieldAliaser interface {
	jsonFieldAliases() map[string]string // alias → field name
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	fieldAliaserType    = reflect.TypeFor[fieldAliaser]()
)

// checkStrictJSON reports, at their field paths, everything in one JSON
// value that encoding/json would silently accept when decoding it into a
// value of type t: keys given twice (encoding/json keeps the last), keys
// no field has (including keys that match a field only when compared
// case-insensitively, which encoding/json also accepts), values of the
// wrong type, integers out of range, and nesting deeper than maxNesting.
// Every problem is reported, not only the first. data must be valid JSON
// (json.Valid).
func checkStrictJSON(data []byte, t reflect.Type) (ErrorList, error) {
	c := strictChecker{dec: json.NewDecoder(bytes.NewReader(data))}
	c.dec.UseNumber()
	if err := c.value("", t, 0); err != nil {
		return nil, err
	}
	return c.errs.list, nil
}

type strictChecker struct {
	dec  *json.Decoder
	errs errs
}

// value checks the next JSON value against t; t nil accepts any value
// (still refusing duplicate keys). The error is a syntax error of the
// input or the nesting limit, after which nothing more can be checked.
func (c *strictChecker) value(p Path, t reflect.Type, depth int) error {
	tok, err := c.dec.Token()
	if err != nil {
		return err
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && t.Kind() == reflect.Interface {
		t = nil
	}
	if t != nil && !reflect.PointerTo(t).Implements(fieldAliaserType) &&
		(t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType)) {
		// json.RawMessage (a body schema) and other self-decoding types:
		// their own UnmarshalJSON decides; duplicates are still refused.
		t = nil
	}
	switch v := tok.(type) {
	case json.Delim:
		if depth >= maxNesting {
			return tooDeep{clipPath(p)}
		}
		if v == '{' {
			return c.object(p, t, depth+1)
		}
		return c.array(p, t, depth+1)
	case nil:
		return nil // null is the zero value of every type
	}
	if t == nil {
		return nil
	}
	c.scalar(p, t, tok)
	return nil
}

func (c *strictChecker) object(p Path, t reflect.Type, depth int) error {
	var fields *structFields
	var elem reflect.Type // map values; nil with fields == nil: anything
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = fieldsOf(t)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		elem = t.Elem()
	default:
		c.errs.add(p, "want %s, got an object", kindNoun(t))
		t = nil
	}
	seen := map[string]string{} // field name → the key that set it
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		name, ft, known := key, elem, t == nil || fields == nil
		if fields != nil {
			name, ft, known = fields.lookup(key)
		}
		kp := childPath(p, key, t)
		if first, dup := seen[name]; dup {
			if first == key {
				c.errs.add(kp, "given twice: a later value would silently replace the first")
			} else {
				c.errs.add(childPath(p, name, t), "given twice (as %q and as %q, which mean the same field)", first, key)
			}
		}
		seen[name] = key
		if !known {
			c.errs.add(kp, "unknown field%s", fields.hint(key))
			ft = nil
		}
		if err := c.value(kp, ft, depth); err != nil {
			return err
		}
	}
	_, err := c.dec.Token() // '}'
	return err
}

func (c *strictChecker) array(p Path, t reflect.Type, depth int) error {
	var elem reflect.Type
	if t != nil {
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			elem = t.Elem()
		} else {
			c.errs.add(p, "want %s, got a list", kindNoun(t))
		}
	}
	for i := 0; c.dec.More(); i++ {
		if err := c.value(p.Index(i), elem, depth); err != nil {
			return err
		}
	}
	_, err := c.dec.Token() // ']'
	return err
}

// scalar checks a string, number or boolean against t.
func (c *strictChecker) scalar(p Path, t reflect.Type, tok json.Token) {
	got := func() string {
		switch v := tok.(type) {
		case string:
			return fmt.Sprintf("a string (%q)", clip(v))
		case json.Number:
			return "a number (" + clip(string(v)) + ")"
		case bool:
			return fmt.Sprintf("a boolean (%t)", v)
		}
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := tok.(string); !ok {
			c.errs.add(p, "want a string, got %s", got())
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			c.errs.add(p, "want true or false, got %s", got())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			c.errs.add(p, "want an integer, got %s", got())
		} else if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			c.errs.add(p, "%s", intProblem(string(n), err))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := tok.(json.Number)
		if !ok {
			c.errs.add(p, "want a non-negative integer, got %s", got())
		} else if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			c.errs.add(p, "%s", intProblem(string(n), err))
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := tok.(json.Number); !ok {
			c.errs.add(p, "want a number, got %s", got())
		}
	default:
		c.errs.add(p, "want %s, got %s", kindNoun(t), got())
	}
}

func intProblem(n string, err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Sprintf("%s is out of range", clip(n))
	}
	return fmt.Sprintf("want an integer, got %s", clip(n))
}

// kindNoun names what a JSON value of type t looks like.
func kindNoun(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "an integer"
	}
}

// childPath is the path of key below p: a field of a struct, an entry of
// a map (quoted, since map keys are free-form).
func childPath(p Path, key string, t reflect.Type) Path {
	if t != nil && t.Kind() == reflect.Map {
		return p.Key(key)
	}
	if key == "" || strings.ContainsAny(key, ".[]\"' \t\n") || !printable(key) {
		return p.Key(key)
	}
	return p.Child(key)
}

// tooDeep is the error of a document nested deeper than maxNesting.
type tooDeep struct{ path Path }

func (e tooDeep) Error() string { return fmt.Sprintf("nested deeper than %d levels", maxNesting) }

// clipPath shortens a path of a thousand levels for a message.
func clipPath(p Path) Path {
	const max = 120 // ASCII: paths are field names, indexes and quoted keys
	if len(p) <= max {
		return p
	}
	i := max
	for i > 0 && !utf8.RuneStart(p[i]) {
		i--
	}
	return p[:i] + "…"
}

// structFields are the JSON keys of a struct type as encoding/json
// names them, embedded structs without a name promoted (TypeMeta).
type structFields struct {
	types   map[string]reflect.Type
	aliases map[string]string
	names   []string // sorted, for hints
}

func (f *structFields) lookup(key string) (name string, t reflect.Type, ok bool) {
	if n, ok := f.aliases[key]; ok {
		key = n
	}
	t, ok = f.types[key]
	return key, t, ok
}

// hint suggests the field a mistyped key probably meant.
func (f *structFields) hint(key string) string {
	if f == nil || len(key) > 64 {
		return ""
	}
	best, bestD := "", 3 // at most two edits away
	for _, n := range f.names {
		if strings.EqualFold(n, key) {
			return fmt.Sprintf(" (field names are case-sensitive: did you mean %q?)", n)
		}
		if d := editDistance(strings.ToLower(key), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

var structFieldsCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := structFieldsCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{types: map[string]reflect.Type{}}
	collectFields(t, f.types)
	if reflect.PointerTo(t).Implements(fieldAliaserType) {
		f.aliases = reflect.New(t).Interface().(fieldAliaser).jsonFieldAliases()
	}
	for n := range f.types {
		f.names = append(f.names, n)
	}
	sort.Strings(f.names)
	structFieldsCache.Store(t, f)
	return f
}

func collectFields(t reflect.Type, into map[string]reflect.Type) {
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, into)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		into[name] = sf.Type
	}
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
