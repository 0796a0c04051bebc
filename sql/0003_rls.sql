-- 0003_rls.sql - row-level security for the service role.
--
-- The service sets, per transaction (set_config(..., true) = SET LOCAL):
--   SELECT set_config('nchat.user_id', '<uuid>', true);  -- a user's request
--   SELECT set_config('nchat.role', 'service', true);    -- system work
-- System work is webhooks, sweeps, and writes the service has already
-- authorised itself.  In service context every row may be read and written.
-- In user context a user may READ:
--   * calls they take part in (a participant row with their id), initiated,
--     or whose channel they belong to; the participants, recordings and
--     connection stats of those calls; their own recording downloads;
--   * streams of channels they belong to, and their own streams; the viewers,
--     chat, reactions and per-type counts of those streams;
-- and may INSERT only rows that are their own (user_id = them) on calls /
-- streams they can see: connection stats, stream chat, reactions, viewer
-- sessions.  Nothing else is writable in user context.
-- With neither setting nothing is visible and nothing is writable.
--
-- The table owner (the migration role) bypasses RLS (no FORCE), and so do the
-- SECURITY DEFINER helpers below, which is what breaks the calls <->
-- participants cycle: policies call the helpers, the helpers read the tables
-- as the owner, no policy is evaluated twice.

-- ---------------------------------------------------------------------------
-- Context helpers
-- ---------------------------------------------------------------------------

-- The user id of the current transaction, or NULL (unset, empty, not a uuid).
CREATE FUNCTION nchat_rtc_user_id()
RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    v text := current_setting('nchat.user_id', true);
BEGIN
    IF v IS NULL
       OR v !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN NULL;
    END IF;
    RETURN v::uuid;
END
$$;

-- True when the transaction runs as the service itself.
CREATE FUNCTION nchat_rtc_is_service()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT COALESCE(current_setting('nchat.role', true), '') = 'service'
$$;

-- Is the current user a member of the channel?
CREATE FUNCTION nchat_rtc_is_channel_member(channel uuid)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT channel IS NOT NULL AND EXISTS (
        SELECT 1 FROM nchat_channel_members m
        WHERE m.channel_id = channel
          AND m.user_id = nchat_rtc_user_id())
$$;

-- May the current user see this call (and what hangs off it)?
CREATE FUNCTION nchat_rtc_can_see_call(call uuid)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT nchat_rtc_user_id() IS NOT NULL AND (
        EXISTS (SELECT 1 FROM nchat_call_participants p
                WHERE p.call_id = call AND p.user_id = nchat_rtc_user_id())
        OR EXISTS (SELECT 1 FROM nchat_calls c
                   WHERE c.id = call
                     AND (c.initiator_id = nchat_rtc_user_id()
                          OR (c.channel_id IS NOT NULL
                              AND EXISTS (SELECT 1 FROM nchat_channel_members m
                                          WHERE m.channel_id = c.channel_id
                                            AND m.user_id = nchat_rtc_user_id())))))
$$;

-- May the current user see this stream (and its chat, reactions, viewers)?
CREATE FUNCTION nchat_rtc_can_see_stream(stream uuid)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT nchat_rtc_user_id() IS NOT NULL AND EXISTS (
        SELECT 1 FROM nchat_streams s
        WHERE s.id = stream
          AND (s.broadcaster_id = nchat_rtc_user_id()
               OR (s.channel_id IS NOT NULL
                   AND EXISTS (SELECT 1 FROM nchat_channel_members m
                               WHERE m.channel_id = s.channel_id
                                 AND m.user_id = nchat_rtc_user_id()))))
$$;

