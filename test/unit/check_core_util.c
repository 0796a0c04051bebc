/*
 * Unit tests for the one-of-each utilities: core/b64.c, core/uuid.c,
 * core/buf.c and store/db_row.c (on results built client-side, no server).
 */
#include "core/b64.h"
#include "core/buf.h"
#include "core/uuid.h"
#include "store/db_row.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(b64url_vectors)
{
	/* RFC 4648 §10 vectors, in the url alphabet without padding. */
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	char out[16];
	unsigned char dec[16];

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		size_t n = strlen(plain[i]);

		ck_assert_uint_eq(b64url_encode(plain[i], n, out), strlen(enc[i]));
		ck_assert_uint_eq(B64URL_LEN(n), strlen(enc[i]));
		ck_assert_str_eq(out, enc[i]);
		ck_assert_int_eq(b64url_decode(enc[i], strlen(enc[i]), dec), (long)n);
		ck_assert_int_eq(memcmp(dec, plain[i], n), 0);
	}
	/* The url alphabet: 0xfb 0xff -> "-_8". */
	ck_assert_uint_eq(b64url_encode("\xfb\xff", 2, out), 3);
	ck_assert_str_eq(out, "-_8");
	char *s = b64url_encode_str("2026-01-02T03:04:05Z|x");
	ck_assert_str_eq(s, "MjAyNi0wMS0wMlQwMzowNDowNVp8eA");
	free(s);
}
END_TEST

START_TEST(b64url_refuses)
{
	unsigned char dec[16];

	ck_assert_int_eq(b64url_decode("Zm9v+A", 6, dec), -1);  /* standard alphabet */
	ck_assert_int_eq(b64url_decode("Zm9/", 4, dec), -1);
	ck_assert_int_eq(b64url_decode("Zg==", 4, dec), -1);    /* padding */
	ck_assert_int_eq(b64url_decode("Zm9vY", 5, dec), -1);   /* impossible length */
	ck_assert_int_eq(b64url_decode("Zh", 2, dec), -1);      /* non-zero spare bits */
	ck_assert_int_eq(b64url_decode("Z g", 3, dec), -1);
}
END_TEST

START_TEST(uuid_forms)
{
	char low[37], made[37];
	const char ids[2][37] = {"0b7c6b2e-0000-4000-8000-000000000001",
				 "0b7c6b2e-0000-4000-8000-000000000002"};
	char *lit;

	ck_assert(is_uuid("0B7C6B2E-0000-4000-8000-00000000000A"));
	ck_assert(!is_uuid("0b7c6b2e-0000-4000-8000-00000000000"));
	ck_assert(!is_uuid("0b7c6b2e00000-4000-8000-000000000001"));
	ck_assert(!is_uuid("0b7c6b2e-0000-4000-8000-00000000000g"));
	ck_assert(!is_uuid(NULL));
	uuid_lower("0B7C6B2E-0000-4000-8000-00000000000A", low);
	ck_assert_str_eq(low, "0b7c6b2e-0000-4000-8000-00000000000a");
	uuid_v4(made);
	ck_assert(is_uuid(made));
	ck_assert_int_eq(made[14], '4');
	ck_assert(strchr("89ab", made[19]) != NULL);
	lit = uuid_array_literal(ids, 2);
	ck_assert_str_eq(lit, "{0b7c6b2e-0000-4000-8000-000000000001,"
			      "0b7c6b2e-0000-4000-8000-000000000002}");
	free(lit);
	lit = uuid_array_literal(ids, 0);
	ck_assert_str_eq(lit, "{}");
	free(lit);
}
END_TEST

START_TEST(buf_grows)
{
	struct buf b = {0};
	char *s;

	ck_assert_str_eq(buf_str(&b), "");
	for (int i = 0; i < 1000; i++)
		buf_addf(&b, "%d,", i % 10);
	ck_assert_uint_eq(b.len, 2000);
	ck_assert_uint_eq(strlen(buf_str(&b)), 2000);
	buf_addn(&b, "ab\0c", 2);
	buf_add(&b, "!");
	ck_assert_str_eq(buf_str(&b) + 2000, "ab!");
	s = buf_steal(&b);
	ck_assert_ptr_null(b.p);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(strlen(s), 2003);
	free(s);
	s = buf_steal(&b);
	ck_assert_str_eq(s, "");
	free(s);

	char *p = NULL;
	size_t len = 0, cap = 0;
	ck_assert(buf_append_capped(&p, &len, &cap, 5, "abc", 3));
	ck_assert(!buf_append_capped(&p, &len, &cap, 5, "def", 3));
	ck_assert_str_eq(p, "abc");
	ck_assert(buf_append_capped(&p, &len, &cap, 5, "de", 2));
	ck_assert_str_eq(p, "abcde");
	free(p);
}
END_TEST

