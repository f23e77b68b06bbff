#!/usr/bin/env bash
# Where a decode step's time goes between the stages, from the traces: the synthetic ~100M fp32 model over 2 stages
# on 2 silo processes (one ONNX Runtime thread each, localhost clustering), every request traced and exported over
# OTLP/HTTP to a receiver in the benchmark process; one session at a time. Prints each part of a decode step (the
# session's call to stage 0, each stage's queue wait and compute, each forward and return) as mean and median ms.
# Usage: loadtests/bench-hops.sh [requests=4] [tokens=96] [stages=2]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-4}; tokens=${2:-96}; stages=${3:-2}
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build silos/Strata.Silo -c Release -nologo -v:q
dotnet build loadtests/Strata.Benchmarks -c Release -nologo -v:q
strata=clients/Strata.Cli/bin/Release/net10.0/linux-x64/strata
store=.strata/store
source loadtests/synthetic-100m.sh
synthetic_100m "$strata" "$store"
mkdir -p .strata
loadtests/Strata.Benchmarks/bin/Release/net10.0/linux-x64/Strata.Benchmarks hops --store "$store" --package synthetic-100m \
  --silo silos/Strata.Silo/bin/Release/net10.0/linux-x64/strata-silo.dll --stages "$stages" --requests "$requests" --tokens "$tokens" \
  --json .strata/bench-hops.json
