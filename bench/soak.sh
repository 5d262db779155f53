#!/usr/bin/env bash
# Soak: keyed traffic at a fixed rate through rampart with shadow at 100 %, against a candidate
# that hangs on 20 % of calls and fails 20 % (rampart mock-llm's hang_rate and error_rate), for
# a long time; then SIGTERM. A benchmark, not a CI test (it needs minutes and a quiet machine).
#
# Checks, each printed PASS/FAIL with its figures:
#   - users: zero non-2xx answers and zero requests without an answer (the candidate is only
#     shadowed, so none of its failures may reach a user);
#   - RSS flat: after the warm-up, every sample within ±20 % of the first one;
#   - open file descriptors flat: likewise ±20 % (at least ±16 fds, for small counts);
#   - every acknowledged event stored: each request id the load generator got a 2xx for is in
#     the events table after the gateway exits on SIGTERM.
#
#   bash bench/soak.sh                              # 10 minutes at 1000 req/s (the target)
#   DURATION=30 RATE=200 WARMUP=10 bash bench/soak.sh   # a short run to validate the script
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-600}
RATE=${RATE:-1000}
WARMUP=${WARMUP:-60}
SAMPLE_EVERY=${SAMPLE_EVERY:-5}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
cargo build --release --bins --example loadgen -q
BIN=$PWD/target/release/rampart
LOADGEN=$PWD/target/release/examples/loadgen

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

BASE_PORT=$(free_port); CAND_PORT=$(free_port); GW_PORT=$(free_port)
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

