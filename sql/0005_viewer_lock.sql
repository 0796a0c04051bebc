-- 0005_viewer_lock.sql - concurrent viewer joins on one stream must not deadlock.
--
-- Inserting a viewer row takes a KEY SHARE lock on its stream through the
-- foreign key; the counting trigger then locked the same stream row FOR
-- UPDATE, which conflicts with KEY SHARE, so two joins at once could each
-- wait for the other.  FOR NO KEY UPDATE (what the trigger's own UPDATE of
-- the counters takes anyway) does not conflict with KEY SHARE: concurrent
-- joins now queue on the stream row instead of deadlocking.

CREATE OR REPLACE FUNCTION nchat_rtc_viewer_counted()
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

    PERFORM 1 FROM nchat_streams WHERE id = NEW.stream_id FOR NO KEY UPDATE;

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
