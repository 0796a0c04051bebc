-- 0010_reports.sql - rollups behind GET /api/reports/usage and
-- GET /api/reports/quality (API.md "Reports"), kept by the rollup sweep
-- (`nchat-rtc rollup-reports`, and a timer inside `serve`).
--
-- How the figures stay right without touching the hot write paths:
--   * The sweep finds what changed since its watermark with range scans on
--     timestamps the rows already carry: calls.updated_at (webhooks and
--     every state change touch the call row), streams.created_at,
--     recordings.updated_at, and the created_at of connection stats, viewer
--     sessions, chat and reactions - BRIN indexes where the table is hot,
--     which cost a few instructions per insert - plus the calls and streams
--     that were still open at its previous run (their minutes grow without
--     a write).  Rows are stamped with their transaction's start, so the
--     watermark never passes a transaction that is still running.
--   * What cannot be seen that way - deleted rows (GDPR erase, retention,
--     cascades), a participant pseudonymised, a channel deleted under its
--     calls or streams - is recorded by triggers that fire only on those
--     rare statements (DELETE, or an UPDATE that sets user_id / channel_id,
--     which no hot path does): they add the UTC hours concerned to
--     nchat_rtc_report_dirty.  No trigger fires on join, initiate, chat,
--     reactions, heartbeats or webhook apply.
--   * Every hour the sweep touches is recomputed from the base rows, not
--     adjusted by deltas, so late data, deletions and re-runs all converge
--     on the same figures.
--
-- Rollup rows (nchat_rtc_report_usage / _quality) are kept per scope (a
-- channel id, or the nil uuid for everything including direct calls):
--   level 0  15-minute slots, every scope (zones such as Asia/Kolkata or
--            Asia/Kathmandu start their days at :30 or :45 UTC);
--   level 1  one-hour windows starting at every quarter hour, nil scope;
--   level 2  24-hour windows: for the nil scope starting at every quarter
--            hour, for a channel at UTC midnight.
-- So an all-channels day in any zone is one row, a channel's day at most
-- 96 small rows, and a report adds up a few hundred rows at most.  The
-- sweep (src/reports_rollup.c) computes level 0 from the base rows and the
-- windows from level 0.
--
-- Sketches are text, merged by the service: distinct counts (uniqueUsers,
-- streamUniqueViewers) are HyperLogLog registers (1024 of them, standard
-- error 3.25 %), either sparse (4 hex digits per register set: register *
-- 32 + rank) or dense ('D' then one base-17 digit per register);
-- percentiles are log-scale histograms ("bucket:count,..."; bucket ratio
-- 1.05, so a value is within 2.44 % of its bucket's representative).

-- ---------------------------------------------------------------------------
-- Base tables: what the sweep's watermark scans and recomputes need.
-- ---------------------------------------------------------------------------

-- A viewer session's own start: joined_at moves when a closed session is
-- re-opened, created_at does not (a session counts in the bucket it was
-- first opened in).
ALTER TABLE nchat_stream_viewers ADD COLUMN created_at timestamptz;
UPDATE nchat_stream_viewers SET created_at = joined_at;
ALTER TABLE nchat_stream_viewers
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN created_at SET NOT NULL;

-- Calls by initiation (the sweep's look-ups by time).  Calls rows are
-- updated a few times in their life (never HOT: nchat_calls_open_idx
-- indexes updated_at), so this costs one index entry per call version.
-- True when the transaction does service work: it entered nchat_rtc_system
-- (0006), whose SET LOCAL ROLE the SECURITY DEFINER readers below still see.
CREATE FUNCTION nchat_rtc_report_service()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT COALESCE(current_setting('role', true), '') = 'nchat_rtc_system'
$$;

CREATE INDEX nchat_calls_initiated_idx ON nchat_calls (initiated_at);
-- Calls changed since the watermark (webhooks touch the call row whenever
-- they change a participant).  BRIN: a few bytes per 128 pages.
CREATE INDEX nchat_calls_updated_brin ON nchat_calls
    USING brin (updated_at) WITH (autosummarize = on);

-- Insert-mostly tables: BRIN on the insert time is a few bytes per 128
-- pages and costs almost nothing per insert (heartbeats are not slowed).
CREATE INDEX nchat_webrtc_connections_created_brin ON nchat_webrtc_connections
    USING brin (created_at) WITH (autosummarize = on);
CREATE INDEX nchat_stream_viewers_created_brin ON nchat_stream_viewers
    USING brin (created_at) WITH (autosummarize = on);
CREATE INDEX nchat_stream_chat_messages_created_brin ON nchat_stream_chat_messages
    USING brin (created_at) WITH (autosummarize = on);
CREATE INDEX nchat_stream_reactions_created_brin ON nchat_stream_reactions
    USING brin (created_at) WITH (autosummarize = on);

-- Streams: created_at and started_at never change once set, so these keep
-- the counter updates of chat, reactions and viewers HOT.
CREATE INDEX nchat_streams_created_idx ON nchat_streams (created_at);
CREATE INDEX nchat_streams_started_idx ON nchat_streams (started_at)
    WHERE started_at IS NOT NULL;

-- Recordings are written a handful of times each (not a hot path).
CREATE INDEX nchat_call_recordings_updated_idx ON nchat_call_recordings (updated_at);
CREATE INDEX nchat_call_recordings_started_idx ON nchat_call_recordings (started_at)
    WHERE started_at IS NOT NULL;

-- ---------------------------------------------------------------------------
-- The rollups.
-- ---------------------------------------------------------------------------

-- slot = the start of the slot or window.  Microseconds are exact integers,
-- so minutes add up to the microsecond.
CREATE TABLE nchat_rtc_report_usage (
    scope              uuid NOT NULL,
    level              smallint NOT NULL,
    slot               timestamptz NOT NULL,
    calls              integer NOT NULL DEFAULT 0,
    calls_audio        integer NOT NULL DEFAULT 0,
    calls_video        integer NOT NULL DEFAULT 0,
    calls_screen_share integer NOT NULL DEFAULT 0,
    calls_direct       integer NOT NULL DEFAULT 0,
    calls_group        integer NOT NULL DEFAULT 0,
    calls_channel      integer NOT NULL DEFAULT 0,
    answered           integer NOT NULL DEFAULT 0,
    missed             integer NOT NULL DEFAULT 0,
    declined           integer NOT NULL DEFAULT 0,
    failed             integer NOT NULL DEFAULT 0,
    call_us            bigint NOT NULL DEFAULT 0,
    participant_us     bigint NOT NULL DEFAULT 0,
    peak_calls         integer NOT NULL DEFAULT 0,
    setup_hist         text,                 -- milliseconds, unit 1
    users_hll          text,
    recordings         integer NOT NULL DEFAULT 0,
    recording_us       bigint NOT NULL DEFAULT 0,
    recording_bytes    bigint NOT NULL DEFAULT 0,
    streams            integer NOT NULL DEFAULT 0,
    stream_us          bigint NOT NULL DEFAULT 0,
    stream_views       integer NOT NULL DEFAULT 0,
    viewers_hll        text,
    chat_messages      integer NOT NULL DEFAULT 0,
    reactions          integer NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, level, slot),
    CONSTRAINT nchat_rtc_report_usage_level_check CHECK (level BETWEEN 0 AND 2)
);

CREATE INDEX nchat_rtc_report_usage_slot_idx ON nchat_rtc_report_usage (level, slot);

CREATE TABLE nchat_rtc_report_quality (
    scope                   uuid NOT NULL,
    level                   smallint NOT NULL,
    slot                    timestamptz NOT NULL,
    samples                 integer NOT NULL DEFAULT 0,
    participants            integer NOT NULL DEFAULT 0,
    relay_participants      integer NOT NULL DEFAULT 0,
    ice_failed_participants integer NOT NULL DEFAULT 0,
    rtt_hist                text,            -- milliseconds, unit 0.1
    jitter_hist             text,            -- milliseconds, unit 0.1
    loss_hist               text,            -- percent, unit 0.001
    loss_n                  integer NOT NULL DEFAULT 0,
    loss_sum                numeric NOT NULL DEFAULT 0,
    bitrate_n               integer NOT NULL DEFAULT 0,
    bitrate_sum             bigint NOT NULL DEFAULT 0,
    q_excellent             integer NOT NULL DEFAULT 0,
    q_good                  integer NOT NULL DEFAULT 0,
    q_poor                  integer NOT NULL DEFAULT 0,
    q_lost                  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, level, slot),
    CONSTRAINT nchat_rtc_report_quality_level_check CHECK (level BETWEEN 0 AND 2)
);

