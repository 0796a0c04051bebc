/*
 * main.c - the nchat-rtc command line: serve, migrate, token, sweeps.
 *
 * Every subcommand reads the same configuration (environment, then the file
 * given with --config or NCHAT_RTC_CONFIG), checks only the keys it needs,
 * prints one summary line and exits 0 on success, non-zero on failure.
 */
#include "app/api.h"
#include "ops/bench.h"
#include "core/config.h"
#include "ops/gdpr.h"
#include "calls/calls.h"
#include "recordings/recordings.h"
#include "streams/streams.h"
#include "http/http.h"
#include "http/worker.h"
#include "livekit/lk.h"
#include "core/log.h"
#include "store/migrate.h"
#include "realtime/outbox.h"
#include "reports/reports.h"
#include "livekit/turn.h"
#include "store/db.h"

#include <curl/curl.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERSION "0.1.0"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: nchat-rtc [--config FILE] COMMAND [options]\n"
		"\n"
		"commands:\n"
		"  serve              run the HTTP service\n"
		"  migrate [--sql-dir DIR]\n"
		"                     apply database migrations (idempotent)\n"
		"  token --room R --identity I [--name N] [--ttl S] [--grant LIST]\n"
		"                     print a LiveKit access token (development helper)\n"
		"  sweep-calls        apply ring timeouts, end calls whose room is gone, reconcile\n"
		"  sweep-recordings [--dry-run] [--limit N] [--reconcile]\n"
		"                     delete recordings past their retention (for cron)\n"
		"  sweep-data         delete chat and analytics past their retention (for cron)\n"
		"  rollup-reports [--rebuild]\n"
		"                     bring the report rollups up to date (for cron)\n"
		"  config             print the effective configuration (secrets masked)\n"
		"  routes             list every endpoint\n"
		"  bench-tokens [--seconds N]\n"
		"                     LiveKit token minting rate vs bare HMAC-SHA256 (benchmark)\n"
		"  version            print the version\n");
}

/* Default sql/ directory: NCHAT_RTC_SQL_DIR, else ../../sql beside the binary, else ./sql. */
static char *default_sql_dir(void)
{
	const char *env = getenv("NCHAT_RTC_SQL_DIR");
	char exe[PATH_MAX];
	ssize_t n;

	if (env != NULL && *env != '\0')
		return xstrdup(env);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash, *cand;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			cand = xasprintf("%s/../../sql", exe);
			if (access(cand, R_OK) == 0)
				return cand;
			free(cand);
			cand = xasprintf("%s/../share/nchat-rtc/sql", exe);
			if (access(cand, R_OK) == 0)
				return cand;
			free(cand);
		}
	}
	return xstrdup("sql");
}

static int cmd_migrate(int argc, char **argv, const struct nc_config *cfg)
{
	char err[512];
	char *dir = NULL;
	struct migrate_result res;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sql-dir") == 0 && i + 1 < argc)
			dir = xstrdup(argv[++i]);
		else {
			fprintf(stderr, "migrate: unknown option %s\n", argv[i]);
			free(dir);
			return 2;
		}
	}
	if (dir == NULL)
		dir = default_sql_dir();
	rc = migrate_run(cfg->migrate_database_url, dir, &res, err, sizeof(err));
	free(dir);
	if (rc != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("migrate: %d applied, %d files, schema version %d\n", res.applied, res.total,
	       res.current);
	return 0;
}

/* Event streams hold a socket each: allow as many as the hard limit does. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise the open-file limit");
	}
}

/*
 * Row-level security must hold whatever role we log in as: refuse to start
 * when the login role cannot enter the work roles (or they are not confined),
 * with one line saying what to grant.  Postgres down: start anyway (the
 * service waits for it, /readyz says 503 and reports the roles once it can).
 * On the same connection, the reports' list of time zones is read.
 */
static int check_db_roles(const struct nc_config *cfg)
{
	struct db_conn db;
	char msg[512];
	enum db_roles_state st;

	db_init(&db, cfg->database_url, cfg->db_statement_timeout_ms);
	st = db_check_roles(&db, msg, sizeof(msg));
	if (st == DB_ROLES_OK)
		rpt_tz_preload(&db);
	db_cleanup(&db);
	if (st == DB_ROLES_REFUSED) {
		fprintf(stderr, "nchat-rtc: %s\n", msg);
		return -1;
	}
	if (st == DB_ROLES_UNKNOWN)
		log_warn("database not reachable at start-up; its roles are checked once it is");
	return 0;
}

