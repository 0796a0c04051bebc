/*
 * check_webhook_verify.c - the LiveKit webhook signature check against the
 * PROTOCOL.md §6.2 test vector (key devkey, secret secret), plus tampering:
 * body, signature, "Bearer " prefix, unknown key, wrong secret, expiry and
 * nbf with leeway, sha256 claim encodings LiveKit never sends, alg none.
 */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "livekit/webhook_verify.h"
#include "ops/webhook_event.h"

static const char vec_body[] =
	"{\"event\":\"room_started\",\"room\":{\"sid\":\"RM_test\",\"name\":\"demo\","
	"\"emptyTimeout\":300,\"creationTime\":\"1700000000\"},\"id\":\"EV_test\","
	"\"createdAt\":\"1700000000\"}";
static const char vec_auth[] =
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJkZXZrZXkiLCJuYmYiOjE3MDAwMDAwMDAsImV4cCI6"
	"NDEwMjQ0NDgwMCwic2hhMjU2IjoiakNVTGRYaWtBL0hyOHZlUGx2MVF0N1ZYVDJKSDdYaHlMK3J3ZkVlOGtQaz0i"
	"fQ.MY8qMIziLgp4UiMC6Z9N3ecgLVicjzId4TdDeaxBtWU";
static const char vec_sum[] = "jCULdXikA/Hr8vePlv1Qt7VXT2JH7XhyL+rwfEe8kPk=";

static struct cfg_keypair keys[] = {
	{ "oldkey", "oldsecret" },
	{ "devkey", "secret" },
};

#define NOW 1700000100

static int verify(const char *auth, const char *body, int64_t now)
{
	char why[128];

	return webhook_verify(keys, 2, 60, auth, body, body ? strlen(body) : 0, now, why,
			      sizeof(why));
}

/* base64url without padding. */
static char *b64url(const unsigned char *in, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	for (char *p = out; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=') {
			*p = '\0';
			break;
		}
	}
	return out;
}

/* An HS256 JWT of header/payload JSON texts signed with secret. */
static char *sign(const char *header, const char *payload, const char *secret)
{
	char *h = b64url((const unsigned char *)header, strlen(header));
	char *p = b64url((const unsigned char *)payload, strlen(payload));
	char *msg, *sig, *out;
	unsigned char mac[32];
	unsigned int len = 0;

	ck_assert(asprintf(&msg, "%s.%s", h, p) > 0);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg, strlen(msg), mac, &len);
	sig = b64url(mac, len);
	ck_assert(asprintf(&out, "%s.%s", msg, sig) > 0);
	free(h);
	free(p);
	free(msg);
	free(sig);
	return out;
}

static char *claims(const char *iss, long nbf, long exp, const char *sum)
{
	char *s;

	ck_assert(asprintf(&s, "{\"iss\":\"%s\",\"nbf\":%ld,\"exp\":%ld,\"sha256\":\"%s\"}", iss, nbf,
			   exp, sum) > 0);
	return s;
}

#define HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

START_TEST(test_vector_accepted)
{
	ck_assert_int_eq(verify(vec_auth, vec_body, NOW), 0);
}
END_TEST

START_TEST(test_tampered_body)
{
	char *body = strdup(vec_body);

	body[strlen(body) - 3] = '1';
	ck_assert_int_eq(verify(vec_auth, body, NOW), -1);
	ck_assert_int_eq(verify(vec_auth, "", NOW), -1);
	/* the same JSON with a space: hashing must be over the raw bytes */
	free(body);
	body = malloc(strlen(vec_body) + 2);
	strcpy(body, "{ ");
	strcat(body, vec_body + 1);
	ck_assert_int_eq(verify(vec_auth, body, NOW), -1);
	free(body);
}
END_TEST

START_TEST(test_tampered_signature)
{
	char *a = strdup(vec_auth);
	size_t n = strlen(a);

	a[n - 2] = a[n - 2] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify(a, vec_body, NOW), -1);
	a[n - 2] = '\0'; /* truncated */
	ck_assert_int_eq(verify(a, vec_body, NOW), -1);
	free(a);
}
END_TEST

START_TEST(test_missing_and_bearer)
{
	char *b;

	ck_assert_int_eq(verify(NULL, vec_body, NOW), -1);
	ck_assert_int_eq(verify("", vec_body, NOW), -1);
	ck_assert_int_eq(verify("garbage", vec_body, NOW), -1);
	ck_assert(asprintf(&b, "Bearer %s", vec_auth) > 0);
	ck_assert_int_eq(verify(b, vec_body, NOW), -1);
	free(b);
}
END_TEST

