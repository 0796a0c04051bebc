/*
 * presence.c - call presence and the busy flag in Redis (see presence.h).
 *
 * Everything here is best effort: the writes are queued and sent after the
 * response (rds_append); a failed command is logged at debug level and
 * forgotten, because presence is derived state that the next join,
 * webhook or sweep writes again, and it expires on its own.
 */
#include "realtime/presence.h"
#include "store/cache.h"
#include "core/log.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRESENCE_CALL_PREFIX "nchat:presence:call:"
#define PRESENCE_BUSY_PREFIX "nchat:busy:"

/*
 * Queue a command (rds_append): presence writes go out together, after the
 * response, in one round trip.  false when Redis is unavailable.
 */
static bool run(struct nc_worker *w, const char **argv, int argc)
{
	bool ok;

	if (w == NULL || !w->rds_ok)
		return false;
	ok = rds_append(&w->rds, argc, argv, NULL);
	if (!ok)
		log_debug("presence: %s not queued: redis unavailable", argv[0]);
	return ok;
}

/* Delete busy:<user> only while it still points at call_id (atomic). */
static const char unbusy_lua[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
	"return 0\n";

static void unbusy(struct nc_worker *w, const char *call_id, const char *user_id)
{
	char busy[96];
	const char *argv[5];

	snprintf(busy, sizeof(busy), PRESENCE_BUSY_PREFIX "%s", user_id);
	argv[0] = "EVAL";
	argv[1] = unbusy_lua;
	argv[2] = "1";
	argv[3] = busy;
	argv[4] = call_id;
	run(w, argv, 5);
}

void presence_join(struct nc_worker *w, const char *call_id, const char *user_id)
{
	char set[96], busy[96], ttl[16];
	const char *argv[6];

	if (w == NULL || !w->rds_ok || user_id == NULL)
		return;
	snprintf(set, sizeof(set), PRESENCE_CALL_PREFIX "%s", call_id);
	snprintf(busy, sizeof(busy), PRESENCE_BUSY_PREFIX "%s", user_id);
	snprintf(ttl, sizeof(ttl), "%d", w->cfg->presence_ttl_s);
	argv[0] = "SADD", argv[1] = set, argv[2] = user_id;
	if (!run(w, argv, 3))
		return;
	argv[0] = "EXPIRE", argv[1] = set, argv[2] = ttl;
	run(w, argv, 3);
	argv[0] = "SET", argv[1] = busy, argv[2] = call_id, argv[3] = "EX", argv[4] = ttl;
	run(w, argv, 5);
}

void presence_leave(struct nc_worker *w, const char *call_id, const char *user_id)
{
	char set[96];
	const char *argv[3];

	if (w == NULL || !w->rds_ok || user_id == NULL)
		return;
	snprintf(set, sizeof(set), PRESENCE_CALL_PREFIX "%s", call_id);
	argv[0] = "SREM", argv[1] = set, argv[2] = user_id;
	if (run(w, argv, 3))
		unbusy(w, call_id, user_id);
}

void presence_end_call(struct nc_worker *w, const char *call_id, json_t *user_ids)
{
	char set[96];
	const char *argv[2];
	json_t *u;
	size_t i;

	if (w == NULL || !w->rds_ok)
		return;
	snprintf(set, sizeof(set), PRESENCE_CALL_PREFIX "%s", call_id);
	argv[0] = "DEL", argv[1] = set;
	if (!run(w, argv, 2))
		return;
	json_array_foreach(user_ids, i, u)
		if (json_is_string(u))
			unbusy(w, call_id, json_string_value(u));
}

int presence_annotate(struct nc_worker *w, const char *call_id, json_t *participants)
{
	char set[96];
	struct nc_error err = {0};
	redisReply *members, *busy = NULL;
	const char **argv;
	char **keys;
	size_t n = json_array_size(participants), i;
	json_t *p;
	int rc = -1;

	if (w == NULL || !w->rds_ok || n == 0)
		return -1;
	snprintf(set, sizeof(set), PRESENCE_CALL_PREFIX "%s", call_id);
	members = rds_cmd(&w->rds, &err, "SMEMBERS %s", set);
	if (members == NULL || members->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(members);
		return -1;
	}
	argv = xcalloc(n + 1, sizeof(*argv));
	keys = xcalloc(n, sizeof(*keys));
	argv[0] = "MGET";
	json_array_foreach(participants, i, p) {
		const char *uid = json_string_value(json_object_get(p, "userId"));

		keys[i] = xasprintf(PRESENCE_BUSY_PREFIX "%s", uid ? uid : "-");
		argv[i + 1] = keys[i];
	}
	busy = rds_cmdv(&w->rds, (int)n + 1, argv, NULL, &err);
	if (busy != NULL && busy->type == REDIS_REPLY_ARRAY && busy->elements == n) {
		json_array_foreach(participants, i, p) {
			const char *uid = json_string_value(json_object_get(p, "userId"));
			bool present = false;

			for (size_t k = 0; uid != NULL && k < members->elements; k++)
				if (members->element[k]->type == REDIS_REPLY_STRING &&
				    strcmp(members->element[k]->str, uid) == 0)
					present = true;
			json_object_set_new(p, "present", json_boolean(present));
			json_object_set_new(p, "busy",
					    json_boolean(busy->element[i]->type == REDIS_REPLY_STRING));
		}
		rc = 0;
	}
	freeReplyObject(busy);
	freeReplyObject(members);
	for (i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	free(argv);
	return rc;
}
