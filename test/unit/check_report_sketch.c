/*
 * Unit tests for the report sketches and parameters: HyperLogLog accuracy
 * within its stated error, histogram percentiles within 2.44 % of the
 * exact percentile_cont, the text forms round-tripping, exact rounding of
 * the figures, RFC 3339 parsing.
 */
#include "reports/reports_int.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct rpt_hll hll_of(int from, int n)
{
	struct rpt_hll h;
	char key[64];

	memset(&h, 0, sizeof(h));
	for (int i = from; i < from + n; i++) {
		snprintf(key, sizeof(key), "u:%08x-0000-4000-8000-%012d", i, i);
		rpt_hll_add(&h, rpt_hash(key));
	}
	return h;
}

START_TEST(hll_within_stated_error)
{
	static const int sizes[] = {0, 1, 2, 10, 50, 100, 1000, 5000, 20000, 200000};

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct rpt_hll h = hll_of(0, sizes[k]);
		double e = rpt_hll_estimate(&h), n = sizes[k];

		/* three standard errors (3 x 3.25 %), and two for tiny sets */
		ck_assert_msg(fabs(e - n) <= 3 * 0.0325 * n + 2, "n=%g estimate=%g", n, e);
	}
}
END_TEST

START_TEST(hll_merge_is_union_and_text_round_trips)
{
	struct rpt_hll a = hll_of(0, 3000), b = hll_of(2000, 3000), u = hll_of(0, 5000), d;
	char *text;

	rpt_hll_merge(&a, &b);
	ck_assert_mem_eq(a.reg, u.reg, sizeof(a.reg));   /* merge = sketch of the union */
	for (int n = 0; n < 2; n++) {
		struct rpt_hll s = n ? u : hll_of(0, 40);

		text = rpt_hll_encode(&s);
		ck_assert_ptr_nonnull(text);
		ck_assert_int_eq(text[0] == 'D', n);         /* sparse while small, then dense */
		memset(&d, 0, sizeof(d));
		ck_assert_int_eq(rpt_hll_decode(&d, text), 0);
		ck_assert_mem_eq(d.reg, s.reg, sizeof(d.reg));
		free(text);
	}
	memset(&d, 0, sizeof(d));
	ck_assert_ptr_null(rpt_hll_encode(&d));
	ck_assert_int_eq(rpt_hll_decode(&d, "00"), -1);
	ck_assert_int_eq(rpt_hll_decode(&d, "zzzz"), -1);
	ck_assert_int_eq(rpt_hll_decode(&d, "0020"), -1);   /* rank 0 */
	ck_assert_int_eq(rpt_hll_decode(&d, "Dxyz"), -1);
}
END_TEST

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* percentile_cont over a sorted array */
static double exact_pct(const double *v, int n, double p)
{
	double pos = p * (n - 1);
	int k = (int)floor(pos);

	return k + 1 < n ? v[k] + (pos - k) * (v[k + 1] - v[k]) : v[k];
}

START_TEST(hist_percentiles_within_stated_error)
{
	enum { N = 5000 };
	static double v[N];
	struct rpt_hist h = {0}, m = {0};
	char *text;
	double est;

	srand(19);
	for (int i = 0; i < N; i++) {
		v[i] = i % 50 == 0 ? 0.03 : exp((double)rand() / RAND_MAX * 8.0);   /* 1 .. 3000 */
		rpt_hist_add(&h, rpt_hist_bucket(v[i], RPT_UNIT_MS), 1);
	}
	qsort(v, N, sizeof(v[0]), cmp_double);
	for (double p = 0.05; p < 1.0; p += 0.15) {
		double want = exact_pct(v, N, p);

		ck_assert(rpt_hist_percentile(&h, RPT_UNIT_MS, p, &est));
		ck_assert_msg(fabs(est - want) <= 0.0244 * want + RPT_UNIT_MS / 2 + 1e-9,
			      "p=%g exact=%g estimate=%g", p, want, est);
	}
	text = rpt_hist_encode(&h);
	ck_assert_int_eq(rpt_hist_decode(&m, text), 0);
	ck_assert_int_eq(rpt_hist_decode(&m, text), 0);   /* decoding merges: twice the counts */
	ck_assert_uint_eq(rpt_hist_count(&m), 2 * N);
	free(text);
	ck_assert_int_eq(rpt_hist_decode(&m, "3:x"), -1);
	ck_assert_int_eq(rpt_hist_decode(&m, "400:1"), -1);
	rpt_hist_free(&m);
	ck_assert(!rpt_hist_percentile(&m, 1, 0.5, &est));
	ck_assert_int_eq(rpt_hist_bucket(0.0, 1), 0);
	ck_assert_int_eq(rpt_hist_bucket(1e300, 1), RPT_HIST_BUCKETS - 1);
	rpt_hist_free(&h);
}
END_TEST

