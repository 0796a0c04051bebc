/*
 * sse_replay.c - event ids and replay: a client's position in each topic
 * (Last-Event-ID), and what it missed, read back from the capped Redis
 * stream of each topic (XRANGE) before the live feed resumes (loop thread).
 */
#include "http/sse_internal.h"
#include "core/log.h"
#include "core/metrics.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Ids                                                                 */
/* ------------------------------------------------------------------ */

static void parse_id(const char *s, unsigned long long *ms, unsigned long long *seq)
{
	char *end;

	*ms = strtoull(s, &end, 10);
	*seq = (*end == '-') ? strtoull(end + 1, NULL, 10) : 0;
}

int sse_id_cmp(const char *a, const char *b)
{
	unsigned long long am, as, bm, bs;

	if (*a == '\0' || *b == '\0')
		return (*a != '\0') - (*b != '\0');
	parse_id(a, &am, &as);
	parse_id(b, &bm, &bs);
	if (am != bm)
		return am < bm ? -1 : 1;
	if (as != bs)
		return as < bs ? -1 : 1;
	return 0;
}

static bool valid_stream_id(const char *s, size_t len)
{
	size_t dashes = 0;

	if (len == 0 || len >= 48)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '-')
			dashes++;
		else if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return dashes <= 1;
}

void sse_parse_last_event_id(const char *last_id, struct sse_spec *spec)
{
	const char *p = last_id;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char kind = p[0];

		if (len > 1 && (kind == 'u' || kind == 's') && valid_stream_id(p + 1, len - 1)) {
			const char *prefix = kind == 'u' ? "user:" : "stream:";
			for (int i = 0; i < spec->n_topics; i++)
				if (strncmp(spec->topics[i], prefix, strlen(prefix)) == 0)
					snprintf(spec->positions[i], sizeof(spec->positions[i]), "%.*s",
						 (int)(len - 1), p + 1);
		}
		p = end ? end + 1 : NULL;
	}
}

/* ------------------------------------------------------------------ */
/* Replay                                                              */
/* ------------------------------------------------------------------ */

struct replay_ctx {
	struct sse_conn *conn;
	int slot;
};

static void replay_finish(struct sse_conn *c)
{
	/* Live events that arrived meanwhile, minus what the replay covered. */
	while (c->q_head != NULL && !c->dead) {
		struct queued_ev *q = c->q_head;

		c->q_head = q->next;
		c->q_len--;
		if (c->positions[q->slot][0] == '\0' || sse_id_cmp(q->id, c->positions[q->slot]) > 0)
			sse_conn_send(c, q->slot, q->id, q->type, q->data);
		free(q->type);
		free(q->data);
		free(q);
	}
	if (!c->dead)
		c->q_tail = NULL;
}

static void on_xrange(redisAsyncContext *ac, void *r, void *privdata)
{
	struct replay_ctx *rc = privdata;
	struct sse_conn *c = rc->conn;
	redisReply *rep = r;
	json_t *reactions = NULL;
	char last_reaction_id[48] = "";

	(void)ac;
	c->replay_pending--;
	if (!c->dead && rep != NULL && rep->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < rep->elements; i++) {
			redisReply *e = rep->element[i];
			json_t *ev, *data;
			const char *type;
			char *text;

			if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
			    e->element[1]->type != REDIS_REPLY_ARRAY || e->element[1]->elements < 2)
				continue;
			ev = json_loads(e->element[1]->element[1]->str, 0, NULL);
			type = json_string_value(json_object_get(ev, "type"));
			data = json_object_get(ev, "data");
			if (type != NULL && data != NULL && sse_is_reaction(type)) {
				const char *k = json_string_value(json_object_get(data, "reactionType"));
				json_t *cur;
				if (k == NULL)
					k = json_string_value(json_object_get(data, "reaction_type"));
				if (reactions == NULL)
					reactions = json_object();
				cur = json_object_get(reactions, k ? k : "unknown");
				json_object_set_new(reactions, k ? k : "unknown",
						    json_integer((cur ? json_integer_value(cur) : 0) + 1));
				snprintf(last_reaction_id, sizeof(last_reaction_id), "%s",
					 e->element[0]->str);
			} else if (type != NULL && data != NULL) {
				text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
				if (text != NULL)
					sse_conn_send(c, rc->slot, e->element[0]->str, type, text);
				free(text);
			}
			json_decref(ev);
			if (c->dead)
				break;
		}
		if (reactions != NULL && !c->dead) {
			json_t *o = json_pack("{s:s, s:O}", "streamId",
					      c->topics[rc->slot]->name + strlen("stream:"), "counts",
					      reactions);
			char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
			if (text != NULL)
				sse_conn_send(c, rc->slot, last_reaction_id, "stream.reaction", text);
			free(text);
			json_decref(o);
		}
	} else if (!c->dead) {
		c->replay_failed = true;
	}
	json_decref(reactions);
	free(rc);
	if (c->dead) {
		if (c->replay_pending == 0)
			free(c);
		return;
	}
	if (c->replay_pending == 0) {
		if (c->replay_failed)
			sse_conn_send(c, -1, NULL, "replay.unavailable", "{}");
		replay_finish(c);
	}
}

void sse_start_replay(struct sse_hub *hub, struct sse_conn *c)
{
	for (int i = 0; i < c->n_topics; i++) {
		struct replay_ctx *rc;
		char key[160], from[56];

		if (c->positions[i][0] == '\0')
			continue;
		if (hub->cmd == NULL) {
			c->replay_failed = true;
			continue;
		}
		rc = xcalloc(1, sizeof(*rc));
		rc->conn = c;
		rc->slot = i;
		snprintf(key, sizeof(key), RT_LOG_PREFIX "%s", c->topics[i]->name);
		snprintf(from, sizeof(from), "(%s", c->positions[i]);
		if (redisAsyncCommand(hub->cmd, on_xrange, rc, "XRANGE %s %s + COUNT %d", key, from,
				      REPLAY_MAX) == REDIS_OK)
			c->replay_pending++;
		else {
			free(rc);
			c->replay_failed = true;
		}
	}
	if (c->replay_pending == 0 && c->replay_failed)
		sse_conn_send(c, -1, NULL, "replay.unavailable", "{}");
}
