package authz

import (
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tenantmesh/tenantmesh/contract"
)

// Header names read or written by the service (Envoy lower-cases them).
// The tenant headers are package contract's, which the edge and sidecar
// configurations use too.
const (
	HeaderTenantID      = contract.HeaderTenantID
	HeaderTenantTier    = contract.HeaderTenantTier
	HeaderTenantContext = contract.HeaderTenantContext
	HeaderAPIKey        = contract.HeaderAPIKey
	HeaderReason        = contract.HeaderReason
	headerAuthorization = "authorization"
	headerRequestID     = "x-request-id"
	headerPartialBody   = "x-envoy-auth-partial-body"
)

// Context extension keys set by the xDS translation on every tenant route
// (ExtSharedService on a shared service route instead).
const (
	ExtTenantID      = contract.ExtTenantID
	ExtRoute         = contract.ExtRoute
	ExtSharedService = contract.ExtSharedService
)

// request is the part of a CheckRequest the decision reads.
type request struct {
	// sharedService is set on shared service routes (then routeTenant is
	// empty until resolveShared identifies the caller's tenant).
	sharedService string
	routeTenant   string
	route         string
	method        string
	bearer        string
	hasBearer     bool
	apiKey        string
	tenantHdr     string
	hasTenant     bool
	requestID     string
	bodyStr       string
	bodyRaw       []byte
	partialBody   bool
}

func readRequest(req *authv3.CheckRequest) *request {
	r := &request{}
	attrs := req.GetAttributes()
	ext := attrs.GetContextExtensions()
	r.routeTenant = ext[ExtTenantID]
	r.route = ext[ExtRoute]
	r.sharedService = ext[ExtSharedService]
	h := attrs.GetRequest().GetHttp()
	r.method = h.GetMethod()
	r.bodyStr = h.GetBody()
	r.bodyRaw = h.GetRawBody()
	headers := h.GetHeaders()
	if len(headers) == 0 && len(h.GetHeaderMap().GetHeaders()) > 0 {
		headers = flattenHeaderMap(h)
	}
	if v, ok := headers[headerAuthorization]; ok {
		if scheme, tok, found := strings.Cut(v, " "); found && strings.EqualFold(scheme, "Bearer") {
			r.bearer, r.hasBearer = strings.TrimSpace(tok), true
		}
	}
	r.apiKey = headers[HeaderAPIKey]
	r.tenantHdr, r.hasTenant = headers[HeaderTenantID]
	r.requestID = headers[headerRequestID]
	r.partialBody = headers[headerPartialBody] == "true"
	return r
}

// flattenHeaderMap turns the header_map form (Envoy's encode_raw_headers)
// into the map form, joining repeated headers with "," like Envoy does, so
// a repeated x-tenant-id can never match a single tenant id.
func flattenHeaderMap(h *authv3.AttributeContext_HttpRequest) map[string]string {
	out := make(map[string]string, len(h.GetHeaderMap().GetHeaders()))
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		k := strings.ToLower(hv.GetKey())
		v := hv.GetValue()
		if v == "" {
			v = string(hv.GetRawValue())
		}
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}

// body returns the request body from whichever field Envoy filled
// (raw_body with pack_as_bytes, body otherwise).
func (r *request) body() []byte {
	if len(r.bodyRaw) > 0 {
		return r.bodyRaw
	}
	return []byte(r.bodyStr)
}
