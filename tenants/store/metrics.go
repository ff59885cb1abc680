package store

import "github.com/prometheus/client_golang/prometheus"

// metrics are the store's Prometheus collectors. They work unregistered
// when Options.Registerer is nil, so tests can build many stores.
type metrics struct {
	invalidValues  *prometheus.CounterVec
	watchRestarts  *prometheus.CounterVec
	catalogBuilds  prometheus.Counter
	revision       prometheus.Gauge
	synced         prometheus.Gauge
	catalogTenants prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		invalidValues: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantmesh_store_invalid_values_total",
			Help: "Values in etcd that failed to decode or validate and were skipped (the object keeps its last good version).",
		}, []string{"kind"}),
		watchRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantmesh_store_watch_restarts_total",
			Help: "Times the store re-read etcd and restarted its watch, by reason.",
		}, []string{"reason"}),
		catalogBuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tenantmesh_store_catalog_builds_total",
			Help: "Catalogs built from etcd.",
		}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenantmesh_store_revision",
			Help: "etcd revision of the latest Catalog.",
		}),
		synced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenantmesh_store_synced",
			Help: "1 once the store has read etcd completely.",
		}),
		catalogTenants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenantmesh_store_catalog_tenants",
			Help: "Tenants in the latest Catalog.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.invalidValues, m.watchRestarts, m.catalogBuilds, m.revision, m.synced, m.catalogTenants)
	}
	return m
}
