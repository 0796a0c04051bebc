/*
 * webhook.c - POST /api/webhooks/livekit: verify, de-duplicate and apply
 * LiveKit webhook events (PROTOCOL.md §6).
 *
 * Reply fast: verification is pure CPU; then ONE short service transaction
 * records the event id (INSERT ... ON CONFLICT DO NOTHING: a second
 * delivery, even one racing on another instance, waits on the first's row
 * and finds it there) and applies the event to the rows it concerns, so an
 * event is applied exactly when its id is recorded.  Side effects outside
 * Postgres (presence, realtime events, stopping a recording) follow the
 * commit.  A failure before commit is a 5xx, so LiveKit retries.
 *
 * Order tolerance.  LiveKit delivers one room's events in order, but
 * retries, several nodes and a restarted receiver can still reorder them.
 * Each participant row keeps the createdAt of the newest participant event
 * applied (last_event_at):
 *   - participant_joined applies only if strictly newer, never to a closed
 *     call and never to a removed participant;
 *   - participant_left / participant_connection_aborted apply if not older
 *     (so a leave in the same second as its join wins, whatever the order),
 *     set left_at = createdAt and joined_at = the participant's joinedAt,
 *     replacing whatever session an earlier close (room end, sweep) wrote;
 *   - track events change the track flags only of a joined participant of
 *     an open call and only if not older than the last participant event;
 *     leaving clears the flags;
 *   - room_finished ends the call (if still open) at createdAt and closes
 *     every open participant; room_started changes no status (the room is
 *     created by initiate, so it arrives at once; a call becomes active when
 *     the first invitee joins).
 * A participant_left does not end the call: LiveKit closes the empty room
 * after its departure timeout and sends room_finished, and the sweep ends
 * calls whose room is gone; ending on the last leave would make the final
 * state depend on delivery order.
 */
#include "api.h"
#include "calls.h"
#include "calls_db.h"
#include "streams_db.h"
#include "events.h"
#include "hooks.h"
#include "log.h"
#include "recordings.h"
#include "metrics.h"
#include "presence.h"
#include "webhook.h"
#include "worker.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Verification                                                        */
/* ------------------------------------------------------------------ */

static atomic_ulong rejected;

unsigned long webhook_rejected_count(void)
{
	return atomic_load(&rejected);
}

/*
 * base64url (no padding, as in JWTs) to bytes.  Returns the decoded length
 * or -1.  out must hold at least 3 * (len + 3) / 4 bytes.
 */
static long b64url_decode(const char *in, size_t len, unsigned char *out)
{
	size_t padded = (len + 3) / 4 * 4, pad = padded - len;
	char *tmp;
	int n;

	if (pad == 3)
		return -1;
	tmp = xmalloc(padded + 1);
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '+' || c == '/' || c == '=') {
			free(tmp);
			return -1; /* not base64url */
		}
		tmp[i] = c;
	}
	for (size_t i = len; i < padded; i++)
		tmp[i] = '=';
	tmp[padded] = '\0';
	n = padded ? EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)padded) : 0;
	free(tmp);
	if (n < 0)
		return -1;
	return (long)n - (long)pad;
}

