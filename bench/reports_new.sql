-- bench/reports_new.sql - new activity for the rollup catch-up figure of the
-- reports benchmark: :calls calls (default 100,000) with three participants
-- and five connection stats samples each, initiated in the last 24 hours
-- and ended by now, inserted now (created_at and updated_at = now(), as the
-- service stamps them).  Run as the superuser after bench/reports_seed.sql.
\set ON_ERROR_STOP 1
SET session_replication_role = replica;
SET synchronous_commit = off;
SELECT setseed(0.23);

\if :{?calls}
\else
\set calls 100000
\endif
\set users 20000
\set channels 100

CREATE TEMP TABLE new_calls AS
SELECT md5('newcall' || y.n)::uuid AS id, y.*
FROM (SELECT row_number() OVER (ORDER BY initiated_at) AS n, x.*
      FROM (SELECT now() - dur - setup - random() * interval '24 hours' AS initiated_at, setup, dur,
                   r_kind, r_type, r_status, u1
            FROM (SELECT (1 + floor(random() * 20000)) * interval '1 millisecond' AS setup,
                         (60 + floor(-ln(1 - random() * 0.9999) * 900)) * interval '1 second' AS dur,
                         random() AS r_kind, random() AS r_type, random() AS r_status,
                         1 + floor(random() * :users)::int AS u1
                  FROM generate_series(1, :calls) g) z) x) y;

INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, initiator_id, channel_id,
                         is_group_call, initiated_at, started_at, ended_at, end_reason)
SELECT id, 'nchat-call-' || id,
       CASE WHEN r_type < 0.5 THEN 'audio' WHEN r_type < 0.9 THEN 'video' ELSE 'screen_share' END,
       CASE WHEN r_status < 0.8 THEN 'ended' WHEN r_status < 0.9 THEN 'missed'
            WHEN r_status < 0.95 THEN 'declined' ELSE 'failed' END,
       md5('user' || u1)::uuid,
       CASE WHEN r_kind < 0.7 THEN md5('channel' || (1 + n % :channels))::uuid END,
       r_kind < 0.85, initiated_at,
       CASE WHEN r_status < 0.8 THEN initiated_at + setup END,
       CASE WHEN r_status < 0.8 THEN initiated_at + setup + dur ELSE initiated_at + interval '45 seconds' END,
       CASE WHEN r_status < 0.8 THEN 'hangup' END
FROM new_calls ORDER BY n;

INSERT INTO nchat_call_participants (call_id, user_id, role, status, livekit_identity,
                                     invited_at, joined_at, left_at, total_duration_seconds)
SELECT c.id, md5('user' || uid)::uuid, CASE WHEN k = 0 THEN 'initiator' ELSE 'participant' END,
       CASE WHEN c.r_status < 0.8 OR k = 0 THEN 'left' ELSE 'missed' END,
       md5('user' || uid)::text, c.initiated_at,
       CASE WHEN k = 0 THEN c.initiated_at
            WHEN c.r_status < 0.8 THEN c.initiated_at + c.setup + (k - 1) * interval '3 seconds' END,
       CASE WHEN k = 0 AND c.r_status >= 0.8 THEN c.initiated_at + interval '45 seconds'
            WHEN c.r_status < 0.8 THEN c.initiated_at + c.setup + c.dur END,
       CASE WHEN k = 0 AND c.r_status >= 0.8 THEN 45
            WHEN c.r_status < 0.8 THEN floor(extract(epoch FROM c.setup + c.dur
                 - CASE WHEN k = 0 THEN interval '0' ELSE c.setup + (k - 1) * interval '3 seconds' END))::int
            ELSE 0 END
FROM new_calls c, generate_series(0, 2) k,
     LATERAL (SELECT 1 + (c.u1 - 1 + k * (1 + c.n % 97)) % :users AS uid) x
ORDER BY c.n, k;

INSERT INTO nchat_webrtc_connections (call_id, user_id, ice_connection_state,
                                      local_candidate_type, remote_candidate_type, turn_used,
                                      rtt_ms, jitter_ms, packet_loss_pct, bitrate_kbps, quality)
SELECT c.id, md5('user' || (1 + (c.u1 - 1 + (s % 3) * (1 + c.n % 97)) % :users))::uuid,
       CASE WHEN c.r_status < 0.8 THEN 'connected' WHEN s % 2 = 0 THEN 'failed' ELSE 'checking' END,
       CASE WHEN rr < 0.15 THEN 'relay' WHEN rr < 0.6 THEN 'srflx' ELSE 'host' END,
       'srflx', rr < 0.15,
       round((20 + exp(random() * 5))::numeric, 1)::real,
       round((random() * random() * 40)::numeric, 2)::real,
       round((random() * random() * random() * 12)::numeric, 3)::real,
       (200 + floor(random() * 2500))::int,
       CASE WHEN rq < 0.5 THEN 'excellent' WHEN rq < 0.8 THEN 'good' WHEN rq < 0.95 THEN 'poor'
            WHEN rq < 0.98 THEN 'lost' ELSE 'unknown' END
FROM new_calls c, generate_series(0, 4) s,
     LATERAL (SELECT random() AS rr, random() AS rq) x
ORDER BY c.n, s;

RESET session_replication_role;
ANALYZE nchat_calls, nchat_call_participants, nchat_webrtc_connections;
