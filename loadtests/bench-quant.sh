#!/usr/bin/env bash
# Decode tokens/s of fp32, int8, int4 and int4 with a quantized LM head (MatMulNBits) packages of the same weights,
# batch 1 and 16, one thread, with each package's weight bytes and the memory its stage takes at load (measured in a
# fresh process per package); on stories260K and a synthetic ~100M Llama.
# Usage: loadtests/bench-quant.sh [model-dir ...]   (default: models/stories260K and the "100m" preset under .strata/)
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build loadtests/Strata.Benchmarks -c Release -nologo -v:q
strata=clients/Strata.Cli/bin/Release/net10.0/linux-x64/strata
bench=loadtests/Strata.Benchmarks/bin/Release/net10.0/linux-x64/Strata.Benchmarks
synth=.strata/models/synthetic-100m
if [ $# -eq 0 ]; then
  if [ ! -f "$synth/config.json" ]; then "$strata" synth --preset 100m --out "$synth"; fi
  set -- models/stories260K "$synth"
fi
for model in "$@"; do
  name=$(basename "$model")
  echo "== $name"
  "$bench" quant --model "$model" --batches 1,16 --threads 1 --steps 16 --rounds 5 --work ".strata/bench-quant-$name" --json ".strata/bench-quant-$name.json"
done
