-- 0013_stream_counts_append.sql - a stream's counters from append-only
-- rows: a count is one INSERT, folded in later.
--
-- Under 0009 every chat message, reaction and counted viewer session still
-- updated a shared row: the stream row when it was free (and then folded
-- every delta row nobody held), else a delta row; every reaction also
-- updated the per-type row, and every chat message and reaction the
-- author's viewer row.  Those updates of a few hot rows made most of a
-- post's cost.
--
-- Now a writer only INSERTs one small row into nchat_stream_counts_pending
-- (the stream, the counts, the reaction type, the viewer session whose
-- sent_chat_messages / sent_reactions it counts), in the transaction of
-- the row it counts: nothing is updated or locked on the write path, so
-- no counter writer ever waits for another, and every count commits with
-- its row (nothing lost on a restart of the service or of Postgres).
--
-- A fold (nchat_rtc_stream_fold) holds the stream row (FOR NO KEY UPDATE,
-- which never blocks the writers' foreign-key checks), DELETEs the stream's
-- committed pending rows and adds them to the stream row, the per-type rows
-- and the viewer rows, all in one transaction: a reader's snapshot sees a
-- pending row either still pending or already in the totals, never both,
-- never neither.  So
--   * stream row + pending rows, read in one statement, is exact
--     (nchat_rtc_stream_pending, nchat_rtc_viewer_pending: the stream list,
--     GET of a stream, the GDPR export);
--   * nchat_rtc_stream_counters_sync folds one stream now (GET of a stream,
--     its analytics and reaction summary call it first; the end of a stream
--     folds inside its own transaction);
--   * nchat_rtc_stream_counters_flush folds every stream whose row is free
--     (serve's timer, every STREAM_COUNTER_FLUSH_SECONDS), so the totals
--     stored in the rows are at most that old.
-- Folds of one stream queue on its row, so they never take the same
-- pending row; writers never wait for a fold.

-- 0009's delta rows are moved into the new table below.  Taken first, while
-- this migration holds nothing a counter writer needs: a 0009 writer or
-- fold still running holds the table until it ends, one coming after waits
-- for this commit (a few milliseconds), and nothing here waits for a row
-- such a writer may hold, so the two cannot deadlock.
LOCK TABLE nchat_stream_counter_deltas IN ACCESS EXCLUSIVE MODE;

CREATE TABLE nchat_stream_counts_pending (
    stream_id uuid NOT NULL,
    viewer_id uuid,                       -- the session whose sent_* it counts
    views     integer NOT NULL DEFAULT 0,
    uniques   integer NOT NULL DEFAULT 0,
    chat      integer NOT NULL DEFAULT 0,
    reaction  text                        -- one reaction of this type
);
-- No foreign key: the row counted holds the stream (its own foreign key)
-- until the same commit, and a second check per count would cost as much
-- as the count.  Rows of a stream deleted since are dropped by the flush.
CREATE INDEX nchat_stream_counts_pending_stream_idx ON nchat_stream_counts_pending (stream_id);

-- Only the functions below (SECURITY DEFINER, as the owner) touch it:
-- row-level security on and no policy, no privilege for anyone else.
ALTER TABLE nchat_stream_counts_pending ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON nchat_stream_counts_pending FROM PUBLIC;
REVOKE ALL ON nchat_stream_counts_pending FROM nchat_rtc_service;

-- ---------------------------------------------------------------------------
-- The counting triggers: one INSERT each.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION nchat_rtc_viewer_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    is_new_viewer boolean;
    views integer := 1;
BEGIN
    IF TG_OP = 'UPDATE' AND NOT (OLD.left_at IS NOT NULL AND NEW.left_at IS NULL) THEN
        RETURN NULL;
    END IF;

    IF NEW.user_id IS NOT NULL THEN
        -- concurrent joins of one user (two tabs) count them once
        PERFORM pg_advisory_xact_lock(hashtextextended(
            'nchat-viewer:' || NEW.stream_id::text || ':' || NEW.user_id::text, 0));
        is_new_viewer := TG_OP = 'INSERT' AND NOT EXISTS (
            SELECT 1 FROM nchat_stream_viewers v
             WHERE v.stream_id = NEW.stream_id AND v.user_id = NEW.user_id AND v.id <> NEW.id);
    ELSIF NEW.client_key IS NOT NULL THEN
        -- an anonymous client: one view and one viewer per stream
        PERFORM pg_advisory_xact_lock(hashtextextended(
            'nchat-viewer:' || NEW.stream_id::text || ':anon:' || NEW.client_key, 0));
        is_new_viewer := TG_OP = 'INSERT' AND NOT EXISTS (
            SELECT 1 FROM nchat_stream_viewers v
             WHERE v.stream_id = NEW.stream_id AND v.client_key = NEW.client_key
               AND v.user_id IS NULL AND v.id <> NEW.id);
        views := CASE WHEN is_new_viewer THEN 1 ELSE 0 END;
    ELSE
        is_new_viewer := TG_OP = 'INSERT';
    END IF;

    IF views <> 0 OR is_new_viewer THEN
        INSERT INTO nchat_stream_counts_pending (stream_id, views, uniques)
        VALUES (NEW.stream_id, views, CASE WHEN is_new_viewer THEN 1 ELSE 0 END);
    END IF;
    RETURN NULL;
END
$$;

-- A chat message counts for the stream and for the author's open viewer
-- session (the most recent one when they watch in several tabs).
CREATE OR REPLACE FUNCTION nchat_rtc_chat_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_stream_counts_pending (stream_id, viewer_id, chat)
    SELECT NEW.stream_id,
           (SELECT v.id FROM nchat_stream_viewers v
             WHERE v.stream_id = NEW.stream_id AND v.user_id = NEW.user_id AND v.left_at IS NULL
             ORDER BY v.joined_at DESC, v.id DESC LIMIT 1),
           1;
    RETURN NULL;
END
$$;

-- A reaction counts for the stream, its type and the viewer session
-- (viewer_id when given, else the user's most recent open session).
CREATE OR REPLACE FUNCTION nchat_rtc_reaction_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_stream_counts_pending (stream_id, viewer_id, reaction)
    SELECT NEW.stream_id,
           CASE WHEN NEW.viewer_id IS NOT NULL THEN NEW.viewer_id
                WHEN NEW.user_id IS NOT NULL THEN
                    (SELECT v.id FROM nchat_stream_viewers v
                      WHERE v.stream_id = NEW.stream_id AND v.user_id = NEW.user_id
                        AND v.left_at IS NULL
                      ORDER BY v.joined_at DESC, v.id DESC LIMIT 1) END,
           NEW.reaction_type;
    RETURN NULL;
END
$$;

-- ---------------------------------------------------------------------------
-- Fold the pending rows of the given streams, whose rows the caller holds,
-- into the stream rows, the per-type rows and the viewer rows.  Returns the
-- streams that had any.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_stream_fold(p_streams uuid[])
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    WITH d AS (
        DELETE FROM nchat_stream_counts_pending WHERE stream_id = ANY (p_streams)
        RETURNING stream_id, viewer_id, views, uniques, chat, reaction),
    s AS (
        SELECT stream_id, sum(views) AS views, sum(uniques) AS uniques, sum(chat) AS chat,
               count(reaction) AS reactions
          FROM d GROUP BY stream_id),
    st AS (
        UPDATE nchat_streams x
           SET total_views = x.total_views + s.views,
               unique_viewers = x.unique_viewers + s.uniques,
               total_chat_messages = x.total_chat_messages + s.chat,
               total_reactions = x.total_reactions + s.reactions
          FROM s
         WHERE x.id = s.stream_id
           AND (s.views <> 0 OR s.uniques <> 0 OR s.chat <> 0 OR s.reactions <> 0)
        RETURNING 1),
    t AS (
        INSERT INTO nchat_stream_reaction_counts AS c (stream_id, reaction_type, count)
        SELECT d.stream_id, d.reaction, count(*) FROM d WHERE d.reaction IS NOT NULL
         GROUP BY d.stream_id, d.reaction
        ON CONFLICT (stream_id, reaction_type) DO UPDATE SET count = c.count + EXCLUDED.count
        RETURNING 1),
    v AS (
        UPDATE nchat_stream_viewers x
           SET sent_chat_messages = x.sent_chat_messages + g.chat,
               sent_reactions = x.sent_reactions + g.reactions
          FROM (SELECT d.stream_id, d.viewer_id, sum(d.chat) AS chat,
                       count(d.reaction) AS reactions
                  FROM d WHERE d.viewer_id IS NOT NULL
                 GROUP BY d.stream_id, d.viewer_id) g
         WHERE x.id = g.viewer_id AND x.stream_id = g.stream_id
        RETURNING 1)
    SELECT count(*)::integer FROM s;
$$;

-- ---------------------------------------------------------------------------
-- Fold every stream's pending rows (serve's timer).  A stream whose row is
-- taken right now is left for the next tick (or the sync holding it).
-- Rows of streams deleted since are dropped.  Returns the streams folded.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION nchat_rtc_stream_counters_flush()
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    ids uuid[];
    held uuid[];
BEGIN
    SELECT array_agg(DISTINCT stream_id) INTO ids FROM nchat_stream_counts_pending;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    SELECT array_agg(x.id) INTO held
      FROM (SELECT s.id FROM nchat_streams s WHERE s.id = ANY (ids)
             FOR NO KEY UPDATE SKIP LOCKED) x;
    DELETE FROM nchat_stream_counts_pending p
     WHERE p.ctid = ANY (ARRAY(
        SELECT q.ctid FROM nchat_stream_counts_pending q
         WHERE q.stream_id = ANY (ids)
           AND NOT EXISTS (SELECT 1 FROM nchat_streams s WHERE s.id = q.stream_id)
         FOR UPDATE SKIP LOCKED));
    IF held IS NULL THEN
        RETURN 0;
    END IF;
    RETURN nchat_rtc_stream_fold(held);
END
$$;

-- ---------------------------------------------------------------------------
-- Fold one stream's pending rows now, waiting for its row if need be (a
-- fold or a status change holding it): what a read in a later statement
-- shows includes every count committed before.  Nothing pending, nothing
-- locked.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION nchat_rtc_stream_counters_sync(p_stream uuid)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM nchat_stream_counts_pending WHERE stream_id = p_stream) THEN
        RETURN;
    END IF;
    PERFORM 1 FROM nchat_streams WHERE id = p_stream FOR NO KEY UPDATE;
    IF FOUND THEN
        PERFORM nchat_rtc_stream_fold(ARRAY[p_stream]);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- What is pending for a stream / a viewer session, in the caller's