START_TEST(test_keys_and_rotation)
{
	char *c = claims("oldkey", NOW - 10, NOW + 300, vec_sum);
	char *t = sign(HS_HDR, c, "oldsecret");
	char *wrong = sign(HS_HDR, c, "secret");

	ck_assert_int_eq(verify(t, vec_body, NOW), 0);       /* second pair accepted */
	ck_assert_int_eq(verify(wrong, vec_body, NOW), -1);  /* right key, wrong secret */
	free(c);
	free(t);
	free(wrong);
	c = claims("nokey", NOW - 10, NOW + 300, vec_sum);
	t = sign(HS_HDR, c, "secret");
	ck_assert_int_eq(verify(t, vec_body, NOW), -1);      /* unknown key */
	free(c);
	free(t);
	/* only the configured pair: oldkey unknown */
	{
		char why[64];

		c = claims("oldkey", NOW - 10, NOW + 300, vec_sum);
		t = sign(HS_HDR, c, "oldsecret");
		ck_assert_int_eq(webhook_verify(&keys[1], 1, 60, t, vec_body, strlen(vec_body), NOW,
						why, sizeof(why)), -1);
		ck_assert_str_eq(why, "unknown API key");
		free(c);
		free(t);
	}
}
END_TEST

START_TEST(test_expiry_and_nbf)
{
	char *c = claims("devkey", NOW - 400, NOW - 30, vec_sum);
	char *t = sign(HS_HDR, c, "secret");

	ck_assert_int_eq(verify(t, vec_body, NOW), 0);       /* within the 60 s leeway */
	ck_assert_int_eq(verify(t, vec_body, NOW + 31), -1); /* beyond it */
	free(c);
	free(t);
	c = claims("devkey", NOW + 120, NOW + 400, vec_sum);
	t = sign(HS_HDR, c, "secret");
	ck_assert_int_eq(verify(t, vec_body, NOW), -1);      /* not yet valid */
	ck_assert_int_eq(verify(t, vec_body, NOW + 61), 0);
	free(c);
	free(t);
	/* the vector itself expires in 2100 */
	ck_assert_int_eq(verify(vec_auth, vec_body, 4102444800LL + 61), -1);
	/* no exp at all */
	t = sign(HS_HDR, "{\"iss\":\"devkey\",\"sha256\":\"jCULdXikA/Hr8vePlv1Qt7VXT2JH7XhyL+rwfEe8kPk=\"}",
		 "secret");
	ck_assert_int_eq(verify(t, vec_body, NOW), -1);
	free(t);
}
END_TEST

START_TEST(test_sha256_encodings)
{
	/* unpadded, base64url and hex forms of the right digest are all refused */
	static const char *bad[] = {
		"jCULdXikA/Hr8vePlv1Qt7VXT2JH7XhyL+rwfEe8kPk",
		"jCULdXikA_Hr8vePlv1Qt7VXT2JH7XhyL-rwfEe8kPk=",
		"8c250b7578a403f1ebf2f78f96fd50b7b5574f6247ed78722feaf07c47bc90f9",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *c = claims("devkey", NOW - 10, NOW + 300, bad[i]);
		char *t = sign(HS_HDR, c, "secret");

		ck_assert_msg(verify(t, vec_body, NOW) == -1, "accepted sha256 %s", bad[i]);
		free(c);
		free(t);
	}
	{
		char *c = claims("devkey", NOW - 10, NOW + 300, vec_sum);
		char *t = sign(HS_HDR, c, "secret");

		ck_assert_int_eq(verify(t, vec_body, NOW), 0);
		free(c);
		free(t);
	}
}
END_TEST

START_TEST(test_alg_refused)
{
	char *c = claims("devkey", NOW - 10, NOW + 300, vec_sum);
	char *t = sign("{\"alg\":\"none\",\"typ\":\"JWT\"}", c, "secret");
	char *t2 = sign("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", c, "secret");

	ck_assert_int_eq(verify(t, vec_body, NOW), -1);
	ck_assert_int_eq(verify(t2, vec_body, NOW), -1);
	free(c);
	free(t);
	free(t2);
}
END_TEST

