#!/bin/sh
# One-shot setup of the compose demo (service "init"): waits for etcd, then
# applies the MeshConfig with the dev token issuer and the demo tenants in
# one transaction. Safe to re-run: the issuer key is kept, apply is
# idempotent.
set -eu
issuer_key=/var/lib/tenantmesh/dev-issuer/issuer.pem
issuer_url=https://dev-issuer.tenantmesh.local

tries=0
until tenantmesh tenant list >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "init: etcd at $TENANTMESH_ETCD_ENDPOINTS did not answer within a minute" >&2
    exit 1
  fi
  sleep 1
done
# The audit signing key is created by the control plane when it starts.
tries=0
until [ -r "$TENANTMESH_AUDIT_KEY_FILE" ]; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "init: the control plane did not create $TENANTMESH_AUDIT_KEY_FILE within a minute" >&2
    exit 1
  fi
  sleep 1
done

# DEV ONLY: a local key that can mint tokens for any tenant.
tenantmesh token dev-issuer --out "$issuer_key" --issuer "$issuer_url" \
  --base /deploy/meshconfig.yaml > /tmp/meshconfig.yaml
tenantmesh --actor compose-init tenant apply -f /tmp/meshconfig.yaml -f /deploy/tenants/tenant-a.yaml -f /deploy/tenants/tenant-b.yaml
echo "init: done — see deploy/README.md for the requests to try"
