package authz

import (
	"encoding/json"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tenantmesh/tenantmesh/contract"
)

// overwrite builds a header that replaces whatever the client sent. Both
// fields are set on purpose: Envoy ignores append_action when append is
// set, and an unset append makes it use append_action, whose default
// (APPEND_IF_EXISTS_OR_ADD) would leave a forged value beside ours.
func overwrite(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		Append:       wrapperspb.Bool(false), //nolint:staticcheck // deprecated but honoured first by Envoy; see above
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// allowResponse is the OK answer: verified tenant headers overwrite the
// client's, the API key does not travel upstream, and the tenant/tier go
// to dynamic metadata for rate-limit descriptors and access logs.
// x-request-id is left alone so Envoy keeps it.
func allowResponse(t *tenantEntry, contextToken string) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				overwrite(HeaderTenantID, t.t.ID()),
				overwrite(HeaderTenantTier, t.t.Spec.Tier),
				overwrite(HeaderTenantContext, contextToken),
			},
			HeadersToRemove: []string{HeaderAPIKey},
		}},
		DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			contract.KeyTenantID: structpb.NewStringValue(t.t.ID()),
			contract.KeyTier:     structpb.NewStringValue(t.t.Spec.Tier),
		}},
	}
}

type errorBody struct {
	Error struct {
		Code    Reason `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// DenialReasonKey is the dynamic metadata key (namespace
// envoy.filters.http.ext_authz) under which every denial carries its
// reason. Envoy ingests a CheckResponse's dynamic_metadata for denials as
// for allows (ext_authz.cc, onComplete), so the edge's local reply mappers
// can tell this service's own 503 (not_ready) from an ext_authz failure
// (status_on_error 503), which has no CheckResponse: only the latter is
// rewritten.
const DenialReasonKey = contract.DenialReasonKey

// denyResponse answers a denial through the CheckResponse (never a gRPC
// error, which Envoy would treat per failure_mode_allow). The body is in
// the route tenant's language.
func denyResponse(reason Reason, locale string) *authv3.CheckResponse {
	var b errorBody
	b.Error.Code = reason
	b.Error.Message = message(locale, reason)
	body, err := json.Marshal(&b)
	if err != nil {
		// Marshalling two strings cannot fail; keep a valid body regardless.
		body = []byte(`{"error":{"code":` + strconv.Quote(string(reason)) + `,"message":""}}`)
	}
	status := reason.HTTPStatus()
	headers := []*corev3.HeaderValueOption{
		overwrite("content-type", "application/json"),
		overwrite("cache-control", "no-store"),
		overwrite(HeaderReason, string(reason)),
	}
	if status == 401 {
		headers = append(headers, overwrite("www-authenticate", reason.wwwAuthenticate()))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(reason.grpcCode()), Message: string(reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: headers,
			Body:    string(body),
		}},
		DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			DenialReasonKey: structpb.NewStringValue(string(reason)),
		}},
	}
}
