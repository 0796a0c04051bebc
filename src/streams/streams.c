/*
 * streams.c - the live-stream domain: loading a stream with the caller's
 * rights on it, the LiveKit side of a stream's life (its room, the RTMP
 * ingress that carries the stream key, the HLS egress to S3) and the webhook
 * hooks of hooks.h (ingress_started marks a stream live; a finished HLS
 * egress frees the stream for a new /start).
 *
 * LiveKit is never called with a transaction open: handlers read and claim
 * in one short transaction, call LiveKit, and write the outcome in another.
 */
#include "streams/streams.h"
#include "core/uuid.h"
#include "streams/streams_db.h"

#include "http/auth.h"
#include "store/db.h"
#include "realtime/events.h"
#include "livekit/lk.h"
#include "core/log.h"
#include "http/worker.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- loading and rights ---- */

enum nc_err streams_open(struct req *r, const char *id, unsigned need, bool for_update,
			 struct stream_ctx *s, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct stream_row row;
	int n;

	memset(s, 0, sizeof(*s));
	if (id == NULL || !is_uuid(id))
		return err_set(err, NC_EBADREQ, "stream id must be a UUID");
	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = streams_db_load(db, id, req_authed(r) ? req_user(r)->user_id : NULL, for_update, &row, err);
	if (n <= 0) {
		db_rollback(db);
		return n < 0 ? err->code : err_set(err, NC_ENOTFOUND, "stream not found");
	}
	memcpy(s->id, row.id, sizeof(s->id));
	memcpy(s->channel_id, row.channel_id, sizeof(s->channel_id));
	memcpy(s->broadcaster_id, row.broadcaster_id, sizeof(s->broadcaster_id));
	memcpy(s->status, row.status, sizeof(s->status));
	s->room_name = row.room_name;
	s->ingress_id = row.ingress_id;
	s->egress_id = row.egress_id;
	s->enable_chat = row.enable_chat;
	s->enable_reactions = row.enable_reactions;
	s->slow_mode_s = row.slow_mode_s;
	s->is_member = row.is_member;

	s->is_broadcaster = req_authed(r) && strcmp(s->broadcaster_id, req_user(r)->user_id) == 0;
	s->is_staff = req_authed(r) && auth_is_staff(req_user(r));
	s->can_view = s->is_broadcaster || s->is_member || s->is_staff ||
		      (strcmp(s->status, "live") == 0 && req_cfg(r)->streams_public_live);

	if (need != 0 && !s->can_view && req_authed(r)) {
		/* a stream the caller may not see: 404, as if it did not exist */
		err_set(err, NC_ENOTFOUND, "stream not found");
	} else if ((need & STREAM_NEED_VIEW) && !s->can_view) {
		err_set(err, NC_EUNAUTH, "sign in to view this stream");
	} else if (need & (STREAM_NEED_OWNER | STREAM_NEED_MANAGE)) {
		if (!req_authed(r))
			err_set(err, NC_EUNAUTH, "sign in required");
		else if ((need & STREAM_NEED_OWNER) && !s->is_broadcaster)
			err_set(err, NC_EFORBIDDEN, "only the broadcaster may do this");
		else if ((need & STREAM_NEED_MANAGE) && !s->is_broadcaster && !s->is_staff)
			err_set(err, NC_EFORBIDDEN, "only the broadcaster or a moderator may do this");
		else
			return NC_OK;
	} else {
		return NC_OK;
	}
	db_rollback(db);
	stream_ctx_cleanup(s);
	return err->code;
}

void stream_ctx_cleanup(struct stream_ctx *s)
{
	free(s->room_name);
	free(s->ingress_id);
	free(s->egress_id);
	s->room_name = s->ingress_id = s->egress_id = NULL;
}

struct streams_caller streams_caller_of(const struct req *r)
{
	struct streams_caller c = { req_authed(r) ? req_user(r)->user_id : NULL,
				    req_authed(r) && auth_is_staff(req_user(r)),
				    req_cfg(r)->streams_public_live };

	return c;
}

