#!/usr/bin/env bash
# Runs Duban's whole test suite: unit tests, end-to-end tests against the real executables,
# and the independent pyzmq client. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
