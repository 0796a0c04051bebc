/*
 * config.h - the service configuration.
 *
 * Values come from built-in defaults, then the environment, then (overriding
 * both) an optional file of KEY=VALUE lines named by --config or
 * NCHAT_RTC_CONFIG.  Keys are the environment variable names; every key and
 * its default is documented in etc/nchat-rtc.conf.example.  The struct is
 * built and validated once at start-up and is read-only afterwards, so every
 * thread may read it without locking.
 */
#ifndef NC_CONFIG_H
#define NC_CONFIG_H

#include "core/common.h"

/* One LiveKit API key and its secret (for webhook verification and rotation). */
struct cfg_keypair {
	char *key;
	char *secret;
};

/* Rate-limit classes and budgets (see ratelimit.h). */
enum rl_class {
	RL_DEFAULT = 0,
	RL_INITIATE,
	RL_JOIN,
	RL_CHAT,
	RL_REACTIONS,
	RL_STATS,
	RL_CLASS_MAX,
	RL_EXEMPT = RL_CLASS_MAX /* webhooks, health, metrics: never limited */
};

struct rl_limit {
	int count;      /* requests allowed per window; 0 = no limit */
	int window_s;
};

struct rl_config {
	struct rl_limit user[RL_CLASS_MAX];
	struct rl_limit ip;
};

/* How user JWTs are verified. */
enum cfg_auth_alg {
	CFG_AUTH_NONE = 0,
	CFG_AUTH_HS256,
	CFG_AUTH_RS256
};

struct nc_config {
	/* HTTP server */
	char *listen_addr;          /* LISTEN_ADDR host:port */
	int workers;                /* WORKERS (0 = 2 x cores, at least 4) */
	int request_timeout_s;      /* REQUEST_TIMEOUT_SECONDS: socket read/write timeout */
	long max_body_bytes;        /* MAX_BODY_BYTES (65536) */
	int max_queue;              /* MAX_QUEUED_REQUESTS before 503 */
	int max_connections;        /* MAX_CONNECTIONS open client connections */
	int conn_idle_timeout_s;    /* CONN_IDLE_TIMEOUT_SECONDS to complete a request */
	char *log_level;            /* LOG_LEVEL debug|info|warn|error */
	char *log_format;           /* LOG_FORMAT text|json */
	char *cors_origins;         /* CORS_ORIGINS comma-separated, "" = none */
	char *trusted_proxies;      /* TRUSTED_PROXIES: peers whose X-Forwarded-For is believed */
	char *metrics_addr;         /* METRICS_ADDR host:port of the metrics listener, "off" = none */
	char *metrics_token;        /* METRICS_TOKEN: bearer token for GET /metrics, "" = none */
	char *rate_limits_raw;      /* RATE_LIMITS per user: class=N/SECONDS,... */
	char *rate_limit_ip_raw;    /* RATE_LIMIT_IP per client address: N/SECONDS or off */
	struct rl_config rl;        /* parsed from the two above */

	/* PostgreSQL and Redis */
	char *database_url;         /* DATABASE_URL (the login role; see db.h) */
	char *migrate_database_url; /* DATABASE_MIGRATE_URL (owner role; default DATABASE_URL) */
	int db_statement_timeout_ms;/* DB_STATEMENT_TIMEOUT_MS */
	bool db_prepared_statements;/* DB_PREPARED_STATEMENTS (false for old pgbouncer transaction pooling) */
	char *redis_url;            /* REDIS_URL redis://[:pass@]host:port[/db] */
	int redis_timeout_ms;       /* REDIS_TIMEOUT_MS */

	/* User authentication */
	char *hasura_jwt_secret;    /* HASURA_GRAPHQL_JWT_SECRET (JSON form) */
	char *auth_jwt_secret;      /* AUTH_JWT_SECRET (HS256 shared secret) */
	char *auth_jwt_public_key_file; /* AUTH_JWT_PUBLIC_KEY_FILE (RS256 PEM) */
	int auth_leeway_s;          /* AUTH_JWT_LEEWAY_SECONDS */
	/* Resolved from the three above at load time: */
	enum cfg_auth_alg auth_alg;
	char *auth_key;             /* HS256 secret or RS256 PEM text */
	size_t auth_key_len;