bool streams_is_over(const struct stream_ctx *s)
{
	return strcmp(s->status, "ended") == 0 || strcmp(s->status, "failed") == 0;
}

enum nc_err streams_run(struct req *r, unsigned need, bool for_update, stream_step step, void *arg,
			struct nc_error *err)
{
	struct stream_ctx s;
	enum nc_err rc;

	if (streams_open(r, req_param(r, "id"), need, for_update, &s, err) != NC_OK)
		return err->code;
	rc = step(r, &s, arg, err);
	stream_ctx_cleanup(&s);
	return rc;
}

/* ---- stream keys ---- */

void streams_key_hash(const char *key, char out[72])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	static const char hex[] = "0123456789abcdef";

	if (EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
		/* cannot happen with a working libcrypto; never store a wrong hash */
		log_error("streams: sha256 failed");
		abort();
	}
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < n; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[7 + 2 * n] = '\0';
}

void streams_key_last4(const char *key, char out[5])
{
	size_t n = strlen(key);

	snprintf(out, 5, "%s", n > 4 ? key + n - 4 : key);
}

/* ---- LiveKit ---- */

static enum nc_err lk_missing(struct nc_worker *w, struct nc_error *err)
{
	if (w->lk == NULL)
		return err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
	return NC_OK;
}

enum nc_err streams_lk_ensure_room(struct nc_worker *w, const char *room, struct nc_error *err)
{
	Livekit__CreateRoomRequest req = LIVEKIT__CREATE_ROOM_REQUEST__INIT;
	struct lk_status st;
	Livekit__Room *resp;

	if (lk_missing(w, err) != NC_OK)
		return err->code;
	req.name = (char *)room;
	resp = lk_create_room(w->lk, &req, &st);
	if (resp == NULL)
		return lk_status_error(&st, err);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return NC_OK;
}

enum nc_err streams_lk_delete_room(struct nc_worker *w, const char *room, struct nc_error *err)
{
	Livekit__DeleteRoomRequest req = LIVEKIT__DELETE_ROOM_REQUEST__INIT;
	struct lk_status st;
	Livekit__DeleteRoomResponse *resp;

	if (room == NULL)
		return NC_OK;
	if (lk_missing(w, err) != NC_OK)
		return err->code;
	req.room = (char *)room;
	resp = lk_delete_room(w->lk, &req, &st);
	if (resp == NULL)
		return lk_status_is(&st, "not_found") ? NC_OK : lk_status_error(&st, err);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return NC_OK;
}

enum nc_err streams_lk_new_ingress(struct nc_worker *w, const char *stream_id, const char *room,
				   const char *identity, const char *name,
				   struct streams_ingress *out, struct nc_error *err)
{
	Livekit__CreateIngressRequest req = LIVEKIT__CREATE_INGRESS_REQUEST__INIT;
	struct lk_status st;
	Livekit__IngressInfo *info;

	memset(out, 0, sizeof(*out));
	if (lk_missing(w, err) != NC_OK)
		return err->code;
	req.has_input_type = 1;
	req.input_type = LIVEKIT__INGRESS_INPUT__RTMP_INPUT;
	req.name = (char *)stream_id;
	req.room_name = (char *)room;
	req.participant_identity = (char *)identity;
	req.participant_name = (char *)(name ? name : identity);
	info = lk_create_ingress(w->lk, &req, &st);
	if (info == NULL)
		return lk_status_error(&st, err);
	if (info->ingress_id == NULL || info->ingress_id[0] == '\0' || info->stream_key == NULL ||
	    info->stream_key[0] == '\0') {
		/* an ingress we cannot use; do not leave it behind */
		if (info->ingress_id && info->ingress_id[0]) {
			struct nc_error e2;

			(void)streams_lk_delete_ingress(w, info->ingress_id, &e2);
		}
		protobuf_c_message_free_unpacked(&info->base, NULL);
		return err_set(err, NC_ELIVEKIT, "LiveKit returned an ingress without a stream key");
	}
	out->ingress_id = xstrdup(info->ingress_id);
	out->stream_key = xstrdup(info->stream_key);
	out->url = xstrdup(info->url ? info->url : "");
	protobuf_c_message_free_unpacked(&info->base, NULL);
	return NC_OK;
}

