/*
 * Integration tests of `nchat-rtc migrate` on fresh databases: applying the
 * whole schema, a second run that finds nothing to do, two concurrent runs,
 * a changed file being refused, and 0013 taking over 0009's counter rows.
 */
#include "harness.h"

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* postgresql://user@host:port/db -> same URL with another database name. */
static char *url_with_db(const char *url, const char *db)
{
	const char *slash = strrchr(url, '/');
	size_t n = (size_t)(slash - url);
	char *out = malloc(n + strlen(db) + 2);

	memcpy(out, url, n);
	sprintf(out + n, "/%s", db);
	return out;
}

static char *fresh_db(void)
{
	PGconn *admin = PQconnectdb(it_env("NC_TEST_ADMIN_URL"));
	char name[64], sql[160];
	PGresult *res;

	ck_assert_int_eq(PQstatus(admin), CONNECTION_OK);
	snprintf(name, sizeof(name), "nctest_mig_%d_%ld", (int)getpid(), random() % 1000000);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s OWNER nchat_owner", name);
	res = PQexec(admin, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(admin));
	PQclear(res);
	PQfinish(admin);
	return strdup(name);
}

static void drop_db(const char *name)
{
	PGconn *admin = PQconnectdb(it_env("NC_TEST_ADMIN_URL"));
	char sql[160];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	PQclear(PQexec(admin, sql));
	PQfinish(admin);
}

