-- bench/reports_seed.sql - the data set of the reports benchmark
-- (scripts/bench.sh, BENCH=reports): 400 days up to now, 100 channels,
-- 20,000 users, 1,000,000 calls with 3,000,000 participants and 5,000,000
-- connection stats samples, 50,000 recordings, 10,000 streams with 200,000
-- viewer sessions, 200,000 chat messages and 300,000 reactions.
--
-- Run as the superuser with psql -v calls=N (the other counts scale with
-- it).  Triggers and foreign-key checks are off while seeding
-- (session_replication_role = replica): the rows are consistent by
-- construction, and the rollup sweep computes from the rows alone.
-- Ids are md5 of a name and a number, so the tables join without lookups.
\set ON_ERROR_STOP 1
SET session_replication_role = replica;
SET synchronous_commit = off;
SELECT setseed(0.19);

\if :{?calls}
\else
\set calls 1000000
\endif
\set users 20000
\set channels 100
\set streams (:calls / 100)
\set recordings (:calls / 20)

INSERT INTO nchat_users (id, display_name)
SELECT md5('user' || u)::uuid, 'Report User ' || u FROM generate_series(1, :users) u;

INSERT INTO nchat_channels (id, name)
SELECT md5('channel' || k)::uuid, 'Report Channel ' || k FROM generate_series(1, :channels) k;

-- Every user in 5 channels; the first user of each channel is its admin.
INSERT INTO nchat_channel_members (channel_id, user_id, role)
SELECT DISTINCT ON (1, 2) md5('channel' || (1 + (u * 7 + j * 13) % :channels))::uuid,
       md5('user' || u)::uuid, CASE WHEN u <= :channels AND j = 0 THEN 'admin' ELSE 'member' END
FROM generate_series(1, :users) u, generate_series(0, 4) j;

-- Calls.  n -> (initiated, setup, duration, kind, type, status), numbered
-- in time order: every table is written in the order the service would
-- have written it, so rows of the same hour sit together on disk, as they
-- do in production.
CREATE TEMP TABLE seed_calls AS
SELECT md5('call' || y.n)::uuid AS id, y.*
FROM (SELECT row_number() OVER (ORDER BY initiated_at) AS n, x.*
FROM (SELECT now() - random() * interval '400 days' AS initiated_at,
             (1 + floor(random() * 20000)) * interval '1 millisecond' AS setup,
             -- mostly minutes, sometimes hours, a few longer than the 6 h look-back
             CASE WHEN random() < 0.002 THEN interval '7 hours' + random() * interval '5 hours'
                  ELSE (60 + floor(-ln(1 - random() * 0.9999) * 900)) * interval '1 second' END AS dur,
             random() AS r_kind, random() AS r_type, random() AS r_status,
             1 + floor(random() * :users)::int AS u1
      FROM generate_series(1, :calls) g) x) y;
CREATE INDEX ON seed_calls (n);
ANALYZE seed_calls;

INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, initiator_id, channel_id,
                         is_group_call, initiated_at, started_at, ended_at, end_reason,
                         created_at, updated_at)
SELECT id, 'nchat-call-' || id,
       CASE WHEN r_type < 0.5 THEN 'audio' WHEN r_type < 0.9 THEN 'video' ELSE 'screen_share' END,
       CASE WHEN r_status < 0.8 THEN 'ended' WHEN r_status < 0.9 THEN 'missed'
            WHEN r_status < 0.95 THEN 'declined' ELSE 'failed' END,
       md5('user' || u1)::uuid,
       CASE WHEN r_kind < 0.7 THEN md5('channel' || (1 + n % :channels))::uuid END,
       r_kind < 0.85,
       initiated_at,
       CASE WHEN r_status < 0.8 THEN initiated_at + setup END,
       CASE WHEN r_status < 0.8 THEN initiated_at + setup + dur ELSE initiated_at + interval '45 seconds' END,
       CASE WHEN r_status < 0.8 THEN 'hangup' END,
       initiated_at, initiated_at
FROM seed_calls ORDER BY n;

-- Three participants per call: the initiator and two others, who joined
-- answered calls a few seconds apart and left at the end.
INSERT INTO nchat_call_participants (call_id, user_id, role, status, livekit_identity,
                                     invited_at, joined_at, left_at, total_duration_seconds,
                                     created_at, updated_at)
SELECT c.id, md5('user' || uid)::uuid, CASE WHEN k = 0 THEN 'initiator' ELSE 'participant' END,
       CASE WHEN c.r_status < 0.8 THEN 'left' WHEN k = 0 THEN 'left'
            WHEN c.r_status < 0.9 THEN 'missed' WHEN c.r_status < 0.95 THEN 'declined' ELSE 'missed' END,
       md5('user' || uid)::text, c.initiated_at,
       CASE WHEN k = 0 THEN c.initiated_at
            WHEN c.r_status < 0.8 THEN c.initiated_at + c.setup + (k - 1) * interval '3 seconds' END,
       CASE WHEN k = 0 AND c.r_status >= 0.8 THEN c.initiated_at + interval '45 seconds'
            WHEN c.r_status < 0.8 THEN c.initiated_at + c.setup + c.dur END,
       CASE WHEN k = 0 AND c.r_status >= 0.8 THEN 45
            WHEN c.r_status < 0.8 THEN floor(extract(epoch FROM c.setup + c.dur
                 - CASE WHEN k = 0 THEN interval '0' ELSE c.setup + (k - 1) * interval '3 seconds' END))::int
            ELSE 0 END,
       c.initiated_at, c.initiated_at
