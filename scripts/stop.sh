#!/usr/bin/env bash
# Stops the services scripts/start.sh started: SIGTERM (graceful shutdown), then waits.
set -euo pipefail
cd "$(dirname "$0")/.."
run="$PWD/var/run"
for service in registry ingest cases notify; do
    pidfile="$run/$service.pid"
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$service: did not stop within 10 s, killing" >&2
            kill -KILL "$pid"
        else
            echo "$service: stopped"
        fi
    fi
    rm -f "$pidfile"
done
