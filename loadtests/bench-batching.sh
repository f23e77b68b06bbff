#!/usr/bin/env bash
# Continuous batching, measured the way serving engines are: a synthetic ~100M fp32 Llama, 2 stages on 2 silo
# processes (one ONNX Runtime thread each), loopback, localhost clustering.
#   1. one closed-loop load-generator run per concurrency (1, 4, 16, 32) against a deployment with 32 KV slots;
#      then 16 and 32 again on silos started with --pipelining false (every waiting step in one batch, so the two
#      stages compute in turn), to show what running micro-batches through the pipeline buys; on both, TTFT of a
#      512-token prompt alone (a second deployment with room for it), sent in chunks at once or one after another;
#      and 16 and 32 on silos started with --hop-batching false (each step its own message between the stages);
#   2. KV budget: fresh silos, a deployment with 8 KV slots, 32 concurrent clients; failures and peak silo memory;
#   3. the engine alone: the whole model as one graph, batch 16 against batch 1, in one process.
# Results go to .strata/bench-batching/ (JSON per run) and a summary to stdout.
# Prompts are short (8 tokens) so that the figures are about decode batching, not prefill.
# Usage: loadtests/bench-batching.sh [requests-per-client=3] [max-new-tokens=128] [prompt-tokens=8]
set -euo pipefail
cd "$(dirname "$0")/.."
per_client=${1:-3}
new_tokens=${2:-128}
prompt_tokens=${3:-8}
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build silos/Strata.Silo -c Release -nologo -v:q
dotnet build loadtests/Strata.LoadTest -c Release -nologo -v:q
dotnet build loadtests/Strata.Benchmarks -c Release -nologo -v:q
bin=net10.0/linux-x64
strata=clients/Strata.Cli/bin/Release/$bin/strata
silo=silos/Strata.Silo/bin/Release/$bin/strata-silo
loadtest=loadtests/Strata.LoadTest/bin/Release/$bin/strata-loadtest
bench=loadtests/Strata.Benchmarks/bin/Release/$bin/Strata.Benchmarks
store=$PWD/.strata/store
out=.strata/bench-batching
mkdir -p "$out"
source loadtests/synthetic-100m.sh
synthetic_100m "$strata" "$store"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
stop_silos() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=(); }
trap stop_silos EXIT
start_silos() { # $1 = tag, then extra silo options
  primary=$(free_port); gateway=$(free_port)
  for i in 0 1; do
    port=$primary; gw=$gateway
    if [ "$i" = 1 ]; then port=$(free_port); gw=$(free_port); fi
    "$silo" --silo-port "$port" --gateway-port "$gw" --primary-port "$primary" --model-store "$store" --memory 8GB \
      --threads 1 --name "bench-$1-$i" "${@:2}" > "$out/silo-$1-$i.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 120); do grep -q "strata-silo ready" "$out/silo-$1-$i.log" && break; sleep 0.5; done
    grep -q "strata-silo ready" "$out/silo-$1-$i.log" || { echo "silo $i did not start; see $out/silo-$1-$i.log"; exit 1; }
  done
}
memory_mib() { for p in "${pids[@]}"; do awk -v k="$1:" '$1 == k {printf "%.0f ", $2/1024}' "/proc/$p/status"; done; }

echo "== throughput by concurrency (2 stages, 2 silos, 32 KV slots)"
start_silos tput
"$strata" cluster deploy --model synthetic-100m --name m --stages 2 --max-context 256 --max-sessions 32 --gateway-port "$gateway"
warm_up() { "$loadtest" --model m --gateway-port "$gateway" --concurrency 1 --requests 2 --prompt-tokens "$prompt_tokens" --max-new-tokens 32 > /dev/null; }
warm_up # the first requests pay for JIT and first-touch of the weights; the runs below do not
for c in 1 4 16 32; do
  "$loadtest" --model m --gateway-port "$gateway" --concurrency "$c" --requests $((c * per_client)) \
    --prompt-tokens "$prompt_tokens" --max-new-tokens "$new_tokens" --json "$out/concurrency-$c.json"
done
prefill_ttft() { # $1 = json name
  "$strata" cluster deploy --model synthetic-100m --name p --stages 2 --max-context 640 --max-sessions 2 --gateway-port "$gateway"
  "$loadtest" --model p --gateway-port "$gateway" --concurrency 1 --requests 6 --prompt-tokens 512 --max-new-tokens 2 --json "$out/$1.json"
}
prefill_ttft prefill-512
stop_silos

echo "== the same at 16 and 32 without pipelining (--pipelining false)"
start_silos single --pipelining false
"$strata" cluster deploy --model synthetic-100m --name m --stages 2 --max-context 256 --max-sessions 32 --gateway-port "$gateway"
warm_up
for c in 16 32; do
  "$loadtest" --model m --gateway-port "$gateway" --concurrency "$c" --requests $((c * per_client)) \
    --prompt-tokens "$prompt_tokens" --max-new-tokens "$new_tokens" --json "$out/single-batch-$c.json"
done
prefill_ttft prefill-512-serial
stop_silos

