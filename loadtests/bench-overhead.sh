#!/usr/bin/env bash
# What the OpenAI gateway, mutual TLS and tracing cost: the synthetic ~100M model over 2 stages on 2 silo processes
# (one ONNX Runtime thread each); three clusters side by side (plain, mutual TLS, tracing at 1% with OTLP/HTTP
# export to a sink), a gateway in the benchmark process over the plain one. At 1 and 16 streams, alternating rounds:
# Orleans client (plain), gateway HTTP streaming completions (plain), Orleans client (TLS), Orleans client (traced).
# Output tok/s and TTFT p50 of each; ratios against the plain Orleans client.
# Usage: loadtests/bench-overhead.sh [tokens=64] [rounds=3] [concurrency=1,16]
set -euo pipefail
cd "$(dirname "$0")/.."
tokens=${1:-64}; rounds=${2:-3}; concurrency=${3:-1,16}
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build silos/Strata.Silo -c Release -nologo -v:q
dotnet build loadtests/Strata.Benchmarks -c Release -nologo -v:q
strata=clients/Strata.Cli/bin/Release/net10.0/linux-x64/strata
store=.strata/store
source loadtests/synthetic-100m.sh
synthetic_100m "$strata" "$store"
mkdir -p .strata
loadtests/Strata.Benchmarks/bin/Release/net10.0/linux-x64/Strata.Benchmarks overhead --store "$store" --package synthetic-100m \
  --silo silos/Strata.Silo/bin/Release/net10.0/linux-x64/strata-silo.dll --silos 2 --stages 2 --tokens "$tokens" --rounds "$rounds" \
  --concurrency "$concurrency" --json .strata/bench-overhead.json
