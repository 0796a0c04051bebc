/*
 * sse_internal.h - what the files of the SSE hub share (private to
 * src/http/sse_*.c; nothing else includes it).  See http/sse.h for the
 * public side and sse_hub.c for the design.
 *
 *   sse_hub.c     topics, connections, per-address caps, timers, attach
 *   sse_redis.c   the pattern subscription, live delivery, reaction batches
 *   sse_replay.c  event ids, Last-Event-ID, replay from the Redis streams
 *   sse_events.c  GET /api/events (the worker side)
 */
#ifndef NC_SSE_INTERNAL_H
#define NC_SSE_INTERNAL_H

#include "http/sse.h"

#include <event2/util.h>
#include <jansson.h>

struct redisAsyncContext;
struct evhttp_connection;

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
	struct redisAsyncContext *sub, *cmd;
	struct event *reconnect;
};

/* sse_hub.c */
unsigned sse_hash_str(const char *s);
struct topic *sse_topic_find(struct sse_hub *hub, const char *name);
/* Free t if no connection and no pending batch holds it. */
void sse_topic_release(struct sse_hub *hub, struct topic *t);
/* c's topic slot of t, or -1. */
int sse_slot_of(const struct sse_conn *c, const struct topic *t);
/* Send one event to c, advancing c's position in topic slot (-1: none). */
void sse_conn_send(struct sse_conn *c, int slot, const char *id, const char *type,
		   const char *data);
/* Queue a live event while c's replay is outstanding. */
void sse_conn_queue(struct sse_conn *c, int slot, const char *id, const char *type,
		    const char *data);

/* sse_redis.c */
bool sse_is_reaction(const char *type);
void sse_on_batch_timer(evutil_socket_t fd, short what, void *arg);
void sse_on_reconnect_timer(evutil_socket_t fd, short what, void *arg);
/* (Re)open the subscription and the command connection. */
void sse_redis_connect(struct sse_hub *hub);

/* sse_replay.c: replay what c missed since its positions. */
void sse_start_replay(struct sse_hub *hub, struct sse_conn *c);

#endif
