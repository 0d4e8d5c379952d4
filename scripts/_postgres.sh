# Sourced by scripts/test.sh: a throwaway PostgreSQL cluster on a free loopback port, for the tests that
# run semantic memory on the Postgres checkpointer. Sets MEMALIGN_TEST_POSTGRES_URL when it is up and
# stops the cluster on exit; without a PostgreSQL server on the machine those tests skip and say why.
start_test_postgres() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
    echo "PostgreSQL not found: the Postgres checkpointer tests will be skipped (apt-get install postgresql)." >&2
    return 0
  fi
  PG_DIR="$(mktemp -d /tmp/memalign-pg.XXXXXX)"
  local port run_as=()
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  if [[ "$(id -u)" == "0" ]]; then
    chown postgres "$PG_DIR" 2>/dev/null || { echo "no postgres user to run PostgreSQL as; skipping" >&2; return 0; }
    run_as=(runuser -u postgres --)
  fi
  if "${run_as[@]}" "$bin/initdb" -D "$PG_DIR/data" -A trust -U postgres >"$PG_DIR/initdb.log" 2>&1 \
     && "${run_as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
          -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null; then
    export MEMALIGN_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    PG_STOP=("${run_as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate stop)
    trap 'stop_test_postgres' EXIT
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') for the tests on 127.0.0.1:$port" >&2
  else
    echo "PostgreSQL did not start (see $PG_DIR); the Postgres checkpointer tests will be skipped." >&2
  fi
}

stop_test_postgres() {
  "${PG_STOP[@]}" >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
