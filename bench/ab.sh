#!/usr/bin/env bash
# Two rampart binaries back to back: the same set-up, interleaved runs, the CPU each spends a
# request (user and system time of its process from /proc, all threads), so a change can be
# judged against its baseline in the same minutes, where runs an hour apart differ by more than
# the change (see the README's "Against nginx").
#
#   OLD=/tmp/rampart-before NEW=target/release/rampart bash bench/ab.sh             # logging, JSON
#   SETUP=shadow OLD=... NEW=... bash bench/ab.sh                                     # shadow 100%
#   MODE=sse OLD=... NEW=... bash bench/ab.sh          # 20-chunk streams at 500 req/s (oha)
#   REPS=5 SECS=8 ...
#
# Both gateways and the harness's two mocks run pinned to CPU 0, the load from CPU 1, as in
# ../shared/bench. MODE=max: wrk, 64 connections, as fast as they go; MODE=sse: oha at a fixed
# 500 req/s. Needs the harness's mock, wrk and oha (../shared/bench/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-../shared/bench}
SETUP=${SETUP:-log}
MODE=${MODE:-max}
REPS=${REPS:-3}
SECS=${SECS:-6}
OLD=$(realpath "${OLD:?set OLD to the baseline binary}")
NEW=$(realpath "${NEW:?set NEW to the binary under test}")
MOCK=${MOCK_BIN:-/tmp/llm-bench/target/release/mock-upstream}
OHA=${OHA_BIN:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
for f in "$OLD" "$NEW" "$MOCK"; do
  [ -x "$f" ] || { echo "missing $f" >&2; exit 2; }
done

WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_url() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer at $1" >&2; exit 1; }

for port in 18080 18081; do
  taskset -c 0 "$MOCK" --addr "127.0.0.1:$port" --delay-ms 0 --threads 1 >"$WORK/mock-$port.log" 2>&1 &
  pids+=($!)
done
declare -A PORT=([old]=18201 [new]=18202) BIN=([old]=$OLD [new]=$NEW) PID=()
for who in old new; do
  sed -e "s/^listen = .*/listen = \"127.0.0.1:${PORT[$who]}\"/" -e "s/^path = .*/path = \"$who.db\"/" \
    "$HARNESS/conf/rampart-$SETUP.toml" >"$WORK/$who.toml"
  (cd "$WORK" && exec taskset -c 0 "${BIN[$who]}" serve --config "$who.toml" >"$WORK/$who.log" 2>&1) &
  PID[$who]=$!
  pids+=($!)
  wait_url "http://127.0.0.1:${PORT[$who]}/healthz"
done

if [ "$MODE" = sse ]; then BODY=$HARNESS/payloads/chat-stream-keyed.json; else BODY=$HARNESS/payloads/chat-keyed.json; fi
TCK=$(getconf CLK_TCK)
# user and system clock ticks of a process, all its threads
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
measure() { # who
  local url="http://127.0.0.1:${PORT[$1]}/v1/chat/completions" u0 s0 u1 s1 n
  BENCH_BODY_FILE=$BODY taskset -c 1 wrk -t1 -c16 -d1s -s "$HARNESS/wrk/post.lua" "$url" >/dev/null
  read -r u0 s0 < <(ticks "${PID[$1]}")
  if [ "$MODE" = sse ]; then
    taskset -c 1 "$OHA" --no-tui --output-format json -z "${SECS}s" -q 500 -c 128 --worker-threads 1 \
      -m POST -H 'content-type: application/json' -D "$BODY" "$url" >"$WORK/oha.json" 2>/dev/null
    n=$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["statusCodeDistribution"].values()))' "$WORK/oha.json")
  else
    n=$(BENCH_BODY_FILE=$BODY taskset -c 1 wrk -t1 -c64 -d"${SECS}s" -s "$HARNESS/wrk/post.lua" "$url" \
      | sed -n 's/^BENCH_JSON //p' | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  fi
  read -r u1 s1 < <(ticks "${PID[$1]}")
  python3 -c "n=$n; u=($u1-$u0)/$TCK*1e6/n; s=($s1-$s0)/$TCK*1e6/n
print(f'$1  {n/$SECS:8.0f} req/s  CPU {u+s:6.1f} us a request (user {u:.1f}, system {s:.1f})')"
}
echo "setup=$SETUP mode=$MODE old=$OLD new=$NEW"
for _ in $(seq "$REPS"); do
  measure old
  measure new
done
