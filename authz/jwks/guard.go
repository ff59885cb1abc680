package jwks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Errors of the fetch guard. A key set fetched from an address the
// control plane can reach but the issuer does not own would be trusted
// like the issuer's own keys, so every fetch is held to these rules.
var (
	// ErrRedirect: the JWKS URI answered with a redirect. Redirects are
	// never followed: the https-or-loopback rule on jwksUri is checked
	// once, at apply, and a redirect would step around it.
	ErrRedirect = errors.New("jwks: redirects are not followed")
	// ErrAddressRefused: the URI resolved to an address no issuer can
	// have (link-local, cloud metadata, unspecified, multicast), or a
	// plain http:// URI resolved to an address that is not loopback.
	ErrAddressRefused = errors.New("jwks: address refused")
)

// metadataAddrs are the instance metadata services that do not sit in
// 169.254.0.0/16 (which is refused as a whole): AWS's IPv6 endpoint and
// Alibaba Cloud's. metadata.google.internal resolves to 169.254.169.254.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
)

// AddressProblem says why a key set must not be fetched from ip, "" when
// it may. It is checked on the resolved address at connect time, so a
// name that resolves (or is rebound) to such an address is refused too.
func AddressProblem(ip netip.Addr) string {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		// 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a NAT64 gateway.
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.IsUnspecified() || (ip.Is4() && thisNetwork.Contains(ip)):
		// Connecting to 0.0.0.0 reaches the local host on Linux.
		return "unspecified address"
	case ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "multicast or broadcast address"
	case ip.IsLinkLocalUnicast():
		return "link-local address (169.254.0.0/16, fe80::/10: cloud metadata services live there)"
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return "cloud metadata address"
		}
	}
	return ""
}

// plaintextKey marks the context of a fetch over plain http: its
// connection must go to a loopback address (the jwksUri rule, re-checked
// on the resolved address).
type plaintextKey struct{}

// control runs after the socket is created and before it connects.
func control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrAddressRefused, address, err)
	}
	if msg := AddressProblem(ap.Addr()); msg != "" {
		return fmt.Errorf("%w: %s is a %s", ErrAddressRefused, ap.Addr(), msg)
	}
	if plain, _ := ctx.Value(plaintextKey{}).(bool); plain && !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("%w: plain http:// to %s, which is not loopback (use https://)", ErrAddressRefused, ap.Addr())
	}
	return nil
}

// NewTransport is the transport key sets are fetched with when the
// client given in Options has none: its dialer refuses the addresses
// AddressProblem names, checked on the address actually connected to,
// and it uses no proxy (through a proxy the check would only see the
// proxy's address).
func NewTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, ControlContext: control}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// sharedTransport is used by every Remote whose client has no transport,
// so connections to one issuer are reused across its refreshes.
var sharedTransport = NewTransport()

// guardClient returns a copy of c that never follows a redirect and, when
// c has no transport of its own, dials through the guarded transport. A
// caller that brings its own Transport is trusted with the address rules.
func guardClient(c *http.Client) *http.Client {
	g := *c
	if g.Transport == nil {
		g.Transport = sharedTransport
	}
	g.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		return fmt.Errorf("%w: %s redirects to %s; set jwksUri to the final address",
			ErrRedirect, via[0].URL.Redacted(), req.URL.Redacted())
	}
	return &g
}

// fetchContext marks ctx for a plain http fetch of u.
func fetchContext(ctx context.Context, u string) (context.Context, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", u, err)
	}
	switch pu.Scheme {
	case "https":
		return ctx, nil
	case "http":
		return context.WithValue(ctx, plaintextKey{}, true), nil
	}
	return nil, fmt.Errorf("jwks %s: scheme %q is neither https nor http", u, pu.Scheme)
}
