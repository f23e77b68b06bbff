#!/usr/bin/env bash
# Faults under load, measured from the client's side: a synthetic ~100M fp32 Llama, 2 stages, Redis, 3 silo
# processes (one ONNX Runtime thread each), loopback; the load generator runs a closed loop of 8 clients with
# per-request chunk times.
#   1. kills: every INTERVAL seconds, kill -9 the silo of a stage (stage 1, then 0, ...), and start a fresh silo so
#      the cluster keeps 3; KILLS times. Stall = time from a kill to the next token of each stream that was running.
#   2. drain: a fresh cluster; `strata cluster drain` of the silo of stage 1 while the load runs. Reports the drain's
#      duration and the largest gap between tokens of the streams running meanwhile (also in decode steps).
# Results go to .strata/bench-faults/ (load generator JSON per phase, silo logs) and a summary to stdout.
# With replicas=2 every stage has a second shard, so a kill costs detection and replay only; with 1 the lost stage
# is re-planned onto a survivor and loads its weights first.
# Usage: loadtests/bench-faults.sh [kills=10] [interval-seconds=30] [replicas=2]
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-10}
interval=${2:-30}
replicas=${3:-2}
dotnet build clients/Strata.Cli -c Release -nologo -v:q
dotnet build silos/Strata.Silo -c Release -nologo -v:q
dotnet build loadtests/Strata.LoadTest -c Release -nologo -v:q
bin=net10.0/linux-x64
strata=clients/Strata.Cli/bin/Release/$bin/strata
silo=silos/Strata.Silo/bin/Release/$bin/strata-silo
loadtest=loadtests/Strata.LoadTest/bin/Release/$bin/strata-loadtest
store=$PWD/.strata/store
out=.strata/bench-faults
mkdir -p "$out"
rm -f "$out"/*.log
source loadtests/synthetic-100m.sh
synthetic_100m "$strata" "$store"
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)"; exit 1; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A silo_pid silo_port
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no > "$out/redis.log" 2>&1 &
pids+=($!)
redis="127.0.0.1:$redis_port"
cluster_id=bench-faults-$$
flags=(--redis "$redis" --cluster-id "$cluster_id")

start_silo() { # $1 = name
  local port gw
  port=$(free_port); gw=$(free_port)
  "$silo" "${flags[@]}" --silo-port "$port" --gateway-port "$gw" --model-store "$store" --memory 4GB --threads 1 \
    --name "$1" > "$out/$1.log" 2>&1 &
  silo_pid[$1]=$!; silo_port[$1]=$port; pids+=($!)
  for _ in $(seq 1 120); do grep -q "strata-silo ready" "$out/$1.log" && return 0; sleep 0.5; done
  echo "silo $1 did not start; see $out/$1.log"; exit 1
}
# The name of a live silo that holds a ready shard of stage $1 of model $2 (empty while none does: a replacement
# may still be loading after the last kill).
stage_silo() {
  "$strata" cluster status "${flags[@]}" --model "$2" --json 2>/dev/null |
    python3 -c "import json,sys; m=json.load(sys.stdin)['models'][0]; print(next((s['silo_name'] for s in m['stages'] if s['index']==$1 and s['state']=='ready' and s['silo_name']), ''))" || true
}
load() { # $1 = json path, $2 = requests
  "$loadtest" --model m "${flags[@]}" --concurrency 8 --requests "$2" --prompt-tokens 8 --max-new-tokens 64 \
    --timeout 300 --json "$1" --per-request
}

echo "== kills: $kills x kill -9 every ${interval}s under a closed loop of 8 clients, $replicas replica(s) per stage"
for n in 1 2 3; do start_silo "s$n"; done
next=4
"$strata" cluster deploy "${flags[@]}" --model synthetic-100m --name m --stages 2 --max-context 256 --max-sessions 16 --replicas "$replicas"
# Enough requests to outlast the kills (a 64-token request takes a client about 3-5 s here); the load ends by itself.
load "$out/kills.json" $(( 8 * (kills * interval / 4 + 3) )) > "$out/kills-load.log" 2>&1 &
load_pid=$!
sleep 10
: > "$out/kill-times.txt"
for k in $(seq 1 "$kills"); do
  victim=""
  for _ in $(seq 1 20); do
    victim=$(stage_silo $(( k % 2 )) m)
    if [ -n "$victim" ] && [ -n "${silo_pid[$victim]+set}" ]; then break; fi
    victim=""; sleep 1
  done
  if [ -z "$victim" ]; then echo "kill $k: no live silo holds a ready shard of stage $(( k % 2 )); skipped"; sleep "$interval"; continue; fi
  date +%s%3N >> "$out/kill-times.txt"
  kill -9 "${silo_pid[$victim]}"
  echo "kill $k: $victim (stage $(( k % 2 )))"
  start_silo "s$next"; next=$((next + 1))
  sleep "$interval"
done
wait "$load_pid"
cleanup; pids=()

echo "== drain: the silo of stage 1, under a closed loop of 8 clients"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no > "$out/redis-2.log" 2>&1 &
pids+=($!)
cluster_id=bench-drain-$$; flags=(--redis "$redis" --cluster-id "$cluster_id")
for n in d1 d2 d3; do start_silo "$n"; done
"$strata" cluster deploy "${flags[@]}" --model synthetic-100m --name m --stages 2 --max-context 256 --max-sessions 16
load "$out/drain.json" 96 > "$out/drain-load.log" 2>&1 &
load_pid=$!
sleep 15
victim=$(stage_silo 1 m)
start=$(date +%s%3N)
"$strata" cluster drain "$victim" "${flags[@]}"
end=$(date +%s%3N)
echo "$start $end" > "$out/drain-times.txt"
wait "$load_pid"

python3 - "$out" <<'EOF'
import json, statistics, sys
out = sys.argv[1]
def pct(xs, p):
    xs = sorted(xs)
    if not xs: return float("nan")
    h = (len(xs) - 1) * p / 100; lo = int(h); hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (h - lo)
def load(name):
    try: return json.load(open(f"{out}/{name}.json"))
    except FileNotFoundError: return None
kills = load("kills")
if kills:
    times = [float(t) for t in open(f"{out}/kill-times.txt").read().split()]
    stalls = []
    for t in times:
        for r in kills["requests"]:
            c = r["chunk_unix_ms"]
            after = [x for x in c if x >= t]
            if c and c[0] < t and after: stalls.append(after[0] - t)
    print(f"kills: {len(times)}, affected streams: {len(stalls)}, failed requests: {kills['failed']} of {kills['completed'] + kills['failed']}")
    print(f"stall after kill -9 (ms): p50 {pct(stalls, 50):.0f}, p99 {pct(stalls, 99):.0f}, max {max(stalls) if stalls else float('nan'):.0f}")
    print(f"output throughput under kills: {kills['output_tokens_per_second']:.1f} tok/s; max_itl_ms p50 {kills['max_itl_ms']['p50']:.0f} p99 {kills['max_itl_ms']['p99']:.0f}")
drain = load("drain")
if drain:
    start, end = (float(x) for x in open(f"{out}/drain-times.txt").read().split())
    step = drain["itl_ms"]["p50"]
    gaps = []
    for r in drain["requests"]:
        c = r["chunk_unix_ms"]
        g = [b - a for a, b in zip(c, c[1:]) if b >= start and a <= end]
        if g: gaps.append(max(g))
    # The same streams' largest gap in a window of the drain's length just before it: what the load itself costs
    # (prefills of new requests, a busy machine), so that the drain's own share shows.
    before = []
    for r in drain["requests"]:
        c = r["chunk_unix_ms"]
        g = [b - a for a, b in zip(c, c[1:]) if b >= 2 * start - end and a <= start]
        if g: before.append(max(g))
    print(f"drain: {end - start:.0f} ms; streams running meanwhile: {len(gaps)}; failed requests: {drain['failed']}")
    if gaps: print(f"largest gap during the drain: {max(gaps):.0f} ms = {max(gaps) / step:.1f} decode steps (ITL p50 {step:.1f} ms)")
    if before: print(f"largest gap in as long a window just before it (no drain): {max(before):.0f} ms = {max(before) / step:.1f} decode steps")
    # The moves themselves: each moved session's gap across the moment it switched routes (silo log, local time of
    # day, milliseconds), apart from the drain's other work (loading the replacement beside the load).
    import datetime, glob, re
    moves = {}
    for log in glob.glob(f"{out}/d*.log"):
        for line in open(log, errors="replace"):
            m = re.match(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) .*session load-[0-9a-f]+-(\d+): moving off a leaving shard", line)
            if m: moves[int(m.group(5))] = (int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))) * 1000 + int(m.group(4))
    def day_ms(unix_ms):
        t = datetime.datetime.fromtimestamp(unix_ms / 1000)
        return (t.hour * 3600 + t.minute * 60 + t.second) * 1000 + t.microsecond // 1000
    across = []
    for i, at in moves.items():
        c = drain["requests"][i]["chunk_unix_ms"]
        g = [b - a for a, b in zip(c, c[1:]) if day_ms(a) <= at <= day_ms(b)]
        if g: across.append(max(g))
    if across: print(f"moves: {len(moves)} sessions; largest gap across a move: {max(across):.0f} ms = {max(across) / step:.1f} decode steps (p50 {pct(across, 50):.0f} ms)")
EOF
