#!/usr/bin/env bash
# A throw-away Postgres cluster for the tests and benchmarks (Debian's postgresql 15 server
# binaries; GRAPHWARD_PG_BIN overrides their folder). Needs no running server and no config.
#
#   scripts/postgres.sh start DIR   initdb into DIR (as user postgres when root), start it on a
#                                   free port with fsync off; prints the server URI
#   scripts/postgres.sh stop DIR    stop it and remove DIR
#   scripts/postgres.sh restart DIR stop (fast: connections drop) and start again, same port
set -euo pipefail
bin=${GRAPHWARD_PG_BIN:-/usr/lib/postgresql/15/bin}
action=${1:?usage: postgres.sh start|stop|restart DIR}
dir=${2:?usage: postgres.sh start|stop|restart DIR}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_ctl() {
    as_postgres "$bin/pg_ctl" -D "$dir/data" -o "$(cat "$dir/options")" -l "$dir/log" "$@" > /dev/null
}

case "$action" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    as_postgres "$bin/initdb" --auth=trust --username=postgres --no-sync -D "$dir/data" > /dev/null
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" > "$dir/options"
    pg_ctl -w start
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    [ -d "$dir/data" ] && pg_ctl -m immediate -w stop || true
    rm -rf "$dir"
    ;;
restart)
    pg_ctl -m fast -w stop
    pg_ctl -w start
    ;;
*)
    echo "usage: postgres.sh start|stop|restart DIR" >&2
    exit 2
    ;;
esac
