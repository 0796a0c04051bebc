-- pg_initiate.sql - pgbench ceiling for POST /api/calls/initiate with one
-- target: the check transaction (read-only, rolled back) and the insert
-- transaction, as the service runs them (CreateRoom to LiveKit happens
-- between the two, outside any transaction; the ceiling has no LiveKit).
-- -D ini_base=<first initiate user>: client c calls as user ini_base+2c.
-- Prepared/extended mode only (:cid is a parameter).
\set a :ini_base + 2 * :client_id
BEGIN;
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
SELECT display_name FROM nchat_users WHERE id = (SELECT id FROM bench_users WHERE n = :a);
SELECT u.id::text FROM unnest(ARRAY[(SELECT id FROM bench_users WHERE n = :a + 1)]) AS u(id) WHERE NOT EXISTS (SELECT 1 FROM nchat_users x WHERE x.id = u.id) LIMIT 1;
ROLLBACK;
BEGIN;
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, initiator_id, channel_id, is_group_call, metadata, max_participants, ring_expires_at) SELECT g, 'call-' || g, 'audio', 'ringing', (SELECT id FROM bench_users WHERE n = :a), NULL, false, '{}'::jsonb, 100, now() + make_interval(secs => 3600) FROM gen_random_uuid() AS g RETURNING id::text AS cid
\gset
INSERT INTO nchat_call_participants (call_id, user_id, role, status, joined_at, livekit_identity) VALUES (:cid, (SELECT id FROM bench_users WHERE n = :a), 'initiator', 'joined', now(), (SELECT id::text FROM bench_users WHERE n = :a));
INSERT INTO nchat_call_participants (call_id, user_id, role, status, livekit_identity) SELECT :cid::uuid, u, 'participant', 'ringing', u::text FROM unnest(ARRAY[(SELECT id FROM bench_users WHERE n = :a + 1)]) AS u;
COMMIT;
