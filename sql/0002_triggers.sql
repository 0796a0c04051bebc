-- 0002_triggers.sql - derived columns kept by the database.
--
--   * updated_at on every table that has one;
--   * call participants: total_duration_seconds accumulates each joined
--     session when left_at is set (left_at filled in when status leaves
--     'joined' without one);
--   * recordings: expires_at from retention_days;
--   * streams: peak_viewers >= current_viewers, total_views, unique_viewers,
--     total_chat_messages, total_reactions, per-type reaction counts, and the
--     viewer rows' watch time and engagement counters.
--
-- The counter triggers are SECURITY DEFINER (owned by the schema owner, which
-- bypasses row-level security) so that the counters stay right whichever
-- context (service or user, see 0003_rls.sql) wrote the row.  Every function
-- has a fixed search_path.

-- Whole seconds between two instants, never negative, NULL-safe (0).
CREATE FUNCTION nchat_rtc_seconds_between(from_ts timestamptz, to_ts timestamptz)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN from_ts IS NULL OR to_ts IS NULL OR to_ts <= from_ts THEN 0
        ELSE LEAST(floor(extract(epoch FROM (to_ts - from_ts))), 2147483647)::integer
    END
$$;

-- ---------------------------------------------------------------------------
-- updated_at
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER nchat_calls_touch BEFORE UPDATE ON nchat_calls
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_touch_updated_at();
CREATE TRIGGER nchat_call_participants_touch BEFORE UPDATE ON nchat_call_participants
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_touch_updated_at();
CREATE TRIGGER nchat_call_recordings_touch BEFORE UPDATE ON nchat_call_recordings
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_touch_updated_at();
CREATE TRIGGER nchat_streams_touch BEFORE UPDATE ON nchat_streams
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_touch_updated_at();

-- ---------------------------------------------------------------------------
-- Call participants: session bookkeeping and duration.
--
-- Leaving (status goes from 'joined' to anything else) without a left_at sets
-- left_at = now().  Re-joining (status becomes 'joined' again) clears a stale
-- left_at and sets joined_at = now() when the statement did not give one.
-- When left_at is set, the session left_at - joined_at (whole seconds, never
-- negative) is added to total_duration_seconds; setting left_at again for the
-- same session replaces that session's share instead of adding it twice.  A
-- statement that writes total_duration_seconds itself is left alone.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_participant_session()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status = 'joined' AND NEW.joined_at IS NULL THEN
            NEW.joined_at := now();
        END IF;
        IF NEW.left_at IS NOT NULL AND NEW.total_duration_seconds = 0 THEN
            NEW.total_duration_seconds := nchat_rtc_seconds_between(NEW.joined_at, NEW.left_at);
        END IF;
        RETURN NEW;
    END IF;

    -- UPDATE
    IF NEW.status = 'joined' AND OLD.status IS DISTINCT FROM 'joined' THEN
        IF NEW.joined_at IS NOT DISTINCT FROM OLD.joined_at AND OLD.left_at IS NOT NULL
           OR NEW.joined_at IS NULL THEN
            NEW.joined_at := now();
        END IF;
        IF NEW.left_at IS NOT DISTINCT FROM OLD.left_at THEN
            NEW.left_at := NULL;
        END IF;
    ELSIF OLD.status = 'joined' AND NEW.status <> 'joined' AND NEW.left_at IS NULL
          AND NEW.joined_at IS NOT NULL THEN
        NEW.left_at := now();
    END IF;

    IF NEW.total_duration_seconds = OLD.total_duration_seconds
       AND NEW.left_at IS NOT NULL
       AND NEW.left_at IS DISTINCT FROM OLD.left_at THEN
        IF OLD.left_at IS NOT NULL AND NEW.joined_at IS NOT DISTINCT FROM OLD.joined_at THEN
            -- same session, left_at corrected: replace its share
            NEW.total_duration_seconds := GREATEST(0,
                OLD.total_duration_seconds
                - nchat_rtc_seconds_between(OLD.joined_at, OLD.left_at)
                + nchat_rtc_seconds_between(NEW.joined_at, NEW.left_at));
        ELSE
            NEW.total_duration_seconds := LEAST(2147483647::bigint,
                OLD.total_duration_seconds::bigint
                + nchat_rtc_seconds_between(NEW.joined_at, NEW.left_at))::integer;
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER nchat_call_participants_session
    BEFORE INSERT OR UPDATE ON nchat_call_participants
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_participant_session();

