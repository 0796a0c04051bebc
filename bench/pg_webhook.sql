-- pg_webhook.sql - pgbench of a participant_joined webhook as the service
-- applies it: the identity and one call of nchat_rtc_webhook_participant
-- (record the event id, lock call and participant, update, members)
-- pipelined.  -D wh_base=<first webhook call>: client c works on call
-- wh_base+c, whose invitee is user 2n+1.  Extended/prepared mode only.
\set i :wh_base + :client_id
\startpipeline
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
SELECT nchat_rtc_webhook_participant('EV_pg_' || gen_random_uuid(), 'participant_joined', (SELECT room FROM bench_calls WHERE n = :i), extract(epoch FROM now())::bigint, (SELECT call_id FROM bench_calls WHERE n = :i), (SELECT id FROM bench_users WHERE n = 2 * :i + 1), NULL, 'PA_pgbench', 'joined', NULL, NULL)::text AS result;
\endpipeline
