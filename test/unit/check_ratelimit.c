/*
 * Unit tests for ratelimit.c's in-process buckets (the fallback while Redis
 * is away; the Redis script keeps the same numbers): limits above one
 * request per millisecond per key, and the Retry-After wait.
 */
#include "http/ratelimit.h"
#include "core/config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

/* A burst of a 5,000-a-second limit is 5,000 requests, not 1,000. */
START_TEST(above_one_per_millisecond)
{
	struct rl_config rc;
	int allowed = 0, refused = 0;

	memset(&rc, 0, sizeof(rc));
	rc.ip.count = 5000;
	rc.ip.window_s = 1;
	for (int i = 0; i < 5000; i++)
		if (rl_check(NULL, &rc, RL_DEFAULT, NULL, "192.0.2.10", NULL) == 0)
			allowed++;
	ck_assert_int_eq(allowed, 5000);
	/* the bucket is empty now: refills at 5 a millisecond cannot keep up */
	for (int i = 0; i < 5000; i++)
		if (rl_check(NULL, &rc, RL_DEFAULT, NULL, "192.0.2.10", NULL) > 0)
			refused++;
	ck_assert_int_gt(refused, 0);
	/* another address has its own bucket */
	ck_assert_int_eq(rl_check(NULL, &rc, RL_DEFAULT, NULL, "192.0.2.11", NULL), 0);
}
END_TEST

/* 2 a minute: the third waits about 30 s, reported in milliseconds. */
START_TEST(wait_in_milliseconds)
{
	struct rl_config rc;
	long wait;

	memset(&rc, 0, sizeof(rc));
	rc.user[RL_JOIN].count = 2;
	rc.user[RL_JOIN].window_s = 60;
	ck_assert_int_eq(rl_check(NULL, &rc, RL_JOIN, "user-a", NULL, NULL), 0);
	ck_assert_int_eq(rl_check(NULL, &rc, RL_JOIN, "user-a", NULL, NULL), 0);
	wait = rl_check(NULL, &rc, RL_JOIN, "user-a", NULL, NULL);
	ck_assert_int_gt(wait, 29000);
	ck_assert_int_le(wait, 30000);
	/* a refused request charges nothing: the wait does not grow */
	ck_assert_int_le(rl_check(NULL, &rc, RL_JOIN, "user-a", NULL, NULL), wait);
	ck_assert_int_eq(rl_check(NULL, &rc, RL_JOIN, "user-b", NULL, NULL), 0);
}
END_TEST

/*
 * A route's own bucket is charged with the others, all or none: when it
 * refuses, the user's class bucket is not charged, and when the class
 * bucket refuses, the own bucket is not.
 */
START_TEST(own_bucket_all_or_none)
{
	struct rl_config rc;
	struct rl_bucket own = { "streamreact:s1:user-c", 3, 1 }, other = own;
	long wait;

	memset(&rc, 0, sizeof(rc));
	rc.user[RL_REACTIONS].count = 5;
	rc.user[RL_REACTIONS].window_s = 60;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(rl_check(NULL, &rc, RL_REACTIONS, "user-c", NULL, &own), 0);
	/* the own bucket is spent: refused for about a third of a second */
	wait = rl_check(NULL, &rc, RL_REACTIONS, "user-c", NULL, &own);
	ck_assert_int_gt(wait, 0);
	ck_assert_int_le(wait, 334);
	/* the class bucket was not charged by the refusal: two of five left */
	snprintf(other.key, sizeof(other.key), "streamreact:s2:user-c");
	ck_assert_int_eq(rl_check(NULL, &rc, RL_REACTIONS, "user-c", NULL, &other), 0);
	ck_assert_int_eq(rl_check(NULL, &rc, RL_REACTIONS, "user-c", NULL, &other), 0);
	/* now the class bucket refuses (for about 12 s), and charges no own bucket */
	wait = rl_check(NULL, &rc, RL_REACTIONS, "user-c", NULL, &other);
	ck_assert_int_gt(wait, 1000);
	rc.user[RL_REACTIONS].count = 0; /* class limit off: other still has one left */
	ck_assert_int_eq(rl_check(NULL, &rc, RL_REACTIONS, "user-c", NULL, &other), 0);
	ck_assert_int_gt(rl_check(NULL, &rc, RL_REACTIONS, "user-c", NULL, &other), 0);
	/* an own bucket with no count or no key is none */
	other.count = 0;
	ck_assert_int_eq(rl_check(NULL, &rc, RL_REACTIONS, "user-c", NULL, &other), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("local");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, above_one_per_millisecond);
	tcase_add_test(tc, wait_in_milliseconds);
	tcase_add_test(tc, own_bucket_all_or_none);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
