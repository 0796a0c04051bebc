/*
 * events.c - audit rows, realtime publishing and the webhook outbox.
 */
#include "realtime/events.h"
#include "core/log.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum nc_err audit_log(struct db_conn *db, const struct principal *actor, const char *action,
		      const char *target_type, const char *target_id, json_t *details,
		      const char *request_id, struct nc_error *err)
{
	const char *role = "service";
	char *det = details ? json_dumps(details, JSON_COMPACT) : NULL;
	const char *params[7];
	PGresult *res;

	if (actor != NULL)
		role = (actor->roles & ROLE_ADMIN) ? "admin"
		       : (actor->roles & ROLE_MODERATOR) ? "moderator" : "user";
	params[0] = actor ? actor->user_id : NULL;
	params[1] = role;
	params[2] = action;
	params[3] = target_type;
	params[4] = target_id;
	params[5] = det ? det : "{}";
	params[6] = request_id && *request_id ? request_id : NULL;
	res = db_exec(db,
		      "INSERT INTO nchat_rtc_audit_log"
		      " (actor_id, actor_role, action, target_type, target_id, details, request_id)"
		      " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
		      7, params, err);
	free(det);
	if (res == NULL)
		return err->code;
	PQclear(res);
	return NC_OK;
}

/*
 * Append to the topic's replay stream and publish, atomically, so the id a
 * live client sees is the id a reconnecting client replays from.
 * KEYS[1] replay stream, KEYS[2] channel; ARGV[1] event JSON, ARGV[2]
 * maxlen, ARGV[3] ttl ms.  The published message is "<id> <json>".
 */
static const char publish_lua[] =
	"local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])\n"
	"redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
	"redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[1])\n"
	"return id\n";

/* Send (sync) or queue (later: rds_append, best effort) one publish. */
static int publish(struct nc_worker *w, const char *topic, const char *type, json_t *data,
		   bool later)
{
	char logkey[160], chan[160], maxlen[16], ttl[16];
	json_t *ev;
	char *text;
	const char *argv[8];
	struct nc_error err = {0};
	redisReply *rep;
	int rc = -1;

	if (w == NULL || !w->rds_ok)
		return -1;
	snprintf(logkey, sizeof(logkey), RT_LOG_PREFIX "%s", topic);
	snprintf(chan, sizeof(chan), RT_CHANNEL_PREFIX "%s", topic);
	snprintf(maxlen, sizeof(maxlen), "%d", RT_LOG_MAXLEN);
	snprintf(ttl, sizeof(ttl), "%d", RT_LOG_TTL_MS);
	ev = json_pack("{s:s, s:O}", "type", type, "data", data ? data : json_null());
	if (ev == NULL)
		return -1;
	text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (text == NULL)
		return -1;
	argv[0] = "EVAL";
	argv[1] = publish_lua;
	argv[2] = "2";
	argv[3] = logkey;
	argv[4] = chan;
	argv[5] = text;
	argv[6] = maxlen;
	argv[7] = ttl;
	if (later) {
		rc = rds_append(&w->rds, 8, argv, NULL) ? 0 : -1;
		if (rc != 0)
			log_warn("realtime: %s not published on %s: redis unavailable", type, topic);
		free(text);
		return rc;
	}
	rep = rds_cmdv(&w->rds, 8, argv, NULL, &err);
	if (rep != NULL && rep->type != REDIS_REPLY_ERROR)
		rc = 0;
	else
		log_warn("realtime: %s not published on %s: %s", type, topic,
			 rep ? rep->str : err.msg);
	freeReplyObject(rep);
	free(text);
	return rc;
}

int rt_publish(struct nc_worker *w, const char *topic, const char *type, json_t *data)
{
	return publish(w, topic, type, data, false);
}

void rt_publish_user(struct nc_worker *w, const char *user_id, const char *type, json_t *data)
{
	char topic[64];

	snprintf(topic, sizeof(topic), "user:%s", user_id);
	publish(w, topic, type, data, true);
}

void rt_publish_stream(struct nc_worker *w, const char *stream_id, const char *type, json_t *data)
{
	char topic[64];

	snprintf(topic, sizeof(topic), "stream:%s", stream_id);
	publish(w, topic, type, data, true);
}

enum nc_err outbox_enqueue(struct db_conn *db, const struct nc_config *cfg, const char *event,
			   json_t *payload, struct nc_error *err)
{
	const char *p = cfg->outbound_webhook_urls;
	char *body;
	enum nc_err rc = NC_OK;

	if (p == NULL || *p == '\0')
		return NC_OK;
	body = json_dumps(payload, JSON_COMPACT);
	if (body == NULL)
		return err_set(err, NC_EINTERNAL, "out of memory");
	while (p != NULL && *p != '\0' && rc == NC_OK) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *url;
		const char *params[3];
		PGresult *res;

		while (len > 0 && *p == ' ')
			p++, len--;
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len > 0) {
			url = xstrndup(p, len);
			params[0] = event;
			params[1] = url;
			params[2] = body;
			res = db_exec(db,
				      "INSERT INTO nchat_rtc_outbound_webhooks (event, target_url, payload)"
				      " VALUES ($1, $2, $3::jsonb)",
				      3, params, err);
			if (res == NULL)
				rc = err->code;
			PQclear(res);
			free(url);
		}
		p = end ? end + 1 : NULL;
	}
	free(body);
	return rc;
}

char *outbox_urls_literal(const struct nc_config *cfg)
{
	const char *p = cfg->outbound_webhook_urls;
	size_t cap = 3 + (p ? 2 * strlen(p) + 3 * (strlen(p) + 1) : 0), n = 0;
	char *out = xmalloc(cap);
	bool first = true;

	out[n++] = '{';
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len > 0 && *p == ' ')
			p++, len--;
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len > 0) {
			if (!first)
				out[n++] = ',';
			first = false;
			out[n++] = '"';
			for (size_t i = 0; i < len; i++) {
				if (p[i] == '"' || p[i] == '\\')
					out[n++] = '\\';
				out[n++] = p[i];
			}
			out[n++] = '"';
		}
		p = end ? end + 1 : NULL;
	}
	out[n++] = '}';
	out[n] = '\0';
	return out;
}
