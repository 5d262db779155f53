#!/usr/bin/env bash
# Several replicas on PostgreSQL: how fast the fleet reacts to a regression, and what a
# controller check costs against the event rate. Not run in CI (it wants a quiet machine).
#
# Per trial: a fresh database, three release `rampart serve` replicas behind round-robin keyed
# traffic, a candidate that fails 30% of its calls from the first request on (the injected
# regression), and one prober per replica that keeps asking with canary keys. The kill switch
# is the catastrophic rule on 300 canary requests (the statistical guardrails are off): the
# leader reaches 300 on the fleet's merged window while each replica has about 100 of its own,
# so no follower can trip locally and each one moves only when it sees the stored rollback
# (NOTIFY, else the poll). Printed separately, median and max over the trials:
#   - regression → decision: first request → the kill-switch row's time in the audit log;
#   - decision → last replica on the baseline: the decision → the moment after which every
#     replica answers the probes from the control cohort (probe resolution ~10 ms), i.e. the
#     propagation of the leader's decision; `tripped_by` in the trial lines says which replica
#     decided (always the leader when the isolation holds).
# Then the leader's evaluation time at 1,000 and 10,000 aggregated events/s
# (crates/rampart-gateway/examples/controller_bench.rs), side by side.
#
#   bash bench/cluster.sh                 # 5 trials
#   TRIALS=7 PG=postgres://postgres@127.0.0.1:5432/postgres bash bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-5}
PG=${PG:-${RAMPART_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
cargo build --release --bins -q
cargo build --release -p rampart-gateway --example controller_bench -q
BIN=target/release/rampart

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
db_url() { python3 -c 'import sys; u=sys.argv[1]; b=u.split("?")[0]; i=b.find("/", b.find("://")+3); print((b if i<0 else b[:i])+"/"+sys.argv[2])' "$PG" "$1"; }

TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

RESULTS="$OUT/cluster-trials.jsonl"
: > "$RESULTS"
for t in $(seq "$TRIALS"); do
  DB="rampart_bench_$$_$t"
  psql -q "$PG" -c "CREATE DATABASE $DB" >/dev/null
  export RAMPART_BENCH_DB; RAMPART_BENCH_DB=$(db_url "$DB")
  PORTS=()
  for i in 1 2 3; do
    P=$(free_port); PORTS+=("$P")
    cat > "$TMP/r$i.toml" <<TOML
[server]
listen = "127.0.0.1:$P"
[store]
type = "postgres"
url_env = "RAMPART_BENCH_DB"
pool_size = 4
[cluster]
replica_id = "bench-$i"
[providers.sim]
type = "mock"
[providers.sim.models.base]
style = "casual"
latency_ms = { median = 20, p95 = 40 }
[providers.sim.models.cand]
style = "casual"
latency_ms = { median = 20, p95 = 40 }
error_rate = 0.3
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "base"
[routes.support.variants.v2]
provider = "sim"
model = "cand"
[rollouts.r]
route = "support"
candidate = "v2"
stages = [ { name = "canary-25", percent = 25, min_duration = "1h" }, { name = "full", percent = 100 } ]
[rollouts.r.guardrails]
window = "1m"
check_interval = "1s"
error_rate_max = 0.05
min_exposure = 1000000000
catastrophic_error_rate = 0.2
catastrophic_min_requests = 300
TOML
    "$BIN" serve --config "$TMP/r$i.toml" 2>"$TMP/r$i.log" & PIDS+=($!)
  done
  for P in "${PORTS[@]}"; do wait_port "$P"; done
  python3 - "${PORTS[@]}" >> "$RESULTS" <<'PY'
import hashlib, json, sys, threading, time, urllib.request
ports = sys.argv[1:]
def now(): return int(time.time() * 1000)
def chat(port, key):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps({"model": "support", "messages": [{"role": "user", "content": "card"}]}).encode(),
        headers={"content-type": "application/json", "x-rampart-routing-key": key})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers.get("x-rampart-cohort")
def bucket(key):
    return int.from_bytes(hashlib.sha256(f"r.{key}".encode()).digest()[:8], "big") % 10000
canary = [k for k in (f"probe-{i}" for i in range(2000)) if bucket(k) < 2500][:20]
stop = False
probes = {p: [] for p in ports}
def traffic(w):
    n = w
    while not stop:
        try: chat(ports[n % 3], f"user-{n % 997}")
        except Exception: pass
        n += 8
def probe(port):
    i = 0
    while not stop:
        sent = now()
        try: probes[port].append((sent, chat(port, canary[i % len(canary)])))
        except Exception: pass
        i += 1
        time.sleep(0.01)
start = now()
threads = [threading.Thread(target=traffic, args=(w,)) for w in range(8)]
threads += [threading.Thread(target=probe, args=(p,)) for p in ports]
for t in threads: t.start()
decision = None
while decision is None and now() - start < 300_000:
    time.sleep(0.2)
    with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/admin/rollouts/r/events") as r:
        ev = json.load(r)["events"]
    hits = [e for e in ev if e["action"] == "kill_switch"]
    decision = hits[0]["ts_ms"] if hits else None
    tripped_by = hits[0]["details"].get("replica") if hits else None
    canary_seen = hits[0]["details"].get("window", {}).get("canary", {}).get("requests") if hits else None
time.sleep(4)
stop = True
for t in threads: t.join()
if decision is None:
    print(json.dumps({"error": "no decision within 300 s"})); sys.exit(0)
last = 0
for p, seen in probes.items():
    canary_after = [s for s, c in seen if c == "canary"]
    last = max(last, (max(canary_after) if canary_after else decision))
print(json.dumps({"regression_to_decision_ms": decision - start,
                  "decision_to_last_replica_ms": max(0, last - decision),
                  "tripped_by": tripped_by, "fleet_canary_at_decision": canary_seen}))
PY
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
  psql -q "$PG" -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null
  tail -1 "$RESULTS"
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = [r for r in rows if "error" not in r]
print(f"trials: {len(rows)} ({len(rows) - len(ok)} without a decision)")
for k, label in [("regression_to_decision_ms", "regression -> decision"),
                 ("decision_to_last_replica_ms", "decision -> last replica on baseline")]:
    v = [r[k] for r in ok]
    if v: print(f"{label:40s} median {statistics.median(v):7.0f} ms   max {max(v):7.0f} ms")
PY
echo "leader evaluation (absorb the newest second's rows of 3 replicas, then one check over a full window):"
target/release/examples/controller_bench