REVOKE EXECUTE ON FUNCTION
    nchat_rtc_user_id(),
    nchat_rtc_is_service(),
    nchat_rtc_is_channel_member(uuid),
    nchat_rtc_can_see_call(uuid),
    nchat_rtc_can_see_stream(uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    nchat_rtc_user_id(),
    nchat_rtc_is_service(),
    nchat_rtc_is_channel_member(uuid),
    nchat_rtc_can_see_call(uuid),
    nchat_rtc_can_see_stream(uuid)
    TO nchat_rtc_service;

-- ---------------------------------------------------------------------------
-- Enable RLS (not FORCE: the owner keeps full access for migrations and
-- operator work).
-- ---------------------------------------------------------------------------
ALTER TABLE nchat_calls                  ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_call_participants      ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_call_recordings        ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_recording_downloads    ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_streams                ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_stream_viewers         ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_stream_reactions       ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_stream_reaction_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_stream_chat_messages   ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_webrtc_connections     ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_livekit_webhook_events ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------
-- Service context: everything.
-- ---------------------------------------------------------------------------
CREATE POLICY service_all ON nchat_calls FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_call_participants FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_call_recordings FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_recording_downloads FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_streams FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_stream_viewers FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_stream_reactions FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_stream_reaction_counts FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_stream_chat_messages FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_webrtc_connections FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_livekit_webhook_events FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());

-- ---------------------------------------------------------------------------
-- User context: reads.
-- ---------------------------------------------------------------------------
CREATE POLICY user_read ON nchat_calls FOR SELECT TO nchat_rtc_service
    USING (nchat_rtc_can_see_call(id));
CREATE POLICY user_read ON nchat_call_participants FOR SELECT TO nchat_rtc_service
    USING (nchat_rtc_can_see_call(call_id));
CREATE POLICY user_read ON nchat_call_recordings FOR SELECT TO nchat_rtc_service
    USING (nchat_rtc_can_see_call(call_id));
CREATE POLICY user_read ON nchat_webrtc_connections FOR SELECT TO nchat_rtc_service
    USING (nchat_rtc_can_see_call(call_id));
CREATE POLICY user_read ON nchat_recording_downloads FOR SELECT TO nchat_rtc_service
    USING (user_id IS NOT NULL AND user_id = nchat_rtc_user_id());

CREATE POLICY user_read ON nchat_streams FOR SELECT TO nchat_rtc_service
    USING (broadcaster_id = nchat_rtc_user_id()
           OR nchat_rtc_is_channel_member(channel_id));
CREATE POLICY user_read ON nchat_stream_viewers FOR SELECT TO nchat_rtc_service
    USING (nchat_rtc_can_see_stream(stream_id));
CREATE POLICY user_read ON nchat_stream_reactions FOR SELECT TO nchat_rtc_service
    USING (nchat_rtc_can_see_stream(stream_id));
CREATE POLICY user_read ON nchat_stream_reaction_counts FOR SELECT TO nchat_rtc_service
    USING (nchat_rtc_can_see_stream(stream_id));
CREATE POLICY user_read ON nchat_stream_chat_messages FOR SELECT TO nchat_rtc_service
    USING (nchat_rtc_can_see_stream(stream_id));

-- ---------------------------------------------------------------------------
-- User context: a user's own rows on what they can see.
-- ---------------------------------------------------------------------------
CREATE POLICY user_insert_own ON nchat_webrtc_connections FOR INSERT TO nchat_rtc_service
    WITH CHECK (user_id = nchat_rtc_user_id() AND nchat_rtc_can_see_call(call_id));
CREATE POLICY user_insert_own ON nchat_stream_chat_messages FOR INSERT TO nchat_rtc_service
    WITH CHECK (user_id = nchat_rtc_user_id() AND nchat_rtc_can_see_stream(stream_id));
CREATE POLICY user_insert_own ON nchat_stream_reactions FOR INSERT TO nchat_rtc_service
    WITH CHECK (user_id = nchat_rtc_user_id() AND nchat_rtc_can_see_stream(stream_id));
CREATE POLICY user_insert_own ON nchat_stream_viewers FOR INSERT TO nchat_rtc_service
    WITH CHECK (user_id = nchat_rtc_user_id() AND nchat_rtc_can_see_stream(stream_id));
