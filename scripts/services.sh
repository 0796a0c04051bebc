#!/usr/bin/env bash
# Throw-away PostgreSQL and Redis on loopback (and the LiveKit/S3 stand-ins)
# for `make run` and `make test`. Nothing here touches system services.
#
#   scripts/services.sh start           Postgres + Redis (no-op for what already runs)
#   scripts/services.sh stop            stop everything started under RUN_DIR
#   scripts/services.sh status          what runs, on which port
#   scripts/services.sh env             print the export lines (source them)
#   scripts/services.sh standin-start   LiveKit and S3 stand-ins (node)
#   scripts/services.sh standin-stop
#   scripts/services.sh pg-stop|pg-start|pg-restart        stop/start the cluster,
#                                       keeping its data and port (fault tests)
#   scripts/services.sh redis-stop|redis-start|redis-restart   the same for Redis
#
# When pgbouncer is installed, `start` also runs it (transaction pooling) in
# front of the test Postgres: PGBOUNCER_DATABASE_URL in the env file.
#
# RUN_DIR (default <root>/.run/dev; the tests use <root>/.run/test) holds the
# state: *.pid, *.port, logs, the env file. Sourcing this file defines the
# functions without running anything.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_DIR="${RUN_DIR:-$NC_ROOT/.run/dev}"
case $RUN_DIR in /*) ;; *) RUN_DIR="$PWD/$RUN_DIR" ;; esac

STANDIN_DIR="$NC_ROOT/test/standin"
LK_KEY=devkey
LK_SECRET=secret
S3_BUCKET_NAME=nchat-recordings
S3_KEY=nchat-test-key
S3_SECRET=nchat-test-secret
S3_REGION_NAME=us-east-1

# ---------------------------------------------------------------- PostgreSQL

pg_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        printf '%s\n' "$PG_BINDIR"
        return
    fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    if [ -z "$d" ] && command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir)
    fi
    [ -n "$d" ] && [ -x "$d/pg_ctl" ] || return 1
    printf '%s\n' "$d"
}

pg_datadir() { [ -f "$RUN_DIR/pg.datadir" ] && cat "$RUN_DIR/pg.datadir"; }

# The postmaster's pid, from its own pid file, else from our copy.
pg_pid() {
    local dir pid=""
    dir=$(pg_datadir) || true
    if [ -n "$dir" ] && [ -f "$dir/postmaster.pid" ]; then
        pid=$(head -n1 "$dir/postmaster.pid" | tr -dc '0-9')
    fi
    if [ -z "$pid" ] && [ -f "$RUN_DIR/pg.pid" ]; then
        pid=$(head -n1 "$RUN_DIR/pg.pid" | tr -dc '0-9')
    fi
    [ -n "$pid" ] && printf '%s\n' "$pid"
}

pg_running() {
    local pid
    pid=$(pg_pid) || return 1
    kill -0 "$pid" 2>/dev/null
}

# postgres must be able to reach and write DIR (not the case under /root).
pg_can_use_dir() {
    local dir=$1
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir" 2>/dev/null || return 1
        run_as_postgres test -w "$dir" -a -x "$dir" 2>/dev/null
    else
        test -w "$dir"
    fi
}

pg_prepare_datadir() {
    local bindir=$1 dir ver
    dir=$(pg_datadir) || true
    if [ -n "$dir" ] && [ -f "$dir/PG_VERSION" ]; then
        ver=$(basename "$(dirname "$bindir")")
        if [ "$(cat "$dir/PG_VERSION")" = "$ver" ] || ! [[ $ver =~ ^[0-9]+$ ]]; then
            return 0
        fi
        warn "cluster in $dir is PostgreSQL $(cat "$dir/PG_VERSION"), binaries are $ver; re-creating it"
    fi
    pg_forget_datadir

    dir="$RUN_DIR/pg"
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 700 "$dir"
    if ! pg_can_use_dir "$dir"; then
        rm -rf "$dir"
        dir=$(mktemp -d /tmp/nchat-rtc-pg.XXXXXX)
        chmod 700 "$dir"
        pg_can_use_dir "$dir" || die "user postgres cannot use $dir either"
        printf '%s\n' "$dir" >"$RUN_DIR/pg.tmpdir"
        log "postgres cannot reach $RUN_DIR; its data directory is $dir"
    fi
    printf '%s\n' "$dir" >"$RUN_DIR/pg.datadir"

    run_logged "$RUN_DIR/pg-initdb.log" run_as_postgres "$bindir/initdb" -D "$dir" \
        -A trust -U postgres --encoding=UTF8 --locale=C --no-sync ||
        die "initdb failed"
    # A throw-away cluster: loopback only, no socket file, no durability.
    cat >>"$dir/postgresql.conf" <<'EOF'

# nchat-rtc scripts/services.sh: throw-away cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
EOF
}

# Remove a fallback data directory in /tmp and what records it.
pg_forget_datadir() {
    local tmp
    if [ -f "$RUN_DIR/pg.tmpdir" ]; then
        tmp=$(cat "$RUN_DIR/pg.tmpdir")
        case $tmp in
            /tmp/nchat-rtc-pg.*) rm -rf "$tmp" ;;
        esac
        rm -f "$RUN_DIR/pg.tmpdir"
    fi
    rm -f "$RUN_DIR/pg.datadir" "$RUN_DIR/pg.port" "$RUN_DIR/pg.pid"
}

pg_psql() {
    local port=$1
    shift
    "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" "$@"
}

pg_setup_roles() {
    local port=$1
    pg_psql "$port" -U postgres -d postgres >/dev/null <<'EOF' || return 1
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nchat_owner') THEN
    CREATE ROLE nchat_owner LOGIN CREATEDB CREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nchat_rtc_service') THEN
    CREATE ROLE nchat_rtc_service NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nchat_app') THEN
    CREATE ROLE nchat_app LOGIN IN ROLE nchat_rtc_service;
  END IF;
END
$$;
SELECT 'CREATE DATABASE nchat OWNER nchat_owner ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'nchat')
\gexec
EOF
}

pg_start() {
    local bindir dir port pid
    if pg_running; then
        return 0
    fi
    bindir=$(pg_bindir) || die "PostgreSQL server binaries not found (run scripts/deps.sh)"
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        die "no 'postgres' user (the postgresql package creates it; run scripts/deps.sh)"
    fi
    pg_prepare_datadir "$bindir"
    dir=$(pg_datadir)
    rm -f "$dir/postmaster.pid"  # not running (checked above): stale
    for _ in 1 2 3; do
        port=$(free_port) || die "no free port"
        printf '\n--- %s: starting on port %s\n' "$(date '+%F %T')" "$port" >>"$RUN_DIR/pg.log"
        # Without -l the server writes to pg_ctl's stdout: our log file,
        # opened by us, so postgres needs no access to RUN_DIR.
        if run_as_postgres "$bindir/pg_ctl" -D "$dir" -w -t 60 -o "-p $port" start \
                >>"$RUN_DIR/pg.log" 2>&1 </dev/null; then
            break
        fi
        port=""
    done
    if [ -z "$port" ]; then
        warn "PostgreSQL did not start; last lines of $RUN_DIR/pg.log:"
        tail -n 30 "$RUN_DIR/pg.log" >&2
        exit 1
    fi
    printf '%s\n' "$port" >"$RUN_DIR/pg.port"
    pid=$(head -n1 "$dir/postmaster.pid" | tr -dc '0-9')
    printf '%s\n' "$pid" >"$RUN_DIR/pg.pid"
    pg_setup_roles "$port" || die "creating roles/database in PostgreSQL failed"
}

pg_stop() {
    local dir pid i
    dir=$(pg_datadir) || true
    if pg_running; then
        pid=$(pg_pid)
        if [ -n "$dir" ] && [ -f "$dir/postmaster.pid" ] && [ -n "$(pg_bindir)" ]; then
            run_as_postgres "$(pg_bindir)/pg_ctl" -D "$dir" -m fast -w -t 60 stop \
                >>"$RUN_DIR/pg.log" 2>&1 </dev/null || true
        fi
        if kill -0 "$pid" 2>/dev/null; then
            kill -INT "$pid" 2>/dev/null || true  # fast shutdown
            for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$RUN_DIR/pg.port" "$RUN_DIR/pg.pid"
    # A fallback directory in /tmp is not kept between runs.
    if [ -f "$RUN_DIR/pg.tmpdir" ]; then
        pg_forget_datadir
    fi
}

# --------------------------------------------------------------------- Redis

redis_running() { pid_alive "$RUN_DIR/redis.pid"; }

redis_start() {
    local port i
    redis_running && return 0
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found (run scripts/deps.sh)"
    mkdir -p "$RUN_DIR/redis"
    rm -f "$RUN_DIR/redis.pid"
    for _ in 1 2 3; do
        port=$(free_port) || die "no free port"
        if redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
                --dir "$RUN_DIR/redis" --daemonize yes \
                --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log" \
                >>"$RUN_DIR/redis.log" 2>&1 </dev/null &&
            wait_port "$port" 15; then
            printf '%s\n' "$port" >"$RUN_DIR/redis.port"
            # the pid file can trail the listening socket by a moment
            for ((i = 0; i < 50; i++)); do
                [ -s "$RUN_DIR/redis.pid" ] && return 0
                sleep 0.1
            done
            return 0
        fi
        redis_stop
    done
    warn "Redis did not start; last lines of $RUN_DIR/redis.log:"
    tail -n 30 "$RUN_DIR/redis.log" >&2 || true
    exit 1
}

redis_stop() {
    local port
    if redis_running && [ -f "$RUN_DIR/redis.port" ] && command -v redis-cli >/dev/null 2>&1; then
        port=$(cat "$RUN_DIR/redis.port")
        redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    fi
    stop_pidfile "$RUN_DIR/redis.pid" redis-server
    rm -f "$RUN_DIR/redis.port"
}

# -------------------------------------------- outages for the fault tests
# pg_pause / pg_resume and redis_pause / redis_resume stop and start the
# running instance but keep its data and its port (RUN_DIR/*.port), so the
# URLs in the env file stay valid and clients reconnect on their own.

pg_pause() {
    local dir pid i
    pg_running || return 0
    dir=$(pg_datadir) || die "no data directory recorded in $RUN_DIR"
    pid=$(pg_pid)
    run_as_postgres "$(pg_bindir)/pg_ctl" -D "$dir" -m fast -w -t 30 stop \
        >>"$RUN_DIR/pg.log" 2>&1 </dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$RUN_DIR/pg.pid"
}

pg_resume() {
    local dir port pid
    pg_running && return 0
    dir=$(pg_datadir) || die "no data directory recorded in $RUN_DIR (run: scripts/services.sh start)"
    [ -f "$RUN_DIR/pg.port" ] || die "no port recorded in $RUN_DIR"
    port=$(cat "$RUN_DIR/pg.port")
    rm -f "$dir/postmaster.pid"  # not running (checked above): stale
    printf '\n--- %s: restarting on port %s\n' "$(date '+%F %T')" "$port" >>"$RUN_DIR/pg.log"
    run_as_postgres "$(pg_bindir)/pg_ctl" -D "$dir" -w -t 60 -o "-p $port" start \
        >>"$RUN_DIR/pg.log" 2>&1 </dev/null || die "PostgreSQL did not start again on port $port"
    pid=$(head -n1 "$dir/postmaster.pid" | tr -dc '0-9')
    printf '%s\n' "$pid" >"$RUN_DIR/pg.pid"
}

redis_pause() {
    local port
    redis_running || return 0
    port=$(cat "$RUN_DIR/redis.port" 2>/dev/null || true)
    if [ -n "$port" ] && command -v redis-cli >/dev/null 2>&1; then
        redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    fi
    stop_pidfile "$RUN_DIR/redis.pid" redis-server
}

redis_resume() {
    local port i
    redis_running && return 0
    [ -f "$RUN_DIR/redis.port" ] || die "no Redis port recorded in $RUN_DIR"
    port=$(cat "$RUN_DIR/redis.port")
    rm -f "$RUN_DIR/redis.pid"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --dir "$RUN_DIR/redis" --daemonize yes \
        --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log" \
        >>"$RUN_DIR/redis.log" 2>&1 </dev/null || die "Redis did not start again on port $port"
    wait_port "$port" 15 || die "Redis did not listen again on port $port"
    for ((i = 0; i < 50; i++)); do
        [ -s "$RUN_DIR/redis.pid" ] && return 0
        sleep 0.1
    done
}

# ----------------------------------------------------------------- pgbouncer
# Optional: transaction pooling in front of the test Postgres, to prove the
# service keeps no session state. pgbouncer refuses to run as root, so it
# runs as postgres (like the cluster) from a directory postgres can use.

pgb_bin() {
    command -v pgbouncer 2>/dev/null ||
        { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; }
}

pgb_dir() { [ -f "$RUN_DIR/pgbouncer.dir" ] && cat "$RUN_DIR/pgbouncer.dir"; }

pgb_running() {
    local dir
    dir=$(pgb_dir) || return 1
    pid_alive "$dir/pgbouncer.pid"
}

pgb_start() {
    local bin dir pgport port
    bin=$(pgb_bin) || return 0  # not installed: nothing to do
    pgb_running && return 0
    { pg_running && [ -f "$RUN_DIR/pg.port" ]; } || return 0
    pgport=$(cat "$RUN_DIR/pg.port")
    dir="$RUN_DIR/pgbouncer"
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! pg_can_use_dir "$dir"; then
        rm -rf "$dir"
        dir=$(mktemp -d /tmp/nchat-rtc-pgb.XXXXXX)
        if ! pg_can_use_dir "$dir"; then
            warn "user postgres cannot use $dir; pgbouncer not started"
            rm -rf "$dir"
            return 0
        fi
    fi
    printf '%s\n' "$dir" >"$RUN_DIR/pgbouncer.dir"
    # auth_type trust still wants the user names listed
    printf '"nchat_app" ""\n"nchat_owner" ""\n' >"$dir/userlist.txt"
    for _ in 1 2 3; do
        port=$(free_port) || die "no free port"
        # server_login_retry 1: back within a second after a Postgres restart
        cat >"$dir/pgbouncer.ini" <<EOF
[databases]
nchat = host=127.0.0.1 port=$pgport dbname=nchat

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 40
server_login_retry = 1
server_connect_timeout = 5
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
        if [ "$(id -u)" -eq 0 ]; then
            chown -R postgres:postgres "$dir"
        fi
        if run_as_postgres "$bin" -d -q "$dir/pgbouncer.ini" \
                >>"$RUN_DIR/pgbouncer.log" 2>&1 </dev/null && wait_port "$port" 10; then
            printf '%s\n' "$port" >"$RUN_DIR/pgbouncer.port"
            return 0
        fi
        stop_pidfile "$dir/pgbouncer.pid" pgbouncer
    done
    warn "pgbouncer did not start; see $dir/pgbouncer.log"
    return 0
}

pgb_stop() {
    local dir
    dir=$(pgb_dir) || return 0
    stop_pidfile "$dir/pgbouncer.pid" pgbouncer
    rm -f "$RUN_DIR/pgbouncer.port" "$RUN_DIR/pgbouncer.dir"
    case $dir in
        /tmp/nchat-rtc-pgb.*) rm -rf "$dir" ;;
    esac
}

# ----------------------------------------------------------------- stand-ins

# standin_launch NAME SCRIPT ARGS...: start `node SCRIPT --port 0 ARGS` in the
# background (environment already exported by the caller), wait for its
# `LISTENING <port>` line, record NAME.pid and NAME.port.
standin_launch() {
    local name=$1 script=$2 logf pid port i
    shift 2
    logf="$RUN_DIR/$name.log"
    : >"$logf"
    if command -v setsid >/dev/null 2>&1; then
        (cd "$STANDIN_DIR" && exec setsid node "$script" --port 0 "$@") >"$logf" 2>&1 </dev/null &
    else
        (cd "$STANDIN_DIR" && exec node "$script" --port 0 "$@") >"$logf" 2>&1 </dev/null &
    fi
    pid=$!
    printf '%s\n' "$pid" >"$RUN_DIR/$name.pid"
    port=""
    for ((i = 0; i < 300; i++)); do
        port=$(sed -n 's/^LISTENING \([0-9][0-9]*\).*/\1/p' "$logf" | head -n1)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        warn "stand-in $name did not print LISTENING within 30 s; its log:"
        tail -n 40 "$logf" >&2 || true
        stop_pidfile "$RUN_DIR/$name.pid" "$name"
        return 1
    fi
    printf '%s\n' "$port" >"$RUN_DIR/$name.port"
}

