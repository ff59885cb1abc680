#!/bin/sh
# Regenerates the Envoy bootstrap files of the compose demo and of the
# Kubernetes manifests with the tenantmesh CLI. The files are committed
# (compose and kustomize read them as they are); a test
# (cmd/tenantmesh/deploy_test.go) fails when one differs from what the
# line below would generate, so edit the flags here, never the files.
#
#   deploy/gen.sh            # from the repository root, or anywhere
#
# Each "gen FILE FLAGS..." line is also what that test runs.
set -eu
deploy="$(cd "$(dirname "$0")" && pwd)"
cd "$deploy/.."
tm="${TENANTMESH:-go run ./cmd/tenantmesh}"

gen() {
  out="$1"
  shift
  $tm envoy bootstrap "$@" --out "$deploy/$out"
  echo "gen.sh: wrote deploy/$out"
}

# docker compose: the edge, and one sidecar per demo backend (sharing the
# backend's network namespace, so the app port is on 127.0.0.1), each with
# its certificate from certs.sh (mutual TLS to xDS; the server's SAN checked
# is the host, tenantmesh); and envoyproxy/ratelimit's xDS client settings.
gen envoy/edge.yaml --node-id edge-1 --role edge --xds-address tenantmesh:18000 --xds-tls-ca /tls/edge-1/ca.crt --xds-tls-cert /tls/edge-1/tls.crt --xds-tls-key /tls/edge-1/tls.key
gen envoy/sidecar-tenant-a.yaml --node-id sidecar-tenant-a-executive --role sidecar --tenant tenant-a --service executive --app-port 8080 --xds-address tenantmesh:18000 --xds-tls-ca /tls/sidecar-tenant-a-executive/ca.crt --xds-tls-cert /tls/sidecar-tenant-a-executive/tls.crt --xds-tls-key /tls/sidecar-tenant-a-executive/tls.key
gen envoy/sidecar-tenant-b.yaml --node-id sidecar-tenant-b-executive --role sidecar --tenant tenant-b --service executive --app-port 8080 --xds-address tenantmesh:18000 --xds-tls-ca /tls/sidecar-tenant-b-executive/ca.crt --xds-tls-cert /tls/sidecar-tenant-b-executive/tls.crt --xds-tls-key /tls/sidecar-tenant-b-executive/tls.key
gen ratelimit.env --node-id ratelimit --role ratelimit --xds-address tenantmesh:18000 --xds-tls-ca /tls/ratelimit/ca.crt --xds-tls-cert /tls/ratelimit/tls.crt --xds-tls-key /tls/ratelimit/tls.key

# Kubernetes: the edge bootstrap, turned into a ConfigMap by kustomize. The
# node id is replaced per pod (envoy --service-node $(POD_NAME)); the
# certificate is the Secret tenantmesh-edge-xds-tls (certificates.yaml).
gen kubernetes/edge-bootstrap.yaml --node-id tenantmesh-edge --role edge --xds-address tenantmesh.tenantmesh-system.svc.cluster.local:18000 --xds-tls-ca /etc/tenantmesh/tls/ca.crt --xds-tls-cert /etc/tenantmesh/tls/tls.crt --xds-tls-key /etc/tenantmesh/tls/tls.key
