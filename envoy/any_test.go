package envoy

import (
	"bytes"
	"fmt"
	"testing"
)

// TestAnyDeterministic: context_extensions is a map; its Any must be the
// same bytes every time or every rebuild looks like a change to Envoy.
func TestAnyDeterministic(t *testing.T) {
	ext := map[string]string{}
	for i := 0; i < 32; i++ {
		ext[fmt.Sprintf("k%02d", i)] = fmt.Sprint(i)
	}
	first, err := ExtAuthzCheck(ext, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		again, err := ExtAuthzCheck(ext, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.GetValue(), again.GetValue()) {
			t.Fatal("ext_authz per-route Any differs between identical builds")
		}
	}
}

func TestPathMatchSeparatesPrefixes(t *testing.T) {
	if m := PathMatch("/api", ""); m.GetPathSeparatedPrefix() != "/api" {
		t.Errorf("/api: %v", m)
	}
	if m := PathMatch("/api/", ""); m.GetPrefix() != "/api/" {
		t.Errorf("/api/: %v", m)
	}
	if m := PathMatch("", "/x"); m.GetPath() != "/x" {
		t.Errorf("/x: %v", m)
	}
}
