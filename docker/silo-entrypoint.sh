#!/bin/sh
# Starts strata-silo with --advertise set to this container's IP address, then the arguments given.
#
# With Redis clustering every silo writes the address it advertises into the membership table, and the other silos
# and the clients connect to exactly that address. Orleans needs an IP there (not a host name), and 127.0.0.1, the
# default, is only right on one machine. In a container the right address is the container's own IP on its network,
# which Docker writes into /etc/hosts under the container's host name: resolve that (like `hostname -i`).
# Set STRATA_ADVERTISE, or pass --advertise yourself, to choose another (e.g. the host's IP with host networking).
set -eu

for arg in "$@"; do
  case "$arg" in
    --advertise|--advertise=*) exec dotnet /app/strata-silo.dll "$@" ;;
  esac
done

ip="${STRATA_ADVERTISE:-}"
if [ -z "$ip" ]; then
  ip=$(getent ahostsv4 "$(uname -n)" | awk '$1 !~ /^127\./ { print $1; exit }')
fi
if [ -z "$ip" ] && command -v hostname >/dev/null 2>&1; then
  ip=$(hostname -i | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | grep -v '^127\.' | head -n 1 || true)
fi
if [ -z "$ip" ]; then
  echo "strata-silo: found no non-loopback IP address for host name $(uname -n); set STRATA_ADVERTISE or pass --advertise IP" >&2
  exit 2
fi
echo "strata-silo: advertising $ip"
# STRATA_METRICS_PORT: serve Prometheus metrics on that port at the same address.
if [ -n "${STRATA_METRICS_PORT:-}" ]; then
  set -- --metrics-port "$STRATA_METRICS_PORT" --metrics-host "$ip" "$@"
fi
exec dotnet /app/strata-silo.dll --advertise "$ip" "$@"
