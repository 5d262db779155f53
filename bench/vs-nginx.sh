#!/usr/bin/env bash
# rampart beside nginx and nginx's mirror, in one interleaved run of the shared harness
# (../shared/bench: the system under test pinned to CPU 0, load from CPU 1, one upstream mock).
#
#   bash bench/vs-nginx.sh                       # every test, 3 repetitions (~30 min)
#   TESTS="max" REPS=1 DURATION=5 bash bench/vs-nginx.sh   # a quick look (not a result)
#
# Two rampart set-ups, as the performance figures in the README use them:
#   rampart-log     a rollout at a canary stage, every request's event stored (SQLite)
#   rampart-shadow  shadow at 100% to a second mock, pairs with their features stored
# Both get the keyed payloads, so the sticky bucket and the shadow path run. BARE=1 adds
# bare-proxy: the same HTTP stack (hyper server, hyper-util client) with none of rampart's work
# (crates/rampart-gateway/examples/bare_proxy.rs, on a current-thread runtime as rampart runs on
# one CPU), the floor under rampart's cost. Needs a quiet
# machine: figures taken while other builds run are not results. Results: $OUT (the harness's
# summary.md and raw.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-../shared/bench}
[ -x "$HARNESS/run.sh" ] || { echo "no harness at $HARNESS (set HARNESS=...)" >&2; exit 2; }
SKIP_LITELLM=${SKIP_LITELLM:-1} bash "$HARNESS/setup.sh" >/dev/null  # LiteLLM is not compared here
# RAMPART_BIN: measure a binary already built (default: build this checkout in release).
if [ -z "${RAMPART_BIN:-}" ]; then
  cargo build --release --bins -q
  RAMPART_BIN=$PWD/target/release/rampart
fi
extra=()
if [ "${BARE:-0}" = 1 ]; then
  cargo build --release -q -p rampart-gateway --example bare_proxy
fi
BIN=$RAMPART_BIN
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

for setup in log shadow; do
  cp "$HARNESS/conf/rampart-$setup.toml" "$WORK/"
  (cd "$WORK" && exec taskset -c "${SUT_CPUS:-0}" "$BIN" serve --config "rampart-$setup.toml" \
      >"$WORK/rampart-$setup.log" 2>&1) &
  pids+=($!)
done
if [ "${BARE:-0}" = 1 ]; then
  BARE_CLIENT=hyper BARE_RT=current taskset -c "${SUT_CPUS:-0}" target/release/examples/bare_proxy 127.0.0.1:18120 http://127.0.0.1:18080 \
    >"$WORK/bare.log" 2>&1 &
  pids+=($!)
  extra+=("bare-proxy=http://127.0.0.1:18120/v1/chat/completions")
fi
port_of() { sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$HARNESS/conf/rampart-$1.toml"; }
for setup in log shadow; do
  port=$(port_of "$setup")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$WORK/rampart-$setup.log"; exit 1; }
done

BUILTIN=${BUILTIN:-"direct nginx nginx-mirror"} \
BODY_JSON=${BODY_JSON:-$HARNESS/payloads/chat-keyed.json} \
BODY_SSE=${BODY_SSE:-$HARNESS/payloads/chat-stream-keyed.json} \
  bash "$HARNESS/run.sh" \
    "rampart-log=http://127.0.0.1:$(port_of log)/v1/chat/completions" \
    "rampart-shadow=http://127.0.0.1:$(port_of shadow)/v1/chat/completions" ${extra[@]+"${extra[@]}"}
