-- pg_reaction.sql - pgbench ceiling for POST /api/streams/{id}/reactions
-- (signed-in viewer): open the stream, insert the reaction, commit (the
-- per-type counter is kept by a trigger, so it is in both figures).
-- @STREAM_ID@ and -D chat_base as in pg_chat.sql.
-- (E'\x3a' is ':' - pgbench reads :MI in a literal as a variable.)
\set u :chat_base + :client_id + 64 * random(0, 1)
BEGIN;
SELECT set_config('role', 'nchat_rtc_system', true), set_config('statement_timeout', '5000', true);
SELECT s.id, s.channel_id, s.broadcaster_id, s.status, s.livekit_room_name, s.livekit_ingress_id, s.livekit_egress_id, s.enable_chat, s.enable_reactions, s.chat_slow_mode_seconds, (SELECT id FROM bench_users WHERE n = :u) IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channel_members m WHERE m.channel_id = s.channel_id AND m.user_id = (SELECT id FROM bench_users WHERE n = :u)) FROM nchat_streams s WHERE s.id = '@STREAM_ID@';
INSERT INTO nchat_stream_reactions (stream_id, user_id, viewer_id, reaction_type) VALUES ('@STREAM_ID@', (SELECT id FROM bench_users WHERE n = :u), NULL, (ARRAY['heart','like','fire','clap','laugh','wow','sad','angry'])[1 + :u % 8]) RETURNING id, to_char((created_at) AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS"Z"');
COMMIT;