static int cmd_serve(const struct nc_config *cfg)
{
	struct http_server *srv;
	int rc;

	if (check_db_roles(cfg) != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	turn_log_startup(cfg);
	log_info("nchat-rtc %s: LiveKit API at %s", VERSION, cfg->livekit_api_url);
	worker_at_exit(outbox_thread_cleanup);
	srv = http_server_new(cfg, api_routes());
	http_server_add_periodic(srv, cfg->call_sweep_interval_s, calls_periodic, NULL, "sweep-calls");
	http_server_add_periodic(srv, cfg->outbound_webhook_interval_s, outbox_periodic, NULL, "outbox");
	http_server_add_periodic(srv, cfg->stream_counter_flush_s, streams_counters_periodic, NULL,
				 "stream-counters");
	http_server_add_periodic(srv, cfg->reports_rollup_interval_s, reports_periodic, NULL,
				 "rollup-reports");
	rc = http_server_run(srv);
	http_server_free(srv);
	return rc == 0 ? 0 : 1;
}

static unsigned needs_of(const char *cmd)
{
	if (strcmp(cmd, "serve") == 0)
		return CFG_NEED_DB | CFG_NEED_REDIS | CFG_NEED_AUTH | CFG_NEED_LIVEKIT;
	if (strcmp(cmd, "migrate") == 0)
		return CFG_NEED_DB;
	if (strcmp(cmd, "token") == 0)
		return CFG_NEED_LIVEKIT;
	if (strcmp(cmd, "sweep-calls") == 0)
		return CFG_NEED_DB | CFG_NEED_LIVEKIT;
	if (strcmp(cmd, "sweep-recordings") == 0)
		return CFG_NEED_DB | CFG_NEED_S3;
	if (strcmp(cmd, "sweep-data") == 0 || strcmp(cmd, "rollup-reports") == 0)
		return CFG_NEED_DB;
	return 0;
}

int main(int argc, char **argv)
{
	const char *cfg_path = getenv("NCHAT_RTC_CONFIG");
	struct nc_config *cfg;
	char err[512];
	const char *cmd;
	int i = 1, rc;

	if (argc > 2 && strcmp(argv[1], "--config") == 0) {
		cfg_path = argv[2];
		i = 3;
	}
	if (i >= argc || strcmp(argv[i], "help") == 0 || strcmp(argv[i], "--help") == 0 ||
	    strcmp(argv[i], "-h") == 0) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	cmd = argv[i];
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("nchat-rtc %s\n", VERSION);
		return 0;
	}
	if (strcmp(cmd, "routes") == 0) {
		/* Every endpoint, one "METHOD PATTERN" per line (checked against etc/openapi.yaml). */
		static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
		for (const struct route *rt = api_routes(); rt->pattern != NULL; rt++)
			for (unsigned b = 0; b < NC_ARRAY_LEN(names); b++)
				if (rt->methods & (1u << b))
					printf("%s %s\n", names[b], rt->pattern);
		return 0;
	}
	if (cfg_path != NULL && *cfg_path == '\0')
		cfg_path = NULL;
	cfg = cfg_load(cfg_path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (cfg_validate(cfg, needs_of(cmd), err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		cfg_free(cfg);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "curl_global_init failed\n");
		cfg_free(cfg);
		return 1;
	}
	if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve(cfg);
	else if (strcmp(cmd, "migrate") == 0)
		rc = cmd_migrate(argc - i, argv + i, cfg);
	else if (strcmp(cmd, "token") == 0)
		rc = cmd_token(argc - i, argv + i, cfg);
	else if (strcmp(cmd, "sweep-calls") == 0)
		rc = cmd_sweep_calls(argc - i, argv + i, cfg);
	else if (strcmp(cmd, "sweep-recordings") == 0)
		rc = cmd_sweep_recordings(argc - i, argv + i, cfg);
	else if (strcmp(cmd, "sweep-data") == 0)
		rc = cmd_sweep_data(argc - i, argv + i, cfg);
	else if (strcmp(cmd, "rollup-reports") == 0)
		rc = cmd_rollup_reports(argc - i, argv + i, cfg);
	else if (strcmp(cmd, "bench-tokens") == 0)
		rc = cmd_bench_tokens(argc - i, argv + i, cfg);
	else if (strcmp(cmd, "config") == 0) {
		cfg_dump(cfg, STDOUT_FILENO);
		rc = 0;
	} else {
		fprintf(stderr, "nchat-rtc: unknown command %s\n", cmd);
		usage(stderr);
		rc = 2;
	}
	curl_global_cleanup();
	cfg_free(cfg);
	return rc;
}
