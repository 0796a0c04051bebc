/*
 * reports_fixture.c - see reports_fixture.h.
 *
 * Times are anchored on the last autumn that is over: Europe/Berlin falls
 * back on the last Sunday of October at 01:00 UTC (a 25-hour day), and
 * Australia/Sydney springs forward on the first Sunday of October at 16:00
 * UTC the day before (a 23-hour day).  Asia/Kolkata (+05:30) starts its
 * days at 18:30 UTC.  Calls cross those edges, the 15-minute slots and the
 * sweep's 6-hour look-back; some were missed, declined or failed, one is
 * still open, one participant re-joined, one was already pseudonymised.
 */
#include "reports_fixture.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAIL_IF(cond, ...)                    \
	do {                                  \
		if (cond)                     \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

const char *rf_at(long long base, long minutes)
{
	static char ring[64][32];
	static int next;
	char *out = ring[next++ % 64];
	time_t t = (time_t)(base + minutes * 60);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

static char *q(PGconn *db, const char *sql, int n, const char *const *p)
{
	return it_sql(db, sql, n, p);
}

/* A call: kind "direct", "group", or a channel id; times in minutes from base. */
static char *call(struct rf *f, long long base, const char *kind, const char *type,
		  const char *status, long init, double setup_min, long dur, bool open)
{
	bool ch = strcmp(kind, "direct") != 0 && strcmp(kind, "group") != 0;
	bool answered = setup_min >= 0;
	char start[32], end[32];
	const char *p[8];

	start[0] = '\0';
	if (answered) {
		time_t t = (time_t)(base + init * 60 + (long long)(setup_min * 60));
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(start, sizeof(start), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	snprintf(end, sizeof(end), "%s", rf_at(base, init + (answered ? dur : 1)));
	p[0] = type;
	p[1] = status;
	p[2] = ch ? kind : NULL;
	p[3] = strcmp(kind, "direct") == 0 ? "f" : "t";
	p[4] = rf_at(base, init);
	p[5] = answered ? start : NULL;
	p[6] = open ? NULL : end;
	p[7] = f->users[0];
	return q(f->db, "INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, channel_id,"
		 " is_group_call, initiated_at, started_at, ended_at, initiator_id)"
		 " SELECT g, 'rpt-' || g, $1, $2, $3::uuid, $4::boolean, $5::timestamptz,"
		 " $6::timestamptz, $7::timestamptz, $8::uuid FROM gen_random_uuid() g RETURNING id",
		 8, p);
}

/* A participant: joined/left in minutes from base (left < 0: still in). */
static void part(struct rf *f, const char *call_id, const char *user, long long base, long joined,
		 long left, long total_s, const char *status)
{
	char total[24];
	const char *p[6];

	snprintf(total, sizeof(total), "%ld", total_s);
	p[0] = call_id;
	p[1] = user;
	p[2] = status;
	p[3] = rf_at(base, joined);
	p[4] = left >= 0 ? rf_at(base, left) : NULL;
	p[5] = total;
	free(q(f->db, "INSERT INTO nchat_call_participants (call_id, user_id, status, joined_at,"
	       " left_at, total_duration_seconds, livekit_identity)"
	       " VALUES ($1, $2::uuid, $3, $4::timestamptz, $5::timestamptz, $6::int, $2)", 6, p));
}

/* n samples of a participant, values drawn from seed k. */
static void samples(struct rf *f, const char *call_id, const char *user, int n, int k,
		    const char *ice, bool relay)
{
	char nn[16], kk[16];
	const char *p[6] = {call_id, user, nn, kk, ice, relay ? "t" : "f"};

	snprintf(nn, sizeof(nn), "%d", n);
	snprintf(kk, sizeof(kk), "%d", k);
	free(q(f->db, "INSERT INTO nchat_webrtc_connections (call_id, user_id, ice_connection_state,"
	       " local_candidate_type, turn_used, rtt_ms, jitter_ms, packet_loss_pct, bitrate_kbps, quality)"
	       " SELECT $1, $2::uuid, CASE WHEN $5 = 'mixed' THEN (ARRAY['checking','connected'])[1 + g % 2]"
	       "                          ELSE $5 END,"
	       "        CASE WHEN $6::boolean AND g % 2 = 0 THEN 'relay' ELSE 'srflx' END,"
	       "        $6::boolean AND g % 2 = 1,"
	       "        CASE WHEN g % 7 = 3 THEN NULL ELSE (12 + (g * 37 + $4::int * 11) % 250)::real / 1.7 END,"
	       "        ((g * 13 + $4::int) % 40)::real / 3.0,"
	       "        CASE WHEN g % 5 = 4 THEN NULL ELSE ((g * 7 + $4::int) % 100)::real / 13.0 END,"
	       "        CASE WHEN g % 6 = 5 THEN NULL ELSE 300 + (g * 97 + $4::int) % 2000 END,"
	       "        (ARRAY['excellent','good','poor','lost','unknown'])[1 + (g + $4::int) % 5]"
	       " FROM generate_series(1, $3::int) g", 6, p));
}

static void users_and_channels(struct rf *f)
{
	char name[32];

	f->ch_a = it_new_channel(f->db, "reports A");
	f->ch_b = it_new_channel(f->db, "reports B");
	f->admin = it_new_user(f->db, "reports channel admin");
	f->mod = it_new_user(f->db, "reports channel moderator");
	f->member = it_new_user(f->db, "reports channel member");
	f->outsider = it_new_user(f->db, "reports outsider");
	it_add_member(f->db, f->ch_a, f->admin, "admin");
	it_add_member(f->db, f->ch_a, f->mod, "moderator");
	it_add_member(f->db, f->ch_a, f->member, "member");
	it_add_member(f->db, f->ch_b, f->admin, "member");
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "reports user %d", i);
		f->users[i] = it_new_user(f->db, name);
		if (i < 3)
			it_add_member(f->db, f->ch_a, f->users[i], "member");
	}
}

static void anchors(struct rf *f)
{
	char *b = q(f->db, "SELECT extract(epoch FROM (d::timestamp + interval '1 hour') AT TIME ZONE 'UTC')::bigint"
		    " FROM (SELECT make_date(y, 10, 31) - extract(dow FROM make_date(y, 10, 31))::int AS d"
		    "       FROM (SELECT CASE WHEN now() > make_date(extract(year FROM now())::int, 11, 4)"
		    "                    THEN extract(year FROM now())::int"
		    "                    ELSE extract(year FROM now())::int - 1 END AS y) a) b", 0, NULL);
	char *s = q(f->db, "SELECT extract(epoch FROM (d::timestamp - interval '8 hours') AT TIME ZONE 'UTC')::bigint"
		    " FROM (SELECT make_date(y, 10, 1) + (7 - extract(dow FROM make_date(y, 10, 1))::int) % 7 AS d"
		    "       FROM (SELECT CASE WHEN now() > make_date(extract(year FROM now())::int, 11, 4)"
		    "                    THEN extract(year FROM now())::int"
		    "                    ELSE extract(year FROM now())::int - 1 END AS y) a) b", 0, NULL);

	f->berlin = atoll(b);
	f->sydney = atoll(s);
	free(b);
	free(s);
}

static void calls_around_berlin(struct rf *f)
{
	long long B = f->berlin;
	char *c;

	/* across the repeated 02:00-03:00 local hour, one participant re-joined */
	f->call_berlin = call(f, B, f->ch_a, "video", "ended", -60, 0.25, 150, false);
	part(f, f->call_berlin, f->users[0], B, -60, 90, 150 * 60, "left");
	part(f, f->call_berlin, f->users[1], B, -59, 90, 149 * 60, "left");
	part(f, f->call_berlin, f->users[2], B, 30, 80, 50 * 60 + 1800, "left");   /* re-joined */
	samples(f, f->call_berlin, f->users[0], 12, 1, "connected", false);
	samples(f, f->call_berlin, f->users[1], 9, 2, "mixed", true);
	f->recording = q(f->db, "INSERT INTO nchat_call_recordings (call_id, status, started_at,"
			 " duration_seconds, file_size_bytes) VALUES ($1, 'completed', $2::timestamptz, 1500,"
			 " 987654) RETURNING id", 2, (const char *[]){f->call_berlin, rf_at(B, -40)});
	/* the slot and local-midnight edges (Berlin midnight is 3 h before, Kolkata's 6.5 h) */
	c = call(f, B, f->ch_a, "audio", "ended", -195, 0.5, 40, false);
	part(f, c, f->users[3], B, -195, -155, 2400, "left");
	part(f, c, f->users[4], B, -194, -155, 2340, "left");
	samples(f, c, f->users[3], 6, 3, "connected", false);
	free(c);
	c = call(f, B, "group", "screen_share", "ended", -395, 1, 22, false);
	part(f, c, f->users[5], B, -395, -373, 1320, "left");
	part(f, c, f->users[6], B, -394, -373, 1260, "left");
	part(f, c, NULL, B, -394, -380, 840, "left");                             /* pseudonymised */
	samples(f, c, f->users[5], 4, 4, "failed", false);                        /* never connected */
	free(c);
	f->call_old = call(f, B, "direct", "audio", "ended", 5, 0.1, 20, false);
	part(f, f->call_old, f->users[6], B, 5, 25, 1200, "left");
	part(f, f->call_old, f->users[7], B, 5, 25, 1194, "left");
	samples(f, f->call_old, f->users[7], 5, 5, "connected", true);
	/* longer than the sweep's look-back, in channel B */
	f->call_long = call(f, B, f->ch_b, "video", "ended", -1200, 2, 540, false);
	part(f, f->call_long, f->users[0], B, -1200, -660, 540 * 60, "left");
	part(f, f->call_long, f->users[7], B, -1198, -700, 498 * 60, "left");
	samples(f, f->call_long, f->users[7], 8, 6, "connected", false);
	/* missed, declined, failed: initiated, never answered */
	free(call(f, B, f->ch_a, "audio", "missed", -30, -1, 0, false));
	free(call(f, B, "direct", "video", "declined", 15, -1, 0, false));
	free(call(f, B, "group", "audio", "failed", -45, -1, 0, false));
	/* still open: counted up to the sweep's as_of */
	f->call_open = call(f, B, f->ch_a, "audio", "active", 24 * 60 + 10, 0.2, 0, true);
	part(f, f->call_open, f->users[1], B, 24 * 60 + 10, -1, 0, "joined");
	part(f, f->call_open, f->users[2], B, 24 * 60 + 11, -1, 0, "joined");
}

static void calls_around_sydney(struct rf *f)
{
	long long S = f->sydney;
	char *c = call(f, S, f->ch_a, "video", "ended", -130, 0.3, 90, false);

	part(f, c, f->users[0], S, -130, -40, 5400, "left");
	part(f, c, f->users[4], S, -129, -40, 5340, "left");
	samples(f, c, f->users[4], 7, 7, "connected", true);
	free(c);
	c = call(f, S, "direct", "audio", "ended", 23 * 60 + 50, 0.1, 30, false);
	part(f, c, f->users[5], S, 23 * 60 + 50, 24 * 60 + 20, 1800, "left");
	part(f, c, f->users[6], S, 23 * 60 + 50, 24 * 60 + 20, 1800, "left");
	free(c);
}

static void streams(struct rf *f)
{
	long long B = f->berlin;
	const char *p[4];
	char *s;

	p[0] = f->ch_a;
	p[1] = rf_at(B, -120);
	p[2] = rf_at(B, -90);
	p[3] = rf_at(B, 30);
	s = q(f->db, "INSERT INTO nchat_streams (channel_id, title, status, created_at, started_at, ended_at)"
	      " VALUES ($1, 'reports stream', 'ended', $2::timestamptz, $3::timestamptz, $4::timestamptz)"
	      " RETURNING id", 4, p);
	for (int i = 0; i < 6; i++) {
		char sid[16];
		const char *v[4] = {s, i < 4 ? f->users[i % 3] : NULL, sid, rf_at(B, -85 + i * 17)};

		snprintf(sid, sizeof(sid), "rs-%d", i);
		free(q(f->db, "INSERT INTO nchat_stream_viewers (stream_id, user_id, viewer_session_id,"
		       " joined_at, last_heartbeat_at, left_at, created_at)"
		       " VALUES ($1, $2::uuid, $3, $4::timestamptz, $4::timestamptz, $4::timestamptz,"
		       " $4::timestamptz)", 4, v));
	}
	for (int i = 0; i < 7; i++) {
		const char *m[3] = {s, f->users[i % 3], rf_at(B, -80 + i * 13)};

		free(q(f->db, "INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content, created_at)"
		       " VALUES ($1, $2, 'hello', $3::timestamptz)", 3, m));
		free(q(f->db, "INSERT INTO nchat_stream_reactions (stream_id, user_id, reaction_type, created_at)"
		       " VALUES ($1, $2, 'fire', $3::timestamptz)", 3, m));
	}
	free(s);
	p[0] = f->ch_b;
	p[1] = rf_at(B, 2 * 24 * 60);
	p[2] = rf_at(B, 2 * 24 * 60 + 5);
	f->stream_live = q(f->db, "INSERT INTO nchat_streams (channel_id, title, status, created_at,"
			   " started_at) VALUES ($1, 'reports live', 'live', $2::timestamptz, $3::timestamptz)"
			   " RETURNING id", 3, p);
}

void rf_seed(struct rf *f)
{
	memset(f, 0, sizeof(*f));
	f->db = it_db();
	anchors(f);
	users_and_channels(f);
	calls_around_berlin(f);
	calls_around_sydney(f);
	streams(f);
}

char *rf_rollup(bool rebuild)
{
	char cmd[1024], line[512] = "";
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), "'%s' rollup-reports%s 2>&1", it_env("NC_BIN"),
		 rebuild ? " --rebuild" : "");
	p = popen(cmd, "r");
	FAIL_IF(p == NULL, "cannot run %s", cmd);
	while (fgets(line, sizeof(line), p) != NULL)
		if (strncmp(line, "rollup-reports:", 15) == 0)
			break;
	while (fgetc(p) != EOF)
		;
	rc = pclose(p);
	FAIL_IF(rc != 0 || strstr(line, "hours recomputed") == NULL, "rollup-reports failed: %s", line);
	return strdup(line);
}

