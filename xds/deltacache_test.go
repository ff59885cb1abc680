package xds

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/protobuf/proto"
)

// deltaStream plays go-control-plane's delta server for one stream and
// one type (pkg/server/delta/v3 processDelta): the same Subscription
// type, SetReturnedResources on each response, UpdateResourceSubscriptions
// on each request, and the client's view built from the responses.
type deltaStream struct {
	t       testing.TB
	c       deltaWatcher
	typeURL string
	sub     stream.Subscription
	out     chan cachev3.DeltaResponse
	cancel  func()
	nonce   int
	held    map[string]string // what the client holds: name → version
	sent    int               // resources received over the stream's life
}

// deltaWatcher is the delta half of a cache: deltaCache or, to compare in
// benchmarks, go-control-plane's LinearCache.
type deltaWatcher interface {
	CreateDeltaWatch(*cachev3.DeltaRequest, cachev3.Subscription, chan cachev3.DeltaResponse) (func(), error)
}

func openDeltaStream(t testing.TB, c deltaWatcher, subscribe []string, initial map[string]string) *deltaStream {
	s := &deltaStream{t: t, c: c, typeURL: resourcev3.EndpointType, out: make(chan cachev3.DeltaResponse, 1), held: map[string]string{}}
	if dc, ok := c.(*deltaCache); ok {
		s.typeURL = dc.typeURL
	}
	for k, v := range initial {
		s.held[k] = v
	}
	s.sub = stream.NewDeltaSubscription(subscribe, nil, initial, true)
	s.watch(&discovery.DeltaDiscoveryRequest{TypeUrl: s.typeURL, ResourceNamesSubscribe: subscribe, InitialResourceVersions: initial})
	return s
}

func (s *deltaStream) watch(req *discovery.DeltaDiscoveryRequest) {
	s.t.Helper()
	cancel, err := s.c.CreateDeltaWatch(req, s.sub, s.out)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cancel = cancel
}

// step takes a pending response, if any, applies it as client and server
// would, and ACKs it (a new watch). It reports whether one was pending.
func (s *deltaStream) step() bool {
	s.t.Helper()
	select {
	case resp := <-s.out:
		msg, err := resp.GetDeltaDiscoveryResponse()
		if err != nil {
			s.t.Fatal(err)
		}
		for _, r := range msg.GetResources() {
			s.held[r.GetName()] = r.GetVersion()
			s.sent++
		}
		for _, name := range msg.GetRemovedResources() {
			delete(s.held, name)
		}
		s.sub.SetReturnedResources(resp.GetNextVersionMap())
		s.nonce++
		s.watch(&discovery.DeltaDiscoveryRequest{TypeUrl: s.typeURL, ResponseNonce: fmt.Sprint(s.nonce)})
		return true
	default:
		return false
	}
}

func (s *deltaStream) settle() {
	for s.step() {
	}
}

// change (un)subscribes as a client request does.
func (s *deltaStream) change(subscribe, unsubscribe []string) {
	s.t.Helper()
	s.settle()
	if s.cancel != nil {
		s.cancel()
	}
	s.sub.UpdateResourceSubscriptions(subscribe, unsubscribe)
	s.nonce++
	s.watch(&discovery.DeltaDiscoveryRequest{TypeUrl: s.typeURL, ResponseNonce: fmt.Sprint(s.nonce),
		ResourceNamesSubscribe: subscribe, ResourceNamesUnsubscribe: unsubscribe})
	s.settle()
}

func cla(name string, port uint32) types.Resource {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Hostname: fmt.Sprint(port)}}}}}}}
}

// truth is what a stream should hold: the cache's version of every
// resource it is interested in.
func truth(t *testing.T, c *deltaCache, wildcard bool, subscribed map[string]bool) map[string]string {
	t.Helper()
	want := map[string]string{}
	for name, e := range c.resources {
		if wildcard || subscribed[name] {
			want[name] = e.version
		}
	}
	return want
}

func sameView(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: client holds %d resources, cache has %d for it:\n got %v\nwant %v", what, len(got), len(want), sorted(keys(got)), sorted(keys(want)))
	}
	for name, v := range want {
		if got[name] != v {
			t.Fatalf("%s: %s: client holds version %q, cache %q", what, name, got[name], v)
		}
	}
}

func sorted(s []string) []string { sort.Strings(s); return s }

