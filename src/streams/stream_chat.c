/*
 * stream_chat.c - stream chat and reactions (API.md "Live streams").
 *
 * Chat: 1..2000 characters after trimming ASCII whitespace, valid UTF-8
 * without NUL; an optional blocked-words list (CHAT_BLOCKED_WORDS, whole
 * words, ASCII case-insensitive) answers 400; a per-user limit
 * (STREAM_CHAT_RATE_LIMIT per STREAM_CHAT_RATE_WINDOW_SECONDS, over all
 * streams) and the stream's slow mode (chat_slow_mode_seconds; the
 * broadcaster and staff are exempt) answer 429 with Retry-After.  Both
 * limits live in Redis and are skipped when Redis is down.  Deleted messages
 * are hidden from the list; pinned ones can be listed first.
 *
 * Reactions: the eight types, STREAM_REACTION_RATE_LIMIT per second per
 * viewer (the user, or the anonymous viewer session).  The per-type counts
 * and the viewer's counters are kept by triggers.
 */
#include "streams/streams.h"
#include "core/uuid.h"

#include "store/db.h"
#include "realtime/events.h"
#include "core/jsonv.h"
#include "http/worker.h"
#include "http/ratelimit.h"
#include "streams/streams_db.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CHAT_MAX_CHARS 2000

static const char *const reaction_types[] = { "heart", "like", "fire", "clap",
					      "laugh", "wow",  "sad",  "angry", NULL };

/* ---- blocked words ---- */

static bool word_byte(unsigned char c)
{
	/* bytes of multi-byte UTF-8 characters count as letters */
	return isalnum(c) || c == '_' || c >= 0x80;
}

bool stream_chat_blocked(const char *list, const char *text)
{
	const char *p = list;

	if (list == NULL || text == NULL)
		return false;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *w = p;

		p = end ? end + 1 : p + len;
		while (len > 0 && isspace((unsigned char)*w))
			w++, len--;
		while (len > 0 && isspace((unsigned char)w[len - 1]))
			len--;
		if (len == 0)
			continue;
		for (const char *t = text; *t; t++) {
			if (strncasecmp(t, w, len) != 0)
				continue;
			if ((t == text || !word_byte((unsigned char)t[-1])) &&
			    !word_byte((unsigned char)t[len]))
				return true;
		}
	}
	return false;
}

/* ---- rate limits (Redis; best effort) ---- */

/*
 * Fixed-window counter in one round trip: INCR, the window's expiry on the
 * first hit (repaired if it was lost), and the seconds left when over.
 * KEYS[1] counter; ARGV[1] window seconds, ARGV[2] limit.
 */
static const char rate_lua[] =
	"local n = redis.call('INCR', KEYS[1])\n"
	"if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
	"if n <= tonumber(ARGV[2]) then return 0 end\n"
	"local t = redis.call('TTL', KEYS[1])\n"
	"if t < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end\n"
	"return t\n";
static char rate_sha[41];
static pthread_once_t rate_once = PTHREAD_ONCE_INIT;

static void rate_sha_init(void)
{
	unsigned char md[SHA_DIGEST_LENGTH];

	SHA1((const unsigned char *)rate_lua, strlen(rate_lua), md);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(rate_sha + 2 * i, 3, "%02x", md[i]);
}

/*
 * At most `limit` hits per `window_s` for key.  Returns 0 when allowed,
 * else the seconds until the window ends.  Redis down: allowed.
 */
static long rate_hit(struct nc_worker *w, const char *key, int limit, int window_s)
{
	struct nc_error err = {0};
	char win[16], lim[16];
	const char *argv[6];
	redisReply *rep;
	long wait = 0;

	if (!w->rds_ok)
		return 0;
	pthread_once(&rate_once, rate_sha_init);
	snprintf(win, sizeof(win), "%d", window_s);
	snprintf(lim, sizeof(lim), "%d", limit);
	argv[0] = "EVALSHA";
	argv[1] = rate_sha;
	argv[2] = "1";
	argv[3] = key;
	argv[4] = win;
	argv[5] = lim;
	rep = rds_cmdv(&w->rds, 6, argv, NULL, &err);
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(rep);
		argv[0] = "EVAL";
		argv[1] = rate_lua;
		rep = rds_cmdv(&w->rds, 6, argv, NULL, &err);
	}
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
		wait = (long)rep->integer;
	freeReplyObject(rep);
	return wait;
}

