/* Unit tests for router.c: literal and {param} segments, 404 vs 405. */
#include "http/router.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static enum nc_err h(struct req *r, struct nc_error *err)
{
	(void)r;
	(void)err;
	return NC_OK;
}

static const struct route routes[] = {
	{RM_GET, "/healthz", h, 0, NULL, NULL},
	{RM_POST, "/api/calls/initiate", h, 0, NULL, NULL},
	{RM_GET, "/api/calls/{id}", h, 0, NULL, NULL},
	{RM_POST, "/api/calls/{id}/join", h, 0, NULL, NULL},
	{RM_POST, "/api/calls/{id}/participants/{userId}/mute", h, 0, NULL, NULL},
	{RM_DELETE, "/api/recordings/{id}", h, 0, NULL, NULL},
	{RM_GET, "/api/recordings/{id}", h, 0, NULL, NULL},
	{0, NULL, NULL, 0, NULL, NULL},
};

static enum route_result run(const char *path, unsigned m, struct route_match *out, char **buf)
{
	*buf = strdup(path);
	return route_match(routes, m, *buf, out);
}

START_TEST(literal_and_params)
{
	struct route_match m;
	char *b;

	ck_assert_int_eq(run("/healthz", RM_GET, &m, &b), ROUTE_FOUND);
	ck_assert_str_eq(m.route->pattern, "/healthz");
	free(b);
	ck_assert_int_eq(run("/api/calls/abc/join", RM_POST, &m, &b), ROUTE_FOUND);
	ck_assert_str_eq(m.route->pattern, "/api/calls/{id}/join");
	ck_assert_str_eq(route_param(&m, "id"), "abc");
	ck_assert_ptr_null(route_param(&m, "userId"));
	free(b);
	ck_assert_int_eq(run("/api/calls/c1/participants/u2/mute", RM_POST, &m, &b), ROUTE_FOUND);
	ck_assert_str_eq(route_param(&m, "id"), "c1");
	ck_assert_str_eq(route_param(&m, "userId"), "u2");
	free(b);
	/* literal beats nothing: "initiate" is matched by the literal POST route */
	ck_assert_int_eq(run("/api/calls/initiate", RM_POST, &m, &b), ROUTE_FOUND);
	ck_assert_str_eq(m.route->pattern, "/api/calls/initiate");
	free(b);
}
END_TEST

START_TEST(not_found_vs_method)
{
	struct route_match m;
	char *b, allow[64];

	ck_assert_int_eq(run("/nope", RM_GET, &m, &b), ROUTE_NOT_FOUND);
	free(b);
	ck_assert_int_eq(run("/api/calls/x/join/extra", RM_POST, &m, &b), ROUTE_NOT_FOUND);
	free(b);
	ck_assert_int_eq(run("/api/calls//join", RM_POST, &m, &b), ROUTE_NOT_FOUND);
	free(b);
	ck_assert_int_eq(run("/api/calls/x/join", RM_GET, &m, &b), ROUTE_BAD_METHOD);
	route_allow_header(m.allowed, allow, sizeof(allow));
	ck_assert_str_eq(allow, "POST");
	free(b);
	ck_assert_int_eq(run("/api/recordings/r1", RM_PUT, &m, &b), ROUTE_BAD_METHOD);
	route_allow_header(m.allowed, allow, sizeof(allow));
	ck_assert_str_eq(allow, "GET, DELETE");
	free(b);
	ck_assert_int_eq(run("relative", RM_GET, &m, &b), ROUTE_NOT_FOUND);
	free(b);
}
END_TEST

START_TEST(trailing_slash_and_limits)
{
	struct route_match m;
	char *b;
	char longpath[512] = "";

	ck_assert_int_eq(run("/healthz/", RM_GET, &m, &b), ROUTE_FOUND);
	free(b);
	for (int i = 0; i < 40; i++)
		strcat(longpath, "/a");
	ck_assert_int_eq(run(longpath, RM_GET, &m, &b), ROUTE_NOT_FOUND);
	free(b);
	ck_assert_int_eq(route_method_bit("DELETE"), RM_DELETE);
	ck_assert_int_eq(route_method_bit("BREW"), 0);
}
END_TEST

/* Routing on the raw path: an encoded slash never separates segments. */
START_TEST(percent_encoding_per_segment)
{
	struct route_match m;
	char *b;

	ck_assert_int_eq(run("/api%2fcalls%2finitiate", RM_POST, &m, &b), ROUTE_NOT_FOUND);
	free(b);
	ck_assert_int_eq(run("/api/calls/initiate%2F", RM_POST, &m, &b), ROUTE_NOT_FOUND);
	free(b);
	ck_assert_int_eq(run("/api/calls/abc%2fjoin", RM_GET, &m, &b), ROUTE_NOT_FOUND);
	free(b);
	ck_assert_int_eq(run("/api/calls/abc%2Fjoin", RM_POST, &m, &b), ROUTE_NOT_FOUND);
	free(b);
	/* other escapes decode inside their segment, literals and parameters alike */
	ck_assert_int_eq(run("/api/calls/%69nitiate", RM_POST, &m, &b), ROUTE_FOUND);
	ck_assert_str_eq(m.route->pattern, "/api/calls/initiate");
	free(b);
	ck_assert_int_eq(run("/api/calls/a%20b%3Fc/join", RM_POST, &m, &b), ROUTE_FOUND);
	ck_assert_str_eq(route_param(&m, "id"), "a b?c");
	free(b);
	ck_assert_int_eq(run("/api/calls/a+b", RM_GET, &m, &b), ROUTE_FOUND);
	ck_assert_str_eq(route_param(&m, "id"), "a+b"); /* '+' is not a space in a path */
	free(b);
	/* encoded NUL, malformed escapes */
	ck_assert_int_eq(run("/healthz%00x", RM_GET, &m, &b), ROUTE_BAD_PATH);
	free(b);
	ck_assert_int_eq(run("/api/calls/%zz", RM_GET, &m, &b), ROUTE_BAD_PATH);
	free(b);
	ck_assert_int_eq(run("/api/calls/abc%2", RM_GET, &m, &b), ROUTE_BAD_PATH);
	free(b);
	ck_assert_int_eq(run("/api/calls/abc%", RM_GET, &m, &b), ROUTE_BAD_PATH);
	free(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("router");
	TCase *tc = tcase_create("match");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, literal_and_params);
	tcase_add_test(tc, not_found_vs_method);
	tcase_add_test(tc, trailing_slash_and_limits);
	tcase_add_test(tc, percent_encoding_per_segment);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
