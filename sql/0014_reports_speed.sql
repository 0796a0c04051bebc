-- 0014_reports_speed.sql - the rollup sweep's collect step and reads with
-- less work per row (issue 19: the catch-up after 100,000 new calls).  The
-- results are the same as 0010's; only how they are found changes.
--
--   * collect: the hours of a call's life were listed by a function call
--     per call (nchat_rtc_report_hours, not inlinable: it has a SET
--     clause); now each call gives its first and last hour, the distinct
--     (first, last) pairs - a few hundred for a day of calls - are expanded
--     once.  The calls of connection stats written since the watermark
--     were looked up by id (100,000 index probes after a busy day); a call
--     that is among the changed or open calls is queued at its initiation
--     hour anyway, so only the others are looked up now.
--   * nchat_rtc_report_calls read the ids from nchat_rtc_report_call_ids and
--     then each call by its primary key; it reads the calls straight from
--     the initiation index now.  nchat_rtc_report_participants joins the
--     same set in one statement (no function result materialised first).

-- The three big reads (a busy day is 100,000 calls, 300,000 participants
-- and 500,000 samples) are plain SQL functions now, no longer SECURITY
-- DEFINER: Postgres inlines them into the sweep's statement, so their rows
-- stream out instead of being stored in a function result first, and the
-- planner sees the actual range.  They read as the caller, the service's
-- own work role (nchat_rtc_system), whose policies on these tables are
-- `true` (0006), and still return nothing outside service context.  Each
-- call's participants and samples are index look-ups by call (LATERAL ...
-- OFFSET 0): a recompute reads a few hours, which must not cost a scan of
-- tables that grow with the years.  The sweep reads them in binary
-- (src/reports/reports_read.c), so ids are uuids and times timestamps;
-- measurements stay the text the figures are defined on (real::text,
-- numeric::text).
DROP FUNCTION nchat_rtc_report_calls(timestamptz, timestamptz);
DROP FUNCTION nchat_rtc_report_participants(timestamptz, timestamptz);
DROP FUNCTION nchat_rtc_report_samples(timestamptz, timestamptz);
DROP FUNCTION nchat_rtc_report_call_ids(timestamptz, timestamptz);

CREATE FUNCTION nchat_rtc_report_calls(a timestamptz, b timestamptz)
RETURNS TABLE (id uuid, channel_id uuid, call_type text, status text, is_group_call boolean,
               initiated timestamptz, started timestamptz, ended timestamptz)
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT c.id, c.channel_id, c.call_type, c.status, c.is_group_call,
           c.initiated_at, c.started_at, c.ended_at
    FROM nchat_calls c
    WHERE nchat_rtc_report_service()
      AND c.initiated_at >= a - interval '6 hours' AND c.initiated_at < b
    UNION ALL
    SELECT c.id, c.channel_id, c.call_type, c.status, c.is_group_call,
           c.initiated_at, c.started_at, c.ended_at
    FROM nchat_rtc_report_long l JOIN nchat_calls c ON c.id = l.id
    WHERE nchat_rtc_report_service() AND l.kind = 'call' AND l.lo < b AND l.hi > a
      AND c.initiated_at < a - interval '6 hours'
$$;

CREATE FUNCTION nchat_rtc_report_participants(a timestamptz, b timestamptz)
RETURNS TABLE (call_id uuid, user_id uuid, status text, joined timestamptz,
               left_at timestamptz, total integer)
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT p.call_id, p.user_id, p.status, p.joined_at, p.left_at, p.total_duration_seconds
    FROM (SELECT c.id FROM nchat_calls c
          WHERE nchat_rtc_report_service()
            AND c.initiated_at >= a - interval '6 hours' AND c.initiated_at < b
          UNION ALL
          SELECT c.id FROM nchat_rtc_report_long l JOIN nchat_calls c ON c.id = l.id
          WHERE nchat_rtc_report_service() AND l.kind = 'call' AND l.lo < b AND l.hi > a
            AND c.initiated_at < a - interval '6 hours') x
    CROSS JOIN LATERAL (SELECT p.call_id, p.user_id, p.status, p.joined_at, p.left_at,
                               p.total_duration_seconds
                        FROM nchat_call_participants p
                        WHERE p.call_id = x.id AND p.joined_at IS NOT NULL OFFSET 0) p
$$;

-- Connection stats of the calls initiated in [a, b).
CREATE FUNCTION nchat_rtc_report_samples(a timestamptz, b timestamptz)
RETURNS TABLE (call_id uuid, user_id uuid, ice text, local_type text, turn_used boolean,
               rtt text, jitter text, loss text, bitrate integer, quality text)
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT w.call_id, w.user_id, w.ice_connection_state, w.local_candidate_type, w.turn_used,
           w.rtt_ms::text, w.jitter_ms::text, w.packet_loss_pct::numeric::text, w.bitrate_kbps,
           w.quality
    FROM nchat_calls c
    CROSS JOIN LATERAL (SELECT w.call_id, w.user_id, w.ice_connection_state,
                               w.local_candidate_type, w.turn_used, w.rtt_ms, w.jitter_ms,
                               w.packet_loss_pct, w.bitrate_kbps, w.quality
                        FROM nchat_webrtc_connections w WHERE w.call_id = c.id OFFSET 0) w
    WHERE nchat_rtc_report_service() AND c.initiated_at >= a AND c.initiated_at < b
