-- 0006_work_roles.sql - row-level security that holds whatever role the
-- service logs in as, at next to no cost per row.
--
-- Every transaction of the service enters one of two roles in the round trip
-- that opens it (src/db.c: set_config('role', ..., true) = SET LOCAL ROLE):
--
--   nchat_rtc_system  work the service has authorised itself (webhooks,
--                     sweeps, writes after the C checks): its policies are
--                     `true`, so they cost nothing per row;
--   nchat_rtc_user    a user's request, with nchat.user_id set: policies
--                     whose helper calls run once per statement (InitPlans).
--
-- Neither role logs in, owns a table, or bypasses row-level security, so a
-- login role that does (the schema owner, a superuser: the one-URL set-up of
-- Hasura/nHost deployments) is confined like any other.  The login role must
-- be a superuser or a member of both (members of nchat_rtc_service are); if
-- it is neither, `nchat-rtc serve` refuses to start and says what to grant.
--
-- The policies of 0003/0004 were for the login role itself (TO
-- nchat_rtc_service); they are dropped, and that role loses its privileges on
-- the service's tables: a statement that runs without entering a work role
-- sees and changes nothing.
--
-- Creating roles needs CREATEROLE (or a superuser).  Without it, and with
-- the roles absent, this migration stops with a message saying what to run.

-- ---------------------------------------------------------------------------
-- The roles.
-- ---------------------------------------------------------------------------
DO $$
DECLARE
    r text;
    can_create boolean;
    is_super boolean;
    opt text := CASE WHEN current_setting('server_version_num')::int >= 160000
                     THEN ' WITH INHERIT FALSE, SET TRUE' ELSE '' END;