standin_start() {
    mkdir -p "$RUN_DIR"
    if [ ! -f "$STANDIN_DIR/livekit.js" ] || [ ! -f "$STANDIN_DIR/s3.js" ]; then
        warn "test/standin/livekit.js or s3.js missing; stand-ins not started"
        return 0
    fi
    if [ -f "$STANDIN_DIR/package.json" ] && [ ! -d "$STANDIN_DIR/node_modules" ]; then
        warn "test/standin/node_modules missing (run scripts/deps.sh); trying anyway"
    fi
    if ! pid_alive "$RUN_DIR/livekit.pid"; then
        LIVEKIT_API_KEY=$LK_KEY LIVEKIT_API_SECRET=$LK_SECRET \
            standin_launch livekit livekit.js || return 1
    fi
    if ! pid_alive "$RUN_DIR/s3.pid"; then
        mkdir -p "$RUN_DIR/s3"
        S3_ACCESS_KEY=$S3_KEY S3_SECRET_KEY=$S3_SECRET S3_REGION=$S3_REGION_NAME \
            standin_launch s3 s3.js --dir "$RUN_DIR/s3" --bucket "$S3_BUCKET_NAME" || return 1
    fi
    write_env
}

# The stand-ins take a moment to close; stop them side by side.
standin_stop_quiet() {
    local a b
    stop_pidfile "$RUN_DIR/livekit.pid" "LiveKit stand-in" & a=$!
    stop_pidfile "$RUN_DIR/s3.pid" "S3 stand-in" & b=$!
    wait "$a" "$b" || true
    rm -f "$RUN_DIR/livekit.port" "$RUN_DIR/s3.port"
}

