#!/usr/bin/env bash
# The KV cache in fp16 against fp32 (fp32 compute both): KV bytes per position, sessions of a 1024-token context that
# fit a 4 GB budget after the weights, and decode tok/s at batch 1 and 16 after a 192-token prompt, one ONNX Runtime
# thread, on the synthetic ~100M Llama and on stories260K. Accuracy of the fp16 cache on stories260K is a test
# (tests/Strata.Engine.Tests/Engine/KvDtypeTests.cs), printed with --logger "console;verbosity=detailed".
# Results: .strata/bench-kv-*.json.
# Usage: loadtests/bench-kv.sh [threads=1]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-1}
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build loadtests/Strata.Benchmarks -c Release -nologo -v:q
strata=clients/Strata.Cli/bin/Release/net10.0/linux-x64/strata
bench=loadtests/Strata.Benchmarks/bin/Release/net10.0/linux-x64/Strata.Benchmarks
model=.strata/models/synthetic-100m
if [ ! -f "$model/config.json" ]; then "$strata" synth --preset 100m --out "$model"; fi
mkdir -p .strata
echo "== synthetic ~100M"
"$bench" kv --model "$model" --threads "$threads" --json .strata/bench-kv-100m.json
echo "== stories260K"
"$bench" kv --model models/stories260K --threads "$threads" --prompt-tokens 192 --budget-gb 0.05 --context 512 --json .strata/bench-kv-stories260k.json
