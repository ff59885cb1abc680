package authz

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus collectors. The tenant label is
// opt-in (Options.MetricsTenantLabels): thousands of tenants times every
// reason is a cardinality bill most installations do not want.
type metrics struct {
	tenantLabels bool
	decisions    *prometheus.CounterVec
	allowed      prometheus.Counter // decisions{allow,ok} pre-resolved for the hot path
	duration     prometheus.Histogram
	jwksFetches  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, tenantLabels bool) (*metrics, error) {
	labels := []string{"result", "reason"}
	if tenantLabels {
		labels = append(labels, "tenant")
	}
	m := &metrics{
		tenantLabels: tenantLabels,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantmesh_authz_decisions_total",
			Help: "ext_authz decisions by result (allow|deny) and reason.",
		}, labels),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tenantmesh_authz_check_duration_seconds",
			Help: "Time to decide one ext_authz Check, excluding gRPC transport.",
			// The cached path takes microseconds, an uncached RS256 tens of
			// them, a JWKS fetch up to its timeout.
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3, 0.25, 1, 5},
		}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantmesh_authz_jwks_fetches_total",
			Help: "JWKS fetches by result (ok|error).",
		}, []string{"result"}),
	}
	if !tenantLabels {
		m.allowed = m.decisions.WithLabelValues("allow", string(ReasonOK))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.decisions, m.duration, m.jwksFetches} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register authz metrics (one Server per registry): %w", err)
		}
	}
	return m, nil
}

func (m *metrics) decision(reason Reason, tenant string) {
	if reason == ReasonOK && m.allowed != nil {
		m.allowed.Inc()
		return
	}
	result := "deny"
	if reason == ReasonOK {
		result = "allow"
	}
	if m.tenantLabels {
		m.decisions.WithLabelValues(result, string(reason), tenant).Inc()
		return
	}
	m.decisions.WithLabelValues(result, string(reason)).Inc()
}

func (m *metrics) jwksFetch(err error) {
	if err != nil {
		m.jwksFetches.WithLabelValues("error").Inc()
		return
	}
	m.jwksFetches.WithLabelValues("ok").Inc()
}