/* The figures as JSON text, parsed back. */
static json_t *figures(const struct rpt_acc *a, bool quality)
{
	struct fw w;
	json_t *o;

	fw_init(&w, FW_JSON);
	fw_open(&w);
	if (quality)
		rpt_emit_quality(&w, a, NULL);
	else
		rpt_emit_usage(&w, a);
	fw_close(&w);
	fw_raw(&w, "", 1);
	o = json_loads(w.p, 0, NULL);
	ck_assert_msg(o != NULL, "not JSON: %s", w.p);
	fw_free(&w);
	return o;
}

START_TEST(figures_round_exactly)
{
	struct rpt_acc a = {0};
	struct fw w;
	json_t *f;
	__int128 v;

	ck_assert_int_eq(rpt_parse_e12("0.0005", &v), 0);
	ck_assert(v == (__int128)500000000);
	ck_assert_int_eq(rpt_parse_e12("12", &v), 0);
	ck_assert(v == (__int128)12 * 1000000000000LL);
	ck_assert_int_eq(rpt_parse_e12("1.2.3", &v), -1);
	a.loss_n = 2;
	a.loss_e12 = 1000000000;                   /* avg 0.0005 %: rounds up to 0.001 */
	a.samples = 3;
	a.q_good = 1;
	a.participants = 3;
	a.relay_participants = 2;
	f = figures(&a, true);
	ck_assert_double_eq(json_number_value(json_object_get(json_object_get(f, "packetLossPct"), "avg")),
			    0.001);
	ck_assert_double_eq(json_number_value(json_object_get(f, "turnRelayShare")), 0.6667);
	ck_assert_double_eq(json_number_value(json_object_get(json_object_get(f, "qualityShare"), "good")),
			    0.3333);
	ck_assert(json_is_null(json_object_get(json_object_get(f, "rttMs"), "p50")));
	json_decref(f);
	memset(&a, 0, sizeof(a));
	a.call_us = 90 * 1000000LL + 300000;       /* 1.505 minutes -> 1.51 */
	a.participant_us = 120 * 1000000LL;        /* 2 minutes: "2", no trailing zeros */
	f = figures(&a, false);
	ck_assert_double_eq(json_number_value(json_object_get(f, "callMinutes")), 1.51);
	ck_assert_int_eq(json_integer_value(json_object_get(f, "participantMinutes")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(f, "uniqueUsers")), 0);
	ck_assert(json_is_null(json_object_get(f, "setupMsP50")));
	json_decref(f);
	/* CSV: the header's dotted names and the row's cells line up */
	fw_init(&w, FW_CSV_HEAD);
	rpt_emit_quality(&w, &a, NULL);
	fw_line_end(&w);
	w.mode = FW_CSV_ROW;
	rpt_emit_quality(&w, &a, NULL);
	fw_raw(&w, "", 1);
	ck_assert_str_eq(w.p, "samples,participants,rttMs.p50,rttMs.p95,jitterMs.p50,jitterMs.p95,"
			 "packetLossPct.avg,packetLossPct.p95,bitrateKbps.avg,turnRelayShare,"
			 "iceFailureRate,qualityShare.excellent,qualityShare.good,qualityShare.poor,"
			 "qualityShare.lost\r\n0,0,,,,,,,,,,,,,");
	fw_free(&w);
}
END_TEST

