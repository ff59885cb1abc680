package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
)

// UnmarshalJSON decodes a retry policy strictly and accepts the key "true"
// as a spelling of "on". YAML 1.1, which sigs.k8s.io/yaml parses, reads the
// bare key `on` as the boolean true, so the documented manifest form
// (`retries: {attempts: 2, on: [5xx]}`) reaches JSON as {"true": [...]};
// without this, users would get `unknown field "true"` for a field they
// spelled correctly.
func (r *Retries) UnmarshalJSON(data []byte) error {
	var aux struct {
		Attempts      int      `json:"attempts"`
		On            []string `json:"on"`
		OnYAML11      []string `json:"true"`
		PerTryTimeout Duration `json:"perTryTimeout"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // the outer strict decoder does not reach in here
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if aux.On != nil && aux.OnYAML11 != nil {
		return errors.New(`retries: "on" is given twice`)
	}
	if aux.On == nil {
		aux.On = aux.OnYAML11
	}
	*r = Retries{Attempts: aux.Attempts, On: aux.On, PerTryTimeout: aux.PerTryTimeout}
	return nil
}

// jsonFieldAliases tells the strict check (decode_strict.go) that "true"
// is the key "on" as YAML 1.1 spells it.
func (r *Retries) jsonFieldAliases() map[string]string { return map[string]string{"true": "on"} }