cat > "$TMP/base.toml" <<TOML
[providers.sim]
type = "mock"
[providers.sim.models.baseline]
style = "casual"
latency_ms = { median = 5, p95 = 8 }
TOML
cat > "$TMP/cand.toml" <<TOML
[providers.sim]
type = "mock"
[providers.sim.models.candidate]
style = "formal"
latency_ms = { median = 20, p95 = 40 }
error_rate = 0.2
hang_rate = 0.2
TOML
cat > "$TMP/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$GW_PORT"
shutdown_grace = "30s"
max_connections = 8192
[store]
path = "$TMP/rampart.db"
[shadow]
# A hung candidate call is given up after this; 20 % of 1000 req/s hang, so about 400 wait at
# once: room for them, so shadow stays at 100 % instead of dropping.
timeout = "2s"
max_in_flight = 2048
[providers.base]
type = "openai"
base_url = "http://127.0.0.1:$BASE_PORT/v1"
max_idle_per_host = 1024
retries = 0
[providers.cand]
type = "openai"
base_url = "http://127.0.0.1:$CAND_PORT/v1"
max_idle_per_host = 1024
retries = 0
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "base"
model = "baseline"
[routes.support.variants.v2]
provider = "cand"
model = "candidate"
[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [ { name = "shadow", shadow_percent = 100, min_duration = "30d" } ]
TOML

ulimit -n 65536 2>/dev/null || true
"$BIN" mock-llm --listen "127.0.0.1:$BASE_PORT" --config "$TMP/base.toml" 2>"$TMP/base.log" & PIDS+=($!)
"$BIN" mock-llm --listen "127.0.0.1:$CAND_PORT" --config "$TMP/cand.toml" 2>"$TMP/cand.log" & PIDS+=($!)
"$BIN" check-config --config "$TMP/gateway.toml" >/dev/null
"$BIN" serve --config "$TMP/gateway.toml" 2>"$TMP/serve.log" & GW=$!; PIDS+=($GW)
wait_port "$BASE_PORT"; wait_port "$CAND_PORT"; wait_port "$GW_PORT"

# Sample the gateway's RSS (kB) and open fds.
SAMPLES="$OUT/soak-samples.csv"
echo "t_s,rss_kb,fds" > "$SAMPLES"
(
  t0=$(date +%s)
  while kill -0 "$GW" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$GW/status" 2>/dev/null || echo "")
    fds=$(ls "/proc/$GW/fd" 2>/dev/null | wc -l)
    [ -n "$rss" ] && echo "$(( $(date +%s) - t0 )),$rss,$fds" >> "$SAMPLES"
    sleep "$SAMPLE_EVERY"
  done
) & SAMPLER=$!; PIDS+=($SAMPLER)

echo "soak: ${DURATION}s at ${RATE} req/s, keyed, shadow 100 %, candidate hangs 20 % / fails 20 %" >&2
LOADGEN_IDS="$TMP/acked.txt" "$LOADGEN" "http://127.0.0.1:$GW_PORT/v1/chat/completions" \
  "$RATE" "$DURATION" support keyed > "$OUT/soak-load.json"
curl -s "http://127.0.0.1:$GW_PORT/metrics" > "$OUT/soak-metrics.txt" || true

# SIGTERM at the end: the drain stores what is queued.
kill -TERM "$GW"
for _ in $(seq 600); do kill -0 "$GW" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$GW" 2>/dev/null; then echo "FAIL: the gateway did not exit within 60 s of SIGTERM" >&2; exit 1; fi
wait "$GW" && GW_EXIT=0 || GW_EXIT=$?
kill "$SAMPLER" 2>/dev/null || true

python3 - "$OUT/soak-load.json" "$SAMPLES" "$TMP/acked.txt" "$TMP/rampart.db" "$WARMUP" "$GW_EXIT" \
  "$OUT/soak-summary.json" "$OUT/soak-metrics.txt" <<'PY'
import csv, json, sqlite3, sys
load_path, samples_path, acked_path, db_path, warmup, gw_exit, out_path, metrics_path = sys.argv[1:9]
metrics = open(metrics_path).read()
load = json.load(open(load_path))
rows = [r for r in csv.DictReader(open(samples_path))]
after = [r for r in rows if int(r["t_s"]) >= int(warmup)]
ok = True
def verdict(name, passed, detail):
    global ok
    ok &= passed
    print(f"{'PASS' if passed else 'FAIL'}  {name}: {detail}")

verdict("users", load["non_2xx"] == 0 and load["errors"] == 0,
        f"{load['ok']} answered 2xx, {load['non_2xx']} non-2xx, {load['errors']} without an answer; "
        f"throughput {load['throughput']:.0f} req/s, p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms")
def flat(col, slack_min):
    vals = [int(r[col]) for r in after]
    if len(vals) < 2:
        return False, f"too few samples after the {warmup}s warm-up ({len(vals)})"
    ref = vals[0]
    lo, hi = min(vals), max(vals)
    slack = max(ref * 0.2, slack_min)
    return (ref - slack <= lo and hi <= ref + slack,
            f"after warm-up first {ref}, min {lo}, max {hi}, last {vals[-1]} (allowed {ref - slack:.0f}..{ref + slack:.0f}; {len(vals)} samples)")
passed, detail = flat("rss_kb", 0); verdict("RSS flat (kB)", passed, detail)
passed, detail = flat("fds", 16); verdict("open fds flat", passed, detail)
acked = [l.strip() for l in open(acked_path) if l.strip()]
db = sqlite3.connect(db_path)
stored = {r[0] for r in db.execute("SELECT request_id FROM events")}
missing = [i for i in acked if i not in stored]
pairs = db.execute("SELECT count(*), sum(c_error IS NOT NULL) FROM pairs").fetchone()
verdict("every acknowledged event stored", not missing and gw_exit == "0",
        f"{len(acked)} acknowledged, {len(stored)} events stored, {len(missing)} missing; gateway exit {gw_exit}")
def metric(prefix):
    return sum(float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines() if l.startswith(prefix))
print(f"info  pairs stored {pairs[0]}, with a candidate error {pairs[1]}; "
      f"shadow dropped {metric('rampart_shadow_dropped_total'):.0f}; "
      f"events dropped {metric('rampart_events_dropped_total'):.0f}, store lost {metric('rampart_store_lost_records'):.0f}")
json.dump({"load": load, "acked": len(acked), "stored": len(stored), "missing": len(missing),
           "pairs": pairs[0], "pairs_candidate_error": pairs[1], "samples": rows, "pass": ok},
          open(out_path, "w"))
sys.exit(0 if ok else 1)
PY
