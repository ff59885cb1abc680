package xds

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	revision          prometheus.Gauge
	translate         prometheus.Histogram
	pushes            *prometheus.CounterVec
	responses         *prometheus.CounterVec
	responseResources *prometheus.CounterVec
	nacks             *prometheus.CounterVec
	nacksIgnored      *prometheus.CounterVec
	acksIgnored       *prometheus.CounterVec
	streams           prometheus.Gauge
	tenantErrors      prometheus.Counter
	syncErrors        prometheus.Counter
	incompatibleNodes prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		revision: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantmesh_xds_catalog_revision",
			Help: "etcd revision of the configuration in the xDS caches."}),
		translate: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tenantmesh_xds_update_seconds",
			Help: "Time from a new catalog to updated caches.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tenantmesh_xds_cache_updates_total",
			Help: "Cache updates by resource type."}, []string{"type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tenantmesh_xds_responses_total",
			Help: "Discovery responses sent by resource type."}, []string{"type"}),
		responseResources: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tenantmesh_xds_response_resources_total",
			Help: "Resources sent in discovery responses by type."}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tenantmesh_xds_nacks_total",
			Help: "Configurations rejected by proxies, by resource type."}, []string{"type"}),
		nacksIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tenantmesh_xds_nacks_ignored_total",
			Help: "NACKs that changed nothing: from an unauthenticated stream or one of another role (under mTLS), or over the node's rate."}, []string{"reason"}),
		acksIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tenantmesh_xds_acks_ignored_total",
			Help: "ACKs that settled nothing: from an unauthenticated stream or one of another role (under mTLS)."}, []string{"reason"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantmesh_xds_streams",
			Help: "Open xDS streams."}),
		tenantErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantmesh_xds_tenant_translation_errors_total",
			Help: "Tenants whose translation failed (they keep their last good configuration)."}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tenantmesh_xds_sync_errors_total",
			Help: "Configurations not published because a shared resource failed."}),
		// A gauge of what is connected now, not a counter of connections:
		// "is any Envoy too old right now" is the question (alert on > 0),
		// it must fall back to 0 once the fleet is upgraded, and a counter
		// would grow with every reconnect of the same old Envoy.
		incompatibleNodes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantmesh_xds_incompatible_nodes",
			Help: "Connected Envoy nodes (distinct node ids) older than the minimum Envoy version this configuration needs."}),
	}
	if reg != nil {
		reg.MustRegister(m.revision, m.translate, m.pushes, m.responses, m.responseResources, m.nacks, m.nacksIgnored, m.acksIgnored, m.streams, m.tenantErrors, m.syncErrors, m.incompatibleNodes)
	}
	return m
}

// shortType turns a type URL into a label value ("Cluster").
func shortType(typeURL string) string {
	if i := strings.LastIndexByte(typeURL, '.'); i >= 0 {
		return typeURL[i+1:]
	}
	return typeURL
}
