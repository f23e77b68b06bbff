#!/usr/bin/env bash
# Decode tokens/s of a synthetic ~100M-parameter Llama: one graph (K=1) against four stages run back to back (K=4),
# batch 1, with one and with two ONNX Runtime threads, plus the memory-bandwidth ceiling.
# Usage: loadtests/bench-decode.sh [model-dir]   (default: synthesizes the "100m" preset under .strata/)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-.strata/models/synthetic-100m}
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build loadtests/Strata.Benchmarks -c Release -nologo -v:q
strata=clients/Strata.Cli/bin/Release/net10.0/linux-x64/strata
bench=loadtests/Strata.Benchmarks/bin/Release/net10.0/linux-x64/Strata.Benchmarks
if [ ! -f "$model/config.json" ]; then "$strata" synth --preset 100m --out "$model"; fi
for threads in 1 2; do
  echo "== $threads thread(s)"
  "$bench" decode --model "$model" --stages 1,4 --threads "$threads" --tokens 32 --rounds 5 --json ".strata/bench-decode-t$threads.json"
done
