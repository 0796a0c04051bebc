/*
 * Unit tests for http_framing.c: sound framings pass (whole, byte by byte,
 * pipelined), and every request-smuggling shape is refused at the request
 * that carries it.
 */
#include "http/http_framing.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feed s whole; returns -1/0 and the number of requests begun. */
static int feed_all(const char *s, unsigned *requests, const char **why)
{
	struct http_framer f;
	int rc;

	http_framer_init(&f);
	rc = http_framer_feed(&f, s, strlen(s));
	if (requests)
		*requests = f.requests;
	if (why)
		*why = f.error;
	return rc;
}

/* Feed s one byte at a time: the result must not depend on the split. */
static int feed_bytes(const char *s, unsigned *requests)
{
	struct http_framer f;
	int rc = 0;

	http_framer_init(&f);
	for (size_t i = 0; s[i] != '\0' && rc == 0; i++)
		rc = http_framer_feed(&f, s + i, 1);
	*requests = f.requests;
	return rc;
}

static void sound(const char *s, unsigned want_requests)
{
	unsigned n1 = 0, n2 = 0;
	const char *why = NULL;

	ck_assert_msg(feed_all(s, &n1, &why) == 0, "refused (%s): %s", why ? why : "?", s);
	ck_assert_int_eq(n1, want_requests);
	ck_assert_int_eq(feed_bytes(s, &n2), 0);
	ck_assert_int_eq(n2, want_requests);
}

/* Refused, at request number bad_request (counting from 0). */
static void refused(const char *s, unsigned bad_request)
{
	unsigned n1 = 0, n2 = 0;
	const char *why = NULL;

	ck_assert_msg(feed_all(s, &n1, &why) == -1, "accepted: %s", s);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(n1 == bad_request + 1, "refused at request %u, not %u: %s", n1 - 1,
		      bad_request, s);
	ck_assert_int_eq(feed_bytes(s, &n2), -1);
	ck_assert_int_eq(n2, n1);
}

#define GET_OK "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

START_TEST(sound_framings)
{
	sound(GET_OK, 1);
	sound(GET_OK GET_OK GET_OK, 3);
	sound("GET / HTTP/1.1\nHost: x\n\n", 1); /* bare LF line ends (as evhttp reads them) */
	sound("POST /a HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"x\":1}" GET_OK, 2);
	sound("POST /a HTTP/1.1\r\ncontent-length:\t 007 \r\n\r\n{\"x\":1}" GET_OK, 2);
	sound("GET /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" GET_OK, 2);
	sound("HEAD /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n" GET_OK, 2);
	sound("POST /a HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
	      "2\r\n{}\r\nA \r\n0123456789\r\n0\r\n\r\n" GET_OK, 2);
	sound("POST /a HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", 1);
	/* body bytes are never parsed: anything goes in them */
	sound("POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n\r\n :\r x\nab" GET_OK, 2);
	sound("PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n", 1);
	sound("GET / HTTP/1.1\r\nX-Long: 012345678901234567890123456789012345678901234567890\r\n"
	      "X-Content-Length-Not: 5, 6\r\n\r\n", 1);
}
END_TEST

START_TEST(content_length_shapes)
{
	refused("POST /a HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 522\r\n\r\n{\"x\":1}", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n{\"x\":1}", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length: -0\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n{\"x\":1}", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length:\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length\t: 5\r\n\r\nhello", 0);
	/* methods evhttp reads no body for */
	refused("HEAD /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /", 0);
	refused("TRACE /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /", 0);
	refused("PROPFIND /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /", 0);
	/* the second of three requests is the bad one */
	refused(GET_OK "POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx" GET_OK, 1);
}
END_TEST

START_TEST(transfer_encoding_shapes)
{
	refused("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", 0);
	refused("POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0);
	refused("HEAD /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0);
	refused("POST /a HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 0);
}
END_TEST

START_TEST(chunk_shapes)
{
#define CH "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	refused(CH "0x2\r\n{}\r\n0\r\n\r\n", 0);
	refused(CH "+2\r\n{}\r\n0\r\n\r\n", 0);
	refused(CH " 2\r\n{}\r\n0\r\n\r\n", 0);
	refused(CH "2;ext=1\r\n{}\r\n0\r\n\r\n", 0);
	refused(CH "2 junk\r\n{}\r\n0\r\n\r\n", 0);
	refused(CH "2\r\n{}XX0\r\n\r\n", 0);
	refused(CH "2\r\n{}\r\n\r\n0\r\n\r\n", 0); /* an empty line where a size belongs */
	refused(CH "1000000000000000\r\n", 0);
	refused(CH "0\r\nX-Trailer: 1\r\n\r\n", 0);
	refused(CH "\r\n0\r\n\r\n", 0);
#undef CH
}
END_TEST

START_TEST(line_shapes)
{
	/* obs-fold, in any header */
	refused("GET / HTTP/1.1\r\nAuthorization: Bearer\r\n abc\r\n\r\n", 0);
	refused("GET / HTTP/1.1\r\nX-A: 1\r\n\tb\r\n\r\n", 0);
	refused("GET / HTTP/1.1\r\n Host: x\r\n\r\n", 0);
	/* names that are not tokens, empty names, no colon */
	refused("GET / HTTP/1.1\r\n: x\r\n\r\n", 0);
	refused("GET / HTTP/1.1\r\nX A: x\r\n\r\n", 0);
	refused("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 0);
	refused("GET / HTTP/1.1\r\nX(y): 1\r\n\r\n", 0);
	/* bare CR, NUL */
	refused("GET / HTTP/1.1\r\nX-A: 1\rX-B: 2\r\n\r\n", 0);
	refused("GET / HTTP/1.1\rX-A: 1\r\n\r\n", 0);
	refused("GET / HTTP/1.1\r\n\rX", 0);
	{
		static const char nul[] = "GET / HTTP/1.1\r\nX-A: 1\0\r\n\r\n";
		struct http_framer f;
		http_framer_init(&f);
		ck_assert_int_eq(http_framer_feed(&f, nul, sizeof(nul) - 1), -1);
	}
	/* empty lines before a request, bad request lines */
	refused("\r\n" GET_OK, 0);
	refused(GET_OK "\r\n" GET_OK, 1);
	refused(" GET / HTTP/1.1\r\n\r\n", 0);
	refused("GE(T / HTTP/1.1\r\n\r\n", 0);
	refused("GET\r\n\r\n", 0);
}
END_TEST

START_TEST(dead_stays_dead)
{
	struct http_framer f;

	http_framer_init(&f);
	ck_assert_int_eq(http_framer_feed(&f, "GET / HTTP/1.1\r\n X\r\n", 20), -1);
	ck_assert_int_eq(http_framer_feed(&f, GET_OK, strlen(GET_OK)), -1);
	ck_assert_int_eq(f.requests, 1);
	ck_assert_ptr_nonnull(strstr(f.error, "obs-fold"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http_framing");
	TCase *tc = tcase_create("framer");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, sound_framings);
	tcase_add_test(tc, content_length_shapes);
	tcase_add_test(tc, transfer_encoding_shapes);
	tcase_add_test(tc, chunk_shapes);
	tcase_add_test(tc, line_shapes);
	tcase_add_test(tc, dead_stays_dead);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