	/* LiveKit */
	char *livekit_url;          /* LIVEKIT_URL as browsers use it (ws/wss/http/https) */
	char *livekit_api_url;      /* LIVEKIT_API_URL, else the http(s) form of livekit_url */
	char *livekit_api_key;      /* LIVEKIT_API_KEY */
	char *livekit_api_secret;   /* LIVEKIT_API_SECRET */
	char *livekit_webhook_keys_raw; /* LIVEKIT_WEBHOOK_KEYS "key:secret,key2:secret2" */
	struct cfg_keypair *webhook_keys; /* api key first, then the extra pairs */
	size_t n_webhook_keys;
	int livekit_token_ttl_s;    /* LIVEKIT_TOKEN_TTL_SECONDS (participant tokens) */
	int livekit_connect_timeout_ms; /* LIVEKIT_CONNECT_TIMEOUT_MS */
	int livekit_timeout_ms;     /* LIVEKIT_TIMEOUT_MS (whole call) */
	int livekit_retries;        /* LIVEKIT_RETRIES (idempotent calls only) */
	int webhook_leeway_s;       /* LIVEKIT_WEBHOOK_LEEWAY_SECONDS */

	/* TURN / STUN */
	char *turn_server_url;      /* TURN_SERVER_URL host[:port] */
	char *turn_secret;          /* TURN_SECRET (coturn static-auth-secret) */
	int turn_ttl_s;             /* TURN_TTL_SECONDS */
	int turns_port;             /* TURNS_PORT (0 = no turns: URL) */
	char *stun_urls;            /* STUN_URLS comma-separated stun: URLs */

	/* Streams */
	char *stream_ingest_url;    /* NEXT_PUBLIC_STREAM_INGEST_URL */
	char *hls_base_url;         /* NEXT_PUBLIC_HLS_BASE_URL */
	int viewer_heartbeat_timeout_s; /* VIEWER_HEARTBEAT_TIMEOUT_SECONDS: viewer stops counting */
	int stream_chat_rate_limit;     /* STREAM_CHAT_RATE_LIMIT messages per user per window */
	int stream_chat_rate_window_s;  /* STREAM_CHAT_RATE_WINDOW_SECONDS */
	int stream_reaction_rate_limit; /* STREAM_REACTION_RATE_LIMIT reactions per viewer per second */
	int anon_viewer_sessions;       /* ANON_VIEWER_SESSIONS_PER_ADDRESS open per stream and address */
	int stream_counter_flush_s;     /* STREAM_COUNTER_FLUSH_SECONDS: fold pending counter deltas */
	char *chat_blocked_words;       /* CHAT_BLOCKED_WORDS comma-separated, "" = none */
	bool streams_public_live;       /* STREAMS_PUBLIC_WHILE_LIVE: anyone may watch a live stream */

	/* S3 (recordings, HLS) */
	char *s3_endpoint;          /* S3_ENDPOINT */
	char *s3_public_endpoint;   /* S3_PUBLIC_ENDPOINT (default S3_ENDPOINT) */
	char *s3_region;            /* S3_REGION */
	char *s3_bucket;            /* S3_BUCKET */
	char *s3_access_key;        /* S3_ACCESS_KEY */
	char *s3_secret_key;        /* S3_SECRET_KEY */
	bool s3_force_path_style;   /* S3_FORCE_PATH_STYLE */
	int s3_presign_ttl_s;       /* S3_PRESIGN_TTL_SECONDS */
	char *s3_sse;               /* S3_SSE "" | AES256 | aws:kms */

	/* Calls and recordings */
	int recording_retention_days; /* RECORDING_RETENTION_DAYS (0 = keep forever) */
	/* Data retention (`sweep-data`; 0 = keep forever) */
	int retention_chat_days;      /* RETENTION_CHAT_DAYS: stream chat messages and reactions */
	int retention_analytics_days; /* RETENTION_ANALYTICS_DAYS: viewer sessions, connection stats */
	int retention_webhook_events_days; /* RETENTION_WEBHOOK_EVENTS_DAYS: webhook event ids */
	char *recording_allowed;     /* RECORDING_ALLOWED who may start/stop: initiator,admin,moderator[,participant] */
	int ring_timeout_s;         /* RING_TIMEOUT_SECONDS */
	int max_room_participants;  /* MAX_ROOM_PARTICIPANTS */
	int call_sweep_interval_s;  /* CALL_SWEEP_INTERVAL_SECONDS (0 = no timer in serve) */
	int presence_ttl_s;         /* PRESENCE_TTL_SECONDS */