/* Slow mode: one message per `seconds`; 0 allowed, else seconds to wait. */
static long slow_mode_hit(struct nc_worker *w, const char *key, int seconds)
{
	struct nc_error err;
	redisReply *rep;
	long wait = 0;

	if (!w->rds_ok || seconds <= 0)
		return 0;
	rep = rds_cmd(&w->rds, &err, "SET %s 1 EX %d NX", key, seconds);
	if (rep == NULL)
		return 0;
	if (rep->type == REDIS_REPLY_NIL) {
		freeReplyObject(rep);
		rep = rds_cmd(&w->rds, &err, "TTL %s", key);
		wait = seconds;
		if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
			wait = (long)rep->integer;
	}
	if (rep)
		freeReplyObject(rep);
	return wait;
}

/* A 429 with Retry-After: the header is set here, the error body is dispatch's. */
static enum nc_err too_many(struct req *r, long wait, const char *what, struct nc_error *err)
{
	char txt[24];

	if (wait < 1)
		wait = 1;
	snprintf(txt, sizeof(txt), "%ld", wait);
	resp_header(r, "Retry-After", txt);
	return err_set(err, NC_ERATELIMIT, "%s; retry in %ld s", what, wait);
}

/* ---- chat text ---- */

static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

/* ---- POST /api/streams/{id}/chat ---- */

/* The trimmed content of the body (malloc'd), or NULL with err set (400). */
static char *chat_content(struct req *r, json_t *body, struct nc_error *err)
{
	const char *raw = NULL;
	char *content;
	size_t len, chars;

	/* any length here: the limit applies after trimming */
	if (jv_string(body, "content", JV_REQUIRED, 0, 1000000, &raw, err) < 0)
		return NULL;
	len = strlen(raw);
	while (len > 0 && isspace((unsigned char)*raw))
		raw++, len--;
	while (len > 0 && isspace((unsigned char)raw[len - 1]))
		len--;
	chars = utf8_chars(raw, len);
	if (chars < 1 || chars > CHAT_MAX_CHARS) {
		err_set(err, NC_EBADREQ, "content must be 1 to %d characters after trimming",
			CHAT_MAX_CHARS);
		return NULL;
	}
	content = xstrndup(raw, len);
	if (stream_chat_blocked(req_cfg(r)->chat_blocked_words, content)) {
		err_set(err, NC_EBADREQ, "content contains a blocked word");
		free(content);
		return NULL;
	}
	return content;
}

/* The error for a stream the hot-path statement found unusable; NC_OK if it is usable. */
static enum nc_err stream_refused(struct req *r, const struct streams_seen *s,
				  struct nc_error *err)
{
	if (!s->found || (!s->can_view && req_authed(r)))
		return err_set(err, NC_ENOTFOUND, "stream not found");
	if (!s->can_view)
		return err_set(err, NC_EUNAUTH, "sign in to view this stream");
	if (s->over)
		return err_set(err, NC_ECONFLICT, "the stream has ended");
	return NC_OK;
}

/* Why no message was written (p->msg is NULL); NC_OK when one was. */
static enum nc_err chat_refused(struct req *r, const struct streams_chat_post *p,
				struct nc_error *err)
{
	if (stream_refused(r, &p->s, err) != NC_OK)
		return err->code;
	if (!p->enable_chat)
		return err_set(err, NC_EFORBIDDEN, "chat is disabled for this stream");
	if (p->msg == NULL)
		return err_set(err, NC_ECONFLICT, "the stream changed meanwhile; try again");
	return NC_OK;
}

static enum nc_err chat_post(struct req *r, const char *content, struct nc_error *err)
{
	struct streams_caller who = streams_caller_of(r);
	struct streams_chat_post p = { 0 };
	const char *id = req_param(r, "id");
	char key[160];
	long wait;

