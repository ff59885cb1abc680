package adsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Snapshot is what a node holds: type URL → resource name → resource.
type Snapshot map[string]map[string]proto.Message

// Apply merges an update into the snapshot. SotW responses of
// full-state types (listeners, clusters) replace the type; others and
// delta responses upsert.
func (s Snapshot) Apply(u *Update, fullState bool) error {
	m := s[u.TypeURL]
	if m == nil || fullState {
		m = map[string]proto.Message{}
		s[u.TypeURL] = m
	}
	for name, a := range u.Resources {
		msg, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("decode %s %s: %w", u.TypeURL, name, err)
		}
		m[name] = msg
	}
	for _, name := range u.Removed {
		delete(m, name)
	}
	return nil
}

// Fetch subscribes to every type as a wildcard, ACKs everything and
// returns what the node holds once each type answered and the stream has
// been quiet for `quiet`.
func Fetch(ctx context.Context, conn grpc.ClientConnInterface, node *corev3.Node, delta bool, types []string, quiet time.Duration) (Snapshot, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := Open(ctx, conn, node, delta)
	if err != nil {
		return nil, err
	}
	for _, t := range types {
		if err := c.Subscribe(t); err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", t, err)
		}
	}
	updates := make(chan *Update)
	errc := make(chan error, 1)
	go func() {
		for {
			u, err := c.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case updates <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	snap := Snapshot{}
	answered := map[string]bool{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return snap, fmt.Errorf("waiting for %d of %d types: %w", len(types)-len(answered), len(types), ctx.Err())
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				err = errors.New("server closed the stream")
			}
			return snap, fmt.Errorf("ADS stream: %w", err)
		case u := <-updates:
			if err := snap.Apply(u, !delta && FullState(u.TypeURL)); err != nil {
				return snap, err
			}
			if err := c.Ack(u); err != nil {
				return snap, fmt.Errorf("ack: %w", err)
			}
			answered[u.TypeURL] = true
			if len(answered) == len(types) {
				timer.Reset(quiet)
			}
		case <-timer.C:
			return snap, c.Close()
		}
	}
}

// FullState reports whether SotW responses of a type carry every resource
// (listeners and clusters) rather than only the changed ones.
func FullState(typeURL string) bool {
	return typeURL == "type.googleapis.com/envoy.config.listener.v3.Listener" ||
		typeURL == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
}
