#!/usr/bin/env bash
# bench/rls_explain.sh - what the row-level security policies cost, from
# EXPLAIN ANALYZE: the same statements, the same data, under
#   old   the policies of 0003/0004 (login role + nchat.role / nchat.user_id),
#   new   the work roles of 0006 (SET LOCAL ROLE nchat_rtc_system / nchat_rtc_user),
#   none  the schema owner (row-level security bypassed: the floor).
# Prints each statement's median execution time over RUNS runs, and the plan
# of the new user policies (where the helper calls become InitPlans).
#
#   RUN_DIR=.run/test bash bench/rls_explain.sh     (services of `KEEP=1 make test`)
#
# Needs NC_BIN (default build/release/nchat-rtc) and the env file of a running
# scripts/services.sh; creates and drops two scratch databases.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${RUN_DIR:-.run/test}
. "$RUN_DIR/env"
NC_BIN=${NC_BIN:-build/release/nchat-rtc}
RUNS=${RUNS:-7}
H="-h 127.0.0.1 -p $PGPORT"
OLD=nctest_rls_old NEW=nctest_rls_new
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; psql -X -q $H -U postgres -d postgres -c "DROP DATABASE IF EXISTS $OLD WITH (FORCE)" -c "DROP DATABASE IF EXISTS $NEW WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

mkdir -p "$tmp/old"
cp sql/000[1-5]_*.sql "$tmp/old/"
for db in $OLD $NEW; do
    psql -X -q $H -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db OWNER nchat_owner"
done
DATABASE_URL=x DATABASE_MIGRATE_URL="postgresql://nchat_owner@127.0.0.1:$PGPORT/$OLD" "$NC_BIN" migrate --sql-dir "$tmp/old" >/dev/null
DATABASE_URL=x DATABASE_MIGRATE_URL="postgresql://nchat_owner@127.0.0.1:$PGPORT/$NEW" "$NC_BIN" migrate --sql-dir sql >/dev/null

# 10,000 users, 200 channels (each user in 3), 50,000 calls (a quarter in a
# channel) with 3 participants each, a recording for every tenth call, one
# stream with 20,000 chat messages and reactions.  User "heavy" is in 2,000
# calls; user "typical" is user 42.
cat >"$tmp/seed.sql" <<'SQL'
SET client_min_messages = warning;
INSERT INTO nchat_users SELECT gen_random_uuid(), 'u' || i FROM generate_series(1, 10000) i;
INSERT INTO nchat_users VALUES ('00000000-0000-4000-8000-0000000000aa', 'heavy');
INSERT INTO nchat_channels SELECT gen_random_uuid(), 'c' || i FROM generate_series(1, 200) i;
CREATE TEMP TABLE u AS SELECT row_number() OVER (ORDER BY display_name) AS n, id FROM nchat_users WHERE display_name LIKE 'u%';
CREATE TEMP TABLE ch AS SELECT row_number() OVER (ORDER BY name) AS n, id FROM nchat_channels;
CREATE INDEX ON u (n); CREATE INDEX ON ch (n);
INSERT INTO nchat_channel_members (channel_id, user_id)
SELECT DISTINCT ch.id, u.id FROM u JOIN ch ON ch.n IN (u.n % 200 + 1, (u.n * 7) % 200 + 1, (u.n * 13) % 200 + 1);
INSERT INTO nchat_channel_members (channel_id, user_id)
SELECT id, '00000000-0000-4000-8000-0000000000aa' FROM ch WHERE n <= 3;
CREATE TEMP TABLE k AS
SELECT i, gen_random_uuid() AS call_id, (i % 10000) + 1 AS a, ((i * 31) % 10000) + 1 AS b,
       ((i * 97) % 10000) + 1 AS c, CASE WHEN i % 4 = 0 THEN i % 200 + 1 END AS chn
  FROM generate_series(1, 50000) i;
INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, initiator_id, channel_id, initiated_at)
SELECT k.call_id, 'perf-' || k.i, 'video', 'ended', ua.id, ch.id, now() - make_interval(mins => k.i)
  FROM k JOIN u ua ON ua.n = k.a LEFT JOIN ch ON ch.n = k.chn;
INSERT INTO nchat_call_participants (call_id, user_id, role, status)
SELECT k.call_id, ua.id, 'initiator', 'left' FROM k JOIN u ua ON ua.n = k.a
UNION ALL SELECT k.call_id, ub.id, 'participant', 'left' FROM k JOIN u ub ON ub.n = k.b WHERE k.b <> k.a
UNION ALL SELECT k.call_id, uc.id, 'participant', 'left' FROM k JOIN u uc ON uc.n = k.c WHERE k.c <> k.a AND k.c <> k.b;
INSERT INTO nchat_call_participants (call_id, user_id, role, status)
SELECT call_id, '00000000-0000-4000-8000-0000000000aa', 'participant', 'left' FROM k WHERE i % 25 = 0;
INSERT INTO nchat_call_recordings (call_id, status) SELECT call_id, 'completed' FROM k WHERE i % 10 = 0;
INSERT INTO nchat_streams (id, channel_id, broadcaster_id, title, status)
SELECT '00000000-0000-4000-8000-0000000000bb', (SELECT id FROM ch WHERE n = 1), (SELECT id FROM u WHERE n = 1), 'perf', 'live';
INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content, created_at)
SELECT '00000000-0000-4000-8000-0000000000bb', u.id, 'm' || i, now() - make_interval(secs => i)
  FROM generate_series(1, 20000) i JOIN u ON u.n = i % 10000 + 1;
