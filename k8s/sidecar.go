package k8s

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantmesh/tenantmesh/contract"
	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// SidecarBootstrapKey is the ConfigMap key holding the bootstrap; mount
// the ConfigMap and run `envoy -c /etc/envoy/envoy.yaml --service-node
// $(POD_NAME)` so every replica has its own node id.
const SidecarBootstrapKey = "envoy.yaml"

// SidecarConfigMapName is the ConfigMap of the sidecar of a tenant upstream.
func SidecarConfigMapName(upstream string) string { return "tenantmesh-sidecar-" + upstream }

// sidecarBootstraps renders one sidecar bootstrap per upstream.
func sidecarBootstraps(t *tenants.Tenant, ns string, o Options) ([]*corev1.ConfigMap, error) {
	for name := range o.AppPorts {
		if _, ok := t.Upstream(name); !ok {
			return nil, fmt.Errorf("tenant %s has no upstream %q (app port given for it)", t.ID(), name)
		}
	}
	var out []*corev1.ConfigMap
	for _, u := range t.Spec.Upstreams {
		port, err := appPort(t, u, o)
		if err != nil {
			return nil, err
		}
		b, err := bootstrap.Envoy(bootstrap.Options{
			NodeID:     "sidecar-" + t.ID() + "-" + u.Name,
			Role:       contract.RoleSidecar,
			Tenant:     t.ID(),
			Service:    u.Name,
			AppPort:    port,
			XDSAddress: o.XDSAddress,
			TLS:        o.XDSTLS,
			AdminPort:  o.SidecarAdminPort,
		})
		if err != nil {
			return nil, fmt.Errorf("tenant %s: sidecar of upstream %s: %w", t.ID(), u.Name, err)
		}
		y, err := bootstrap.YAML(b)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: sidecar of upstream %s: %w", t.ID(), u.Name, err)
		}
		m := meta(t, SidecarConfigMapName(u.Name), ns)
		m.Labels[LabelUpstream] = u.Name
		out = append(out, &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: m,
			Data:       map[string]string{SidecarBootstrapKey: string(y)},
		})
	}
	return out, nil
}

// appPort is the port the upstream's application listens on inside its
// pod: given explicitly, or the upstream's endpoint port when the edge
// reaches the application directly.
func appPort(t *tenants.Tenant, u tenants.Upstream, o Options) (int, error) {
	if p, ok := o.AppPorts[u.Name]; ok {
		return p, nil
	}
	if len(u.Endpoints) == 0 {
		return 0, fmt.Errorf("tenant %s: upstream %s has no endpoint to take the application port from; give it explicitly", t.ID(), u.Name)
	}
	p := u.Endpoints[0].Port
	if p == o.SidecarInboundPort {
		return 0, fmt.Errorf("tenant %s: upstream %s points at the sidecar inbound port %d, so its application port is not known; give it explicitly (--app-port %s=PORT)", t.ID(), u.Name, p, u.Name)
	}
	return p, nil
}
