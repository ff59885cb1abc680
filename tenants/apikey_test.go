package tenants

import (
	"strings"
	"testing"
	"time"
)

func TestAPIKeyFormat(t *testing.T) {
	id, key, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "tmk_"+id+"_") || len(id) != 18 {
		t.Fatalf("key %q id %q", key, id)
	}
	gotID, secret, ok := ParseAPIKey(key)
	if !ok || gotID != id || secret == "" || !strings.HasSuffix(key, "_"+secret) {
		t.Fatalf("ParseAPIKey(%q) = %q, %q, %v", key, gotID, secret, ok)
	}
	id2, key2, err := NewAPIKey()
	if err != nil || id2 == id || key2 == key {
		t.Fatal("two keys must differ")
	}
	h := HashAPIKeySecret(secret)
	if len(h) != 64 || h != HashAPIKeySecret(secret) || h == HashAPIKeySecret(secret+"x") || strings.Contains(h, secret) {
		t.Fatalf("hash %q", h)
	}
	// Known answer: hex(SHA-256("abc")).
	if HashAPIKeySecret("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatal("HashAPIKeySecret is not hex(SHA-256(secret))")
	}

	for _, bad := range []string{
		"", "tmk_", "tmk_" + id, "tmk_" + id + "_", "xyz_" + id + "_secret", "tmk_short_secret",
		"Bearer " + key, "tmk_" + id + "_" + strings.Repeat("s", 300),
	} {
		if _, _, ok := ParseAPIKey(bad); ok {
			t.Errorf("ParseAPIKey(%q) accepted", bad)
		}
	}
}

func TestAPIKeyUsable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Hour), now.Add(-time.Hour)
	for _, tc := range []struct {
		k    APIKey
		want bool
	}{
		{APIKey{}, true},
		{APIKey{ExpiresAt: &later}, true},
		{APIKey{ExpiresAt: &earlier}, false},
		{APIKey{ExpiresAt: &now}, false},
		{APIKey{Revoked: true}, false},
		{APIKey{Revoked: true, ExpiresAt: &later}, false},
	} {
		if got := tc.k.Usable(now); got != tc.want {
			t.Errorf("%+v.Usable = %v, want %v", tc.k, got, tc.want)
		}
	}
}