BEGIN
    -- The login group role passes membership on, not privileges.
    BEGIN
        ALTER ROLE nchat_rtc_service NOINHERIT;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'nchat-rtc: cannot make nchat_rtc_service NOINHERIT (%); as a superuser run: ALTER ROLE nchat_rtc_service NOINHERIT', SQLERRM;
    END;
    SELECT rolcreaterole OR rolsuper, rolsuper INTO can_create, is_super
      FROM pg_catalog.pg_roles WHERE rolname = current_user;
    FOREACH r IN ARRAY ARRAY['nchat_rtc_system', 'nchat_rtc_user'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            IF NOT can_create THEN
                -- one line (migrate prints the message's first line)
                RAISE EXCEPTION 'nchat-rtc: role % does not exist and % may not create roles: as a superuser run CREATE ROLE nchat_rtc_system NOLOGIN; CREATE ROLE nchat_rtc_user NOLOGIN; GRANT nchat_rtc_system, nchat_rtc_user TO nchat_rtc_service; then nchat-rtc migrate again (or migrate as a role with CREATEROLE)', r, current_user;
            END IF;
            EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', r);
        ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                      WHERE rolname = r AND (rolsuper OR rolbypassrls OR rolcanlogin)) THEN
            IF is_super THEN
                EXECUTE format('ALTER ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS', r);
            ELSE
                RAISE WARNING 'nchat-rtc: role % is a superuser, bypasses RLS or can log in; as a superuser run: ALTER ROLE % NOLOGIN NOSUPERUSER NOBYPASSRLS (serve refuses to start until then)', r, r;
            END IF;
        END IF;
        -- Members of nchat_rtc_service (the documented login set-up) may
        -- enter both roles; so may the role running the migrations, which is
        -- what a one-URL set-up logs in as.  Membership only: the privileges
        -- and policies of a work role apply once it is entered, never by
        -- inheritance (nchat_rtc_service is NOINHERIT, below; PostgreSQL 16
        -- also takes it per grant).
        BEGIN
            EXECUTE format('GRANT %I TO nchat_rtc_service%s', r, opt);
            IF NOT is_super THEN
                EXECUTE format('GRANT %I TO %I%s', r, current_user, opt);
            END IF;
        EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
            RAISE WARNING 'nchat-rtc: cannot grant role % (%); as a superuser run: GRANT % TO nchat_rtc_service', r, SQLERRM, r;
        END;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- The old policies (for the login role) go; so do its privileges here.
-- ---------------------------------------------------------------------------
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT pol.polname, c.relname
               FROM pg_catalog.pg_policy pol
               JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public'
                AND c.relname IN ('nchat_calls', 'nchat_call_participants', 'nchat_call_recordings',
                                  'nchat_recording_downloads', 'nchat_streams', 'nchat_stream_viewers',
                                  'nchat_stream_reactions', 'nchat_stream_reaction_counts',
                                  'nchat_stream_chat_messages', 'nchat_webrtc_connections',
                                  'nchat_livekit_webhook_events', 'nchat_rtc_audit_log',
                                  'nchat_rtc_outbound_webhooks')
                AND pol.polname IN ('service_all', 'user_read', 'user_insert_own')
    LOOP
        EXECUTE format('DROP POLICY %I ON %I', p.polname, p.relname);
    END LOOP;
END
$$;

REVOKE ALL ON
    nchat_calls, nchat_call_participants, nchat_call_recordings, nchat_recording_downloads,
    nchat_streams, nchat_stream_viewers, nchat_stream_reactions, nchat_stream_reaction_counts,
    nchat_stream_chat_messages, nchat_webrtc_connections, nchat_livekit_webhook_events,
    nchat_rtc_audit_log, nchat_rtc_outbound_webhooks
    FROM nchat_rtc_service;

-- ---------------------------------------------------------------------------
-- Privileges of the work roles.
-- ---------------------------------------------------------------------------
GRANT USAGE ON SCHEMA public TO nchat_rtc_system, nchat_rtc_user;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    nchat_calls, nchat_call_participants, nchat_call_recordings, nchat_recording_downloads,
    nchat_streams, nchat_stream_viewers, nchat_stream_reactions, nchat_stream_reaction_counts,
    nchat_stream_chat_messages, nchat_webrtc_connections, nchat_livekit_webhook_events,
    nchat_rtc_audit_log, nchat_rtc_outbound_webhooks
    TO nchat_rtc_system;

-- A user's request reads what its policies show and inserts only its own
-- rows (connection stats, chat, reactions, viewer sessions).
GRANT SELECT ON
    nchat_calls, nchat_call_participants, nchat_call_recordings, nchat_recording_downloads,
    nchat_streams, nchat_stream_viewers, nchat_stream_reactions, nchat_stream_reaction_counts,
    nchat_stream_chat_messages, nchat_webrtc_connections
    TO nchat_rtc_user;
GRANT INSERT ON
    nchat_webrtc_connections, nchat_stream_chat_messages, nchat_stream_reactions,
    nchat_stream_viewers
    TO nchat_rtc_user;

-- The chat's tables (owned by nself-chat on its database): what this role may
-- grant, else a warning for the chat's owner.
DO $$
DECLARE
    t text;
    p text;
BEGIN
    FOREACH t IN ARRAY ARRAY['nchat_users', 'nchat_channels', 'nchat_channel_members'] LOOP
        FOREACH p IN ARRAY ARRAY['SELECT', 'INSERT', 'UPDATE'] LOOP
            IF pg_catalog.has_table_privilege(t, p || ' WITH GRANT OPTION') THEN
                EXECUTE format('GRANT %s ON %I TO nchat_rtc_system', p, t);
                IF p = 'SELECT' THEN
                    EXECUTE format('GRANT SELECT ON %I TO nchat_rtc_user', t);
                END IF;
            ELSE
                RAISE WARNING 'nchat-rtc: cannot grant % on % to nchat_rtc_system%: grant it as the table''s owner',
                    p, t, CASE WHEN p = 'SELECT' THEN ' and nchat_rtc_user' ELSE '' END;
            END IF;
        END LOOP;
    END LOOP;
END
$$;

-- Tables and functions that later migrations (run by this same role) create
-- are the service's to use; each still needs its own policies.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nchat_rtc_system;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO nchat_rtc_system;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM nchat_rtc_service;

-- ---------------------------------------------------------------------------
-- Helpers for the user policies.  Each is called as (SELECT f()) in a
-- policy, which the planner turns into an InitPlan: evaluated once per
-- statement, whatever the number of rows.
-- ---------------------------------------------------------------------------

-- The acting user of this transaction, or NULL (unset, empty, not a uuid).
-- Plain SQL, no SET clause: inlinable.
CREATE FUNCTION nchat_rtc_uid()
RETURNS uuid
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('nchat.user_id', true)
                     OPERATOR(pg_catalog.~*)
                     '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                THEN pg_catalog.current_setting('nchat.user_id', true)::uuid END
$$;

-- The channels the acting user belongs to, the calls they take part in (a
-- participant row that is not `removed`), and the calls they were removed
-- from.  SECURITY DEFINER: they read the tables as their owner, which breaks
-- the call <-> participant cycle of the policies below, and the chat's
-- membership table needs no policy of ours.  PL/pgSQL, whose plans a
-- connection keeps (an SQL function not inlined is planned at every
-- statement), and no SET clause (it would cost more than the query): every
-- name is schema-qualified instead, operators included, so the caller's
-- search_path cannot redirect anything.
CREATE FUNCTION nchat_rtc_my_channels()
RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    RETURN (SELECT COALESCE(pg_catalog.array_agg(m.channel_id), '{}'::uuid[])
              FROM public.nchat_channel_members m
             WHERE m.user_id OPERATOR(pg_catalog.=) public.nchat_rtc_uid());
END
$$;

CREATE FUNCTION nchat_rtc_my_calls()
RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    RETURN (SELECT COALESCE(pg_catalog.array_agg(p.call_id), '{}'::uuid[])
              FROM public.nchat_call_participants p
             WHERE p.user_id OPERATOR(pg_catalog.=) public.nchat_rtc_uid()
               AND p.status OPERATOR(pg_catalog.<>) 'removed');
END
$$;

CREATE FUNCTION nchat_rtc_my_removed_calls()
RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    RETURN (SELECT COALESCE(pg_catalog.array_agg(p.call_id), '{}'::uuid[])
              FROM public.nchat_call_participants p
             WHERE p.user_id OPERATOR(pg_catalog.=) public.nchat_rtc_uid()
               AND p.status OPERATOR(pg_catalog.=) 'removed');
END
$$;

REVOKE EXECUTE ON FUNCTION nchat_rtc_uid(), nchat_rtc_my_channels(), nchat_rtc_my_calls(),
    nchat_rtc_my_removed_calls() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nchat_rtc_uid(), nchat_rtc_my_channels(), nchat_rtc_my_calls(),
    nchat_rtc_my_removed_calls() TO nchat_rtc_user, nchat_rtc_system;

-- ---------------------------------------------------------------------------
-- Service work: everything, at no cost per row.
-- ---------------------------------------------------------------------------
CREATE POLICY system_all ON nchat_calls                  FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_call_participants      FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_call_recordings        FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_recording_downloads    FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_streams                FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_stream_viewers         FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_stream_reactions       FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_stream_reaction_counts FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_stream_chat_messages   FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_webrtc_connections     FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_livekit_webhook_events FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_rtc_audit_log          FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_rtc_outbound_webhooks  FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);

