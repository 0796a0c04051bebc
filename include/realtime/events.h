/*
 * events.h - what a state change tells the rest of the world.
 *
 *   audit_log      a row in nchat_rtc_audit_log for a privileged action, in
 *                  the caller's transaction (service context);
 *   rt_publish_*   a realtime event for SSE clients on every instance, sent
 *                  after the caller's transaction committed: appended to a
 *                  short per-topic replay log (a capped Redis stream, so a
 *                  client reconnecting with Last-Event-ID misses nothing) and
 *                  published on the topic's pub/sub channel; best effort (Redis
 *                  down loses the event, never the request);
 *   outbox_enqueue a signed outgoing webhook for the chat's own backend,
 *                  written to the durable outbox in the caller's transaction
 *                  and delivered later with retries.
 */
#ifndef NC_EVENTS_H
#define NC_EVENTS_H

#include "http/auth.h"
#include "core/common.h"
#include "core/config.h"
#include "store/db.h"
#include "http/sse.h"

#include <jansson.h>

struct nc_worker;

/* Channel and replay-stream names (RT_*) are the SSE hub's: http/sse.h. */

/* actor NULL = the system (webhooks, sweeps).  details borrowed, may be NULL. */
enum nc_err audit_log(struct db_conn *db, const struct principal *actor, const char *action,
		      const char *target_type, const char *target_id, json_t *details,
		      const char *request_id, struct nc_error *err) NC_MUSTCHECK;

/*
 * data is borrowed.  Queued (rds_append): sent with the request's other
 * best-effort Redis writes once its response is on its way.
 */
void rt_publish_user(struct nc_worker *w, const char *user_id, const char *type, json_t *data);
void rt_publish_stream(struct nc_worker *w, const char *stream_id, const char *type, json_t *data);
/* Generic form, sent at once: topic is "user:<id>" or "stream:<id>". 0 or -1. */
int rt_publish(struct nc_worker *w, const char *topic, const char *type, json_t *data);

/* One outbox row per configured OUTBOUND_WEBHOOK_URLS entry; payload borrowed. */
enum nc_err outbox_enqueue(struct db_conn *db, const struct nc_config *cfg, const char *event,
			   json_t *payload, struct nc_error *err) NC_MUSTCHECK;

/*
 * The configured OUTBOUND_WEBHOOK_URLS as a Postgres text[] literal
 * ("{}" when none), for statements that write their outbox rows
 * themselves (one row per URL, as outbox_enqueue does).  malloc'd.
 */
char *outbox_urls_literal(const struct nc_config *cfg);

#endif
