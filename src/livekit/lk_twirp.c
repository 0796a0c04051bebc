/*
 * lk_twirp.c - blocking Twirp client for LiveKit's server API on libcurl.
 *
 * Each call: POST {livekit_api_url}/twirp/livekit.<Service>/<Method>, body =
 * the packed protobuf-c request, Content-Type application/protobuf, and a
 * fresh 10-minute bearer token carrying only the grant that RPC needs
 * (roomCreate, roomList, roomAdmin+room, roomRecord or ingressAdmin).
 *
 * Retries (jittered exponential backoff, at most LIVEKIT_RETRIES extra
 * attempts) happen only for calls that are safe to repeat and only when the
 * request most likely did not take effect or LiveKit asked for it: the
 * connection could not be made or was dropped before an answer, a connect
 * timeout, Twirp `unavailable`, or a proxy's 502/503/504.  A whole-call
 * timeout after the connection was made is not retried (the worker has
 * already waited LIVEKIT_TIMEOUT_MS).
 *
 * Repeatable: every List*, GetParticipant, DeleteRoom, RemoveParticipant,
 * MutePublishedTrack, UpdateParticipant, UpdateRoomMetadata, StopEgress,
 * UpdateLayout, UpdateIngress, DeleteIngress (they set a state, so a repeat
 * is a no-op or answers not_found, which callers of delete/remove/stop treat
 * as done).  Never repeated: CreateRoom (a lost answer must surface, the
 * caller decides), SendData (would deliver twice), the Start*Egress calls
 * (would record twice) and CreateIngress (would make two ingresses).
 *
 * libcurl itself resends a request once when a reused keep-alive connection
 * turns out dead before any answer; calls that must never arrive twice
 * (SendData, the Start*Egress calls, CreateIngress) therefore always use a
 * fresh connection (CURLOPT_FRESH_CONNECT), so nothing is ever sent twice
 * behind the caller's back.  They are rare (recording start, a message), so
 * the extra handshake does not matter.  CreateRoom may arrive twice: LiveKit
 * gets or creates the room by its name (and ours are new for each call), so
 * a second delivery finds the room the first made; it reuses connections
 * like the repeatable calls (it starts every call, and a handshake to
 * LiveKit and back cost about a tenth of the service's CPU per initiate),
 * but is still never repeated by this client.
 *
 * Twirp code -> nc_err:
 *   not_found                          -> NC_ENOTFOUND   (404)
 *   invalid_argument, out_of_range     -> NC_EBADREQ     (400): LiveKit refused
 *       a value that came from the user (name/metadata too long, bad URL);
 *       handlers validate first, so this is the user's input, not LiveKit's
 *       fault, and repeating it will not help
 *   already_exists, aborted            -> NC_ECONFLICT   (409)
 *   unavailable, deadline_exceeded,
 *   resource_exhausted, canceled       -> NC_ELIVEKIT_DOWN (503)
 *   anything else (malformed: our own encoding bug; unauthenticated,
 *   permission_denied: our key; internal, failed_precondition, ...)
 *                                      -> NC_ELIVEKIT    (502)
 * The code string stays in lk_status.twirp_code for callers that need more
 * (e.g. failed_precondition on StopEgress = already stopped).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "livekit/lk.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"

#define SERVER_TOKEN_TTL_S 600
#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_TIMEOUT_MS 10000
#define BACKOFF_BASE_MS 100
#define BACKOFF_MAX_MS 2000

enum rpc_grant { G_CREATE, G_LIST, G_ADMIN, G_RECORD, G_INGRESS };

struct rpc {
	const char *service;
	const char *method;
	enum rpc_grant grant;
	bool repeatable;
	bool may_arrive_twice;  /* a resend is harmless: keep-alive connections are fine */
	const ProtobufCMessageDescriptor *resp;
};

/* What one HTTP attempt came to. */
enum attempt_result { ATTEMPT_OK, ATTEMPT_FAIL, ATTEMPT_RETRY };

