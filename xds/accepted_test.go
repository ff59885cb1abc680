package xds

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// memAccepted is an AcceptedStore in memory that keeps what it is given
// as etcd would: encoded, so what comes back has no resolved view.
type memAccepted struct {
	mu sync.Mutex
	m  map[string][]byte
	rv map[string]string
}

func newMemAccepted() *memAccepted {
	return &memAccepted{m: map[string][]byte{}, rv: map[string]string{}}
}

func (s *memAccepted) WriteAccepted(_ context.Context, t *tenants.Tenant) (bool, error) {
	b, err := tenants.EncodeJSON(t)
	if err != nil {
		return false, fmt.Errorf("encode: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[t.Metadata.Name], s.rv[t.Metadata.Name] = b, t.Metadata.ResourceVersion
	return true, nil
}

func (s *memAccepted) ListAccepted(context.Context) (map[string]*tenants.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*tenants.Tenant{}
	for id, b := range s.m {
		o, err := tenants.DecodeObject(b)
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		t := o.(*tenants.Tenant)
		t.Metadata.ResourceVersion = s.rv[id]
		out[id] = t
	}
	return out, nil
}

func (s *memAccepted) revision(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rv[id]
}

// TestNACKAfterRestartRollsBackToPersistedVersion: what was accepted
// before a restart is where a NACK after it rolls back to; a tenant whose
// accepted version is the one rejected stays; nothing is removed.
func TestNACKAfterRestartRollsBackToPersistedVersion(t *testing.T) {
	store := newMemAccepted()
	a, b := tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Before the restart: both tenants accepted and recorded.
	s1 := New(Options{Status: &statusLog{}, Accepted: store})
	conn1 := listen(t, s1)
	s1.Update(tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{a, b}}, nil))
	sctx, stop := context.WithCancel(ctx)
	e1 := open(sctx, t, conn1, edgeNode("e1"), true)
	if err := e1.c.Ack(e1.next(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both accepted versions recorded", func() bool { return store.revision("tenant-a") == "5" && store.revision("tenant-b") == "6" })
	stop()

	// After it: tenant-a changed meanwhile; nothing of it was accepted by
	// this process, and every tenant waits for the edge.
	st := &statusLog{}
	s2 := New(Options{Status: st, Accepted: store})
	s2.Update(tenants.NewCatalog(tenants.Input{Revision: 9, Tenants: []*tenants.Tenant{slowTenant("tenant-a", 9001, 8, "3s"), b}}, nil))
	if err := s2.Ready(); err == nil {
		t.Fatal("ready before the accepted versions were loaded (Run loads them)")
	}
	conn2 := listen(t, s2)
	edge := open(ctx, t, conn2, edgeNode("e1"), true)
	bad := edge.next(t)
	if got := connectTimeout(t, bad, "tenant-a.svc"); got != 3*time.Second {
		t.Fatalf("tenant-a connect timeout %v after the restart, want its new 3s", got)
	}
	// An Envoy that names nothing: every tenant waiting is suspect.
	if err := edge.c.Nack(bad, "Error adding/updating cluster(s): something"); err != nil {
		t.Fatal(err)
	}
	fixed := edge.next(t)
	if len(fixed.Removed) > 0 {
		t.Errorf("the NACK removed %v", fixed.Removed)
	}
	if got := connectTimeout(t, fixed, "tenant-a.svc"); got != 2*time.Second {
		t.Errorf("tenant-a connect timeout %v after the NACK, want the persisted accepted version's 2s", got)
	}
	if _, resent := fixed.Resources["tenant-b.svc"]; resent {
		t.Error("tenant-b, whose accepted version is the one served, was resent")
	}
	for id, want := range map[string]string{"tenant-a": "5", "tenant-b": "6"} {
		if src := servedSrc(s2, edgeGroup, id); src == nil || src.Metadata.ResourceVersion != want {
			t.Errorf("edge serves %s at %v, want resourceVersion %s", id, src, want)
		}
	}
	for id, want := range map[string]string{"tenant-a": "resourceVersion 5", "tenant-b": "stays served"} {
		if rej := waitStatus(t, st, id, tenants.StateRejected); !strings.Contains(rej.Message, want) {
			t.Errorf("%s status %q lacks %q", id, rej.Message, want)
		}
	}
}
