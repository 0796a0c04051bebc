-- 0011_reports_rls.sql - row-level security on the report tables, in the
-- style of 0006_work_roles.sql: service work (nchat_rtc_system) may do
-- everything; a user's request (nchat_rtc_user) may read the rollup rows of the
-- channels they administer or moderate (nchat_channel_members.role admin
-- or moderator).  Admins of the whole service are known only from their
-- token, so the service checks them itself and reads in service context.
-- The sweep's own tables are service-only.  Privileges on the tables come
-- from 0001's default privileges.

-- The channels the current user administers or moderates
-- (nchat_channel_members.role admin or moderator).  A set, so that a policy
-- can use it as one hashed subquery instead of a function call per row.
CREATE FUNCTION nchat_rtc_staff_channels()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
    SELECT m.channel_id FROM nchat_channel_members m
    WHERE m.user_id = nchat_rtc_uid()
      AND m.role IN ('admin', 'moderator')
$$;

REVOKE EXECUTE ON FUNCTION nchat_rtc_staff_channels() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nchat_rtc_staff_channels() TO nchat_rtc_user, nchat_rtc_system;

ALTER TABLE nchat_rtc_report_usage      ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_rtc_report_quality    ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_rtc_report_state      ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_rtc_report_dirty      ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_rtc_report_open       ENABLE ROW LEVEL SECURITY;
ALTER TABLE nchat_rtc_report_long      ENABLE ROW LEVEL SECURITY;

CREATE POLICY system_all ON nchat_rtc_report_usage FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_rtc_report_quality FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_rtc_report_state FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_rtc_report_dirty FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_rtc_report_open FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);
CREATE POLICY system_all ON nchat_rtc_report_long FOR ALL TO nchat_rtc_system USING (true) WITH CHECK (true);

-- User context: any signed-in user may read when the figures were last
-- brought up to date (the X-Report-As-Of header); nothing else of the
-- sweep's state.
CREATE POLICY user_read ON nchat_rtc_report_state FOR SELECT TO nchat_rtc_user
    USING ((SELECT nchat_rtc_uid()) IS NOT NULL);

-- User context: a channel's staff read that channel's rollups (never the
-- all-channels scope, whose id is the nil uuid and no channel's).
CREATE POLICY user_read ON nchat_rtc_report_usage FOR SELECT TO nchat_rtc_user
    USING (scope IN (SELECT nchat_rtc_staff_channels()));
CREATE POLICY user_read ON nchat_rtc_report_quality FOR SELECT TO nchat_rtc_user
    USING (scope IN (SELECT nchat_rtc_staff_channels()));

-- The work roles: service work owns the rollups (table privileges come from
-- 0006's default privileges) and runs the sweep's read functions; a user's
-- request reads what its policies show.
GRANT SELECT ON nchat_rtc_report_state, nchat_rtc_report_usage, nchat_rtc_report_quality
    TO nchat_rtc_user;
GRANT EXECUTE ON FUNCTION
    nchat_rtc_report_collect(timestamptz, timestamptz, boolean),
    nchat_rtc_report_call_ids(timestamptz, timestamptz),
    nchat_rtc_report_calls(timestamptz, timestamptz),
    nchat_rtc_report_participants(timestamptz, timestamptz),
    nchat_rtc_report_samples(timestamptz, timestamptz),
    nchat_rtc_report_recordings(timestamptz, timestamptz),
    nchat_rtc_report_streams(timestamptz, timestamptz),
    nchat_rtc_report_viewers(timestamptz, timestamptz),
    nchat_rtc_report_messages(timestamptz, timestamptz)
    TO nchat_rtc_system;