standin_stop() {
    standin_stop_quiet
    [ -d "$RUN_DIR" ] && write_env
    return 0
}

# ------------------------------------------------------------------ env file

# Rebuild RUN_DIR/env from what is running. RUN_DIR/env.extra (written by
# run.sh, e.g. for a real livekit-server) is appended as is.
write_env() {
    local f="$RUN_DIR/env" tmp pgp rp lkp s3p
    tmp="$f.tmp.$$"
    {
        echo "# written by scripts/services.sh; source it"
        if pg_running && [ -f "$RUN_DIR/pg.port" ]; then
            pgp=$(cat "$RUN_DIR/pg.port")
            echo "export PGPORT=$pgp"
            echo "export DATABASE_URL=postgresql://nchat_app@127.0.0.1:$pgp/nchat"
            echo "export DATABASE_MIGRATE_URL=postgresql://nchat_owner@127.0.0.1:$pgp/nchat"
            echo "export NC_TEST_ADMIN_URL=postgresql://postgres@127.0.0.1:$pgp/postgres"
        fi
        if pgb_running && [ -f "$RUN_DIR/pgbouncer.port" ]; then
            echo "export PGBOUNCER_PORT=$(cat "$RUN_DIR/pgbouncer.port")"
            echo "export PGBOUNCER_DATABASE_URL=postgresql://nchat_app@127.0.0.1:$(cat "$RUN_DIR/pgbouncer.port")/nchat"
        fi
        if redis_running && [ -f "$RUN_DIR/redis.port" ]; then
            rp=$(cat "$RUN_DIR/redis.port")
            echo "export REDIS_PORT=$rp"
            echo "export REDIS_URL=redis://127.0.0.1:$rp/0"
        fi
        if pid_alive "$RUN_DIR/livekit.pid" && [ -f "$RUN_DIR/livekit.port" ]; then
            lkp=$(cat "$RUN_DIR/livekit.port")
            echo "export LK_STANDIN_URL=http://127.0.0.1:$lkp"
            echo "export LIVEKIT_URL=ws://127.0.0.1:$lkp"
            echo "export LIVEKIT_API_KEY=$LK_KEY"
            echo "export LIVEKIT_API_SECRET=$LK_SECRET"
        fi
        if pid_alive "$RUN_DIR/s3.pid" && [ -f "$RUN_DIR/s3.port" ]; then
            s3p=$(cat "$RUN_DIR/s3.port")
            echo "export S3_ENDPOINT=http://127.0.0.1:$s3p"
            echo "export S3_BUCKET=$S3_BUCKET_NAME"
            echo "export S3_REGION=$S3_REGION_NAME"
            echo "export S3_ACCESS_KEY=$S3_KEY"
            echo "export S3_SECRET_KEY=$S3_SECRET"
        fi
        [ -f "$RUN_DIR/env.extra" ] && cat "$RUN_DIR/env.extra"
    } >"$tmp"
    mv -f "$tmp" "$f"
}