/* ---- client lifecycle ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct lk_client *c = ud;
	size_t n = size * nmemb;

	if (!buf_append_capped(&c->body, &c->body_len, &c->body_cap, LK_MAX_RESPONSE, ptr, n)) {
		c->body_overflow = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	return n;
}

int lk_client_init(struct lk_client *c, const struct nc_config *cfg)
{
	const struct nc_config *k = cfg;
	long cto = k->livekit_connect_timeout_ms > 0 ? k->livekit_connect_timeout_ms
						      : DEFAULT_CONNECT_TIMEOUT_MS;
	long to = k->livekit_timeout_ms > 0 ? k->livekit_timeout_ms : DEFAULT_TIMEOUT_MS;

	memset(c, 0, sizeof *c);
	c->cfg = cfg;
	c->curl = curl_easy_init();
	if (!c->curl)
		return -1;
	c->rng = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ULL;
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, cto);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, to);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "nchat-rtc");
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
	return 0;
}

void lk_client_cleanup(struct lk_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
	free(c->body);
	c->body = NULL;
	c->body_len = c->body_cap = 0;
}

/* ---- status helpers ---- */

static const struct { const char *code; enum nc_err err; } code_map[] = {
	{ "not_found", NC_ENOTFOUND },
	{ "invalid_argument", NC_EBADREQ },
	{ "out_of_range", NC_EBADREQ },
	{ "already_exists", NC_ECONFLICT },
	{ "aborted", NC_ECONFLICT },
	{ "unavailable", NC_ELIVEKIT_DOWN },
	{ "deadline_exceeded", NC_ELIVEKIT_DOWN },
	{ "resource_exhausted", NC_ELIVEKIT_DOWN },
	{ "canceled", NC_ELIVEKIT_DOWN },
};

enum nc_err lk_twirp_code_err(const char *code)
{
	for (size_t i = 0; code && i < NC_ARRAY_LEN(code_map); i++)
		if (strcmp(code, code_map[i].code) == 0)
			return code_map[i].err;
	return NC_ELIVEKIT;
}

bool lk_status_is(const struct lk_status *st, const char *code)
{
	return st->err != NC_OK && strcmp(st->twirp_code, code) == 0;
}

/*
 * A fixed message per error class: LiveKit's own code and text (which may
 * name hosts, rooms or internals) went to the log where the call failed
 * (lk_call) and never reach a client.
 */
enum nc_err lk_status_error(const struct lk_status *st, struct nc_error *e)
{
	const char *msg;

	switch (st->err) {
	case NC_OK:
		return NC_OK;
	case NC_ENOTFOUND: msg = "LiveKit has no such room or participant"; break;
	case NC_EBADREQ: msg = "LiveKit refused the request as invalid"; break;
	case NC_ECONFLICT: msg = "LiveKit reported a conflict; try again"; break;
	case NC_ELIVEKIT_DOWN: msg = "LiveKit is unavailable"; break;
	default: msg = "LiveKit request failed"; break;
	}
	return err_set(e, st->err, "%s", msg);
}

