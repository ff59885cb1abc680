package validate

import (
	"fmt"
	"regexp"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

func init() {
	register(substitutionFormat)
}

// headerMutations applies HeaderParser::configure's rules
// (source/common/router/header_parser.cc): ":-prefixed or host headers may
// not be modified" / "... may not be removed"
// (Http::HeaderUtility::isModifiableHeader, isRemovableHeader), and every
// value added is a substitution format string that must parse.
func headerMutations(prefix string, add []*corev3.HeaderValueOption, remove []string) []error {
	var errs []error
	for i, o := range add {
		k := o.GetHeader().GetKey()
		if !modifiable(k) {
			errs = append(errs, fmt.Errorf("%sheaders_to_add[%d]: %q: :-prefixed or host headers may not be modified", prefix, i, k))
		}
		if err := Format(o.GetHeader().GetValue()); err != nil {
			errs = append(errs, fmt.Errorf("%sheaders_to_add[%d] (%s): %w", prefix, i, k, err))
		}
	}
	for i, k := range remove {
		if !modifiable(k) {
			errs = append(errs, fmt.Errorf("%sheaders_to_remove[%d]: %q: :-prefixed or host headers may not be removed", prefix, i, k))
		}
	}
	return errs
}

func modifiable(k string) bool {
	return k != "" && k[0] != ':' && !strings.EqualFold(k, "host")
}

// substitutionFormat checks every string an access log or local reply
// format holds (text, or each string value of a JSON format).
func substitutionFormat(f *corev3.SubstitutionFormatString) []error {
	var errs []error
	check := func(path, s string) {
		if err := Format(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	check("text_format", f.GetTextFormat())
	check("text_format_source", f.GetTextFormatSource().GetInlineString())
	var walk func(path string, v *structpb.Value)
	walk = func(path string, v *structpb.Value) {
		switch x := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			check(path, x.StringValue)
		case *structpb.Value_StructValue:
			for k, fv := range x.StructValue.GetFields() {
				walk(path+"."+k, fv)
			}
		case *structpb.Value_ListValue:
			for i, lv := range x.ListValue.GetValues() {
				walk(fmt.Sprintf("%s[%d]", path, i), lv)
			}
		}
	}
	for k, v := range f.GetJsonFormat().GetFields() {
		walk("json_format."+k, v)
	}
	return errs
}

// command is the shape SubstitutionFormatParser accepts at a '%'
// (source/common/formatter/substitution_formatter.cc: "Incorrect
// configuration: … Couldn't find valid command at position …"):
// %NAME%, %NAME(args)%, %NAME(args):LEN%.
var command = regexp.MustCompile(`^%([A-Z0-9_]+)(\([^)]*\))?(:[0-9]+)?%`)

// Format checks a substitution format string the way Envoy parses it: "%%"
// is a literal percent sign; any other '%' must open a command that Envoy
// knows ("Not supported field in StreamInfo: …" otherwise).
func Format(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			i++
			continue
		}
		m := command.FindStringSubmatch(s[i:])
		if m == nil {
			return fmt.Errorf("format %q: no valid command at position %d (write %%%% for a literal %%)", s, i)
		}
		if !formatCommands[m[1]] {
			return fmt.Errorf("format %q: %%%s%% is not a command this control plane knows Envoy to support", s, m[1])
		}
		if argCommands[m[1]] && m[2] == "" {
			return fmt.Errorf("format %q: %%%s%% needs an argument", s, m[1])
		}
		i += len(m[0]) - 1
	}
	return nil
}

// formatCommands are the format commands of Envoy's access log reference
// (docs/root/configuration/observability/access_log/usage.rst) that this
// gate accepts; a command outside the list is refused rather than risked.
var formatCommands = set(
	"START_TIME", "START_TIME_LOCAL", "EMIT_TIME", "REQUEST_HEADERS_BYTES", "RESPONSE_HEADERS_BYTES",
	"RESPONSE_TRAILERS_BYTES", "BYTES_RECEIVED", "BYTES_SENT", "PROTOCOL", "UPSTREAM_PROTOCOL",
	"RESPONSE_CODE", "RESPONSE_CODE_DETAILS", "CONNECTION_TERMINATION_DETAILS", "DURATION",
	"REQUEST_DURATION", "REQUEST_TX_DURATION", "RESPONSE_DURATION", "RESPONSE_TX_DURATION",
	"RESPONSE_FLAGS", "RESPONSE_FLAGS_LONG", "ROUTE_NAME", "VIRTUAL_CLUSTER_NAME", "UPSTREAM_HOST",
	"UPSTREAM_HOST_NAME", "UPSTREAM_CLUSTER", "UPSTREAM_CLUSTER_RAW", "UPSTREAM_LOCAL_ADDRESS",
	"UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", "UPSTREAM_LOCAL_PORT", "UPSTREAM_REMOTE_ADDRESS",
	"UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "UPSTREAM_REMOTE_PORT", "UPSTREAM_TRANSPORT_FAILURE_REASON",
	"UPSTREAM_REQUEST_ATTEMPT_COUNT", "DOWNSTREAM_REMOTE_ADDRESS", "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
	"DOWNSTREAM_REMOTE_PORT", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
	"DOWNSTREAM_LOCAL_ADDRESS", "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", "DOWNSTREAM_LOCAL_PORT",
	"DOWNSTREAM_TLS_VERSION", "DOWNSTREAM_PEER_URI_SAN", "DOWNSTREAM_PEER_SUBJECT", "DOWNSTREAM_PEER_FINGERPRINT_256",
	"REQUESTED_SERVER_NAME", "HOSTNAME", "LOCAL_REPLY_BODY", "FILTER_CHAIN_NAME", "CONNECTION_ID",
	"STREAM_ID", "UNIQUE_ID", "GRPC_STATUS", "GRPC_STATUS_NUMBER", "ACCESS_LOG_TYPE",
	"REQ", "RESP", "TRAILER", "REQ_WITHOUT_QUERY", "DYNAMIC_METADATA", "CLUSTER_METADATA",
	"UPSTREAM_METADATA", "ROUTE_METADATA", "FILTER_STATE", "UPSTREAM_FILTER_STATE", "ENVIRONMENT",
)

// argCommands take a mandatory (argument).
var argCommands = set("REQ", "RESP", "TRAILER", "REQ_WITHOUT_QUERY", "DYNAMIC_METADATA",
	"CLUSTER_METADATA", "UPSTREAM_METADATA", "ROUTE_METADATA", "FILTER_STATE", "UPSTREAM_FILTER_STATE", "ENVIRONMENT")

func set(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}
