#!/usr/bin/env bash
# Starts all four Duban services on their embedded defaults (SQLite under var/data), waits until
# each answers sys.ping, and prints where they listen and the deployment's status.
# Re-running it keeps the data; scripts/stop.sh stops everything.
# Secure by default: the first run makes a key directory (var/keys, `duban keys init`) and every
# service runs with CURVE on; the CLI, run from here, finds var/keys and acts as the office
# (`--as UNIT` for a unit). See docs/security.md.
#   DUBAN_DATA_DIR   data directory (default: var/data)
#   DUBAN_KEYS_DIR   key directory (default: var/keys)
#   DUBAN_BUILD      debug (default) or release
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/setup.sh

config="${DUBAN_BUILD:-debug}"
swift build -c "$config" --product duban-registry >/dev/null
swift build -c "$config" >/dev/null
bin="$(swift build -c "$config" --show-bin-path)"

export DUBAN_DATA_DIR="${DUBAN_DATA_DIR:-$PWD/var/data}"
run="$PWD/var/run"
logs="$PWD/var/log"
mkdir -p "$DUBAN_DATA_DIR" "$run" "$logs"
export DUBAN_KEYS_DIR="${DUBAN_KEYS_DIR:-$PWD/var/keys}"
if [ ! -d "$DUBAN_KEYS_DIR/clients" ]; then
    "$bin/duban" keys init "$DUBAN_KEYS_DIR" >/dev/null
    echo "密钥：已生成 $DUBAN_KEYS_DIR（私钥证书权限 0600；duban keys list 可查看）"
fi

for service in registry ingest cases notify; do
    pidfile="$run/$service.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "$service：已在运行（进程 $(cat "$pidfile")）"
        continue
    fi
    nohup "$bin/duban-$service" --data-dir "$DUBAN_DATA_DIR" --keys "$DUBAN_KEYS_DIR" >>"$logs/$service.log" 2>&1 &
    echo $! >"$pidfile"
    echo "$service：已启动（进程 $!，日志 var/log/$service.log）"
done

for attempt in $(seq 1 100); do
    if "$bin/duban" ping --timeout 0.5 >/dev/null 2>&1; then break; fi
    if [ "$attempt" = 100 ]; then
        echo "有服务未答复 sys.ping，请查看 var/log/" >&2
        "$bin/duban" ping --timeout 0.5 || true
        exit 1
    fi
    sleep 0.2
done

echo
echo "督办系统已启动（CURVE 认证已开启）。数据：$DUBAN_DATA_DIR；密钥：$DUBAN_KEYS_DIR；命令行：$bin/duban"
"$bin/duban" status
