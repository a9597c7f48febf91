#!/usr/bin/env bash
# The soak (issue #19; docs/operations.md): every service as its own process with its metrics port,
# at half the peak measured on this machine a moment before, with two subscribers and a webhook
# channel, for MINUTES (default 10). Prints each service's RSS, open file descriptors and queue
# depth, p50/p99 and the events and webhook posts every minute; fails if a service's RSS after the
# warm-up grows by more than 10 % or a figure trends up. EndToEndTests runs a 2-minute version.
#
# Usage: scripts/soak.sh [MINUTES] [OPTIONS]   (e.g. --interval 30; --help lists them)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
minutes=${1:-10}
shift || true
config=(-c "${CONFIG:-debug}")
swift build -j 1 "${config[@]}" >/dev/null
export DUBAN_BIN_DIR="$(swift build "${config[@]}" --show-bin-path)"
exec "$DUBAN_BIN_DIR/duban-chaos" soak --minutes "$minutes" --receiver Tests/clients/webhook_receiver.py "$@"
