package tenants

import (
	"encoding/json"
	"strings"
	"testing"
)

// baseTenant is a valid manifest using every field, so each case below
// breaks exactly one thing and must get exactly one error.
const baseTenant = `
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: tenant-a, labels: {team: payments}}
spec:
  displayName: Tenant A
  tier: enterprise
  status: active
  features: [advanced_analytics, custom-models]
  hosts: [tenant-a.api.example.com, "*.tenant-a.example.com"]
  pathPrefix: true
  auth:
    jwt:
      - issuer: https://idp.tenant-a.example
        audiences: [executive-api]
        jwksUri: https://idp.tenant-a.example/.well-known/jwks.json
        algorithms: [RS256, PS384, ES256, EdDSA]
        tenantClaim: tenant_id
        rolesClaim: https://tenant-a.example/roles
      - issuer: local-dev
        jwks: '{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}'
        algorithms: [ES256]
    apiKeys: true
  routes:
    - name: executive
      match: {pathPrefix: /api/executive/, methods: [GET, POST]}
      upstream: executive
      timeout: 15s
      retries: {attempts: 2, on: [5xx, reset, connect-failure], perTryTimeout: 5s}
      roles: [admin, user]
      features: [advanced_analytics]
      requestValidation:
        bodySchema:
          type: object
          required: [action]
          properties: {action: {$ref: "#/$defs/action"}}
          $defs: {action: {type: string}}
        maxBodyBytes: 65536
      requestHeaders: {set: {X-Debug: "0"}, remove: [x-internal]}
      responseHeaders: {set: {X-Tenant: tenant-a}}
      rateLimit: {local: {requests: 100, per: second, burst: 20}}
    - name: status
      match: {path: /status}
      upstream: analytics
  upstreams:
    - name: executive
      endpoints: [{address: 127.0.0.1, port: 18081, weight: 1}, {address: executive.tenant-a.svc, port: 8080}]
      lbPolicy: round_robin
      protocol: http2
      connectTimeout: 2s
      healthCheck: {http: {path: /healthz, host: tenant-a.api.example.com}, interval: 10s, timeout: 1s, unhealthyThreshold: 3, healthyThreshold: 2}
      circuitBreaker: {maxConnections: 1000, maxPendingRequests: 100, maxRequests: 500, maxRetries: 3}
      outlierDetection: {consecutive5xx: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
    - name: analytics
      endpoints: [{address: "::1", port: 18083}]
      healthCheck: {tcp: true}
  rateLimits:
    local: {requests: 500, per: second, burst: 50}
    global: [{requests: 1000, per: minute}, {requests: 100000, per: day}]
  maxConcurrentRequests: 200
  errors: {locale: de}
  isolation:
    namespace: tenant-a
    quota: {cpu: "4", memory: 8Gi, pods: "20", storage: 100Gi}
    dedicatedNodes: {node.example.com/pool: tenant-a}
`

func mustDecode[T Object](t *testing.T, doc string) T {
	t.Helper()
	o, err := DecodeObject([]byte(doc))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	v, ok := o.(T)
	if !ok {
		t.Fatalf("decoded %T", o)
	}
	return v
}

// validationCase breaks one rule and names the single error it must cause.
type validationCase[T Object] struct {
	name   string
	mutate func(T)
	path   Path
	reason string
}

func runValidationCases[T Object](t *testing.T, base string, tiers map[string]*Tier, cases []validationCase[T]) {
	t.Helper()
	if errs := Validate(mustDecode[T](t, base), tiers); len(errs) != 0 {
		t.Fatalf("base manifest must be valid:\n%v", errs)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := mustDecode[T](t, base)
			tc.mutate(o)
			errs := Validate(o, tiers)
			if tc.path == "" && tc.reason == "" {
				if len(errs) != 0 {
					t.Fatalf("want valid, got:\n%v", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("want exactly one error at %s (%q), got %d:\n%v", tc.path, tc.reason, len(errs), errs)
			}
			got := errs[0]
			if got.Path != tc.path || !strings.Contains(got.Cause, tc.reason) {
				t.Fatalf("got %s: %s\nwant %s: …%s…", got.Path, got.Cause, tc.path, tc.reason)
			}
			if got.Kind != o.GetTypeMeta().Kind || got.Name != o.GetMeta().Name {
				t.Errorf("error names %s %q, want the object", got.Kind, got.Name)
			}
		})
	}
}

func route0(t *Tenant) *Route       { return &t.Spec.Routes[0] }
func upstream0(t *Tenant) *Upstream { return &t.Spec.Upstreams[0] }
func issuer0(t *Tenant) *JWTIssuer  { return &t.Spec.Auth.JWT[0] }

