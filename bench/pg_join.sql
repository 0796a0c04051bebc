-- pg_join.sql - pgbench of the service's own join, as it sends it: the
-- identity set_config and the join statement of calls_db_join in one
-- pipeline (one round trip, committed at the sync point).  Client c works
-- on join calls c, c+64, ... (bench_calls), joined by user 2n+1
-- (bench_users), as wrk's connections work on distinct calls; the look-ups
-- in bench_users/bench_calls are extra work only pgbench does (small).
-- Extended/prepared mode only (pipeline).
\set i :client_id + 64 * random(0, 7)
\startpipeline
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
WITH c AS (SELECT c.id, c.status, c.call_type, c.livekit_room_name, COALESCE(c.max_participants, 100) AS cap, (SELECT p.status FROM nchat_call_participants p WHERE p.call_id = c.id AND p.user_id = (SELECT id FROM bench_users WHERE n = 2 * :i + 1)) IS NOT DISTINCT FROM 'joined' AND c.status NOT IN ('ended', 'missed', 'declined', 'failed') AND NOT (c.status = 'ringing' AND c.initiator_id IS DISTINCT FROM (SELECT id FROM bench_users WHERE n = 2 * :i + 1)) AS rejoin FROM nchat_calls c WHERE c.id = (SELECT call_id FROM bench_calls WHERE n = :i)) SELECT c.status, c.call_type, c.livekit_room_name AS room, c.cap, c.rejoin, CASE WHEN NOT c.rejoin THEN nchat_rtc_call_join_write(c.id, (SELECT id FROM bench_users WHERE n = 2 * :i + 1), 100)::text END AS written, (SELECT u.display_name FROM nchat_users u WHERE u.id = (SELECT id FROM bench_users WHERE n = 2 * :i + 1)) AS display_name FROM c;
\endpipeline
