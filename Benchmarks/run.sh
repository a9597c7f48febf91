#!/usr/bin/env bash
# Builds Duban and the gRPC reference in release mode and runs every benchmark in one run, printing
# a table (Duban next to its references, with ratios) and writing the figures as JSON under
# Benchmarks/results/. Absolute numbers drift on shared machines: read the ratios.
#   bash Benchmarks/run.sh [--runs N] [--only ingest|requests|events|footprint|curve] [--no-postgres] [--no-grpc]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh

grpc=()
args=()
for argument in "$@"; do
    if [ "$argument" = "--no-grpc" ]; then grpc=(none); else args+=("$argument"); fi
done

# As deployed (deploy/README.md, the Docker image): the Swift runtime linked into each executable.
swift build -c release --static-swift-stdlib
export DUBAN_BIN_DIR="$(swift build -c release --static-swift-stdlib --show-bin-path)"
if [ "${grpc[0]:-}" != none ]; then
    # Its own package: gRPC and its transport stay out of the main build (a first release build takes ~10 min).
    swift build -c release --package-path Benchmarks/grpc-reference
    grpc=(--grpc "$(swift build -c release --package-path Benchmarks/grpc-reference --show-bin-path)/grpc-reference")
else
    grpc=()
fi
"$DUBAN_BIN_DIR/duban-bench" --json "Benchmarks/results/bench-$(date +%Y%m%d-%H%M%S).json" "${grpc[@]}" "${args[@]}"
