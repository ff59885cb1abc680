package jwks

import (
	"context"
	"crypto/elliptic"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fetchErr starts a Remote on url and returns the error of its first fetch.
func fetchErr(t *testing.T, url string, o Options) error {
	t.Helper()
	errs := make(chan error, 1)
	o.OnFetch = func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	if o.FetchTimeout == 0 {
		o.FetchTimeout = 3 * time.Second
	}
	newRemote(t, url, o)
	select {
	case err := <-errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no fetch within 10s")
	}
	return nil
}

// A JWKS URI that redirects is not followed: the https-or-loopback rule
// was checked for the first address only, so following would let any
// address the control plane reaches serve trusted keys. The second
// loopback listener stands in for such an address. The client is the one
// the control plane passes (a Timeout, no Transport): the guard applies to
// it as well.
func TestRemoteRefusesRedirect(t *testing.T) {
	target := newIDP(t, setJSON(t, ecJWK(t, "k1", elliptic.P256(), "P-256")))
	var hops atomic.Int64
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		http.Redirect(w, r, target.URL+"/keys", http.StatusFound)
	}))
	t.Cleanup(redirector.Close)

	err := fetchErr(t, redirector.URL+"/jwks.json", Options{Client: &http.Client{Timeout: 5 * time.Second}})
	if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), target.URL+"/keys") {
		t.Fatalf("fetch error %v, want ErrRedirect naming the target", err)
	}
	if hops.Load() != 1 || target.fetches.Load() != 0 {
		t.Errorf("redirector hit %d times, target %d times; want 1 and 0", hops.Load(), target.fetches.Load())
	}
}

// Addresses no issuer can have are refused by the dialer's Control hook,
// after resolution and before connect(2): the test needs no network. On
// Linux 0.0.0.0 reaches the local host, so "0.0.0.0:port" of a live
// listener shows the fetch would otherwise succeed.
func TestRemoteRefusesAddresses(t *testing.T) {
	live := newIDP(t, setJSON(t, ecJWK(t, "k1", elliptic.P256(), "P-256")))
	_, port, err := net.SplitHostPort(strings.TrimPrefix(live.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"https://169.254.169.254/latest/meta-data/jwks",
		"https://[fd00:ec2::254]/jwks",
		"https://[::ffff:169.254.169.254]/jwks",
		"https://[fe80::1]:443/jwks",
		"https://224.0.0.1/jwks",
		"http://0.0.0.0:" + port + "/jwks",
		"http://[::]:" + port + "/jwks",
		// Plain http is for loopback only, re-checked on the address
		// connected to (TEST-NET-1, never routed).
		"http://192.0.2.1/jwks",
	} {
		t.Run(u, func(t *testing.T) {
			start := time.Now()
			err := fetchErr(t, u, Options{})
			if !errors.Is(err, ErrAddressRefused) {
				t.Fatalf("fetch error %v, want ErrAddressRefused", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusal took %v: the address was tried before being refused", d)
			}
		})
	}
	if live.fetches.Load() != 0 {
		t.Errorf("the live listener was reached %d times through 0.0.0.0/[::]", live.fetches.Load())
	}
	// Loopback stays allowed (the rule allows http:// there).
	if err := fetchErr(t, live.URL, Options{}); err != nil {
		t.Errorf("loopback fetch: %v", err)
	}
}

func TestAddressProblem(t *testing.T) {
	for addr, refused := range map[string]bool{
		"169.254.169.254":        true,
		"169.254.1.1":            true,
		"::ffff:169.254.169.254": true,
		"64:ff9b::a9fe:a9fe":     true, // NAT64 form of 169.254.169.254
		"fd00:ec2::254":          true,
		"100.100.100.200":        true,
		"fe80::1":                true,
		"0.0.0.0":                true,
		"0.1.2.3":                true,
		"::":                     true,
		"224.0.0.251":            true,
		"ff02::1":                true,
		"255.255.255.255":        true,
		"127.0.0.1":              false,
		"::1":                    false,
		"10.0.0.5":               false, // an on-premises IdP may live there
		"203.0.113.7":            false,
		"2001:db8::1":            false,
		"64:ff9b::cb00:7107":     false, // NAT64 form of 203.0.113.7
	} {
		if got := AddressProblem(netip.MustParseAddr(addr)) != ""; got != refused {
			t.Errorf("AddressProblem(%s) refuses=%v, want %v", addr, got, refused)
		}
	}
}

// A declared Content-Length above MaxBytes is refused before reading.
func TestRemoteRefusesDeclaredOversize(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5000")
		if _, err := w.Write([]byte(strings.Repeat(" ", 5000))); err != nil {
			t.Logf("write: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	err := fetchErr(t, srv.URL, Options{MaxBytes: 1000})
	if err == nil || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Fatalf("fetch error %v", err)
	}
	if _, err := newRemote(t, srv.URL, Options{MaxBytes: 1000}).Keys(context.Background(), ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Keys after an oversized set: %v", err)
	}
}
