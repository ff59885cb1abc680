package envoy

import (
	"fmt"
	"maps"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/contract"
)

// accessLogFields is the JSON access log record but for tenant_id and tier,
// which each listener fills from where it really knows the tenant
// (StdoutJSONAccessLog, JWTAuthnAccessLog, FixedTenantAccessLog).
var accessLogFields = map[string]any{
	"start_time":            "%START_TIME%",
	"request_id":            "%REQ(X-REQUEST-ID)%",
	"route_name":            "%ROUTE_NAME%",
	"method":                "%REQ(:METHOD)%",
	"authority":             "%REQ(:AUTHORITY)%",
	"path":                  "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	"protocol":              "%PROTOCOL%",
	"response_code":         "%RESPONSE_CODE%",
	"response_code_details": "%RESPONSE_CODE_DETAILS%",
	"response_flags":        "%RESPONSE_FLAGS%",
	"duration_ms":           "%DURATION%",
	"bytes_received":        "%BYTES_RECEIVED%",
	"bytes_sent":            "%BYTES_SENT%",
	"upstream_cluster":      "%UPSTREAM_CLUSTER%",
	"upstream_host":         "%UPSTREAM_HOST%",
	"downstream_remote":     "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
	"user_agent":            "%REQ(USER-AGENT)%",
}

// The access log fields of the tenant have the names of its keys in
// ext_authz's allow metadata and in the x-tenant-context claims.
const (
	logKeyTenantID = contract.KeyTenantID
	logKeyTier     = contract.KeyTier
)

// DynamicMetadataCommand is the access log command reading the dynamic
// metadata value at namespace, then path: nested keys are colon separated,
// %DYNAMIC_METADATA(NAMESPACE:KEY*)% (Envoy's access log format docs,
// docs/root/configuration/observability/access_log/usage.rst).
func DynamicMetadataCommand(namespace string, path ...string) string {
	return "%DYNAMIC_METADATA(" + strings.Join(append([]string{namespace}, path...), ":") + ")%"
}

// StdoutJSONAccessLog is the edge's access log. tenant_id and tier come
// from ext_authz's dynamic metadata, i.e. the tenant authz verified, not
// whatever the client claimed; they are empty when authz did not run or
// denied before resolving a tenant.
func StdoutJSONAccessLog() (*accesslogv3.AccessLog, error) {
	return stdoutJSONAccessLog(DynamicMetadataCommand(contract.ExtAuthzNamespace, logKeyTenantID), DynamicMetadataCommand(contract.ExtAuthzNamespace, logKeyTier))
}

// JWTAuthnAccessLog is the access log of a listener whose tenant is the
// x-tenant-context token jwt_authn verified (a sidecar's inbound side,
// which runs no ext_authz). jwt_authn writes the verified payload under
// payloadNamespace in its own metadata namespace (payload_in_metadata,
// api/envoy/extensions/filters/http/jwt_authn/v3/config.proto), so the
// claims are one level deeper than ext_authz's keys. Empty when the
// request carried no valid token (exempt path, or denied).
func JWTAuthnAccessLog(payloadNamespace string) (*accesslogv3.AccessLog, error) {
	if payloadNamespace == "" {
		return nil, fmt.Errorf("access log: jwt_authn payload namespace is required")
	}
	return stdoutJSONAccessLog(DynamicMetadataCommand(JWTAuthnNamespace, payloadNamespace, logKeyTenantID),
		DynamicMetadataCommand(JWTAuthnNamespace, payloadNamespace, logKeyTier))
}

// FixedTenantAccessLog is the access log of a listener that belongs to one
// tenant by construction (a sidecar's outbound side, bound to the tenant
// workload's loopback): tenant_id and tier are written as given. A value
// with % would be read as a command, so it is refused.
func FixedTenantAccessLog(tenantID, tier string) (*accesslogv3.AccessLog, error) {
	if strings.Contains(tenantID+tier, "%") {
		return nil, fmt.Errorf("access log: tenant %q / tier %q must not contain %%", tenantID, tier)
	}
	return stdoutJSONAccessLog(tenantID, tier)
}

// stdoutJSONAccessLog writes one JSON object per request to stdout, where
// container runtimes collect it.
func stdoutJSONAccessLog(tenantID, tier string) (*accesslogv3.AccessLog, error) {
	fields := make(map[string]any, len(accessLogFields)+2)
	maps.Copy(fields, accessLogFields)
	fields[logKeyTenantID], fields[logKeyTier] = tenantID, tier
	s, err := structpb.NewStruct(fields)
	if err != nil {
		return nil, fmt.Errorf("access log format: %w", err)
	}
	cfg := &streamv3.StdoutAccessLog{AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{
		LogFormat: &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: s}},
	}}
	a, err := Any(cfg)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return &accesslogv3.AccessLog{Name: AccessLoggerStdout, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}}, nil
}
