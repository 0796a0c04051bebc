-- pg_reaction.sql - pgbench of the service's reaction post as it sends
-- it: the identity and the one statement of streams_db_reaction pipelined.
-- The counters are kept by the trigger (one pending row, sql/0013), so
-- they are in both figures.  @STREAM_ID@ and -D chat_base as in pg_chat.sql.
-- (E'\x3a' is ':' - pgbench reads :MI in a literal as a variable.)
\set u :chat_base + :client_id + 64 * random(0, 1)
\startpipeline
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
WITH v AS (SELECT s.id, s.status, s.enable_reactions, s.status IN ('ended', 'failed') AS over, EXISTS (SELECT 1 FROM nchat_channel_members m WHERE m.channel_id = s.channel_id AND m.user_id = (SELECT id FROM bench_users WHERE n = :u)) AS can_view FROM nchat_streams s WHERE s.id = '@STREAM_ID@'), r AS (INSERT INTO nchat_stream_reactions (stream_id, user_id, viewer_id, reaction_type) SELECT v.id, (SELECT id FROM bench_users WHERE n = :u), NULL, (ARRAY['heart','like','fire','clap','laugh','wow','sad','angry'])[1 + :u % 8] FROM v WHERE v.can_view AND NOT v.over AND v.enable_reactions RETURNING id::text AS id, to_char((created_at) AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS"Z"') AS created_at) SELECT v.status, v.can_view, (SELECT r.id FROM r) AS rid FROM v;
\endpipeline
