-- 0008_hot_paths.sql - the write steps of the call hot paths as functions,
-- so that each request is one statement in one round trip (src/calls_db.c).
--
-- Both run with the caller's rights (SECURITY INVOKER): row-level security
-- applies to them exactly as to the statements they replace.  Each of their
-- statements reads with a fresh snapshot (READ COMMITTED, VOLATILE), so
-- what they decide after taking the call row's lock is what is committed
-- by then, as with the separate statements before.

-- ---------------------------------------------------------------------------
-- Join, when the caller is not yet joined (a re-join only reads: the
-- statement of calls_db_join does not call this).  Locks the call row (the
-- lock every state change of a call takes first), then the caller's row,
-- and decides in the order of API.md:
--   not a participant and not a channel member   -> forbidden
--   the call is over                             -> gone (with status)
--   removed                                      -> removed
--   not joined and max_participants joined       -> full
-- else joins (inserting the row for a channel member who was not invited)
-- and answers a ringing call (ringing -> active) unless the joiner is its
-- initiator.  Returns {outcome, status, activated, cap, members} where
-- members are the user ids of every participant not removed.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_call_join_write(p_call uuid, p_user uuid, p_cap integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public
AS $$
DECLARE
    c record;
    pst text;
    n integer;
    activated boolean := false;
BEGIN
    SELECT x.status, x.initiator_id, x.channel_id, COALESCE(x.max_participants, p_cap) AS cap
      INTO c FROM nchat_calls x WHERE x.id = p_call FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    SELECT p.status INTO pst FROM nchat_call_participants p
     WHERE p.call_id = p_call AND p.user_id = p_user FOR UPDATE;
    IF pst IS NULL AND NOT (c.channel_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM nchat_channel_members m
             WHERE m.channel_id = c.channel_id AND m.user_id = p_user)) THEN
        RETURN jsonb_build_object('outcome', 'forbidden', 'status', c.status);
    END IF;
    IF c.status IN ('ended', 'missed', 'declined', 'failed') THEN
        RETURN jsonb_build_object('outcome', 'gone', 'status', c.status);
    END IF;
    IF pst = 'removed' THEN
        RETURN jsonb_build_object('outcome', 'removed', 'status', c.status);
    END IF;
    IF pst IS DISTINCT FROM 'joined' THEN
        SELECT count(*) INTO n FROM nchat_call_participants p
         WHERE p.call_id = p_call AND p.status = 'joined';
        IF n >= c.cap THEN
            RETURN jsonb_build_object('outcome', 'full', 'status', c.status, 'cap', c.cap);
        END IF;
        IF pst IS NULL THEN
            INSERT INTO nchat_call_participants (call_id, user_id, role, status, joined_at,
                                                 livekit_identity)
            VALUES (p_call, p_user, 'participant', 'joined', now(), p_user::text);
        ELSE
            UPDATE nchat_call_participants
               SET status = 'joined', joined_at = now(), left_at = NULL,
                   livekit_identity = p_user::text
             WHERE call_id = p_call AND user_id = p_user;
        END IF;
    END IF;
    IF c.status = 'ringing' AND c.initiator_id IS DISTINCT FROM p_user THEN
        UPDATE nchat_calls SET status = 'active', started_at = COALESCE(started_at, now())
         WHERE id = p_call;
        c.status := 'active';
        activated := true;
    END IF;
    RETURN jsonb_build_object('outcome', 'ok', 'status', c.status, 'activated', activated,
        'cap', c.cap,
        'members', (SELECT COALESCE(jsonb_agg(p.user_id::text), '[]'::jsonb)
                      FROM nchat_call_participants p
                     WHERE p.call_id = p_call AND p.user_id IS NOT NULL
                       AND p.status <> 'removed'));
END
$$;

-- ---------------------------------------------------------------------------
-- A LiveKit participant or track event of a call room, applied in one
-- statement: the event id is recorded (a second delivery finds it and
-- changes nothing), the call row is locked, then the participant's row, and
-- the event applies by the order rules of src/webhook.c:
--   joined  only if strictly newer than the row's last event, never to a
--           closed call or a removed participant; answers a ringing call;
--   left    (also connection_aborted) if not older; sets the session from
--           LiveKit's times, replacing what an earlier close wrote;
--   track   the flag of a joined participant of an open call, if not older
--           than the row's last participant event.
-- p_kind: 'joined', 'left' or 'track' (p_column and p_on for a track:
-- is_audio_enabled, is_video_enabled or is_screen_sharing).
-- Returns {duplicate, applied, status, presence (+1 / -1 / 0), members}.
-- ---------------------------------------------------------------------------
CREATE FUNCTION nchat_rtc_webhook_participant(
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
    INSERT INTO nchat_livekit_webhook_events (event_id, event, room_name, created_at)
    VALUES (p_event_id, p_event, p_room, created)
    ON CONFLICT (event_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN jsonb_build_object('duplicate', true, 'applied', false);
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
