package controlplane

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"

	"github.com/tenantmesh/tenantmesh/internal/grpctest"
)

// /debug/xds, as the xds part serves it, lists a connected Envoy 1.30.0 as
// incompatible and an Envoy 1.40.0 as not.
func TestDebugXDSFlagsOldEnvoys(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := xds.New(xds.Options{Logger: log})
	srv.Update(tenants.NewCatalog(tenants.Input{Revision: 1}, nil))
	addr := grpctest.Serve(t, srv.Register)
	conn := grpctest.Dial(t, addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for id, minor := range map[string]uint32{"old-edge": 30, "new-edge": 40} {
		node := &corev3.Node{
			Id:            id,
			Metadata:      &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue("edge")}},
			UserAgentName: "envoy",
			UserAgentVersionType: &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
				Version: &typev3.SemanticVersion{MajorNumber: 1, MinorNumber: minor},
			}},
		}
		c, err := adsclient.Open(ctx, conn, node, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe(resourcev3.ClusterType); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Recv(); err != nil {
			t.Fatalf("%s: first response: %v", id, err)
		}
	}

	mux := http.NewServeMux()
	p := &xdsPart{grpcPart: grpcPart{name: "xds", log: log}, Server: srv}
	p.RegisterAdmin(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/xds", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/debug/xds: %d %s", rec.Code, rec.Body)
	}
	var body struct {
		MinEnvoyVersion string `json:"minEnvoyVersion"`
		Nodes           []struct {
			ID           string `json:"id"`
			Client       string `json:"client"`
			Version      string `json:"version"`
			Incompatible bool   `json:"incompatible"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("decode /debug/xds: %v\n%s", err, rec.Body)
	}
	if body.MinEnvoyVersion != xds.MinEnvoyVersion.String() || len(body.Nodes) != 2 {
		t.Fatalf("/debug/xds = %s", rec.Body)
	}
	for _, n := range body.Nodes {
		if n.Client != "envoy" || n.Incompatible != (n.ID == "old-edge") {
			t.Errorf("node %+v: want incompatible only for old-edge (Envoy 1.30.0)", n)
		}
	}
}
