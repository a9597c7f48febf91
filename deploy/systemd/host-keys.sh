#!/usr/bin/env bash
# What one host needs from the key directory `duban keys init` made (the master copy, kept on the
# administrator's machine), as a tar stream to unpack under /etc on that host, as root:
#
#   credstore/NAME.key_secret      the host's own secret certificate(s), root 0600 in a root 0700
#                                  directory; the unit's LoadCredential= hands it to the unit alone
#   duban/keys/NAME.key_secret     a symbolic link to /run/credentials/UNIT/NAME.key_secret, where
#                                  systemd puts it while the unit runs (dangling otherwise)
#   duban/keys/*.key, revoked      the services' public certificates, the revoked keys (public)
#   duban/keys/clients/*.key       every admitted principal's public certificate (public)
#
# No other secret leaves the master copy. HOST is the host's service:
#   registry | cases | notify         its own certificate
#   broker                            broker and ingest (the broker serves ingest's endpoints)
#   ingest-N                          that instance's certificate (unit duban-ingest@N)
#   web                               the web console's gateway certificate (unit duban-web)
#
#   deploy/systemd/host-keys.sh /srv/duban-keys registry | ssh root@registry tar -x -C /etc
#
# Later changes to clients/ and revoked need no restart: copy them as they are, deletions last
# (a key missing from clients/ for a second is revoked for good, so never delete before copying):
#   rsync -a --delete-after /srv/duban-keys/clients/ root@registry:/etc/duban/keys/clients/
#   rsync -a /srv/duban-keys/revoked root@registry:/etc/duban/keys/
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 MASTER-KEY-DIRECTORY registry|cases|notify|broker|ingest-N|web" >&2
    exit 2
fi
master="$1"
host="$2"
case "$host" in
    registry | cases | notify) secrets=("$host") unit="duban-$host.service" ;;
    broker) secrets=(broker ingest) unit="duban-broker.service" ;;
    web) secrets=(gateway) unit="duban-web.service" ;;
    ingest-[1-9] | ingest-[1-9]*[0-9])
        if [[ ! "${host#ingest-}" =~ ^[1-9][0-9]*$ ]]; then
            echo "$0: unknown host $host (registry, cases, notify, broker, ingest-N or web)" >&2
            exit 2
        fi
        secrets=("$host") unit="duban-ingest@${host#ingest-}.service"
        ;;
    *)
        echo "$0: unknown host $host (registry, cases, notify, broker, ingest-N or web)" >&2
        exit 2
        ;;
esac
if [ ! -d "$master/clients" ]; then
    echo "$0: $master is not a key directory (no clients/); make one with duban keys init" >&2
    exit 1
fi
for name in "${secrets[@]}"; do
    if [ ! -f "$master/$name.key_secret" ]; then
        echo "$0: $master has no $name.key_secret (duban keys add $name --role service …)" >&2
        exit 1
    fi
done

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
umask 022
mkdir -p "$stage/credstore" "$stage/duban/keys/clients"
chmod 700 "$stage/credstore"
for name in "${secrets[@]}"; do
    install -m 600 "$master/$name.key_secret" "$stage/credstore/$name.key_secret"
    ln -s "/run/credentials/$unit/$name.key_secret" "$stage/duban/keys/$name.key_secret"
done
for file in "$master"/*.key; do
    [ -e "$file" ] && install -m 644 "$file" "$stage/duban/keys/"
done
[ -f "$master/revoked" ] && install -m 644 "$master/revoked" "$stage/duban/keys/revoked"
for file in "$master"/clients/*.key; do
    [ -e "$file" ] && install -m 644 "$file" "$stage/duban/keys/clients/"
done
tar -C "$stage" --owner=0 --group=0 --numeric-owner -c credstore duban/keys
