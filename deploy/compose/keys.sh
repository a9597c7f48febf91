#!/usr/bin/env bash
# Manages deploy/compose/keys, the key directory the compose file takes its certificates from
# (docs/security.md), with the `duban keys` of the image itself, so the host needs Docker only:
#
#   deploy/compose/keys.sh init                       # duban keys init: a full set (once)
#   deploy/compose/keys.sh list                       # duban keys list
#   deploy/compose/keys.sh add station-x --role station --stations x
#   deploy/compose/keys.sh revoke unit-03             # refused within a second, no restart
#
# Compose mounts each secret certificate with the file's own owner and mode, so afterwards every
# *.key_secret belongs to the image's user (999) with mode 0600, and everything else (public) to you.
# Hand a person's certificate (keys/NAME.key_secret) over with sudo, then delete it here.
set -euo pipefail
cd "$(dirname "$0")"
image="${DUBAN_IMAGE:-duban:0.1.0}"
command="${1:-init}"
[ $# -gt 0 ] && shift

if ! docker image inspect "$image" >/dev/null 2>&1; then
    docker build -f ../docker/Dockerfile -t "$image" ../..
fi
mkdir -p keys
case "$command" in
    init) arguments=(keys init /keys "$@") ;;
    *) arguments=(keys "$command" "$@" --keys /keys) ;;
esac
# As root in the container: it writes into a directory you own, then gives the secrets to 999.
docker run --rm --user root -v "$PWD/keys:/keys" -e OWNER="$(id -u):$(id -g)" --entrypoint sh "$image" -c '
    duban "$@"
    status=$?
    chown -R "$OWNER" /keys
    for secret in /keys/*.key_secret; do
        if [ -e "$secret" ]; then chown 999:999 "$secret" && chmod 600 "$secret"; fi
    done
    exit $status' sh "${arguments[@]}"
