#!/usr/bin/env bash
# Builds Duban in release mode and runs the benchmarks, printing a table and writing the figures
# as JSON under Benchmarks/results/. Absolute numbers drift on shared machines: read the ratios.
#   bash Benchmarks/run.sh [--runs N] [--readings N] [--no-postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh
swift build -c release
export DUBAN_BIN_DIR="$(swift build -c release --show-bin-path)"
"$DUBAN_BIN_DIR/duban-bench" --json "Benchmarks/results/ingest-$(date +%Y%m%d-%H%M%S).json" "$@"
