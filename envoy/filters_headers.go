package envoy

import (
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
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
var InternalHeaders = []string{"x-tenant-context", "x-tenant-tier"}

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
