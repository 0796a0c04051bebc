/*
 * sse.c - the Server-Sent Events hub (see sse.h).
 *
 * Everything here except api_events runs on the loop thread.  The hub keeps:
 *   - a hash of topics ("user:<id>", "stream:<id>"), each with the list of
 *     this instance's connections subscribed to it;
 *   - one Redis connection in pattern-subscribe mode (nchat:rt:*), so every
 *     event published by any instance reaches every instance at once and no
 *     per-topic SUBSCRIBE can race with a client attaching;
 *   - one Redis command connection for replays (XRANGE from Last-Event-ID).
 *
 * A reconnecting client's replay and the live feed are stitched together by
 * id: while its replay is outstanding, live events for the connection are
 * queued; afterwards the queue is flushed, skipping ids already replayed.
 *
 * Stream reactions are batched per topic (SSE_REACTION_BATCH_MS), so a burst
 * of reactions costs each client a few small events per second at most.
 *
 * Connection lifetime: libevent calls our close callback when a client goes
 * away.  When we end a stream ourselves we clear the callback first.  A
 * connection with a replay in flight is only marked dead and freed when the
 * last reply comes back, because hiredis still holds it as privdata.
 */
#include "http/sse.h"
#include "core/uuid.h"
#include "store/cache.h"
#include "http/http.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/worker.h"
#include "http/auth.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC_BUCKETS 4096
#define REPLAY_MAX 1000
#define MAX_QUEUED 256
#define RECONNECT_MS 1000
#define ANON_BUCKETS 1024

struct topic;

/* Open anonymous event streams from one client address. */
struct anon_count {
	char addr[64];
	int n;
	struct anon_count *next;
};

struct queued_ev {
	int slot;          /* topic slot of the connection the event belongs to */
	char id[48];
	char *type;
	char *data;        /* JSON text */
	struct queued_ev *next;
};

struct sse_conn {
	struct sse_hub *hub;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	int n_topics;
	struct topic *topics[SSE_MAX_TOPICS];
	struct sse_conn *t_next[SSE_MAX_TOPICS], *t_prev[SSE_MAX_TOPICS];
	struct sse_conn *all_next, *all_prev;
	char positions[SSE_MAX_TOPICS][48];
	char user_id[37];
	char anon_addr[64];          /* anonymous viewer: its client address (counted) */
	struct event *exp_timer;
	int replay_pending;          /* XRANGE replies still to come */
	bool replay_failed;
	struct queued_ev *q_head, *q_tail;
	int q_len;
	bool dead;                   /* detached; free when replay_pending is 0 */
};

struct topic {
	char *name;
	struct topic *hash_next;
	struct sse_conn *conns;
	size_t n_conns;
	char seen_id[48];            /* last event of this topic that reached this hub live */
	/* pending reaction batch */
	json_t *batch;               /* reactionType -> count */
	char batch_id[48];
	bool batch_queued;
	struct topic *batch_next;
};

struct sse_hub {
	struct event_base *base;
	const struct nc_config *cfg;
	struct topic *buckets[TOPIC_BUCKETS];
	struct sse_conn *all;
	size_t n_conns;
	bool shutting_down;
	bool lost_redis;             /* the subscription dropped since the last (re)subscribe */
	struct anon_count *anon[ANON_BUCKETS]; /* anonymous streams per client address */
	struct event *heartbeat;
	struct event *batch_timer;
	struct topic *batch_list;
	/* Redis */
	char *host, *password;
	int port, db;
	redisAsyncContext *sub, *cmd;
	struct event *reconnect;
};

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

/* The id line of an event for c: every topic's position. */
static void format_id(const struct sse_conn *c, char *out, size_t outlen)
{
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < c->n_topics; i++) {
		const char *name = c->topics[i]->name;
		int n;

		if (c->positions[i][0] == '\0')
			continue;
		n = snprintf(out + off, outlen - off, "%s%c%s", off ? "," : "",
			     strncmp(name, "user:", 5) == 0 ? 'u' : 's', c->positions[i]);
		if (n < 0 || (size_t)n >= outlen - off)
			return;
		off += (size_t)n;
	}
}