-- ---------------------------------------------------------------------------
-- A user's request.
--   calls: those they take part in, initiated, or of their channels - but
--          never one they were removed from;
--   participants, connection stats: of the calls they see;
--   recordings: participants only (not channel members who never took part,
--          not removed participants), and never a deleted one;
--   downloads: their own;
--   streams: their own and their channels'; what hangs off a stream: of the
--          streams they see.
-- The per-row EXISTS probes are one primary-key look-up each; the policies
-- of the probed tables apply inside them (no cycle: calls and streams policies
-- read no other table with a policy).
-- ---------------------------------------------------------------------------
-- One OR, most common case first: the planner keeps the order and an
-- InitPlan runs only when first needed, so a participant's read costs one
-- helper call.
CREATE POLICY user_read ON nchat_calls FOR SELECT TO nchat_rtc_user
    USING (id = ANY ((SELECT nchat_rtc_my_calls())::uuid[])
           OR ((initiator_id = (SELECT nchat_rtc_uid())
                OR channel_id = ANY ((SELECT nchat_rtc_my_channels())::uuid[]))
               AND NOT id = ANY ((SELECT nchat_rtc_my_removed_calls())::uuid[])));

CREATE POLICY user_read ON nchat_call_participants FOR SELECT TO nchat_rtc_user
    USING (call_id = ANY ((SELECT nchat_rtc_my_calls())::uuid[])
           OR EXISTS (SELECT 1 FROM nchat_calls c WHERE c.id = call_id));

