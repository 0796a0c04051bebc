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
#include "core/log.h"
#include "http/worker.h"
#include "streams/streams_db.h"
#include "http/auth.h"

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

static void too_many(struct req *r, long wait, const char *what)
{
	char txt[24];

	db_rollback(&req_worker(r)->db);
	snprintf(txt, sizeof(txt), "%ld", wait > 0 ? wait : 1);
	resp_header(r, "Retry-After", txt);
	resp_error(r, NC_ERATELIMIT, "%s; retry in %ld s", what, wait > 0 ? wait : 1);
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

/* The answer for a stream the hot-path statement found unusable; false if it is usable. */
static bool stream_refused(struct req *r, const struct streams_seen *s, struct nc_error *err)
{
	if (!s->found || (!s->can_view && req_authed(r)))
		err_set(err, NC_ENOTFOUND, "stream not found");
	else if (!s->can_view)
		err_set(err, NC_EUNAUTH, "sign in to view this stream");
	else if (s->over)
		err_set(err, NC_ECONFLICT, "the stream has ended");
	else
		return false;
	return true;
}

static struct streams_caller caller_of(const struct req *r)
{
	struct streams_caller c = { req_authed(r) ? req_user(r)->user_id : NULL,
				    req_authed(r) && auth_is_staff(req_user(r)), req_cfg(r)->streams_public_live };

	return c;
}

void api_stream_chat_post(struct req *r)
{
	struct streams_caller who = caller_of(r);
	struct streams_chat_post p = {0};
	struct nc_error err = {0};
	json_t *body = req_json(r, false);
	const char *id = req_param(r, "id");
	char *content = NULL, *key = NULL;
	long wait;

	if (body == NULL)
		return;
	if ((content = chat_content(r, body, &err)) == NULL)
		goto bad;
	if (id == NULL || !is_uuid(id)) {
		err_set(&err, NC_EBADREQ, "stream id must be a UUID");
		goto bad;
	}
	key = xasprintf("nchat:rl:streamchat:%s", req_user(r)->user_id);
	wait = rate_hit(req_worker(r), key, req_cfg(r)->stream_chat_rate_limit,
			req_cfg(r)->stream_chat_rate_window_s);
	if (wait > 0) {
		too_many(r, wait, "too many chat messages");
		goto done;
	}
	/* one statement: the stream, the caller's rights, the insert */
	if (streams_db_chat_post(&req_worker(r)->db, id, &who, content, false, &p, &err) != NC_OK)
		goto bad;
	if (p.needs_slow_check && p.s.found && p.s.can_view && !p.s.over && p.enable_chat) {
		free(key);
		key = xasprintf("nchat:slow:%s:%s", id, req_user(r)->user_id);
		if ((wait = slow_mode_hit(req_worker(r), key, p.slow_mode_s)) > 0) {
			too_many(r, wait, "slow mode is on");
			goto done;
		}
		if (streams_db_chat_post(&req_worker(r)->db, id, &who, content, true, &p, &err) != NC_OK)
			goto bad;
	}
	if (stream_refused(r, &p.s, &err))
		goto bad;
	if (!p.enable_chat) {
		err_set(&err, NC_EFORBIDDEN, "chat is disabled for this stream");
		goto bad;
	}
	if (p.msg == NULL) {
		err_set(&err, NC_ECONFLICT, "the stream changed meanwhile; try again");
		goto bad;
	}
	rt_publish_stream(req_worker(r), id, "stream.chat", p.msg);
	resp_json(r, 201, p.msg);
	p.msg = NULL;
	goto done;
bad:
	resp_nc_error(r, &err);
done:
	json_decref(p.msg);
	json_decref(body);
	free(content);
	free(key);
}

/* ---- GET /api/streams/{id}/chat?limit=&before=&pinned_first= ---- */

/*
 * Newest first, keyset-paginated by message id (`before` = next_before of
 * the previous page).  With pinned_first=true the first page starts with
 * every pinned message (newest pin first) and no page repeats them.
 */
void api_stream_chat_list(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct streams_caller who = caller_of(r);
	struct stream_ctx s;
	struct nc_error err;
	char *limit_txt = req_query(r, "limit"), *before = req_query(r, "before");
	char *pf_txt = req_query(r, "pinned_first");
	bool pinned_first = false;
	long limit = 50;
	char next[37];
	json_t *arr = NULL;

	memset(&s, 0, sizeof(s));
	if (limit_txt && parse_long(limit_txt, 1, 100, &limit) != 0) {
		resp_error(r, NC_EBADREQ, "limit must be an integer from 1 to 100");
		goto out;
	}
	if (before && !is_uuid(before)) {
		resp_error(r, NC_EBADREQ, "before must be a message id");
		goto out;
	}
	if (pf_txt) {
		if (strcmp(pf_txt, "true") == 0 || strcmp(pf_txt, "1") == 0)
			pinned_first = true;
		else if (strcmp(pf_txt, "false") != 0 && strcmp(pf_txt, "0") != 0) {
			resp_error(r, NC_EBADREQ, "pinned_first must be true or false");
			goto out;
		}
	}
	if (streams_open(r, req_param(r, "id"), STREAM_NEED_VIEW, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		goto out;
	}
	/* the statements check again who may read the chat */
	arr = streams_db_chat_page(db, s.id, &who, pinned_first, before, (int)limit, next, &err);
	if (arr == NULL)
		goto fail;
	db_rollback(db);
	resp_json(r, 200, json_pack("{s:o, s:s?}", "messages", arr, "next_before",
				    next[0] ? next : NULL));
	arr = NULL;
	goto out;
fail:
	streams_fail(r, &err);
out:
	json_decref(arr);
	free(limit_txt);
	free(before);
	free(pf_txt);
	stream_ctx_cleanup(&s);
}

/* ---- POST /api/streams/{id}/chat/{messageId}/pin ---- */

void api_stream_chat_pin(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct stream_ctx s;
	struct nc_error err;
	const char *mid = req_param(r, "messageId");
	json_t *body = req_json(r, true), *msg = NULL;
	bool pinned = true;

	memset(&s, 0, sizeof(s));
	if (body == NULL)
		return;
	if (jv_bool(body, "pinned", 0, &pinned, &err) < 0)
		goto bad;
	if (mid == NULL || !is_uuid(mid)) {
		err_set(&err, NC_EBADREQ, "message id must be a UUID");
		goto bad;
	}
	if (streams_open(r, req_param(r, "id"), STREAM_NEED_MANAGE, false, &s, &err) != NC_OK)
		goto bad;
	if ((msg = streams_db_chat_pin(db, s.id, mid, pinned, req_user(r)->user_id, &err)) == NULL)
		goto fail;
	{
		json_t *d = json_pack("{s:s}", "message_id", mid);

		if (audit_log(db, req_user(r), pinned ? "stream.chat.pin" : "stream.chat.unpin",
			      "stream", s.id, d, req_id(r), &err) != NC_OK) {
			json_decref(d);
			goto fail;
		}
		json_decref(d);
	}
	if (db_commit(db, &err) != NC_OK)
		goto fail;
	rt_publish_stream(req_worker(r), s.id, "stream.chat", msg);
	resp_json(r, 200, msg);
	msg = NULL;
	goto done;
bad:
	resp_nc_error(r, &err);
	goto done;
fail:
	streams_fail(r, &err);
done:
	json_decref(msg);
	json_decref(body);
	stream_ctx_cleanup(&s);
}

/* ---- DELETE /api/streams/{id}/chat/{messageId} ---- */

void api_stream_chat_delete(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct stream_ctx s;
	struct nc_error err;
	const char *mid = req_param(r, "messageId");
	bool own;
	json_t *d;
	int n;

	if (mid == NULL || !is_uuid(mid)) {
		resp_error(r, NC_EBADREQ, "message id must be a UUID");
		return;
	}
	if (streams_open(r, req_param(r, "id"), 0, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	n = streams_db_chat_lock(db, s.id, mid, req_user(r)->user_id, &own, &err);
	if (n < 0)
		goto fail;
	if (n == 0) {
		err_set(&err, NC_ENOTFOUND, "message not found");
		goto fail;
	}
	if (!own && !s.is_broadcaster && !s.is_staff) {
		err_set(&err, NC_EFORBIDDEN,
			"only the author, the broadcaster or a moderator may delete a message");
		goto fail;
	}
	if (streams_db_chat_delete(db, s.id, mid, req_user(r)->user_id, &err) != NC_OK)
		goto fail;
	if (!own) {
		/* moderation of someone else's message is a privileged action */
		d = json_pack("{s:s}", "message_id", mid);
		if (audit_log(db, req_user(r), "stream.chat.delete", "stream", s.id, d, req_id(r),
			      &err) != NC_OK) {
			json_decref(d);
			goto fail;
		}
		json_decref(d);
	}
	if (db_commit(db, &err) != NC_OK)
		goto fail;
	d = json_pack("{s:s, s:s, s:b}", "id", mid, "stream_id", s.id, "is_deleted", 1);
	rt_publish_stream(req_worker(r), s.id, "stream.chat", d);
	json_decref(d);
	resp_json(r, 204, NULL);
	stream_ctx_cleanup(&s);
	return;
fail:
	streams_fail(r, &err);
	stream_ctx_cleanup(&s);
}

/* ---- POST /api/streams/{id}/reactions ---- */

/*
 * {"reactionType", "viewer_session_id"?}: signed-in viewers may omit the
 * session (their latest open session is credited); anonymous viewers must
 * name their open session.  The rate limit is per signed-in user, and per
 * client address for anonymous viewers (however many sessions they open).
 */
void api_stream_reaction_post(struct req *r)
{
	struct streams_caller who = caller_of(r);
	struct streams_reaction x;
	struct nc_error err = {0};
	json_t *body = req_json(r, false), *out = NULL;
	const char *type = NULL, *sid = NULL, *id = req_param(r, "id");
	char *key = NULL, ck[STREAMS_CLIENT_KEY_LEN + 1];
	long wait;

	if (body == NULL)
		return;
	if (jv_enum(body, "reactionType", JV_REQUIRED, reaction_types, &type, &err) < 0 ||
	    jv_string(body, "viewer_session_id", req_authed(r) ? 0 : JV_REQUIRED, 8, 128, &sid,
		      &err) < 0)
		goto bad;
	if (id == NULL || !is_uuid(id)) {
		err_set(&err, NC_EBADREQ, "stream id must be a UUID");
		goto bad;
	}
	if (!req_authed(r))
		streams_client_key(req_cfg(r), req_client_addr(r), ck);
	key = xasprintf("nchat:rl:streamreact:%s:%s%s", id, req_authed(r) ? "" : "anon:",
			req_authed(r) ? req_user(r)->user_id : ck);
	if ((wait = rate_hit(req_worker(r), key, req_cfg(r)->stream_reaction_rate_limit, 1)) > 0) {
		too_many(r, wait, "too many reactions");
		goto done;
	}
	if (streams_db_reaction(&req_worker(r)->db, id, &who, sid, type, &x, &err) != NC_OK ||
	    stream_refused(r, &x.s, &err))
		goto bad;
	if (!x.enable_reactions) {
		err_set(&err, NC_EFORBIDDEN, "reactions are disabled for this stream");
		goto bad;
	}
	if (!x.session_ok) {
		err_set(&err, NC_ENOTFOUND, "no open viewer session with that id");
		goto bad;
	}
	if (x.id[0] == '\0') {
		err_set(&err, NC_ECONFLICT, "the stream changed meanwhile; try again");
		goto bad;
	}
	out = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "id", x.id, "stream_id", id,
			"reaction_type", type, "user_id", req_authed(r) ? req_user(r)->user_id : NULL,
			"created_at", x.created_at);
	rt_publish_stream(req_worker(r), id, "stream.reaction", out);
	resp_json(r, 201, out);
	out = NULL;
	goto done;
bad:
	resp_nc_error(r, &err);
done:
	json_decref(out);
	json_decref(body);
	free(key);
}

/* ---- GET /api/streams/{id}/reactions ---- */

void api_stream_reaction_summary(struct req *r)
{
	struct streams_caller who = caller_of(r);
	struct stream_ctx s;
	struct nc_error err;
	json_t *out;

	streams_db_sync_counters(&req_worker(r)->db, req_param(r, "id"));
	if (streams_open(r, req_param(r, "id"), STREAM_NEED_VIEW, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	/* the statement checks again who may see the stream */
	out = streams_db_reaction_summary(&req_worker(r)->db, s.id, &who, &err);
	if (out == NULL) {
		streams_fail(r, &err);
		stream_ctx_cleanup(&s);
		return;
	}
	db_rollback(&req_worker(r)->db);
	resp_json(r, 200, out);
	stream_ctx_cleanup(&s);
}