/* ------------------------------------------------------------------ */
/* Topics                                                              */
/* ------------------------------------------------------------------ */

static unsigned hash_str(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % TOPIC_BUCKETS;
}

static struct topic *topic_find(struct sse_hub *hub, const char *name)
{
	for (struct topic *t = hub->buckets[hash_str(name)]; t != NULL; t = t->hash_next)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

static struct topic *topic_get(struct sse_hub *hub, const char *name)
{
	struct topic *t = topic_find(hub, name);
	unsigned h;

	if (t != NULL)
		return t;
	h = hash_str(name);
	t = xcalloc(1, sizeof(*t));
	t->name = xstrdup(name);
	t->hash_next = hub->buckets[h];
	hub->buckets[h] = t;
	return t;
}

static void topic_release(struct sse_hub *hub, struct topic *t)
{
	struct topic **pp;

	if (t->n_conns > 0 || t->batch_queued)
		return;
	for (pp = &hub->buckets[hash_str(t->name)]; *pp != NULL; pp = &(*pp)->hash_next) {
		if (*pp == t) {
			*pp = t->hash_next;
			break;
		}
	}
	json_decref(t->batch);
	free(t->name);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

static void queue_free(struct sse_conn *c)
{
	while (c->q_head != NULL) {
		struct queued_ev *q = c->q_head;
		c->q_head = q->next;
		free(q->type);
		free(q->data);
		free(q);
	}
	c->q_tail = NULL;
	c->q_len = 0;
}

/* ------------------------------------------------------------------ */
/* Anonymous viewers per client address                                */
/* ------------------------------------------------------------------ */

/*
 * Anonymous viewers need no account, so their streams are capped per client
 * address (SSE_MAX_ANONYMOUS_PER_ADDRESS; the address is the one rate limits
 * use, X-Forwarded-For resolved through TRUSTED_PROXIES), as signed-in users
 * are per user (SSE_MAX_PER_USER).
 */
static struct anon_count **anon_slot(struct sse_hub *hub, const char *addr)
{
	struct anon_count **pp = &hub->anon[hash_str(addr) % ANON_BUCKETS];

	while (*pp != NULL && strcmp((*pp)->addr, addr) != 0)
		pp = &(*pp)->next;
	return pp;
}

static bool anon_full(struct sse_hub *hub, const char *addr)
{
	struct anon_count *a = *anon_slot(hub, addr);

	return a != NULL && a->n >= hub->cfg->sse_max_anon_per_addr;
}

static void anon_take(struct sse_hub *hub, struct sse_conn *c, const char *addr)
{
	struct anon_count **pp = anon_slot(hub, addr);

	if (*pp == NULL) {
		*pp = xcalloc(1, sizeof(**pp));
		snprintf((*pp)->addr, sizeof((*pp)->addr), "%s", addr);
	}
	(*pp)->n++;
	snprintf(c->anon_addr, sizeof(c->anon_addr), "%s", addr);
}

static void anon_release(struct sse_hub *hub, struct sse_conn *c)
{
	struct anon_count **pp, *a;

	if (c->anon_addr[0] == '\0')
		return;
	pp = anon_slot(hub, c->anon_addr);
	a = *pp;
	c->anon_addr[0] = '\0';
	if (a != NULL && --a->n <= 0) {
		*pp = a->next;
		free(a);
	}
}

/* Unlink c from the hub; its memory is freed now or when its replay ends. */
static void conn_detach(struct sse_conn *c)
{
	struct sse_hub *hub = c->hub;

	if (c->dead)
		return;
	c->dead = true;
	for (int i = 0; i < c->n_topics; i++) {
		struct topic *t = c->topics[i];

		if (c->t_prev[i] != NULL) {
			/* t_prev points at the previous conn; find our slot in it */
			struct sse_conn *p = c->t_prev[i];
			for (int j = 0; j < p->n_topics; j++)
				if (p->topics[j] == t)
					p->t_next[j] = c->t_next[i];
		} else {
			t->conns = c->t_next[i];
		}
		if (c->t_next[i] != NULL) {
			struct sse_conn *n = c->t_next[i];
			for (int j = 0; j < n->n_topics; j++)
				if (n->topics[j] == t)
					n->t_prev[j] = c->t_prev[i];
		}
		t->n_conns--;
		topic_release(hub, t);
		c->topics[i] = NULL;
	}
	if (c->all_prev != NULL)
		c->all_prev->all_next = c->all_next;
	else
		hub->all = c->all_next;
	if (c->all_next != NULL)
		c->all_next->all_prev = c->all_prev;
	hub->n_conns--;
	anon_release(hub, c);
	if (c->exp_timer != NULL) {
		event_free(c->exp_timer);
		c->exp_timer = NULL;
	}
	queue_free(c);
	c->req = NULL;
	c->evcon = NULL;
	if (c->replay_pending == 0)
		free(c);
}

/* End c's response ourselves: polite (final chunk) or forced (slow client). */
static void conn_end(struct sse_conn *c, bool force)
{
	struct evhttp_request *req = c->req;
	struct evhttp_connection *evcon = c->evcon;

	if (c->dead)
		return;
	if (evcon != NULL)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	conn_detach(c);
	if (force && evcon != NULL)
		evhttp_connection_free(evcon);
	else if (req != NULL)
		evhttp_send_reply_end(req);
}

static void on_client_close(struct evhttp_connection *evcon, void *arg)
{
	struct sse_conn *c = arg;
	struct evhttp_request *req = c->req;

	(void)evcon;
	conn_detach(c);
	/* A request libevent already detached from its connection is ours to free. */
	if (req != NULL && evhttp_request_get_connection(req) == NULL)
		evhttp_send_reply_end(req);
}

static size_t pending_bytes(const struct sse_conn *c)
{
	struct bufferevent *bev = c->evcon ? evhttp_connection_get_bufferevent(c->evcon) : NULL;

	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Write raw text to c; drops c when its unsent output is past the limit. */
static void conn_write(struct sse_conn *c, const char *text, size_t len)
{
	struct evbuffer *buf;

	if (c->dead || c->req == NULL)
		return;
	if (pending_bytes(c) + len > (size_t)c->hub->cfg->sse_max_buffer_bytes) {
		log_warn("sse: dropping a slow client (%zu bytes unsent)", pending_bytes(c));
		metrics_inc(M_SSE_DROPPED_SLOW);
		conn_end(c, true);
		return;
	}
	buf = evbuffer_new();
	if (buf == NULL || evbuffer_add(buf, text, len) != 0)
		fatal("out of memory (sse)");
	evhttp_send_reply_chunk(c->req, buf);
	evbuffer_free(buf);
}

/* Send one event to c, advancing c's position in topic slot i. */
static void conn_send(struct sse_conn *c, int slot, const char *id, const char *type,
		      const char *data)
{
	char idline[160];
	char *text;
	int n;

	if (slot >= 0 && id != NULL && *id != '\0')
		snprintf(c->positions[slot], sizeof(c->positions[slot]), "%s", id);
	format_id(c, idline, sizeof(idline));
	n = asprintf(&text, "%s%s%sevent: %s\ndata: %s\n\n", idline[0] ? "id: " : "", idline,
		     idline[0] ? "\n" : "", type, data);
	if (n < 0)
		fatal("out of memory (sse event)");
	conn_write(c, text, (size_t)n);
	free(text);
}

static int slot_of(const struct sse_conn *c, const struct topic *t)
{
	for (int i = 0; i < c->n_topics; i++)
		if (c->topics[i] == t)
			return i;
	return -1;
}

static void conn_queue(struct sse_conn *c, int slot, const char *id, const char *type,
		       const char *data)
{
	struct queued_ev *q;

	if (c->q_len >= MAX_QUEUED) {
		log_warn("sse: replay queue overflow; dropping the client so it reconnects");
		conn_end(c, true);
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->slot = slot;
	snprintf(q->id, sizeof(q->id), "%s", id);
	q->type = xstrdup(type);
	q->data = xstrdup(data);
	if (c->q_tail != NULL)
		c->q_tail->next = q;
	else
		c->q_head = q;
	c->q_tail = q;
	c->q_len++;
}

/* ------------------------------------------------------------------ */
/* Delivery                                                            */
/* ------------------------------------------------------------------ */

static bool is_reaction(const char *type)
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

static void on_batch_timer(evutil_socket_t fd, short what, void *arg)
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
				int slot = slot_of(c, t);

				next = c->t_next[slot];
				if (c->replay_pending == 0)
					conn_send(c, slot, t->batch_id, "stream.reaction", data);
			}
			free(data);
		}
		json_decref(t->batch);
		t->batch = NULL;
		t->batch_queued = false;
		topic_release(hub, t);
	}
}