/* Truncating copy (src may be NULL). */
static void copy_str(char *dst, size_t dstlen, const char *src)
{
	size_t n = src ? strnlen(src, dstlen - 1) : 0;

	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static void status_set(struct lk_status *st, enum nc_err err, const char *code,
		       const char *msg)
{
	st->err = err;
	copy_str(st->twirp_code, sizeof st->twirp_code, code);
	copy_str(st->msg, sizeof st->msg, msg);
}

/*
 * Copy a non-Twirp error body into out, printable characters only.  The
 * server's "invalid token: <jwt>, error: <reason>" echoes our token, which
 * must never reach a log: keep only the reason.
 */
static void plain_body_msg(const char *body, size_t len, char *out, size_t outlen)
{
	static const char tok_prefix[] = "invalid token: ";
	const char *reason;
	size_t j = 0;

	if (len >= sizeof tok_prefix - 1 && strncmp(body, tok_prefix, sizeof tok_prefix - 1) == 0) {
		reason = strstr(body, ", error: ");
		snprintf(out, outlen, "invalid token%s", reason ? reason : "");
		return;
	}
	for (size_t i = 0; i < len && j + 1 < outlen; i++)
		out[j++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
	out[j] = '\0';
}

/* ---- one attempt ---- */

static char *server_token(const struct nc_config *cfg, enum rpc_grant g, const char *room)
{
	struct lk_token_opts o = { .ttl_s = SERVER_TOKEN_TTL_S };
	int64_t exp;

	switch (g) {
	case G_CREATE: o.grant.room_create = true; break;
	case G_LIST: o.grant.room_list = true; break;
	case G_ADMIN: o.grant.room_admin = true; o.grant.room = room; break;
	case G_RECORD: o.grant.room_record = true; break;
	case G_INGRESS: o.grant.ingress_admin = true; break;
	}
	return lk_token_mint_reuse(cfg->livekit_api_key, cfg->livekit_api_secret, &o, now_unix(),
				   &exp);
}

static struct curl_slist *make_headers(const char *token)
{
	struct curl_slist *h = NULL;
	char *auth = xasprintf("Authorization: Bearer %s", token);

	h = curl_slist_append(h, "Content-Type: application/protobuf");
	h = curl_slist_append(h, "Accept: application/protobuf");
	h = curl_slist_append(h, "Expect:");
	h = curl_slist_append(h, auth);
	free(auth);
	return h;
}

/* A transport failure: retry when the request most likely never ran. */
static enum attempt_result transport_failed(struct lk_client *c, CURLcode rc,
					    struct lk_status *st)
{
	curl_off_t connect_us = 0;
	bool retry;

	if (rc == CURLE_WRITE_ERROR && c->body_overflow) {
		status_set(st, NC_ELIVEKIT, NULL, "response larger than 4 MiB");
		return ATTEMPT_FAIL;
	}
	curl_easy_getinfo(c->curl, CURLINFO_CONNECT_TIME_T, &connect_us);
	status_set(st, NC_ELIVEKIT_DOWN, NULL, c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
		retry = true;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		retry = connect_us == 0; /* never connected */
		break;
	default:
		retry = false;
	}
	return retry ? ATTEMPT_RETRY : ATTEMPT_FAIL;
}

/* A non-200 answer: Twirp JSON {"code","msg"} or a plain-text body. */
static enum attempt_result http_failed(struct lk_client *c, long http, struct lk_status *st)
{
	json_t *j = c->body_len ? json_loadb(c->body, c->body_len, 0, NULL) : NULL;
	const char *code = j ? json_string_value(json_object_get(j, "code")) : NULL;
	enum attempt_result r;

	st->http_status = (int)http;
	if (code) {
		const char *msg = json_string_value(json_object_get(j, "msg"));
		status_set(st, lk_twirp_code_err(code), code, msg);
		r = strcmp(code, "unavailable") == 0 ? ATTEMPT_RETRY : ATTEMPT_FAIL;
	} else {
		char msg[sizeof st->msg];
		bool proxy_down = http == 502 || http == 503 || http == 504;
		plain_body_msg(c->body ? c->body : "", c->body_len, msg, sizeof msg);
		if (!msg[0])
			snprintf(msg, sizeof msg, "HTTP %ld", http);
		status_set(st, proxy_down ? NC_ELIVEKIT_DOWN : NC_ELIVEKIT, NULL, msg);
		r = proxy_down ? ATTEMPT_RETRY : ATTEMPT_FAIL;
	}
	json_decref(j);
	return r;
}

static enum attempt_result perform(struct lk_client *c, const struct rpc *r,
				   const char *room, const char *url,
				   const uint8_t *buf, size_t len, struct lk_status *st,
				   ProtobufCMessage **out)
{
	char *token = server_token(c->cfg, r->grant, room);
	struct curl_slist *hdrs;
	CURLcode rc;
	long http = 0;

	if (!token) {
		status_set(st, NC_ELIVEKIT, NULL, "cannot mint server token (LIVEKIT_API_KEY/SECRET)");
		return ATTEMPT_FAIL;
	}
	hdrs = make_headers(token);
	c->body_len = 0;
	c->body_overflow = false;
	c->errbuf[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, (const char *)buf);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	/* curl silently resends a request whose reused connection died before
	 * any answer; that must not happen to calls that are not repeatable */
	curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT,
			 r->repeatable || r->may_arrive_twice ? 0L : 1L);
	rc = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	free(token);
	if (rc != CURLE_OK)
		return transport_failed(c, rc, st);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http);
	if (http != 200)
		return http_failed(c, http, st);
	st->http_status = 200;
	*out = protobuf_c_message_unpack(r->resp, NULL, c->body_len, (const uint8_t *)c->body);
	if (!*out) {
		status_set(st, NC_ELIVEKIT, NULL, "undecodable response");
		return ATTEMPT_FAIL;
	}
	status_set(st, NC_OK, NULL, NULL);
	return ATTEMPT_OK;
}

/* ---- the call loop ---- */

static uint64_t next_rand(struct lk_client *c)
{
	/* xorshift64: jitter only, not security */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
}

