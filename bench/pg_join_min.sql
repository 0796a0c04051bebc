-- pg_join_min.sql - the ceiling of a join: the fewest statements that can
-- do one, whatever the service itself sends.  One statement (a CTE) reads
-- the call and the caller's row and inserts / updates the row only when
-- the caller is not joined yet; autocommit; the service context comes
-- from the connection (PGOPTIONS="-c role=nchat_rtc_system"), so nothing else
-- is sent.  Same rows as pg_join.sql.
\set i :client_id + 64 * random(0, 7)
WITH k AS (SELECT (SELECT call_id FROM bench_calls WHERE n = :i) AS call_id, (SELECT id FROM bench_users WHERE n = 2 * :i + 1) AS user_id), c AS (SELECT c.id, c.status, c.call_type, c.livekit_room_name FROM nchat_calls c, k WHERE c.id = k.call_id), p AS (SELECT p.status FROM nchat_call_participants p, k WHERE p.call_id = k.call_id AND p.user_id = k.user_id), u AS (INSERT INTO nchat_call_participants (call_id, user_id, role, status, joined_at, livekit_identity) SELECT k.call_id, k.user_id, 'participant', 'joined', now(), k.user_id::text FROM k WHERE NOT EXISTS (SELECT 1 FROM p WHERE p.status = 'joined') ON CONFLICT (call_id, user_id) DO UPDATE SET status = 'joined', joined_at = now(), left_at = NULL RETURNING 1) SELECT c.status, c.call_type, c.livekit_room_name, p.status AS participant FROM c LEFT JOIN p ON true;
