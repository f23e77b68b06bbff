#!/usr/bin/env bash
# The measuring planner, predicted against measured: a synthetic ~100M fp32 Llama on 2 silo processes, localhost
# clustering, three deployments that differ in each silo's --threads (1,1 / 1,2 / 2,1). Each silo calibrates at
# start-up; the plan comes from a dry run (predicted step time per stage, and a step through every stage and hop);
# the deployment is then stepped at batch 1 straight through its shard chain, and each stage reports its compute.
# Results go to .strata/bench-planner/planner.json and a summary to stdout.
# Usage: loadtests/bench-planner.sh [deployments=1,1/1,2/2,1] [steps=48] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
deployments=${1:-1,1/1,2/2,1}
steps=${2:-48}
rounds=${3:-3}
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build silos/Strata.Silo -c Release -nologo -v:q
dotnet build loadtests/Strata.Benchmarks -c Release -nologo -v:q
bin=net10.0/linux-x64
strata=clients/Strata.Cli/bin/Release/$bin/strata
bench=loadtests/Strata.Benchmarks/bin/Release/$bin/Strata.Benchmarks
store=$PWD/.strata/store
out=.strata/bench-planner
mkdir -p "$out"
if [ ! -f "$store/synthetic-100m/strata-model.json" ]; then
  if [ ! -f .strata/models/synthetic-100m/config.json ]; then "$strata" synth --preset 100m --out .strata/models/synthetic-100m; fi
  "$strata" import .strata/models/synthetic-100m --out "$store/synthetic-100m"
fi

"$bench" planner --store "$store" --package synthetic-100m --silo silos/Strata.Silo/bin/Release/$bin/strata-silo.dll \
  --deployments "$deployments" --steps "$steps" --rounds "$rounds" --json "$out/planner.json" 2> "$out/silos.log"
echo "results: $out/planner.json (silo logs: $out/silos.log)"