/* A live event for topic t (from the pattern subscription). */
static void deliver(struct sse_hub *hub, struct topic *t, const char *id, const char *type,
		    json_t *data, const char *data_text)
{
	struct sse_conn *c, *next;

	if (is_reaction(type)) {
		batch_add(hub, t, id, data);
		return;
	}
	for (c = t->conns; c != NULL; c = next) {
		int slot = slot_of(c, t);

		next = c->t_next[slot];
		if (c->replay_pending > 0)
			conn_queue(c, slot, id, type, data_text);
		else
			conn_send(c, slot, id, type, data_text);
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
	t = topic_find(hub, channel + strlen(RT_CHANNEL_PREFIX));
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

static void redis_connect(struct sse_hub *hub);
static void start_replay(struct sse_hub *hub, struct sse_conn *c);

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
			conn_send(c, -1, NULL, "events.resync", text);
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
		start_replay(hub, c);
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

static void redis_connect(struct sse_hub *hub)
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

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	redis_connect(arg);
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
			conn_send(c, q->slot, q->id, q->type, q->data);
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
			if (type != NULL && data != NULL && is_reaction(type)) {
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
					conn_send(c, rc->slot, e->element[0]->str, type, text);
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
				conn_send(c, rc->slot, last_reaction_id, "stream.reaction", text);
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
			conn_send(c, -1, NULL, "replay.unavailable", "{}");
		replay_finish(c);
	}
}

static void start_replay(struct sse_hub *hub, struct sse_conn *c)
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
		conn_send(c, -1, NULL, "replay.unavailable", "{}");
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct sse_hub *hub = arg;
	struct sse_conn *c, *next;

	(void)fd;
	(void)what;
	for (c = hub->all; c != NULL; c = next) {
		next = c->all_next;
		conn_write(c, ":hb\n\n", 5);
	}
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
	struct sse_conn *c = arg;

	(void)fd;
	(void)what;
	conn_send(c, -1, NULL, "token.expired", "{}");
	conn_end(c, false);
}