char *rf_as_of(PGconn *db)
{
	return it_sql(db, "SELECT as_of::text FROM nchat_rtc_report_state", 0, NULL);
}

/* ---- the figures from the base tables ---- */

/* $1 lo, $2 hi, $3 channel or NULL, $4 as_of.  A call or stream still open
 * ends at as_of, as in the rollup. */
static const char usage_sql[] =
	"WITH prm AS (SELECT $1::timestamptz AS lo, $2::timestamptz AS hi, $3::uuid AS ch,"
	"                    $4::timestamptz AS asof),"
	" c AS (SELECT c.*, COALESCE(c.ended_at, CASE WHEN c.status IN ('initiating', 'ringing', 'active')"
	"         THEN GREATEST(prm.asof, c.initiated_at) ELSE c.initiated_at END) AS e"
	"       FROM nchat_calls c, prm WHERE prm.ch IS NULL OR c.channel_id = prm.ch),"
	" ci AS (SELECT c.* FROM c, prm WHERE c.initiated_at >= prm.lo AND c.initiated_at < prm.hi),"
	" act AS (SELECT GREATEST(c.started_at, prm.lo) AS s, LEAST(c.e, prm.hi) AS f FROM c, prm"
	"         WHERE c.started_at < prm.hi AND c.e > prm.lo AND c.e > c.started_at),"
	" ps AS (SELECT p.*, c.e, GREATEST(p.joined_at, c.initiated_at) AS plo"
	"        FROM nchat_call_participants p JOIN c ON c.id = p.call_id WHERE p.joined_at IS NOT NULL),"
	" ps2 AS (SELECT ps.*, LEAST(COALESCE(ps.left_at, CASE WHEN ps.status = 'joined' THEN ps.e END,"
	"                                       ps.plo), ps.e) AS phi FROM ps),"
	" rec AS (SELECT r.* FROM nchat_call_recordings r JOIN c ON c.id = r.call_id, prm"
	"         WHERE r.started_at >= prm.lo AND r.started_at < prm.hi),"
	" st AS (SELECT s.*, COALESCE(s.ended_at, CASE WHEN s.status = 'live'"
	"          THEN GREATEST(prm.asof, s.started_at) ELSE s.started_at END) AS e"
	"        FROM nchat_streams s, prm WHERE (prm.ch IS NULL OR s.channel_id = prm.ch)"
	"          AND s.started_at IS NOT NULL),"
	" sv AS (SELECT v.* FROM nchat_stream_viewers v JOIN nchat_streams s ON s.id = v.stream_id, prm"
	"        WHERE (prm.ch IS NULL OR s.channel_id = prm.ch)"
	"          AND v.created_at >= prm.lo AND v.created_at < prm.hi),"
	" sm AS (SELECT k.kind FROM (SELECT m.stream_id, m.created_at, 'chat' AS kind"
	"                           FROM nchat_stream_chat_messages m"
	"                           UNION ALL SELECT r.stream_id, r.created_at, 'reaction'"
	"                           FROM nchat_stream_reactions r) k"
	"        JOIN nchat_streams s ON s.id = k.stream_id, prm"
	"        WHERE (prm.ch IS NULL OR s.channel_id = prm.ch)"
	"          AND k.created_at >= prm.lo AND k.created_at < prm.hi)"
	" SELECT json_build_object("
	"  'calls', (SELECT count(*) FROM ci),"
	"  'callsByType', json_build_object("
	"     'audio', (SELECT count(*) FROM ci WHERE call_type = 'audio'),"
	"     'video', (SELECT count(*) FROM ci WHERE call_type = 'video'),"
	"     'screenShare', (SELECT count(*) FROM ci WHERE call_type = 'screen_share')),"
	"  'callsByKind', json_build_object("
	"     'direct', (SELECT count(*) FROM ci WHERE channel_id IS NULL AND NOT is_group_call),"
	"     'group', (SELECT count(*) FROM ci WHERE channel_id IS NULL AND is_group_call),"
	"     'channel', (SELECT count(*) FROM ci WHERE channel_id IS NOT NULL)),"
	"  'answered', (SELECT count(*) FROM ci WHERE started_at IS NOT NULL),"
	"  'missed', (SELECT count(*) FROM ci WHERE status = 'missed'),"
	"  'declined', (SELECT count(*) FROM ci WHERE status = 'declined'),"
	"  'failed', (SELECT count(*) FROM ci WHERE status = 'failed'),"
	"  'callMinutes', (SELECT round(COALESCE(sum(extract(epoch FROM f - s) * 1000000), 0) / 60000000, 2)"
	"                  FROM act),"
	"  'participantMinutes', (SELECT round((COALESCE(sum(extract(epoch FROM LEAST(phi, prm.hi)"
	"       - GREATEST(plo, prm.lo)) * 1000000) FILTER (WHERE phi > plo AND plo < prm.hi"
	"       AND phi > prm.lo), 0)"
	"     + COALESCE(sum(CASE WHEN left_at IS NULL THEN total_duration_seconds"
	"         ELSE GREATEST(0, total_duration_seconds - GREATEST(0, floor(extract(epoch FROM"
	"              left_at - joined_at)))) END * 1000000::numeric)"
	"         FILTER (WHERE joined_at >= prm.lo AND joined_at < prm.hi), 0)) / 60000000, 2)"
	"     FROM ps2, prm),"
	"  'uniqueUsers', (SELECT count(DISTINCT p.user_id) FROM nchat_call_participants p"
	"                  JOIN ci ON ci.id = p.call_id WHERE p.joined_at IS NOT NULL),"
	"  'peakConcurrentCalls', (SELECT COALESCE(max((SELECT count(*) FROM act a2"
	"                          WHERE a2.s <= a1.s AND a2.f > a1.s)), 0) FROM act a1),"
	"  'setupMsP50', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY GREATEST(0,"
	"                 extract(epoch FROM started_at - initiated_at) * 1000)) FROM ci"
	"                 WHERE started_at IS NOT NULL),"
	"  'setupMsP95', (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY GREATEST(0,"
	"                 extract(epoch FROM started_at - initiated_at) * 1000)) FROM ci"
	"                 WHERE started_at IS NOT NULL),"
	"  'recordings', (SELECT count(*) FROM rec),"
	"  'recordingMinutes', (SELECT round(COALESCE(sum(CASE WHEN duration_seconds IS NOT NULL"
	"       THEN duration_seconds * 1000000::numeric WHEN ended_at IS NOT NULL"
	"       THEN GREATEST(0, extract(epoch FROM ended_at - started_at) * 1000000) ELSE 0 END), 0)"
	"       / 60000000, 2) FROM rec),"
	"  'recordingBytes', (SELECT COALESCE(sum(file_size_bytes), 0) FROM rec),"
	"  'streams', (SELECT count(*) FROM st, prm WHERE started_at >= prm.lo AND started_at < prm.hi),"
	"  'streamMinutes', (SELECT round(COALESCE(sum(extract(epoch FROM LEAST(e, prm.hi)"
	"       - GREATEST(started_at, prm.lo)) * 1000000), 0) / 60000000, 2) FROM st, prm"
	"       WHERE started_at < prm.hi AND e > prm.lo AND e > started_at),"
	"  'streamViews', (SELECT count(*) FROM sv),"
	"  'streamUniqueViewers', (SELECT count(DISTINCT COALESCE('u:' || user_id, 'a:' || viewer_session_id))"
	"                          FROM sv),"
	"  'chatMessages', (SELECT count(*) FROM sm WHERE kind = 'chat'),"
	"  'reactions', (SELECT count(*) FROM sm WHERE kind = 'reaction'))::text";

