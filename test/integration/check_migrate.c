/*
 * Integration tests of `nchat-rtc migrate` on fresh databases: applying the
 * whole schema, a second run that finds nothing to do, two concurrent runs,
 * and a changed file being refused.
 */
#include "harness.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
	const char *need[] = {"NC_BIN", "NC_TEST_ADMIN_URL", "DATABASE_MIGRATE_URL", "NC_SQL_DIR",
			      "NC_RUN_DIR", NULL};
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("runs");
	SRunner *sr;
	int failed;

	it_require(need);
	srandom((unsigned)getpid());
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, fresh_then_noop);
	tcase_add_test(tc, concurrent_runs);
	tcase_add_test(tc, unreachable_database);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