/* Start `NC_BIN migrate` against url with the files of dir; returns the pid. */
static pid_t spawn_migrate_dir(const char *url, const char *dir, const char *out_path)
{
	pid_t pid = fork();

	if (pid == 0) {
		FILE *f = freopen(out_path, "w", stdout);
		(void)f;
		dup2(STDOUT_FILENO, STDERR_FILENO);
		setenv("DATABASE_MIGRATE_URL", url, 1);
		setenv("DATABASE_URL", url, 1);
		execl(it_env("NC_BIN"), "nchat-rtc", "migrate", "--sql-dir", dir, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Start `NC_BIN migrate` against url; returns the pid. Output goes to out_path. */
static pid_t spawn_migrate(const char *url, const char *out_path)
{
	pid_t pid = fork();

	if (pid == 0) {
		FILE *f = freopen(out_path, "w", stdout);
		(void)f;
		dup2(STDOUT_FILENO, STDERR_FILENO);
		setenv("DATABASE_MIGRATE_URL", url, 1);
		setenv("DATABASE_URL", url, 1);
		execl(it_env("NC_BIN"), "nchat-rtc", "migrate", "--sql-dir", it_env("NC_SQL_DIR"),
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid)
{
	int st;

	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 8192);

	if (f != NULL) {
		size_t n = fread(buf, 1, 8191, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

static long count_sql_files(void)
{
	char cmd[512];
	FILE *p;
	long n = 0;

	snprintf(cmd, sizeof(cmd), "ls %s | grep -cE '^[0-9]+_.*\\.sql$'", it_env("NC_SQL_DIR"));
	p = popen(cmd, "r");
	if (p != NULL) {
		if (fscanf(p, "%ld", &n) != 1)
			n = 0;
		pclose(p);
	}
	return n;
}

START_TEST(fresh_then_noop)
{
	char *db = fresh_db();
	char *url = url_with_db(it_env("DATABASE_MIGRATE_URL"), db);
	char out[256], *text;
	long files = count_sql_files();
	PGconn *c;
	char expect[96];

	snprintf(out, sizeof(out), "%s/migrate-%s.out", it_env("NC_RUN_DIR"), db);
	ck_assert_int_eq(wait_exit(spawn_migrate(url, out)), 0);
	text = slurp(out);
	snprintf(expect, sizeof(expect), "migrate: %ld applied, %ld files", files, files);
	ck_assert_msg(strstr(text, expect) != NULL, "first run said: %s", text);
	free(text);
	ck_assert_int_eq(wait_exit(spawn_migrate(url, out)), 0);
	text = slurp(out);
	snprintf(expect, sizeof(expect), "migrate: 0 applied, %ld files", files);
	ck_assert_msg(strstr(text, expect) != NULL, "second run said: %s", text);
	free(text);
	c = PQconnectdb(url);
	ck_assert_int_eq(it_sql_long(c, "SELECT count(*) FROM nchat_rtc_migrations", 0, NULL), files);
	ck_assert_int_eq(it_sql_long(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'nchat_calls'", 0, NULL), 1);
	/* a file changed after it was applied is refused */
	free(it_sql(c, "UPDATE nchat_rtc_migrations SET checksum = 'x' WHERE version = 1", 0, NULL));
	PQfinish(c);
	ck_assert_int_eq(wait_exit(spawn_migrate(url, out)), 1);
	text = slurp(out);
	ck_assert_ptr_nonnull(strstr(text, "checksum mismatch"));
	free(text);
	drop_db(db);
	free(url);
	free(db);
}
END_TEST

START_TEST(concurrent_runs)
{
	char *db = fresh_db();
	char *url = url_with_db(it_env("DATABASE_MIGRATE_URL"), db);
	char out1[256], out2[256], out3[256];
	pid_t a, b, c;
	PGconn *conn;
	long files = count_sql_files();

	snprintf(out1, sizeof(out1), "%s/migrate-%s-a.out", it_env("NC_RUN_DIR"), db);
	snprintf(out2, sizeof(out2), "%s/migrate-%s-b.out", it_env("NC_RUN_DIR"), db);
	snprintf(out3, sizeof(out3), "%s/migrate-%s-c.out", it_env("NC_RUN_DIR"), db);
	a = spawn_migrate(url, out1);
	b = spawn_migrate(url, out2);
	c = spawn_migrate(url, out3);
	ck_assert_int_eq(wait_exit(a), 0);
	ck_assert_int_eq(wait_exit(b), 0);
	ck_assert_int_eq(wait_exit(c), 0);
	conn = PQconnectdb(url);
	ck_assert_int_eq(it_sql_long(conn, "SELECT count(*) FROM nchat_rtc_migrations", 0, NULL), files);
	PQfinish(conn);
	drop_db(db);
	free(url);
	free(db);
}
END_TEST

START_TEST(unreachable_database)
{
	char url[128], out[256], *text;

	snprintf(url, sizeof(url), "postgresql://nchat_owner@127.0.0.1:%d/nchat", it_free_port());
	snprintf(out, sizeof(out), "%s/migrate-unreachable.out", it_env("NC_RUN_DIR"));
	ck_assert_int_eq(wait_exit(spawn_migrate(url, out)), 1);
	text = slurp(out);
	ck_assert_ptr_nonnull(strstr(text, "cannot connect"));
	free(text);
}
END_TEST

static void admin_exec(const char *sql)
{
	PGconn *admin = PQconnectdb(it_env("NC_TEST_ADMIN_URL"));
	PGresult *res;

	ck_assert_int_eq(PQstatus(admin), CONNECTION_OK);
	res = PQexec(admin, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(admin));
	PQclear(res);
	PQfinish(admin);
}

/*
 * One URL for everything, the superuser's (Hasura/nHost style): migrate
 * creates the work roles, serve enters them, and row-level security holds
 * although the login role is a superuser.
 */
START_TEST(superuser_one_url)
{
	char *db = fresh_db();
	char *url = url_with_db(it_env("NC_TEST_ADMIN_URL"), db);
	char out[256], env_db[600], env_mig[600], path[128], *text, *x, *y, *call, *tx, *ty;
	const char *env[] = {env_db, env_mig, NULL};
	struct it_server s;
	struct it_resp r;
	PGconn *c;
	const char *p[2];

	snprintf(out, sizeof(out), "%s/migrate-%s-su.out", it_env("NC_RUN_DIR"), db);
	ck_assert_int_eq(wait_exit(spawn_migrate(url, out)), 0);
	text = slurp(out);
	ck_assert_msg(strstr(text, "WARNING") == NULL, "a superuser migration warned: %s", text);
	free(text);
	c = PQconnectdb(url);
	x = it_new_user(c, "x");
	y = it_new_user(c, "y");
	p[0] = x;
	call = it_sql(c, "INSERT INTO nchat_calls (livekit_room_name, call_type, status, initiator_id)"
			 " VALUES ('su-' || gen_random_uuid(), 'audio', 'active', $1) RETURNING id", 1, p);
	p[1] = call;
	free(it_sql(c, "INSERT INTO nchat_call_participants (call_id, user_id, role, status)"
		       " VALUES ($2, $1, 'initiator', 'joined') RETURNING id", 2, p));
	/* the work roles confine even this superuser's session */
	ck_assert_int_eq(it_sql_long(c, "SELECT count(*) FROM nchat_calls", 0, NULL), 1);
	free(it_sql(c, "BEGIN", 0, NULL));
	free(it_sql(c, "SET LOCAL ROLE nchat_rtc_user", 0, NULL));
	ck_assert_int_eq(it_sql_long(c, "SELECT count(*) FROM nchat_calls", 0, NULL), 0);
	free(it_sql(c, "ROLLBACK", 0, NULL));
	PQfinish(c);

	snprintf(env_db, sizeof(env_db), "DATABASE_URL=%s", url);
	snprintf(env_mig, sizeof(env_mig), "DATABASE_MIGRATE_URL=%s", url);
	ck_assert_int_eq(it_server_start(&s, env), 0);
	ck_assert_int_eq(it_req(&s, "GET", "/readyz", NULL, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "readyz %ld %s", r.status, r.body);
	it_resp_free(&r);
	tx = it_user_token(x, "user", 600);
	ty = it_user_token(y, "user", 600);
	snprintf(path, sizeof(path), "/api/calls/%s", call);
	ck_assert_int_eq(it_req(&s, "GET", path, ty, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&s, "GET", path, tx, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	ck_assert_int_eq(it_server_stop(&s), 0);
	drop_db(db);
	free(tx);
	free(ty);
	free(x);
	free(y);
	free(call);
	free(url);
	free(db);
}
END_TEST

/*
 * A migrator that may not manage roles: the migration still applies and
 * says, as a warning, what a superuser must grant; serve logging in as that
 * role refuses to start with one line saying the same.
 */
START_TEST(migrator_without_createrole)
{
	char role[64], name[64], sql[256], out[256], *url, *text, cmd[1024], line[2048];
	FILE *f;
	size_t n;
	int rc;

	snprintf(role, sizeof(role), "nctest_plain_%d", (int)getpid());
	snprintf(name, sizeof(name), "nctest_plain_db_%d", (int)getpid());
	snprintf(sql, sizeof(sql), "CREATE ROLE %s LOGIN", role);
	admin_exec(sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s OWNER %s", name, role);
	admin_exec(sql);
	{
		const char *base = it_env("DATABASE_MIGRATE_URL");
		const char *at = strchr(base, '@');
		char *u = malloc(strlen(base) + 128);

		sprintf(u, "postgresql://%s%s", role, at);
		url = url_with_db(u, name);
		free(u);
	}
	snprintf(out, sizeof(out), "%s/migrate-%s.out", it_env("NC_RUN_DIR"), name);
	ck_assert_int_eq(wait_exit(spawn_migrate(url, out)), 0);
	text = slurp(out);
	ck_assert_msg(strstr(text, "as a superuser run: GRANT nchat_rtc_system TO nchat_rtc_service")
			      != NULL, "no clear message: %s", text);
	free(text);
	snprintf(cmd, sizeof(cmd), "env 'DATABASE_URL=%s' LISTEN_ADDR=127.0.0.1:%d METRICS_ADDR=off timeout 20 '%s' serve 2>&1",
		 url, it_free_port(), it_env("NC_BIN"));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(line, 1, sizeof(line) - 1, f);
	line[n] = '\0';
	rc = pclose(f);
	ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "serve started: %s", line);
	ck_assert_msg(strstr(line, "may not enter") != NULL && strstr(line, "GRANT") != NULL, "%s", line);
	drop_db(name);
	snprintf(sql, sizeof(sql), "DROP ROLE %s", role);
	admin_exec(sql);
	free(url);
}
END_TEST

/* dir gets links to the migrations of NC_SQL_DIR numbered below `below` (a 4-digit prefix). */
static void sql_dir_before(const char *dir, const char *below)
{
	DIR *d = opendir(it_env("NC_SQL_DIR"));
	struct dirent *de;
	char from[1024], to[1024];

	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(mkdir(dir, 0700) == 0 || errno == EEXIST, 1);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n < 9 || strcmp(de->d_name + n - 4, ".sql") != 0 || strncmp(de->d_name, below, 4) >= 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", it_env("NC_SQL_DIR"), de->d_name);
		snprintf(to, sizeof(to), "%s/%s", dir, de->d_name);
		ck_assert_int_eq(symlink(from, to) == 0 || errno == EEXIST, 1);
	}
	closedir(d);
}

static long num(PGconn *c, const char *sql, const char *a)
{
	const char *p[1] = {a};

	return it_sql_long(c, sql, a ? 1 : 0, p);
}

/*
 * 0013 on a database with 0009's delta rows: they become pending rows and
 * are counted by the next fold; a 0009 writer still running after the
 * migration (a row into the old table, a call of the old function) is
 * counted too.
 */
START_TEST(counter_deltas_carried_over)
{
	char *db = fresh_db();
	char *url = url_with_db(it_env("DATABASE_MIGRATE_URL"), db);
	char dir[512], out[512], *stream, *types;
	PGconn *c;
	const char *p[1];

	snprintf(dir, sizeof(dir), "%s/sql-before-0013-%d", it_env("NC_RUN_DIR"), (int)getpid());
	snprintf(out, sizeof(out), "%s/migrate-%s.out", it_env("NC_RUN_DIR"), db);
	sql_dir_before(dir, "0013");
	ck_assert_int_eq(wait_exit(spawn_migrate_dir(url, dir, out)), 0);
	c = PQconnectdb(url);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	ck_assert_int_eq(num(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'nchat_stream_counts_pending'",
			     NULL), 0);
	/* 3 reactions (hearts) folded by 0009, more waiting in two delta rows */
	stream = it_sql(c, "WITH u AS (INSERT INTO nchat_users (id, display_name)"
			   "   VALUES (gen_random_uuid(), 'B') RETURNING id),"
			   " ch AS (INSERT INTO nchat_channels (id, name) VALUES (gen_random_uuid(), 'c')"
			   "   RETURNING id),"
			   " s AS (INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status,"
			   "   total_reactions) SELECT ch.id, u.id, 'carried', 'live', 3 FROM u, ch"
			   "   RETURNING id),"
			   " rc AS (INSERT INTO nchat_stream_reaction_counts (stream_id, reaction_type, count)"
			   "   SELECT id, 'heart', 3 FROM s)"
			   " SELECT id FROM s", 0, NULL);
	p[0] = stream;
	free(it_sql(c, "INSERT INTO nchat_stream_counter_deltas (stream_id, views, uniques, chat,"
		       " reactions, heart, fire) VALUES ($1, 2, 1, 3, 2, 1, 1), ($1, 0, 0, 1, 3, 0, 3)",
		    1, p));
	PQfinish(c);

	ck_assert_int_eq(wait_exit(spawn_migrate(url, out)), 0);
	c = PQconnectdb(url);
	ck_assert_int_eq(num(c, "SELECT count(*) FROM nchat_stream_counter_deltas", NULL), 0);
	/* one row of views and chat, one per reaction */
	ck_assert_int_eq(num(c, "SELECT count(*) FROM nchat_stream_counts_pending WHERE stream_id = $1",
			     stream), 1 + 5);
	/* a 0009 writer after the migration: its delta row and its call count the new way */
	free(it_sql(c, "INSERT INTO nchat_stream_counter_deltas (stream_id, chat, reactions, clap)"
		       " VALUES ($1, 1, 1, 1)", 1, p));
	free(it_sql(c, "SELECT nchat_rtc_stream_count($1, 1, 0, 0, 'wow')::text", 1, p));
	ck_assert_int_eq(num(c, "SELECT count(*) FROM nchat_stream_counter_deltas", NULL), 0);
	free(it_sql(c, "SELECT nchat_rtc_stream_counters_sync($1)::text", 1, p));
	ck_assert_int_eq(num(c, "SELECT count(*) FROM nchat_stream_counts_pending", NULL), 0);
	ck_assert_int_eq(num(c, "SELECT total_views FROM nchat_streams WHERE id = $1", stream), 3);
	ck_assert_int_eq(num(c, "SELECT unique_viewers FROM nchat_streams WHERE id = $1", stream), 1);
	ck_assert_int_eq(num(c, "SELECT total_chat_messages FROM nchat_streams WHERE id = $1", stream), 5);
	ck_assert_int_eq(num(c, "SELECT total_reactions FROM nchat_streams WHERE id = $1", stream), 10);
	ck_assert_int_eq(num(c, "SELECT count FROM nchat_stream_reaction_counts WHERE stream_id = $1"
			     " AND reaction_type = 'heart'", stream), 4);
	ck_assert_int_eq(num(c, "SELECT count FROM nchat_stream_reaction_counts WHERE stream_id = $1"
			     " AND reaction_type = 'fire'", stream), 4);
	types = it_sql(c, "SELECT string_agg(reaction_type || count, ',' ORDER BY reaction_type)"
		       " FROM nchat_stream_reaction_counts WHERE stream_id = $1", 1, p);
	ck_assert_str_eq(types, "clap1,fire4,heart4,wow1");
	free(types);
	PQfinish(c);
	drop_db(db);
	free(stream);
	free(url);
	free(db);
}
END_TEST

int main(void)
{
	const char *need[] = {"NC_BIN", "NC_TEST_ADMIN_URL", "DATABASE_MIGRATE_URL", "NC_SQL_DIR",
			      "NC_RUN_DIR", NULL};
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("runs");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	srandom((unsigned)getpid());
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, fresh_then_noop);
	tcase_add_test(tc, concurrent_runs);
	tcase_add_test(tc, unreachable_database);
	tcase_add_test(tc, superuser_one_url);
	tcase_add_test(tc, migrator_without_createrole);
	tcase_add_test(tc, counter_deltas_carried_over);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
