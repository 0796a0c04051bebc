-- pg_chat.sql - pgbench of the service's chat post as it sends it: the
-- identity and the one statement of streams_db_chat_post (the stream, the
-- caller's rights, the insert) pipelined.  @STREAM_ID@ is replaced by
-- scripts/bench.sh; -D chat_base=<first chatting user>: client c posts as
-- users chat_base+c and chat_base+64+c.
-- (E'\x3a' is ':' - pgbench reads :MI in a literal as a variable.)
\set u :chat_base + :client_id + 64 * random(0, 1)
\startpipeline
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
WITH v AS (SELECT s.id, s.status, s.enable_chat, s.chat_slow_mode_seconds AS slow, s.status IN ('ended', 'failed') AS over, s.broadcaster_id = (SELECT id FROM bench_users WHERE n = :u) AS is_broadcaster, EXISTS (SELECT 1 FROM nchat_channel_members m WHERE m.channel_id = s.channel_id AND m.user_id = (SELECT id FROM bench_users WHERE n = :u)) AS can_view FROM nchat_streams s WHERE s.id = '@STREAM_ID@'), m AS (INSERT INTO nchat_stream_chat_messages AS m (stream_id, user_id, content) SELECT v.id, (SELECT id FROM bench_users WHERE n = :u), 'bench message from pgbench' FROM v WHERE v.can_view AND NOT v.over AND v.enable_chat AND v.slow = 0 RETURNING json_build_object('id', m.id, 'stream_id', m.stream_id, 'user_id', m.user_id, 'display_name', (SELECT u.display_name FROM nchat_users u WHERE u.id = m.user_id), 'content', m.content, 'is_pinned', m.is_pinned, 'pinned_at', to_char((m.pinned_at) AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS"Z"'), 'is_deleted', m.is_deleted, 'created_at', to_char((m.created_at) AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS"Z"'))::text AS msg) SELECT v.status, v.can_view, (SELECT m.msg FROM m) AS msg FROM v;
\endpipeline
