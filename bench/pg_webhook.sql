-- pg_webhook.sql - pgbench ceiling for a participant_joined webhook that
-- applies: record the event id, lock call and participant, update both,
-- commit; then the read of the members for the realtime fan-out (its own
-- short transaction, as the service does).  -D wh_base=<first webhook
-- call>: client c works on call wh_base+c, whose invitee is user 2n+1.
-- Prepared/extended mode only (:pid is a parameter).
\set i :wh_base + :client_id
BEGIN;
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
INSERT INTO nchat_livekit_webhook_events (event_id, event, room_name, created_at) VALUES ('EV_pg_' || gen_random_uuid(), 'participant_joined', (SELECT room FROM bench_calls WHERE n = :i), to_timestamp(extract(epoch FROM now())::bigint)) ON CONFLICT (event_id) DO NOTHING;
SELECT status, COALESCE(initiator_id::text, '') FROM nchat_calls WHERE id = (SELECT call_id FROM bench_calls WHERE n = :i) FOR UPDATE;
SELECT id::text AS pid, status AS pst, role AS prole, last_event_at IS NULL OR now() > last_event_at AS newer, last_event_at IS NULL OR now() >= last_event_at AS same FROM nchat_call_participants WHERE call_id = (SELECT call_id FROM bench_calls WHERE n = :i) AND user_id = (SELECT id FROM bench_users WHERE n = 2 * :i + 1) FOR UPDATE
\gset
UPDATE nchat_call_participants SET status = 'joined', livekit_participant_id = COALESCE(NULLIF('PA_pgbench', ''), livekit_participant_id), livekit_identity = (SELECT id::text FROM bench_users WHERE n = 2 * :i + 1), joined_at = COALESCE(now(), joined_at, now()), last_event_at = now() WHERE id = :pid;
UPDATE nchat_calls SET last_event_at = GREATEST(last_event_at, now()) WHERE id = (SELECT call_id FROM bench_calls WHERE n = :i);
COMMIT;
BEGIN;
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
SELECT user_id::text FROM nchat_call_participants WHERE call_id = (SELECT call_id FROM bench_calls WHERE n = :i) AND user_id IS NOT NULL;
ROLLBACK;
