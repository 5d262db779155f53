#!/usr/bin/env bash
# Instructions per request through the gateway, counted by callgrind (valgrind): the same count
# for the same binary and inputs whatever else the machine is doing, so an optimisation can be
# judged on a busy shared machine, where bench/vs-nginx.sh's seconds cannot. Instructions are
# not seconds (cache misses and syscalls' kernel time are not in them): the figures that count
# are vs-nginx.sh's, on a quiet machine; this says which way a change moves and where the
# instructions go.
#
#   bash bench/callgrind.sh                 # the rampart-log set-up, JSON requests
#   SETUP=shadow bash bench/callgrind.sh    # shadow at 100 %, pairs and features stored
#   STREAM=1 bash bench/callgrind.sh        # 20-chunk SSE answers
#   SECS=20 TOP=40 RAMPART_BIN=/path/to/rampart bash bench/callgrind.sh
#
# Counts everything the gateway process does while wrk sends requests for SECS seconds (the
# request path and the side work: the event writer, the controller's checks, shadow calls),
# after a warm-up, and prints the total per request and the functions with the most
# instructions of their own (the whole dump is kept in bench/out/). Needs the shared harness's mock upstream and wrk
# (../shared/bench/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-../shared/bench}
SETUP=${SETUP:-log}
SECS=${SECS:-10}
TOP=${TOP:-25}
STREAM=${STREAM:-0}
BIN=${RAMPART_BIN:-$PWD/target/release/rampart}
MOCK=${MOCK_BIN:-/tmp/llm-bench/target/release/mock-upstream}
WRK=${WRK_BIN:-$(command -v wrk || echo wrk)}
for f in "$BIN" "$MOCK" "$WRK"; do
  [ -x "$f" ] || { echo "missing $f (cargo build --release; $HARNESS/setup.sh)" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 2; }

WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_url() { for _ in $(seq 600); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer at $1" >&2; exit 1; }

for port in 18080 18081; do
  "$MOCK" --addr "127.0.0.1:$port" --delay-ms 0 --threads 1 >"$WORK/mock-$port.log" 2>&1 &
  pids+=($!)
done
cp "$HARNESS/conf/rampart-$SETUP.toml" "$WORK/gw.toml"
PORT=$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$WORK/gw.toml")
(cd "$WORK" && exec valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
   "$BIN" serve --config gw.toml >"$WORK/gw.log" 2>&1) &
GW=$!; pids+=($GW)
wait_url "http://127.0.0.1:$PORT/healthz"
# valgrind runs the gateway as its own pid (exec), which callgrind_control addresses.
VG=$(pgrep -f "callgrind-out-file=$WORK/cg.out" | head -1)

if [ "$STREAM" = 1 ]; then BODY=$HARNESS/payloads/chat-stream-keyed.json; else BODY=$HARNESS/payloads/chat-keyed.json; fi
URL="http://127.0.0.1:$PORT/v1/chat/completions"
load() { BENCH_BODY_FILE=$BODY "$WRK" -t1 -c8 -d"$1"s -s "$HARNESS/wrk/post.lua" "$URL" >"$WORK/wrk-$2.txt"; }
load 3 warm                                  # warm-up: pools, caches, the first store batches
callgrind_control -z "$VG" >/dev/null
load "$SECS" run
sleep 1                                      # the writer's last flush of these requests
callgrind_control -d "$VG" >/dev/null
DUMP=$(ls -t "$WORK"/cg.out.* | head -1)
JSON=$(sed -n 's/^BENCH_JSON //p' "$WORK/wrk-run.txt")
N=$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); bad=sum(v for k,v in j.items() if k.startswith("err_")); print(-1 if bad else j["requests"])' "$JSON")
[ "$N" -gt 0 ] || { echo "some requests failed:" >&2; cat "$WORK/wrk-run.txt" >&2; exit 1; }
TOTAL=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$DUMP")
[ -n "$TOTAL" ] || TOTAL=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$DUMP")
echo "setup=$SETUP stream=$STREAM requests=$N instructions/request=$((TOTAL / N))"
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
cp "$DUMP" "$OUT/callgrind-$SETUP-stream$STREAM.out"   # for callgrind_annotate --inclusive=yes, kcachegrind
callgrind_annotate --inclusive=no --threshold=100 "$DUMP" 2>/dev/null | sed -n '/^Ir /,$p' | head -n $((TOP + 2)) \
  | awk -v n="$N" 'NR<=2 {print; next} { ir=$1; gsub(",","",ir); printf "%10d/req  %s\n", ir/n, $0 }'