	/* Server-Sent Events */
	int sse_heartbeat_s;        /* SSE_HEARTBEAT_SECONDS */
	int sse_max_per_user;       /* SSE_MAX_PER_USER */
	int sse_max_anon_per_addr;  /* SSE_MAX_ANONYMOUS_PER_ADDRESS: anonymous streams per client address */
	int sse_max_connections;    /* SSE_MAX_CONNECTIONS (per instance) */
	int sse_max_buffer_bytes;   /* SSE_MAX_BUFFER_BYTES: a slower client is dropped */
	int sse_reaction_batch_ms;  /* SSE_REACTION_BATCH_MS */

	/* Outgoing webhooks to the chat's own backend */
	char *outbound_webhook_urls;   /* OUTBOUND_WEBHOOK_URLS comma-separated */
	char *outbound_webhook_secret; /* OUTBOUND_WEBHOOK_SECRET (HMAC-SHA256 key) */
	int outbound_webhook_max_attempts; /* OUTBOUND_WEBHOOK_MAX_ATTEMPTS, then 'dead' */
	int outbound_webhook_interval_s;   /* OUTBOUND_WEBHOOK_INTERVAL_SECONDS (0 = no delivery here) */
	int outbound_webhook_backoff_s;    /* OUTBOUND_WEBHOOK_BACKOFF_SECONDS: first retry delay */

	/* Reports */
	int reports_rollup_interval_s;     /* REPORTS_ROLLUP_INTERVAL_SECONDS (0 = only cron) */
};

/* What a subcommand needs; cfg_validate checks only the keys it needs. */
enum cfg_need {
	CFG_NEED_DB = 1 << 0,
	CFG_NEED_REDIS = 1 << 1,
	CFG_NEED_AUTH = 1 << 2,
	CFG_NEED_LIVEKIT = 1 << 3,
	CFG_NEED_S3 = 1 << 4,
};

/*
 * Build a config from defaults, the environment and (if path is not NULL)
 * the file at path.  On a malformed value returns NULL and writes one line
 * naming the key into errbuf.  The caller frees the result with cfg_free.
 */
struct nc_config *cfg_load(const char *path, char *errbuf, size_t errlen) NC_MUSTCHECK;
/* Check that every key `needs` requires is present.  0 or -1 with errbuf. */
int cfg_validate(const struct nc_config *cfg, unsigned needs, char *errbuf, size_t errlen) NC_MUSTCHECK;
void cfg_free(struct nc_config *cfg);

/* Write every key with its effective value to fd, secrets masked. */
void cfg_dump(const struct nc_config *cfg, int fd);

/* ---- config_parse.c: values with structure ---- */

/*
 * Parse HASURA_GRAPHQL_JWT_SECRET ({"type":"HS256"|"RS256","key":"..."}).
 * *key is malloc'd.  0 on success, -1 with a reason in errbuf.
 */
int auth_parse_hasura_secret(const char *json, enum cfg_auth_alg *alg, char **key,
			     size_t *keylen, char *errbuf, size_t errlen) NC_MUSTCHECK;

/*
 * "ws://h:7880/" -> "http://h:7880", "wss://h" -> "https://h"; http(s)
 * URLs are kept; trailing '/' removed.  NULL if the scheme is none of these.
 */
char *lk_http_url(const char *livekit_url);

/* Parse RATE_LIMITS and RATE_LIMIT_IP (NULL = defaults).  0 or -1 with errbuf. */
int rl_parse(const char *per_user, const char *per_ip, struct rl_config *out, char *errbuf,
	     size_t errlen) NC_MUSTCHECK;
/* "default", "join", ... ("exempt" past the classes). */
const char *rl_class_name(enum rl_class c);

#endif
