# Sourced by the benchmark scripts: synthetic_100m STRATA STORE makes the synthetic ~100M fp32 Llama once
# (.strata/models/synthetic-100m) and imports it into STORE/synthetic-100m once.
synthetic_100m() {
  local strata=$1 store=$2
  if [ ! -f .strata/models/synthetic-100m/config.json ]; then "$strata" synth --preset 100m --out .strata/models/synthetic-100m; fi
  if [ ! -f "$store/synthetic-100m/strata-model.json" ]; then "$strata" import .strata/models/synthetic-100m --out "$store/synthetic-100m"; fi
}