/* ------------------------------------------------------------------ */
/* Public                                                              */
/* ------------------------------------------------------------------ */

struct sse_hub *sse_hub_new(struct event_base *base, const struct nc_config *cfg)
{
	struct sse_hub *hub = xcalloc(1, sizeof(*hub));
	struct timeval hb = {cfg->sse_heartbeat_s, 0};
	struct timeval bt = {cfg->sse_reaction_batch_ms / 1000, (cfg->sse_reaction_batch_ms % 1000) * 1000};

	hub->base = base;
	hub->cfg = cfg;
	hub->heartbeat = event_new(base, -1, EV_PERSIST, on_heartbeat, hub);
	hub->batch_timer = event_new(base, -1, EV_PERSIST, on_batch_timer, hub);
	hub->reconnect = evtimer_new(base, on_reconnect_timer, hub);
	if (hub->heartbeat == NULL || hub->batch_timer == NULL || hub->reconnect == NULL ||
	    event_add(hub->heartbeat, &hb) != 0 || event_add(hub->batch_timer, &bt) != 0)
		fatal("sse: cannot create timers");
	if (cfg->redis_url != NULL &&
	    rds_parse_url(cfg->redis_url, &hub->host, &hub->port, &hub->password, &hub->db) == 0)
		redis_connect(hub);
	return hub;
}