/* webhook_decode: what the receiver takes from a verified body. */
START_TEST(test_decode_events)
{
	struct wh_event e;
	char why[96];

	/* the test vector: a room event of a room that is not a call */
	ck_assert_int_eq(webhook_decode(vec_body, strlen(vec_body), &e, why, sizeof(why)), 0);
	ck_assert_str_eq(e.event, "room_started");
	ck_assert_str_eq(e.id, "EV_test");
	ck_assert_int_eq(e.created_at, 1700000000);
	ck_assert_int_eq(e.kind, WH_ROOM);
	ck_assert(e.up);
	ck_assert_str_eq(e.call_id, "");
	webhook_event_free(&e);
	{
		static const char b[] =
			"{\"event\":\"participant_left\",\"id\":\"EV_1\",\"createdAt\":1700000100,"
			"\"room\":{\"name\":\"call-0B9E6F2A-5F0C-4D8E-9A57-3C1D2E4F5A6B\"},"
			"\"participant\":{\"identity\":\"1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f\","
			"\"sid\":\"PA_1\",\"joinedAt\":\"1700000000\"}}";
		ck_assert_int_eq(webhook_decode(b, strlen(b), &e, why, sizeof(why)), 0);
		ck_assert_int_eq(e.kind, WH_PARTICIPANT);
		ck_assert(!e.up);
		ck_assert_str_eq(e.call_id, "0b9e6f2a-5f0c-4d8e-9a57-3c1d2e4f5a6b");
		ck_assert_str_eq(e.identity, "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f");
		ck_assert_str_eq(e.participant_sid, "PA_1");
		ck_assert_int_eq(e.joined_at, 1700000000);
		webhook_event_free(&e);
	}
	{
		/* a track of a non-user participant (egress): no identity; screen share column */
		static const char b[] =
			"{\"event\":\"track_published\",\"id\":\"EV_2\",\"participant\":{\"identity\":"
			"\"EG_abc\"},\"track\":{\"type\":\"VIDEO\",\"source\":\"SCREEN_SHARE\"}}";
		ck_assert_int_eq(webhook_decode(b, strlen(b), &e, why, sizeof(why)), 0);
		ck_assert_int_eq(e.kind, WH_TRACK);
		ck_assert_ptr_null(e.identity);
		ck_assert_str_eq(e.track_column, "is_screen_sharing");
		ck_assert_int_eq(e.created_at, 0);
		webhook_event_free(&e);
	}
	{
		static const char b[] = "{\"event\":\"egress_ended\",\"id\":\"EV_3\",\"egressInfo\":[1]}";
		ck_assert_int_eq(webhook_decode(b, strlen(b), &e, why, sizeof(why)), 0);
		ck_assert_int_eq(e.kind, WH_EGRESS);
		ck_assert_ptr_null(e.info); /* not an object: nothing to apply */
		webhook_event_free(&e);
	}
	/* refused: not JSON, not an object, no event, no usable id */
	{
		static const char *const bad[] = {"", "not json", "[1]", "{\"id\":\"x\"}",
						  "{\"event\":\"\",\"id\":\"x\"}",
						  "{\"event\":\"room_started\"}",
						  "{\"event\":\"room_started\",\"id\":7}", NULL};
		for (int i = 0; bad[i] != NULL; i++) {
			ck_assert_int_eq(webhook_decode(bad[i], strlen(bad[i]), &e, why, sizeof(why)), -1);
			ck_assert(why[0] != '\0');
			webhook_event_free(&e);
		}
		ck_assert_int_eq(webhook_decode(NULL, 0, &e, why, sizeof(why)), -1);
		webhook_event_free(&e);
	}
	{
		char b[400];
		char id[202];

		memset(id, 'a', 201);
		id[201] = '\0';
		snprintf(b, sizeof(b), "{\"event\":\"room_started\",\"id\":\"%s\"}", id);
		ck_assert_int_eq(webhook_decode(b, strlen(b), &e, why, sizeof(why)), -1);
		ck_assert_str_eq(why, "the event has no usable id");
		webhook_event_free(&e);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("webhook_verify");
	TCase *tc = tcase_create("verify");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_vector_accepted);
	tcase_add_test(tc, test_tampered_body);
	tcase_add_test(tc, test_tampered_signature);
	tcase_add_test(tc, test_missing_and_bearer);
	tcase_add_test(tc, test_keys_and_rotation);
	tcase_add_test(tc, test_expiry_and_nbf);
	tcase_add_test(tc, test_sha256_encodings);
	tcase_add_test(tc, test_alg_refused);
	tcase_add_test(tc, test_decode_events);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
