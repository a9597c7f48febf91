#!/usr/bin/env bash
# Stops the services and the web console scripts/start.sh started: SIGTERM (graceful shutdown), then waits.
set -euo pipefail
cd "$(dirname "$0")/.."
run="$PWD/var/run"
# The console first: its pages' live streams end before the services they follow.
for service in web registry ingest cases notify; do
    pidfile="$run/$service.pid"
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$service：10 秒内未停止，强制结束" >&2
            kill -KILL "$pid"
        else
            echo "$service：已停止"
        fi
    fi
    rm -f "$pidfile"
done
