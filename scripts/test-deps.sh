#!/usr/bin/env bash
# Installs what `make test` needs beyond Go, idempotently. It runs before
# every `make test` (and so in CI), so each step must be quick when its
# dependency is already present.
#
# etcd runs embedded in the test processes. Steps for external services
# follow, one per dependency, each guarded by a check that it is already
# installed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v go >/dev/null 2>&1; then
  echo "test-deps: the Go toolchain is required (see go.mod for the version)" >&2
  exit 1
fi

# Fetch modules up front so a network problem shows here, not as a
# compile error in the middle of the test run.
go mod download

# The global rate limit integration test runs the real limiter:
# redis-server (OS packages) and envoyproxy/ratelimit (built at a pinned
# version into .tools/bin).
"$root/scripts/install-ratelimit.sh"