/* Sleep before retry number `n` (1-based): half fixed, half random. */
static void backoff(struct lk_client *c, int n)
{
	long ms = BACKOFF_BASE_MS;
	struct timespec ts;

	for (int i = 1; i < n && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	ms = ms / 2 + (long)(next_rand(c) % (uint64_t)(ms / 2 + 1));
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *call(struct lk_client *c, const struct rpc *r, const char *room,
		  const ProtobufCMessage *req, struct lk_status *st)
{
	const struct nc_config *cfg = c->cfg;
	int max = 1 + (r->repeatable && cfg->livekit_retries > 0 ? cfg->livekit_retries : 0);
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = xmalloc(len ? len : 1);
	ProtobufCMessage *out = NULL;
	char *url;
	enum attempt_result res;
	int64_t t0;

	memset(st, 0, sizeof *st);
	if (!cfg->livekit_api_url || !*cfg->livekit_api_url) {
		free(buf);
		status_set(st, NC_ELIVEKIT_DOWN, NULL, "LIVEKIT_URL not configured");
		return NULL;
	}
	protobuf_c_message_pack(req, buf);
	url = xasprintf("%s/twirp/livekit.%s/%s", cfg->livekit_api_url, r->service, r->method);
	t0 = now_ms();
	do {
		if (st->attempts > 0)
			backoff(c, st->attempts);
		st->http_status = 0;
		res = perform(c, r, room, url, buf, len, st, &out);
		st->attempts++;
	} while (res == ATTEMPT_RETRY && st->attempts < max);
	metrics_livekit(r->method,
			res == ATTEMPT_OK ? "ok" : st->err == NC_ELIVEKIT_DOWN ? "unavailable" : "error",
			(double)(now_ms() - t0));
	if (res != ATTEMPT_OK)
		log_warn("livekit %s/%s failed after %d attempt(s): %s %s", r->service,
			 r->method, st->attempts, st->twirp_code[0] ? st->twirp_code : "-", st->msg);
	free(url);
	free(buf);
	return out;
}

/* ---- the RPC table and typed wrappers ---- */

#define RPC(svc, m, g, rep, resp_desc) \
	static const struct rpc rpc_##m = { svc, #m, g, rep, rep, &resp_desc }

/* not repeated, but its second delivery is harmless (get or create by name) */
static const struct rpc rpc_CreateRoom = { "RoomService", "CreateRoom", G_CREATE, false, true,
					   &livekit__room__descriptor };
RPC("RoomService", ListRooms, G_LIST, true, livekit__list_rooms_response__descriptor);
RPC("RoomService", DeleteRoom, G_CREATE, true, livekit__delete_room_response__descriptor);
RPC("RoomService", ListParticipants, G_ADMIN, true, livekit__list_participants_response__descriptor);
RPC("RoomService", GetParticipant, G_ADMIN, true, livekit__participant_info__descriptor);
RPC("RoomService", RemoveParticipant, G_ADMIN, true, livekit__remove_participant_response__descriptor);
RPC("RoomService", MutePublishedTrack, G_ADMIN, true, livekit__mute_room_track_response__descriptor);
RPC("RoomService", UpdateParticipant, G_ADMIN, true, livekit__participant_info__descriptor);
RPC("RoomService", SendData, G_ADMIN, false, livekit__send_data_response__descriptor);
RPC("RoomService", UpdateRoomMetadata, G_ADMIN, true, livekit__room__descriptor);
RPC("Egress", StartRoomCompositeEgress, G_RECORD, false, livekit__egress_info__descriptor);
RPC("Egress", StartTrackCompositeEgress, G_RECORD, false, livekit__egress_info__descriptor);
RPC("Egress", StopEgress, G_RECORD, true, livekit__egress_info__descriptor);
RPC("Egress", ListEgress, G_RECORD, true, livekit__list_egress_response__descriptor);
RPC("Egress", UpdateLayout, G_RECORD, true, livekit__egress_info__descriptor);
RPC("Ingress", CreateIngress, G_INGRESS, false, livekit__ingress_info__descriptor);
RPC("Ingress", UpdateIngress, G_INGRESS, true, livekit__ingress_info__descriptor);
RPC("Ingress", ListIngress, G_INGRESS, true, livekit__list_ingress_response__descriptor);
RPC("Ingress", DeleteIngress, G_INGRESS, true, livekit__ingress_info__descriptor);

Livekit__Room *lk_create_room(struct lk_client *c,
	const Livekit__CreateRoomRequest *req, struct lk_status *st)
{
	return call(c, &rpc_CreateRoom, NULL, &req->base, st);
}

Livekit__ListRoomsResponse *lk_list_rooms(struct lk_client *c,
	const Livekit__ListRoomsRequest *req, struct lk_status *st)
{
	return call(c, &rpc_ListRooms, NULL, &req->base, st);
}

Livekit__DeleteRoomResponse *lk_delete_room(struct lk_client *c,
	const Livekit__DeleteRoomRequest *req, struct lk_status *st)
{
	return call(c, &rpc_DeleteRoom, NULL, &req->base, st);
}

Livekit__ListParticipantsResponse *lk_list_participants(struct lk_client *c,
	const Livekit__ListParticipantsRequest *req, struct lk_status *st)
{
	return call(c, &rpc_ListParticipants, req->room, &req->base, st);
}

Livekit__ParticipantInfo *lk_get_participant(struct lk_client *c,
	const Livekit__RoomParticipantIdentity *req, struct lk_status *st)
{
	return call(c, &rpc_GetParticipant, req->room, &req->base, st);
}

Livekit__RemoveParticipantResponse *lk_remove_participant(struct lk_client *c,
	const Livekit__RoomParticipantIdentity *req, struct lk_status *st)
{
	return call(c, &rpc_RemoveParticipant, req->room, &req->base, st);
}

Livekit__MuteRoomTrackResponse *lk_mute_published_track(struct lk_client *c,
	const Livekit__MuteRoomTrackRequest *req, struct lk_status *st)
{
	return call(c, &rpc_MutePublishedTrack, req->room, &req->base, st);
}

Livekit__ParticipantInfo *lk_update_participant(struct lk_client *c,
	const Livekit__UpdateParticipantRequest *req, struct lk_status *st)
{
	return call(c, &rpc_UpdateParticipant, req->room, &req->base, st);
}

Livekit__SendDataResponse *lk_send_data(struct lk_client *c,
	const Livekit__SendDataRequest *req, struct lk_status *st)
{
	return call(c, &rpc_SendData, req->room, &req->base, st);
}

Livekit__Room *lk_update_room_metadata(struct lk_client *c,
	const Livekit__UpdateRoomMetadataRequest *req, struct lk_status *st)
{
	return call(c, &rpc_UpdateRoomMetadata, req->room, &req->base, st);
}

Livekit__EgressInfo *lk_start_room_composite_egress(struct lk_client *c,
	const Livekit__RoomCompositeEgressRequest *req, struct lk_status *st)
{
	return call(c, &rpc_StartRoomCompositeEgress, NULL, &req->base, st);
}

Livekit__EgressInfo *lk_start_track_composite_egress(struct lk_client *c,
	const Livekit__TrackCompositeEgressRequest *req, struct lk_status *st)
{
	return call(c, &rpc_StartTrackCompositeEgress, NULL, &req->base, st);
}

Livekit__EgressInfo *lk_stop_egress(struct lk_client *c,
	const Livekit__StopEgressRequest *req, struct lk_status *st)
{
	return call(c, &rpc_StopEgress, NULL, &req->base, st);
}

Livekit__ListEgressResponse *lk_list_egress(struct lk_client *c,
	const Livekit__ListEgressRequest *req, struct lk_status *st)
{
	return call(c, &rpc_ListEgress, NULL, &req->base, st);
}

Livekit__EgressInfo *lk_update_layout(struct lk_client *c,
	const Livekit__UpdateLayoutRequest *req, struct lk_status *st)
{
	return call(c, &rpc_UpdateLayout, NULL, &req->base, st);
}

Livekit__IngressInfo *lk_create_ingress(struct lk_client *c,
	const Livekit__CreateIngressRequest *req, struct lk_status *st)
{
	return call(c, &rpc_CreateIngress, NULL, &req->base, st);
}

Livekit__IngressInfo *lk_update_ingress(struct lk_client *c,
	const Livekit__UpdateIngressRequest *req, struct lk_status *st)
{
	return call(c, &rpc_UpdateIngress, NULL, &req->base, st);
}

Livekit__ListIngressResponse *lk_list_ingress(struct lk_client *c,
	const Livekit__ListIngressRequest *req, struct lk_status *st)
{
	return call(c, &rpc_ListIngress, NULL, &req->base, st);
}

Livekit__IngressInfo *lk_delete_ingress(struct lk_client *c,
	const Livekit__DeleteIngressRequest *req, struct lk_status *st)
{
	return call(c, &rpc_DeleteIngress, NULL, &req->base, st);
}