-- snapshot: added to the row read in the same statement, exact.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_stream_pending(p_stream uuid, OUT views bigint, OUT uniques bigint,
                                         OUT chat bigint, OUT reactions bigint)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT COALESCE(sum(p.views), 0), COALESCE(sum(p.uniques), 0), COALESCE(sum(p.chat), 0),
           count(p.reaction)
      FROM nchat_stream_counts_pending p WHERE p.stream_id = p_stream;
$$;

CREATE FUNCTION nchat_rtc_viewer_pending(p_stream uuid, p_viewer uuid, OUT chat bigint,
                                         OUT reactions bigint)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT COALESCE(sum(p.chat), 0), count(p.reaction)
      FROM nchat_stream_counts_pending p WHERE p.stream_id = p_stream AND p.viewer_id = p_viewer;
$$;

-- ---------------------------------------------------------------------------
-- 0009's delta rows become pending rows (folded like any other).  The table
-- stays, empty: a 0009 writer that was already running its trigger when
-- this commits may still add a row to it, and the trigger below turns such
-- a row into pending rows instead, so no count is stranded.  0009's
-- nchat_rtc_stream_count, which its trigger bodies call, now counts the
-- new way; its fold still adds straight to the stream row, which is exact
-- too.  A later migration can drop all three.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_counter_delta_moved()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO nchat_stream_counts_pending (stream_id, views, uniques, chat)
    SELECT NEW.stream_id, NEW.views, NEW.uniques, NEW.chat
     WHERE NEW.views <> 0 OR NEW.uniques <> 0 OR NEW.chat <> 0;
    INSERT INTO nchat_stream_counts_pending (stream_id, reaction)
    SELECT NEW.stream_id, t.type
      FROM (VALUES ('heart', NEW.heart), ('like', NEW."like"), ('fire', NEW.fire),
                   ('clap', NEW.clap), ('laugh', NEW.laugh), ('wow', NEW.wow),
                   ('sad', NEW.sad), ('angry', NEW.angry)) AS t(type, n)
     CROSS JOIN LATERAL generate_series(1, t.n) AS g
     WHERE t.n > 0;
    RETURN NULL;