ANALYZE nchat_users, nchat_channels, nchat_channel_members, nchat_calls,
    nchat_call_participants, nchat_call_recordings, nchat_streams, nchat_stream_chat_messages;
SQL
for db in $OLD $NEW; do
    psql -X -q -v ON_ERROR_STOP=1 $H -U nchat_owner -d $db -f "$tmp/seed.sql" >/dev/null
done
ids() { psql -X -At $H -U nchat_owner -d $NEW -c "$1"; }
TYPICAL=$(ids "SELECT id FROM nchat_users WHERE display_name = 'u42'")
HEAVY=00000000-0000-4000-8000-0000000000aa
STREAM=00000000-0000-4000-8000-0000000000bb
CALL=$(ids "SELECT p.call_id FROM nchat_call_participants p JOIN nchat_calls c ON c.id = p.call_id WHERE p.user_id = '$TYPICAL' ORDER BY c.initiated_at LIMIT 1")
# the old database has its own random ids: the same user and call there
old_ids() { psql -X -At $H -U nchat_owner -d $OLD -c "$1"; }
TYPICAL_OLD=$(old_ids "SELECT id FROM nchat_users WHERE display_name = 'u42'")
CALL_OLD=$(old_ids "SELECT p.call_id FROM nchat_call_participants p JOIN nchat_calls c ON c.id = p.call_id WHERE p.user_id = '$TYPICAL_OLD' ORDER BY c.initiated_at LIMIT 1")
STREAM_MEMBER=$(ids "SELECT m.user_id FROM nchat_channel_members m JOIN nchat_streams s ON s.channel_id = m.channel_id WHERE s.id = '$STREAM' LIMIT 1")
STREAM_MEMBER_OLD=$(old_ids "SELECT m.user_id FROM nchat_channel_members m JOIN nchat_streams s ON s.channel_id = m.channel_id WHERE s.id = '$STREAM' LIMIT 1")

# ctx SCHEME WHO: the statements that open a transaction in that context
ctx() {
    local scheme=$1 who=$2
    case $scheme:$who in
        none:*) echo "BEGIN;" ;;
        old:service) echo "BEGIN; SELECT set_config('nchat.role', 'service', true);" ;;
        old:*) echo "BEGIN; SELECT set_config('nchat.user_id', '$who', true);" ;;
        new:service) echo "BEGIN; SELECT set_config('role', 'nchat_rtc_system', true);" ;;
        new:*) echo "BEGIN; SELECT set_config('role', 'nchat_rtc_user', true), set_config('nchat.user_id', '$who', true);" ;;
    esac
}

# run SCHEME WHO SQL: median "Execution Time" (ms) of EXPLAIN ANALYZE SQL,
# in one session warmed up first (the service's connections are long-lived:
# plans and the helper functions' plans are cached), each run a transaction.
run() {
    local scheme=$1 who=$2 sql=$3 db=$NEW user=nchat_app
    [ "$scheme" = old ] && db=$OLD
    [ "$scheme" = none ] && user=nchat_owner
    {
        for ((i = 0; i < 3; i++)); do ctx "$scheme" "$who"; echo "$sql;"; echo "ROLLBACK;"; done
        for ((i = 0; i < RUNS; i++)); do
            ctx "$scheme" "$who"; echo "EXPLAIN (ANALYZE, COSTS OFF) $sql;"; echo "ROLLBACK;"
        done
    } | psql -X -q -At $H -U $user -d $db 2>&1 | sed -n 's/^Execution Time: \([0-9.]*\) ms/\1/p' |
        sort -g | sed -n "$(( (RUNS + 1) / 2 ))p"
}

row() { # row LABEL WHO_NEW WHO_OLD SQL_NEW SQL_OLD
    local o n z
    o=$(run old "$3" "$5")
    n=$(run new "$2" "$4")
    z=$(run none - "$4")
    printf '| %s | %s | %s | %s |\n' "$1" "$o" "$n" "$z"
}

echo "| statement (median of $RUNS, warm session, ms) | old policies (0003) | work roles (0006) | no RLS (owner) |"
echo "|---|---|---|---|"
row "service: count(*) of 150,000 participants" service service \
    "SELECT count(*) FROM nchat_call_participants" "SELECT count(*) FROM nchat_call_participants"
