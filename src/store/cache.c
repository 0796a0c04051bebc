/*
 * cache.c - per-worker hiredis connection with timeouts and lazy reconnect.
 */
#include "store/cache.h"
#include "core/log.h"
#include "core/metrics.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RETRY_MS 250

int rds_parse_url(const char *url, char **host, int *port, char **password, int *db)
{
	const char *p, *at, *slash, *colon, *hend;
	long v;

	*host = NULL;
	*password = NULL;
	*port = 6379;
	*db = 0;
	if (url == NULL || strncasecmp(url, "redis://", 8) != 0)
		return -1;
	p = url + 8;
	slash = strchr(p, '/');
	hend = slash ? slash : p + strlen(p);
	at = memchr(p, '@', (size_t)(hend - p));
	if (at != NULL) {
		const char *c = memchr(p, ':', (size_t)(at - p));
		const char *pw = c ? c + 1 : p;
		if (at > pw)
			*password = xstrndup(pw, (size_t)(at - pw));
		p = at + 1;
	}
	colon = memchr(p, ':', (size_t)(hend - p));
	if (colon != NULL) {
		char portbuf[8];
		size_t pl = (size_t)(hend - colon - 1);
		if (pl == 0 || pl >= sizeof(portbuf))
			goto bad;
		memcpy(portbuf, colon + 1, pl);
		portbuf[pl] = '\0';
		if (parse_long(portbuf, 1, 65535, &v) != 0)
			goto bad;
		*port = (int)v;
	} else {
		colon = hend;
	}
	if (colon == p)
		goto bad;
	*host = xstrndup(p, (size_t)(colon - p));
	if (slash != NULL && slash[1] != '\0') {
		if (parse_long(slash + 1, 0, 15, &v) != 0)
			goto bad;
		*db = (int)v;
	}
	return 0;
bad:
	free(*host);
	free(*password);
	*host = *password = NULL;
	return -1;
}

int rds_init(struct rds_conn *r, const char *url, int timeout_ms)
{
	memset(r, 0, sizeof(*r));
	r->timeout_ms = timeout_ms;
	return rds_parse_url(url, &r->host, &r->port, &r->password, &r->db);
}

void rds_cleanup(struct rds_conn *r)
{
	if (r->pending > 0)
		(void)rds_flush(r);
	if (r->c != NULL)
		redisFree(r->c);
	free(r->host);
	free(r->password);
	memset(r, 0, sizeof(*r));
}

static void drop(struct rds_conn *r, const char *why)
{
	r->pending = 0;
	r->unsent = false;
	log_warn("redis: %s", why);
	metrics_inc(M_REDIS_ERRORS);
	if (r->c != NULL)
		redisFree(r->c);
	r->c = NULL;
	r->retry_after_ms = now_ms() + RETRY_MS;
}

static bool ensure(struct rds_conn *r)
{
	struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
	redisReply *rep;

	if (r->c != NULL)
		return true;
	if (r->host == NULL || now_ms() < r->retry_after_ms)
		return false;
	r->c = redisConnectWithTimeout(r->host, r->port, tv);
	if (r->c == NULL || r->c->err) {
		drop(r, r->c ? r->c->errstr : "out of memory");
		return false;
	}
	if (redisSetTimeout(r->c, tv) != REDIS_OK) {
		drop(r, "cannot set timeout");
		return false;
	}
	if (r->password != NULL) {
		rep = redisCommand(r->c, "AUTH %s", r->password);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
			freeReplyObject(rep);
			drop(r, "AUTH failed");
			return false;
		}
		freeReplyObject(rep);
	}
	if (r->db != 0) {
		rep = redisCommand(r->c, "SELECT %d", r->db);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
			freeReplyObject(rep);
			drop(r, "SELECT failed");
			return false;
		}
		freeReplyObject(rep);
	}
	return true;
}

bool rds_append(struct rds_conn *r, int argc, const char **argv, const size_t *lens)
{
	if (!ensure(r))
		return false;
	if (redisAppendCommandArgv(r->c, argc, argv, lens) != REDIS_OK) {
		drop(r, r->c->errstr[0] ? r->c->errstr : "cannot queue a command");
		return false;
	}
	r->pending++;
	r->unsent = true;
	return true;
}

