package main

import (
	"strings"
	"testing"
)

// serve refuses a private admin address off loopback unless told, before
// starting anything, and names the flag that allows it.
func TestServeRefusesRemotePrivateAdmin(t *testing.T) {
	r := runArgs("", "serve", "--data-dir", t.TempDir(), "--admin-listen", closedEndpoint(t), "--admin-private-listen", "0.0.0.0:0")
	if r.code == 0 || !strings.Contains(r.stderr, "--admin-private-allow-remote") || !strings.Contains(r.stderr, "loopback") {
		t.Errorf("serve --admin-private-listen 0.0.0.0:0: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runArgs("", "serve", "--data-dir", t.TempDir(), "--admin-tls-cert", "admin.crt")
	if r.code == 0 || !strings.Contains(r.stderr, "--admin-tls-key") {
		t.Errorf("serve --admin-tls-cert without a key: exit %d, stderr %q", r.code, r.stderr)
	}
}
