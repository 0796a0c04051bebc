/*
 * Unit tests for the rollup sweep's binary reads (reports_read.c): a result
 * built by libpq itself (PQmakeEmptyPGresult, PQsetvalue) in the wire's
 * binary format - uuids as 16 bytes, timestamps as microseconds since
 * 2000-01-01, big-endian integers - reads back as the values the text
 * format gave, columns of another type are refused, values of another
 * length read as NULL.
 */
#include "reports/reports_int.h"

#include <check.h>
#include <endian.h>
#include <string.h>

enum { COLS = 6 };

/* One row: uuid, timestamptz, int4, bool, text, int8 (binary), then NULLs. */
static PGresult *result(unsigned ts_type)
{
	static char names[COLS][8] = {"u", "t", "i", "b", "s", "l"};
	const unsigned types[COLS] = {2950, ts_type, 23, 16, 25, 20};
	PGresAttDesc att[COLS];
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	static const unsigned char uuid[16] = {0x5d, 0x1c, 0x0f, 0x7e, 0x2b, 0x3a, 0x4c, 0x5d,
					       0x8e, 0x9f, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f};
	/* 2026-03-29T01:00:00.25Z, in Postgres's epoch */
	uint64_t ts = htobe64((uint64_t)(INT64_C(1774746000250000) - INT64_C(946684800000000)));
	uint32_t i4 = htobe32((uint32_t)-42);
	uint64_t i8 = htobe64((uint64_t)INT64_C(-9000000000));
	char t = 1;

	memset(att, 0, sizeof(att));
	for (int k = 0; k < COLS; k++) {
		att[k].name = names[k];
		att[k].format = 1;
		att[k].typid = types[k];
		att[k].typlen = -1;
		att[k].atttypmod = -1;
	}
	ck_assert_int_eq(PQsetResultAttrs(res, COLS, att), 1);
	ck_assert_int_eq(PQsetvalue(res, 0, 0, (char *)uuid, 16), 1);
	ck_assert_int_eq(PQsetvalue(res, 0, 1, (char *)&ts, 8), 1);
	ck_assert_int_eq(PQsetvalue(res, 0, 2, (char *)&i4, 4), 1);
	ck_assert_int_eq(PQsetvalue(res, 0, 3, &t, 1), 1);
	ck_assert_int_eq(PQsetvalue(res, 0, 4, "relay", 5), 1);
	ck_assert_int_eq(PQsetvalue(res, 0, 5, (char *)&i8, 8), 1);
	for (int k = 0; k < COLS; k++)
		ck_assert_int_eq(PQsetvalue(res, 1, k, NULL, -1), 1);
	/* row 2: wrong lengths */
	for (int k = 0; k < COLS; k++)
		ck_assert_int_eq(PQsetvalue(res, 2, k, "abc", 3), 1);
	return res;
}

static const struct rpt_bin_col cols[COLS] = {
	{"u", RB_UUID}, {"t", RB_TS}, {"i", RB_INT4}, {"b", RB_BOOL}, {"s", RB_TEXT}, {"l", RB_INT8},
};

START_TEST(binary_values_read_back)
{
	PGresult *res = result(1184);
	struct nc_error err = {0};
	int f[COLS];
	char text[37];

	ck_assert_int_eq(rpt_bin_columns(res, cols, f, COLS, &err), NC_OK);
	rpt_uuid_text(rpt_bin_uuid(res, 0, f[0]), text);
	ck_assert_str_eq(text, "5d1c0f7e-2b3a-4c5d-8e9f-0a1b2c3d4e5f");
	ck_assert(rpt_bin_ts(res, 0, f[1]) == INT64_C(1774746000250000));
	ck_assert(rpt_bin_i32(res, 0, f[2], 0) == -42);
	ck_assert(rpt_bin_bool(res, 0, f[3]));
	ck_assert_str_eq(rpt_bin_text(res, 0, f[4]), "relay");
	ck_assert(rpt_bin_i64(res, 0, f[5], 0) == INT64_C(-9000000000));
	/* NULLs */
	ck_assert_ptr_null(rpt_bin_uuid(res, 1, f[0]));
	ck_assert(rpt_bin_ts(res, 1, f[1]) == RPT_NO_TS);
	ck_assert(rpt_bin_i32(res, 1, f[2], 7) == 7);
	ck_assert(!rpt_bin_bool(res, 1, f[3]));
	ck_assert_ptr_null(rpt_bin_text(res, 1, f[4]));
	ck_assert(rpt_bin_i64(res, 1, f[5], 8) == 8);
	/* values of the wrong length are no values */
	ck_assert_ptr_null(rpt_bin_uuid(res, 2, f[0]));
	ck_assert(rpt_bin_ts(res, 2, f[1]) == RPT_NO_TS);
	ck_assert(rpt_bin_i32(res, 2, f[2], 7) == 7);
	ck_assert(!rpt_bin_bool(res, 2, f[3]));
	PQclear(res);
}
END_TEST

START_TEST(columns_of_another_type_are_refused)
{
	PGresult *res = result(1114);   /* timestamp without time zone */
	struct nc_error err = {0};
	int f[COLS];
	static const struct rpt_bin_col missing[1] = {{"nope", RB_TEXT}};

	ck_assert_int_eq(rpt_bin_columns(res, cols, f, COLS, &err), NC_EINTERNAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "t is not binary timestamptz"));
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rpt_bin_columns(res, missing, f, 1, &err), NC_EINTERNAL);
	PQclear(res);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("report_read");
	TCase *tc = tcase_create("binary");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, binary_values_read_back);
	tcase_add_test(tc, columns_of_another_type_are_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
