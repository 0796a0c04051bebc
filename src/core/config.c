/*
 * config.c - one declarative table of configuration keys.
 *
 * Each key names its environment variable, type, bounds, default (written as
 * a string and parsed by the same code as any other value) and whether it is
 * a secret.  Precedence: default < environment < config file.  The file
 * format is KEY=VALUE lines; blank lines and lines starting with '#' are
 * ignored; values may be wrapped in single or double quotes.
 */
#include "core/config.h"
#include "core/log.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum key_type { KT_STR, KT_INT, KT_BOOL };

struct key_def {
	const char *name;
	enum key_type type;
	size_t off;        /* offset of the field in struct nc_config */
	const char *def;   /* default as text; NULL = unset */
	long min, max;     /* KT_INT bounds */
	bool secret;       /* never printed */
};

#define S(n, f, d) {n, KT_STR, offsetof(struct nc_config, f), d, 0, 0, false}
#define SECRET(n, f) {n, KT_STR, offsetof(struct nc_config, f), NULL, 0, 0, true}
#define I(n, f, d, lo, hi) {n, KT_INT, offsetof(struct nc_config, f), d, lo, hi, false}
#define B(n, f, d) {n, KT_BOOL, offsetof(struct nc_config, f), d, 0, 0, false}

static const struct key_def keys[] = {
	S("LISTEN_ADDR", listen_addr, "127.0.0.1:8080"),
	I("WORKERS", workers, "0", 0, 256),
	I("REQUEST_TIMEOUT_SECONDS", request_timeout_s, "30", 1, 3600),
	{"MAX_BODY_BYTES", KT_INT, offsetof(struct nc_config, max_body_bytes), "65536", 1024, 16777216, false},
	I("MAX_QUEUED_REQUESTS", max_queue, "4096", 16, 1000000),
	I("MAX_CONNECTIONS", max_connections, "20000", 1, 1000000),
	I("CONN_IDLE_TIMEOUT_SECONDS", conn_idle_timeout_s, "30", 1, 3600),
	S("LOG_LEVEL", log_level, "info"),
	S("LOG_FORMAT", log_format, "text"),
	S("CORS_ORIGINS", cors_origins, ""),
	S("TRUSTED_PROXIES", trusted_proxies, ""),
	S("METRICS_ADDR", metrics_addr, "127.0.0.1:9464"),
	SECRET("METRICS_TOKEN", metrics_token),
	S("RATE_LIMITS", rate_limits_raw, ""),
	S("RATE_LIMIT_IP", rate_limit_ip_raw, ""),

	SECRET("DATABASE_URL", database_url),
	SECRET("DATABASE_MIGRATE_URL", migrate_database_url),
	I("DB_STATEMENT_TIMEOUT_MS", db_statement_timeout_ms, "5000", 0, 600000),
	B("DB_PREPARED_STATEMENTS", db_prepared_statements, "true"),
	SECRET("REDIS_URL", redis_url),
	I("REDIS_TIMEOUT_MS", redis_timeout_ms, "1000", 10, 60000),

	SECRET("HASURA_GRAPHQL_JWT_SECRET", hasura_jwt_secret),
	SECRET("AUTH_JWT_SECRET", auth_jwt_secret),
	S("AUTH_JWT_PUBLIC_KEY_FILE", auth_jwt_public_key_file, NULL),
	I("AUTH_JWT_LEEWAY_SECONDS", auth_leeway_s, "30", 0, 600),

	S("LIVEKIT_URL", livekit_url, NULL),
	S("LIVEKIT_API_URL", livekit_api_url, NULL),
	S("LIVEKIT_API_KEY", livekit_api_key, NULL),
	SECRET("LIVEKIT_API_SECRET", livekit_api_secret),
	SECRET("LIVEKIT_WEBHOOK_KEYS", livekit_webhook_keys_raw),
	I("LIVEKIT_TOKEN_TTL_SECONDS", livekit_token_ttl_s, "21600", 60, 86400),
	I("LIVEKIT_CONNECT_TIMEOUT_MS", livekit_connect_timeout_ms, "2000", 50, 60000),
	I("LIVEKIT_TIMEOUT_MS", livekit_timeout_ms, "5000", 100, 120000),
	I("LIVEKIT_RETRIES", livekit_retries, "2", 0, 10),
	I("LIVEKIT_WEBHOOK_LEEWAY_SECONDS", webhook_leeway_s, "60", 0, 600),

	S("TURN_SERVER_URL", turn_server_url, NULL),
	SECRET("TURN_SECRET", turn_secret),
	I("TURN_TTL_SECONDS", turn_ttl_s, "3600", 60, 172800),
	I("TURNS_PORT", turns_port, "0", 0, 65535),
	S("STUN_URLS", stun_urls, ""),

	S("NEXT_PUBLIC_STREAM_INGEST_URL", stream_ingest_url, NULL),
	S("NEXT_PUBLIC_HLS_BASE_URL", hls_base_url, NULL),
	I("VIEWER_HEARTBEAT_TIMEOUT_SECONDS", viewer_heartbeat_timeout_s, "30", 1, 3600),
	I("STREAM_CHAT_RATE_LIMIT", stream_chat_rate_limit, "5", 1, 10000),
	I("STREAM_CHAT_RATE_WINDOW_SECONDS", stream_chat_rate_window_s, "10", 1, 3600),
	I("STREAM_REACTION_RATE_LIMIT", stream_reaction_rate_limit, "10", 1, 10000),
	I("ANON_VIEWER_SESSIONS_PER_ADDRESS", anon_viewer_sessions, "4", 1, 1000000),
	I("STREAM_COUNTER_FLUSH_SECONDS", stream_counter_flush_s, "2", 0, 3600),
	S("CHAT_BLOCKED_WORDS", chat_blocked_words, ""),
	B("STREAMS_PUBLIC_WHILE_LIVE", streams_public_live, "true"),

	S("S3_ENDPOINT", s3_endpoint, NULL),
	S("S3_PUBLIC_ENDPOINT", s3_public_endpoint, NULL),
	S("S3_REGION", s3_region, "us-east-1"),
	S("S3_BUCKET", s3_bucket, NULL),
	S("S3_ACCESS_KEY", s3_access_key, NULL),
	SECRET("S3_SECRET_KEY", s3_secret_key),
	B("S3_FORCE_PATH_STYLE", s3_force_path_style, "true"),
	I("S3_PRESIGN_TTL_SECONDS", s3_presign_ttl_s, "300", 10, 604800),
	S("S3_SSE", s3_sse, ""),

	I("RECORDING_RETENTION_DAYS", recording_retention_days, "30", 0, 36500),
	I("RETENTION_CHAT_DAYS", retention_chat_days, "365", 0, 36500),
	I("RETENTION_ANALYTICS_DAYS", retention_analytics_days, "90", 0, 36500),
	I("RETENTION_WEBHOOK_EVENTS_DAYS", retention_webhook_events_days, "7", 0, 36500),
	S("RECORDING_ALLOWED", recording_allowed, "initiator,admin,moderator"),
	I("RING_TIMEOUT_SECONDS", ring_timeout_s, "45", 1, 3600),
	I("MAX_ROOM_PARTICIPANTS", max_room_participants, "100", 2, 10000),
	I("CALL_SWEEP_INTERVAL_SECONDS", call_sweep_interval_s, "15", 0, 3600),
	I("PRESENCE_TTL_SECONDS", presence_ttl_s, "60", 5, 86400),

	I("SSE_HEARTBEAT_SECONDS", sse_heartbeat_s, "15", 1, 300),
	I("SSE_MAX_PER_USER", sse_max_per_user, "8", 1, 1000),
	I("SSE_MAX_ANONYMOUS_PER_ADDRESS", sse_max_anon_per_addr, "16", 1, 100000),
	I("SSE_MAX_CONNECTIONS", sse_max_connections, "50000", 1, 1000000),
	I("SSE_MAX_BUFFER_BYTES", sse_max_buffer_bytes, "262144", 4096, 67108864),
	I("SSE_REACTION_BATCH_MS", sse_reaction_batch_ms, "500", 50, 10000),

	S("OUTBOUND_WEBHOOK_URLS", outbound_webhook_urls, ""),
	SECRET("OUTBOUND_WEBHOOK_SECRET", outbound_webhook_secret),
	I("OUTBOUND_WEBHOOK_MAX_ATTEMPTS", outbound_webhook_max_attempts, "8", 1, 100),
	I("OUTBOUND_WEBHOOK_INTERVAL_SECONDS", outbound_webhook_interval_s, "2", 0, 3600),
	I("OUTBOUND_WEBHOOK_BACKOFF_SECONDS", outbound_webhook_backoff_s, "10", 1, 3600),

	I("REPORTS_ROLLUP_INTERVAL_SECONDS", reports_rollup_interval_s, "30", 0, 3600),
};

