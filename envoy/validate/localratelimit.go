package validate

import (
	"fmt"
	"strings"
	"time"

	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
)

func init() { registerAt(localRateLimit) }

// minFillInterval: "local rate limit token bucket fill timer must be >=
// 50ms" (LocalRateLimiterImpl, source/extensions/filters/common/
// local_ratelimit/local_ratelimit_impl.cc, in the timer-based releases).
const minFillInterval = 50 * time.Millisecond

// localRateLimit: the LocalRateLimiterImpl constructor refuses duplicate
// descriptors ("duplicate descriptor in the local rate descriptor") and,
// in the releases that refill by timer, a descriptor fill interval that is
// not a multiple of the default bucket's ("local rate descriptor limit is
// not a multiple of token bucket fill timer") or a fill interval under
// 50 ms. Newer releases dropped the last two; meeting them costs nothing.
//
// As a typed_per_filter_config entry it must have a token bucket
// (local_ratelimit.cc FilterConfig: "local rate limit token bucket must be
// set for per filter configs").
func localRateLimit(p *path, l *localratelimitv3.LocalRateLimit) []error {
	var errs []error
	if p.perFilterConfig() && l.GetTokenBucket() == nil {
		errs = append(errs, fmt.Errorf("local rate limit token bucket must be set for per filter configs"))
	}
	base := l.GetTokenBucket().GetFillInterval().AsDuration()
	if l.GetTokenBucket() != nil && base < minFillInterval {
		errs = append(errs, fmt.Errorf("token_bucket.fill_interval: %s is under Envoy's minimum of %s", base, minFillInterval))
	}
	seen := map[string]int{}
	for i, d := range l.GetDescriptors() {
		var key strings.Builder
		for _, e := range d.GetEntries() {
			fmt.Fprintf(&key, "%q=%q;", e.GetKey(), e.GetValue())
		}
		if j, dup := seen[key.String()]; dup {
			errs = append(errs, fmt.Errorf("descriptors[%d]: duplicate of descriptors[%d] (%s)", i, j, key.String()))
		}
		seen[key.String()] = i
		fi := d.GetTokenBucket().GetFillInterval().AsDuration()
		if base > 0 && fi%base != 0 {
			errs = append(errs, fmt.Errorf("descriptors[%d].token_bucket.fill_interval: %s is not a multiple of the token bucket's %s", i, fi, base))
		}
	}
	return errs
}