echo "== the same at 16 and 32 with every step sent alone between stages (--hop-batching false)"
start_silos nohop --hop-batching false
"$strata" cluster deploy --model synthetic-100m --name m --stages 2 --max-context 256 --max-sessions 32 --gateway-port "$gateway"
warm_up
for c in 16 32; do
  "$loadtest" --model m --gateway-port "$gateway" --concurrency "$c" --requests $((c * per_client)) \
    --prompt-tokens "$prompt_tokens" --max-new-tokens "$new_tokens" --json "$out/hop-single-$c.json"
done
stop_silos

echo "== KV budget: 8 slots, 32 concurrent clients"
start_silos budget
"$strata" cluster deploy --model synthetic-100m --name m8 --stages 2 --max-context 256 --max-sessions 8 --gateway-port "$gateway"
before=$(memory_mib VmRSS)
"$loadtest" --model m8 --gateway-port "$gateway" --concurrency 32 --requests 64 --prompt-tokens "$prompt_tokens" --max-new-tokens "$new_tokens" \
  --json "$out/budget-8.json"
{ echo "silo memory before the load (VmRSS, MiB): $before"
  echo "silo memory after the load (VmRSS, MiB): $(memory_mib VmRSS)"
  echo "peak silo memory (VmHWM, MiB, loading included): $(memory_mib VmHWM)"; } | tee "$out/budget-8-memory.txt"
stop_silos

echo "== engine alone (one graph, 1 thread): batch 16 vs batch 1"
"$bench" batch --model "$store/synthetic-100m" --batches 1,16 --threads 1 --steps 16 --rounds 5 --json "$out/engine-batch.json"

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
rows = []
for c in (1, 4, 16, 32):
    r = json.load(open(os.path.join(out, f"concurrency-{c}.json")))
    rows.append((c, r))
base = rows[0][1]["output_tokens_per_second"]
print("\nconcurrency  completed failed  out tok/s  vs c=1  TTFT p50/p90/p99 ms      TPOT p50/p90/p99 ms")
for c, r in rows:
    t, p = r["ttft_ms"], r["tpot_ms"]
    print(f"{c:11d}  {r['completed']:9d} {r['failed']:6d}  {r['output_tokens_per_second']:9.2f}  {r['output_tokens_per_second']/base:6.2f}"
          f"  {t['p50']:7.0f} {t['p90']:7.0f} {t['p99']:7.0f}  {p['p50']:7.1f} {p['p90']:7.1f} {p['p99']:7.1f}")
print("\nwithout pipelining (one decode batch of every waiting step per stage):")
for c, r in rows[2:]:
    o = json.load(open(os.path.join(out, f"single-batch-{c}.json")))
    print(f"  c={c}: {o['output_tokens_per_second']:.2f} tok/s (TPOT p50 {o['tpot_ms']['p50']:.1f} ms); pipelined: "
          f"{r['output_tokens_per_second']:.2f} tok/s (TPOT p50 {r['tpot_ms']['p50']:.1f} ms), x{r['output_tokens_per_second'] / o['output_tokens_per_second']:.2f}")
print("\nwith every step sent alone between stages (--hop-batching false):")
for c, r in rows[2:]:
    o = json.load(open(os.path.join(out, f"hop-single-{c}.json")))
    print(f"  c={c}: {o['output_tokens_per_second']:.2f} tok/s (TPOT p50 {o['tpot_ms']['p50']:.1f} ms); one message per run: "
          f"{r['output_tokens_per_second']:.2f} tok/s (TPOT p50 {r['tpot_ms']['p50']:.1f} ms), x{r['output_tokens_per_second'] / o['output_tokens_per_second']:.2f}")
pp, ps = (json.load(open(os.path.join(out, f"{n}.json")))["ttft_ms"] for n in ("prefill-512", "prefill-512-serial"))
print(f"TTFT of a 512-token prompt over 2 stages (p50/p99 ms): chunks at once {pp['p50']:.0f}/{pp['p99']:.0f}, "
      f"one after another {ps['p50']:.0f}/{ps['p99']:.0f}, x{ps['p50'] / pp['p50']:.2f}")
b = json.load(open(os.path.join(out, "budget-8.json")))
print(f"\nbudget 8 slots, 32 clients: completed {b['completed']}, failed {b['failed']}, {b['output_tokens_per_second']:.2f} tok/s, "
      f"TTFT p50 {b['ttft_ms']['p50']:.0f} ms p99 {b['ttft_ms']['p99']:.0f} ms")
print(open(os.path.join(out, "budget-8-memory.txt")).read().strip())
e = json.load(open(os.path.join(out, "engine-batch.json")))
e1, e16 = e["results"][0]["tokens_per_second"], e["results"][1]["tokens_per_second"]
c1, c16 = base, rows[2][1]["output_tokens_per_second"]
print(f"engine alone: batch 1 {e1:.2f} tok/s, batch 16 {e16:.2f} tok/s, ratio {e16 / e1:.2f}")
c32 = rows[3][1]["output_tokens_per_second"]
print(f"cluster c=16 / c=1: {c16 / c1:.2f}; cluster / engine: c=1 {c1 / e1:.2f}, c=16 {c16 / e16:.2f}, c=32 {c32 / e16:.2f} (against batch 16)")
tpot1 = rows[0][1]["tpot_ms"]["p50"]
print(f"decode alone at c=1 (TTFT and the gaps between requests left out): cluster TPOT p50 {tpot1:.1f} ms against the engine's "
      f"{1000 / e1:.1f} ms per token = {1000 / e1 / tpot1:.2f}")
PY