static const char quality_sql[] =
	"WITH prm AS (SELECT $1::timestamptz AS lo, $2::timestamptz AS hi, $3::uuid AS ch,"
	"                    $4::timestamptz AS asof),"
	" w AS (SELECT w.* FROM nchat_webrtc_connections w JOIN nchat_calls c ON c.id = w.call_id, prm"
	"       WHERE c.initiated_at >= prm.lo AND c.initiated_at < prm.hi"
	"         AND (prm.ch IS NULL OR c.channel_id = prm.ch) AND prm.asof IS NOT NULL),"
	" pp AS (SELECT call_id, user_id,"
	"          COALESCE(bool_or(local_candidate_type = 'relay' OR turn_used), false) AS relay,"
	"          COALESCE(bool_or(ice_connection_state = 'failed') AND NOT"
	"            bool_or(ice_connection_state IN ('connected', 'completed')), false) AS failed"
	"        FROM w GROUP BY 1, 2)"
	" SELECT json_build_object("
	"  'samples', (SELECT count(*) FROM w), 'participants', (SELECT count(*) FROM pp),"
	"  'rttMs', json_build_object("
	"     'p50', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY rtt_ms) FROM w),"
	"     'p95', (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY rtt_ms) FROM w)),"
	"  'jitterMs', json_build_object("
	"     'p50', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY jitter_ms) FROM w),"
	"     'p95', (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY jitter_ms) FROM w)),"
	"  'packetLossPct', json_build_object("
	"     'avg', (SELECT round(avg(packet_loss_pct::numeric), 3) FROM w),"
	"     'p95', (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY packet_loss_pct) FROM w)),"
	"  'bitrateKbps', json_build_object('avg', (SELECT round(avg(bitrate_kbps), 1) FROM w)),"
	"  'turnRelayShare', (SELECT round(count(*) FILTER (WHERE relay)::numeric / NULLIF(count(*), 0), 4)"
	"                     FROM pp),"
	"  'iceFailureRate', (SELECT round(count(*) FILTER (WHERE failed)::numeric / NULLIF(count(*), 0), 4)"
	"                     FROM pp),"
	"  'qualityShare', json_build_object("
	"     'excellent', (SELECT round(count(*) FILTER (WHERE quality = 'excellent')::numeric"
	"                   / NULLIF(count(*), 0), 4) FROM w),"
	"     'good', (SELECT round(count(*) FILTER (WHERE quality = 'good')::numeric"
	"              / NULLIF(count(*), 0), 4) FROM w),"
	"     'poor', (SELECT round(count(*) FILTER (WHERE quality = 'poor')::numeric"
	"              / NULLIF(count(*), 0), 4) FROM w),"
	"     'lost', (SELECT round(count(*) FILTER (WHERE quality = 'lost')::numeric"
	"              / NULLIF(count(*), 0), 4) FROM w)))::text";

