/*
 * sse_redis.c - the hub's Redis side: one pattern subscription (nchat:rt:*)
 * delivering every instance's events live, reaction batches, and the
 * catch-up after an outage (loop thread).
 */
#include "http/sse_internal.h"
#include "core/log.h"
#include "core/metrics.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Delivery                                                            */
/* ------------------------------------------------------------------ */

bool sse_is_reaction(const char *type)
{
	return strcmp(type, "stream.reaction") == 0;
}

/* Fold one reaction event into t's pending batch. */
static void batch_add(struct sse_hub *hub, struct topic *t, const char *id, json_t *data)
{
	const char *kind = json_string_value(json_object_get(data, "reactionType"));
	json_t *cur;

	if (kind == NULL)
		kind = json_string_value(json_object_get(data, "reaction_type"));
	if (kind == NULL)
		kind = "unknown";
	if (t->batch == NULL)
		t->batch = json_object();
	cur = json_object_get(t->batch, kind);
	json_object_set_new(t->batch, kind, json_integer((cur ? json_integer_value(cur) : 0) + 1));
	snprintf(t->batch_id, sizeof(t->batch_id), "%s", id);
	if (!t->batch_queued) {
		t->batch_queued = true;
		t->batch_next = hub->batch_list;
		hub->batch_list = t;
	}
}

static char *batch_payload(struct topic *t)
{
	json_t *o = json_pack("{s:s, s:O}", "streamId", t->name + strlen("stream:"), "counts",
			      t->batch);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (s == NULL)
		fatal("out of memory (reaction batch)");
	return s;
}

void sse_on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sse_hub *hub = arg;
	struct topic *list = hub->batch_list;

	(void)fd;
	(void)what;
	hub->batch_list = NULL;
	while (list != NULL) {
		struct topic *t = list;
		struct sse_conn *c, *next;
		char *data;

		list = t->batch_next;
		/* t stays queued (so it cannot be released) until the loop is done */
		if (t->batch != NULL && t->n_conns > 0) {
			data = batch_payload(t);
			for (c = t->conns; c != NULL; c = next) {
				int slot = sse_slot_of(c, t);

				next = c->t_next[slot];
				if (c->replay_pending == 0)
					sse_conn_send(c, slot, t->batch_id, "stream.reaction", data);
			}
			free(data);
		}
		json_decref(t->batch);
		t->batch = NULL;
		t->batch_queued = false;
		sse_topic_release(hub, t);
	}
}

/* A live event for topic t (from the pattern subscription). */
static void deliver(struct sse_hub *hub, struct topic *t, const char *id, const char *type,
		    json_t *data, const char *data_text)
{
	struct sse_conn *c, *next;

	if (sse_is_reaction(type)) {
		batch_add(hub, t, id, data);
		return;
	}
	for (c = t->conns; c != NULL; c = next) {
		int slot = sse_slot_of(c, t);

		next = c->t_next[slot];
		if (c->replay_pending > 0)
			sse_conn_queue(c, slot, id, type, data_text);
		else
			sse_conn_send(c, slot, id, type, data_text);
	}
}

/* "<id> <json>" published by rt_publish on channel nchat:rt:<topic>. */
static void on_pmessage(struct sse_hub *hub, const char *channel, const char *payload)
{
	const char *sp = strchr(payload, ' ');
	struct topic *t;
	json_t *ev, *data;
	const char *type;
	char id[48], *data_text;

	if (strncmp(channel, RT_CHANNEL_PREFIX, strlen(RT_CHANNEL_PREFIX)) != 0 || sp == NULL ||
	    (size_t)(sp - payload) >= sizeof(id))
		return;
	t = sse_topic_find(hub, channel + strlen(RT_CHANNEL_PREFIX));
	if (t == NULL)
		return; /* nobody here listens to it */
	snprintf(id, sizeof(id), "%.*s", (int)(sp - payload), payload);
	snprintf(t->seen_id, sizeof(t->seen_id), "%s", id);
	ev = json_loads(sp + 1, 0, NULL);
	type = json_string_value(json_object_get(ev, "type"));
	data = json_object_get(ev, "data");
	if (type != NULL && data != NULL) {
		data_text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
		if (data_text != NULL)
			deliver(hub, t, id, type, data, data_text);
		free(data_text);
	}
	json_decref(ev);
}


/* ------------------------------------------------------------------ */
/* Redis                                                               */
/* ------------------------------------------------------------------ */


/*
 * A connection that has received nothing yet on a topic has no position to
 * replay from.  If this hub saw an event of the topic live before the
 * outage, nothing after that one reached anybody here, so that event is
 * the connection's position: the replay brings exactly what was missed.
 * Otherwise nothing marks where the connection stood: it is told to
 * refetch (event "events.resync", data {"topics": ["user"|"stream", ...]}).
 * True when c needs that event.
 */