func TestDeltaCacheSendsOnlyWhatChanged(t *testing.T) {
	c := newDeltaCache(resourcev3.EndpointType, "1.")
	if err := c.UpdateResources(map[string]types.Resource{"a": cla("a", 1), "b": cla("b", 1), "c": cla("c", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	s := openDeltaStream(t, c, []string{"a", "b"}, nil)
	s.settle()
	sameView(t, "initial", s.held, truth(t, c, false, map[string]bool{"a": true, "b": true}))
	if s.sent != 2 {
		t.Fatalf("initial response carried %d resources, want 2 (a, b)", s.sent)
	}

	// A change the stream subscribes to, and one it does not.
	if err := c.UpdateResources(map[string]types.Resource{"a": cla("a", 2), "c": cla("c", 2)}, nil); err != nil {
		t.Fatal(err)
	}
	s.settle()
	if s.sent != 3 {
		t.Fatalf("after changing a and c: %d resources sent in all, want 3 (c is not subscribed)", s.sent)
	}
	sameView(t, "after a change", s.held, truth(t, c, false, map[string]bool{"a": true, "b": true}))

	// A change while no watch is open (between a response and its ACK)
	// must reach the next watch: the log, not a notification, carries it.
	if err := c.UpdateResources(map[string]types.Resource{"b": cla("b", 2)}, nil); err != nil {
		t.Fatal(err)
	}
	s.settle()
	s.cancel()
	if err := c.UpdateResources(map[string]types.Resource{"a": cla("a", 3)}, nil); err != nil {
		t.Fatal(err)
	}
	s.nonce++
	s.watch(&discovery.DeltaDiscoveryRequest{TypeUrl: c.typeURL, ResponseNonce: fmt.Sprint(s.nonce)})
	s.settle()
	sameView(t, "change between watches", s.held, truth(t, c, false, map[string]bool{"a": true, "b": true}))

	// Subscribing to c sends c at once; deleting b removes it.
	s.change([]string{"c"}, nil)
	if err := c.UpdateResources(nil, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	s.settle()
	sameView(t, "subscribe c, delete b", s.held, truth(t, c, false, map[string]bool{"a": true, "b": true, "c": true}))
	if _, ok := s.held["b"]; ok {
		t.Fatal("deleted b still held by the client")
	}
}

func TestDeltaCacheReconnectWithInitialVersions(t *testing.T) {
	c := newDeltaCache(resourcev3.EndpointType, "1.")
	if err := c.UpdateResources(map[string]types.Resource{"a": cla("a", 1), "b": cla("b", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	first := openDeltaStream(t, c, []string{"a", "b"}, nil)
	first.settle()
	if err := c.UpdateResources(map[string]types.Resource{"b": cla("b", 2)}, nil); err != nil {
		t.Fatal(err)
	}
	// Envoy reconnects holding what the first stream got before b changed:
	// only b is resent.
	again := openDeltaStream(t, c, []string{"a", "b"}, first.held)
	again.settle()
	if again.sent != 1 {
		t.Fatalf("reconnect resent %d resources, want 1 (b changed, a did not)", again.sent)
	}
	sameView(t, "reconnect", again.held, truth(t, c, false, map[string]bool{"a": true, "b": true}))

	// A map made by another cache (a group replaced) is not trusted.
	other := newDeltaCache(resourcev3.EndpointType, "1.")
	if err := other.UpdateResources(map[string]types.Resource{"a": cla("a", 9), "b": cla("b", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := other.UpdateResources(map[string]types.Resource{"b": cla("b", 2)}, nil); err != nil {
		t.Fatal(err)
	}
	again.settle()
	again.c = other
	again.change(nil, nil)
	sameView(t, "replaced cache", again.held, truth(t, other, false, map[string]bool{"a": true, "b": true}))
}

func TestDeltaCacheJoiningTheWildcardSendsEverything(t *testing.T) {
	c := newDeltaCache(resourcev3.ClusterType, "1.")
	if err := c.UpdateResources(map[string]types.Resource{"a": cla("a", 1), "b": cla("b", 1), "c": cla("c", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	s := openDeltaStream(t, c, []string{"a"}, nil)
	s.settle()
	s.change([]string{"*"}, nil)
	sameView(t, "after subscribing to *", s.held, truth(t, c, true, nil))
	if err := c.UpdateResources(map[string]types.Resource{"d": cla("d", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	s.settle()
	sameView(t, "a new resource for the wildcard", s.held, truth(t, c, true, nil))
}

func TestDeltaCacheWildcardFirstAnswerEvenIfEmpty(t *testing.T) {
	c := newDeltaCache(resourcev3.ClusterType, "1.")
	s := openDeltaStream(t, c, nil, nil)
	select {
	case resp := <-s.out:
		msg, err := resp.GetDeltaDiscoveryResponse()
		if err != nil || len(msg.GetResources()) != 0 {
			t.Fatalf("first wildcard answer: %v %v", msg, err)
		}
	default:
		t.Fatal("a wildcard subscription got no first answer from an empty cache")
	}
}

// TestDeltaCacheMatchesTheTruth drives random updates, deletes,
// (un)subscriptions, reconnects and watch gaps through several streams,
// with a log short enough to overflow, and checks after every step that
// each client holds exactly the cache's version of what it wants.
func TestDeltaCacheMatchesTheTruth(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { walkDeltaCache(t, seed) })
	}
}

func walkDeltaCache(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	c := newDeltaCache(resourcev3.EndpointType, "1.")
	c.maxLog = 7
	names := make([]string, 12)
	for i := range names {
		names[i] = fmt.Sprintf("r%02d", i)
	}
	type client struct {
		s          *deltaStream
		wildcard   bool
		subscribed map[string]bool
		stalled    cachev3.DeltaResponse // taken, not yet applied and ACKed
	}
	open := func(wildcard bool, initial map[string]string) *client {
		cl := &client{wildcard: wildcard, subscribed: map[string]bool{}}
		var sub []string
		if !wildcard {
			for _, n := range names[:4] {
				sub = append(sub, n)
				cl.subscribed[n] = true
			}
		}
		cl.s = openDeltaStream(t, c, sub, initial)
		return cl
	}
	clients := []*client{open(true, nil), open(false, nil), open(false, nil)}
	stalls := 0
	for step := 0; step < 3000; step++ {
		cl := clients[rng.IntN(len(clients))]
		switch op := rng.IntN(10); {
		case op < 4: // upsert a few
			up := map[string]types.Resource{}
			for range 1 + rng.IntN(3) {
				n := names[rng.IntN(len(names))]
				up[n] = cla(n, uint32(rng.IntN(5)))
			}
			if err := c.UpdateResources(up, nil); err != nil {
				t.Fatal(err)
			}
		case op < 5: // delete one
			if err := c.UpdateResources(nil, []string{names[rng.IntN(len(names))]}); err != nil {
				t.Fatal(err)
			}
		case cl.stalled != nil:
			// A stalled stream sends no request until it resumes.
			if op >= 8 {
				cl.s.out <- cl.stalled
				cl.stalled = nil
			}
		case op < 7 && !cl.wildcard: // (un)subscribe
			n := names[rng.IntN(len(names))]
			if cl.subscribed[n] {
				delete(cl.subscribed, n)
				cl.s.change(nil, []string{n})
				delete(cl.s.held, n) // Envoy forgets what it unsubscribed
			} else {
				cl.subscribed[n] = true
				cl.s.change([]string{n}, nil)
			}
		case op < 8: // a stall: the response is taken, not yet ACKed, and no
			// watch is open while changes pile up (past the log's length)
			n := names[rng.IntN(len(names))]
			if !cl.wildcard && !cl.subscribed[n] {
				cl.subscribed[n] = true
				cl.s.change([]string{n}, nil)
			}
			if err := c.UpdateResources(map[string]types.Resource{n: cla(n, uint32(5+step))}, nil); err != nil {
				t.Fatal(err)
			}
			cl.stalled = <-cl.s.out
			stalls++
		case op < 9 && (cl.wildcard || len(cl.subscribed) > 0): // reconnect with what it holds
			// (a client subscribed to nothing sends no request: no names
			// would mean the legacy wildcard)
			cl.s.settle()
			cl.s.cancel()
			var sub []string
			for n := range cl.subscribed {
				sub = append(sub, n)
			}
			sort.Strings(sub)
			held := cl.s.held
			cl.s = openDeltaStream(t, c, sub, held) // no names: legacy wildcard
		default:
			cl.s.step()
		}
		for i, cl := range clients {
			if cl.stalled != nil {
				continue
			}
			cl.s.settle()
			sameView(t, fmt.Sprintf("step %d, client %d", step, i), cl.s.held, truth(t, c, cl.wildcard, cl.subscribed))
		}
	}
	if stalls < 50 || c.complete < 100 {
		t.Fatalf("the walk did not exercise stalls past the log (%d stalls, log complete from seq %d)", stalls, c.complete)
	}
}

func TestDeltaResponseIsTheCachedMarshaling(t *testing.T) {
	c := newDeltaCache(resourcev3.EndpointType, "7.")
	r := cla("a", 1)
	if err := c.UpdateResources(map[string]types.Resource{"a": r}, nil); err != nil {
		t.Fatal(err)
	}
	s := openDeltaStream(t, c, []string{"a"}, nil)
	resp := <-s.out
	msg, err := resp.GetDeltaDiscoveryResponse()
	if err != nil {
		t.Fatal(err)
	}
	if msg.GetTypeUrl() != resourcev3.EndpointType || msg.GetSystemVersionInfo() != "7.1" || len(msg.GetResources()) != 1 {
		t.Fatalf("response: %v", msg)
	}
	got := &endpointv3.ClusterLoadAssignment{}
	if err := msg.GetResources()[0].GetResource().UnmarshalTo(got); err != nil || !proto.Equal(got, r) {
		t.Fatalf("resource does not round-trip: %v %v", got, err)
	}
	b, err := cachev3.MarshalResource(r)
	if err != nil {
		t.Fatal(err)
	}
	if v := msg.GetResources()[0].GetVersion(); v != cachev3.HashResource(b) {
		t.Fatalf("version %q is not LinearCache's hash (reconnecting clients would be resent everything)", v)
	}
}
