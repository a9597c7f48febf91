#!/usr/bin/env bash
# The chaos run (issue #19; docs/operations.md): 1,000,000 readings through duban-broker into two
# duban-ingest instances on a throwaway PostgreSQL, first 100,000 quietly for the throughput beside
# it, then while an instance is SIGKILLed every 5–15 s and restarted, PostgreSQL and the broker are
# restarted once each and three subscribers (persisting their cursors) are killed and restarted at
# random. Prints the figures and fails if a reading was lost or doubled, or a subscriber missed or
# repeated an event. Not part of the quick suite (EndToEndTests runs a 50,000-reading version).
#
# Usage: scripts/chaos.sh [OPTIONS]   e.g. --readings 200000 --quiet-readings 20000
#   (bash scripts/chaos.sh --help lists them); CONFIG=release for a release build (slower to build).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
config=(-c "${CONFIG:-debug}")
swift build -j 1 "${config[@]}" >/dev/null
export DUBAN_BIN_DIR="$(swift build "${config[@]}" --show-bin-path)"
exec "$DUBAN_BIN_DIR/duban-chaos" chaos "$@"
