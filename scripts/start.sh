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
#   DUBAN_WEB_HTTP   where the web console listens (default: 127.0.0.1:8080)
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

# The web console (docs/web.md): its own accounts in $DUBAN_DATA_DIR/web; on the first start an
# administrator with a generated password, written to a file only its owner can read.
web_http="${DUBAN_WEB_HTTP:-127.0.0.1:8080}"
admin_file="$PWD/var/web-admin-password"
if "$bin/duban-web" users list --data-dir "$DUBAN_DATA_DIR" | grep -q '^暂无账号$'; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$admin_file")
    "$bin/duban-web" users add admin --role admin --password-file "$admin_file" --data-dir "$DUBAN_DATA_DIR" >/dev/null
    echo "网页控制台：已创建管理员账号 admin，一次性密码在 $admin_file（登录后请用 duban-web users passwd 更换）"
fi
pidfile="$run/web.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "web：已在运行（进程 $(cat "$pidfile")）"
else
    nohup "$bin/duban-web" --http "$web_http" --data-dir "$DUBAN_DATA_DIR" --keys "$DUBAN_KEYS_DIR" >>"$logs/web.log" 2>&1 &
    echo $! >"$pidfile"
    echo "web：已启动（进程 $!，日志 var/log/web.log）"
fi
for attempt in $(seq 1 100); do
    if python3 -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://$web_http/healthz', timeout=1).read() != b'ok')" \
        2>/dev/null; then break; fi
    if [ "$attempt" = 100 ]; then
        echo "网页控制台未在 http://$web_http 答复，请查看 var/log/web.log" >&2
        exit 1
    fi
    sleep 0.2
done

echo
echo "督办系统已启动（CURVE 认证已开启）。数据：$DUBAN_DATA_DIR；密钥：$DUBAN_KEYS_DIR；命令行：$bin/duban"
echo "网页控制台：http://$web_http/（管理员 admin；首次生成的密码见 $admin_file）"
"$bin/duban" status
