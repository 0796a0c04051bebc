-- 0012_webhook_participant.sql - nchat_rtc_webhook_participant (0008) made
-- the one path of every participant and track event (src/ops/webhook.c now
-- sends them all through it, one statement in one round trip), so it must
-- also do what the receiver did before it for the events it used to filter
-- out itself, still recording their ids:
--   - no call (a room that is not "call-<uuid>": p_call NULL), or a
--     participant that is not one of our users (egress, ingress, agents:
--     p_identity NULL): ignored, without locking anything and without the
--     "no participant row" reason (that is for our users only);
--   - a track event whose source drives no column (SCREEN_SHARE_AUDIO, a
--     data track: p_column NULL or unknown): ignored.  The function of 0008
--     ran its UPDATE with every column unchanged and answered `applied`,
--     which published a call.updated for nothing;
--   - p_kind other than joined / left / track is a caller's bug: an error
--     (the event id is then not recorded, and LiveKit retries), where 0008
--     applied it as a leave.
-- Everything else is as in 0008, statement for statement.
--
-- CREATE OR REPLACE with the same arguments keeps the function's owner (the
-- role that runs the migrations) and its privileges: EXECUTE for PUBLIC and,
-- by the default privileges of 0001, nchat_rtc_service; the work role
-- nchat_rtc_system (0006) that the service enters for it reaches it through
-- PUBLIC.  SECURITY INVOKER as before: the policies of nchat_rtc_system
-- apply to every statement in it.

CREATE OR REPLACE FUNCTION nchat_rtc_webhook_participant(
    p_event_id text, p_event text, p_room text, p_created bigint, p_call uuid,
    p_identity uuid, p_joined_at bigint, p_sid text, p_kind text, p_column text,
    p_on boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public
AS $$
DECLARE
    created timestamptz := to_timestamp(p_created);
    joined timestamptz := to_timestamp(p_joined_at);
    c record;
    p record;
    n integer;
    presence integer := 0;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('joined', 'left', 'track') THEN
        RAISE EXCEPTION 'nchat_rtc_webhook_participant: unknown kind %', p_kind;
    END IF;
    INSERT INTO nchat_livekit_webhook_events (event_id, event, room_name, created_at)
    VALUES (p_event_id, p_event, p_room, created)
    ON CONFLICT (event_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN jsonb_build_object('duplicate', true, 'applied', false);
    END IF;
    -- not a call room, not one of our users, a track that drives no column
    IF p_call IS NULL OR p_identity IS NULL
       OR (p_kind = 'track' AND (p_on IS NULL OR p_column IS NULL OR p_column NOT IN
               ('is_audio_enabled', 'is_video_enabled', 'is_screen_sharing'))) THEN
        RETURN jsonb_build_object('duplicate', false, 'applied', false);
    END IF;

    SELECT x.status, x.initiator_id INTO c FROM nchat_calls x WHERE x.id = p_call FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('duplicate', false, 'applied', false);
    END IF;

    IF p_kind = 'track' THEN
        IF c.status IN ('ended', 'missed', 'declined', 'failed') THEN
            RETURN jsonb_build_object('duplicate', false, 'applied', false);
        END IF;
        UPDATE nchat_call_participants
           SET is_audio_enabled = CASE WHEN p_column = 'is_audio_enabled' THEN p_on
                                       ELSE is_audio_enabled END,
               is_video_enabled = CASE WHEN p_column = 'is_video_enabled' THEN p_on
                                       ELSE is_video_enabled END,
               is_screen_sharing = CASE WHEN p_column = 'is_screen_sharing' THEN p_on
                                        ELSE is_screen_sharing END
         WHERE call_id = p_call AND user_id = p_identity AND status = 'joined'
           AND (last_event_at IS NULL OR created >= last_event_at);
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            RETURN jsonb_build_object('duplicate', false, 'applied', false);
        END IF;
    ELSE
        SELECT x.id, x.status, x.role,
               x.last_event_at IS NULL OR created > x.last_event_at AS newer,
               x.last_event_at IS NULL OR created >= x.last_event_at AS not_older
          INTO p FROM nchat_call_participants x
         WHERE x.call_id = p_call AND x.user_id = p_identity FOR UPDATE;
        IF NOT FOUND THEN
            RETURN jsonb_build_object('duplicate', false, 'applied', false,
                                      'reason', 'no_participant');
        END IF;
        IF p_kind = 'joined' THEN
            IF c.status IN ('ended', 'missed', 'declined', 'failed') OR NOT p.newer
               OR p.status = 'removed' THEN
                RETURN jsonb_build_object('duplicate', false, 'applied', false);
            END IF;
            UPDATE nchat_call_participants
               SET status = 'joined',
                   livekit_participant_id = COALESCE(NULLIF(p_sid, ''), livekit_participant_id),
                   livekit_identity = p_identity::text,
                   joined_at = COALESCE(joined, joined_at, now()),
                   last_event_at = created
             WHERE id = p.id;
            IF c.status = 'ringing' AND p.role <> 'initiator' THEN
                UPDATE nchat_calls
                   SET status = 'active', started_at = COALESCE(started_at, COALESCE(joined, created))
                 WHERE id = p_call;
                c.status := 'active';
            END IF;
            presence := 1;
        ELSE
            IF NOT p.not_older THEN
                RETURN jsonb_build_object('duplicate', false, 'applied', false);
            END IF;
            IF p.status = 'left' THEN
                -- Closed before by the API, a room end or a sweep: LiveKit's own
                -- times replace that session.  Take the old share out and clear
                -- left_at first, so the duration trigger adds the new session
                -- instead of replacing a different one.
                UPDATE nchat_call_participants
                   SET total_duration_seconds = GREATEST(0, total_duration_seconds
                           - nchat_rtc_seconds_between(joined_at, left_at)),
                       left_at = NULL
                 WHERE id = p.id;
            END IF;
            IF p.status IN ('joined', 'left') THEN
                UPDATE nchat_call_participants
                   SET status = 'left', livekit_identity = p_identity::text,
                       livekit_participant_id = COALESCE(NULLIF(p_sid, ''), livekit_participant_id),
                       joined_at = COALESCE(joined, joined_at),
                       left_at = GREATEST(created, COALESCE(joined, joined_at)),
                       is_audio_enabled = false, is_video_enabled = false,
                       is_screen_sharing = false, last_event_at = created
                 WHERE id = p.id;
            ELSE
                UPDATE nchat_call_participants
                   SET is_audio_enabled = false, is_video_enabled = false,
                       is_screen_sharing = false, last_event_at = created
                 WHERE id = p.id;
            END IF;
            presence := -1;
        END IF;
        UPDATE nchat_calls SET last_event_at = GREATEST(last_event_at, created)
         WHERE id = p_call;
    END IF;
    RETURN jsonb_build_object('duplicate', false, 'applied', true, 'status', c.status,
        'presence', CASE WHEN presence > 0 AND c.status IN ('ended', 'missed', 'declined', 'failed')
                         THEN 0 ELSE presence END,
        'members', (SELECT COALESCE(jsonb_agg(x.user_id::text), '[]'::jsonb)
                      FROM nchat_call_participants x
                     WHERE x.call_id = p_call AND x.user_id IS NOT NULL
                       AND x.status <> 'removed'));
END
$$;
