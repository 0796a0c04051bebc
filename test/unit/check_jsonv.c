/* Unit tests for jsonv.c: typed getters, 400 messages naming the field, UTF-8. */
#include "core/jsonv.h"

#include <check.h>
#include <string.h>

static json_t *obj(const char *text)
{
	json_t *o = json_loads(text, 0, NULL);

	ck_assert_ptr_nonnull(o);
	return o;
}

START_TEST(strings_and_lengths)
{
	json_t *o = obj("{\"a\":\"héllo\",\"n\":5,\"z\":null,\"e\":\"\"}");
	struct nc_error e = {0};
	const char *s = NULL;

	ck_assert_int_eq(jv_string(o, "a", JV_REQUIRED, 1, 5, &s, &e), 1);
	ck_assert_str_eq(s, "héllo"); /* 5 characters, 6 bytes */
	ck_assert_int_eq(jv_string(o, "a", 0, 1, 4, &s, &e), -1);
	ck_assert_str_eq(e.msg, "a must be 1 to 4 characters");
	ck_assert_int_eq(jv_string(o, "n", 0, 0, 10, &s, &e), -1);
	ck_assert_str_eq(e.msg, "n must be a string");
	ck_assert_int_eq(e.code, NC_EBADREQ);
	ck_assert_int_eq(jv_string(o, "missing", 0, 0, 10, &s, &e), 0);
	ck_assert_int_eq(jv_string(o, "z", 0, 0, 10, &s, &e), 0);
	ck_assert_int_eq(jv_string(o, "missing", JV_REQUIRED, 0, 10, &s, &e), -1);
	ck_assert_str_eq(e.msg, "missing is required");
	ck_assert_int_eq(jv_string(o, "e", 0, 1, 10, &s, &e), -1);
	json_decref(o);
}
END_TEST

START_TEST(uuids_enums_numbers)
{
	json_t *o = obj("{\"id\":\"0b9e6f2a-5f0c-4d8e-9a57-3c1d2e4f5a6b\",\"bad\":\"0b9e6f2a\","
			"\"t\":\"video\",\"u\":\"fax\",\"i\":42,\"f\":1.5,\"b\":true,"
			"\"ids\":[\"0b9e6f2a-5f0c-4d8e-9a57-3c1d2e4f5a6b\"],\"mixed\":[\"x\"],"
			"\"m\":{\"k\":\"v\"}}");
	static const char *const types[] = {"audio", "video", "screen_share", NULL};
	struct nc_error e = {0};
	const char *s;
	long long i;
	double d;
	bool b;
	json_t *a;

	ck_assert_int_eq(jv_uuid(o, "id", JV_REQUIRED, &s, &e), 1);
	ck_assert_int_eq(jv_uuid(o, "bad", 0, &s, &e), -1);
	ck_assert_str_eq(e.msg, "bad must be a UUID");
	ck_assert_int_eq(jv_enum(o, "t", JV_REQUIRED, types, &s, &e), 1);
	ck_assert_ptr_eq(s, types[1]);
	ck_assert_int_eq(jv_enum(o, "u", JV_REQUIRED, types, &s, &e), -1);
	ck_assert_str_eq(e.msg, "u must be one of: audio, video, screen_share");
	ck_assert_int_eq(jv_int(o, "i", 0, 0, 100, &i, &e), 1);
	ck_assert_int_eq(i, 42);
	ck_assert_int_eq(jv_int(o, "i", 0, 0, 10, &i, &e), -1);
	ck_assert_int_eq(jv_int(o, "f", 0, 0, 10, &i, &e), -1);
	ck_assert_int_eq(jv_number(o, "f", 0, 0, 10, &d, &e), 1);
	ck_assert_int_eq(jv_number(o, "i", 0, 0, 100, &d, &e), 1);
	ck_assert_int_eq(jv_bool(o, "b", 0, &b, &e), 1);
	ck_assert(b);
	ck_assert_int_eq(jv_bool(o, "i", 0, &b, &e), -1);
	ck_assert_int_eq(jv_uuid_array(o, "ids", 0, 10, &a, &e), 1);
	ck_assert_int_eq(jv_uuid_array(o, "mixed", 0, 10, &a, &e), -1);
	ck_assert_int_eq(jv_object(o, "m", 0, 100, &a, &e), 1);
	ck_assert_int_eq(jv_object(o, "m", 0, 5, &a, &e), -1);
	json_decref(o);
}
END_TEST

START_TEST(utf8)
{
	ck_assert(utf8_valid("plain", 5));
	ck_assert(utf8_valid("\xe2\x82\xac", 3));          /* euro sign */
	ck_assert(utf8_valid("\xf0\x9f\x94\xa5", 4));      /* fire emoji */
	ck_assert(!utf8_valid("\xc0\xaf", 2));             /* overlong */
	ck_assert(!utf8_valid("\xed\xa0\x80", 3));         /* surrogate */
	ck_assert(!utf8_valid("\xe2\x82", 2));             /* truncated */
	ck_assert(!utf8_valid("a\0b", 3));                 /* NUL */
	ck_assert(!utf8_valid("\xff", 1));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jsonv");
	TCase *tc = tcase_create("getters");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, strings_and_lengths);
	tcase_add_test(tc, uuids_enums_numbers);
	tcase_add_test(tc, utf8);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
