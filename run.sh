#!/usr/bin/env bash
# Builds the strata CLI and runs it. With no arguments it runs the main job on an embedded default:
# it synthesizes a small random-weight model under .strata/ (once) and generates text from it locally.
# With arguments it is simply `strata ARGS...`, e.g. ./run.sh generate --model DIR --prompt "Once upon a time"
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build clients/Strata.Cli -c Release -nologo -v:q >&2
strata=clients/Strata.Cli/bin/Release/net10.0/linux-x64/strata
if [ $# -gt 0 ]; then exec "$strata" "$@"; fi

model=.strata/models/synthetic-small
if [ ! -f "$model/config.json" ]; then "$strata" synth --preset small --out "$model" >&2; fi
exec "$strata" generate --model "$model" --prompt "Once upon a time" --max-new-tokens 32 --stages 2