	snprintf(key, sizeof(key), "nchat:rl:streamchat:%s", req_user(r)->user_id);
	wait = rate_hit(req_worker(r), key, req_cfg(r)->stream_chat_rate_limit,
			req_cfg(r)->stream_chat_rate_window_s);
	if (wait > 0)
		return too_many(r, wait, "too many chat messages", err);
	/* one statement: the stream, the caller's rights, the insert */
	if (streams_db_chat_post(&req_worker(r)->db, id, &who, content, false, &p, err) != NC_OK)
		return err->code;
	if (p.needs_slow_check && p.s.found && p.s.can_view && !p.s.over && p.enable_chat) {
		snprintf(key, sizeof(key), "nchat:slow:%s:%s", id, req_user(r)->user_id);
		if ((wait = slow_mode_hit(req_worker(r), key, p.slow_mode_s)) > 0)
			return too_many(r, wait, "slow mode is on", err);
		if (streams_db_chat_post(&req_worker(r)->db, id, &who, content, true, &p, err) != NC_OK)
			return err->code;
	}
	/* a message is written only where none of these refuses it: nothing to free */
	if (chat_refused(r, &p, err) != NC_OK)
		return err->code;
	rt_publish_stream(req_worker(r), id, "stream.chat", p.msg);
	resp_json(r, 201, p.msg);
	return NC_OK;
}

static enum nc_err api_stream_chat_post(struct req *r, struct nc_error *err)
{
	char *content = chat_content(r, req_body(r), err);
	enum nc_err rc;

	if (content == NULL)
		return err->code;
	rc = chat_post(r, content, err);
	free(content);
	return rc;
}

/* ---- GET /api/streams/{id}/chat?limit=&before=&pinned_first= ---- */

struct chat_page_args {
	long limit;
	bool pinned_first;
	char before[37]; /* "" for the first page */
};

static enum nc_err chat_page_args(struct req *r, struct chat_page_args *a, struct nc_error *err)
{
	char *limit_txt = req_query(r, "limit"), *before = req_query(r, "before");
	char *pf = req_query(r, "pinned_first");
	enum nc_err rc = NC_OK;

	a->limit = 50;
	if (limit_txt && parse_long(limit_txt, 1, 100, &a->limit) != 0)
		rc = err_set(err, NC_EBADREQ, "limit must be an integer from 1 to 100");
	else if (before && !is_uuid(before))
		rc = err_set(err, NC_EBADREQ, "before must be a message id");
	else if (pf && strcmp(pf, "true") != 0 && strcmp(pf, "1") != 0 && strcmp(pf, "false") != 0 &&
		 strcmp(pf, "0") != 0)
		rc = err_set(err, NC_EBADREQ, "pinned_first must be true or false");
	a->pinned_first = pf && (strcmp(pf, "true") == 0 || strcmp(pf, "1") == 0);
	snprintf(a->before, sizeof(a->before), "%s", rc == NC_OK && before ? before : "");
	free(limit_txt);
	free(before);
	free(pf);
	return rc;
}

/*
 * Newest first, keyset-paginated by message id (`before` = next_before of
 * the previous page).  With pinned_first=true the first page starts with
 * every pinned message (newest pin first) and no page repeats them.
 */
static enum nc_err chat_page(struct req *r, struct stream_ctx *s, void *arg, struct nc_error *err)
{
	const struct chat_page_args *a = arg;
	struct streams_caller who = streams_caller_of(r);
	char next[37];
	json_t *arr;

	/* the statements check again who may read the chat */
	arr = streams_db_chat_page(&req_worker(r)->db, s->id, &who, a->pinned_first,
				   a->before[0] ? a->before : NULL, (int)a->limit, next, err);
	if (arr == NULL)
		return err->code;
	db_rollback(&req_worker(r)->db); /* read only */
	resp_json(r, 200, json_pack("{s:o, s:s?}", "messages", arr, "next_before",
				    next[0] ? next : NULL));
	return NC_OK;
}

