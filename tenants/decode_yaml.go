package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"

	yaml "go.yaml.in/yaml/v2"
)

// yamlToJSON parses one YAML document and converts it to JSON the way
// sigs.k8s.io/yaml does (yaml.go, convertToJSONableObject): map keys
// become strings, and a number or boolean where the document's Go type
// has a string becomes that string (`displayName: 2024`). It differs
// where sigs.k8s.io/yaml loses data silently:
//
//   - two keys that become the same string (`1` and "1", or `on` and
//     "true") are an error at their path; sigs.k8s.io/yaml keeps one of
//     them, depending on map iteration order;
//   - a second document in raw is an error: yaml.Unmarshal reads only the
//     first. splitDocuments should never leave one there; this makes sure.
//
// Duplicate keys are refused by the parser's strict mode, with the line.
// line is the first line of raw in its file; the parser's line numbers are
// shifted to match the file. err is a parse error; list are conversion
// problems, reported with the strict check's.
func yamlToJSON(raw []byte, line int) (js []byte, list ErrorList, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.SetStrict(true)
	var v any
	switch err := dec.Decode(&v); {
	case errors.Is(err, io.EOF):
		return nil, nil, errors.New("invalid YAML/JSON: the document is empty")
	case err != nil:
		return nil, nil, fmt.Errorf("invalid YAML/JSON: %s", fileLines(err, line))
	}
	var extra any
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, nil, fmt.Errorf("invalid YAML/JSON: %s", fileLines(err, line))
	default:
		return nil, nil, errors.New("invalid YAML/JSON: more than one document where one was expected; separate documents with a line \"---\"")
	}
	var t reflect.Type
	if m, ok := v.(map[any]any); ok {
		if k, ok := m["kind"].(string); ok {
			t = kindTypes[Kind(k)]
		}
	}
	var e errs
	j := toJSONable(&e, "", v, t)
	js, err = json.Marshal(j)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid YAML/JSON: cannot be represented as JSON: %w", err)
	}
	return js, e.list, nil
}

// toJSONable converts a value of go.yaml.in/yaml/v2 to one of
// encoding/json, t being the Go type it will be decoded into (nil when
// unknown).
func toJSONable(e *errs, p Path, v any, t reflect.Type) any {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && !reflect.PointerTo(t).Implements(fieldAliaserType) &&
		(t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType)) {
		t = nil // decodes itself: no coercion below (sigs.k8s.io/yaml: indirect)
	}
	switch x := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(x))
		from := make(map[string]any, len(x))
		var fields *structFields
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = fieldsOf(t)
		} else if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		// Sorted, so that problems are reported in the same order every time.
		keys := make([]any, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, b := fmt.Sprint(keys[i]), fmt.Sprint(keys[j])
			if a != b {
				return a < b
			}
			return fmt.Sprintf("%T", keys[i]) < fmt.Sprintf("%T", keys[j])
		})
		for _, k := range keys {
			ks, ok := yamlKeyString(k)
			if !ok {
				e.add(p, "map key %v of type %T cannot be a JSON field name", clip(fmt.Sprint(k)), k)
				continue
			}
			kp := childPath(p, ks, t)
			if first, dup := from[ks]; dup {
				e.add(kp, "given twice (as %s and as %s)", yamlKeyNoun(first), yamlKeyNoun(k))
				continue
			}
			from[ks] = k
			ft := elem
			if fields != nil {
				_, ft, _ = fields.lookup(ks)
			}
			out[ks] = toJSONable(e, kp, x[k], ft)
		}
		return out
	case []any:
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		out := make([]any, len(x))
		for i, el := range x {
			out[i] = toJSONable(e, p.Index(i), el, elem)
		}
		return out
	}
	if t != nil && t.Kind() == reflect.String {
		// sigs.k8s.io/yaml's coercion, formats included.
		switch x := v.(type) {
		case int:
			return strconv.FormatInt(int64(x), 10)
		case int64:
			return strconv.FormatInt(x, 10)
		case uint64:
			return strconv.FormatUint(x, 10)
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 32)
		case bool:
			return strconv.FormatBool(x)
		}
	}
	return v
}

// yamlKeyString is the JSON field name of a YAML map key, as
// sigs.k8s.io/yaml spells it.
func yamlKeyString(k any) (string, bool) {
	switch x := k.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 32)
		switch s {
		case "+Inf":
			s = ".inf"
		case "-Inf":
			s = "-.inf"
		case "NaN":
			s = ".nan"
		}
		return s, true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// yamlKeyNoun describes a key for a message: a string key quoted, others
// with their YAML type (`on` is the boolean true in YAML 1.1).
func yamlKeyNoun(k any) string {
	if s, ok := k.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("the %T %v", k, k)
}

var yamlLine = regexp.MustCompile(`\bline (\d+)\b`)

// fileLines rewrites the parser's "line N" (counted from the document's
// start) to the line of the file.
func fileLines(err error, first int) string {
	msg := err.Error()
	if first <= 1 {
		return trimYAMLPrefix(msg)
	}
	msg = yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
		n, convErr := strconv.Atoi(m[len("line "):])
		if convErr != nil {
			return m
		}
		return "line " + strconv.Itoa(n+first-1)
	})
	return trimYAMLPrefix(msg)
}

func trimYAMLPrefix(msg string) string {
	if len(msg) > 6 && msg[:6] == "yaml: " {
		return msg[6:]
	}
	return msg
}