FROM seed_calls c, generate_series(0, 2) k,
     LATERAL (SELECT 1 + (c.u1 - 1 + k * (1 + c.n % 97)) % :users AS uid) x
ORDER BY c.n, k;

-- Five connection stats samples per call from its participants (answered
-- calls report during the call, the others while trying to connect).
INSERT INTO nchat_webrtc_connections (call_id, user_id, ice_connection_state,
                                      local_candidate_type, remote_candidate_type, turn_used,
                                      rtt_ms, jitter_ms, packet_loss_pct, bitrate_kbps, quality,
                                      created_at)
SELECT c.id, md5('user' || (1 + (c.u1 - 1 + (s % 3) * (1 + c.n % 97)) % :users))::uuid,
       CASE WHEN c.r_status < 0.8 THEN 'connected' WHEN s % 2 = 0 THEN 'failed' ELSE 'checking' END,
       CASE WHEN rr < 0.15 THEN 'relay' WHEN rr < 0.6 THEN 'srflx' ELSE 'host' END,
       'srflx', rr < 0.15,
       round((20 + exp(random() * 5))::numeric, 1)::real,
       round((random() * random() * 40)::numeric, 2)::real,
       round((random() * random() * random() * 12)::numeric, 3)::real,
       (200 + floor(random() * 2500))::int,
       CASE WHEN rq < 0.5 THEN 'excellent' WHEN rq < 0.8 THEN 'good' WHEN rq < 0.95 THEN 'poor'
            WHEN rq < 0.98 THEN 'lost' ELSE 'unknown' END,
       c.initiated_at + c.setup + s * (c.dur / 5) AS t
FROM seed_calls c, generate_series(0, 4) s,
     LATERAL (SELECT random() AS rr, random() AS rq) x
ORDER BY t;

-- Recordings of one answered call in sixteen.
INSERT INTO nchat_call_recordings (call_id, livekit_egress_id, status, object_key,
                                   file_size_bytes, duration_seconds, started_at, ended_at,
                                   created_at, updated_at)
SELECT c.id, 'EG_report_' || c.n, 'completed', 'recordings/' || c.id || '.mp4',
       (floor(extract(epoch FROM c.dur)) * 250000)::bigint, floor(extract(epoch FROM c.dur))::int,
       c.initiated_at + c.setup + interval '5 seconds', c.initiated_at + c.setup + c.dur,
       c.initiated_at + c.setup, c.initiated_at + c.setup + c.dur
FROM seed_calls c WHERE c.n % 16 = 0 AND c.r_status < 0.8
ORDER BY c.n;

-- Streams: one an hour or so, an hour or two live, in the 100 channels.
CREATE TEMP TABLE seed_streams AS
SELECT k, md5('stream' || k)::uuid AS id,
       now() - random() * interval '400 days' AS started_at,
       (600 + floor(random() * 7200)) * interval '1 second' AS dur
FROM generate_series(1, :streams) k;

INSERT INTO nchat_streams (id, channel_id, broadcaster_id, title, status, livekit_room_name,
                           started_at, ended_at, created_at, updated_at)
SELECT id, md5('channel' || (1 + k % :channels))::uuid, md5('user' || (1 + k % :users))::uuid,
       'Report stream ' || k, 'ended', 'nchat-stream-' || id,
       started_at, started_at + dur, started_at - interval '10 minutes', started_at + dur
FROM seed_streams ORDER BY started_at;

-- 20 viewer sessions, 20 chat messages and 30 reactions per stream.
INSERT INTO nchat_stream_viewers (stream_id, user_id, viewer_session_id, joined_at,
                                  last_heartbeat_at, left_at, watch_duration_seconds, created_at)
SELECT s.id, CASE WHEN v % 4 = 0 THEN NULL ELSE md5('user' || (1 + (s.k * 31 + v) % :users))::uuid END,
       'vs-' || s.k || '-' || v, s.started_at + v * (s.dur / 25), s.started_at + s.dur,
       s.started_at + s.dur, floor(extract(epoch FROM s.dur - v * (s.dur / 25)))::int,
       s.started_at + v * (s.dur / 25) AS t
FROM seed_streams s, generate_series(0, 19) v
ORDER BY t;

INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content, created_at)
SELECT s.id, md5('user' || (1 + (s.k * 17 + m) % :users))::uuid, 'message ' || m,
       s.started_at + m * (s.dur / 21) AS t
FROM seed_streams s, generate_series(1, 20) m
ORDER BY t;

INSERT INTO nchat_stream_reactions (stream_id, user_id, reaction_type, created_at)
SELECT s.id, md5('user' || (1 + (s.k * 13 + m) % :users))::uuid,
       (ARRAY['heart', 'like', 'fire', 'clap', 'laugh', 'wow', 'sad', 'angry'])[1 + m % 8],
       s.started_at + m * (s.dur / 31) AS t
FROM seed_streams s, generate_series(1, 30) m
ORDER BY t;

RESET session_replication_role;
ANALYZE;
