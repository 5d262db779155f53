#!/usr/bin/env bash
# The comparison report over 1,000,000 pairs stored in SQLite (release build): generates the
# pairs into a temp database through the store, then times, in the same run, iterating them
# with for_each_pair (the baseline) and the full report (features → Accumulator → finish).
# Usage: bash bench/report.sh [--pairs N] [--db PATH]   (PATH is kept and reused)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rampart-gateway --example report_bench
echo "cores: $(nproc)"
exec target/release/examples/report_bench "$@"