func TestValidateTenant(t *testing.T) {
	type tc = validationCase[*Tenant]
	runValidationCases(t, baseTenant, nil, []tc{
		// metadata
		{"name empty", func(t *Tenant) { t.Metadata.Name = "" }, "metadata.name", "required"},
		{"name upper case", func(t *Tenant) { t.Metadata.Name = "Tenant-A" }, "metadata.name", "not a DNS label"},
		{"name underscore", func(t *Tenant) { t.Metadata.Name = "tenant_a" }, "metadata.name", "not a DNS label"},
		{"name leading dash", func(t *Tenant) { t.Metadata.Name = "-a" }, "metadata.name", "not a DNS label"},
		{"name 64 chars", func(t *Tenant) { t.Metadata.Name = strings.Repeat("a", 64) }, "metadata.name", "64 characters long"},
		{"name 63 chars", func(t *Tenant) { t.Metadata.Name = strings.Repeat("a", 63) }, "", ""},
		{"label control char", func(t *Tenant) { t.Metadata.Labels["team"] = "a\x00" }, `metadata.labels["team"]`, "printable"},
		// spec scalars
		{"displayName control char", func(t *Tenant) { t.Spec.DisplayName = "A\nB" }, "spec.displayName", "printable"},
		{"unknown tier", func(t *Tenant) { t.Spec.Tier = "gold" }, "spec.tier", `unknown tier "gold"`},
		{"tier unset", func(t *Tenant) { t.Spec.Tier = "" }, "", ""},
		{"built-in tier free", func(t *Tenant) { t.Spec.Tier = "free" }, "", ""},
		{"status", func(t *Tenant) { t.Spec.Status = "paused" }, "spec.status", `"paused" is not one of active, suspended`},
		{"suspended", func(t *Tenant) { t.Spec.Status = StatusSuspended }, "", ""},
		{"feature not identifier", func(t *Tenant) { t.Spec.Features[1] = "Custom Models" }, "spec.features[1]", "not an identifier"},
		{"feature twice", func(t *Tenant) { t.Spec.Features[1] = "advanced_analytics" }, "spec.features[1]", "listed twice"},
		{"maxConcurrentRequests negative", func(t *Tenant) { t.Spec.MaxConcurrentRequests = -1 }, "spec.maxConcurrentRequests", "must not be negative"},
		{"maxConcurrentRequests zero is tier default", func(t *Tenant) { t.Spec.MaxConcurrentRequests = 0 }, "", ""},
		{"locale", func(t *Tenant) { t.Spec.Errors.Locale = "es" }, "spec.errors.locale", `"es" is not one of en, de, fr`},
		{"locale fr", func(t *Tenant) { t.Spec.Errors.Locale = "fr" }, "", ""},
		// hosts
		{"host empty", func(t *Tenant) { t.Spec.Hosts[0] = "" }, "spec.hosts[0]", "must not be empty"},
		{"host upper case", func(t *Tenant) { t.Spec.Hosts[0] = "Tenant-A.api.example.com" }, "spec.hosts[0]", "lower case"},
		{"host with port", func(t *Tenant) { t.Spec.Hosts[0] = "tenant-a.api.example.com:8443" }, "spec.hosts[0]", "must not carry a port"},
		{"host with scheme", func(t *Tenant) { t.Spec.Hosts[0] = "https://tenant-a.example.com" }, "spec.hosts[0]", "without scheme"},
		{"host inner wildcard", func(t *Tenant) { t.Spec.Hosts[0] = "api.*.example.com" }, "spec.hosts[0]", "leftmost label"},
		{"host bare wildcard", func(t *Tenant) { t.Spec.Hosts[0] = "*" }, "spec.hosts[0]", "leftmost label"},
		{"host empty label", func(t *Tenant) { t.Spec.Hosts[0] = "a..example.com" }, "spec.hosts[0]", "empty label"},
		{"host trailing dot", func(t *Tenant) { t.Spec.Hosts[0] = "a.example.com." }, "spec.hosts[0]", "must not end with '.'"},
		{"host bad label", func(t *Tenant) { t.Spec.Hosts[0] = "-a.example.com" }, "spec.hosts[0]", `label "-a"`},
		{"host underscore", func(t *Tenant) { t.Spec.Hosts[0] = "a_b.example.com" }, "spec.hosts[0]", `label "a_b"`},
		{"host listed twice", func(t *Tenant) { t.Spec.Hosts[1] = t.Spec.Hosts[0] }, "spec.hosts[1]", "listed twice"},
		// auth.jwt
		{"issuer empty", func(t *Tenant) { issuer0(t).Issuer = " " }, "spec.auth.jwt[0].issuer", "required"},
		{"issuer twice", func(t *Tenant) { t.Spec.Auth.JWT[1].Issuer = issuer0(t).Issuer }, "spec.auth.jwt[1].issuer", "listed twice"},
		{"no keys", func(t *Tenant) { issuer0(t).JWKSURI = "" }, "spec.auth.jwt[0]", "exactly one of jwksUri and jwks"},
		{"both key sources", func(t *Tenant) { issuer0(t).JWKS = t.Spec.Auth.JWT[1].JWKS }, "spec.auth.jwt[0]", "not both"},
		{"jwksUri plain http", func(t *Tenant) { issuer0(t).JWKSURI = "http://idp.example/jwks" }, "spec.auth.jwt[0].jwksUri", "must use https://"},
		{"jwksUri http loopback", func(t *Tenant) { issuer0(t).JWKSURI = "http://127.0.0.1:8080/jwks" }, "", ""},
		{"jwksUri http localhost", func(t *Tenant) { issuer0(t).JWKSURI = "http://localhost/jwks" }, "", ""},
		{"jwksUri http ipv6 loopback", func(t *Tenant) { issuer0(t).JWKSURI = "http://[::1]:8080/jwks" }, "", ""},
		{"jwksUri relative", func(t *Tenant) { issuer0(t).JWKSURI = "/jwks.json" }, "spec.auth.jwt[0].jwksUri", "absolute https://"},
		{"jwksUri ftp", func(t *Tenant) { issuer0(t).JWKSURI = "ftp://idp.example/jwks" }, "spec.auth.jwt[0].jwksUri", "absolute https://"},
		{"jwksUri credentials", func(t *Tenant) { issuer0(t).JWKSURI = "https://u:p@idp.example/jwks" }, "spec.auth.jwt[0].jwksUri", "credentials"},
		{"jwks not json", func(t *Tenant) { t.Spec.Auth.JWT[1].JWKS = "keys" }, "spec.auth.jwt[1].jwks", "not a JSON Web Key Set"},
		{"jwks no keys", func(t *Tenant) { t.Spec.Auth.JWT[1].JWKS = `{"keys":[]}` }, "spec.auth.jwt[1].jwks", `"keys" array`},
		{"jwks keys missing", func(t *Tenant) { t.Spec.Auth.JWT[1].JWKS = `{}` }, "spec.auth.jwt[1].jwks", `"keys" array`},
		{"jwks key without kty", func(t *Tenant) { t.Spec.Auth.JWT[1].JWKS = `{"keys":[{"x":"y"}]}` }, "spec.auth.jwt[1].jwks", `"kty"`},
		{"jwks symmetric key", func(t *Tenant) { t.Spec.Auth.JWT[1].JWKS = `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}` }, "spec.auth.jwt[1].jwks", "symmetric"},
		{"jwks private key", func(t *Tenant) { t.Spec.Auth.JWT[1].JWKS = `{"keys":[{"kty":"EC","d":"secret"}]}` }, "spec.auth.jwt[1].jwks", "private key"},
		{"alg none", func(t *Tenant) { issuer0(t).Algorithms[0] = "none" }, "spec.auth.jwt[0].algorithms[0]", "never accepted"},
		{"alg HS256", func(t *Tenant) { issuer0(t).Algorithms[0] = "HS256" }, "spec.auth.jwt[0].algorithms[0]", "symmetric"},
		{"alg unknown", func(t *Tenant) { issuer0(t).Algorithms[0] = "RS1" }, "spec.auth.jwt[0].algorithms[0]", `unknown algorithm "RS1"`},
		{"alg lower case", func(t *Tenant) { issuer0(t).Algorithms[0] = "rs256" }, "spec.auth.jwt[0].algorithms[0]", "unknown algorithm"},
		{"alg twice", func(t *Tenant) { issuer0(t).Algorithms[1] = "RS256" }, "spec.auth.jwt[0].algorithms[1]", "listed twice"},
		{"audience empty", func(t *Tenant) { issuer0(t).Audiences[0] = "" }, "spec.auth.jwt[0].audiences[0]", "must not be empty"},
		{"tenantClaim blank", func(t *Tenant) { issuer0(t).TenantClaim = "  " }, "spec.auth.jwt[0].tenantClaim", "not a claim name"},
		{"rolesClaim with space", func(t *Tenant) { issuer0(t).RolesClaim = "my roles" }, "spec.auth.jwt[0].rolesClaim", "not a claim name"},
		// routes
		{"route name empty", func(t *Tenant) { route0(t).Name = "" }, "spec.routes[0].name", "required"},
		{"route name not a label", func(t *Tenant) { route0(t).Name = "Executive" }, "spec.routes[0].name", "not a DNS label"},
		{"route name twice", func(t *Tenant) { t.Spec.Routes[1].Name = "executive" }, "spec.routes[1].name", "used twice"},
		{"match neither", func(t *Tenant) { route0(t).Match.PathPrefix = "" }, "spec.routes[0].match", "exactly one of pathPrefix and path"},
		{"match both", func(t *Tenant) { route0(t).Match.Path = "/x" }, "spec.routes[0].match", "not both"},
		{"path without slash", func(t *Tenant) { route0(t).Match.PathPrefix = "api/" }, "spec.routes[0].match.pathPrefix", "must start with '/'"},
		{"path dot dot", func(t *Tenant) { route0(t).Match.PathPrefix = "/api/../admin/" }, "spec.routes[0].match.pathPrefix", "'..'"},
		{"path escaped slash", func(t *Tenant) { route0(t).Match.PathPrefix = "/api%2Fadmin" }, "spec.routes[0].match.pathPrefix", "escaped slash"},
		{"path escaped slash lower", func(t *Tenant) { route0(t).Match.PathPrefix = "/api%2fadmin" }, "spec.routes[0].match.pathPrefix", "escaped slash"},
		{"path double slash", func(t *Tenant) { route0(t).Match.PathPrefix = "/api//x" }, "spec.routes[0].match.pathPrefix", "'//'"},
		{"path query", func(t *Tenant) { route0(t).Match.PathPrefix = "/api?x=1" }, "spec.routes[0].match.pathPrefix", "query"},
		{"path space", func(t *Tenant) { route0(t).Match.PathPrefix = "/a b" }, "spec.routes[0].match.pathPrefix", "spaces"},
		{"exact path checked too", func(t *Tenant) { t.Spec.Routes[1].Match.Path = "status" }, "spec.routes[1].match.path", "must start with '/'"},
		{"method lower case", func(t *Tenant) { route0(t).Match.Methods[0] = "get" }, "spec.routes[0].match.methods[0]", "upper case (GET)"},
		{"method unknown", func(t *Tenant) { route0(t).Match.Methods[0] = "FETCH" }, "spec.routes[0].match.methods[0]", "not an HTTP method"},
		{"method twice", func(t *Tenant) { route0(t).Match.Methods[1] = "GET" }, "spec.routes[0].match.methods[1]", "listed twice"},
		{"upstream missing", func(t *Tenant) { route0(t).Upstream = "" }, "spec.routes[0].upstream", "required"},
		{"upstream unknown", func(t *Tenant) { t.Spec.Routes[1].Upstream = "billing" }, "spec.routes[1].upstream", `unknown upstream "billing"`},
		{"timeout no unit", func(t *Tenant) { route0(t).Timeout = "15" }, "spec.routes[0].timeout", "not a duration"},
		{"timeout zero", func(t *Tenant) { route0(t).Timeout = "0s" }, "spec.routes[0].timeout", "must be positive"},
		{"timeout negative", func(t *Tenant) { route0(t).Timeout = "-1s" }, "spec.routes[0].timeout", "must be positive"},
		{"retries too many", func(t *Tenant) { route0(t).Retries.Attempts = 11 }, "spec.routes[0].retries.attempts", "from 0 to 10"},
		{"retries negative", func(t *Tenant) { route0(t).Retries.Attempts = -1 }, "spec.routes[0].retries.attempts", "from 0 to 10"},
		{"retries ten", func(t *Tenant) { route0(t).Retries.Attempts = 10 }, "", ""},
		{"retry on unknown", func(t *Tenant) { route0(t).Retries.On[1] = "timeout" }, "spec.routes[0].retries.on[1]", `unknown retry condition "timeout"`},
		{"retry on twice", func(t *Tenant) { route0(t).Retries.On[1] = "5xx" }, "spec.routes[0].retries.on[1]", "listed twice"},
		{"retry on status codes", func(t *Tenant) { route0(t).Retries.On[1] = "retriable-status-codes" }, "", ""},
		{"perTryTimeout bad", func(t *Tenant) { route0(t).Retries.PerTryTimeout = "5 seconds" }, "spec.routes[0].retries.perTryTimeout", "not a duration"},
		{"role empty", func(t *Tenant) { route0(t).Roles[1] = "" }, "spec.routes[0].roles[1]", "non-empty role"},
		{"route feature", func(t *Tenant) { route0(t).Features[0] = "9lives" }, "spec.routes[0].features[0]", "not an identifier"},
		{"body schema missing", func(t *Tenant) { route0(t).RequestValidation.BodySchema = nil }, "spec.routes[0].requestValidation.bodySchema", "required"},
		{"body schema null", func(t *Tenant) { route0(t).RequestValidation.BodySchema = json.RawMessage("null") }, "spec.routes[0].requestValidation.bodySchema", "required"},
		{"body schema not object", func(t *Tenant) { route0(t).RequestValidation.BodySchema = json.RawMessage(`true`) }, "spec.routes[0].requestValidation.bodySchema", "must be a JSON Schema object"},
		{"body schema bad json", func(t *Tenant) { route0(t).RequestValidation.BodySchema = json.RawMessage(`{`) }, "spec.routes[0].requestValidation.bodySchema", "not valid JSON"},
		{"body schema does not compile", func(t *Tenant) { route0(t).RequestValidation.BodySchema = json.RawMessage(`{"type":5}`) }, "spec.routes[0].requestValidation.bodySchema", "invalid JSON Schema"},
		{"body schema bad pattern", func(t *Tenant) {
			route0(t).RequestValidation.BodySchema = json.RawMessage(`{"type":"string","pattern":"(["}`)
		}, "spec.routes[0].requestValidation.bodySchema", "invalid JSON Schema"},
		{"body schema dangling ref", func(t *Tenant) {
			route0(t).RequestValidation.BodySchema = json.RawMessage(`{"$ref":"#/$defs/missing"}`)
		}, "spec.routes[0].requestValidation.bodySchema", "invalid JSON Schema"},
		{"body schema file ref", func(t *Tenant) {
			route0(t).RequestValidation.BodySchema = json.RawMessage(`{"$ref":"file:///etc/passwd"}`)
		}, "spec.routes[0].requestValidation.bodySchema", "not allowed"},
		{"body schema remote ref", func(t *Tenant) {
			route0(t).RequestValidation.BodySchema = json.RawMessage(`{"$ref":"https://example.com/schema.json"}`)
		}, "spec.routes[0].requestValidation.bodySchema", "not allowed"},
		{"body schema draft-07", func(t *Tenant) {
			route0(t).RequestValidation.BodySchema = json.RawMessage(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`)
		}, "", ""},
		{"maxBodyBytes too big", func(t *Tenant) { route0(t).RequestValidation.MaxBodyBytes = 1<<20 + 1 }, "spec.routes[0].requestValidation.maxBodyBytes", "from 1 to 1048576"},
		{"maxBodyBytes 1MiB", func(t *Tenant) { route0(t).RequestValidation.MaxBodyBytes = 1 << 20 }, "", ""},
		{"maxBodyBytes negative", func(t *Tenant) { route0(t).RequestValidation.MaxBodyBytes = -1 }, "spec.routes[0].requestValidation.maxBodyBytes", "from 1 to"},
		// header mutations
		{"set x-tenant-id", func(t *Tenant) { route0(t).ResponseHeaders.Set["x-tenant-id"] = "b" }, `spec.routes[0].responseHeaders.set["x-tenant-id"]`, "set by tenantmesh only"},
		{"set X-Tenant-Tier", func(t *Tenant) { route0(t).RequestHeaders.Set["X-Tenant-Tier"] = "x" }, `spec.routes[0].requestHeaders.set["X-Tenant-Tier"]`, "set by tenantmesh only"},
		{"set pseudo header", func(t *Tenant) { route0(t).RequestHeaders.Set[":path"] = "/" }, `spec.routes[0].requestHeaders.set[":path"]`, "pseudo-headers"},
		{"set host", func(t *Tenant) { route0(t).RequestHeaders.Set["Host"] = "b.example.com" }, `spec.routes[0].requestHeaders.set["Host"]`, "host cannot be changed"},
		{"set bad name", func(t *Tenant) { route0(t).RequestHeaders.Set["x debug"] = "1" }, `spec.routes[0].requestHeaders.set["x debug"]`, "not a valid header name"},
		{"set value CRLF", func(t *Tenant) { route0(t).ResponseHeaders.Set["X-Tenant"] = "a\r\nSet-Cookie: x" }, `spec.routes[0].responseHeaders.set["X-Tenant"]`, "CR, LF"},
		{"set value control char", func(t *Tenant) { route0(t).ResponseHeaders.Set["X-Tenant"] = "a\x1bb" }, `spec.routes[0].responseHeaders.set["X-Tenant"]`, "control characters"},
		{"set value tab", func(t *Tenant) { route0(t).ResponseHeaders.Set["X-Tenant"] = "a\tb" }, "", ""},
		{"set twice by case", func(t *Tenant) { route0(t).ResponseHeaders.Set["x-tenant"] = "a" }, `spec.routes[0].responseHeaders.set["x-tenant"]`, "case-insensitive"},
		{"remove x-tenant-context", func(t *Tenant) { route0(t).RequestHeaders.Remove[0] = "x-tenant-context" }, "spec.routes[0].requestHeaders.remove[0]", "set by tenantmesh only"},
		{"remove what is set", func(t *Tenant) { route0(t).RequestHeaders.Remove[0] = "x-debug" }, "spec.routes[0].requestHeaders.remove[0]", "both set"},
		{"route rate limit", func(t *Tenant) { route0(t).RateLimit.Local.Requests = 0 }, "spec.routes[0].rateLimit.local.requests", "greater than 0"},
		// upstreams
		{"upstream name empty", func(t *Tenant) { t.Spec.Upstreams[1].Name = ""; t.Spec.Routes[1].Upstream = "executive" }, "spec.upstreams[1].name", "required"},
		{"upstream name twice", func(t *Tenant) { t.Spec.Upstreams[1].Name = "executive"; t.Spec.Routes[1].Upstream = "executive" }, "spec.upstreams[1].name", "used twice"},
		{"upstream name not a label", func(t *Tenant) { upstream0(t).Name = "Exec"; route0(t).Upstream = "Exec" }, "spec.upstreams[0].name", "not a DNS label"},
		{"no endpoints", func(t *Tenant) { upstream0(t).Endpoints = nil }, "spec.upstreams[0].endpoints", "at least one endpoint"},
		{"address empty", func(t *Tenant) { upstream0(t).Endpoints[1].Address = "" }, "spec.upstreams[0].endpoints[1].address", "required"},
		{"address with scheme", func(t *Tenant) { upstream0(t).Endpoints[1].Address = "http://exec" }, "spec.upstreams[0].endpoints[1].address", "without a scheme"},
		{"address with port", func(t *Tenant) { upstream0(t).Endpoints[1].Address = "exec:8080" }, "spec.upstreams[0].endpoints[1].address", "port field"},
		{"address bad name", func(t *Tenant) { upstream0(t).Endpoints[1].Address = "exec!" }, "spec.upstreams[0].endpoints[1].address", "not a host name or IP"},
		{"address compose name", func(t *Tenant) { upstream0(t).Endpoints[1].Address = "tenant_a_exec" }, "", ""},
		{"port zero", func(t *Tenant) { upstream0(t).Endpoints[0].Port = 0 }, "spec.upstreams[0].endpoints[0].port", "from 1 to 65535"},
		{"port too big", func(t *Tenant) { upstream0(t).Endpoints[0].Port = 65536 }, "spec.upstreams[0].endpoints[0].port", "from 1 to 65535"},
		{"weight too big", func(t *Tenant) { upstream0(t).Endpoints[0].Weight = 129 }, "spec.upstreams[0].endpoints[0].weight", "from 1 to 128"},
		{"weight negative", func(t *Tenant) { upstream0(t).Endpoints[0].Weight = -1 }, "spec.upstreams[0].endpoints[0].weight", "from 1 to 128"},
		{"weight 128", func(t *Tenant) { upstream0(t).Endpoints[0].Weight = 128 }, "", ""},
		{"lbPolicy", func(t *Tenant) { upstream0(t).LBPolicy = "fastest" }, "spec.upstreams[0].lbPolicy", `"fastest" is not one of round_robin`},
		{"lbPolicy maglev", func(t *Tenant) { upstream0(t).LBPolicy = LBMaglev }, "", ""},
		{"protocol", func(t *Tenant) { upstream0(t).Protocol = "http3" }, "spec.upstreams[0].protocol", `"http3" is not one of http1, http2, grpc`},
		{"connectTimeout", func(t *Tenant) { upstream0(t).ConnectTimeout = "soon" }, "spec.upstreams[0].connectTimeout", "not a duration"},
		{"health check neither", func(t *Tenant) { upstream0(t).HealthCheck.HTTP = nil }, "spec.upstreams[0].healthCheck", "exactly one of http, tcp and grpc"},
		{"health check both", func(t *Tenant) { upstream0(t).HealthCheck.TCP = true }, "spec.upstreams[0].healthCheck", "not several"},
		{"health check http and grpc", func(t *Tenant) {
			upstream0(t).Protocol = ProtocolGRPC
			upstream0(t).HealthCheck.GRPC = &GRPCHealthCheck{}
		}, "spec.upstreams[0].healthCheck", "not several"},
		{"grpc health check on http2", func(t *Tenant) {
			upstream0(t).HealthCheck.HTTP, upstream0(t).HealthCheck.GRPC = nil, &GRPCHealthCheck{}
		}, "spec.upstreams[0].healthCheck.grpc", "needs protocol grpc"},
		{"grpc health check", func(t *Tenant) {
			upstream0(t).Protocol = ProtocolGRPC
			upstream0(t).HealthCheck.HTTP, upstream0(t).HealthCheck.GRPC = nil, &GRPCHealthCheck{Service: "tenanta.v1.Executive"}
		}, "", ""},
		{"grpc health check service", func(t *Tenant) {
			upstream0(t).Protocol = ProtocolGRPC
			upstream0(t).HealthCheck.HTTP, upstream0(t).HealthCheck.GRPC = nil, &GRPCHealthCheck{Service: "a b"}
		}, "spec.upstreams[0].healthCheck.grpc.service", "gRPC service name"},
		{"http health check on grpc still valid", func(t *Tenant) { upstream0(t).Protocol = ProtocolGRPC }, "", ""},
		{"health check path", func(t *Tenant) { upstream0(t).HealthCheck.HTTP.Path = "healthz" }, "spec.upstreams[0].healthCheck.http.path", "must start with '/'"},
		{"health check host", func(t *Tenant) { upstream0(t).HealthCheck.HTTP.Host = "A.example.com" }, "spec.upstreams[0].healthCheck.http.host", "lower case"},
		{"health check interval", func(t *Tenant) { upstream0(t).HealthCheck.Interval = "0s" }, "spec.upstreams[0].healthCheck.interval", "must be positive"},
		{"health check timeout", func(t *Tenant) { upstream0(t).HealthCheck.Timeout = "1" }, "spec.upstreams[0].healthCheck.timeout", "not a duration"},
		{"unhealthyThreshold", func(t *Tenant) { upstream0(t).HealthCheck.UnhealthyThreshold = -1 }, "spec.upstreams[0].healthCheck.unhealthyThreshold", "must not be negative"},
		{"healthyThreshold", func(t *Tenant) { upstream0(t).HealthCheck.HealthyThreshold = -2 }, "spec.upstreams[0].healthCheck.healthyThreshold", "must not be negative"},
		{"maxConnections", func(t *Tenant) { upstream0(t).CircuitBreaker.MaxConnections = -1 }, "spec.upstreams[0].circuitBreaker.maxConnections", "must not be negative"},
		{"maxPendingRequests", func(t *Tenant) { upstream0(t).CircuitBreaker.MaxPendingRequests = -1 }, "spec.upstreams[0].circuitBreaker.maxPendingRequests", "must not be negative"},
		{"maxRequests", func(t *Tenant) { upstream0(t).CircuitBreaker.MaxRequests = -1 }, "spec.upstreams[0].circuitBreaker.maxRequests", "must not be negative"},
		{"maxRetries", func(t *Tenant) { upstream0(t).CircuitBreaker.MaxRetries = -1 }, "spec.upstreams[0].circuitBreaker.maxRetries", "must not be negative"},
		{"consecutive5xx", func(t *Tenant) { upstream0(t).OutlierDetection.Consecutive5xx = -1 }, "spec.upstreams[0].outlierDetection.consecutive5xx", "must not be negative"},
		{"outlier interval", func(t *Tenant) { upstream0(t).OutlierDetection.Interval = "-10s" }, "spec.upstreams[0].outlierDetection.interval", "must be positive"},
		{"baseEjectionTime", func(t *Tenant) { upstream0(t).OutlierDetection.BaseEjectionTime = "30" }, "spec.upstreams[0].outlierDetection.baseEjectionTime", "not a duration"},
		{"maxEjectionPercent", func(t *Tenant) { upstream0(t).OutlierDetection.MaxEjectionPercent = 101 }, "spec.upstreams[0].outlierDetection.maxEjectionPercent", "from 0 to 100"},
		// rate limits
		{"local requests zero", func(t *Tenant) { t.Spec.RateLimits.Local.Requests = 0 }, "spec.rateLimits.local.requests", "greater than 0"},
		{"local per unknown", func(t *Tenant) { t.Spec.RateLimits.Local.Per = "week" }, "spec.rateLimits.local.per", `"week" is not one of second, minute, hour, day`},
		{"local per missing", func(t *Tenant) { t.Spec.RateLimits.Local.Per = "" }, "spec.rateLimits.local.per", "required"},
		{"local burst negative", func(t *Tenant) { t.Spec.RateLimits.Local.Burst = -1 }, "spec.rateLimits.local.burst", "must not be negative"},
		{"global requests negative", func(t *Tenant) { t.Spec.RateLimits.Global[1].Requests = -5 }, "spec.rateLimits.global[1].requests", "greater than 0"},
		{"global per unknown", func(t *Tenant) { t.Spec.RateLimits.Global[1].Per = "month" }, "spec.rateLimits.global[1].per", `"month" is not one of`},
		{"global unit twice", func(t *Tenant) { t.Spec.RateLimits.Global[1].Per = UnitMinute }, "spec.rateLimits.global[1].per", "at most one entry per unit"},
		{"only local limit", func(t *Tenant) { t.Spec.RateLimits.Global = nil }, "", ""},
		// values that would not survive the stored form (found by FuzzDecode)
		{"C1 control in audience", func(t *Tenant) { issuer0(t).Audiences[0] = "api\u0080" }, "spec.auth.jwt[0].audiences[0]", "U+0080"},
		{"NEL in body schema", func(t *Tenant) {
			route0(t).RequestValidation.BodySchema = json.RawMessage("{\"description\":\"a\u0085b\"}")
		}, "spec.routes[0].requestValidation.bodySchema", "U+0085"},
		{"noncharacter in label key", func(t *Tenant) { t.Metadata.Labels["a\uffff"] = "x" }, `metadata.labels["a\uffff"]`, "U+FFFF"},
		{"DEL in jwks", func(t *Tenant) {
			t.Spec.Auth.JWT[1].JWKS = strings.Replace(t.Spec.Auth.JWT[1].JWKS, "P-256", "P-256\x7f", 1)
		}, "spec.auth.jwt[1].jwks", "U+007F"},
		{"escaped C0 controls are storable", func(t *Tenant) { issuer0(t).Audiences[0] = "a\x01b" }, "", ""},
		// isolation
		{"namespace", func(t *Tenant) { t.Spec.Isolation.Namespace = "Tenant_A" }, "spec.isolation.namespace", "not a DNS label"},
		{"quota resource", func(t *Tenant) { t.Spec.Isolation.Quota["gpu"] = "1" }, `spec.isolation.quota["gpu"]`, `unknown quota resource "gpu"`},
		{"quota quantity", func(t *Tenant) { t.Spec.Isolation.Quota["cpu"] = "two" }, `spec.isolation.quota["cpu"]`, "Kubernetes quantity"},
		{"quota millicores", func(t *Tenant) { t.Spec.Isolation.Quota["cpu"] = "500m" }, "", ""},
		{"node selector key", func(t *Tenant) { t.Spec.Isolation.DedicatedNodes["bad key"] = "x" }, `spec.isolation.dedicatedNodes["bad key"]`, "label key"},
		{"node selector value", func(t *Tenant) { t.Spec.Isolation.DedicatedNodes["pool"] = "a b" }, `spec.isolation.dedicatedNodes["pool"]`, "label value"},
	})
}

func TestValidateTenantKnowsGivenTiers(t *testing.T) {
	tn := mustDecode[*Tenant](t, baseTenant)
	tn.Spec.Tier = "gold"
	gold := &Tier{Metadata: ObjectMeta{Name: "gold"}}
	if errs := Validate(tn, map[string]*Tier{"gold": gold}); len(errs) != 0 {
		t.Fatalf("tier gold is given, want valid: %v", errs)
	}
	tn.Spec.Tier = "enterprise"
	if errs := Validate(tn, map[string]*Tier{"gold": gold}); len(errs) != 0 {
		t.Fatalf("built-in tiers stay known when tiers are given: %v", errs)
	}
}

// Every problem is reported in one pass, in document order.
func TestValidateReportsAllProblems(t *testing.T) {
	tn := mustDecode[*Tenant](t, baseTenant)
	tn.Metadata.Name = "Bad"
	tn.Spec.Routes[1].Upstream = "nope"
	tn.Spec.Upstreams[0].Endpoints[0].Port = 0
	tn.Spec.RateLimits.Local.Requests = -1
	errs := Validate(tn, nil)
	want := []Path{"metadata.name", "spec.routes[1].upstream", "spec.upstreams[0].endpoints[0].port", "spec.rateLimits.local.requests"}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, p := range want {
		if errs[i].Path != p {
			t.Errorf("error %d at %s, want %s", i, errs[i].Path, p)
		}
	}
}

func TestValidateMinimalTenant(t *testing.T) {
	tn := mustDecode[*Tenant](t, "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: t}\n")
	if errs := Validate(tn, nil); len(errs) != 0 {
		t.Fatalf("a tenant with only a name is valid (all defaults): %v", errs)
	}
}

func TestValidateRejectsForeignObjects(t *testing.T) {
	for _, o := range []Object{nil, (*Tenant)(nil), (*Tier)(nil), (*MeshConfig)(nil)} {
		errs := Validate(o, nil)
		if len(errs) != 1 || errs[0].Path != "kind" {
			t.Errorf("Validate(%T) = %v, want one error at kind", o, errs)
		}
	}
}

const baseTier = `
apiVersion: tenantmesh.io/v1alpha1
kind: Tier
metadata: {name: gold}
spec:
  rateLimits:
    local: {requests: 2000, per: second, burst: 400}
    global: [{requests: 100000, per: minute}]
  maxConcurrentRequests: 2000
  priority: high
`

func TestValidateTier(t *testing.T) {
	type tc = validationCase[*Tier]
	runValidationCases(t, baseTier, nil, []tc{
		{"name", func(t *Tier) { t.Metadata.Name = "Gold" }, "metadata.name", "not a DNS label"},
		{"local requests", func(t *Tier) { t.Spec.RateLimits.Local.Requests = 0 }, "spec.rateLimits.local.requests", "greater than 0"},
		{"local per", func(t *Tier) { t.Spec.RateLimits.Local.Per = "fortnight" }, "spec.rateLimits.local.per", "is not one of"},
		{"global requests", func(t *Tier) { t.Spec.RateLimits.Global[0].Requests = 0 }, "spec.rateLimits.global[0].requests", "greater than 0"},
		{"global per missing", func(t *Tier) { t.Spec.RateLimits.Global[0].Per = "" }, "spec.rateLimits.global[0].per", "required"},
		{"maxConcurrentRequests", func(t *Tier) { t.Spec.MaxConcurrentRequests = -1 }, "spec.maxConcurrentRequests", "must not be negative"},
		{"priority", func(t *Tier) { t.Spec.Priority = "urgent" }, "spec.priority", `"urgent" is not one of default, high`},
		{"no limits", func(t *Tier) { t.Spec.RateLimits = nil }, "", ""},
	})
}

const baseMesh = `
apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec:
  edgePort: 8080
  sidecarInboundPort: 15006
  sidecarOutboundPort: 15001
  jwt:
    - issuer: https://login.platform.example
      jwksUri: https://login.platform.example/jwks
      algorithms: [RS256]
  authz: {address: "authz.tenantmesh.svc:9191", timeout: 250ms}
  rateLimit: {address: "[::1]:8081", timeout: 100ms, failureModeDeny: true}
  controlPlaneAdmin: 127.0.0.1:9102
`

func TestValidateMeshConfig(t *testing.T) {
	type tc = validationCase[*MeshConfig]
	runValidationCases(t, baseMesh, nil, []tc{
		{"name", func(m *MeshConfig) { m.Metadata.Name = "mesh" }, "metadata.name", `must be named "default"`},
		{"edge port range", func(m *MeshConfig) { m.Spec.EdgePort = 70000 }, "spec.edgePort", "from 1 to 65535"},
		{"negative port", func(m *MeshConfig) { m.Spec.SidecarOutboundPort = -1 }, "spec.sidecarOutboundPort", "from 1 to 65535"},
		{"ports collide", func(m *MeshConfig) { m.Spec.SidecarOutboundPort = 8080 }, "spec.sidecarOutboundPort", "also the edgePort"},
		{"port collides with a default", func(m *MeshConfig) { m.Spec.SidecarInboundPort = 0; m.Spec.EdgePort = 15006 }, "spec.edgePort", "also the sidecarInboundPort"},
		{"defaults", func(m *MeshConfig) { m.Spec = MeshConfigSpec{} }, "", ""},
		{"platform issuer", func(m *MeshConfig) { m.Spec.JWT[0].Algorithms = []string{"HS512"} }, "spec.jwt[0].algorithms[0]", "symmetric"},
		{"platform issuer keys", func(m *MeshConfig) { m.Spec.JWT[0].JWKSURI = "http://login.platform.example/jwks" }, "spec.jwt[0].jwksUri", "https"},
		{"authz address no port", func(m *MeshConfig) { m.Spec.Authz.Address = "authz" }, "spec.authz.address", "not host:port"},
		{"authz address bad host", func(m *MeshConfig) { m.Spec.Authz.Address = "bad host:9191" }, "spec.authz.address", "not a host name"},
		{"authz timeout", func(m *MeshConfig) { m.Spec.Authz.Timeout = "0ms" }, "spec.authz.timeout", "must be positive"},
		{"ratelimit address port", func(m *MeshConfig) { m.Spec.RateLimit.Address = "127.0.0.1:http" }, "spec.rateLimit.address", "from 1 to 65535"},
		{"ratelimit timeout", func(m *MeshConfig) { m.Spec.RateLimit.Timeout = "100" }, "spec.rateLimit.timeout", "not a duration"},
		{"admin address", func(m *MeshConfig) { m.Spec.ControlPlaneAdmin = "127.0.0.1:0" }, "spec.controlPlaneAdmin", "from 1 to 65535"},
	})
}