int sse_hub_attach(struct sse_hub *hub, struct evhttp_request *evreq, const struct sse_spec *spec)
{
	struct sse_conn *c;
	struct evkeyvalq *out = evhttp_request_get_output_headers(evreq);
	struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);

	if (hub->shutting_down || evcon == NULL)
		return 503;
	if (hub->n_conns >= (size_t)hub->cfg->sse_max_connections)
		return 503;
	if (spec->user_id[0] != '\0') {
		char name[64];
		struct topic *t;

		snprintf(name, sizeof(name), "user:%s", spec->user_id);
		t = topic_find(hub, name);
		if (t != NULL && t->n_conns >= (size_t)hub->cfg->sse_max_per_user)
			return 429;
	} else if (anon_full(hub, spec->client_addr)) {
		return 429;
	}
	c = xcalloc(1, sizeof(*c));
	c->hub = hub;
	c->req = evreq;
	c->evcon = evcon;
	snprintf(c->user_id, sizeof(c->user_id), "%s", spec->user_id);
	if (spec->user_id[0] == '\0')
		anon_take(hub, c, spec->client_addr);
	c->n_topics = spec->n_topics;
	for (int i = 0; i < spec->n_topics; i++) {
		struct topic *t = topic_get(hub, spec->topics[i]);

		c->topics[i] = t;
		c->t_next[i] = t->conns;
		if (t->conns != NULL) {
			int j = slot_of(t->conns, t);
			t->conns->t_prev[j] = c;
		}
		t->conns = c;
		t->n_conns++;
		snprintf(c->positions[i], sizeof(c->positions[i]), "%s", spec->positions[i]);
	}
	c->all_next = hub->all;
	if (hub->all != NULL)
		hub->all->all_prev = c;
	hub->all = c;
	hub->n_conns++;

	evhttp_add_header(out, "Content-Type", "text/event-stream; charset=utf-8");
	evhttp_add_header(out, "X-Accel-Buffering", "no");
	evhttp_add_header(out, "Connection", "close");
	/* Idle is normal here: heartbeats keep the connection, not reads. */
	evhttp_connection_set_timeout(evcon, hub->cfg->sse_heartbeat_s * 4 + 30);
	evhttp_connection_set_closecb(evcon, on_client_close, c);
	evhttp_send_reply_start(evreq, 200, "OK");
	conn_write(c, "retry: 2000\n:ok\n\n", 17);
	if (spec->exp > 0) {
		struct timeval tv = {(time_t)(spec->exp - now_unix()), 0};
		if (tv.tv_sec < 1)
			tv.tv_sec = 1;
		c->exp_timer = evtimer_new(hub->base, on_expiry, c);
		if (c->exp_timer == NULL || evtimer_add(c->exp_timer, &tv) != 0)
			fatal("sse: cannot add expiry timer");
	}
	start_replay(hub, c);
	return 0;
}

size_t sse_hub_count(const struct sse_hub *hub)
{
	return hub ? hub->n_conns : 0;
}

void sse_hub_shutdown(struct sse_hub *hub)
{
	if (hub == NULL || hub->shutting_down)
		return;
	hub->shutting_down = true;
	while (hub->all != NULL) {
		struct sse_conn *c = hub->all;
		conn_send(c, -1, NULL, "server.shutdown", "{}");
		conn_end(c, false);
	}
	event_del(hub->heartbeat);
	event_del(hub->batch_timer);
	event_del(hub->reconnect);
	if (hub->sub != NULL) {
		hub->sub->data = NULL;
		redisAsyncDisconnect(hub->sub);
		hub->sub = NULL;
	}
	if (hub->cmd != NULL) {
		hub->cmd->data = NULL;
		redisAsyncDisconnect(hub->cmd);
		hub->cmd = NULL;
	}
}

void sse_hub_free(struct sse_hub *hub)
{
	if (hub == NULL)
		return;
	sse_hub_shutdown(hub);
	/* Flush batches that never went out; topics are empty by now. */
	while (hub->batch_list != NULL) {
		struct topic *t = hub->batch_list;
		hub->batch_list = t->batch_next;
		t->batch_queued = false;
		topic_release(hub, t);
	}
	for (int i = 0; i < ANON_BUCKETS; i++)
		while (hub->anon[i] != NULL) {
			struct anon_count *a = hub->anon[i];
			hub->anon[i] = a->next;
			free(a);
		}
	event_free(hub->heartbeat);
	event_free(hub->batch_timer);
	event_free(hub->reconnect);
	free(hub->host);
	free(hub->password);
	free(hub);
}

