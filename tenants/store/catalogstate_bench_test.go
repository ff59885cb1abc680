package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// BenchmarkWatchOneTenantChange measures what the watch pays for one
// tenant changing among many: decoding and validating that tenant and
// building the next Catalog (which shares every other tenant).
func BenchmarkWatchOneTenantChange(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			s := New(nil, Options{Prefix: testPrefix, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			st := newCatalogState(s)
			kvs := make([]keyValue, n)
			for i := range kvs {
				kvs[i] = benchTenantKV(b, i, "v0", int64(i+1))
			}
			st.reset(kvs, int64(n))
			ctx := context.Background()
			st.build(ctx, func(*tenants.Catalog) {})
			// Decoding the YAML manifests is not what is measured: the
			// changed values are prepared up front.
			changes := make([]keyValue, 64)
			for j := range changes {
				changes[j] = benchTenantKV(b, j%n, fmt.Sprintf("v%d", j+1), 0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				rev := int64(n + 1 + i)
				kv := changes[i%len(changes)]
				st.apply([]*clientv3.Event{{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(kv.key), Value: kv.value, ModRevision: rev}}})
				st.build(ctx, func(*tenants.Catalog) {})
			}
		})
	}
}

func benchTenantKV(b *testing.B, i int, displayName string, rev int64) keyValue {
	id := fmt.Sprintf("tenant-%d", i)
	docs, err := tenants.Decode("bench.yaml", []byte(tenantYAML(id, displayName)))
	if err != nil {
		b.Fatal(err)
	}
	v, err := canonical(docs[0].Object)
	if err != nil {
		b.Fatal(err)
	}
	return keyValue{key: testPrefix + tenantsDir + id, value: v, modRev: rev}
}
