package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// bodySchemaURL names a route's body schema inside the compiler; it shows
// up in compile errors, so it reads like the field it comes from.
const bodySchemaURL = "tenantmesh:///bodySchema"

// CompileBodySchema compiles a route's requestValidation.bodySchema. Both
// validation and ext_authz use it, so a schema that validates is exactly
// one authz can enforce. The schema must be a JSON object; draft 2020-12
// applies unless it says otherwise with $schema; "$ref"s may only point
// inside the schema — fetching URLs or files would let a tenant make the
// control plane read local files or call out to the network. A schema
// whose validation of a body of maxBodyBytes (≤ 0: DefaultMaxBodyBytes)
// could cost more than MaxBodyValidationCost is refused (see
// bodySchemaCostProblem).
func CompileBodySchema(raw json.RawMessage, maxBodyBytes int) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, errors.New("must be a JSON Schema object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noExternalRefs{})
	if err := c.AddResource(bodySchemaURL, doc); err != nil {
		return nil, fmt.Errorf("invalid JSON Schema: %w", err)
	}
	sch, err := c.Compile(bodySchemaURL)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON Schema: %s", oneLine(strings.ReplaceAll(err.Error(), bodySchemaURL, "bodySchema")))
	}
	if maxBodyBytes <= 0 {
		maxBodyBytes = DefaultMaxBodyBytes
	}
	if msg := bodySchemaCostProblem(sch, min(maxBodyBytes, MaxBodyBytesLimit)); msg != "" {
		return nil, errors.New(msg)
	}
	return sch, nil
}

// noExternalRefs refuses to load any schema resource but the one given.
type noExternalRefs struct{}

func (noExternalRefs) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema %q is not allowed; only references inside bodySchema are", url)
}

// oneLine folds the compiler's indented multi-line report into one line,
// so that each FieldError stays one line of CLI output.
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}