static json_t *expected(PGconn *db, const char *sql, const char *lo, const char *hi,
			const char *ch, const char *as_of)
{
	const char *p[4] = {lo, hi, ch, as_of};
	char *text = it_sql(db, sql, 4, p);
	json_t *o = text ? json_loads(text, 0, NULL) : NULL;

	FAIL_IF(o == NULL, "expected figures: no JSON");
	free(text);
	return o;
}

json_t *rf_expected_usage(PGconn *db, const char *lo, const char *hi, const char *ch,
			  const char *as_of)
{
	return expected(db, usage_sql, lo, hi, ch, as_of);
}

json_t *rf_expected_quality(PGconn *db, const char *lo, const char *hi, const char *ch,
			    const char *as_of)
{
	return expected(db, quality_sql, lo, hi, ch, as_of);
}

/* Histogram unit and output decimals of a percentile figure, or 0. */
static double pct_unit(const char *key, int *decimals)
{
	static const struct { const char *key; double unit; int dec; } units[] = {
		{"setupMsP50", 1.0, 0}, {"setupMsP95", 1.0, 0}, {"rttMs.p50", 0.1, 1},
		{"rttMs.p95", 0.1, 1}, {"jitterMs.p50", 0.1, 1}, {"jitterMs.p95", 0.1, 1},
		{"packetLossPct.p95", 0.001, 3},
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(key, units[i].key) == 0) {
			*decimals = units[i].dec;
			return units[i].unit;
		}
	return 0;
}