void streams_ingress_cleanup(struct streams_ingress *in)
{
	free(in->ingress_id);
	if (in->stream_key)
		memset(in->stream_key, 0, strlen(in->stream_key));
	free(in->stream_key);
	free(in->url);
	memset(in, 0, sizeof(*in));
}

enum nc_err streams_lk_delete_ingress(struct nc_worker *w, const char *ingress_id,
				      struct nc_error *err)
{
	Livekit__DeleteIngressRequest req = LIVEKIT__DELETE_INGRESS_REQUEST__INIT;
	struct lk_status st;
	Livekit__IngressInfo *info;

	if (ingress_id == NULL)
		return NC_OK;
	if (lk_missing(w, err) != NC_OK)
		return err->code;
	req.ingress_id = (char *)ingress_id;
	info = lk_delete_ingress(w->lk, &req, &st);
	if (info == NULL)
		return lk_status_is(&st, "not_found") ? NC_OK : lk_status_error(&st, err);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	return NC_OK;
}

enum nc_err streams_lk_disable_ingress(struct nc_worker *w, const char *ingress_id,
				       struct nc_error *err)
{
	Livekit__UpdateIngressRequest req = LIVEKIT__UPDATE_INGRESS_REQUEST__INIT;
	struct lk_status st;
	Livekit__IngressInfo *info;

	if (ingress_id == NULL)
		return NC_OK;
	if (lk_missing(w, err) != NC_OK)
		return err->code;
	req.ingress_id = (char *)ingress_id;
	req.has_enabled = 1; /* proto2 optional: presence is what says "set it" */
	req.enabled = 0;
	info = lk_update_ingress(w->lk, &req, &st);
	if (info == NULL)
		return lk_status_is(&st, "not_found") ? NC_OK : lk_status_error(&st, err);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	return NC_OK;
}

char *streams_hls_url(const struct nc_config *cfg, const char *stream_id)
{
	const char *base = cfg->hls_base_url;
	const char *bucket = cfg->s3_bucket ? cfg->s3_bucket : "";
	size_t n;

	if (base == NULL || *base == '\0') {
		/* no CDN configured: the object's path-style URL on the public S3 endpoint */
		base = cfg->s3_public_endpoint && *cfg->s3_public_endpoint ? cfg->s3_public_endpoint
									    : cfg->s3_endpoint;
		if (base == NULL || *base == '\0')
			return xasprintf("/streams/%s/live.m3u8", stream_id);
		n = strlen(base);
		while (n > 0 && base[n - 1] == '/')
			n--;
		return xasprintf("%.*s/%s/streams/%s/live.m3u8", (int)n, base, bucket, stream_id);
	}
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	return xasprintf("%.*s/streams/%s/live.m3u8", (int)n, base, stream_id);
}