static int set_value(struct nc_config *c, const struct key_def *k, const char *val,
		     char *errbuf, size_t errlen)
{
	char *field = (char *)c + k->off;
	long v;

	switch (k->type) {
	case KT_STR:
		free(*(char **)field);
		*(char **)field = xstrdup(val);
		return 0;
	case KT_INT:
		if (parse_long(val, k->min, k->max, &v) != 0) {
			snprintf(errbuf, errlen, "config: %s must be an integer from %ld to %ld",
				 k->name, k->min, k->max);
			return -1;
		}
		if (k->off == offsetof(struct nc_config, max_body_bytes))
			*(long *)field = v;
		else
			*(int *)field = (int)v;
		return 0;
	case KT_BOOL:
		if (strcasecmp(val, "1") == 0 || strcasecmp(val, "true") == 0 ||
		    strcasecmp(val, "yes") == 0 || strcasecmp(val, "on") == 0)
			*(bool *)field = true;
		else if (strcasecmp(val, "0") == 0 || strcasecmp(val, "false") == 0 ||
			 strcasecmp(val, "no") == 0 || strcasecmp(val, "off") == 0)
			*(bool *)field = false;
		else {
			snprintf(errbuf, errlen, "config: %s must be true or false", k->name);
			return -1;
		}
		return 0;
	}
	return -1;
}

