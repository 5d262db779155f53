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

$BIN mock-llm --listen 127.0.0.1:$MOCK_PORT --config "$TMP/mock.toml" 2>"$OUT/mock.log" & MOCK=$!
RAMPART_LOG=warn $BIN serve --config "$TMP/gateway.toml" 2>"$OUT/gateway.log" & GW=$!
trap 'kill $MOCK $GW 2>/dev/null; rm -rf "$TMP"' EXIT
wait_port $MOCK_PORT; wait_port $GW_PORT

run() { $LOADGEN "$1" "$2" "$SECONDS_PER" "$3" keyed; }
DIRECT="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
GATEWAY="http://127.0.0.1:$GW_PORT/v1/chat/completions"

printf '\n%-6s | %-21s | %-21s | %-17s | %s\n' "rate" "direct p50 / p99 ms" "rampart p50 / p99 ms" "added p50 / p99" "rampart req/s"
for rate in $RATES; do
  d=$(run "$DIRECT" "$rate" baseline)
  g=$(run "$GATEWAY" "$rate" plain)
  python3 - "$rate" "$d" "$g" <<'PY'
import json, sys
rate, d, g = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{rate:<6} | {d['p50_ms']:7.2f} / {d['p99_ms']:7.2f}     | {g['p50_ms']:7.2f} / {g['p99_ms']:7.2f}      | "
      f"{g['p50_ms']-d['p50_ms']:+6.2f} / {g['p99_ms']-d['p99_ms']:+6.2f}  | {g['throughput']:.0f} (errors {g['errors']}, direct errors {d['errors']})")
PY
done
echo "rampart peak RSS: $(grep VmHWM /proc/$GW/status | awk '{print $2/1024 " MB"}')"

printf '\nshadow: user-path latency, same gateway, same rate\n'
for rate in $RATES; do
  a=$(run "$GATEWAY" "$rate" plain)
  b=$(run "$GATEWAY" "$rate" shadowed)
  python3 - "$rate" "$a" "$b" <<'PY'
import json, sys
rate, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{rate:<6} | shadow 0%: p50 {a['p50_ms']:.2f} p99 {a['p99_ms']:.2f} ms | shadow 100%: p50 {b['p50_ms']:.2f} p99 {b['p99_ms']:.2f} ms | p99 ratio {b['p99_ms']/a['p99_ms']:.3f}")
PY
done
echo "rampart peak RSS after shadow runs: $(grep VmHWM /proc/$GW/status | awk '{print $2/1024 " MB"}')"
curl -s "http://127.0.0.1:$GW_PORT/metrics" | grep -E '^rampart_(shadow_dropped_total|events_dropped_total)' || true
