package envoy

import (
	"fmt"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// accessLogFields is the JSON access log record. tenant_id and tier come
// from ext_authz's dynamic metadata, i.e. the tenant authz verified, not
// whatever the client claimed; they are empty when authz did not run or
// denied before resolving a tenant.
var accessLogFields = map[string]any{
	"start_time":            "%START_TIME%",
	"request_id":            "%REQ(X-REQUEST-ID)%",
	"tenant_id":             "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tenant_id)%",
	"tier":                  "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tier)%",
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

// StdoutJSONAccessLog writes one JSON object per request to stdout, where
// container runtimes collect it.
func StdoutJSONAccessLog() (*accesslogv3.AccessLog, error) {
	s, err := structpb.NewStruct(accessLogFields)
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