CREATE INDEX nchat_rtc_report_quality_slot_idx ON nchat_rtc_report_quality (level, slot);

-- ---------------------------------------------------------------------------
-- The sweep's own state.
-- ---------------------------------------------------------------------------

-- One row.  watermark NULL: never run (the next run rebuilds everything).
-- as_of: open calls and streams are counted up to this instant.
CREATE TABLE nchat_rtc_report_state (
    id         boolean PRIMARY KEY DEFAULT true,
    watermark  timestamptz,
    as_of      timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_rtc_report_state_one_row CHECK (id)
);

INSERT INTO nchat_rtc_report_state DEFAULT VALUES;

-- UTC hours whose rollup rows must be recomputed.
CREATE TABLE nchat_rtc_report_dirty (
    hour timestamptz PRIMARY KEY
);

-- Calls and streams that were not finished at the previous run, and until
-- when their open part was counted ('-infinity': a stream not yet live).
CREATE TABLE nchat_rtc_report_open (
    kind          text NOT NULL,
    id            uuid NOT NULL,
    counted_until timestamptz NOT NULL,
    PRIMARY KEY (kind, id),
    CONSTRAINT nchat_rtc_report_open_kind_check CHECK (kind IN ('call', 'stream'))
);

-- Calls and streams whose life (initiation or start to end, or to now while
-- open) is longer than the 6 hours a recompute looks back: an hour is
-- recomputed from what began up to 6 hours before it plus these.  hi is
-- 'infinity' while open.
CREATE TABLE nchat_rtc_report_long (
    kind text NOT NULL,
    id   uuid NOT NULL,
    lo   timestamptz NOT NULL,
    hi   timestamptz NOT NULL,
    PRIMARY KEY (kind, id),
    CONSTRAINT nchat_rtc_report_long_kind_check CHECK (kind IN ('call', 'stream'))
);

