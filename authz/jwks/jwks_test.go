package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(t *testing.T, kid string, bits int) map[string]string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"kty": "RSA", "kid": kid, "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(t *testing.T, kid string, c elliptic.Curve, crv string) map[string]string {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	n := (c.Params().BitSize + 7) / 8
	return map[string]string{"kty": "EC", "kid": kid, "crv": crv, "x": enc(raw[1 : 1+n]), "y": enc(raw[1+n:])}
}

func setJSON(t *testing.T, keys ...map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseKeyTypes(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := ecJWK(t, "off", elliptic.P256(), "P-256")
	offCurve["y"] = offCurve["x"]
	set, err := Parse(setJSON(t,
		rsaJWK(t, "rsa", 2048),
		ecJWK(t, "p256", elliptic.P256(), "P-256"),
		ecJWK(t, "p384", elliptic.P384(), "P-384"),
		map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": enc(pub)},
		rsaJWK(t, "weak", 1024),                                         // skipped: too short
		offCurve,                                                        // skipped: not on the curve
		map[string]string{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}, // skipped: symmetric
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
	))
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 4 {
		t.Fatalf("%d usable keys, want 4", set.Len())
	}
	for kid, alg := range map[string]string{"rsa": "RS256", "p256": "ES256", "p384": "ES384", "ed": "EdDSA"} {
		ks, err := set.Keys(context.Background(), kid)
		if err != nil {
			t.Fatalf("%s: %v", kid, err)
		}
		if !ks[0].Fits(alg) {
			t.Errorf("%s does not fit %s", kid, alg)
		}
		for _, other := range []string{"HS256", "none", "ES512"} {
			if ks[0].Fits(other) {
				t.Errorf("%s fits %s", kid, other)
			}
		}
	}
	p256, _ := set.Keys(context.Background(), "p256")
	if p256[0].Fits("ES384") {
		t.Error("P-256 key fits ES384")
	}
	for _, kid := range []string{"weak", "off", "hmac", "enc"} {
		if _, err := set.Keys(context.Background(), kid); !errors.Is(err, ErrUnknownKID) {
			t.Errorf("%s: %v, want unknown", kid, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":   "{",
		"no keys":    `{"keys":[]}`,
		"only weak":  string(setJSON(t, rsaJWK(t, "w", 1024))),
		"dup kid":    string(setJSON(t, ecJWK(t, "x", elliptic.P256(), "P-256"), ecJWK(t, "x", elliptic.P256(), "P-256"))),
		"bad base64": `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"!!"}]}`,
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestJWKAlgPinsKey(t *testing.T) {
	j := rsaJWK(t, "k", 2048)
	j["alg"] = "PS256"
	set, err := Parse(setJSON(t, j))
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := set.Keys(context.Background(), "k")
	if ks[0].Fits("RS256") || !ks[0].Fits("PS256") {
		t.Error("a JWK's alg must restrict the key to that alg")
	}
}

type idp struct {
	*httptest.Server
	fetches atomic.Int64
	status  atomic.Int64
	body    atomic.Value
	delay   time.Duration
	cc      string
}

func newIDP(t *testing.T, body []byte) *idp {
	i := &idp{}
	i.status.Store(200)
	i.body.Store(body)
	i.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.fetches.Add(1)
		time.Sleep(i.delay)
		if i.cc != "" {
			w.Header().Set("Cache-Control", i.cc)
		}
		w.WriteHeader(int(i.status.Load()))
		if _, err := w.Write(i.body.Load().([]byte)); err != nil {
			t.Logf("write: %v", err)
		}
	}))
	t.Cleanup(i.Close)
	return i
}

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newRemote(t *testing.T, url string, o Options) *Remote {
	t.Helper()
	r := NewRemote(url, o)
	t.Cleanup(r.Close)
	return r
}

func waitFetches(t *testing.T, i *idp, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for i.fetches.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches, want %d", i.fetches.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Keys rotate in: an unknown kid refetches (once per window), concurrent
// misses share the fetch, and the new key is found.
func TestRemoteRotationAndSingleflight(t *testing.T) {
	old := setJSON(t, ecJWK(t, "k1", elliptic.P256(), "P-256"))
	i := newIDP(t, old)
	i.delay = 50 * time.Millisecond
	clk := &fakeClock{}
	clk.ns.Store(time.Now().UnixNano())
	r := newRemote(t, i.URL, Options{Now: clk.Now, RefetchInterval: 10 * time.Second})
	if _, err := r.Keys(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
	base := i.fetches.Load()
	i.body.Store(setJSON(t, ecJWK(t, "k1", elliptic.P256(), "P-256"), ecJWK(t, "k2", elliptic.P256(), "P-256")))

	// Inside the window since the first fetch: no fetch, unknown.
	if _, err := r.Keys(context.Background(), "k2"); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("inside window: %v", err)
	}
	if i.fetches.Load() != base {
		t.Fatal("fetched inside the refetch window")
	}
	clk.Advance(11 * time.Second)
	var wg sync.WaitGroup
	var found atomic.Int64
	for range 50 {
		wg.Go(func() {
			if _, err := r.Keys(context.Background(), "k2"); err == nil {
				found.Add(1)
			}
		})
	}
	wg.Wait()
	if got := i.fetches.Load() - base; got != 1 {
		t.Errorf("%d fetches for 50 concurrent misses, want 1", got)
	}
	if found.Load() != 50 {
		t.Errorf("%d of 50 found the rotated key", found.Load())
	}
}

// While the issuer is down the last good keys keep working; a set that
// never loaded reports ErrUnavailable.
func TestRemoteKeepsLastGoodKeys(t *testing.T) {
	i := newIDP(t, setJSON(t, ecJWK(t, "k1", elliptic.P256(), "P-256")))
	r := newRemote(t, i.URL, Options{RetryInterval: 10 * time.Millisecond, RefreshInterval: 20 * time.Millisecond, MinRefresh: time.Millisecond})
	if _, err := r.Keys(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
	i.status.Store(503)
	n := i.fetches.Load()
	waitFetches(t, i, n+3) // background refreshes keep failing
	if _, err := r.Keys(context.Background(), "k1"); err != nil {
		t.Errorf("last good key lost while the issuer is down: %v", err)
	}

	down := newIDP(t, []byte("nope"))
	down.status.Store(500)
	r2 := newRemote(t, down.URL, Options{})
	waitFetches(t, down, 1)
	if _, err := r2.Keys(context.Background(), "k1"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("never-loaded set: %v, want ErrUnavailable", err)
	}
}

func TestRemoteLimits(t *testing.T) {
	big := []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`)
	i := newIDP(t, big)
	var fetchErr atomic.Value
	r := newRemote(t, i.URL, Options{MaxBytes: 1 << 20, OnFetch: func(err error) {
		if err != nil {
			fetchErr.Store(err)
		}
	}})
	waitFetches(t, i, 1)
	if _, err := r.Keys(context.Background(), ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("oversized set: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for fetchErr.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e, _ := fetchErr.Load().(error); e == nil || !strings.Contains(e.Error(), "larger than") {
		t.Errorf("OnFetch error %v", e)
	}

	slow := newIDP(t, setJSON(t, ecJWK(t, "k1", elliptic.P256(), "P-256")))
	slow.delay = 300 * time.Millisecond
	r2 := newRemote(t, slow.URL, Options{FetchTimeout: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := r2.Keys(ctx, "k1"); err == nil {
		t.Error("a fetch slower than FetchTimeout succeeded")
	}
}

func TestMaxAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":                         0,
		"max-age=600":              10 * time.Minute,
		"public, Max-Age=\"120\"":  2 * time.Minute,
		"no-cache, max-age=-1":     0,
		"max-age=abc, max-age=100": 0,
		"s-maxage=5, max-age=60":   time.Minute,
	} {
		if got := maxAge(in); got != want {
			t.Errorf("maxAge(%q) = %v, want %v", in, got, want)
		}
	}
	for range 100 {
		if j := jitter(time.Minute); j < 54*time.Second || j > 66*time.Second {
			t.Fatalf("jitter %v outside ±10%%", j)
		}
	}
}

// Close does not wait for an issuer that hangs (it runs under the config
// update lock of the caller).
func TestCloseDoesNotWaitForHangingFetch(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	r := NewRemote(srv.URL, Options{FetchTimeout: time.Minute})
	time.Sleep(20 * time.Millisecond) // let the first fetch start
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked on a hanging fetch")
	}
}