enum nc_err streams_lk_start_hls(struct nc_worker *w, const char *stream_id, const char *room,
				 char **egress_id, struct nc_error *err)
{
	const struct nc_config *cfg = w->cfg;
	Livekit__RoomCompositeEgressRequest req = LIVEKIT__ROOM_COMPOSITE_EGRESS_REQUEST__INIT;
	Livekit__SegmentedFileOutput seg = LIVEKIT__SEGMENTED_FILE_OUTPUT__INIT;
	Livekit__S3Upload s3 = LIVEKIT__S3_UPLOAD__INIT;
	Livekit__SegmentedFileOutput *segs[1] = { &seg };
	char *prefix = xasprintf("streams/%s/segment", stream_id);
	char *playlist = xasprintf("streams/%s/index.m3u8", stream_id);
	char *live = xasprintf("streams/%s/live.m3u8", stream_id);
	struct lk_status st;
	Livekit__EgressInfo *info;
	enum nc_err rc = NC_OK;

	*egress_id = NULL;
	if (lk_missing(w, err) != NC_OK) {
		rc = err->code;
		goto out;
	}
	seg.protocol = LIVEKIT__SEGMENTED_FILE_PROTOCOL__HLS_PROTOCOL;
	seg.filename_prefix = prefix;
	seg.playlist_name = playlist;
	seg.live_playlist_name = live;
	seg.segment_duration = 4;
	if (cfg->s3_bucket && *cfg->s3_bucket) {
		/* without storage in the request the Egress service's own storage is used */
		s3.access_key = cfg->s3_access_key ? cfg->s3_access_key : "";
		s3.secret = cfg->s3_secret_key ? cfg->s3_secret_key : "";
		s3.region = cfg->s3_region ? cfg->s3_region : "";
		s3.endpoint = cfg->s3_endpoint ? cfg->s3_endpoint : "";
		s3.bucket = cfg->s3_bucket;
		s3.force_path_style = cfg->s3_force_path_style;
		seg.output_case = LIVEKIT__SEGMENTED_FILE_OUTPUT__OUTPUT_S3;
		seg.s3 = &s3;
	}
	req.room_name = (char *)room;
	req.layout = "speaker";
	req.n_segment_outputs = 1;
	req.segment_outputs = segs;
	info = lk_start_room_composite_egress(w->lk, &req, &st);
	if (info == NULL) {
		rc = lk_status_error(&st, err);
		goto out;
	}
	if (info->egress_id == NULL || info->egress_id[0] == '\0') {
		protobuf_c_message_free_unpacked(&info->base, NULL);
		rc = err_set(err, NC_ELIVEKIT, "LiveKit returned an egress without an id");
		goto out;
	}
	*egress_id = xstrdup(info->egress_id);
	protobuf_c_message_free_unpacked(&info->base, NULL);
out:
	free(prefix);
	free(playlist);
	free(live);
	return rc;
}

enum nc_err streams_lk_stop_egress(struct nc_worker *w, const char *egress_id,
				   struct nc_error *err)
{
	Livekit__StopEgressRequest req = LIVEKIT__STOP_EGRESS_REQUEST__INIT;
	struct lk_status st;
	Livekit__EgressInfo *info;

	if (egress_id == NULL || strncmp(egress_id, "pending:", 8) == 0)
		return NC_OK;
	if (lk_missing(w, err) != NC_OK)
		return err->code;
	req.egress_id = (char *)egress_id;
	info = lk_stop_egress(w->lk, &req, &st);
	if (info == NULL) {
		/* already gone or already ending: what we wanted */
		if (lk_status_is(&st, "not_found") || lk_status_is(&st, "failed_precondition"))
			return NC_OK;
		return lk_status_error(&st, err);
	}
	protobuf_c_message_free_unpacked(&info->base, NULL);
	return NC_OK;
}

/* ---- webhook hooks (called inside the receiver's service transaction) ---- */

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int streams_on_ingress(struct nc_worker *w, const char *event, json_t *ingress_info,
		       int64_t created_at, struct nc_error *err)
{
	struct db_conn *db = &w->db;
	const char *ingress_id = jstr(ingress_info, "ingressId");
	char ts[32];
	json_t *payload;
	bool done;
	enum nc_err rc;

	if (ingress_id == NULL || *ingress_id == '\0')
		return 0;
	snprintf(ts, sizeof(ts), "%lld", (long long)(created_at > 0 ? created_at : now_unix()));
	if (strcmp(event, "ingress_started") == 0) {
		/*
		 * The encoder is publishing: the stream is live.  A stream that
		 * /start already made live is left as it is (first one wins), and
		 * an event older than the last one applied is ignored.
		 */
		payload = streams_db_ingress_started(db, ingress_id, ts, &done, err);
		if (payload == NULL && err->code != NC_OK)
			return -1;
		if (done) {
			if (payload == NULL)
				return err_set(err, NC_EINTERNAL, "out of memory"), -1;
			log_info("stream %s live (ingress %s started)",
				 json_string_value(json_object_get(payload, "stream_id")), ingress_id);
			rc = outbox_enqueue(db, w->cfg, "stream.live", payload, err);
			json_decref(payload);
			return rc == NC_OK ? 1 : -1;
		}
	} else if (strcmp(event, "ingress_ended") == 0) {
		/*
		 * The encoder stopped.  The stream is NOT ended: encoders reconnect
		 * after network trouble, and only the broadcaster (or a moderator)
		 * ends a stream.  Just note the event.
		 */
		if (streams_db_ingress_ended(db, ingress_id, ts, err) != NC_OK)
			return -1;
	}
	return streams_db_has_ingress_or_egress(db, ingress_id, NULL, err);
}

