package bootstrap

import (
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/tenantmesh/tenantmesh/envoy/validate"
)

// YAML renders a bootstrap the way Envoy's docs write them: proto field
// names, keys sorted, so the same options always give the same bytes
// (the committed deploy/envoy files are compared against it).
func YAML(b *bootstrapv3.Bootstrap) ([]byte, error) {
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode bootstrap: %w", err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("encode bootstrap as YAML: %w", err)
	}
	return y, nil
}

// ParseYAML decodes an Envoy bootstrap file strictly (unknown fields are
// errors, as in Envoy) and validates it, Any payloads included
// (validate.Deep).
func ParseYAML(data []byte) (*bootstrapv3.Bootstrap, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("bootstrap YAML: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := validate.Deep(b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return b, nil
}