static enum nc_err api_stream_chat_list(struct req *r, struct nc_error *err)
{
	struct chat_page_args a;

	if (chat_page_args(r, &a, err) != NC_OK)
		return err->code;
	return streams_run(r, STREAM_NEED_VIEW, false, chat_page, &a, err);
}

/* ---- POST /api/streams/{id}/chat/{messageId}/pin ---- */

static enum nc_err chat_pin(struct req *r, struct stream_ctx *s, void *arg, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	bool pinned = *(const bool *)arg;
	const char *mid = req_param(r, "messageId");
	json_t *msg, *d;
	enum nc_err rc;

	if ((msg = streams_db_chat_pin(db, s->id, mid, pinned, req_user(r)->user_id, err)) == NULL)
		return err->code;
	d = json_pack("{s:s}", "message_id", mid);
	rc = audit_log(db, req_user(r), pinned ? "stream.chat.pin" : "stream.chat.unpin", "stream",
		       s->id, d, req_id(r), err);
	json_decref(d);
	if (rc == NC_OK)
		rc = db_commit(db, err);
	if (rc != NC_OK) {
		json_decref(msg);
		return rc;
	}
	rt_publish_stream(req_worker(r), s->id, "stream.chat", msg);
	resp_json(r, 200, msg);
	return NC_OK;
}

static enum nc_err api_stream_chat_pin(struct req *r, struct nc_error *err)
{
	bool pinned = true;

	if (jv_bool(req_body(r), "pinned", 0, &pinned, err) < 0)
		return err->code;
	return streams_run(r, STREAM_NEED_MANAGE, false, chat_pin, &pinned, err);
}

/* ---- DELETE /api/streams/{id}/chat/{messageId} ---- */

static enum nc_err chat_delete(struct req *r, struct stream_ctx *s, void *arg,
			       struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	const char *mid = req_param(r, "messageId");
	enum nc_err rc;
	bool own;
	json_t *d;
	int n;

	(void)arg;
	n = streams_db_chat_lock(db, s->id, mid, req_user(r)->user_id, &own, err);
	if (n < 0)
		return err->code;
	if (n == 0)
		return err_set(err, NC_ENOTFOUND, "message not found");
	if (!own && !s->is_broadcaster && !s->is_staff)
		return err_set(err, NC_EFORBIDDEN,
			       "only the author, the broadcaster or a moderator may delete a message");
	if (streams_db_chat_delete(db, s->id, mid, req_user(r)->user_id, err) != NC_OK)
		return err->code;
	if (!own) {
		/* moderation of someone else's message is a privileged action */
		d = json_pack("{s:s}", "message_id", mid);
		rc = audit_log(db, req_user(r), "stream.chat.delete", "stream", s->id, d, req_id(r),
			       err);
		json_decref(d);
		if (rc != NC_OK)
			return rc;
	}
	if (db_commit(db, err) != NC_OK)
		return err->code;
	d = json_pack("{s:s, s:s, s:b}", "id", mid, "stream_id", s->id, "is_deleted", 1);
	rt_publish_stream(req_worker(r), s->id, "stream.chat", d);
	json_decref(d);
	resp_json(r, 204, NULL);
	return NC_OK;
}

static enum nc_err api_stream_chat_delete(struct req *r, struct nc_error *err)
{
	return streams_run(r, 0, false, chat_delete, NULL, err);
}

/* ---- POST /api/streams/{id}/reactions ---- */

/*
 * The per-viewer limit of reactions (STREAM_REACTION_RATE_LIMIT a second
 * on one stream): per signed-in user, and per client address for anonymous
 * viewers (however many sessions they open).  The dispatcher charges it with
 * the route class's buckets, in the same Redis round trip.
 */
static void reaction_limit(struct req *r, struct rl_bucket *b)
{
	char ck[STREAMS_CLIENT_KEY_LEN + 1];

	if (!req_authed(r))
		streams_client_key(req_cfg(r), req_client_addr(r), ck);
	snprintf(b->key, sizeof(b->key), "streamreact:%s:%s%s", req_param(r, "id"),
		 req_authed(r) ? "" : "anon:", req_authed(r) ? req_user(r)->user_id : ck);
	b->count = req_cfg(r)->stream_reaction_rate_limit;
	b->window_s = 1;
}

