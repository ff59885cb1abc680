package envoy

import (
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/tenantmesh/tenantmesh/contract"
)

// InternalHeaderRegex matches every x-tenant-* header name except
// x-tenant-id. RE2 has no lookahead, so "anything but id" is spelled out:
// after "x-tenant-" comes nothing, or a first character other than i, or
// "i" alone, or i + a character other than d, or "id" + at least one more
// character. (?i) because header names are case-insensitive; Envoy
// lower-cases them anyway, the flag keeps the regex correct on its own.
const InternalHeaderRegex = `(?i)^x-tenant-(|[^i].*|i|i[^d].*|id.+)$`

// InternalHeaders are removed by name as well as by InternalHeaderRegex,
// so the two most sensitive ones stay removed even if somebody breaks the
// regex, and so a reader of the config sees them.
var InternalHeaders = []string{contract.HeaderTenantContext, contract.HeaderTenantTier}

// StripInternalHeaders is the HCM early header mutation that removes
// client-sent tenant headers before route selection and before any HTTP
// filter runs. x-tenant-id survives: ext_authz must see the claim to
// compare it with the credential (and overwrites it on allow).
func StripInternalHeaders() (*corev3.TypedExtensionConfig, error) {
	var muts []*mutationrulesv3.HeaderMutation
	for _, h := range InternalHeaders {
		muts = append(muts, &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Remove{Remove: h}})
	}
	muts = append(muts, &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_RemoveOnMatch_{
		RemoveOnMatch: &mutationrulesv3.HeaderMutation_RemoveOnMatch{KeyMatcher: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: InternalHeaderRegex}},
		}},
	}})
	return TypedExtension(EarlyHeaderMutation, &headermutationv3.HeaderMutation{Mutations: muts})
}

// VirtualHostKeyFormat is the value an edge selects its virtual host by
// (RouteConfiguration.vhost_header): the request path, "|", then the
// authority. One header thus carries both ways a tenant is addressed, and
// Envoy's domain wildcards pick the tenant from either end of it: a suffix
// wildcard "*|<host>" for its hosts, a prefix wildcard "/tenants/<id>/*"
// for its path mount (suffixes win over prefixes, exact over both).
const VirtualHostKeyFormat = "%REQ(:path)%|%REQ(:authority)%"

// SetVirtualHostKey is the early header mutation that writes
// VirtualHostKeyFormat into header, overwriting whatever the client sent
// under that name. It runs before route selection, like the strip.
func SetVirtualHostKey(header string) (*corev3.TypedExtensionConfig, error) {
	return TypedExtension(EarlyHeaderMutation, &headermutationv3.HeaderMutation{Mutations: []*mutationrulesv3.HeaderMutation{{
		Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: header, Value: VirtualHostKeyFormat},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}}})
}
