#!/usr/bin/env bash
# Single-session decode through the cluster (synthetic ~100M model, 4 stages on N silo processes, loopback,
# one ONNX Runtime thread per process) against the same 4 stages back to back in one process.
# Usage: loadtests/bench-cluster.sh [silos=2]
set -euo pipefail
cd "$(dirname "$0")/.."
silos=${1:-2}
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build silos/Strata.Silo -c Release -nologo -v:q
dotnet build loadtests/Strata.Benchmarks -c Release -nologo -v:q
strata=clients/Strata.Cli/bin/Release/net10.0/linux-x64/strata
store=.strata/store
source loadtests/synthetic-100m.sh
synthetic_100m "$strata" "$store"
loadtests/Strata.Benchmarks/bin/Release/net10.0/linux-x64/Strata.Benchmarks cluster --store "$store" --package synthetic-100m \
  --silo silos/Strata.Silo/bin/Release/net10.0/linux-x64/strata-silo.dll --silos "$silos" --stages 4 --tokens 32 --rounds 5 \
  --json ".strata/bench-cluster-$silos.json"