/* A result with columns (id text, n int8, ok bool, meta jsonb) and two rows. */
static PGresult *make_result(void)
{
	PGresAttDesc cols[4];
	const char *names[4] = {"id", "n", "ok", "meta"};
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

	ck_assert_ptr_nonnull(res);
	memset(cols, 0, sizeof(cols));
	for (int i = 0; i < 4; i++) {
		cols[i].name = (char *)names[i];
		cols[i].format = 0;
		cols[i].typlen = -1;
		cols[i].atttypmod = -1;
	}
	ck_assert(PQsetResultAttrs(res, 4, cols));
	ck_assert(PQsetvalue(res, 0, 0, "a", 1));
	ck_assert(PQsetvalue(res, 0, 1, "42", 2));
	ck_assert(PQsetvalue(res, 0, 2, "t", 1));
	ck_assert(PQsetvalue(res, 0, 3, "{\"k\":[1,2]}", 11));
	ck_assert(PQsetvalue(res, 1, 0, NULL, -1));
	ck_assert(PQsetvalue(res, 1, 1, "x7", 2));
	ck_assert(PQsetvalue(res, 1, 2, "f", 1));
	ck_assert(PQsetvalue(res, 1, 3, NULL, -1));
	return res;
}

START_TEST(db_row_by_name)
{
	PGresult *res = make_result();
	json_t *j;

	ck_assert_int_eq(row_col(res, "ok"), 2);
	ck_assert_int_eq(row_col(res, "missing"), -1);
	ck_assert_str_eq(row_text(res, 0, "id"), "a");
	ck_assert_ptr_null(row_text(res, 1, "id"));
	ck_assert(row_is_null(res, 1, "id"));
	ck_assert_ptr_null(row_text(res, 0, "missing"));
	ck_assert_ptr_null(row_text(res, 5, "id"));
	ck_assert_int_eq(row_i64(res, 0, "n", -1), 42);
	ck_assert_int_eq(row_i64(res, 1, "n", -1), -1); /* garbage */
	ck_assert(row_bool(res, 0, "ok", false));
	ck_assert(!row_bool(res, 1, "ok", true));
	ck_assert(row_bool(res, 1, "missing", true));
	j = row_json(res, 0, "meta");
	ck_assert(json_is_object(j));
	ck_assert_int_eq(json_array_size(json_object_get(j, "k")), 2);
	json_decref(j);
	j = row_json(res, 1, "meta");
	ck_assert(json_is_null(j));
	j = row_json_str(res, 0, "id");
	ck_assert_str_eq(json_string_value(j), "a");
	json_decref(j);
	j = row_json_int(res, 0, "n");
	ck_assert_int_eq(json_integer_value(j), 42);
	json_decref(j);
	ck_assert(json_is_null(row_json_str(res, 1, "id")));
	PQclear(res);
}
END_TEST

/* Array literals for query parameters: quoted, escaped, NULL as SQL NULL. */
START_TEST(db_array_literal)
{
	struct buf b = { 0 };

	buf_add(&b, "{");
	row_array_add(&b, "plain");
	row_array_add(&b, NULL);
	row_array_add(&b, "a\"b\\c");
	row_array_add(&b, "{,}");
	row_array_add(&b, "");
	buf_add(&b, "}");
	ck_assert_str_eq(buf_str(&b), "{\"plain\",NULL,\"a\\\"b\\\\c\",\"{,}\",\"\"}");
	buf_free(&b);
	/* a first element of NULL, and a list of one */
	buf_add(&b, "{");
	row_array_add(&b, NULL);
	row_array_add(&b, "x");
	buf_add(&b, "}");
	ck_assert_str_eq(buf_str(&b), "{NULL,\"x\"}");
	buf_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("core_util");
	TCase *tc = tcase_create("util");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, b64url_vectors);
	tcase_add_test(tc, b64url_refuses);
	tcase_add_test(tc, uuid_forms);
	tcase_add_test(tc, buf_grows);
	tcase_add_test(tc, db_row_by_name);
	tcase_add_test(tc, db_array_literal);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