/* Merging histograms, in place or growing, gives the counts of adding. */
START_TEST(hist_merge_matches_adding)
{
	struct rpt_hist total = {0}, part = {0};
	uint64_t want[RPT_HIST_BUCKETS] = {0};
	unsigned seed = 7;

	for (int round = 0; round < 300; round++) {
		/* every third part only has buckets the total has seen (in place) */
		int spread = round % 3 == 0 ? 20 : RPT_HIST_BUCKETS;

		part.n = 0;
		for (int k = 0; k < 1 + round % 17; k++) {
			int b;

			seed = seed * 1103515245u + 12345u;
			b = (int)((seed >> 8) % (unsigned)spread);
			rpt_hist_add(&part, b, 1 + (seed >> 20) % 5);
			want[b] += 1 + (seed >> 20) % 5;
		}
		rpt_hist_merge(&total, &part);
		for (uint32_t i = 1; i < total.n; i++)
			ck_assert_int_lt(total.e[i - 1].b, total.e[i].b);
	}
	for (int b = 0, i = 0; b < RPT_HIST_BUCKETS; b++) {
		if (want[b] == 0)
			continue;
		ck_assert_int_lt(i, (int)total.n);
		ck_assert_int_eq(total.e[i].b, b);
		ck_assert_uint_eq(total.e[i].c, want[b]);
		i++;
	}
	rpt_hist_free(&total);
	rpt_hist_free(&part);
}
END_TEST

/* Integers and scaled decimals are written as printf would. */
START_TEST(numbers_as_printf_writes_them)
{
	static const int64_t ints[] = {0, 1, -1, 9, 10, 99, 100, 123456789, -987654321,
				       INT64_MAX, INT64_MIN + 1, INT64_MIN};
	static const struct { int64_t v; int d; const char *text; } fixed[] = {
		{0, 2, "0"}, {5, 1, "0.5"}, {-5, 1, "-0.5"}, {150, 2, "1.5"}, {100, 2, "1"},
		{10001, 4, "1.0001"}, {-123450, 4, "-12.345"}, {7, 0, "7"}, {3, 3, "0.003"},
	};
	char want[64];
	struct fw w;

	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		fw_init(&w, FW_CSV_ROW);
		fw_int(&w, "x", ints[i]);
		snprintf(want, sizeof(want), "%lld", (long long)ints[i]);
		ck_assert_str_eq(w.p, want);
		fw_free(&w);
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		fw_init(&w, FW_CSV_ROW);
		fw_fixed(&w, "x", fixed[i].v, fixed[i].d);
		ck_assert_str_eq(w.p, fixed[i].text);
		fw_free(&w);
	}
	fw_init(&w, FW_JSON);
	fw_open(&w);
	fw_str(&w, "a\"b", "x\\y\nz");
	fw_close(&w);
	ck_assert_str_eq(w.p, "{\"a\\u0022b\":\"x\\u005cy\\u000az\"}");
	fw_free(&w);
}
END_TEST

START_TEST(rfc3339)
{
	int64_t us;

	ck_assert_int_eq(rpt_parse_rfc3339("2026-03-29T01:00:00Z", &us), 0);
	ck_assert(us == INT64_C(1774746000) * 1000000);
	ck_assert_int_eq(rpt_parse_rfc3339("2026-03-29T03:00:00+02:00", &us), 0);
	ck_assert(us == INT64_C(1774746000) * 1000000);
	ck_assert_int_eq(rpt_parse_rfc3339("2026-03-29T06:30:00.25 05:30", &us), 0);
	ck_assert(us == INT64_C(1774746000) * 1000000 + 250000);
	ck_assert_int_eq(rpt_parse_rfc3339("2024-02-29T00:00:00Z", &us), 0);
	ck_assert_int_eq(rpt_parse_rfc3339("2025-02-29T00:00:00Z", &us), -1);
	ck_assert_int_eq(rpt_parse_rfc3339("2026-03-29", &us), -1);
	ck_assert_int_eq(rpt_parse_rfc3339("2026-03-29T25:00:00Z", &us), -1);
	ck_assert_int_eq(rpt_parse_rfc3339("2026-03-29T01:00:00", &us), -1);
	ck_assert_int_eq(rpt_parse_rfc3339("2026-03-29T01:00:00Zjunk", &us), -1);
	ck_assert_int_eq(rpt_parse_rfc3339("yesterday", &us), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reports");
	TCase *tc = tcase_create("sketches");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, hll_within_stated_error);
	tcase_add_test(tc, hll_merge_is_union_and_text_round_trips);
	tcase_add_test(tc, hist_percentiles_within_stated_error);
	tcase_add_test(tc, figures_round_exactly);
	tcase_add_test(tc, hist_merge_matches_adding);
	tcase_add_test(tc, numbers_as_printf_writes_them);
	tcase_add_test(tc, rfc3339);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
