#!/usr/bin/env bash
# Builds the strata CLI and runs it. With no arguments it runs the main job on an embedded default:
# `strata demo` starts a local cluster of two silos in-process on loopback (no Redis), deploys the real tiny
# pretrained Llama that ships in models/stories260K across them, streams a story, and shuts down.
# `./run.sh gateway` serves the same model through the OpenAI API on http://127.0.0.1:8080 (embedded cluster,
# a development key and an example curl line printed; Ctrl+C stops).
# With other arguments it is simply `strata ARGS...`, e.g. ./run.sh generate --model DIR --prompt "Once upon a time"
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build clients/Strata.Cli -c Release -nologo -v:q >&2
strata=clients/Strata.Cli/bin/Release/net10.0/linux-x64/strata
if [ "${1-}" = gateway ] && [ $# -eq 1 ]; then exec "$strata" gateway --embedded models/stories260K; fi
if [ $# -gt 0 ]; then exec "$strata" "$@"; fi
exec "$strata" demo --model models/stories260K --prompt "Once upon a time" --max-new-tokens 96
