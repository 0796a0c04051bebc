-- 0004_governance.sql - audit trail of privileged actions and the outgoing
-- webhook queue (API.md "Governance").  Service context only: no user policy,
-- so in user context (or with no setting) neither table shows a row.
-- Privileges for the service role come from 0001's default privileges.

-- Privileged actions (GET /api/audit?actor=&action=&target=&before=&limit=).
-- No foreign keys: the trail outlives the users and objects it names.
CREATE TABLE nchat_rtc_audit_log (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    actor_id    uuid,                   -- NULL for the system (sweeps, webhooks)
    actor_role  text,                   -- admin | moderator | user | service
    action      text NOT NULL,          -- e.g. call.end, recording.delete
    target_type text,                   -- call | recording | stream | user | ...
    target_id   text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_rtc_audit_log_action_check CHECK (char_length(action) BETWEEN 1 AND 100),
    CONSTRAINT nchat_rtc_audit_log_details_check CHECK (jsonb_typeof(details) = 'object')
);

-- newest first, keyset on (created_at, id)
CREATE INDEX nchat_rtc_audit_log_page_idx ON nchat_rtc_audit_log (created_at DESC, id DESC);
CREATE INDEX nchat_rtc_audit_log_actor_idx ON nchat_rtc_audit_log (actor_id, created_at DESC, id DESC);
CREATE INDEX nchat_rtc_audit_log_action_idx ON nchat_rtc_audit_log (action, created_at DESC, id DESC);
CREATE INDEX nchat_rtc_audit_log_target_idx ON nchat_rtc_audit_log (target_id, created_at DESC, id DESC);

-- Outgoing webhook deliveries (GET /api/admin/outbound-webhooks?status=,
-- POST .../{id}/replay).  pending -> delivered, or dead after the last retry.
CREATE TABLE nchat_rtc_outbound_webhooks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event           text NOT NULL,
    target_url      text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,            -- HTTP status of the last attempt
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nchat_rtc_outbound_webhooks_status_check
        CHECK (status IN ('pending', 'delivered', 'dead')),
    CONSTRAINT nchat_rtc_outbound_webhooks_attempts_check CHECK (attempts >= 0)
);

-- the delivery worker: due pending rows, oldest first
CREATE INDEX nchat_rtc_outbound_webhooks_due_idx
    ON nchat_rtc_outbound_webhooks (next_attempt_at) WHERE status = 'pending';
CREATE INDEX nchat_rtc_outbound_webhooks_status_idx
    ON nchat_rtc_outbound_webhooks (status, created_at DESC, id DESC);

CREATE TRIGGER nchat_rtc_outbound_webhooks_touch BEFORE UPDATE ON nchat_rtc_outbound_webhooks
    FOR EACH ROW EXECUTE FUNCTION nchat_rtc_touch_updated_at();

ALTER TABLE nchat_rtc_audit_log         ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_rtc_outbound_webhooks ENABLE ROW LEVEL SECURITY;

CREATE POLICY service_all ON nchat_rtc_audit_log FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
CREATE POLICY service_all ON nchat_rtc_outbound_webhooks FOR ALL TO nchat_rtc_service
    USING (nchat_rtc_is_service()) WITH CHECK (nchat_rtc_is_service());