bool rds_unsent(const struct rds_conn *r)
{
	return r->c != NULL && r->unsent;
}

int rds_send(struct rds_conn *r)
{
	int done = 0;

	if (r->c == NULL || r->pending == 0)
		return 0;
	while (!done) {
		if (redisBufferWrite(r->c, &done) != REDIS_OK) {
			drop(r, r->c->errstr[0] ? r->c->errstr : "cannot send");
			return -1;
		}
	}
	r->unsent = false;
	return 0;
}

int rds_flush(struct rds_conn *r)
{
	void *rep = NULL;
	int errors = 0;

	while (r->c != NULL && r->pending > 0) {
		if (redisGetReply(r->c, &rep) != REDIS_OK || rep == NULL) {
			drop(r, r->c->errstr[0] ? r->c->errstr : "no reply");
			return -1;
		}
		r->pending--;
		if (((redisReply *)rep)->type == REDIS_REPLY_ERROR) {
			log_debug("redis: a queued command failed: %s", ((redisReply *)rep)->str);
			errors++;
		}
		freeReplyObject(rep);
	}
	r->pending = 0;
	r->unsent = false;
	return errors;
}

/*
 * The reply of the command just appended, after the replies of the queued
 * ones before it: the first read writes the whole output buffer, so queued
 * writes and this command share one write and one round trip.
 */
static redisReply *reply_after_queued(struct rds_conn *r, struct nc_error *err)
{
	void *rep = NULL;

	r->pending++;
	r->unsent = true;
	while (r->c != NULL && r->pending > 1) {
		if (redisGetReply(r->c, &rep) != REDIS_OK || rep == NULL)
			break;
		r->pending--;
		if (((redisReply *)rep)->type == REDIS_REPLY_ERROR)
			log_debug("redis: a queued command failed: %s", ((redisReply *)rep)->str);
		freeReplyObject(rep);
		rep = NULL;
	}
	if (r->c != NULL && r->pending == 1 && redisGetReply(r->c, &rep) == REDIS_OK && rep != NULL) {
		r->pending = 0;
		r->unsent = false;
		return rep;
	}
	if (r->c != NULL)
		drop(r, r->c->errstr[0] ? r->c->errstr : "no reply");
	err_set(err, NC_EUNAVAILABLE, "redis unavailable");
	return NULL;
}

redisReply *rds_cmdv(struct rds_conn *r, int argc, const char **argv, const size_t *lens,
		     struct nc_error *err)
{
	redisReply *rep;

	if (!ensure(r)) {
		err_set(err, NC_EUNAVAILABLE, "redis unavailable");
		return NULL;
	}
	if (r->pending > 0) {
		if (redisAppendCommandArgv(r->c, argc, argv, lens) != REDIS_OK) {
			drop(r, r->c->errstr[0] ? r->c->errstr : "cannot queue a command");
			err_set(err, NC_EUNAVAILABLE, "redis unavailable");
			return NULL;
		}
		return reply_after_queued(r, err);
	}
	rep = redisCommandArgv(r->c, argc, argv, lens);
	if (rep == NULL) {
		drop(r, r->c->errstr);
		err_set(err, NC_EUNAVAILABLE, "redis unavailable");
	}
	return rep;
}

redisReply *rds_cmd(struct rds_conn *r, struct nc_error *err, const char *fmt, ...)
{
	redisReply *rep;
	va_list ap;
	int rc;

	if (!ensure(r)) {
		err_set(err, NC_EUNAVAILABLE, "redis unavailable");
		return NULL;
	}
	if (r->pending > 0) {
		va_start(ap, fmt);
		rc = redisvAppendCommand(r->c, fmt, ap);
		va_end(ap);
		if (rc != REDIS_OK) {
			drop(r, r->c->errstr[0] ? r->c->errstr : "cannot queue a command");
			err_set(err, NC_EUNAVAILABLE, "redis unavailable");
			return NULL;
		}
		return reply_after_queued(r, err);
	}
	va_start(ap, fmt);
	rep = redisvCommand(r->c, fmt, ap);
	va_end(ap);
	if (rep == NULL) {
		drop(r, r->c->errstr);
		err_set(err, NC_EUNAVAILABLE, "redis unavailable");
	}
	return rep;
}