static bool adopt_outage_positions(struct sse_conn *c, json_t *unknown)
{
	bool any = false;

	for (int i = 0; i < c->n_topics; i++) {
		struct topic *t = c->topics[i];

		if (c->positions[i][0] != '\0')
			continue;
		if (t->seen_id[0] != '\0') {
			snprintf(c->positions[i], sizeof(c->positions[i]), "%s", t->seen_id);
			continue;
		}
		json_array_append_new(unknown, json_string(strncmp(t->name, "user:", 5) == 0 ? "user"
											 : "stream"));
		any = true;
	}
	return any;
}

/*
 * The pattern subscription is active again after Redis went away: whatever
 * was published meanwhile is in the replay log, so every stream catches up
 * from its own position (live events arriving during that replay are
 * queued and de-duplicated by id as on a reconnect); a stream without one
 * either adopts the topic's last live event as its position or is told to
 * refetch (adopt_outage_positions).
 */
static void resume_after_outage(struct sse_hub *hub)
{
	struct sse_conn *c, *next;

	hub->lost_redis = false;
	for (c = hub->all; c != NULL; c = next) {
		json_t *unknown;
		bool resync;

		next = c->all_next;
		if (c->replay_pending != 0)
			continue;
		unknown = json_array();
		if (unknown == NULL)
			fatal("out of memory (sse resync)");
		resync = adopt_outage_positions(c, unknown);
		if (resync) {
			json_t *o = json_pack("{s:O}", "topics", unknown);
			char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

			if (text == NULL)
				fatal("out of memory (sse resync)");
			/* a slow client may be dropped by the write: hold c's memory meanwhile */
			c->replay_pending++;
			sse_conn_send(c, -1, NULL, "events.resync", text);
			c->replay_pending--;
			free(text);
			json_decref(o);
		}
		json_decref(unknown);
		if (c->dead) {
			if (c->replay_pending == 0)
				free(c);
			continue;
		}
		sse_start_replay(hub, c);
	}
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	redisReply *rep = r;
	struct sse_hub *hub = privdata;

	(void)ac;
	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 3 &&
	    rep->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(rep->element[0]->str, "psubscribe") == 0) {
		if (hub->lost_redis)
			resume_after_outage(hub);
		return;
	}
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 4)
		return;
	if (strcmp(rep->element[0]->str, "pmessage") == 0 &&
	    rep->element[2]->type == REDIS_REPLY_STRING && rep->element[3]->type == REDIS_REPLY_STRING)
		on_pmessage(hub, rep->element[2]->str, rep->element[3]->str);
}

static void schedule_reconnect(struct sse_hub *hub)
{
	struct timeval tv = {RECONNECT_MS / 1000, (RECONNECT_MS % 1000) * 1000};

	if (hub->reconnect != NULL && !hub->shutting_down)
		evtimer_add(hub->reconnect, &tv);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct sse_hub *hub = ac->data;

	if (hub == NULL)
		return;
	if (ac == hub->sub)
		hub->sub = NULL;
	if (ac == hub->cmd)
		hub->cmd = NULL;
	hub->lost_redis = true;
	if (status != REDIS_OK)
		log_warn("sse: redis connection lost (%s); live events pause", ac->errstr);
	/* One of the pair went away: drop the other too and reconnect both. */
	if (hub->sub != NULL) {
		redisAsyncContext *o = hub->sub;
		hub->sub = NULL;
		o->data = NULL;
		redisAsyncDisconnect(o);
	}
	if (hub->cmd != NULL) {
		redisAsyncContext *o = hub->cmd;
		hub->cmd = NULL;
		o->data = NULL;
		redisAsyncDisconnect(o);
	}
	schedule_reconnect(hub);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct sse_hub *hub = ac->data;

	if (hub == NULL || status == REDIS_OK)
		return;
	hub->lost_redis = true;
	log_warn("sse: cannot connect to redis: %s", ac->errstr);
	if (ac == hub->sub)
		hub->sub = NULL;
	if (ac == hub->cmd)
		hub->cmd = NULL;
	schedule_reconnect(hub);
}

static redisAsyncContext *open_async(struct sse_hub *hub)
{
	redisAsyncContext *ac = redisAsyncConnect(hub->host, hub->port);

	if (ac == NULL)
		return NULL;
	if (ac->err) {
		log_warn("sse: redis: %s", ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = hub;
	redisLibeventAttach(ac, hub->base);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (hub->password != NULL)
		redisAsyncCommand(ac, NULL, NULL, "AUTH %s", hub->password);
	return ac;
}

void sse_redis_connect(struct sse_hub *hub)
{
	if (hub->sub == NULL) {
		hub->sub = open_async(hub);
		if (hub->sub != NULL)
			redisAsyncCommand(hub->sub, on_sub_reply, hub, "PSUBSCRIBE %s*", RT_CHANNEL_PREFIX);
	}
	if (hub->cmd == NULL) {
		hub->cmd = open_async(hub);
		if (hub->cmd != NULL && hub->db != 0)
			redisAsyncCommand(hub->cmd, NULL, NULL, "SELECT %d", hub->db);
	}
	if (hub->sub == NULL || hub->cmd == NULL)
		schedule_reconnect(hub);
}

void sse_on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sse_redis_connect(arg);
}