/* Decode one base64url JWT segment holding a JSON object. */
static json_t *jwt_segment_json(const char *seg, size_t len)
{
	unsigned char *buf;
	long n;
	json_t *j;

	if (len == 0 || len > 8192)
		return NULL;
	buf = xmalloc(len + 4);
	n = b64url_decode(seg, len, buf);
	j = n > 0 ? json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
	free(buf);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A NumericDate claim (JSON integer or real); false if absent or not a number. */
static bool claim_time(json_t *claims, const char *key, int64_t *out)
{
	json_t *v = json_object_get(claims, key);
	/* +-2^53: a larger real has no int64_t value (undefined behaviour) and a
	 * huge integer would overflow exp + leeway (found by test/fuzz). */
	const int64_t lim = INT64_C(1) << 53;

	if (json_is_integer(v) && json_integer_value(v) >= -lim && json_integer_value(v) <= lim) {
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	if (json_is_real(v) && json_real_value(v) >= (double)-lim && json_real_value(v) <= (double)lim) {
		*out = (int64_t)json_real_value(v);
		return true;
	}
	return false;
}

static int refuse(char *why, size_t whylen, const char *reason)
{
	snprintf(why, whylen, "%s", reason);
	return -1;
}

int webhook_verify(const struct cfg_keypair *keys, size_t n_keys, int leeway_s,
		   const char *auth, const char *body, size_t body_len, int64_t now,
		   char *why, size_t whylen)
{
	const char *dot1, *dot2;
	json_t *hdr = NULL, *claims = NULL;
	const char *alg, *iss, *sum;
	const struct cfg_keypair *kp = NULL;
	/* sig: b64url_decode of up to 86 chars writes 3 * (86 + 3) / 4 = 66 bytes. */
	unsigned char mac[EVP_MAX_MD_SIZE], sig[66], digest[SHA256_DIGEST_LENGTH];
	unsigned int mac_len = 0;
	char expect[64];
	long sig_len;
	int64_t exp, nbf;
	int rc = -1;

	if (auth == NULL || *auth == '\0')
		return refuse(why, whylen, "no Authorization header");
	if (strncasecmp(auth, "Bearer ", 7) == 0)
		return refuse(why, whylen, "Authorization must be the raw token (no Bearer)");
	dot1 = strchr(auth, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		return refuse(why, whylen, "malformed token");
	hdr = jwt_segment_json(auth, (size_t)(dot1 - auth));
	claims = jwt_segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (hdr == NULL || claims == NULL) {
		refuse(why, whylen, "malformed token");
		goto out;
	}
	/* HS256 only: anything else (none, RS256, ...) is refused outright. */
	alg = json_string_value(json_object_get(hdr, "alg"));
	if (alg == NULL || strcmp(alg, "HS256") != 0) {
		refuse(why, whylen, "token algorithm is not HS256");
		goto out;
	}
	iss = json_string_value(json_object_get(claims, "iss"));
	if (iss == NULL || *iss == '\0') {
		refuse(why, whylen, "token has no iss");
		goto out;
	}
	for (size_t i = 0; i < n_keys; i++)
		if (keys[i].key != NULL && strcmp(keys[i].key, iss) == 0) {
			kp = &keys[i];
			break;
		}
	if (kp == NULL || kp->secret == NULL) {
		refuse(why, whylen, "unknown API key");
		goto out;
	}
	if (HMAC(EVP_sha256(), kp->secret, (int)strlen(kp->secret),
		 (const unsigned char *)auth, (size_t)(dot2 - auth), mac, &mac_len) == NULL) {
		refuse(why, whylen, "cannot compute HMAC");
		goto out;
	}
	if (strlen(dot2 + 1) > 86) {
		refuse(why, whylen, "bad signature");
		goto out;
	}
	sig_len = b64url_decode(dot2 + 1, strlen(dot2 + 1), sig);
	if (sig_len != (long)mac_len || CRYPTO_memcmp(sig, mac, mac_len) != 0) {
		refuse(why, whylen, "bad signature");
		goto out;
	}
	if (!claim_time(claims, "exp", &exp)) {
		refuse(why, whylen, "token has no exp");
		goto out;
	}
	if (now > exp + leeway_s) {
		refuse(why, whylen, "token expired");
		goto out;
	}
	if (claim_time(claims, "nbf", &nbf) && now + leeway_s < nbf) {
		refuse(why, whylen, "token not yet valid");
		goto out;
	}
	sum = json_string_value(json_object_get(claims, "sha256"));
	if (sum == NULL) {
		refuse(why, whylen, "token has no sha256 claim");
		goto out;
	}
	SHA256((const unsigned char *)(body ? body : ""), body_len, digest);
	EVP_EncodeBlock((unsigned char *)expect, digest, SHA256_DIGEST_LENGTH);
	if (strlen(sum) != strlen(expect) || CRYPTO_memcmp(sum, expect, strlen(expect)) != 0) {
		refuse(why, whylen, "body does not match the sha256 claim");
		goto out;
	}
	rc = 0;
out:
	json_decref(hdr);
	json_decref(claims);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Applying events                                                     */
/* ------------------------------------------------------------------ */

/* What to do after commit. */
struct wh_effect {
	char call_id[37];
	char user_id[37];
	int presence;          /* +1 joined, -1 left */
	bool updated;          /* publish call.updated */
	bool ended;            /* the call ended: presence, call.ended, recording */
	char status[16];
	json_t *members;
};

/* An int64 that protojson writes as a string (or a plain number); 0 if absent. */
static int64_t json_i64(json_t *v)
{
	long val;

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v) && parse_long(json_string_value(v), 0, INT64_MAX / 2, &val) == 0)
		return (int64_t)val;
	return 0;
}

static const char *jstr(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

/* Lock the call of a "call-<uuid>" room; 1 found (status filled), 0 not ours, -1 error. */
static int lock_call(struct db_conn *db, json_t *ev, char id[37], char status[16],
		     struct nc_error *err)
{
	if (!calls_room_to_id(jstr(json_object_get(ev, "room"), "name"), id))
		return 0;
	return calls_db_lock_status(db, id, false, status, err);
}

/* The participant column a track of this source/type drives, or NULL. */
static const char *track_column(json_t *track)
{
	const char *source = json_string_value(json_object_get(track, "source"));
	const char *type = json_string_value(json_object_get(track, "type"));

	if (source == NULL || strcmp(source, "UNKNOWN") == 0) {
		/* absent = UNKNOWN; absent type = AUDIO (enum value 0) */
		if (type == NULL || strcmp(type, "AUDIO") == 0)
			return "is_audio_enabled";
		if (strcmp(type, "VIDEO") == 0)
			return "is_video_enabled";
		return NULL;
	}
	if (strcmp(source, "MICROPHONE") == 0)
		return "is_audio_enabled";
	if (strcmp(source, "CAMERA") == 0)
		return "is_video_enabled";
	if (strcmp(source, "SCREEN_SHARE") == 0)
		return "is_screen_sharing";
	return NULL; /* SCREEN_SHARE_AUDIO and others: no column */
}

static int apply_room(const struct nc_config *cfg, struct db_conn *db, json_t *ev, bool finished, const char *created,
		      struct wh_effect *eff, struct nc_error *err)
{
	char id[37], status[16], at[32];
	int n = lock_call(db, ev, id, status, err);

	if (n <= 0)
		return n;
	if (!finished || calls_status_terminal(status)) {
		/* room_started: nothing but the event time (see the file comment). */
		return calls_db_touch_event(db, id, created, err) == NC_OK ? 1 : -1;
	}
	format_rfc3339((int64_t)atoll(created), at, sizeof(at));
	if (calls_close_tx(cfg, db, id, "ended", "room_finished", at, err) < 0)
		return -1;
	if (calls_db_touch_event(db, id, created, err) != NC_OK)
		return -1;
	eff->members = calls_db_member_ids(db, id, err);
	if (eff->members == NULL)
		return -1;
	snprintf(eff->call_id, sizeof(eff->call_id), "%s", id);
	snprintf(eff->status, sizeof(eff->status), "ended");
	eff->ended = true;
	return 1;
}

/* 1 applied, 0 ignored, -1 error. */
static int apply_event(struct nc_worker *w, const char *event, json_t *ev, int64_t created_at,
		       struct wh_effect *eff, struct nc_error *err)
{
	struct db_conn *db = &w->db;
	char created[24];
	int n;

	snprintf(created, sizeof(created), "%lld", (long long)created_at);
	/* participant and track events of call rooms went through apply_call_event */
	if (strncmp(event, "participant_", 12) == 0 || strncmp(event, "track_", 6) == 0)
		return 0;
	if (strcmp(event, "room_started") == 0)
		return apply_room(w->cfg, db, ev, false, created, eff, err);
	if (strcmp(event, "room_finished") == 0)
		return apply_room(w->cfg, db, ev, true, created, eff, err);
	if (strncmp(event, "egress_", 7) == 0) {
		json_t *info = json_object_get(ev, "egressInfo");

		if (!json_is_object(info))
			return 0;
		n = recordings_on_egress(w, event, info, created_at, err);
		if (n == 0)
			n = streams_on_egress(w, event, info, created_at, err);
		return n;
	}
	if (strncmp(event, "ingress_", 8) == 0) {
		json_t *info = json_object_get(ev, "ingressInfo");

		if (!json_is_object(info))
			return 0;
		return streams_on_ingress(w, event, info, created_at, err);
	}
	return 0; /* unknown event: ignored */
}

static void after_commit(struct nc_worker *w, struct wh_effect *eff)
{
	struct nc_error err = {0};

	if (eff->call_id[0] == '\0')
		return;
	if (eff->ended) {
		if (recordings_stop_for_call(w, eff->call_id, &err) != NC_OK)
			log_warn("webhook: stopping the recording of %s failed: %s", eff->call_id,
				 err.msg);
		presence_end_call(w, eff->call_id, eff->members);
		calls_publish(w, eff->members, "call.ended", eff->call_id, "ended", "room_finished");
		return;
	}
	if (eff->presence > 0)
		presence_join(w, eff->call_id, eff->user_id);
	else if (eff->presence < 0)
		presence_leave(w, eff->call_id, eff->user_id);
	if (eff->updated) {
		/* Members read after commit, outside the event's transaction. */
		if (db_begin_service(&w->db, &err) == NC_OK) {
			eff->members = calls_db_member_ids(&w->db, eff->call_id, &err);
			db_rollback(&w->db);
		}
		calls_publish(w, eff->members, "call.updated", eff->call_id, eff->status, NULL);
	}
}

/*
 * Egress and ingress hooks run inside the event's transaction and cannot
 * publish; after the commit, tell the affected clients what changed: a
 * recording's state to the call's members, a stream's state to its viewers.
 */
static void publish_resource_change(struct nc_worker *w, const char *event, json_t *ev)
{
	const char *egress = json_string_value(json_object_get(json_object_get(ev, "egressInfo"), "egressId"));
	const char *ingress = json_string_value(json_object_get(json_object_get(ev, "ingressInfo"), "ingressId"));
	struct nc_error err = {0};
	const char *params[1];
	PGresult *res = NULL;
	json_t *members = NULL, *data = NULL;
	char call_id[37] = "", stream_id[37] = "";

	if ((strncmp(event, "egress_", 7) != 0 || egress == NULL) &&
	    (strncmp(event, "ingress_", 8) != 0 || ingress == NULL))
		return;
	if (db_begin_service(&w->db, &err) != NC_OK)
		return;
	if (egress != NULL) {
		params[0] = egress;
		res = db_exec(&w->db,
			      "SELECT r.call_id::text, json_build_object('callId', r.call_id, 'recording',"
			      " json_build_object('id', r.id, 'status', r.status))::text"
			      " FROM nchat_call_recordings r WHERE r.livekit_egress_id = $1",
			      1, params, &err);
		if (res != NULL && PQntuples(res) == 1) {
			snprintf(call_id, sizeof(call_id), "%s", PQgetvalue(res, 0, 0));
			data = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
			members = calls_db_member_ids(&w->db, call_id, &err);
		}
		PQclear(res);
		res = NULL;
	}
	if (call_id[0] == '\0') {
		data = streams_db_status_by_lk_id(&w->db, egress != NULL ? egress : ingress, stream_id,
						  &err);
	}
	db_rollback(&w->db);
	if (data != NULL && call_id[0] != '\0' && members != NULL) {
		size_t i;
		json_t *m;

		json_array_foreach(members, i, m)
			rt_publish_user(w, json_string_value(m), "call.updated", data);
	} else if (data != NULL && stream_id[0] != '\0') {
		rt_publish_stream(w, stream_id, "stream.status", data);
	}
	json_decref(members);
	json_decref(data);
}

/*
 * A participant or track event of a call room about one of our users: it
 * is recorded and applied in one statement (calls_db_webhook).  Fills e
 * and returns true for those; false for everything else.
 */
static bool call_event(const char *event, json_t *ev, const char *created, char call_id[37],
		       char joined_at[24], enum calls_wh_kind *kind, struct calls_wh_event *e)
{
	json_t *pi = json_object_get(ev, "participant");
	const char *identity = jstr(pi, "identity"), *col;
	int64_t ja = json_i64(json_object_get(pi, "joinedAt"));

	memset(e, 0, sizeof(*e));
	if (strcmp(event, "participant_joined") == 0)
		*kind = CALLS_WH_JOINED;
	else if (strcmp(event, "participant_left") == 0 ||
		 strcmp(event, "participant_connection_aborted") == 0)
		*kind = CALLS_WH_LEFT;
	else if (strcmp(event, "track_published") == 0 || strcmp(event, "track_unpublished") == 0)
		*kind = CALLS_WH_TRACK;
	else
		return false;
	/* egress/ingress/agent participants are not ours */
	if (!is_uuid(identity) || !calls_room_to_id(jstr(json_object_get(ev, "room"), "name"), call_id))
		return false;
	if (*kind == CALLS_WH_TRACK) {
		col = track_column(json_object_get(ev, "track"));
		if (col == NULL)
			return false;
		e->track = strcmp(col, "is_audio_enabled") == 0 ? CALLS_TRACK_AUDIO
			   : strcmp(col, "is_video_enabled") == 0 ? CALLS_TRACK_VIDEO
			   : CALLS_TRACK_SCREEN;
		e->published = strcmp(event, "track_published") == 0;
	}
	joined_at[0] = '\0';
	if (ja > 0)
		snprintf(joined_at, 24, "%lld", (long long)ja);
	e->event = event;
	e->room_name = json_string_value(json_object_get(json_object_get(ev, "room"), "name"));
	e->created = created;
	e->call_id = call_id;
	e->identity = identity;
	e->joined_at = joined_at[0] ? joined_at : NULL;
	e->sid = jstr(pi, "sid");
	return true;
}

/* Apply a call event (call_event) and answer; side effects after the response. */
static void apply_call_event(struct req *r, enum calls_wh_kind kind, struct calls_wh_event *e)
{
	struct nc_error err = {0};
	struct calls_wh_result res;

	if (calls_db_webhook(&r->w->db, kind, e, &res, &err) != NC_OK) {
		if (err.code == NC_OK || err.code == NC_EBADREQ || err.code == NC_ECONFLICT)
			err_set(&err, NC_EINTERNAL, "the event could not be applied");
		log_error("webhook: %s %s failed: %s", e->event, e->event_id, err.msg);
		metrics_webhook(e->event, "error");
		resp_nc_error(r, &err);
		return;
	}
	if (res.duplicate) {
		log_debug("webhook: %s %s is a duplicate", e->event, e->event_id);
		metrics_webhook(e->event, "duplicate");
		resp_json(r, 200, json_pack("{s:s}", "status", "duplicate"));
		return;
	}
	log_debug("webhook: %s %s %s", e->event, e->event_id, res.applied ? "applied" : "ignored");
	metrics_webhook(e->event, res.applied ? "applied" : "ignored");
	resp_json(r, 200, json_pack("{s:s}", "status", res.applied ? "applied" : "ignored"));
	if (res.applied) {
		if (res.presence > 0)
			presence_join(r->w, e->call_id, e->identity);
		else if (res.presence < 0)
			presence_leave(r->w, e->call_id, e->identity);
		calls_publish(r->w, res.members, "call.updated", e->call_id, res.status, NULL);
	}
	calls_wh_result_free(&res);
}

static void api_webhook_livekit(struct req *r)
{
	struct nc_worker *w = r->w;
	struct db_conn *db = &w->db;
	struct nc_error err = {0};
	struct wh_effect eff;
	char why[96], created[24], call_id[37], joined_at[24];
	const char *event, *id, *params[4];
	struct calls_wh_event ce;
	enum calls_wh_kind kind;
	json_t *ev;
	json_error_t jerr;
	PGresult *res;
	int64_t created_at;
	int n;

	if (webhook_verify(r->cfg->webhook_keys, r->cfg->n_webhook_keys, r->cfg->webhook_leeway_s,
			   req_header(r, "Authorization"), r->body, r->body_len, now_unix(), why,
			   sizeof(why)) != 0) {
		atomic_fetch_add(&rejected, 1);
		metrics_inc(M_WEBHOOK_AUTH_FAILURES);
		log_warn("webhook: refused a delivery from %s: %s", r->client_addr, why);
		resp_error(r, NC_EUNAUTH, "webhook signature invalid: %s", why);
		return;
	}
	ev = r->body ? json_loadb(r->body, r->body_len, 0, &jerr) : NULL;
	event = json_string_value(json_object_get(ev, "event"));
	id = json_string_value(json_object_get(ev, "id"));
	if (!json_is_object(ev) || event == NULL || *event == '\0') {
		json_decref(ev);
		resp_error(r, NC_EBADREQ, "not a LiveKit webhook event");
		return;
	}
	if (id == NULL || *id == '\0' || strlen(id) > 200) {
		json_decref(ev);
		resp_error(r, NC_EBADREQ, "the event has no usable id");
		return;
	}
	created_at = json_i64(json_object_get(ev, "createdAt"));
	if (created_at <= 0)
		created_at = now_unix();
	snprintf(created, sizeof(created), "%lld", (long long)created_at);
	memset(&eff, 0, sizeof(eff));
	if (call_event(event, ev, created, call_id, joined_at, &kind, &ce)) {
		ce.event_id = id;
		apply_call_event(r, kind, &ce);
		json_decref(ev);
		return;
	}

	if (db_begin_service(db, &err) != NC_OK)
		goto fail;
	params[0] = id;
	params[1] = event;
	params[2] = json_string_value(json_object_get(json_object_get(ev, "room"), "name"));
	params[3] = created;
	res = db_exec(db, "INSERT INTO nchat_livekit_webhook_events (event_id, event, room_name,"
		      " created_at) VALUES ($1, $2, $3, to_timestamp($4::bigint))"
		      " ON CONFLICT (event_id) DO NOTHING", 4, params, &err);
	if (res == NULL)
		goto fail;
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n == 0) {
		db_rollback(db);
		log_debug("webhook: %s %s is a duplicate", event, id);
		metrics_webhook(event, "duplicate");
		resp_json(r, 200, json_pack("{s:s}", "status", "duplicate"));
		json_decref(ev);
		return;
	}
	n = apply_event(w, event, ev, created_at, &eff, &err);
	if (n < 0)
		goto fail;
	if (db_commit(db, &err) != NC_OK)
		goto fail;
	log_debug("webhook: %s %s %s", event, id, n > 0 ? "applied" : "ignored");
	metrics_webhook(event, n > 0 ? "applied" : "ignored");
	resp_json(r, 200, json_pack("{s:s}", "status", n > 0 ? "applied" : "ignored"));
	after_commit(w, &eff);
	if (n > 0)
		publish_resource_change(w, event, ev);
	if (n > 0 && strcmp(event, "egress_ended") == 0)
		recordings_after_egress(w, json_string_value(json_object_get(
					       json_object_get(ev, "egressInfo"), "egressId")));
	json_decref(eff.members);
	json_decref(ev);
	return;
fail:
	db_rollback(db);
	if (err.code == NC_OK || err.code == NC_EBADREQ || err.code == NC_ECONFLICT)
		err_set(&err, NC_EINTERNAL, "the event could not be applied");
	log_error("webhook: %s %s failed: %s", event, id, err.msg);
	metrics_webhook(event, "error");
	resp_nc_error(r, &err);
	json_decref(eff.members);
	json_decref(ev);
}

const struct route webhook_routes[] = {
	{ RM_POST, "/api/webhooks/livekit", api_webhook_livekit, ROUTE_RAW_BODY, "webhooks.livekit" },
	{ 0, NULL, NULL, 0, NULL }
};
