-- 0009_stream_counters.sql - a stream's counters without a queue on its row,
-- and anonymous viewers counted once per client.
--
-- Until now every chat message, reaction and counted viewer session updated
-- the stream's own row (and a reaction its per-type row too) in a trigger,
-- so on a busy stream every writer waited for the one before it to commit.
-- Now a writer adds to the stream row only when the row is free (FOR NO
-- KEY UPDATE SKIP LOCKED): it then also folds in whatever deltas other
-- writers left.  A writer that finds the row taken adds its count to a
-- delta row instead (one nobody else holds, or a new one), so no counter
-- writer ever waits for another.  Nothing is kept outside Postgres: every
-- count commits with the row it counts, and `serve` folds what is left
-- every STREAM_COUNTER_FLUSH_SECONDS (nchat_rtc_stream_counters_flush), so
-- after a burst the stream row is exact again within that time, restarts
-- or not.  When nothing else writes at the same moment (a quiet stream, a
-- test) the stream row is exact at once.
--
-- Anonymous viewer sessions now carry client_key, a keyed hash of the
-- client's address (never the address): an anonymous client counts one
-- view and one unique viewer per stream however many session ids it makes
-- up.  Rows without it (written before, or by hand) count per session as
-- before.  Joins of the same viewer (user or anonymous client) are
-- serialised on an advisory lock of that viewer, not on the stream row.

CREATE TABLE nchat_stream_counter_deltas (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id uuid NOT NULL REFERENCES nchat_streams (id) ON DELETE CASCADE,
    views     integer NOT NULL DEFAULT 0,
    uniques   integer NOT NULL DEFAULT 0,
    chat      integer NOT NULL DEFAULT 0,
    reactions integer NOT NULL DEFAULT 0,
    heart     integer NOT NULL DEFAULT 0,
    "like"    integer NOT NULL DEFAULT 0,
    fire      integer NOT NULL DEFAULT 0,
    clap      integer NOT NULL DEFAULT 0,
    laugh     integer NOT NULL DEFAULT 0,
    wow       integer NOT NULL DEFAULT 0,
    sad       integer NOT NULL DEFAULT 0,
    angry     integer NOT NULL DEFAULT 0
);
CREATE INDEX nchat_stream_counter_deltas_stream_idx ON nchat_stream_counter_deltas (stream_id);

-- Only the counting functions below (SECURITY DEFINER, as the owner) touch
-- it: row-level security on and no policy, no privilege for anyone else.
ALTER TABLE nchat_stream_counter_deltas ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON nchat_stream_counter_deltas FROM PUBLIC;
REVOKE ALL ON nchat_stream_counter_deltas FROM nchat_rtc_service;

ALTER TABLE nchat_stream_viewers ADD COLUMN client_key text;
ALTER TABLE nchat_stream_viewers ADD CONSTRAINT nchat_stream_viewers_client_key_check
    CHECK (client_key IS NULL OR char_length(client_key) BETWEEN 1 AND 64);
CREATE INDEX nchat_stream_viewers_client_idx ON nchat_stream_viewers (stream_id, client_key)
    WHERE client_key IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Fold the given counts plus every delta row of the stream nobody holds into
