/*
 * check_s3.c - AWS Signature Version 4 as implemented in src/s3.c, checked
 * against the example values AWS publishes in its documentation (signing-key
 * derivation example; the S3 "GET Object" and "GET Bucket (List Objects)"
 * header-signing examples; the S3 presigned-URL example), plus the shape of
 * our own presigned URLs and the URI encoding rules.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3.h"

#define EX_ACCESS "AKIAIOSFODNN7EXAMPLE"
#define EX_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void hex(const unsigned char *k, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", k[i]);
}

/* AWS General Reference, "Examples of how to derive a signing key" (IAM, 20120215). */
START_TEST(signing_key_example)
{
	unsigned char k[32];
	char h[65];

	s3_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam", k);
	hex(k, 32, h);
	ck_assert_str_eq(h, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}
END_TEST

/* S3 API reference, "Example: GET Object" (Range header, examplebucket, 20130524). */
START_TEST(get_object_example)
{
	struct s3_header h[] = {
		{ "x-amz-date", "20130524T000000Z" },
		{ "range", "bytes=0-9" },
		{ "host", "examplebucket.s3.amazonaws.com" },
		{ "x-amz-content-sha256", EMPTY_SHA },
	};
	char *sh = NULL, *creq, sig[65], chash[65];

	creq = s3_canonical_request("GET", "/test.txt", "", h, 4, EMPTY_SHA, &sh);
	ck_assert_str_eq(sh, "host;range;x-amz-content-sha256;x-amz-date");
	ck_assert_str_eq(creq, "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
			       "range:bytes=0-9\nx-amz-content-sha256:" EMPTY_SHA "\n"
			       "x-amz-date:20130524T000000Z\n\n"
			       "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA);
	s3_sha256_hex(creq, strlen(creq), chash);
	ck_assert_str_eq(chash, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	s3_signature(EX_SECRET, "us-east-1", "20130524T000000Z", creq, sig);
	ck_assert_str_eq(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	free(creq);
	free(sh);
}
END_TEST

/* S3 API reference, "Example: GET Bucket (List Objects)" (?max-keys=2&prefix=J). */
START_TEST(list_objects_example)
{
	struct s3_header h[] = {
		{ "host", "examplebucket.s3.amazonaws.com" },
		{ "x-amz-content-sha256", EMPTY_SHA },
		{ "x-amz-date", "20130524T000000Z" },
	};
	char *creq, sig[65];

	creq = s3_canonical_request("GET", "/", "max-keys=2&prefix=J", h, 3, EMPTY_SHA, NULL);
	s3_signature(EX_SECRET, "us-east-1", "20130524T000000Z", creq, sig);
	ck_assert_str_eq(sig, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	free(creq);
}
END_TEST

/* S3 API reference, "Authenticating Requests: Using Query Parameters" (86400 s). */
START_TEST(presign_example)
{
	char *url = s3_presign_raw("https://examplebucket.s3.amazonaws.com",
				   "examplebucket.s3.amazonaws.com", "/test.txt", EX_ACCESS,
				   EX_SECRET, "us-east-1", "20130524T000000Z", 86400);

	ck_assert_str_eq(url,
		"https://examplebucket.s3.amazonaws.com/test.txt"
		"?X-Amz-Algorithm=AWS4-HMAC-SHA256"
		"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
		"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
	free(url);
}
END_TEST

/* Our own URLs: path-style on the public endpoint, TTL from the argument. */
START_TEST(presign_shape)
{
	static const char want[] =
		"https://media.example.com/nchat-recordings/recordings/direct/c%201/r.mp4?"
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20231114%2Feu-west-1%2Fs3%2Faws4_request"
		"&X-Amz-Date=20231114T221320Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
		"&X-Amz-Signature=";
	struct nc_config cfg = { 0 };
	char *url, *tampered;
	const char *sig;

	cfg.s3_endpoint = "http://s3.internal:9000";
	cfg.s3_public_endpoint = "https://media.example.com/";
	cfg.s3_bucket = "nchat-recordings";
	cfg.s3_region = "eu-west-1";
	cfg.s3_access_key = "AK";
	cfg.s3_secret_key = "SK";
	cfg.s3_force_path_style = false; /* presigned URLs are path-style regardless */
	url = s3_presign_get(&cfg, "recordings/direct/c 1/r.mp4", 300, 1700000000);
	ck_assert_ptr_nonnull(url);
	ck_assert_msg(strncmp(url, want, strlen(want)) == 0, "%s", url);
	sig = strstr(url, "X-Amz-Signature=") + 16;
	ck_assert_uint_eq(strlen(sig), 64);
	/* Deterministic, and any change of input changes the signature. */
	tampered = s3_presign_get(&cfg, "recordings/direct/c 1/r.mp5", 300, 1700000000);
	ck_assert_str_ne(strstr(tampered, "X-Amz-Signature="), strstr(url, "X-Amz-Signature="));
	free(tampered);
	free(url);
	cfg.s3_secret_key = NULL;
	ck_assert_ptr_null(s3_presign_get(&cfg, "k", 300, 1700000000));
}
END_TEST

START_TEST(uri_encoding)
{
	char *a = s3_uri_encode("a b/c~d_e.f-g+h=i&\xc3\xa9", true);
	char *b = s3_uri_encode("a/b", false);

	ck_assert_str_eq(a, "a%20b/c~d_e.f-g%2Bh%3Di%26%C3%A9");
	ck_assert_str_eq(b, "a%2Fb");
	free(a);
	free(b);
}
END_TEST

START_TEST(amz_date)
{
	char d[17];

	s3_amz_date(1369353600, d); /* 2013-05-24T00:00:00Z */
	ck_assert_str_eq(d, "20130524T000000Z");
}
END_TEST

START_TEST(not_configured_is_null)
{
	struct nc_config cfg = { 0 };

	ck_assert_ptr_null(s3_client_new(&cfg));
	cfg.s3_endpoint = "http://x";
	cfg.s3_bucket = "b";
	cfg.s3_access_key = "a";
	ck_assert_ptr_null(s3_client_new(&cfg)); /* no secret */
}
END_TEST

static Suite *s3_suite(void)
{
	Suite *s = suite_create("s3");
	TCase *tc = tcase_create("sigv4");

	tcase_add_test(tc, signing_key_example);
	tcase_add_test(tc, get_object_example);
	tcase_add_test(tc, list_objects_example);
	tcase_add_test(tc, presign_example);
	tcase_add_test(tc, presign_shape);
	tcase_add_test(tc, uri_encoding);
	tcase_add_test(tc, amz_date);
	tcase_add_test(tc, not_configured_is_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(s3_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