CREATE POLICY user_read ON nchat_webrtc_connections FOR SELECT TO nchat_rtc_user
    USING (call_id = ANY ((SELECT nchat_rtc_my_calls())::uuid[])
           OR EXISTS (SELECT 1 FROM nchat_calls c WHERE c.id = call_id));

CREATE POLICY user_read ON nchat_call_recordings FOR SELECT TO nchat_rtc_user
    USING (call_id = ANY ((SELECT nchat_rtc_my_calls())::uuid[]) AND status <> 'deleted');

CREATE POLICY user_read ON nchat_recording_downloads FOR SELECT TO nchat_rtc_user
    USING (user_id = (SELECT nchat_rtc_uid()));

CREATE POLICY user_read ON nchat_streams FOR SELECT TO nchat_rtc_user
    USING (broadcaster_id = (SELECT nchat_rtc_uid())
           OR channel_id = ANY ((SELECT nchat_rtc_my_channels())::uuid[]));

CREATE POLICY user_read ON nchat_stream_viewers FOR SELECT TO nchat_rtc_user
    USING (EXISTS (SELECT 1 FROM nchat_streams s WHERE s.id = stream_id));
CREATE POLICY user_read ON nchat_stream_reactions FOR SELECT TO nchat_rtc_user
    USING (EXISTS (SELECT 1 FROM nchat_streams s WHERE s.id = stream_id));
CREATE POLICY user_read ON nchat_stream_reaction_counts FOR SELECT TO nchat_rtc_user
    USING (EXISTS (SELECT 1 FROM nchat_streams s WHERE s.id = stream_id));
CREATE POLICY user_read ON nchat_stream_chat_messages FOR SELECT TO nchat_rtc_user
    USING (EXISTS (SELECT 1 FROM nchat_streams s WHERE s.id = stream_id));

CREATE POLICY user_insert_own ON nchat_webrtc_connections FOR INSERT TO nchat_rtc_user
    WITH CHECK (user_id = (SELECT nchat_rtc_uid())
                AND call_id = ANY ((SELECT nchat_rtc_my_calls())::uuid[]));
CREATE POLICY user_insert_own ON nchat_stream_chat_messages FOR INSERT TO nchat_rtc_user
    WITH CHECK (user_id = (SELECT nchat_rtc_uid())
                AND EXISTS (SELECT 1 FROM nchat_streams s WHERE s.id = stream_id));
CREATE POLICY user_insert_own ON nchat_stream_reactions FOR INSERT TO nchat_rtc_user
    WITH CHECK (user_id = (SELECT nchat_rtc_uid())
                AND EXISTS (SELECT 1 FROM nchat_streams s WHERE s.id = stream_id));
CREATE POLICY user_insert_own ON nchat_stream_viewers FOR INSERT TO nchat_rtc_user
    WITH CHECK (user_id = (SELECT nchat_rtc_uid())
                AND EXISTS (SELECT 1 FROM nchat_streams s WHERE s.id = stream_id));

-- ---------------------------------------------------------------------------
-- The recording download log is an audit trail of access to other people's
-- recordings: erasing a user (DELETE /api/users/{id}/data) pseudonymises
-- their rows instead of deleting them, and so does the chat deleting the
-- user row.
-- ---------------------------------------------------------------------------
ALTER TABLE nchat_recording_downloads ADD COLUMN pseudonymised_at timestamptz;
ALTER TABLE nchat_recording_downloads
    DROP CONSTRAINT nchat_recording_downloads_user_id_fkey,
    ADD CONSTRAINT nchat_recording_downloads_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES nchat_users (id) ON DELETE SET NULL;