-- the stream row (which the caller holds) and its per-type rows.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_stream_fold(p_stream uuid, p_views integer, p_uniques integer,
                                      p_chat integer, p_reaction text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    d record;
    t text;
    n integer;
BEGIN
    -- Taken rows are zeroed, not deleted, and so reused by the next writer
    -- that finds the stream row busy: the table stays at about as many rows
    -- as there are concurrent writers, without growing (no waits on its
    -- extension) on a busy stream.  The timer removes rows left at zero.
    WITH old AS (
        SELECT y.* FROM nchat_stream_counter_deltas y
         WHERE y.stream_id = p_stream
           AND (y.views <> 0 OR y.uniques <> 0 OR y.chat <> 0 OR y.reactions <> 0)
         FOR UPDATE SKIP LOCKED),
    taken AS (
        UPDATE nchat_stream_counter_deltas x
           SET views = 0, uniques = 0, chat = 0, reactions = 0, heart = 0, "like" = 0,
               fire = 0, clap = 0, laugh = 0, wow = 0, sad = 0, angry = 0
          FROM old WHERE x.id = old.id
        RETURNING old.*)
    SELECT COALESCE(sum(views), 0) AS views, COALESCE(sum(uniques), 0) AS uniques,
           COALESCE(sum(chat), 0) AS chat, COALESCE(sum(reactions), 0) AS reactions,
           COALESCE(sum(heart), 0) AS heart, COALESCE(sum("like"), 0) AS "like",
           COALESCE(sum(fire), 0) AS fire, COALESCE(sum(clap), 0) AS clap,
           COALESCE(sum(laugh), 0) AS laugh, COALESCE(sum(wow), 0) AS wow,
           COALESCE(sum(sad), 0) AS sad, COALESCE(sum(angry), 0) AS angry
      INTO d FROM taken;
    IF p_views + d.views <> 0 OR p_uniques + d.uniques <> 0 OR p_chat + d.chat <> 0
       OR d.reactions <> 0 OR p_reaction IS NOT NULL THEN
        UPDATE nchat_streams
           SET total_views = total_views + p_views + d.views,
               unique_viewers = unique_viewers + p_uniques + d.uniques,
               total_chat_messages = total_chat_messages + p_chat + d.chat,
               total_reactions = total_reactions + d.reactions
                                 + CASE WHEN p_reaction IS NULL THEN 0 ELSE 1 END
         WHERE id = p_stream;
    END IF;
    FOREACH t IN ARRAY ARRAY['heart', 'like', 'fire', 'clap', 'laugh', 'wow', 'sad', 'angry'] LOOP
        n := CASE t WHEN 'heart' THEN d.heart WHEN 'like' THEN d."like" WHEN 'fire' THEN d.fire
                    WHEN 'clap' THEN d.clap WHEN 'laugh' THEN d.laugh WHEN 'wow' THEN d.wow
                    WHEN 'sad' THEN d.sad ELSE d.angry END
             + CASE WHEN p_reaction = t THEN 1 ELSE 0 END;
        IF n > 0 THEN
            INSERT INTO nchat_stream_reaction_counts AS c (stream_id, reaction_type, count)
            VALUES (p_stream, t, n)
            ON CONFLICT (stream_id, reaction_type) DO UPDATE SET count = c.count + n;
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Count views / unique viewers / one chat message / one reaction (of type
-- p_reaction) for a stream, without waiting for any other counter writer.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_stream_count(p_stream uuid, p_views integer, p_uniques integer,
                                       p_chat integer, p_reaction text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    did bigint;
BEGIN
    PERFORM 1 FROM nchat_streams WHERE id = p_stream FOR NO KEY UPDATE SKIP LOCKED;
    IF FOUND THEN
        PERFORM nchat_rtc_stream_fold(p_stream, p_views, p_uniques, p_chat, p_reaction);
        RETURN;
    END IF;
    UPDATE nchat_stream_counter_deltas
       SET views = views + p_views, uniques = uniques + p_uniques, chat = chat + p_chat,
           reactions = reactions + CASE WHEN p_reaction IS NULL THEN 0 ELSE 1 END,
           heart = heart + CASE WHEN p_reaction = 'heart' THEN 1 ELSE 0 END,
           "like" = "like" + CASE WHEN p_reaction = 'like' THEN 1 ELSE 0 END,
           fire = fire + CASE WHEN p_reaction = 'fire' THEN 1 ELSE 0 END,
           clap = clap + CASE WHEN p_reaction = 'clap' THEN 1 ELSE 0 END,
           laugh = laugh + CASE WHEN p_reaction = 'laugh' THEN 1 ELSE 0 END,
           wow = wow + CASE WHEN p_reaction = 'wow' THEN 1 ELSE 0 END,
           sad = sad + CASE WHEN p_reaction = 'sad' THEN 1 ELSE 0 END,
           angry = angry + CASE WHEN p_reaction = 'angry' THEN 1 ELSE 0 END
     WHERE id = (SELECT y.id FROM nchat_stream_counter_deltas y
                  WHERE y.stream_id = p_stream LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id INTO did;
    IF did IS NULL THEN
        INSERT INTO nchat_stream_counter_deltas (stream_id, views, uniques, chat, reactions,
                                                 heart, "like", fire, clap, laugh, wow, sad, angry)
        VALUES (p_stream, p_views, p_uniques, p_chat,
                CASE WHEN p_reaction IS NULL THEN 0 ELSE 1 END,
                (p_reaction IS NOT DISTINCT FROM 'heart')::int, (p_reaction IS NOT DISTINCT FROM 'like')::int,
                (p_reaction IS NOT DISTINCT FROM 'fire')::int, (p_reaction IS NOT DISTINCT FROM 'clap')::int,
                (p_reaction IS NOT DISTINCT FROM 'laugh')::int, (p_reaction IS NOT DISTINCT FROM 'wow')::int,
                (p_reaction IS NOT DISTINCT FROM 'sad')::int, (p_reaction IS NOT DISTINCT FROM 'angry')::int);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Fold every stream's pending deltas (serve's timer).  A stream whose row
-- is taken right now is left for the writer holding it (who folds) or for
-- the next tick.  Returns the streams folded.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_stream_counters_flush()
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    s uuid;
    n integer := 0;
BEGIN
    FOR s IN SELECT DISTINCT stream_id FROM nchat_stream_counter_deltas
              WHERE views <> 0 OR uniques <> 0 OR chat <> 0 OR reactions <> 0 LOOP
        PERFORM 1 FROM nchat_streams WHERE id = s FOR NO KEY UPDATE SKIP LOCKED;
        IF FOUND THEN
            PERFORM nchat_rtc_stream_fold(s, 0, 0, 0, NULL);
            n := n + 1;
        END IF;
    END LOOP;
    -- zeroed rows of streams that are no longer live are not needed again
    DELETE FROM nchat_stream_counter_deltas x
     WHERE x.id IN (SELECT y.id FROM nchat_stream_counter_deltas y
                     WHERE y.views = 0 AND y.uniques = 0 AND y.chat = 0 AND y.reactions = 0
                       AND NOT EXISTS (SELECT 1 FROM nchat_streams st
                                        WHERE st.id = y.stream_id AND st.status = 'live')
                     FOR UPDATE SKIP LOCKED);
    RETURN n;
END
$$;

-- ---------------------------------------------------------------------------
-- Fold one stream's pending deltas now, waiting for its row if need be: the
-- reads that show the counters (GET of one stream, analytics, the reaction
-- summary) call it first, in a transaction of its own, so what they show
-- includes every count committed before (only a writer still in flight can
-- keep its delta row for the next fold).  Nothing to do, nothing locked.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_stream_counters_sync(p_stream uuid)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM nchat_stream_counter_deltas
                    WHERE stream_id = p_stream
                      AND (views <> 0 OR uniques <> 0 OR chat <> 0 OR reactions <> 0)) THEN
        RETURN;
    END IF;
    PERFORM 1 FROM nchat_streams WHERE id = p_stream FOR NO KEY UPDATE;
    IF FOUND THEN
        PERFORM nchat_rtc_stream_fold(p_stream, 0, 0, 0, NULL);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- The counting triggers, now through nchat_rtc_stream_count.
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
        PERFORM nchat_rtc_stream_count(NEW.stream_id, views,
                                       CASE WHEN is_new_viewer THEN 1 ELSE 0 END, 0, NULL);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION nchat_rtc_chat_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    UPDATE nchat_stream_viewers
       SET sent_chat_messages = sent_chat_messages + 1
     WHERE id = (SELECT v.id FROM nchat_stream_viewers v
                 WHERE v.stream_id = NEW.stream_id
                   AND v.user_id = NEW.user_id
                   AND v.left_at IS NULL
                 ORDER BY v.joined_at DESC, v.id DESC
                 LIMIT 1);
    PERFORM nchat_rtc_stream_count(NEW.stream_id, 0, 0, 1, NULL);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION nchat_rtc_reaction_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
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
    PERFORM nchat_rtc_stream_count(NEW.stream_id, 0, 0, 0, NEW.reaction_type);
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION nchat_rtc_stream_fold(uuid, integer, integer, integer, text)
    FROM PUBLIC, nchat_rtc_service;
REVOKE EXECUTE ON FUNCTION nchat_rtc_stream_count(uuid, integer, integer, integer, text)
    FROM PUBLIC, nchat_rtc_service;
REVOKE EXECUTE ON FUNCTION nchat_rtc_stream_counters_flush() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nchat_rtc_stream_counters_flush() TO nchat_rtc_service, nchat_rtc_system, nchat_rtc_user;
REVOKE EXECUTE ON FUNCTION nchat_rtc_stream_counters_sync(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nchat_rtc_stream_counters_sync(uuid) TO nchat_rtc_service, nchat_rtc_system, nchat_rtc_user;