-- ---------------------------------------------------------------------------
-- Recordings: expires_at from retention_days.  retention_days = 0 keeps the
-- recording for ever (expires_at NULL).  Otherwise, when expires_at is not
-- given, it is retention_days after the end (or start, or creation) of the
-- recording, and follows ended_at / retention_days when those change.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_recording_expiry()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF NEW.retention_days = 0 THEN
        NEW.expires_at := NULL;
    ELSIF TG_OP = 'INSERT' THEN
        IF NEW.expires_at IS NULL THEN
            NEW.expires_at := COALESCE(NEW.ended_at, NEW.started_at, NEW.created_at, now())
                              + make_interval(days => NEW.retention_days);
        END IF;
    ELSIF NEW.expires_at IS NOT DISTINCT FROM OLD.expires_at
          AND (NEW.expires_at IS NULL
               OR NEW.retention_days IS DISTINCT FROM OLD.retention_days
               OR NEW.ended_at IS DISTINCT FROM OLD.ended_at) THEN
        NEW.expires_at := COALESCE(NEW.ended_at, NEW.started_at, NEW.created_at, now())
                          + make_interval(days => NEW.retention_days);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER nchat_call_recordings_expiry
    BEFORE INSERT OR UPDATE ON nchat_call_recordings
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_recording_expiry();

-- ---------------------------------------------------------------------------
-- Streams: peak_viewers never below current_viewers.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_stream_peak()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.peak_viewers := GREATEST(NEW.peak_viewers, NEW.current_viewers);
    RETURN NEW;
END
$$;

CREATE TRIGGER nchat_streams_peak BEFORE INSERT OR UPDATE ON nchat_streams
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_stream_peak();

-- ---------------------------------------------------------------------------
-- Viewer sessions.
--
-- BEFORE: leaving (left_at set) computes watch_duration_seconds when the
-- statement does not give it: the session joined_at .. left_at is added, so a
-- re-opened session accumulates.  Re-opening (left_at back to NULL) restarts
-- joined_at unless given.
--
-- AFTER: each session started (a new row, or a closed row re-opened) is one
-- view.  unique_viewers counts distinct signed-in users plus anonymous
-- sessions (one row per anonymous client id, by the unique constraint).  The
-- stream row is locked first, so concurrent joins of the same user are
-- serialised and counted once.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_viewer_session()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.left_at IS NULL AND OLD.left_at IS NOT NULL
           AND NEW.joined_at IS NOT DISTINCT FROM OLD.joined_at THEN
            NEW.joined_at := now();
            NEW.last_heartbeat_at := GREATEST(NEW.last_heartbeat_at, NEW.joined_at);
        END IF;
        IF NEW.left_at IS NOT NULL AND OLD.left_at IS NULL
           AND NEW.watch_duration_seconds = OLD.watch_duration_seconds THEN
            NEW.watch_duration_seconds := LEAST(2147483647::bigint,
                OLD.watch_duration_seconds::bigint
                + nchat_rtc_seconds_between(NEW.joined_at, NEW.left_at))::integer;
        END IF;
    ELSIF NEW.left_at IS NOT NULL AND NEW.watch_duration_seconds = 0 THEN
        NEW.watch_duration_seconds := nchat_rtc_seconds_between(NEW.joined_at, NEW.left_at);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER nchat_stream_viewers_session BEFORE INSERT OR UPDATE ON nchat_stream_viewers
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_viewer_session();

