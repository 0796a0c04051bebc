-- pg_webhook.sql - pgbench of the participant webhooks as the service sends
-- them: the identity set_config and nchat_rtc_webhook_participant (record the
-- event id, lock call and participant, apply, members) in one pipeline, one
-- round trip (calls_db_webhook).  Like the events wrk sends (bench/seed.js),
-- each client alternates participant_joined and participant_left of the
-- invitee of its call, createdAt one second apart, so that every event
-- applies: client c works on call wh_base+c, whose invitee is user 2n+1.
-- -D wh_t0=<unix seconds later than any event sent before> -D wh_k=0: wh_k
-- counts the client's events (pgbench keeps a client's variables from one
-- transaction to the next).  Extended/prepared mode only.
\set i :wh_base + :client_id
\set wh_k :wh_k + 1
\set up :wh_k % 2
\set created :wh_t0 + :wh_k
\set joined :created - 1 + :up
\startpipeline
SELECT set_config('role', 'nchat_rtc_system', true), set_config('nchat.user_id', '', true), set_config('statement_timeout', '5000', true);
SELECT nchat_rtc_webhook_participant('EV_pg_' || gen_random_uuid(), CASE WHEN :up::int = 1 THEN 'participant_joined' ELSE 'participant_left' END, (SELECT room FROM bench_calls WHERE n = :i), :created, (SELECT call_id FROM bench_calls WHERE n = :i), (SELECT id FROM bench_users WHERE n = 2 * :i + 1), :joined, 'PA_pgbench', CASE WHEN :up::int = 1 THEN 'joined' ELSE 'left' END, NULL, NULL)::text AS result;
\endpipeline
