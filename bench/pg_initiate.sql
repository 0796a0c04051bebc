-- pg_initiate.sql - pgbench of POST /api/calls/initiate with one target as
-- the service sends it: the check statement, then (after CreateRoom to
-- LiveKit, which the ceiling does not have) the insert statement, each
-- pipelined with the identity.  -D ini_base=<first initiate user>: client c
-- calls as user ini_base+2c.  Extended/prepared mode only.
\set a :ini_base + 2 * :client_id
\startpipeline
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
SELECT EXISTS (SELECT 1 FROM nchat_users WHERE id = (SELECT id FROM bench_users WHERE n = :a)) AS caller_exists, (SELECT display_name FROM nchat_users WHERE id = (SELECT id FROM bench_users WHERE n = :a)) AS caller_name, (SELECT u.id::text FROM unnest(ARRAY[(SELECT id FROM bench_users WHERE n = :a + 1)]) WITH ORDINALITY AS u(id, n) WHERE NOT EXISTS (SELECT 1 FROM nchat_users x WHERE x.id = u.id) ORDER BY u.n LIMIT 1) AS missing_user;
\endpipeline
\startpipeline
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
WITH c AS (INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, initiator_id, channel_id, is_group_call, metadata, max_participants, ring_expires_at) SELECT g, 'call-' || g, 'audio', 'ringing', (SELECT id FROM bench_users WHERE n = :a), NULL, false, '{}'::jsonb, 100, now() + make_interval(secs => 3600) FROM gen_random_uuid() AS g RETURNING id), p AS (INSERT INTO nchat_call_participants (call_id, user_id, role, status, joined_at, livekit_identity) SELECT c.id, x.u, x.role, x.status, x.joined, x.u::text FROM c, (SELECT (SELECT id FROM bench_users WHERE n = :a) AS u, 'initiator' AS role, 'joined' AS status, now() AS joined UNION ALL SELECT (SELECT id FROM bench_users WHERE n = :a + 1), 'participant', 'ringing', NULL::timestamptz) x RETURNING 1) SELECT (SELECT count(*) FROM p) AS participants;
\endpipeline
