#!/usr/bin/env bash
# llama.cpp (LLamaSharp 0.30, CPU) beside Strata on the same weights, one thread: first llama.cpp must generate from
# Strata's F32/F16/Q8_0 GGUF files of stories260K exactly what Strata generates (the run fails otherwise); then decode
# tok/s at batch 1 and 16 on the synthetic ~100M model as F32, Q8_0 and Q4_0 GGUF files: llama.cpp on the file,
# Strata on the same file imported (fp32, int8, int4), interleaved rounds.
# Usage: loadtests/bench-llama-peer.sh [rounds=3] [steps=16] [threads=1]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; steps=${2:-16}; threads=${3:-1}
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build loadtests/Strata.Benchmarks -c Release -nologo -v:q
strata=clients/Strata.Cli/bin/Release/net10.0/linux-x64/strata
if [ ! -f .strata/models/synthetic-100m/config.json ]; then "$strata" synth --preset 100m --out .strata/models/synthetic-100m; fi
mkdir -p .strata
loadtests/Strata.Benchmarks/bin/Release/net10.0/linux-x64/Strata.Benchmarks llama-peer --model .strata/models/synthetic-100m \
  --agree models/stories260K --batches 1,16 --threads "$threads" --steps "$steps" --rounds "$rounds" --json .strata/bench-llama-peer.json