# ------------------------------------------------------------------ commands

svc_start() {
    mkdir -p "$RUN_DIR"
    pg_start
    redis_start
    pgb_start
    write_env
}

svc_stop() {
    [ -d "$RUN_DIR" ] || return 0
    # Everything side by side: each part has its own state files.
    local a b c d
    standin_stop_quiet & a=$!
    # a livekit-server --dev started by run.sh
    stop_pidfile "$RUN_DIR/livekit-server.pid" livekit-server & b=$!
    redis_stop & c=$!
    # pgbouncer first: it holds connections to the cluster
    { pgb_stop; pg_stop; } & d=$!
    wait "$a" "$b" "$c" "$d" || true
    rm -f "$RUN_DIR/env.extra"
    write_env
}

svc_status() {
    local rc=0 name
    if pg_running; then
        echo "postgres  running  pid $(pg_pid)  port $(cat "$RUN_DIR/pg.port" 2>/dev/null)  data $(pg_datadir)"
    else
        echo "postgres  stopped"; rc=3
    fi
    if redis_running; then
        echo "redis     running  pid $(cat "$RUN_DIR/redis.pid")  port $(cat "$RUN_DIR/redis.port" 2>/dev/null)"
    else
        echo "redis     stopped"; rc=3
    fi
    if pgb_running; then
        echo "pgbouncer running  port $(cat "$RUN_DIR/pgbouncer.port" 2>/dev/null)  dir $(pgb_dir)"
    fi
    for name in livekit s3 livekit-server; do
        if pid_alive "$RUN_DIR/$name.pid"; then
            echo "$name  running  pid $(cat "$RUN_DIR/$name.pid")  port $(cat "$RUN_DIR/$name.port" 2>/dev/null || echo -)"
        fi
    done
    return "$rc"
}

services_main() {
    set -euo pipefail
    case ${1:-} in
        start) svc_start ;;
        stop) svc_stop ;;
        status) svc_status ;;
        env)
            [ -f "$RUN_DIR/env" ] || die "no $RUN_DIR/env (run: scripts/services.sh start)"
            cat "$RUN_DIR/env" ;;
        standin-start) standin_start ;;
        standin-stop) standin_stop ;;
        pg-stop) pg_pause ;;
        pg-start) pg_resume ;;
        pg-restart) pg_pause; pg_resume ;;
        redis-stop) redis_pause ;;
        redis-start) redis_resume ;;
        redis-restart) redis_pause; redis_resume ;;
        *) sed -n '2,21p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    services_main "$@"
fi
