# Sourced by .ci/run: a throwaway PostgreSQL server on 127.0.0.1 for the registry tests.
# Installs Debian's `postgresql` when missing (apt-get update only if the install needs it), starts
# a cluster in a temporary folder on a free port as the postgres user, exports
# NGRPO_TEST_DATABASE_URL, and stops and deletes the cluster when the calling shell exits.
# Without root and without PostgreSQL, the registry tests run on SQLite only.

start_test_postgres() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ]; then
            echo "ci: no PostgreSQL and not root: registry tests run on SQLite only" >&2
            return 0
        fi
        # Only our throwaway cluster: no system-wide "main" cluster left running after CI.
        mkdir -p /etc/postgresql-common
        [ -f /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends postgresql >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postgresql >/dev/null; }
    fi
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    PG_CI_DIR=$(mktemp -d /tmp/ngrpo-pg.XXXXXX)
    local port as_postgres=()
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # initdb refuses to run as root; in CI we are root, so run the server as `postgres`.
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$PG_CI_DIR"
        as_postgres=(runuser -u postgres --)
    fi
    "${as_postgres[@]}" "$bin/initdb" -D "$PG_CI_DIR/data" -A trust -U postgres >/dev/null
    "${as_postgres[@]}" "$bin/pg_ctl" -D "$PG_CI_DIR/data" -l "$PG_CI_DIR/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_CI_DIR -c fsync=off -c max_connections=200" start >/dev/null
    # shellcheck disable=SC2064  # expand now: the folder and binaries are fixed
    trap "${as_postgres[*]} $bin/pg_ctl -D $PG_CI_DIR/data -m immediate stop >/dev/null; rm -rf $PG_CI_DIR" EXIT
    export NGRPO_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    echo "ci: PostgreSQL for the registry tests at $NGRPO_TEST_DATABASE_URL"
}
