#!/usr/bin/env bash
# Installs what the global rate limit tests need, idempotently:
#   - Redis from the OS packages (redis-server);
#   - envoyproxy/ratelimit, built from source with `go install` at a pinned
#     version into .tools/bin/ratelimit.
# Tests find both through PATH or .tools/bin (see internal/ratelimittest).
set -euo pipefail

RATELIMIT_VERSION="v1.4.1-0.20260122083618-3fb702589d36"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "install-ratelimit: installing redis-server from the OS packages"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

stamp="$bin/.ratelimit-$RATELIMIT_VERSION"
if [ ! -x "$bin/ratelimit" ] || [ ! -f "$stamp" ]; then
  echo "install-ratelimit: building envoyproxy/ratelimit $RATELIMIT_VERSION"
  tmp="$(mktemp -d)"
  # Outside the module so its dependencies do not touch our go.mod.
  (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/envoyproxy/ratelimit/src/service_cmd@$RATELIMIT_VERSION")
  mv "$tmp/service_cmd" "$bin/ratelimit"
  rm -rf "$tmp"
  rm -f "$bin"/.ratelimit-*
  touch "$stamp"
fi
echo "install-ratelimit: redis-server $(redis-server --version | awk '{print $3}'), ratelimit $RATELIMIT_VERSION"
