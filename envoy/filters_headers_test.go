package envoy

import (
	"regexp"
	"regexp/syntax"
	"testing"

	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
)

func TestInternalHeaderRegex(t *testing.T) {
	re := regexp.MustCompile(InternalHeaderRegex)
	removed := []string{
		"x-tenant-", "x-tenant-context", "x-tenant-tier", "x-tenant-i", "x-tenant-ix",
		"x-tenant-idx", "x-tenant-id2", "x-tenant-id-", "x-tenant-ids", "x-tenant-identity",
		"x-tenant-d", "x-tenant-di", "x-tenant-roles", "x-tenant-features", "x-tenant-x",
		"X-Tenant-Context", "X-TENANT-TIER", "x-tenant-ID-forged", "x-tenant-iD2", "x-tenant-Ix",
		"x-tenant--id", "x-tenant-_id", "x-tenant-i-d",
	}
	kept := []string{
		"x-tenant-id", "X-Tenant-ID", "X-TENANT-ID", "x-Tenant-Id",
		"x-tenant", "x-tenants-id", "x-tenantcontext", "tenant-context", "x-request-id",
		"authorization", "x-api-key", "xx-tenant-context", "a-x-tenant-context", "x_tenant_context",
	}
	for _, h := range removed {
		if !re.MatchString(h) {
			t.Errorf("%q is kept, want removed", h)
		}
	}
	for _, h := range kept {
		if re.MatchString(h) {
			t.Errorf("%q is removed, want kept", h)
		}
	}
}

func TestStripInternalHeadersConfig(t *testing.T) {
	ext, err := StripInternalHeaders()
	if err != nil {
		t.Fatal(err)
	}
	if ext.GetName() != EarlyHeaderMutation {
		t.Fatalf("name %q", ext.GetName())
	}
	var hm headermutationv3.HeaderMutation
	if err := ext.GetTypedConfig().UnmarshalTo(&hm); err != nil {
		t.Fatal(err)
	}
	if err := hm.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	removes := map[string]bool{}
	var regex string
	for _, m := range hm.GetMutations() {
		if r := m.GetRemove(); r != "" {
			removes[r] = true
		}
		if rm := m.GetRemoveOnMatch(); rm != nil {
			regex = rm.GetKeyMatcher().GetSafeRegex().GetRegex()
		}
	}
	if !removes["x-tenant-context"] || !removes["x-tenant-tier"] || regex != InternalHeaderRegex {
		t.Fatalf("mutations %v / regex %q", removes, regex)
	}
}

// TestInternalHeaderRegexProgramSize: Envoy rejects safe_regex programs
// above re2.max_program_size.error_level (default 100); Go compiles RE2
// syntax to a comparable program.
func TestInternalHeaderRegexProgramSize(t *testing.T) {
	re, err := syntax.Parse(InternalHeaderRegex, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(prog.Inst); n > 100 {
		t.Fatalf("program size %d > 100", n)
	}
}