row "service: 20,000 chat messages of a stream" service service \
    "SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = '$STREAM'" \
    "SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = '$STREAM'"
row "service: join's call + participant read" service service \
    "SELECT c.status, p.status FROM nchat_calls c JOIN nchat_call_participants p ON p.call_id = c.id WHERE c.id = '$CALL' AND p.user_id = '$TYPICAL'" \
    "SELECT c.status, p.status FROM nchat_calls c JOIN nchat_call_participants p ON p.call_id = c.id WHERE c.id = '$CALL_OLD' AND p.user_id = '$TYPICAL_OLD'"
row "user: GET one call" "$TYPICAL" "$TYPICAL_OLD" \
    "SELECT id, status FROM nchat_calls WHERE id = '$CALL'" "SELECT id, status FROM nchat_calls WHERE id = '$CALL_OLD'"
row "user: the call's participants" "$TYPICAL" "$TYPICAL_OLD" \
    "SELECT user_id, status FROM nchat_call_participants WHERE call_id = '$CALL'" \
    "SELECT user_id, status FROM nchat_call_participants WHERE call_id = '$CALL_OLD'"
row "user: newest 50 visible calls (typical user)" "$TYPICAL" "$TYPICAL_OLD" \
    "SELECT id FROM nchat_calls ORDER BY initiated_at DESC, id DESC LIMIT 50" \
    "SELECT id FROM nchat_calls ORDER BY initiated_at DESC, id DESC LIMIT 50"
row "user: newest 50 visible calls (in 2,000 calls)" "$HEAVY" "$HEAVY" \
    "SELECT id FROM nchat_calls ORDER BY initiated_at DESC, id DESC LIMIT 50" \
    "SELECT id FROM nchat_calls ORDER BY initiated_at DESC, id DESC LIMIT 50"
row "user: chat page, 50 of a stream's 20,000" "$STREAM_MEMBER" "$STREAM_MEMBER_OLD" \
    "SELECT id FROM nchat_stream_chat_messages WHERE stream_id = '$STREAM' ORDER BY created_at DESC, id DESC LIMIT 50" \
    "SELECT id FROM nchat_stream_chat_messages WHERE stream_id = '$STREAM' ORDER BY created_at DESC, id DESC LIMIT 50"
row "user: count(*) of a stream's 20,000 messages" "$STREAM_MEMBER" "$STREAM_MEMBER_OLD" \
    "SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = '$STREAM'" \
    "SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = '$STREAM'"
echo
# The join's transaction shape (identity, the call and the caller's row FOR
# UPDATE, commit) as pgbench: old service policies, work roles, no RLS.
if [ "${PGBENCH_SECONDS:-5}" -gt 0 ] && command -v pgbench >/dev/null; then
    for scheme in old new none; do
        db=$NEW user=nchat_app
        [ "$scheme" = old ] && db=$OLD
        [ "$scheme" = none ] && user=nchat_owner
        psql -X -q $H -U nchat_owner -d $db -c "DROP TABLE IF EXISTS bench_k;
            CREATE TABLE bench_k AS SELECT row_number() OVER (ORDER BY c.id) AS n, c.id AS call_id,
            c.initiator_id AS user_id FROM nchat_calls c; CREATE UNIQUE INDEX ON bench_k (n);
            GRANT SELECT ON bench_k TO nchat_rtc_service, nchat_rtc_system;" >/dev/null 2>&1
        case $scheme in
            old) ident="SELECT set_config('nchat.role', 'service', true), set_config('statement_timeout', '5000', true);" ;;
            new) ident="SELECT set_config('role', 'nchat_rtc_system', true), set_config('nchat.user_id', '', true), set_config('statement_timeout', '5000', true);" ;;
            none) ident="SELECT set_config('statement_timeout', '5000', true);" ;;
        esac
        cat >"$tmp/join-$scheme.sql" <<PGB
\\set i random(1, 50000)
BEGIN;
$ident
SELECT status, call_type, livekit_room_name FROM nchat_calls WHERE id = (SELECT call_id FROM bench_k WHERE n = :i) FOR UPDATE;
SELECT id, status, role FROM nchat_call_participants WHERE call_id = (SELECT call_id FROM bench_k WHERE n = :i) AND user_id = (SELECT user_id FROM bench_k WHERE n = :i) FOR UPDATE;
COMMIT;
PGB
        tps=$(pgbench -n -M prepared -c 4 -j 2 -T "${PGBENCH_SECONDS:-5}" -f "$tmp/join-$scheme.sql" \
                $H -U $user $db 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
        echo "join transaction shape, pgbench -M prepared -c 4, $scheme: ${tps:-?} tps"
    done
fi
echo
echo "Plan of 'user: GET one call' under the work roles (helpers once per statement):"
{ ctx new "$TYPICAL"; echo "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id, status FROM nchat_calls WHERE id = '$CALL';"; echo "ROLLBACK;"; } |
    psql -X -q -At $H -U nchat_app -d $NEW | sed 's/^/    /'
