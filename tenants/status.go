package tenants

import "time"

// Tenant states a Status records.
const (
	// StateAccepted: the tenant's current value is in the Catalog.
	StateAccepted = "accepted"
	// StateRejected: the value is valid alone but conflicts with other
	// tenants (a host taken, an unknown tier) or Envoy refused it.
	StateRejected = "rejected"
	// StateInvalid: the stored value does not decode or validate; the
	// tenant keeps its last good version.
	StateInvalid = "invalid"
)

// Status is what the control plane last concluded about a tenant. The
// store keeps it (status/<tenant>); the catalog watch and the xDS server
// (which learns what Envoy accepted) write it. It lives here, beside the
// Tenant it describes, so that writing one needs no etcd client.
type Status struct {
	Tenant string `json:"tenant"`
	// State is StateAccepted, StateRejected or StateInvalid.
	State string `json:"state"`
	// Revision is the mod revision of the tenant value the state is about.
	Revision int64     `json:"revision"`
	Message  string    `json:"message,omitempty"`
	Time     time.Time `json:"time"`
}
