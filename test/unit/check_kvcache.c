/*
 * check_kvcache.c - core/kvcache.h: a hit is always the value put under
 * that very key (with more keys than slots, and from several threads at
 * once), values longer than the caller's room miss, clear empties it.
 */
#include "core/kvcache.h"

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kvcache table = KVCACHE_INIT;

/* The value that belongs to key k: its text, reversed, and its number. */
static size_t value_of(long k, char *out, size_t cap)
{
	char key[32];
	int n = snprintf(key, sizeof(key), "key-%ld", k);

	for (int i = 0; i < n; i++)
		out[i] = key[n - 1 - i];
	return (size_t)snprintf(out + n, cap - (size_t)n, "|%ld", k) + (size_t)n;
}

static size_t key_of(long k, char *out, size_t cap)
{
	return (size_t)snprintf(out, cap, "key-%ld", k);
}

START_TEST(hit_is_own_value)
{
	char key[32], val[64], want[64];
	size_t klen, vlen, len;
	long hits = 0;

	kvcache_clear(&table);
	for (long k = 0; k < 3 * KVCACHE_SLOTS; k++) {
		klen = key_of(k, key, sizeof(key));
		vlen = value_of(k, val, sizeof(val));
		kvcache_put(&table, key, klen, val, vlen);
	}
	for (long k = 0; k < 3 * KVCACHE_SLOTS; k++) {
		klen = key_of(k, key, sizeof(key));
		if (!kvcache_get(&table, key, klen, val, sizeof(val), &len))
			continue;
		vlen = value_of(k, want, sizeof(want));
		ck_assert_uint_eq(len, vlen);
		ck_assert(memcmp(val, want, len) == 0);
		hits++;
	}
	/* each slot holds the last key put in it: at most one per slot, and most slots used */
	ck_assert_int_le(hits, KVCACHE_SLOTS);
	ck_assert_int_gt(hits, KVCACHE_SLOTS / 2);
	/* a key that is a prefix of a stored one, or longer, is another key */
	kvcache_put(&table, "abc", 3, "1", 1);
	ck_assert(!kvcache_get(&table, "ab", 2, val, sizeof(val), &len) ||
		  memcmp(val, "1", 1) != 0 || len != 1);
	ck_assert(kvcache_get(&table, "abc", 3, val, sizeof(val), &len));
	ck_assert_uint_eq(len, 1);
	/* too little room: a miss, nothing written past cap */
	memset(val, 'x', sizeof(val));
	kvcache_put(&table, "long", 4, "0123456789", 10);
	ck_assert(!kvcache_get(&table, "long", 4, val, 9, &len));
	ck_assert(kvcache_get(&table, "long", 4, val, 10, &len));
	ck_assert_uint_eq(len, 10);
	kvcache_clear(&table);
	ck_assert(!kvcache_get(&table, "abc", 3, val, sizeof(val), &len));
	ck_assert(!kvcache_get(&table, "long", 4, val, sizeof(val), &len));
}
END_TEST

#define THREADS 4
#define KEYS 20000

static void *worker(void *arg)
{
	long t = (long)(intptr_t)arg, bad = 0;
	char key[32], val[64], want[64];

	for (long i = 0; i < 60000; i++) {
		long k = (i * 7919 + t * 104729) % KEYS;
		size_t klen = key_of(k, key, sizeof(key)), len, vlen;

		if (kvcache_get(&table, key, klen, val, sizeof(val), &len)) {
			vlen = value_of(k, want, sizeof(want));
			if (len != vlen || memcmp(val, want, len) != 0)
				bad++;
		} else {
			vlen = value_of(k, want, sizeof(want));
			kvcache_put(&table, key, klen, want, vlen);
		}
	}
	return (void *)(intptr_t)bad;
}

START_TEST(threads_see_only_own_values)
{
	pthread_t th[THREADS];
	long bad = 0;

	kvcache_clear(&table);
	for (long t = 0; t < THREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t), 0);
	for (int t = 0; t < THREADS; t++) {
		void *r;

		ck_assert_int_eq(pthread_join(th[t], &r), 0);
		bad += (long)(intptr_t)r;
	}
	ck_assert_int_eq(bad, 0);
	kvcache_clear(&table);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("kvcache");
	TCase *tc = tcase_create("kvcache");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, hit_is_own_value);
	tcase_add_test(tc, threads_see_only_own_values);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
