package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// ErrNoIdentity is returned by Peer when the stream's peer did not present
// a verified certificate with a SPIFFE ID (plaintext, TLS without a client
// certificate, or a certificate without a spiffe:// URI SAN).
var ErrNoIdentity = errors.New("peer has no verified SPIFFE identity")

// PeerIdentity returns the spiffe:// URI SAN of the verified client
// certificate of the gRPC stream or call ctx belongs to. ok is false on
// plaintext connections, without a client certificate, without a
// spiffe:// URI SAN, or with more than one (an X.509-SVID has exactly one;
// two would leave the choice to whoever issued the certificate).
//
// Only verified chains count: with tls.RequireAndVerifyClientCert the
// server's handshake has checked the chain against the client CA, and
// grpc-go's TLSInfo carries the result in State.VerifiedChains.
func PeerIdentity(ctx context.Context) (spiffeURI string, ok bool) {
	leaf := verifiedLeaf(ctx)
	if leaf == nil {
		return "", false
	}
	var found string
	for _, u := range leaf.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if found != "" {
			return "", false
		}
		found = u.String()
	}
	return found, found != ""
}

// Peer is PeerIdentity parsed with ParseSPIFFE.
func Peer(ctx context.Context) (ID, error) {
	uri, ok := PeerIdentity(ctx)
	if !ok {
		return ID{}, ErrNoIdentity
	}
	id, err := ParseSPIFFE(uri)
	if err != nil {
		return ID{}, fmt.Errorf("peer certificate: %w", err)
	}
	return id, nil
}

func verifiedLeaf(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0][0]
}