int streams_on_egress(struct nc_worker *w, const char *event, json_t *egress_info,
		      int64_t created_at, struct nc_error *err)
{
	struct db_conn *db = &w->db;
	const char *egress_id = jstr(egress_info, "egressId");
	const char *status = jstr(egress_info, "status");
	char ts[32], stream_id[37];
	bool terminal;
	int n;

	if (egress_id == NULL || *egress_id == '\0')
		return 0;
	if (status == NULL)
		status = "EGRESS_STARTING"; /* the zero value is omitted from JSON */
	terminal = strcmp(event, "egress_ended") == 0 || strcmp(status, "EGRESS_COMPLETE") == 0 ||
		   strcmp(status, "EGRESS_FAILED") == 0 || strcmp(status, "EGRESS_ABORTED") == 0 ||
		   strcmp(status, "EGRESS_LIMIT_REACHED") == 0;
	snprintf(ts, sizeof(ts), "%lld", (long long)(created_at > 0 ? created_at : now_unix()));
	if (terminal) {
		/*
		 * The HLS egress of a stream that is still live is gone (failed,
		 * limit reached, room closed): forget it so that /start can begin
		 * a new one.  The stream itself stays live (WebRTC viewers are
		 * unaffected); an ended stream keeps the id for the record.
		 */
		n = streams_db_egress_gone(db, egress_id, ts, stream_id, err);
		if (n < 0)
			return -1;
		if (n == 1) {
			log_warn("stream %s: HLS egress %s ended with %s while live", stream_id,
				 egress_id, status);
			return 1;
		}
	}
	return streams_db_has_ingress_or_egress(db, NULL, egress_id, err);
}

/* ---- LiveKit tokens ---- */

char *streams_mint_token(const struct nc_config *cfg, const char *identity, const char *name,
			 const char *room, bool publisher, int64_t *expires_at)
{
	struct lk_token_opts o;
	int64_t now = now_unix();

	if (cfg->livekit_api_key == NULL || cfg->livekit_api_secret == NULL)
		return NULL;
	memset(&o, 0, sizeof(o));
	o.identity = identity;
	o.name = name;
	o.ttl_s = cfg->livekit_token_ttl_s > 0 ? cfg->livekit_token_ttl_s : 3600;
	o.grant.room = room;
	o.grant.room_join = true;
	o.grant.can_subscribe = LK_TRUE;
	if (publisher) {
		o.grant.can_publish = LK_TRUE;
		o.grant.can_publish_data = LK_TRUE;
		o.grant.sources = LK_SRC_CAMERA | LK_SRC_MICROPHONE | LK_SRC_SCREEN_SHARE |
				  LK_SRC_SCREEN_SHARE_AUDIO;
	} else {
		/* watch only: no media, no data; hidden so that large audiences do
		 * not flood the room with participant events */
		o.grant.can_publish = LK_FALSE;
		o.grant.can_publish_data = LK_FALSE;
		o.grant.hidden = true;
	}
	return lk_token_mint_reuse(cfg->livekit_api_key, cfg->livekit_api_secret, &o, now,
				   expires_at);
}

/* ---- the counter timer ---- */

void streams_counters_periodic(struct nc_worker *w, void *arg)
{
	struct nc_error err = {0};
	int n = streams_db_flush_counters(&w->db, &err);

	(void)arg;

	if (n < 0)
		log_warn("stream counters: flush failed: %s", err.msg);
	else if (n > 0)
		log_debug("stream counters: %d streams folded", n);
}
