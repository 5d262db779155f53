#!/usr/bin/env bash
# Gateway overhead: the same simulated provider called directly and through rampart, at fixed
# request rates, in the same run. Prints p50/p99 side by side, the added latency, the ratios,
# and the gateway's peak RSS. Also: user-path latency with shadow at 0% and at 100%.
#
#   bash bench/overhead.sh            # rates 200 500 1000, 10 s each
#   RATES="1000" SECONDS_PER=20 bash bench/overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${RATES:-"200 500 1000"}
SECONDS_PER=${SECONDS_PER:-10}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
cargo build --release --bins --example loadgen -q
BIN=target/release/rampart
LOADGEN=target/release/examples/loadgen

# On a 2-core machine the load generator and the simulated provider share one core and the
# gateway gets the other (when taskset exists), so the gateway's added latency is not the
# load generator's own queueing. Direct calls see the same pinning.
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  PIN_GW="taskset -c 1"; PIN_REST="taskset -c 0"
else
  PIN_GW=""; PIN_REST=""
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

MOCK_PORT=$(free_port); GW_PORT=$(free_port)
TMP=$(mktemp -d)
cat > "$TMP/mock.toml" <<TOML
[providers.sim]
type = "mock"
[providers.sim.models.baseline]
style = "casual"
latency_ms = { median = 5, p95 = 5.5 }
[providers.sim.models.candidate]
style = "formal"
latency_ms = { median = 40, p95 = 60 }
TOML
cat > "$TMP/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$GW_PORT"
[store]
path = "$TMP/rampart.db"
[providers.up]
type = "openai"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
max_idle_per_host = 1024
[routes.plain]
baseline = "v1"
[routes.plain.variants.v1]
provider = "up"
model = "baseline"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 4.0
[routes.plain.variants.v2]
provider = "up"
model = "candidate"
[routes.shadowed]
baseline = "v1"
[routes.shadowed.variants.v1]
provider = "up"
model = "baseline"
[routes.shadowed.variants.v2]
provider = "up"
model = "candidate"
# Same rollout machinery (sticky bucket, cohort, events), nobody on the candidate: every
# request is comparable with a direct call to the baseline model.
[rollouts.plain]
route = "plain"
candidate = "v2"
stages = [ { name = "shadow-off", shadow_percent = 0 } ]
[rollouts.shadow]
route = "shadowed"
candidate = "v2"
stages = [ { name = "shadow", shadow_percent = 100 } ]
[shadow]
max_in_flight = 512
TOML

$PIN_REST $BIN mock-llm --listen 127.0.0.1:$MOCK_PORT --config "$TMP/mock.toml" 2>"$OUT/mock.log" & MOCK=$!
RAMPART_LOG=warn $PIN_GW $BIN serve --config "$TMP/gateway.toml" 2>"$OUT/gateway.log" & GW=$!
trap 'kill $MOCK $GW 2>/dev/null; rm -rf "$TMP"' EXIT
wait_port $MOCK_PORT; wait_port $GW_PORT

run() { $PIN_REST $LOADGEN "$1" "$2" "$SECONDS_PER" "$3" keyed; }
DIRECT="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
GATEWAY="http://127.0.0.1:$GW_PORT/v1/chat/completions"

ROUNDS=${ROUNDS:-3}
# Direct and gateway runs alternate, ROUNDS times per rate, and the medians are compared, so a
# burst of load from elsewhere on the machine does not land on one side only.
summarize() {
  python3 - "$@" <<'PY'
import json, statistics, sys
label, a, b = sys.argv[1], [json.loads(x) for x in sys.argv[2].split("\n") if x], [json.loads(x) for x in sys.argv[3].split("\n") if x]
m = lambda runs, k: statistics.median(r[k] for r in runs)
errs = sum(r["errors"] + r.get("non_2xx", 0) for r in a + b)
print(f"{label:<6} | {m(a,'p50_ms'):7.2f} / {m(a,'p99_ms'):7.2f}     | {m(b,'p50_ms'):7.2f} / {m(b,'p99_ms'):7.2f}      | "
      f"{m(b,'p50_ms')-m(a,'p50_ms'):+6.2f} / {m(b,'p99_ms')-m(a,'p99_ms'):+6.2f}  | {m(b,'throughput'):.0f} (errors {errs}); p99 ratio {m(b,'p99_ms')/m(a,'p99_ms'):.3f}; "
      f"p99 per round: {[round(r['p99_ms'],2) for r in a]} vs {[round(r['p99_ms'],2) for r in b]}")
PY
}

printf '\n%-6s | %-21s | %-21s | %-17s | %s\n' "rate" "direct p50 / p99 ms" "rampart p50 / p99 ms" "added p50 / p99" "rampart req/s"
for rate in $RATES; do
  d=""; g=""
  for _ in $(seq "$ROUNDS"); do
    d="$d$(run "$DIRECT" "$rate" baseline)"$'\n'
    g="$g$(run "$GATEWAY" "$rate" plain)"$'\n'
  done
  summarize "$rate" "$d" "$g"
done
echo "rampart peak RSS: $(grep VmHWM /proc/$GW/status | awk '{print $2/1024 " MB"}')"

printf '\nshadow: user-path latency through the same gateway, shadow 0%% vs 100%% (medians of %s rounds)\n' "$ROUNDS"
printf '%-6s | %-21s | %-21s | %-17s | %s\n' "rate" "shadow 0% p50 / p99" "shadow 100% p50 / p99" "difference" "req/s"
for rate in $RATES; do
  a=""; b=""
  for _ in $(seq "$ROUNDS"); do
    a="$a$(run "$GATEWAY" "$rate" plain)"$'\n'
    b="$b$(run "$GATEWAY" "$rate" shadowed)"$'\n'
  done
  summarize "$rate" "$a" "$b"
done
echo "rampart peak RSS after shadow runs: $(grep VmHWM /proc/$GW/status | awk '{print $2/1024 " MB"}')"
curl -s "http://127.0.0.1:$GW_PORT/metrics" | grep -E '^rampart_(shadow_dropped_total|events_dropped_total)' || true
