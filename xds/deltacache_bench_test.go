package xds

import (
	"fmt"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// BenchmarkDeltaChange is one resource changed among 20,000 EDS resources
// with n delta streams subscribed to all of them, as many edge Envoys
// are: the update, every stream's response, and every stream's ACK (its
// next watch). deltaCache against go-control-plane's LinearCache:
//
//	go test -run='^$' -bench=DeltaChange -count=3 ./xds/
func BenchmarkDeltaChange(b *testing.B) {
	const resources = 20000
	names := make([]string, resources)
	initial := make(map[string]types.Resource, resources)
	for i := range names {
		names[i] = fmt.Sprintf("t%05d.api", i)
		initial[names[i]] = cla(names[i], 1)
	}
	type cache interface {
		deltaWatcher
		UpdateResources(map[string]types.Resource, []string) error
	}
	for _, impl := range []struct {
		name string
		make func() cache
	}{
		{"deltaCache", func() cache { return newDeltaCache(resourcev3.EndpointType, "1.") }},
		{"LinearCache", func() cache { return cachev3.NewLinearCache(resourcev3.EndpointType, cachev3.WithVersionPrefix("1.")) }},
	} {
		for _, n := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/streams=%d", impl.name, n), func(b *testing.B) {
				c := impl.make()
				if err := c.UpdateResources(initial, nil); err != nil {
					b.Fatal(err)
				}
				streams := make([]*deltaStream, n)
				for i := range streams {
					streams[i] = openDeltaStream(b, c, names, nil)
					streams[i].settle()
				}
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					name := names[(i*7919)%resources]
					if err := c.UpdateResources(map[string]types.Resource{name: cla(name, uint32(2+i))}, nil); err != nil {
						b.Fatal(err)
					}
					for _, s := range streams {
						if !s.step() {
							b.Fatal("a stream got no response for the change")
						}
					}
				}
			})
		}
	}
}