CREATE FUNCTION nchat_rtc_viewer_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    is_new_viewer boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NOT (OLD.left_at IS NOT NULL AND NEW.left_at IS NULL) THEN
        RETURN NULL;
    END IF;

    PERFORM 1 FROM nchat_streams WHERE id = NEW.stream_id FOR UPDATE;

    IF TG_OP = 'INSERT' THEN
        is_new_viewer := NEW.user_id IS NULL
            OR NOT EXISTS (SELECT 1 FROM nchat_stream_viewers v
                           WHERE v.stream_id = NEW.stream_id
                             AND v.user_id = NEW.user_id
                             AND v.id <> NEW.id);
    ELSE
        is_new_viewer := false;
    END IF;

    UPDATE nchat_streams
       SET total_views = total_views + 1,
           unique_viewers = unique_viewers + CASE WHEN is_new_viewer THEN 1 ELSE 0 END
     WHERE id = NEW.stream_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER nchat_stream_viewers_counted
    AFTER INSERT OR UPDATE OF left_at ON nchat_stream_viewers
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_viewer_counted();

-- ---------------------------------------------------------------------------
-- Chat: stream total and the author's open viewer session (the most recent
-- one when they watch in several tabs).
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_chat_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    -- viewer row first, stream row second: the same lock order as the
    -- viewer triggers, so the two cannot deadlock
    UPDATE nchat_stream_viewers
       SET sent_chat_messages = sent_chat_messages + 1
     WHERE id = (SELECT v.id FROM nchat_stream_viewers v
                 WHERE v.stream_id = NEW.stream_id
                   AND v.user_id = NEW.user_id
                   AND v.left_at IS NULL
                 ORDER BY v.joined_at DESC, v.id DESC
                 LIMIT 1);

    UPDATE nchat_streams
       SET total_chat_messages = total_chat_messages + 1
     WHERE id = NEW.stream_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER nchat_stream_chat_messages_counted
    AFTER INSERT ON nchat_stream_chat_messages
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_chat_counted();

-- ---------------------------------------------------------------------------
-- Reactions: stream total, per-type count, and the viewer session (viewer_id
-- when given, else the user's most recent open session).
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_reaction_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    -- lock order: viewer row, stream row, per-type count row
    IF NEW.viewer_id IS NOT NULL THEN
        UPDATE nchat_stream_viewers
           SET sent_reactions = sent_reactions + 1
         WHERE id = NEW.viewer_id AND stream_id = NEW.stream_id;
    ELSIF NEW.user_id IS NOT NULL THEN
        UPDATE nchat_stream_viewers
           SET sent_reactions = sent_reactions + 1
         WHERE id = (SELECT v.id FROM nchat_stream_viewers v
                     WHERE v.stream_id = NEW.stream_id
                       AND v.user_id = NEW.user_id
                       AND v.left_at IS NULL
                     ORDER BY v.joined_at DESC, v.id DESC
                     LIMIT 1);
    END IF;

    UPDATE nchat_streams
       SET total_reactions = total_reactions + 1
     WHERE id = NEW.stream_id;

    INSERT INTO nchat_stream_reaction_counts AS c (stream_id, reaction_type, count)
    VALUES (NEW.stream_id, NEW.reaction_type, 1)
    ON CONFLICT (stream_id, reaction_type) DO UPDATE SET count = c.count + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER nchat_stream_reactions_counted
    AFTER INSERT ON nchat_stream_reactions
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_reaction_counted();

-- Trigger functions are not called directly; the SECURITY DEFINER ones must
-- not be callable by anyone else either.
REVOKE EXECUTE ON FUNCTION nchat_rtc_viewer_counted() FROM PUBLIC, nchat_rtc_service;
REVOKE EXECUTE ON FUNCTION nchat_rtc_chat_counted() FROM PUBLIC, nchat_rtc_service;
REVOKE EXECUTE ON FUNCTION nchat_rtc_reaction_counted() FROM PUBLIC, nchat_rtc_service;
