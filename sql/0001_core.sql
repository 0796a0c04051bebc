-- 0001_core.sql - roles, the chat's own tables (when absent), and the
-- calls / recordings / streams tables of the design report.
--
-- Applied by `nchat-rtc migrate` inside one transaction, as the schema owner
-- role (which has CREATEROLE).  No BEGIN/COMMIT here.
--
-- Conventions used throughout:
--   * ids are uuid DEFAULT gen_random_uuid() (core since PostgreSQL 13);
--   * every point in time is timestamptz;
--   * every status / type column has a named CHECK listing exactly the strings
--     of API.md (the frontend reads them as they are);
--   * user ids reference nchat_users; when a user row goes away their
--     participation is kept but pseudonymised (ON DELETE SET NULL), their own
--     content (chat, connection stats, downloads) goes with them (CASCADE).

-- ---------------------------------------------------------------------------
-- The group role the service's login role is a member of.
-- ---------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'nchat_rtc_service') THEN
        CREATE ROLE nchat_rtc_service NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO nchat_rtc_service;

-- ---------------------------------------------------------------------------
-- The chat's tables.  nself-chat already has them; on a database of its own
-- the service gets these minimal versions.
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS nchat_users (
    id           uuid PRIMARY KEY,
    display_name text
);

CREATE TABLE IF NOT EXISTS nchat_channels (
    id   uuid PRIMARY KEY,
    name text
);

