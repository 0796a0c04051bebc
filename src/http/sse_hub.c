/*
 * sse_hub.c - the Server-Sent Events hub (see sse.h; the files of the hub
 * are listed in sse_internal.h).
 *
 * Everything in the hub runs on the loop thread.  The hub keeps:
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
#include "http/sse_internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/cache.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

unsigned sse_hash_str(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % TOPIC_BUCKETS;
}

struct topic *sse_topic_find(struct sse_hub *hub, const char *name)
{
	for (struct topic *t = hub->buckets[sse_hash_str(name)]; t != NULL; t = t->hash_next)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

static struct topic *topic_get(struct sse_hub *hub, const char *name)
{
	struct topic *t = sse_topic_find(hub, name);
	unsigned h;

	if (t != NULL)
		return t;
	h = sse_hash_str(name);
	t = xcalloc(1, sizeof(*t));
	t->name = xstrdup(name);
	t->hash_next = hub->buckets[h];
	hub->buckets[h] = t;
	return t;
}

void sse_topic_release(struct sse_hub *hub, struct topic *t)
{
	struct topic **pp;

	if (t->n_conns > 0 || t->batch_queued)
		return;
	for (pp = &hub->buckets[sse_hash_str(t->name)]; *pp != NULL; pp = &(*pp)->hash_next) {
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
	struct anon_count **pp = &hub->anon[sse_hash_str(addr) % ANON_BUCKETS];

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
		sse_topic_release(hub, t);
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
void sse_conn_send(struct sse_conn *c, int slot, const char *id, const char *type,
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

int sse_slot_of(const struct sse_conn *c, const struct topic *t)
{
	for (int i = 0; i < c->n_topics; i++)
		if (c->topics[i] == t)
			return i;
	return -1;
}

void sse_conn_queue(struct sse_conn *c, int slot, const char *id, const char *type,
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
	sse_conn_send(c, -1, NULL, "token.expired", "{}");
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
	hub->batch_timer = event_new(base, -1, EV_PERSIST, sse_on_batch_timer, hub);
	hub->reconnect = evtimer_new(base, sse_on_reconnect_timer, hub);
	if (hub->heartbeat == NULL || hub->batch_timer == NULL || hub->reconnect == NULL ||
	    event_add(hub->heartbeat, &hb) != 0 || event_add(hub->batch_timer, &bt) != 0)
		fatal("sse: cannot create timers");
	if (cfg->redis_url != NULL &&
	    rds_parse_url(cfg->redis_url, &hub->host, &hub->port, &hub->password, &hub->db) == 0)
		sse_redis_connect(hub);
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
		t = sse_topic_find(hub, name);
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
			int j = sse_slot_of(t->conns, t);
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
	sse_start_replay(hub, c);
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
		sse_conn_send(c, -1, NULL, "server.shutdown", "{}");
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
		sse_topic_release(hub, t);
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