static const struct key_def *find_key(const char *name)
{
	for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static int load_file(struct nc_config *c, const char *path, char *errbuf, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int lineno = 0;

	if (f == NULL) {
		snprintf(errbuf, errlen, "config: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s = trim(line), *eq, *name, *val;
		const struct key_def *k;
		size_t vl;

		lineno++;
		if (*s == '\0' || *s == '#')
			continue;
		if (strncmp(s, "export ", 7) == 0)
			s = trim(s + 7);
		eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(errbuf, errlen, "config: %s:%d: expected KEY=VALUE", path, lineno);
			fclose(f);
			return -1;
		}
		*eq = '\0';
		name = trim(s);
		val = trim(eq + 1);
		vl = strlen(val);
		if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
			val[vl - 1] = '\0';
			val++;
		}
		k = find_key(name);
		if (k == NULL) {
			snprintf(errbuf, errlen, "config: %s:%d: unknown key %s", path, lineno, name);
			fclose(f);
			return -1;
		}
		if (set_value(c, k, val, errbuf, errlen) != 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* "key:secret,key2:secret2" -> pairs appended after the main API key. */
static int parse_webhook_keys(struct nc_config *c, char *errbuf, size_t errlen)
{
	size_t cap = 1;
	char *copy, *tok, *save = NULL;

	if (c->livekit_webhook_keys_raw != NULL)
		for (const char *p = c->livekit_webhook_keys_raw; *p; p++)
			if (*p == ',')
				cap++;
	cap++;
	c->webhook_keys = xcalloc(cap, sizeof(*c->webhook_keys));
	c->n_webhook_keys = 0;
	if (c->livekit_api_key != NULL && c->livekit_api_secret != NULL) {
		c->webhook_keys[0].key = xstrdup(c->livekit_api_key);
		c->webhook_keys[0].secret = xstrdup(c->livekit_api_secret);
		c->n_webhook_keys = 1;
	}
	if (c->livekit_webhook_keys_raw == NULL || *c->livekit_webhook_keys_raw == '\0')
		return 0;
	copy = xstrdup(c->livekit_webhook_keys_raw);
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *t = trim(tok), *colon = strchr(t, ':');

		if (*t == '\0')
			continue;
		if (colon == NULL || colon == t || colon[1] == '\0') {
			snprintf(errbuf, errlen,
				 "config: LIVEKIT_WEBHOOK_KEYS must be key:secret pairs separated by commas");
			free(copy);
			return -1;
		}
		*colon = '\0';
		c->webhook_keys[c->n_webhook_keys].key = xstrdup(trim(t));
		c->webhook_keys[c->n_webhook_keys].secret = xstrdup(colon + 1);
		c->n_webhook_keys++;
	}
	free(copy);
	return 0;
}

static char *read_small_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = xmalloc(65537);
	n = fread(buf, 1, 65536, f);
	fclose(f);
	buf[n] = '\0';
	*len_out = n;
	return buf;
}

/* Decide how user tokens are verified from the three auth keys. */
static int resolve_auth(struct nc_config *c, char *errbuf, size_t errlen)
{
	if (c->hasura_jwt_secret != NULL && *c->hasura_jwt_secret != '\0') {
		char err[160];
		if (auth_parse_hasura_secret(c->hasura_jwt_secret, &c->auth_alg, &c->auth_key,
					     &c->auth_key_len, err, sizeof(err)) != 0) {
			snprintf(errbuf, errlen, "config: HASURA_GRAPHQL_JWT_SECRET: %s", err);
			return -1;
		}
		return 0;
	}
	if (c->auth_jwt_public_key_file != NULL && *c->auth_jwt_public_key_file != '\0') {
		c->auth_key = read_small_file(c->auth_jwt_public_key_file, &c->auth_key_len);
		if (c->auth_key == NULL || strstr(c->auth_key, "-----BEGIN") == NULL) {
			snprintf(errbuf, errlen,
				 "config: AUTH_JWT_PUBLIC_KEY_FILE must name a readable PEM public key");
			return -1;
		}
		c->auth_alg = CFG_AUTH_RS256;
		return 0;
	}
	if (c->auth_jwt_secret != NULL && *c->auth_jwt_secret != '\0') {
		c->auth_key = xstrdup(c->auth_jwt_secret);
		c->auth_key_len = strlen(c->auth_key);
		c->auth_alg = CFG_AUTH_HS256;
	}
	return 0;
}

struct nc_config *cfg_load(const char *path, char *errbuf, size_t errlen)
{
	struct nc_config *c = xcalloc(1, sizeof(*c));
	size_t i;

	for (i = 0; i < NC_ARRAY_LEN(keys); i++) {
		const char *env = getenv(keys[i].name);
		const char *val = (env != NULL && *env != '\0') ? env : keys[i].def;

		if (val != NULL && set_value(c, &keys[i], val, errbuf, errlen) != 0)
			goto fail;
	}
	if (path != NULL && load_file(c, path, errbuf, errlen) != 0)
		goto fail;
	/* Empty strings from the file mean "unset" for optional strings. */
	if (c->migrate_database_url == NULL && c->database_url != NULL)
		c->migrate_database_url = xstrdup(c->database_url);
	if (c->s3_public_endpoint == NULL && c->s3_endpoint != NULL)
		c->s3_public_endpoint = xstrdup(c->s3_endpoint);
	if (c->livekit_url != NULL && *c->livekit_url != '\0') {
		if (strncasecmp(c->livekit_url, "ws://", 5) != 0 &&
		    strncasecmp(c->livekit_url, "wss://", 6) != 0 &&
		    strncasecmp(c->livekit_url, "http://", 7) != 0 &&
		    strncasecmp(c->livekit_url, "https://", 8) != 0) {
			snprintf(errbuf, errlen,
				 "config: LIVEKIT_URL must start with ws://, wss://, http:// or https://");
			goto fail;
		}
		if (c->livekit_api_url == NULL || *c->livekit_api_url == '\0') {
			free(c->livekit_api_url);
			c->livekit_api_url = lk_http_url(c->livekit_url);
		}
	}
	if (c->livekit_api_url != NULL) {
		/* An explicit API URL: its http(s) form, without a trailing '/'. */
		char *u = lk_http_url(c->livekit_api_url);

		free(c->livekit_api_url);
		c->livekit_api_url = u;
		if (u == NULL) {
			snprintf(errbuf, errlen,
				 "config: LIVEKIT_API_URL must start with ws://, wss://, http:// or https://");
			goto fail;
		}
	}
	if (log_configure(c->log_level, NULL) != 0) {
		snprintf(errbuf, errlen, "config: LOG_LEVEL must be debug, info, warn or error");
		goto fail;
	}
	if (log_configure(NULL, c->log_format) != 0) {
		snprintf(errbuf, errlen, "config: LOG_FORMAT must be text or json");
		goto fail;
	}
	if (strchr(c->listen_addr, ':') == NULL) {
		snprintf(errbuf, errlen, "config: LISTEN_ADDR must be host:port");
		goto fail;
	}
	if (c->metrics_addr != NULL && *c->metrics_addr != '\0' &&
	    strcasecmp(c->metrics_addr, "off") != 0 && strchr(c->metrics_addr, ':') == NULL) {
		snprintf(errbuf, errlen, "config: METRICS_ADDR must be host:port or off");
		goto fail;
	}
	if (c->metrics_token != NULL && *c->metrics_token != '\0' && strlen(c->metrics_token) < 16) {
		snprintf(errbuf, errlen, "config: METRICS_TOKEN must be at least 16 characters");
		goto fail;
	}
	if (parse_webhook_keys(c, errbuf, errlen) != 0 || resolve_auth(c, errbuf, errlen) != 0 ||
	    rl_parse(c->rate_limits_raw, c->rate_limit_ip_raw, &c->rl, errbuf, errlen) != 0)
		goto fail;
	return c;
fail:
	cfg_free(c);
	return NULL;
}

static bool empty(const char *s)
{
	return s == NULL || *s == '\0';
}

int cfg_validate(const struct nc_config *c, unsigned needs, char *errbuf, size_t errlen)
{
	const char *missing = NULL;

	if ((needs & CFG_NEED_DB) && empty(c->database_url))
		missing = "DATABASE_URL";
	else if ((needs & CFG_NEED_REDIS) && empty(c->redis_url))
		missing = "REDIS_URL";
	else if ((needs & CFG_NEED_AUTH) && c->auth_alg == CFG_AUTH_NONE)
		missing = "HASURA_GRAPHQL_JWT_SECRET (or AUTH_JWT_SECRET / AUTH_JWT_PUBLIC_KEY_FILE)";
	else if ((needs & CFG_NEED_LIVEKIT) && empty(c->livekit_url))
		missing = "LIVEKIT_URL";
	else if ((needs & CFG_NEED_LIVEKIT) && empty(c->livekit_api_key))
		missing = "LIVEKIT_API_KEY";
	else if ((needs & CFG_NEED_LIVEKIT) && empty(c->livekit_api_secret))
		missing = "LIVEKIT_API_SECRET";
	else if ((needs & CFG_NEED_S3) && empty(c->s3_endpoint))
		missing = "S3_ENDPOINT";
	else if ((needs & CFG_NEED_S3) && empty(c->s3_bucket))
		missing = "S3_BUCKET";
	else if ((needs & CFG_NEED_S3) && empty(c->s3_access_key))
		missing = "S3_ACCESS_KEY";
	else if ((needs & CFG_NEED_S3) && empty(c->s3_secret_key))
		missing = "S3_SECRET_KEY";
	if (missing != NULL) {
		snprintf(errbuf, errlen, "config: missing required setting %s", missing);
		return -1;
	}
	return 0;
}

void cfg_free(struct nc_config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++)
		if (keys[i].type == KT_STR)
			free(*(char **)((char *)c + keys[i].off));
	for (size_t i = 0; i < c->n_webhook_keys; i++) {
		free(c->webhook_keys[i].key);
		free(c->webhook_keys[i].secret);
	}
	free(c->webhook_keys);
	free(c->auth_key);
	free(c);
}

void cfg_dump(const struct nc_config *c, int fd)
{
	for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++) {
		const struct key_def *k = &keys[i];
		const char *field = (const char *)c + k->off;

		switch (k->type) {
		case KT_STR: {
			const char *v = *(char *const *)field;
			dprintf(fd, "%s=%s\n", k->name,
				v == NULL ? "" : (k->secret && *v ? "(set)" : v));
			break;
		}
		case KT_INT:
			if (k->off == offsetof(struct nc_config, max_body_bytes))
				dprintf(fd, "%s=%ld\n", k->name, *(const long *)field);
			else
				dprintf(fd, "%s=%d\n", k->name, *(const int *)field);
			break;
		case KT_BOOL:
			dprintf(fd, "%s=%s\n", k->name, *(const bool *)field ? "true" : "false");
			break;
		}
	}
}