CREATE TABLE IF NOT EXISTS nchat_channel_members (
    channel_id uuid NOT NULL REFERENCES nchat_channels (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES nchat_users (id) ON DELETE CASCADE,
    role       text NOT NULL DEFAULT 'member',
    PRIMARY KEY (channel_id, user_id)
);

-- Membership by user (the RLS helpers look it up on every request).  On the
-- chat's own table, owned by another role, the chat is responsible for it:
-- only create the index when this role owns the table.
DO $$
BEGIN
    IF pg_catalog.pg_has_role(current_user,
           (SELECT c.relowner FROM pg_catalog.pg_class c
            WHERE c.oid = 'nchat_channel_members'::regclass), 'USAGE') THEN
        CREATE INDEX IF NOT EXISTS nchat_channel_members_user_idx
            ON nchat_channel_members (user_id);
    ELSE
        RAISE NOTICE 'nchat_channel_members is not ours: index on (user_id) left to its owner';
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Calls
-- ---------------------------------------------------------------------------
CREATE TABLE nchat_calls (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    livekit_room_name text NOT NULL UNIQUE,
    call_type         text NOT NULL,
    status            text NOT NULL DEFAULT 'initiating',
    initiator_id      uuid REFERENCES nchat_users (id) ON DELETE SET NULL,
    channel_id        uuid REFERENCES nchat_channels (id) ON DELETE SET NULL,
    is_group_call     boolean NOT NULL DEFAULT false,
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
    max_participants  integer,
    end_reason        text,
    initiated_at      timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    ended_at          timestamptz,
    -- when still-ringing invitees become `missed` (sweep-calls)
    ring_expires_at   timestamptz,
    -- newest LiveKit webhook createdAt applied to this row (order tolerance)
    last_event_at     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_calls_call_type_check
        CHECK (call_type IN ('audio', 'video', 'screen_share')),
    CONSTRAINT nchat_calls_status_check
        CHECK (status IN ('initiating', 'ringing', 'active', 'ended', 'missed', 'declined', 'failed')),
    CONSTRAINT nchat_calls_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT nchat_calls_max_participants_check
        CHECK (max_participants IS NULL OR max_participants > 0)
);

CREATE INDEX nchat_calls_status_idx ON nchat_calls (status);
CREATE INDEX nchat_calls_channel_idx ON nchat_calls (channel_id, initiated_at DESC, id DESC)
    WHERE channel_id IS NOT NULL;
CREATE INDEX nchat_calls_initiator_idx ON nchat_calls (initiator_id, initiated_at DESC, id DESC);
CREATE INDEX nchat_calls_ring_expiry_idx ON nchat_calls (ring_expires_at)
    WHERE status = 'ringing';
-- sweep-calls: calls that may still have a LiveKit room
CREATE INDEX nchat_calls_open_idx ON nchat_calls (updated_at)
    WHERE status IN ('initiating', 'ringing', 'active');

-- user_id is NULLable: DELETE /api/users/{id}/data pseudonymises call
-- participation by setting user_id (and livekit_identity /
-- livekit_participant_id) to NULL and stamping pseudonymised_at.  The call's
-- shape (how many took part, for how long) stays; who it was does not.  A
-- random replacement id would not satisfy the foreign key to nchat_users and
-- would still be a stable pseudonym that links rows together.
CREATE TABLE nchat_call_participants (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    call_id                uuid NOT NULL REFERENCES nchat_calls (id) ON DELETE CASCADE,
    user_id                uuid REFERENCES nchat_users (id) ON DELETE SET NULL,
    role                   text NOT NULL DEFAULT 'participant',
    status                 text NOT NULL DEFAULT 'invited',
    livekit_participant_id text,
    -- the user id as text: the same identity in every token of the call
    livekit_identity       text,
    is_audio_enabled       boolean NOT NULL DEFAULT false,
    is_video_enabled       boolean NOT NULL DEFAULT false,
    is_screen_sharing      boolean NOT NULL DEFAULT false,
    invited_at             timestamptz NOT NULL DEFAULT now(),
    joined_at              timestamptz,
    left_at                timestamptz,
    total_duration_seconds integer NOT NULL DEFAULT 0,
    last_event_at          timestamptz,
    pseudonymised_at       timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_call_participants_call_user_key UNIQUE (call_id, user_id),
    CONSTRAINT nchat_call_participants_role_check
        CHECK (role IN ('initiator', 'participant')),
    CONSTRAINT nchat_call_participants_status_check
        CHECK (status IN ('invited', 'ringing', 'joined', 'left', 'declined', 'missed', 'removed')),
    CONSTRAINT nchat_call_participants_duration_check
        CHECK (total_duration_seconds >= 0)
);

-- (call_id, user_id) is covered by the unique constraint's index.
CREATE INDEX nchat_call_participants_user_idx ON nchat_call_participants (user_id, call_id);
CREATE INDEX nchat_call_participants_identity_idx
    ON nchat_call_participants (call_id, livekit_identity);

-- Recordings hold S3 objects, so a call cannot be deleted while it still has
-- recording rows (ON DELETE RESTRICT): a cascade would drop the only record
-- of the object key and leave the object in the bucket for ever, unreachable
-- by the retention sweep.  Delete the objects, then the recording rows, then
-- the call.
CREATE TABLE nchat_call_recordings (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    call_id           uuid NOT NULL REFERENCES nchat_calls (id) ON DELETE RESTRICT,
    livekit_egress_id text UNIQUE,
    -- a recording that failed to start is `failed` with `error` set
    status            text NOT NULL DEFAULT 'starting',
    file_url          text,
    object_key        text,
    file_size_bytes   bigint,
    duration_seconds  integer,
    resolution        text NOT NULL DEFAULT '1080p',
    layout_type       text NOT NULL DEFAULT 'grid',
    audio_only        boolean NOT NULL DEFAULT false,
    started_by        uuid REFERENCES nchat_users (id) ON DELETE SET NULL,
    started_at        timestamptz,
    ended_at          timestamptz,
    error             text,
    -- 0 = keep forever (then expires_at is NULL)
    retention_days    integer NOT NULL DEFAULT 0,
    expires_at        timestamptz,
    legal_hold        boolean NOT NULL DEFAULT false,
    deleted_at        timestamptz,
    last_event_at     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_call_recordings_status_check
        CHECK (status IN ('starting', 'active', 'ending', 'completed', 'failed', 'aborted', 'deleted')),
    CONSTRAINT nchat_call_recordings_resolution_check
        CHECK (resolution IN ('720p', '1080p')),
    CONSTRAINT nchat_call_recordings_layout_type_check
        CHECK (layout_type IN ('grid', 'speaker', 'single-speaker')),
    CONSTRAINT nchat_call_recordings_retention_days_check
        CHECK (retention_days >= 0),
    CONSTRAINT nchat_call_recordings_file_size_check
        CHECK (file_size_bytes IS NULL OR file_size_bytes >= 0),
    CONSTRAINT nchat_call_recordings_duration_check
        CHECK (duration_seconds IS NULL OR duration_seconds >= 0)
);

CREATE INDEX nchat_call_recordings_call_idx ON nchat_call_recordings (call_id, created_at DESC);
-- at most one recording in progress per call
CREATE UNIQUE INDEX nchat_call_recordings_one_active_idx ON nchat_call_recordings (call_id)
    WHERE status IN ('starting', 'active', 'ending');
-- retention sweep: expired, not yet deleted, not on legal hold
CREATE INDEX nchat_call_recordings_expiry_idx ON nchat_call_recordings (expires_at)
    WHERE deleted_at IS NULL AND NOT legal_hold AND expires_at IS NOT NULL;
-- (egress id lookups use the UNIQUE constraint's index)

-- Who fetched a recording (presigned download URL handed out), for governance.
CREATE TABLE nchat_recording_downloads (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    recording_id uuid NOT NULL REFERENCES nchat_call_recordings (id) ON DELETE CASCADE,
    user_id      uuid REFERENCES nchat_users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX nchat_recording_downloads_recording_idx
    ON nchat_recording_downloads (recording_id, created_at DESC);
CREATE INDEX nchat_recording_downloads_user_idx
    ON nchat_recording_downloads (user_id, created_at DESC);

-- ---------------------------------------------------------------------------
-- Live streams
-- ---------------------------------------------------------------------------
CREATE TABLE nchat_streams (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id             uuid REFERENCES nchat_channels (id) ON DELETE SET NULL,
    broadcaster_id         uuid REFERENCES nchat_users (id) ON DELETE SET NULL,
    title                  text NOT NULL,
    description            text,
    status                 text NOT NULL DEFAULT 'preparing',
    livekit_room_name      text UNIQUE,
    livekit_egress_id      text,
    livekit_ingress_id     text,
    -- ONLY a hash of the stream key ('sha256:<64 hex>'), never the key itself
    stream_key             text,
    stream_key_last4       text,
    stream_key_revoked_at  timestamptz,
    ingest_url             text,
    hls_manifest_url       text,
    enable_chat            boolean NOT NULL DEFAULT true,
    enable_reactions       boolean NOT NULL DEFAULT true,
    chat_slow_mode_seconds integer NOT NULL DEFAULT 0,
    scheduled_at           timestamptz,
    started_at             timestamptz,
    ended_at               timestamptz,
    current_viewers        integer NOT NULL DEFAULT 0,
    peak_viewers           integer NOT NULL DEFAULT 0,
    total_views            integer NOT NULL DEFAULT 0,
    unique_viewers         integer NOT NULL DEFAULT 0,
    total_chat_messages    integer NOT NULL DEFAULT 0,
    total_reactions        integer NOT NULL DEFAULT 0,
    last_event_at          timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_streams_status_check
        CHECK (status IN ('preparing', 'scheduled', 'live', 'ended', 'failed')),
    CONSTRAINT nchat_streams_title_check
        CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT nchat_streams_stream_key_check
        CHECK (stream_key IS NULL OR stream_key ~ '^sha256:[0-9a-f]{64}$'),
    CONSTRAINT nchat_streams_stream_key_last4_check
        CHECK (stream_key_last4 IS NULL OR char_length(stream_key_last4) <= 4),
    CONSTRAINT nchat_streams_slow_mode_check
        CHECK (chat_slow_mode_seconds >= 0),
    CONSTRAINT nchat_streams_counters_check
        CHECK (current_viewers >= 0 AND peak_viewers >= 0 AND total_views >= 0
               AND unique_viewers >= 0 AND total_chat_messages >= 0 AND total_reactions >= 0)
);

CREATE INDEX nchat_streams_channel_status_idx ON nchat_streams (channel_id, status, created_at DESC);
CREATE INDEX nchat_streams_status_idx ON nchat_streams (status, created_at DESC);
CREATE INDEX nchat_streams_broadcaster_idx ON nchat_streams (broadcaster_id, created_at DESC);
CREATE INDEX nchat_streams_ingress_idx ON nchat_streams (livekit_ingress_id)
    WHERE livekit_ingress_id IS NOT NULL;
CREATE INDEX nchat_streams_egress_idx ON nchat_streams (livekit_egress_id)
    WHERE livekit_egress_id IS NOT NULL;
CREATE UNIQUE INDEX nchat_streams_stream_key_idx ON nchat_streams (stream_key)
    WHERE stream_key IS NOT NULL;

-- One row per viewer session.  user_id is NULL for anonymous viewers;
-- viewer_session_id is the client's session id.
CREATE TABLE nchat_stream_viewers (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stream_id              uuid NOT NULL REFERENCES nchat_streams (id) ON DELETE CASCADE,
    user_id                uuid REFERENCES nchat_users (id) ON DELETE CASCADE,
    viewer_session_id      text NOT NULL,
    joined_at              timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at      timestamptz NOT NULL DEFAULT now(),
    left_at                timestamptz,
    watch_duration_seconds integer NOT NULL DEFAULT 0,
    sent_chat_messages     integer NOT NULL DEFAULT 0,
    sent_reactions         integer NOT NULL DEFAULT 0,
    CONSTRAINT nchat_stream_viewers_session_key UNIQUE (stream_id, viewer_session_id),
    CONSTRAINT nchat_stream_viewers_session_check
        CHECK (char_length(viewer_session_id) BETWEEN 1 AND 128),
    CONSTRAINT nchat_stream_viewers_counters_check
        CHECK (watch_duration_seconds >= 0 AND sent_chat_messages >= 0 AND sent_reactions >= 0)
);

CREATE INDEX nchat_stream_viewers_open_idx ON nchat_stream_viewers (stream_id)
    WHERE left_at IS NULL;
CREATE INDEX nchat_stream_viewers_heartbeat_idx
    ON nchat_stream_viewers (stream_id, last_heartbeat_at);
CREATE INDEX nchat_stream_viewers_user_idx ON nchat_stream_viewers (stream_id, user_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX nchat_stream_viewers_by_user_idx ON nchat_stream_viewers (user_id)
    WHERE user_id IS NOT NULL;

CREATE TABLE nchat_stream_reactions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stream_id     uuid NOT NULL REFERENCES nchat_streams (id) ON DELETE CASCADE,
    user_id       uuid REFERENCES nchat_users (id) ON DELETE SET NULL,
    viewer_id     uuid REFERENCES nchat_stream_viewers (id) ON DELETE SET NULL,
    reaction_type text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_stream_reactions_reaction_type_check
        CHECK (reaction_type IN ('heart', 'like', 'fire', 'clap', 'laugh', 'wow', 'sad', 'angry'))
);

CREATE INDEX nchat_stream_reactions_stream_idx ON nchat_stream_reactions (stream_id, created_at);
CREATE INDEX nchat_stream_reactions_type_idx ON nchat_stream_reactions (stream_id, reaction_type);
CREATE INDEX nchat_stream_reactions_user_idx ON nchat_stream_reactions (user_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX nchat_stream_reactions_viewer_idx ON nchat_stream_reactions (viewer_id)
    WHERE viewer_id IS NOT NULL;

-- Reactions per type, kept by trigger (0002_triggers.sql).
CREATE TABLE nchat_stream_reaction_counts (
    stream_id     uuid NOT NULL REFERENCES nchat_streams (id) ON DELETE CASCADE,
    reaction_type text NOT NULL,
    count         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (stream_id, reaction_type),
    CONSTRAINT nchat_stream_reaction_counts_reaction_type_check
        CHECK (reaction_type IN ('heart', 'like', 'fire', 'clap', 'laugh', 'wow', 'sad', 'angry')),
    CONSTRAINT nchat_stream_reaction_counts_count_check CHECK (count >= 0)
);

CREATE TABLE nchat_stream_chat_messages (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stream_id  uuid NOT NULL REFERENCES nchat_streams (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES nchat_users (id) ON DELETE CASCADE,
    content    text NOT NULL,
    is_pinned  boolean NOT NULL DEFAULT false,
    pinned_at  timestamptz,
    pinned_by  uuid REFERENCES nchat_users (id) ON DELETE SET NULL,
    is_deleted boolean NOT NULL DEFAULT false,
    deleted_at timestamptz,
    deleted_by uuid REFERENCES nchat_users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_stream_chat_messages_content_check
        CHECK (char_length(content) BETWEEN 1 AND 2000)
);

-- keyset pagination: WHERE stream_id = $1 AND (created_at, id) < ($2, $3)
--                    ORDER BY created_at DESC, id DESC
CREATE INDEX nchat_stream_chat_messages_page_idx
    ON nchat_stream_chat_messages (stream_id, created_at DESC, id DESC);
CREATE INDEX nchat_stream_chat_messages_pinned_idx
    ON nchat_stream_chat_messages (stream_id, pinned_at DESC)
    WHERE is_pinned AND NOT is_deleted;
CREATE INDEX nchat_stream_chat_messages_user_idx ON nchat_stream_chat_messages (user_id);

-- ---------------------------------------------------------------------------
-- Client-reported connection analytics (POST /api/calls/{id}/stats)
-- ---------------------------------------------------------------------------
CREATE TABLE nchat_webrtc_connections (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    call_id               uuid NOT NULL REFERENCES nchat_calls (id) ON DELETE CASCADE,
    participant_id        uuid REFERENCES nchat_call_participants (id) ON DELETE SET NULL,
    user_id               uuid REFERENCES nchat_users (id) ON DELETE CASCADE,
    ice_connection_state  text NOT NULL DEFAULT 'new',
    local_candidate_type  text,
    remote_candidate_type text,
    turn_used             boolean NOT NULL DEFAULT false,
    rtt_ms                real,
    jitter_ms             real,
    packet_loss_pct       real,
    bitrate_kbps          integer,
    quality               text NOT NULL DEFAULT 'unknown',
    created_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_webrtc_connections_ice_state_check
        CHECK (ice_connection_state IN ('new', 'checking', 'connected', 'completed',
                                        'failed', 'disconnected', 'closed')),
    CONSTRAINT nchat_webrtc_connections_local_candidate_check
        CHECK (local_candidate_type IS NULL
               OR local_candidate_type IN ('host', 'srflx', 'prflx', 'relay')),
    CONSTRAINT nchat_webrtc_connections_remote_candidate_check
        CHECK (remote_candidate_type IS NULL
               OR remote_candidate_type IN ('host', 'srflx', 'prflx', 'relay')),
    CONSTRAINT nchat_webrtc_connections_quality_check
        CHECK (quality IN ('excellent', 'good', 'poor', 'lost', 'unknown')),
    CONSTRAINT nchat_webrtc_connections_metrics_check
        CHECK ((rtt_ms IS NULL OR rtt_ms >= 0)
               AND (jitter_ms IS NULL OR jitter_ms >= 0)
               AND (packet_loss_pct IS NULL OR packet_loss_pct BETWEEN 0 AND 100)
               AND (bitrate_kbps IS NULL OR bitrate_kbps >= 0))
);

CREATE INDEX nchat_webrtc_connections_call_idx ON nchat_webrtc_connections (call_id, created_at);
CREATE INDEX nchat_webrtc_connections_user_idx ON nchat_webrtc_connections (user_id, created_at);

-- ---------------------------------------------------------------------------
-- LiveKit webhook idempotency: one row per event id ever applied.
-- ---------------------------------------------------------------------------
CREATE TABLE nchat_livekit_webhook_events (
    event_id    text PRIMARY KEY,
    event       text NOT NULL,
    room_name   text,
    created_at  timestamptz,          -- the event's createdAt
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX nchat_livekit_webhook_events_received_idx
    ON nchat_livekit_webhook_events (received_at);

-- ---------------------------------------------------------------------------
-- Privileges for the service role.  The chat's tables: read, and (standalone)
-- register users / channels / members; never delete them.
-- ---------------------------------------------------------------------------
-- On nself-chat's database these tables belong to the chat; grant what this
-- role may grant and leave the rest (with a notice) to the chat's owner.  The
-- foreign keys above need REFERENCES on them, the RLS helpers SELECT.
DO $$
DECLARE
    t text;
    p text;
BEGIN
    FOREACH t IN ARRAY ARRAY['nchat_users', 'nchat_channels', 'nchat_channel_members'] LOOP
        FOREACH p IN ARRAY ARRAY['SELECT', 'INSERT', 'UPDATE'] LOOP
            IF pg_catalog.has_table_privilege(t, p || ' WITH GRANT OPTION') THEN
                EXECUTE format('GRANT %s ON %I TO nchat_rtc_service', p, t);
            ELSE
                RAISE NOTICE 'cannot grant % on % to nchat_rtc_service: grant it as the table''s owner', p, t;
            END IF;
        END LOOP;
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    nchat_calls,
    nchat_call_participants,
    nchat_call_recordings,
    nchat_recording_downloads,
    nchat_streams,
    nchat_stream_viewers,
    nchat_stream_reactions,
    nchat_stream_reaction_counts,
    nchat_stream_chat_messages,
    nchat_webrtc_connections,
    nchat_livekit_webhook_events
    TO nchat_rtc_service;

-- Tables, sequences and functions that later migrations (run by this same
-- owner role) create in public are granted to the service automatically.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nchat_rtc_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO nchat_rtc_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO nchat_rtc_service;
