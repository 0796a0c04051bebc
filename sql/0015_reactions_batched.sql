-- 0015_reactions_batched.sql - one counting call per statement of reactions.
--
-- The service now writes the reactions of several viewers in one INSERT
-- (src/streams/stream_chat.c).  0013's trigger still ran once per row: a
-- SECURITY DEFINER function entered (its search_path set and reset) and an
-- INSERT of one pending row planned and run for each reaction, which made
-- most of a reaction's own cost in Postgres.  The trigger now runs once per
-- statement and counts every row of it, from the statement's transition
-- table, in one INSERT: the pending rows are the same as before (one per
-- reaction, the same stream, viewer session and type), so the folds, the
-- readers and every count are unchanged.

CREATE FUNCTION nchat_rtc_reactions_counted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
    -- each reaction counts for the stream, its type and the viewer session
    -- (viewer_id when given, else the user's most recent open session)
    INSERT INTO nchat_stream_counts_pending (stream_id, viewer_id, reaction)
    SELECT n.stream_id,
           CASE WHEN n.viewer_id IS NOT NULL THEN n.viewer_id
                WHEN n.user_id IS NOT NULL THEN
                    (SELECT v.id FROM nchat_stream_viewers v
                      WHERE v.stream_id = n.stream_id AND v.user_id = n.user_id
                        AND v.left_at IS NULL
                      ORDER BY v.joined_at DESC, v.id DESC LIMIT 1) END,
           n.reaction_type
      FROM new_rows n;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION nchat_rtc_reactions_counted() FROM PUBLIC, nchat_rtc_service;

DROP TRIGGER nchat_stream_reactions_counted ON nchat_stream_reactions;
CREATE TRIGGER nchat_stream_reactions_counted
    AFTER INSERT ON nchat_stream_reactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nchat_rtc_reactions_counted();
DROP FUNCTION nchat_rtc_reaction_counted();
