/*
 * check_combine.c - core/combine.h: items of several threads run as one
 * batch, every item exactly once, at most `leaders` batches at a time, and
 * a thread alone runs its item at once.
 */
#include "core/combine.h"

#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct job {
	struct comb_item link;
	int value;
	int result;     /* value * 10, set by the batch */
	int batch;      /* which batch ran it (1-based) */
	int runs;       /* how many batches ran it: must end as 1 */
};

static atomic_int batches, items_run, max_size, running, max_running, hold_first;
static atomic_int sizes[64];

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static size_t queued(struct combiner *c)
{
	size_t n = 0;

	pthread_mutex_lock(&c->mu);
	for (struct comb_item *i = c->head; i != NULL; i = i->next)
		n++;
	pthread_mutex_unlock(&c->mu);
	return n;
}

static struct combiner *the_combiner;

static void run(void *ctx, struct comb_item **items, size_t n)
{
	int b = atomic_fetch_add(&batches, 1) + 1;
	int now = atomic_fetch_add(&running, 1) + 1, m;

	(void)ctx;
	while ((m = atomic_load(&max_running)) < now &&
	       !atomic_compare_exchange_weak(&max_running, &m, now))
		;
	if (b <= 63)
		atomic_store(&sizes[b], (int)n);
	atomic_fetch_add(&items_run, (int)n);
	while ((m = atomic_load(&max_size)) < (int)n &&
	       !atomic_compare_exchange_weak(&max_size, &m, (int)n))
		;
	/* the first batch waits until the other threads have queued theirs */
	if (b == 1)
		for (int i = 0; i < 2000 && queued(the_combiner) < (size_t)atomic_load(&hold_first); i++)
			sleep_ms(1);
	for (size_t i = 0; i < n; i++) {
		struct job *j = (struct job *)items[i];

		j->result = j->value * 10;
		j->batch = b;
		j->runs++;
	}
	sleep_ms(2);
	atomic_fetch_sub(&running, 1);
}

static void reset(int hold)
{
	atomic_store(&batches, 0);
	atomic_store(&items_run, 0);
	atomic_store(&max_size, 0);
	atomic_store(&running, 0);
	atomic_store(&max_running, 0);
	atomic_store(&hold_first, hold);
	for (int i = 0; i < 64; i++)
		atomic_store(&sizes[i], 0);
}

static void *submit(void *arg)
{
	struct job *j = arg;

	combine(the_combiner, &j->link, NULL);
	return NULL;
}

START_TEST(alone_runs_at_once)
{
	static struct combiner c = COMBINER_INIT(run, 1, 8);
	struct job j = { .value = 4 };

	the_combiner = &c;
	reset(0);
	combine(&c, &j.link, NULL);
	ck_assert_int_eq(j.result, 40);
	ck_assert_int_eq(j.runs, 1);
	ck_assert_int_eq(atomic_load(&batches), 1);
	ck_assert_int_eq(atomic_load(&sizes[1]), 1);
}
END_TEST

/* One thread's batch runs while five queue: those five go in the next batch together. */
START_TEST(waiting_items_go_in_one_batch)
{
	static struct combiner c = COMBINER_INIT(run, 1, 8);
	struct job jobs[6];
	pthread_t t[6];

	the_combiner = &c;
	reset(5);
	for (int i = 0; i < 6; i++) {
		jobs[i] = (struct job){ .value = i + 1 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, submit, &jobs[i]), 0);
		if (i == 0)
			while (atomic_load(&batches) == 0)
				sleep_ms(1);
	}
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&batches), 2);
	ck_assert_int_eq(atomic_load(&sizes[1]), 1);
	ck_assert_int_eq(atomic_load(&sizes[2]), 5);
	ck_assert_int_eq(jobs[0].batch, 1);
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(jobs[i].result, (i + 1) * 10);
		ck_assert_int_eq(jobs[i].runs, 1);
		if (i > 0)
			ck_assert_int_eq(jobs[i].batch, 2);
	}
	ck_assert_int_eq(atomic_load(&max_running), 1);
}
END_TEST

/* Many threads, many rounds: each item once, never more than `leaders` batches at a time, max per batch. */
START_TEST(leaders_and_max_hold)
{
	static struct combiner c = COMBINER_INIT(run, 2, 3);
	enum { THREADS = 12, ROUNDS = 20 };
	static struct job jobs[THREADS][ROUNDS];

	the_combiner = &c;
	reset(0);
	for (int r = 0; r < ROUNDS; r++) {
		pthread_t tr[THREADS];

		for (int i = 0; i < THREADS; i++) {
			jobs[i][r] = (struct job){ .value = i * 100 + r };
			ck_assert_int_eq(pthread_create(&tr[i], NULL, submit, &jobs[i][r]), 0);
		}
		for (int i = 0; i < THREADS; i++)
			pthread_join(tr[i], NULL);
	}
	for (int i = 0; i < THREADS; i++)
		for (int r = 0; r < ROUNDS; r++) {
			ck_assert_int_eq(jobs[i][r].runs, 1);
			ck_assert_int_eq(jobs[i][r].result, (i * 100 + r) * 10);
		}
	ck_assert_int_le(atomic_load(&max_running), 2);
	ck_assert_int_le(atomic_load(&max_size), 3);
	ck_assert_int_eq(atomic_load(&items_run), THREADS * ROUNDS);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("combine");
	TCase *tc = tcase_create("combine");

	tcase_add_test(tc, alone_runs_at_once);
	tcase_add_test(tc, waiting_items_go_in_one_batch);
	tcase_add_test(tc, leaders_and_max_hold);
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
