#!/bin/sh
# One-shot setup of the compose demo's certificates (service "certs"), DEV
# ONLY: a local CA (tenantmesh certs ca) and one certificate per identity,
# each in its own directory of the "tls" volume (tls.crt, tls.key, ca.crt).
# The CA is kept across runs; the leaves are re-issued on every run, so they
# never expire under a long-running demo (the control plane reloads its own
# within seconds; an Envoy picks up a new one when it restarts).
#
# Each directory is handed to the user id of the one container that reads
# it (keys are 0600): every container mounts the whole volume, and an Envoy
# of tenant-a must not be able to read tenant-b's key. The uids match
# ENVOY_UID and user: in docker-compose.yaml; cmd/tenantmesh/deploy_test.go
# checks that they do, and that the names below match the bootstraps.
set -eu

if [ ! -f /tls/ca/ca.key ]; then
  tenantmesh certs ca --out /tls/ca --trust-domain tenantmesh.local
fi

# A public copy of the CA certificate, for the sidecars' JWKS fetch
# (meshconfig.yaml spec.controlPlaneAdminTLS.caFile): the MeshConfig is
# fleet-wide, so every sidecar needs the CA at one path, readable by each
# sidecar's uid. /tls/ca is root's (0700: it holds the CA key), and the
# copy beside each identity's key is in a directory named for that
# identity, so none of those serves. Only the certificate: no key here.
# Written under a temporary name and renamed, so no reader sees half.
mkdir -p /tls/ca-public
cp /tls/ca/ca.crt /tls/ca-public/.ca.crt.tmp
chmod 0644 /tls/ca-public/.ca.crt.tmp
mv -f /tls/ca-public/.ca.crt.tmp /tls/ca-public/ca.crt
chmod 0755 /tls/ca-public

# The control plane (user 65532 of the distroless image), for xDS,
# ext_authz and the public admin listener (the sidecars' JWKS; they check
# the DNS name tenantmesh): every name the clients dial it by.
tenantmesh certs server --ca /tls/ca --out /tls/server --dns tenantmesh,localhost --ip 127.0.0.1
chown -R 65532:65532 /tls/server

# The edge: its xDS client, and its client certificate for ext_authz and
# ratelimit (meshconfig.yaml names these files).
tenantmesh certs edge edge-1 --ca /tls/ca --out /tls/edge-1
chown -R 101:101 /tls/edge-1

tenantmesh certs sidecar --tenant tenant-a --service executive --ca /tls/ca --out /tls/sidecar-tenant-a-executive
chown -R 1001:1001 /tls/sidecar-tenant-a-executive

tenantmesh certs sidecar --tenant tenant-b --service executive --ca /tls/ca --out /tls/sidecar-tenant-b-executive
chown -R 1002:1002 /tls/sidecar-tenant-b-executive

# ratelimit: its xDS client, and (--dns) the server of the edge's calls.
tenantmesh certs ratelimit ratelimit --ca /tls/ca --out /tls/ratelimit --dns ratelimit
chown -R 1003:1003 /tls/ratelimit

# The cli service's `xds dump` (user 65532 of the tools image), as an edge.
tenantmesh certs edge debug --ca /tls/ca --out /tls/cli
chown -R 65532:65532 /tls/cli

echo "certs: done"
