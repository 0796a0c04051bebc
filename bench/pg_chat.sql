-- pg_chat.sql - pgbench ceiling for POST /api/streams/{id}/chat: open the
-- stream (with the membership test), insert the message returning its JSON,
-- commit.  @STREAM_ID@ is replaced by scripts/bench.sh; -D chat_base=<first
-- chatting user>: client c posts as users chat_base+c and chat_base+64+c.
-- (E'\x3a' is ':' - pgbench reads :MI in a literal as a variable.)
\set u :chat_base + :client_id + 64 * random(0, 1)
BEGIN;
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
SELECT s.id, s.channel_id, s.broadcaster_id, s.status, s.livekit_room_name, s.livekit_ingress_id, s.livekit_egress_id, s.enable_chat, s.enable_reactions, s.chat_slow_mode_seconds, (SELECT id FROM bench_users WHERE n = :u) IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channel_members m WHERE m.channel_id = s.channel_id AND m.user_id = (SELECT id FROM bench_users WHERE n = :u)) FROM nchat_streams s WHERE s.id = '@STREAM_ID@';
INSERT INTO nchat_stream_chat_messages AS m (stream_id, user_id, content) VALUES ('@STREAM_ID@', (SELECT id FROM bench_users WHERE n = :u), 'bench message from pgbench') RETURNING json_build_object('id', m.id, 'stream_id', m.stream_id, 'user_id', m.user_id, 'display_name', (SELECT u.display_name FROM nchat_users u WHERE u.id = m.user_id), 'content', m.content, 'is_pinned', m.is_pinned, 'pinned_at', to_char((m.pinned_at) AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS"Z"'), 'is_deleted', m.is_deleted, 'created_at', to_char((m.created_at) AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS"Z"'));
COMMIT;