static void compare_value(const char *what, const char *key, json_t *g, json_t *w)
{
	int dec = 0;
	double unit = pct_unit(key, &dec), a, b;

	FAIL_IF(json_is_null(g) != json_is_null(w), "%s %s: got %s, want %s", what, key,
		json_is_null(g) ? "null" : "a value", json_is_null(w) ? "null" : "a value");
	if (json_is_null(g))
		return;
	FAIL_IF(!json_is_number(g) || !json_is_number(w), "%s %s: not a number", what, key);
	a = json_number_value(g);
	b = json_number_value(w);
	if (unit > 0) {
		/* a histogram's error plus the output rounding */
		FAIL_IF(fabs(a - b) > 0.0245 * fabs(b) + unit / 2 + pow(10, -dec) + 1e-9,
			"%s %s: %g is not within the stated error of %g", what, key, a, b);
	} else if (strcmp(key, "uniqueUsers") == 0 || strcmp(key, "streamUniqueViewers") == 0) {
		FAIL_IF(fabs(a - b) > 3 * 0.0325 * b + 2, "%s %s: %g is not within 3 standard errors of %g",
			what, key, a, b);
	} else {
		FAIL_IF(fabs(a - b) > 1e-9, "%s %s: got %.10g, want %.10g", what, key, a, b);
	}
}

void rf_compare(const char *what, json_t *got, json_t *want)
{
	const char *key;
	json_t *w;

	json_object_foreach(want, key, w) {
		json_t *g = json_object_get(got, key);

		FAIL_IF(g == NULL, "%s: %s is missing", what, key);
		if (json_is_object(w)) {
			const char *k2;
			json_t *w2;

			json_object_foreach(w, k2, w2) {
				char full[64];

				snprintf(full, sizeof(full), "%s.%s", key, k2);
				FAIL_IF(json_object_get(g, k2) == NULL, "%s: %s is missing", what, full);
				compare_value(what, full, json_object_get(g, k2), w2);
			}
		} else {
			compare_value(what, key, g, w);
		}
	}
}
