package translate

import (
	"testing"

	"github.com/tenantmesh/tenantmesh/envoy/validate"
)

// TestSidecarListenersPassDeepValidation: the HCM of each sidecar listener
// (packed in the listener's filter Any) and everything packed inside it
// (HTTP filters, access log, local replies) pass Envoy's validation rules.
// The listener's own ValidateAll stops at the Any, so an invalid local
// reply mapper inside the HCM (flags: [RBAC]) reached Envoy and got
// sidecar-inbound NACKed.
func TestSidecarListenersPassDeepValidation(t *testing.T) {
	res := translateSidecar(t, load(t, "sidecar"), sidecarNode("tenant-a", "executive"))
	for _, name := range []string{SidecarInboundName, SidecarOutboundName} {
		hcm := listenerNamed(t, res, name)
		if err := hcm.ValidateAll(); err != nil {
			t.Errorf("%s HCM: %v", name, err)
		}
		if err := validate.Deep(hcm); err != nil {
			t.Errorf("%s HCM, deep: %v", name, err)
		}
	}
}
