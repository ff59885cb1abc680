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
# backend's network namespace, so the app port is on 127.0.0.1).
gen envoy/edge.yaml --node-id edge-1 --role edge --xds-address tenantmesh:18000
gen envoy/sidecar-tenant-a.yaml --node-id sidecar-tenant-a-executive --role sidecar --tenant tenant-a --service executive --app-port 8080 --xds-address tenantmesh:18000
gen envoy/sidecar-tenant-b.yaml --node-id sidecar-tenant-b-executive --role sidecar --tenant tenant-b --service executive --app-port 8080 --xds-address tenantmesh:18000

# Kubernetes: the edge bootstrap, turned into a ConfigMap by kustomize. The
# node id is replaced per pod (envoy --service-node $(POD_NAME)).
gen kubernetes/edge-bootstrap.yaml --node-id tenantmesh-edge --role edge --xds-address tenantmesh.tenantmesh-system.svc.cluster.local:18000