$$;

REVOKE EXECUTE ON FUNCTION
    nchat_rtc_report_calls(timestamptz, timestamptz),
    nchat_rtc_report_participants(timestamptz, timestamptz),
    nchat_rtc_report_samples(timestamptz, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    nchat_rtc_report_calls(timestamptz, timestamptz),
    nchat_rtc_report_participants(timestamptz, timestamptz),
    nchat_rtc_report_samples(timestamptz, timestamptz)
    TO nchat_rtc_system;

CREATE OR REPLACE FUNCTION nchat_rtc_report_collect(p_wm timestamptz, p_as_of timestamptz,
                                                    p_rebuild boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF NOT nchat_rtc_report_service() THEN
        RAISE EXCEPTION 'nchat_rtc_report_collect runs in service context only';
    END IF;

    IF p_rebuild THEN
        DELETE FROM nchat_rtc_report_usage;
        DELETE FROM nchat_rtc_report_quality;
        DELETE FROM nchat_rtc_report_long;
        DELETE FROM nchat_rtc_report_open;
        INSERT INTO nchat_rtc_report_long (kind, id, lo, hi)
        SELECT 'call', c.id, c.initiated_at,
               CASE WHEN c.status IN ('initiating', 'ringing', 'active') THEN 'infinity'
                    ELSE COALESCE(c.ended_at, c.initiated_at) END
        FROM nchat_calls c
        WHERE COALESCE(c.ended_at, CASE WHEN c.status IN ('initiating', 'ringing', 'active')
                                        THEN p_as_of END, c.initiated_at)
              - c.initiated_at > interval '6 hours';
        INSERT INTO nchat_rtc_report_long (kind, id, lo, hi)
        SELECT 'stream', st.id, st.started_at,
               CASE WHEN st.status = 'live' THEN 'infinity'
                    ELSE COALESCE(st.ended_at, st.started_at) END
        FROM nchat_streams st
        WHERE st.started_at IS NOT NULL
          AND COALESCE(st.ended_at, CASE WHEN st.status = 'live' THEN p_as_of END, st.started_at)
              - st.started_at > interval '6 hours';
        INSERT INTO nchat_rtc_report_dirty (hour)
        SELECT h FROM (SELECT LEAST((SELECT min(initiated_at) FROM nchat_calls),
                                    (SELECT min(created_at) FROM nchat_streams)) AS m) x,
             nchat_rtc_report_hours(x.m, p_as_of) h
        ON CONFLICT DO NOTHING;
        p_wm := p_as_of;   -- everything is queued already
    END IF;

    -- calls: changed (webhooks and every state change touch the row), open
    -- now, or open at the previous run; and the calls of connection stats
    -- written since the watermark (they count with their call's initiation)
    WITH cand AS (
        SELECT c.id, c.initiated_at, c.status, c.ended_at, c.updated_at
        FROM nchat_calls c WHERE c.updated_at >= p_wm
        UNION ALL
        SELECT c.id, c.initiated_at, c.status, c.ended_at, c.updated_at
        FROM nchat_calls c WHERE c.status IN ('initiating', 'ringing', 'active')
        UNION ALL
        SELECT c.id, c.initiated_at, c.status, c.ended_at, c.updated_at
        FROM nchat_rtc_report_open o JOIN nchat_calls c ON c.id = o.id WHERE o.kind = 'call'),
    cc AS MATERIALIZED (
        SELECT DISTINCT ON (c.id) c.id, c.initiated_at,
               c.status IN ('initiating', 'ringing', 'active') AS open,
               c.updated_at >= p_wm AS changed, o.counted_until AS pc,
               COALESCE(c.ended_at,
                        CASE WHEN c.status IN ('initiating', 'ringing', 'active')
                             THEN GREATEST(p_as_of, c.initiated_at) ELSE c.initiated_at END) AS e
        FROM cand c
        LEFT JOIN nchat_rtc_report_open o ON o.kind = 'call' AND o.id = c.id),
    -- the calls of the stats that are not in cc (those are queued at their
    -- initiation hour below anyway), before any call is looked up
    ws AS MATERIALIZED (
        SELECT w.call_id FROM (SELECT DISTINCT w.call_id FROM nchat_webrtc_connections w
                               WHERE w.created_at >= p_wm) w
        WHERE NOT EXISTS (SELECT 1 FROM cc WHERE cc.id = w.call_id)),
    -- spans [lo, hi] whose hours are queued, as nchat_rtc_report_hours(lo, hi)
    -- lists them: date_bin(lo) up to GREATEST(lo, COALESCE(hi, now()))
    spans AS (
        SELECT cc.initiated_at AS lo, cc.e AS hi FROM cc WHERE cc.changed OR cc.pc IS NULL
        UNION ALL
        SELECT LEAST(p_wm, cc.e, cc.pc), GREATEST(cc.pc, cc.e) FROM cc WHERE cc.pc IS NOT NULL
        UNION ALL
        SELECT cc.initiated_at, cc.initiated_at FROM cc
        UNION ALL
        SELECT c.initiated_at, c.initiated_at
        FROM ws CROSS JOIN LATERAL (SELECT c.initiated_at FROM nchat_calls c
                                    WHERE c.id = ws.call_id OFFSET 0) c),
    ends AS (
        SELECT DISTINCT date_bin('1 hour', s.lo, timestamptz '2000-01-01 00:00:00+00') AS h0,
               date_bin('1 hour', GREATEST(s.lo, COALESCE(s.hi, now())),
                        timestamptz '2000-01-01 00:00:00+00') AS h1
        FROM spans s WHERE s.lo IS NOT NULL),
    marks AS (
        INSERT INTO nchat_rtc_report_dirty (hour)
        SELECT DISTINCT h FROM ends, generate_series(ends.h0, ends.h1, interval '1 hour') h
        ON CONFLICT DO NOTHING
        RETURNING 1)
    INSERT INTO nchat_rtc_report_long (kind, id, lo, hi)
    SELECT 'call', cc.id, cc.initiated_at, CASE WHEN cc.open THEN 'infinity' ELSE cc.e END
    FROM cc WHERE cc.e - cc.initiated_at > interval '6 hours'
    ON CONFLICT (kind, id) DO UPDATE SET hi = EXCLUDED.hi;

    DELETE FROM nchat_rtc_report_open WHERE kind = 'call';
    INSERT INTO nchat_rtc_report_open (kind, id, counted_until)
    SELECT 'call', c.id, p_as_of FROM nchat_calls c
    WHERE c.status IN ('initiating', 'ringing', 'active');

    -- streams: created since the watermark, unfinished now, or unfinished at
    -- the previous run ('-infinity': it was not live yet)
    WITH cand AS (
        SELECT st.id FROM nchat_streams st WHERE st.created_at >= p_wm
        UNION SELECT st.id FROM nchat_streams st
              WHERE st.status IN ('preparing', 'scheduled', 'live')
        UNION SELECT o.id FROM nchat_rtc_report_open o WHERE o.kind = 'stream'),
    sc AS (
        SELECT st.id, st.started_at, st.status = 'live' AS live, st.created_at >= p_wm AS changed,
               NULLIF(o.counted_until, '-infinity') AS pc,
               COALESCE(st.ended_at, CASE WHEN st.status = 'live'
                                          THEN GREATEST(p_as_of, st.started_at)
                                          ELSE st.started_at END) AS e
        FROM cand JOIN nchat_streams st ON st.id = cand.id
        LEFT JOIN nchat_rtc_report_open o ON o.kind = 'stream' AND o.id = st.id
        WHERE st.started_at IS NOT NULL),
    marks AS (
        INSERT INTO nchat_rtc_report_dirty (hour)
        SELECT DISTINCT h FROM sc, LATERAL (
            SELECT nchat_rtc_report_hours(sc.started_at, sc.e) WHERE sc.changed OR sc.pc IS NULL
            UNION ALL
            SELECT nchat_rtc_report_hours(LEAST(p_wm, sc.e, sc.pc), GREATEST(sc.pc, sc.e))
            WHERE sc.pc IS NOT NULL
            UNION ALL
            SELECT date_bin('1 hour', sc.started_at, timestamptz '2000-01-01 00:00:00+00')) x(h)
        ON CONFLICT DO NOTHING
        RETURNING 1)
    INSERT INTO nchat_rtc_report_long (kind, id, lo, hi)
    SELECT 'stream', sc.id, sc.started_at, CASE WHEN sc.live THEN 'infinity' ELSE sc.e END
    FROM sc WHERE sc.e - sc.started_at > interval '6 hours'
    ON CONFLICT (kind, id) DO UPDATE SET hi = EXCLUDED.hi;

    DELETE FROM nchat_rtc_report_open WHERE kind = 'stream';
    INSERT INTO nchat_rtc_report_open (kind, id, counted_until)
    SELECT 'stream', st.id, CASE WHEN st.started_at IS NULL THEN '-infinity' ELSE p_as_of END
    FROM nchat_streams st WHERE st.status IN ('preparing', 'scheduled', 'live');

    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT DISTINCT date_bin('1 hour', r.started_at, timestamptz '2000-01-01 00:00:00+00')
    FROM nchat_call_recordings r WHERE r.updated_at >= p_wm AND r.started_at IS NOT NULL
    ON CONFLICT DO NOTHING;

    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT DISTINCT date_bin('1 hour', e.created_at, timestamptz '2000-01-01 00:00:00+00')
    FROM (SELECT created_at FROM nchat_stream_viewers WHERE created_at >= p_wm
          UNION ALL SELECT created_at FROM nchat_stream_chat_messages WHERE created_at >= p_wm
          UNION ALL SELECT created_at FROM nchat_stream_reactions WHERE created_at >= p_wm) e
    ON CONFLICT DO NOTHING;
END
$$;

