-- pg_join.sql - pgbench ceiling for POST /api/calls/{id}/join: the
-- statements join runs for a participant who already joined (the path the
-- wrk run measures), in its transaction shape.  Client c works on join
-- calls c, c+64, ... (bench_calls), joined by user 2n+1 (bench_users), as
-- wrk's connections work on distinct calls.  The row look-ups in
-- bench_users/bench_calls are extra work only the ceiling does (small).
\set i :client_id + 64 * random(0, 7)
BEGIN;
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
SELECT id::text, status, call_type, livekit_room_name, initiator_id::text, channel_id::text, max_participants, started_at IS NOT NULL FROM nchat_calls WHERE id = (SELECT call_id FROM bench_calls WHERE n = :i) FOR UPDATE;
SELECT id::text, status, role FROM nchat_call_participants WHERE call_id = (SELECT call_id FROM bench_calls WHERE n = :i) AND user_id = (SELECT id FROM bench_users WHERE n = 2 * :i + 1) FOR UPDATE;
SELECT display_name FROM nchat_users WHERE id = (SELECT id FROM bench_users WHERE n = 2 * :i + 1);
SELECT user_id::text FROM nchat_call_participants WHERE call_id = (SELECT call_id FROM bench_calls WHERE n = :i) AND user_id IS NOT NULL;
COMMIT;
