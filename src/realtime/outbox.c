/*
 * outbox.c - delivery of outgoing webhooks to the chat's own backend.
 *
 * State changes write rows into nchat_rtc_outbound_webhooks inside their own
 * transaction (outbox_enqueue, events.c), so an event is never lost between
 * "the call ended" and "the backend was told".  A periodic job on every
 * instance claims due rows with FOR UPDATE SKIP LOCKED (so instances never
 * deliver the same row at once), leases them by pushing next_attempt_at
 * forward, commits, and only then makes the HTTP calls: no transaction is
 * held open across the network.  A failed attempt is retried with
 * exponential back-off and jitter; after OUTBOUND_WEBHOOK_MAX_ATTEMPTS the
 * row becomes 'dead' and waits for an admin's replay.
 *
 * Each delivery is signed like this (receivers reject replays by checking
 * that t is recent):
 *   X-Nchat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 */
#include "realtime/outbox.h"
#include "core/log.h"
#include "store/db_row.h"
#include "http/worker.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 20
#define LEASE_S "120"
#define TIMEOUT_MS 5000L
#define MAX_BACKOFF_S 3600

static _Thread_local CURL *tl_curl;

void outbox_sign(const char *secret, int64_t t, const char *body, size_t len, char out[OUTBOX_SIG_LEN])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char ts[24];
	size_t tl;
	char *msg;
	int off;

	snprintf(ts, sizeof(ts), "%lld", (long long)t);
	tl = strlen(ts);
	msg = xmalloc(tl + 1 + len);
	memcpy(msg, ts, tl);
	msg[tl] = '.';
	memcpy(msg + tl + 1, body, len);
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg, tl + 1 + len, mac,
		 &maclen) == NULL)
		fatal("HMAC failed");
	free(msg);
	off = snprintf(out, OUTBOX_SIG_LEN, "t=%s,v1=", ts);
	for (unsigned i = 0; i < maclen && off + 2 < OUTBOX_SIG_LEN; i++)
		off += snprintf(out + off, OUTBOX_SIG_LEN - (size_t)off, "%02x", mac[i]);
}

/* Seconds until attempt n+1 (n >= 1 made): first_s doubling, -25%..+25% jitter. */
static long backoff_s(int first_s, int attempts)
{
	long base = (long)first_s << (attempts > 12 ? 12 : attempts - 1);
	unsigned int r = 0;

	if (base > MAX_BACKOFF_S)
		base = MAX_BACKOFF_S;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = 0;
	return base * 3 / 4 + (long)(r % (unsigned)(base / 2 + 1));
}

static size_t discard(char *p, size_t s, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return s * n;
}

