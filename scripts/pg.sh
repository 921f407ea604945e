#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server for the tests.
#   scripts/pg.sh start DIR   -> prints the admin URL on stdout; server listens on 127.0.0.1
#   scripts/pg.sh stop DIR
# Installs PostgreSQL from the OS packages when absent. initdb refuses root, so as root the
# server runs as an unprivileged system user created for the purpose.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?data directory}

find_bin() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -1 || true)
  [[ -n "$found" ]] && echo "$found"
}

ensure_installed() {
  if [[ -z "$(find_bin initdb)" ]]; then
    echo "PostgreSQL not found; installing it from the OS packages" >&2
    if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install postgresql" >&2; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
  fi
}

as_pg_user() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u connector-pg -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    ensure_installed
    initdb=$(find_bin initdb); pg_ctl=$(find_bin pg_ctl)
    if [[ $(id -u) -eq 0 ]] && ! id connector-pg >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin connector-pg
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown connector-pg "$dir"
    chmod 700 "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg_user "$initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    as_pg_user "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-h 127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=200 -c shared_buffers=128MB" start >/dev/null
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    pg_ctl=$(find_bin pg_ctl)
    if [[ -d "$dir/data" ]]; then as_pg_user "$pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true; fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
