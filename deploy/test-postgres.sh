#!/usr/bin/env bash
# A private PostgreSQL for the tests: prints its SQLAlchemy URL on stdout (nothing when it cannot).
#
# - Installs Debian's `postgresql` when no server binaries are found (root or password-less sudo,
#   apt-get; otherwise says so on stderr and prints nothing: the PostgreSQL tests then skip
#   locally, and fail under .ci/run, which sets DOPOMOGA_REQUIRE_PG=1).
# - Creates a cluster with initdb as the `postgres` user in $DOPOMOGA_PG_DIR (default
#   /tmp/dopomoga-pg-<port>), listening on 127.0.0.1:$DOPOMOGA_PG_PORT only (default: a port derived
#   from this checkout's path, so two checkouts on one machine do not share a server), trust
#   authentication for local connections (test data only), fsync off (tests, not durability).
# - Starts it with pg_ctl when it is not running; reuses it when it is. Stop it with
#   `pg_ctl -D <dir> stop` as the postgres user, or let the machine's /tmp cleaner take it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${DOPOMOGA_PG_PORT:-$((55000 + $(printf '%s' "$root" | cksum | cut -d' ' -f1) % 900))}"
dir="${DOPOMOGA_PG_DIR:-/tmp/dopomoga-pg-$port}"
say() { echo "test-postgres: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 1; fi
}

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [ -z "$(bindir)" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then say "no PostgreSQL and no apt-get"; exit 0; fi
  say "installing Debian's postgresql"
  as_root sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null' \
    || { say "cannot install postgresql (needs root)"; exit 0; }
fi
bin="$(bindir)"
[ -n "$bin" ] || { say "no PostgreSQL server binaries"; exit 0; }

# Run PostgreSQL's tools as the postgres user when we are root (initdb refuses root).
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || { say "no postgres user"; exit 0; }
  pg() { runuser -u postgres -- "$@"; }
  mkdir -p "$dir" && chown postgres: "$dir" && chmod 700 "$dir"
else
  pg() { "$@"; }
  mkdir -p "$dir" && chmod 700 "$dir"
fi

if [ ! -s "$dir/PG_VERSION" ]; then
  pg "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null \
    || pg "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C >/dev/null
fi
if ! pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { say "could not start PostgreSQL (see $dir/server.log)"; exit 0; }
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
