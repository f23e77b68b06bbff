#!/usr/bin/env bash
# Runs every Strata test: builds the solution, starts what the tests need, runs all test projects,
# and prints one closing line "N passed, N failed, N skipped".
# Usage: ./test.sh [extra dotnet test arguments, e.g. --filter FullyQualifiedName~Tokenization]
set -euo pipefail
cd "$(dirname "$0")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The end-to-end tests (tests/Strata.EndToEnd.Tests) start their own redis-server on a free port and validate
# docker-compose.yml with Debian's docker-compose (v1). Install both when missing and this user may (root, or sudo
# without a password); otherwise say so: those tests are then reported as skipped, not failed. No Redis service is
# started here; if the package starts one on 6379 that is harmless, the tests never use fixed ports.
apt_updated=""
ensure_tool() { # ensure_tool COMMAND DEBIAN-PACKAGE WHAT-SKIPS
  command -v "$1" >/dev/null 2>&1 && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "note: $1 is not installed and installing $2 needs root: $3 will be skipped"; return 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then echo "note: $1 is not installed and there is no apt-get: $3 will be skipped"; return 0; fi
  echo "== installing $2 (for $3)"
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq >/dev/null && apt_updated=1 || true; fi
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; then
    echo "note: installing $2 failed: $3 will be skipped"
  fi
}
ensure_tool redis-server redis-server "the end-to-end cluster tests"
ensure_tool docker-compose docker-compose "the docker-compose.yml validation test"
ensure_tool npm npm "the openai npm client test"

# The official openai npm client for the gateway test (tests/node, versions pinned by its package-lock.json).
if command -v npm >/dev/null 2>&1; then
  echo "== npm ci (tests/node)"
  (cd tests/node && timeout 5m npm ci --no-audit --no-fund --silent) || echo "note: npm ci failed: the openai npm client test will be skipped"
fi

echo "== build"
timeout 20m dotnet build Cluster.sln -c Release -nologo -v:q

echo "== test"
set +e
timeout 45m dotnet test Cluster.sln -c Release --no-build -nologo \
  --blame-hang-timeout 10m --blame-hang-dump-type none "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# dotnet test prints one summary per test project:
#   Passed!  - Failed:     0, Passed:    12, Skipped:     0, Total:    12, Duration: ...
passed=0 failed=0 skipped=0
while IFS= read -r line; do
  p=$(sed -nE 's/.*Passed: *([0-9]+).*/\1/p' <<<"$line")
  f=$(sed -nE 's/.*Failed: *([0-9]+),.*/\1/p' <<<"$line")
  s=$(sed -nE 's/.*Skipped: *([0-9]+).*/\1/p' <<<"$line")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
done < <(grep -E '^(Passed|Failed)! +- Failed:' "$log" || true)

echo "$passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then exit 1; fi
if [ "$passed" -eq 0 ]; then echo "no test ran" >&2; exit 1; fi
