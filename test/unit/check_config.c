/* Unit tests for config.c: defaults, environment, file override, errors. */
#include "core/config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void clear_env(void)
{
	const char *names[] = {"LISTEN_ADDR", "WORKERS", "DATABASE_URL", "REDIS_URL",
			       "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET",
			       "AUTH_JWT_SECRET", "HASURA_GRAPHQL_JWT_SECRET",
			       "AUTH_JWT_PUBLIC_KEY_FILE", "LIVEKIT_WEBHOOK_KEYS", "S3_ENDPOINT",
			       "S3_PUBLIC_ENDPOINT", "RING_TIMEOUT_SECONDS", "LOG_LEVEL",
			       "DATABASE_MIGRATE_URL", "S3_FORCE_PATH_STYLE", "LIVEKIT_API_URL", NULL};
	for (int i = 0; names[i]; i++)
		unsetenv(names[i]);
}

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/nc-cfg-XXXXXX");
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(defaults)
{
	char err[256];
	struct nc_config *c;

	clear_env();
	c = cfg_load(NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->listen_addr, "127.0.0.1:8080");
	ck_assert_int_eq(c->ring_timeout_s, 45);
	ck_assert_int_eq(c->max_room_participants, 100);
	ck_assert_int_eq(c->max_body_bytes, 65536);
	ck_assert_int_eq(c->recording_retention_days, 30);
	ck_assert(c->s3_force_path_style);
	ck_assert_int_eq(c->auth_alg, CFG_AUTH_NONE);
	ck_assert_int_ne(cfg_validate(c, CFG_NEED_DB, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "config: missing required setting DATABASE_URL");
	cfg_free(c);
}
END_TEST

START_TEST(env_and_derived)
{
	char err[256];
	struct nc_config *c;

	clear_env();
	setenv("LIVEKIT_URL", "wss://lk.example.com/", 1);
	setenv("LIVEKIT_API_KEY", "k1", 1);
	setenv("LIVEKIT_API_SECRET", "s1", 1);
	setenv("LIVEKIT_WEBHOOK_KEYS", "k0:old-secret, k2:s2", 1);
	setenv("AUTH_JWT_SECRET", "user-secret", 1);
	setenv("DATABASE_URL", "postgresql://app@h/db", 1);
	setenv("S3_ENDPOINT", "http://minio:9000", 1);
	c = cfg_load(NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->livekit_api_url, "https://lk.example.com");
	ck_assert_uint_eq(c->n_webhook_keys, 3);
	ck_assert_str_eq(c->webhook_keys[0].key, "k1");
	ck_assert_str_eq(c->webhook_keys[1].key, "k0");
	ck_assert_str_eq(c->webhook_keys[1].secret, "old-secret");
	ck_assert_str_eq(c->webhook_keys[2].secret, "s2");
	ck_assert_int_eq(c->auth_alg, CFG_AUTH_HS256);
	ck_assert_str_eq(c->migrate_database_url, "postgresql://app@h/db");
	ck_assert_str_eq(c->s3_public_endpoint, "http://minio:9000");
	cfg_free(c);
	setenv("LIVEKIT_URL", "ws://127.0.0.1:7880", 1);
	c = cfg_load(NULL, err, sizeof(err));
	ck_assert_str_eq(c->livekit_api_url, "http://127.0.0.1:7880");
	cfg_free(c);
	/* an explicit server-API URL wins (e.g. a name inside a container network) */
	setenv("LIVEKIT_API_URL", "http://livekit:7880/", 1);
	c = cfg_load(NULL, err, sizeof(err));
	ck_assert_str_eq(c->livekit_api_url, "http://livekit:7880");
	ck_assert_str_eq(c->livekit_url, "ws://127.0.0.1:7880");
	cfg_free(c);
	setenv("LIVEKIT_API_URL", "gopher://livekit", 1);
	ck_assert_ptr_null(cfg_load(NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "LIVEKIT_API_URL"));
	unsetenv("LIVEKIT_API_URL");
}
END_TEST

START_TEST(file_overrides_env)
{
	char err[256];
	char *path;
	struct nc_config *c;

	clear_env();
	setenv("RING_TIMEOUT_SECONDS", "30", 1);
	setenv("WORKERS", "3", 1);
	path = write_tmp("# comment\n\nRING_TIMEOUT_SECONDS = 12\nexport LISTEN_ADDR=\"0.0.0.0:9000\"\n"
			 "S3_FORCE_PATH_STYLE=false\n");
	c = cfg_load(path, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->ring_timeout_s, 12);
	ck_assert_int_eq(c->workers, 3);
	ck_assert_str_eq(c->listen_addr, "0.0.0.0:9000");
	ck_assert(!c->s3_force_path_style);
	cfg_free(c);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(malformed_values_name_the_key)
{
	char err[256];
	char *path;

	clear_env();
	setenv("WORKERS", "many", 1);
	ck_assert_ptr_null(cfg_load(NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "WORKERS"));
	unsetenv("WORKERS");
	setenv("RING_TIMEOUT_SECONDS", "0", 1);
	ck_assert_ptr_null(cfg_load(NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "RING_TIMEOUT_SECONDS"));
	unsetenv("RING_TIMEOUT_SECONDS");
	setenv("LIVEKIT_URL", "ftp://x", 1);
	ck_assert_ptr_null(cfg_load(NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "LIVEKIT_URL"));
	unsetenv("LIVEKIT_URL");
	setenv("HASURA_GRAPHQL_JWT_SECRET", "{\"type\":\"ES256\",\"key\":\"x\"}", 1);
	ck_assert_ptr_null(cfg_load(NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "HASURA_GRAPHQL_JWT_SECRET"));
	unsetenv("HASURA_GRAPHQL_JWT_SECRET");
	setenv("LIVEKIT_WEBHOOK_KEYS", "nocolon", 1);
	ck_assert_ptr_null(cfg_load(NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "LIVEKIT_WEBHOOK_KEYS"));
	unsetenv("LIVEKIT_WEBHOOK_KEYS");
	path = write_tmp("NOT_A_KEY=1\n");
	ck_assert_ptr_null(cfg_load(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "NOT_A_KEY"));
	unlink(path);
	free(path);
	ck_assert_ptr_null(cfg_load("/nonexistent/nchat.conf", err, sizeof(err)));
}
END_TEST

START_TEST(dump_masks_secrets)
{
	char err[256], buf[8192];
	struct nc_config *c;
	FILE *f;
	size_t n;

	clear_env();
	setenv("LIVEKIT_API_SECRET", "super-secret-value", 1);
	setenv("DATABASE_URL", "postgresql://app:pw@h/db", 1);
	c = cfg_load(NULL, err, sizeof(err));
	f = tmpfile();
	cfg_dump(c, fileno(f));
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	ck_assert_ptr_null(strstr(buf, "super-secret-value"));
	ck_assert_ptr_null(strstr(buf, "pw@"));
	ck_assert_ptr_nonnull(strstr(buf, "LIVEKIT_API_SECRET=(set)"));
	ck_assert_ptr_nonnull(strstr(buf, "RING_TIMEOUT_SECONDS=45"));
	cfg_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, env_and_derived);
	tcase_add_test(tc, file_overrides_env);
	tcase_add_test(tc, malformed_values_name_the_key);
	tcase_add_test(tc, dump_masks_secrets);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