/*
 * {"reactionType", "viewer_session_id"?}: signed-in viewers may omit the
 * session (their latest open session is credited); anonymous viewers must
 * name their open session.
 */
static enum nc_err api_stream_reaction_post(struct req *r, struct nc_error *err)
{
	struct streams_caller who = streams_caller_of(r);
	struct streams_reaction x;
	struct streams_react_job it;
	json_t *body = req_body(r), *out;
	const char *type = NULL, *sid = NULL, *id = req_param(r, "id");

	if (jv_enum(body, "reactionType", JV_REQUIRED, reaction_types, &type, err) < 0 ||
	    jv_string(body, "viewer_session_id", req_authed(r) ? 0 : JV_REQUIRED, 8, 128, &sid,
		      err) < 0)
		return err->code;
	it.in = (struct streams_reaction_in){ id, who, sid, type };
	streams_react(&req_worker(r)->db, &it);
	if (it.rc != NC_OK) {
		*err = it.err;
		return it.rc;
	}
	x = it.out;
	if (stream_refused(r, &x.s, err) != NC_OK)
		return err->code;
	if (!x.enable_reactions)
		return err_set(err, NC_EFORBIDDEN, "reactions are disabled for this stream");
	if (!x.session_ok)
		return err_set(err, NC_ENOTFOUND, "no open viewer session with that id");
	if (x.id[0] == '\0')
		return err_set(err, NC_ECONFLICT, "the stream changed meanwhile; try again");
	out = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "id", x.id, "stream_id", id,
			"reaction_type", type, "user_id", req_authed(r) ? req_user(r)->user_id : NULL,
			"created_at", x.created_at);
	rt_publish_stream(req_worker(r), id, "stream.reaction", out);
	resp_json(r, 201, out);
	return NC_OK;
}

/* ---- GET /api/streams/{id}/reactions ---- */

static enum nc_err reaction_summary(struct req *r, struct stream_ctx *s, void *arg,
				    struct nc_error *err)
{
	struct streams_caller who = streams_caller_of(r);
	json_t *out;

	(void)arg;
	/* the statement checks again who may see the stream */
	out = streams_db_reaction_summary(&req_worker(r)->db, s->id, &who, err);
	if (out == NULL)
		return err->code;
	db_rollback(&req_worker(r)->db); /* read only */
	resp_json(r, 200, out);
	return NC_OK;
}

static enum nc_err api_stream_reaction_summary(struct req *r, struct nc_error *err)
{
	streams_db_sync_counters(&req_worker(r)->db, req_param(r, "id"));
	return streams_run(r, STREAM_NEED_VIEW, false, reaction_summary, NULL, err);
}

/* ---- routes ---- */

const struct route stream_chat_routes[] = {
	{RM_GET, "/api/streams/{id}/chat", api_stream_chat_list,
	 ROUTE_AUTH_OPTIONAL | ROUTE_UUID_PARAMS, NULL, NULL},
	{RM_POST, "/api/streams/{id}/chat", api_stream_chat_post,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS | ROUTE_JSON, NULL, NULL},
	{RM_POST, "/api/streams/{id}/chat/{messageId}/pin", api_stream_chat_pin,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS | ROUTE_JSON, NULL, NULL},
	{RM_DELETE, "/api/streams/{id}/chat/{messageId}", api_stream_chat_delete,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL},
	{RM_GET, "/api/streams/{id}/reactions", api_stream_reaction_summary,
	 ROUTE_AUTH_OPTIONAL | ROUTE_UUID_PARAMS, NULL, NULL},
	{RM_POST, "/api/streams/{id}/reactions", api_stream_reaction_post,
	 ROUTE_AUTH_OPTIONAL | ROUTE_UUID_PARAMS | ROUTE_JSON, NULL, reaction_limit},
	{0, NULL, NULL, 0, NULL, NULL},
};