-- ---------------------------------------------------------------------------
-- The sweep's reads.  The base tables' row-level security policies cost a
-- function call per row even in service context (the user policies are
-- evaluated too), which a sweep over hundreds of thousands of rows cannot
-- afford; these SECURITY DEFINER functions read as the owner instead, and
-- return nothing outside service context.  Times are microseconds since
-- the epoch; [a, b) is the range of a batch.
-- ---------------------------------------------------------------------------

CREATE FUNCTION nchat_rtc_us(t timestamptz)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint
$$;

-- Calls that may touch [a, b): initiated up to 6 hours before it, or
-- listed as long.
CREATE FUNCTION nchat_rtc_report_call_ids(a timestamptz, b timestamptz)
RETURNS TABLE (call_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT c.id FROM nchat_calls c
    WHERE nchat_rtc_report_service()
      AND c.initiated_at >= a - interval '6 hours' AND c.initiated_at < b
    UNION ALL
    SELECT c.id FROM nchat_rtc_report_long l JOIN nchat_calls c ON c.id = l.id
    WHERE nchat_rtc_report_service() AND l.kind = 'call' AND l.lo < b AND l.hi > a
      AND c.initiated_at < a - interval '6 hours'
$$;

CREATE FUNCTION nchat_rtc_report_calls(a timestamptz, b timestamptz)
RETURNS TABLE (id text, channel_id text, call_type text, status text, is_group_call boolean,
               initiated bigint, started bigint, ended bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT c.id::text, c.channel_id::text, c.call_type, c.status, c.is_group_call,
           nchat_rtc_us(c.initiated_at), nchat_rtc_us(c.started_at), nchat_rtc_us(c.ended_at)
    FROM nchat_rtc_report_call_ids(a, b) x JOIN nchat_calls c ON c.id = x.call_id
$$;

CREATE FUNCTION nchat_rtc_report_participants(a timestamptz, b timestamptz)
RETURNS TABLE (call_id text, user_id text, status text, joined bigint, left_at bigint,
               total integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT p.call_id::text, p.user_id::text, p.status, nchat_rtc_us(p.joined_at),
           nchat_rtc_us(p.left_at), p.total_duration_seconds
    FROM nchat_rtc_report_call_ids(a, b) x
    JOIN nchat_call_participants p ON p.call_id = x.call_id
    WHERE p.joined_at IS NOT NULL
$$;

-- Connection stats of the calls initiated in [a, b).
CREATE FUNCTION nchat_rtc_report_samples(a timestamptz, b timestamptz)
RETURNS TABLE (call_id text, user_id text, ice text, local_type text, turn_used boolean,
               rtt real, jitter real, loss numeric, bitrate integer, quality text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT w.call_id::text, w.user_id::text, w.ice_connection_state, w.local_candidate_type,
           w.turn_used, w.rtt_ms, w.jitter_ms, w.packet_loss_pct::numeric, w.bitrate_kbps,
           w.quality
    FROM nchat_calls c JOIN nchat_webrtc_connections w ON w.call_id = c.id
    WHERE nchat_rtc_report_service() AND c.initiated_at >= a AND c.initiated_at < b
$$;

CREATE FUNCTION nchat_rtc_report_recordings(a timestamptz, b timestamptz)
RETURNS TABLE (channel_id text, started bigint, duration integer, ended bigint, bytes bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT c.channel_id::text, nchat_rtc_us(r.started_at), r.duration_seconds,
           nchat_rtc_us(r.ended_at), r.file_size_bytes
    FROM nchat_call_recordings r JOIN nchat_calls c ON c.id = r.call_id
    WHERE nchat_rtc_report_service() AND r.started_at >= a AND r.started_at < b
$$;

-- Streams that may touch [a, b): started up to 6 hours before, or long.
CREATE FUNCTION nchat_rtc_report_streams(a timestamptz, b timestamptz)
RETURNS TABLE (channel_id text, status text, started bigint, ended bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT st.channel_id::text, st.status, nchat_rtc_us(st.started_at), nchat_rtc_us(st.ended_at)
    FROM nchat_streams st
    WHERE nchat_rtc_report_service()
      AND st.started_at >= a - interval '6 hours' AND st.started_at < b
    UNION ALL
    SELECT st.channel_id::text, st.status, nchat_rtc_us(st.started_at), nchat_rtc_us(st.ended_at)
    FROM nchat_rtc_report_long l JOIN nchat_streams st ON st.id = l.id
    WHERE nchat_rtc_report_service() AND l.kind = 'stream' AND l.lo < b AND l.hi > a
      AND st.started_at < a - interval '6 hours'
$$;

CREATE FUNCTION nchat_rtc_report_viewers(a timestamptz, b timestamptz)
RETURNS TABLE (channel_id text, created bigint, user_id text, session text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT st.channel_id::text, nchat_rtc_us(v.created_at), v.user_id::text, v.viewer_session_id
    FROM nchat_stream_viewers v JOIN nchat_streams st ON st.id = v.stream_id
    WHERE nchat_rtc_report_service() AND v.created_at >= a AND v.created_at < b
$$;

-- Chat messages and reactions per 15-minute slot.
CREATE FUNCTION nchat_rtc_report_messages(a timestamptz, b timestamptz)
RETURNS TABLE (channel_id text, kind text, slot bigint, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT st.channel_id::text, e.kind,
           nchat_rtc_us(date_bin('15 minutes', e.created_at, timestamptz '2000-01-01 00:00:00+00')),
           count(*)
    FROM (SELECT m.stream_id, m.created_at, 'chat' AS kind FROM nchat_stream_chat_messages m
          WHERE m.created_at >= a AND m.created_at < b
          UNION ALL
          SELECT x.stream_id, x.created_at, 'reaction' FROM nchat_stream_reactions x
          WHERE x.created_at >= a AND x.created_at < b) e
    JOIN nchat_streams st ON st.id = e.stream_id
    WHERE nchat_rtc_report_service()
    GROUP BY 1, 2, 3
$$;

-- ---------------------------------------------------------------------------
-- Triggers for what the watermark cannot see.  All statement-level on
-- DELETE (with the deleted rows as a transition table), or row-level on
-- UPDATE OF a column no hot path sets.  SECURITY DEFINER: they write the
-- sweep's queue whatever context deleted the rows.
-- ---------------------------------------------------------------------------

CREATE FUNCTION nchat_rtc_report_hours(lo timestamptz, hi timestamptz)
RETURNS SETOF timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT generate_series(date_bin('1 hour', lo, timestamptz '2000-01-01 00:00:00+00'),
                           GREATEST(lo, COALESCE(hi, now())), interval '1 hour')
    WHERE lo IS NOT NULL
$$;

CREATE FUNCTION nchat_rtc_report_calls_deleted()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT DISTINCT h FROM old_rows o, nchat_rtc_report_hours(o.initiated_at, o.ended_at) h
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION nchat_rtc_report_participants_deleted()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT DISTINCT h
    FROM (SELECT DISTINCT call_id FROM old_rows) o
    JOIN nchat_calls c ON c.id = o.call_id,
    nchat_rtc_report_hours(c.initiated_at, c.ended_at) h
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- Connection stats count with their call's initiation.
CREATE FUNCTION nchat_rtc_report_stats_deleted()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT DISTINCT date_bin('1 hour', c.initiated_at, timestamptz '2000-01-01 00:00:00+00')
    FROM (SELECT DISTINCT call_id FROM old_rows) o
    JOIN nchat_calls c ON c.id = o.call_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION nchat_rtc_report_recordings_deleted()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT DISTINCT date_bin('1 hour', started_at, timestamptz '2000-01-01 00:00:00+00')
    FROM old_rows WHERE started_at IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION nchat_rtc_report_streams_deleted()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT DISTINCT h FROM old_rows o, nchat_rtc_report_hours(o.started_at, o.ended_at) h
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- Viewer sessions, chat messages and reactions count at their created_at.
CREATE FUNCTION nchat_rtc_report_created_deleted()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT DISTINCT date_bin('1 hour', created_at, timestamptz '2000-01-01 00:00:00+00')
    FROM old_rows
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- A participant pseudonymised (GDPR erase) or whose user row was deleted:
-- uniqueUsers of the call's initiation hour.
CREATE FUNCTION nchat_rtc_report_participant_user()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT date_bin('1 hour', c.initiated_at, timestamptz '2000-01-01 00:00:00+00')
    FROM nchat_calls c WHERE c.id = NEW.call_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- A call moved out of its channel (the channel was deleted): its whole life
-- and its recordings.
CREATE FUNCTION nchat_rtc_report_call_channel()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT h FROM nchat_rtc_report_hours(NEW.initiated_at, NEW.ended_at) h
    UNION
    SELECT date_bin('1 hour', r.started_at, timestamptz '2000-01-01 00:00:00+00')
    FROM nchat_call_recordings r WHERE r.call_id = NEW.id AND r.started_at IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- A stream moved out of its channel: its whole life (viewers, chat and
-- reactions happen between its creation and its end).
CREATE FUNCTION nchat_rtc_report_stream_channel()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT h FROM nchat_rtc_report_hours(NEW.created_at, NEW.ended_at) h
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER nchat_calls_report_deleted AFTER DELETE ON nchat_calls
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nchat_rtc_report_calls_deleted();
CREATE TRIGGER nchat_call_participants_report_deleted AFTER DELETE ON nchat_call_participants
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nchat_rtc_report_participants_deleted();
CREATE TRIGGER nchat_webrtc_connections_report_deleted AFTER DELETE ON nchat_webrtc_connections
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nchat_rtc_report_stats_deleted();
CREATE TRIGGER nchat_call_recordings_report_deleted AFTER DELETE ON nchat_call_recordings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nchat_rtc_report_recordings_deleted();
CREATE TRIGGER nchat_streams_report_deleted AFTER DELETE ON nchat_streams
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nchat_rtc_report_streams_deleted();
CREATE TRIGGER nchat_stream_viewers_report_deleted AFTER DELETE ON nchat_stream_viewers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nchat_rtc_report_created_deleted();
CREATE TRIGGER nchat_stream_chat_messages_report_deleted AFTER DELETE ON nchat_stream_chat_messages
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nchat_rtc_report_created_deleted();
CREATE TRIGGER nchat_stream_reactions_report_deleted AFTER DELETE ON nchat_stream_reactions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nchat_rtc_report_created_deleted();

CREATE TRIGGER nchat_call_participants_report_user
    AFTER UPDATE OF user_id ON nchat_call_participants
    FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION nchat_rtc_report_participant_user();
CREATE TRIGGER nchat_calls_report_channel
    AFTER UPDATE OF channel_id ON nchat_calls
    FOR EACH ROW WHEN (OLD.channel_id IS DISTINCT FROM NEW.channel_id)
    EXECUTE FUNCTION nchat_rtc_report_call_channel();
CREATE TRIGGER nchat_streams_report_channel
    AFTER UPDATE OF channel_id ON nchat_streams
    FOR EACH ROW WHEN (OLD.channel_id IS DISTINCT FROM NEW.channel_id)
    EXECUTE FUNCTION nchat_rtc_report_stream_channel();

-- ---------------------------------------------------------------------------
-- The sweep's collect step (src/reports_rollup.c): queue the hours touched
-- by what changed since the watermark p_wm; open parts count up to
-- p_as_of.  A call or stream seen for the first time, or changed, is
-- queued over its whole life; one that was open at the previous run also
-- over the part between what was counted then and what counts now (it may
-- have ended before the instant it was counted up to).  The sets of
-- unfinished calls and streams and of long ones are kept up to date.  With
-- p_rebuild everything is dropped and every hour that has data is queued.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_report_collect(p_wm timestamptz, p_as_of timestamptz,
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
    -- now, or open at the previous run
    WITH cand AS (
        SELECT c.id, c.initiated_at, c.status, c.ended_at, c.updated_at
        FROM nchat_calls c WHERE c.updated_at >= p_wm
        UNION ALL
        SELECT c.id, c.initiated_at, c.status, c.ended_at, c.updated_at
        FROM nchat_calls c WHERE c.status IN ('initiating', 'ringing', 'active')
        UNION ALL
        SELECT c.id, c.initiated_at, c.status, c.ended_at, c.updated_at
        FROM nchat_rtc_report_open o JOIN nchat_calls c ON c.id = o.id WHERE o.kind = 'call'),
    cc AS (
        SELECT DISTINCT ON (c.id) c.id, c.initiated_at,
               c.status IN ('initiating', 'ringing', 'active') AS open,
               c.updated_at >= p_wm AS changed, o.counted_until AS pc,
               COALESCE(c.ended_at,
                        CASE WHEN c.status IN ('initiating', 'ringing', 'active')
                             THEN GREATEST(p_as_of, c.initiated_at) ELSE c.initiated_at END) AS e
        FROM cand c
        LEFT JOIN nchat_rtc_report_open o ON o.kind = 'call' AND o.id = c.id),
    marks AS (
        INSERT INTO nchat_rtc_report_dirty (hour)
        SELECT DISTINCT h FROM cc, LATERAL (
            SELECT nchat_rtc_report_hours(cc.initiated_at, cc.e) WHERE cc.changed OR cc.pc IS NULL
            UNION ALL
            SELECT nchat_rtc_report_hours(LEAST(p_wm, cc.e, cc.pc), GREATEST(cc.pc, cc.e))
            WHERE cc.pc IS NOT NULL
            UNION ALL
            SELECT date_bin('1 hour', cc.initiated_at, timestamptz '2000-01-01 00:00:00+00')) x(h)
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

    -- connection stats count with their call's initiation
    INSERT INTO nchat_rtc_report_dirty (hour)
    SELECT DISTINCT date_bin('1 hour', c.initiated_at, timestamptz '2000-01-01 00:00:00+00')
    FROM nchat_calls c
    WHERE c.id = ANY (ARRAY(SELECT DISTINCT w.call_id FROM nchat_webrtc_connections w
                            WHERE w.created_at >= p_wm))
    ON CONFLICT DO NOTHING;

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

REVOKE EXECUTE ON FUNCTION
    nchat_rtc_report_collect(timestamptz, timestamptz, boolean),
    nchat_rtc_report_call_ids(timestamptz, timestamptz),
    nchat_rtc_report_calls(timestamptz, timestamptz),
    nchat_rtc_report_participants(timestamptz, timestamptz),
    nchat_rtc_report_samples(timestamptz, timestamptz),
    nchat_rtc_report_recordings(timestamptz, timestamptz),
    nchat_rtc_report_streams(timestamptz, timestamptz),
    nchat_rtc_report_viewers(timestamptz, timestamptz),
    nchat_rtc_report_messages(timestamptz, timestamptz)
    FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
    nchat_rtc_report_calls_deleted(),
    nchat_rtc_report_participants_deleted(),
    nchat_rtc_report_stats_deleted(),
    nchat_rtc_report_recordings_deleted(),
    nchat_rtc_report_streams_deleted(),
    nchat_rtc_report_created_deleted(),
    nchat_rtc_report_participant_user(),
    nchat_rtc_report_call_channel(),
    nchat_rtc_report_stream_channel()
    FROM PUBLIC, nchat_rtc_service;
