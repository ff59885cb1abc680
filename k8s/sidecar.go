package k8s

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// SidecarBootstrapKey is the ConfigMap key holding the bootstrap; mount
// the ConfigMap and run `envoy -c /etc/envoy/envoy.yaml --service-node
// $(POD_NAME)` so every replica has its own node id.
const SidecarBootstrapKey = "envoy.yaml"

// SidecarConfigMapName is the ConfigMap of the sidecar of a tenant upstream.
func SidecarConfigMapName(upstream string) string { return "tenantmesh-sidecar-" + upstream }

// sidecarBootstraps renders one sidecar bootstrap per upstream. The
// application port is the upstream's first endpoint port: the port the
// service listens on inside its pod.
func sidecarBootstraps(t *tenants.Tenant, ns string, o Options) ([]*corev1.ConfigMap, error) {
	var out []*corev1.ConfigMap
	for _, u := range t.Spec.Upstreams {
		if len(u.Endpoints) == 0 {
			return nil, fmt.Errorf("tenant %s: upstream %s has no endpoint to take the application port from", t.ID(), u.Name)
		}
		b, err := bootstrap.Envoy(bootstrap.Options{
			NodeID:     "sidecar-" + t.ID() + "-" + u.Name,
			Role:       translate.RoleSidecar,
			Tenant:     t.ID(),
			Service:    u.Name,
			AppPort:    u.Endpoints[0].Port,
			XDSAddress: o.XDSAddress,
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