END
$$;

INSERT INTO nchat_stream_counts_pending (stream_id, views, uniques, chat)
SELECT stream_id, sum(views), sum(uniques), sum(chat)
  FROM nchat_stream_counter_deltas GROUP BY stream_id
HAVING sum(views) <> 0 OR sum(uniques) <> 0 OR sum(chat) <> 0;
INSERT INTO nchat_stream_counts_pending (stream_id, reaction)
SELECT d.stream_id, t.type
  FROM nchat_stream_counter_deltas d
 CROSS JOIN LATERAL (VALUES ('heart', d.heart), ('like', d."like"), ('fire', d.fire),
                            ('clap', d.clap), ('laugh', d.laugh), ('wow', d.wow),
                            ('sad', d.sad), ('angry', d.angry)) AS t(type, n)
 CROSS JOIN LATERAL generate_series(1, t.n) AS g
 WHERE t.n > 0;
DELETE FROM nchat_stream_counter_deltas;
CREATE TRIGGER nchat_stream_counter_deltas_moved BEFORE INSERT ON nchat_stream_counter_deltas
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_counter_delta_moved();

CREATE OR REPLACE FUNCTION nchat_rtc_stream_count(p_stream uuid, p_views integer, p_uniques integer,
                                                  p_chat integer, p_reaction text)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    INSERT INTO nchat_stream_counts_pending (stream_id, views, uniques, chat, reaction)
    VALUES (p_stream, p_views, p_uniques, p_chat, p_reaction);
$$;

REVOKE EXECUTE ON FUNCTION nchat_rtc_counter_delta_moved() FROM PUBLIC, nchat_rtc_service;
REVOKE EXECUTE ON FUNCTION nchat_rtc_stream_fold(uuid[]) FROM PUBLIC, nchat_rtc_service;
REVOKE EXECUTE ON FUNCTION nchat_rtc_stream_pending(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nchat_rtc_stream_pending(uuid) TO nchat_rtc_system, nchat_rtc_user;
REVOKE EXECUTE ON FUNCTION nchat_rtc_viewer_pending(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nchat_rtc_viewer_pending(uuid, uuid) TO nchat_rtc_system, nchat_rtc_user;