/* POST one delivery; the HTTP status (2xx = delivered) or 0 on transport error. */
static long deliver(const struct nc_config *cfg, const char *id, const char *event,
		    const char *url, const char *body, char *errbuf)
{
	struct curl_slist *h = NULL;
	char sig[OUTBOX_SIG_LEN], line[200];
	long status = 0;
	CURLcode rc;

	if (tl_curl == NULL) {
		tl_curl = curl_easy_init();
		if (tl_curl == NULL)
			return 0;
	}
	curl_easy_reset(tl_curl);
	outbox_sign(cfg->outbound_webhook_secret ? cfg->outbound_webhook_secret : "", now_unix(),
		    body, strlen(body), sig);
	h = curl_slist_append(h, "Content-Type: application/json");
	snprintf(line, sizeof(line), "X-Nchat-Signature: %s", sig);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "X-Nchat-Event: %s", event);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "X-Nchat-Delivery: %s", id);
	h = curl_slist_append(h, line);
	h = curl_slist_append(h, "Expect:");
	if (h == NULL)
		return 0;
	curl_easy_setopt(tl_curl, CURLOPT_URL, url);
	curl_easy_setopt(tl_curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(tl_curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(tl_curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(tl_curl, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
	curl_easy_setopt(tl_curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(tl_curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(tl_curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(tl_curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(tl_curl, CURLOPT_PROTOCOLS_STR, "http,https");
	errbuf[0] = '\0';
	rc = curl_easy_perform(tl_curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(tl_curl, CURLINFO_RESPONSE_CODE, &status);
	else if (errbuf[0] == '\0')
		snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	curl_slist_free_all(h);
	return status;
}

/* Record the outcome of one attempt. */
static void settle(struct db_conn *db, const struct nc_config *cfg, const char *id, int attempts,
		   long status, const char *error)
{
	struct nc_error err = {0};
	char st[16], att[16], delay[24], max[16];
	PGresult *res;

	snprintf(st, sizeof(st), "%ld", status);
	/* Row-level security: only the service context may touch the outbox. */
	if (db_begin_service(db, &err) != NC_OK) {
		log_warn("outbox: cannot record the attempt for %s: %s", id, err.msg);
		return;
	}
	if (status >= 200 && status < 300) {
		const char *params[] = {id, st};

		res = db_exec(db,
			      "UPDATE nchat_rtc_outbound_webhooks SET status = 'delivered',"
			      " delivered_at = now(), last_attempt_at = now(), last_status = $2::int,"
			      " last_error = NULL WHERE id = $1",
			      2, params, &err);
	} else {
		const char *params[6];

		snprintf(att, sizeof(att), "%d", attempts);
		snprintf(delay, sizeof(delay), "%ld", backoff_s(cfg->outbound_webhook_backoff_s, attempts));
		snprintf(max, sizeof(max), "%d", cfg->outbound_webhook_max_attempts);
		params[0] = id;
		params[1] = st;
		params[2] = error && *error ? error : "failed";
		params[3] = att;
		params[4] = delay;
		params[5] = max;
		res = db_exec(db,
			      "UPDATE nchat_rtc_outbound_webhooks SET last_attempt_at = now(),"
			      " last_status = NULLIF($2::int, 0), last_error = $3,"
			      " status = CASE WHEN $4::int >= $6::int THEN 'dead' ELSE 'pending' END,"
			      " next_attempt_at = now() + make_interval(secs => $5::int)"
			      " WHERE id = $1",
			      6, params, &err);
	}
	if (res == NULL || db_commit(db, &err) != NC_OK)
		log_warn("outbox: cannot record the attempt for %s: %s", id, err.msg);
	db_rollback(db);
	PQclear(res);
}

int outbox_run_once(struct nc_worker *w, int *delivered, int *failed)
{
	struct nc_error err = {0};
	struct db_conn *db = &w->db;
	PGresult *res;
	int n;

	*delivered = *failed = 0;
	if (db_begin_service(db, &err) != NC_OK)
		return -1;
	res = db_exec(db,
		      "UPDATE nchat_rtc_outbound_webhooks o SET attempts = o.attempts + 1,"
		      " next_attempt_at = now() + interval '" LEASE_S " seconds'"
		      " WHERE o.id IN (SELECT id FROM nchat_rtc_outbound_webhooks"
		      "   WHERE status = 'pending' AND next_attempt_at <= now()"
		      "   ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED)"
		      " RETURNING o.id, o.event, o.target_url, o.attempts,"
		      " json_build_object('id', o.id, 'event', o.event,"
		      "   'createdAt', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
		      "   'data', o.payload)::text AS body",
		      0, NULL, &err);
	if (res == NULL) {
		db_rollback(db);
		return -1;
	}
	if (db_commit(db, &err) != NC_OK) {
		PQclear(res);
		return -1;
	}
	n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		char errbuf[CURL_ERROR_SIZE];
		const char *id = row_text(res, i, "id");
		const char *event = row_text(res, i, "event"), *url = row_text(res, i, "target_url");
		long status = deliver(w->cfg, id, event, url, row_text(res, i, "body"), errbuf);
		int attempts = (int)row_i64(res, i, "attempts", 0);

		if (status >= 200 && status < 300) {
			(*delivered)++;
			errbuf[0] = '\0';
		} else {
			(*failed)++;
			if (status != 0)
				snprintf(errbuf, sizeof(errbuf), "HTTP %ld", status);
			log_warn("outbox: delivery %s of %s to %s failed (attempt %d): %s", id,
				 event, url, attempts, errbuf);
		}
		settle(db, w->cfg, id, attempts, status, errbuf);
	}
	PQclear(res);
	return n;
}

void outbox_periodic(struct nc_worker *w, void *arg)
{
	int delivered, failed;

	(void)arg;
	/* Keep going while full batches come back, within one timer tick. */
	for (int round = 0; round < 10; round++) {
		int n = outbox_run_once(w, &delivered, &failed);
		if (n < BATCH)
			break;
	}
}

void outbox_thread_cleanup(void)
{
	if (tl_curl != NULL) {
		curl_easy_cleanup(tl_curl);
		tl_curl = NULL;
	}
}
