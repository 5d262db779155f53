#!/usr/bin/env bash
# The dashboard's data calls over a year-sized store (release build): 1,000,000 request events
# and 100,000 shadow pairs generated into SQLite through the store, the real gateway served over
# it, and every call the /ui/ pages make timed over HTTP (first, median and slowest of 7).
# Usage: bash bench/ui.sh [--events N] [--pairs M] [--runs R] [--db PATH]   (PATH is kept and reused)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rampart-gateway --example ui_bench
echo "cores: $(nproc)"
exec target/release/examples/ui_bench "$@"