/* ------------------------------------------------------------------ */
/* GET /api/events (worker)                                            */
/* ------------------------------------------------------------------ */

/*
 * May this caller follow stream id?  Exactly the read rule of the REST
 * endpoints for the same data (streams_open's STREAM_NEED_VIEW, used by
 * GET /api/streams/{id}/chat): the broadcaster, a member of the stream's
 * channel, staff (admin, moderator), or anyone - signed in or not - while
 * the stream is live and STREAMS_PUBLIC_WHILE_LIVE is on.  Checked here in
 * its own SQL predicate, not through a policy, so a policy change cannot
 * open the event stream.  200; 404 (no such stream, or a signed-in caller
 * who may not see it: not confirmed to exist); 401 (anonymous, as the REST
 * chat read says); 503 / 500.
 */
static int sse_stream_readable(struct req *r, const char *stream_id)
{
	static const char sql[] =
		"SELECT ($3::boolean AND s.status = 'live')"
		" OR ($2::uuid IS NOT NULL AND ($4::boolean OR s.broadcaster_id = $2::uuid"
		"     OR EXISTS (SELECT 1 FROM nchat_channel_members m"
		"                WHERE m.channel_id = s.channel_id AND m.user_id = $2::uuid)))"
		" FROM nchat_streams s WHERE s.id = $1";
	struct nc_error err = {0};
	const char *params[4] = {
		stream_id, r->authed ? r->user.user_id : NULL,
		r->cfg->streams_public_live ? "true" : "false",
		r->authed && auth_is_staff(&r->user) ? "true" : "false",
	};
	PGresult *res = db_exec_service(&r->w->db, sql, 4, params, &err);
	int status;

	if (res == NULL)
		return err.code == NC_EUNAVAILABLE ? 503 : 500;
	if (PQntuples(res) != 1)
		status = 404;
	else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		status = 200;
	else
		status = r->authed ? 404 : 401;
	PQclear(res);
	return status;
}

void api_events(struct req *r)
{
	struct sse_spec *spec;
	char *stream = req_query(r, "stream");
	char *qlast = req_query(r, "lastEventId");
	const char *last = req_header(r, "Last-Event-ID");

	if (stream != NULL && !is_uuid(stream)) {
		resp_error(r, NC_EBADREQ, "stream must be a UUID");
		goto out;
	}
	if (!r->authed && stream == NULL) {
		resp_error(r, NC_EUNAUTH, "missing bearer token");
		goto out;
	}
	if (stream != NULL) {
		int st = sse_stream_readable(r, stream);
		if (st == 404) {
			resp_error(r, NC_ENOTFOUND, "stream not found");
			goto out;
		}
		if (st == 401) {
			resp_error(r, NC_EUNAUTH, "sign in to follow this stream");
			goto out;
		}
		if (st != 200) {
			resp_error(r, st == 503 ? NC_EUNAVAILABLE : NC_EINTERNAL, "cannot check the stream");
			goto out;
		}
	}
	spec = xcalloc(1, sizeof(*spec));
	if (r->authed) {
		snprintf(spec->user_id, sizeof(spec->user_id), "%s", r->user.user_id);
		spec->exp = r->user.exp;
		snprintf(spec->topics[spec->n_topics++], sizeof(spec->topics[0]), "user:%s",
			 r->user.user_id);
	}
	if (stream != NULL)
		snprintf(spec->topics[spec->n_topics++], sizeof(spec->topics[0]), "stream:%s", stream);
	sse_parse_last_event_id(last != NULL ? last : qlast, spec);
	free(r->sse);
	r->sse = spec;
	resp_raw(r, 200, "text/event-stream", NULL, 0);
out:
	free(stream);
	free(qlast);
}

const struct route events_routes[] = {
	{RM_GET, "/api/events", api_events, ROUTE_AUTH_OPTIONAL | ROUTE_QUERY_TOKEN, NULL},
	{0, NULL, NULL, 0, NULL},
};
