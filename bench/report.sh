#!/usr/bin/env bash
# The comparison report over 1,000,000 pairs stored in SQLite (release build): generates the
# pairs into a temp database through the store (which computes each pair's features as it stores
# it), then times, in the same run, iterating the pairs with for_each_pair (the baseline) and the
# full report (stored features → Accumulator → finish), and prints the write-time cost of the
# features per pair.
# Usage: bash bench/report.sh [--pairs N] [--db PATH]   (PATH is kept and reused)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rampart-gateway --example report_bench
echo "cores: $(nproc)"
exec target/release/examples/report_bench "$@"
