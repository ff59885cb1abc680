package validate

import (
	"fmt"
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// perRouteType maps an HTTP filter's config type to the type its
// typed_per_filter_config entries must have. Envoy's PerFilterConfigs
// (config_impl.cc) finds the filter factory by the Any's type and refuses
// one it has none for ("Didn't find a registered implementation for
// '<name>' with type URL: '<type>'"); the factory then builds the
// route-specific config from exactly this type.
var perRouteType = map[string]string{
	typeURL(&extauthzv3.ExtAuthz{}):             typeURL(&extauthzv3.ExtAuthzPerRoute{}),
	typeURL(&localratelimitv3.LocalRateLimit{}): typeURL(&localratelimitv3.LocalRateLimit{}),
	typeURL(&ratelimitv3.RateLimit{}):           typeURL(&ratelimitv3.RateLimitPerRoute{}),
	typeURL(&rbacv3.RBAC{}):                     typeURL(&rbacv3.RBACPerRoute{}),
	typeURL(&jwtauthnv3.JwtAuthentication{}):    typeURL(&jwtauthnv3.PerRouteConfig{}),
	typeURL(&headermutationv3.HeaderMutation{}): typeURL(&headermutationv3.HeaderMutationPerRoute{}),
	typeURL(&corsv3.Cors{}):                     typeURL(&corsv3.CorsPolicy{}),
}

var knownPerRoute = func() map[string]bool {
	m := map[string]bool{}
	for _, v := range perRouteType {
		m[v] = true
	}
	return m
}()

var localRateLimitType = typeURL(&localratelimitv3.LocalRateLimit{})

// filterConfigWrapper is envoy.config.route.v3.FilterConfig: a per-route
// config with is_optional / disabled, accepted for any filter.
var filterConfigWrapper = typeURL(&routev3.FilterConfig{})

// perFilterConfigs checks that every entry of a typed_per_filter_config is
// a route-specific config type some filter accepts. Which filter it is for
// (the key) is checked against the filter chain by Set.
func perFilterConfigs(path string, m map[string]*anypb.Any) []error {
	var errs []error
	for k, a := range m {
		if _, err := perRouteConfigType(a); err != nil {
			errs = append(errs, fmt.Errorf("%s[%q]: %w", path, k, err))
		}
	}
	return sorted(errs)
}

// perRouteConfigType is the route-specific config type an entry carries,
// looking through a FilterConfig wrapper ("" for a wrapper that only
// disables the filter).
func perRouteConfigType(a *anypb.Any) (string, error) {
	t := a.GetTypeUrl()
	if t == filterConfigWrapper {
		fc := &routev3.FilterConfig{}
		if err := proto.Unmarshal(a.GetValue(), fc); err != nil {
			return "", fmt.Errorf("decode FilterConfig: %w", err)
		}
		if fc.GetConfig() == nil {
			return "", nil
		}
		t = fc.GetConfig().GetTypeUrl()
	}
	if !knownPerRoute[t] {
		return "", fmt.Errorf("%s is not a route-specific config of any HTTP filter this control plane knows", t)
	}
	return t, nil
}

// sorted orders errors found by iterating a map, so messages are stable.
func sorted(errs []error) []error {
	if len(errs) > 1 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
