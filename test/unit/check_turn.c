/*
 * check_turn.c - unit tests for turn.c: the coturn REST credential (test
 * vector and an independent OpenSSL EVP_Q_mac computation) and the shape
 * of the RTCIceServer array with and without TURN/TURNS.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "livekit/turn.h"

/* Reference: EVP_Q_mac + a hand-written base64 encoder. */
static void reference_cred(const char *secret, const char *user, char out[TURN_CRED_LEN])
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char mac[20];
	size_t maclen = 0, j = 0;

	ck_assert_ptr_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, secret,
					strlen(secret), (const unsigned char *)user,
					strlen(user), mac, sizeof mac, &maclen));
	ck_assert_uint_eq(maclen, 20);
	for (size_t i = 0; i < 20; i += 3) {
		unsigned v = (unsigned)mac[i] << 16;
		size_t left = 20 - i;
		if (left > 1)
			v |= (unsigned)mac[i + 1] << 8;
		if (left > 2)
			v |= mac[i + 2];
		out[j++] = tbl[(v >> 18) & 63];
		out[j++] = tbl[(v >> 12) & 63];
		out[j++] = left > 1 ? tbl[(v >> 6) & 63] : '=';
		out[j++] = left > 2 ? tbl[v & 63] : '=';
	}
	out[j] = '\0';
}

START_TEST(protocol_test_vector)
{
	char cred[TURN_CRED_LEN];
	char *user = turn_username(1700000000, "alice");

	ck_assert_str_eq(user, "1700000000:alice");
	ck_assert_int_eq(turn_credential("north", user, cred), 0);
	ck_assert_str_eq(cred, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
	free(user);
}
END_TEST

START_TEST(random_inputs_match_reference)
{
	for (int round = 0; round < 200; round++) {
		unsigned char r[48];
		char secret[33], user[65], got[TURN_CRED_LEN], want[TURN_CRED_LEN];

		ck_assert_int_eq(RAND_bytes(r, sizeof r), 1);
		for (size_t i = 0; i < 16; i++)
			secret[i] = (char)(0x21 + r[i] % 94);
		secret[1 + r[0] % 16] = '\0';
		for (size_t i = 0; i < 32; i++)
			user[i] = (char)(0x20 + r[16 + i] % 95);
		user[r[1] % 33] = '\0';
		ck_assert_int_eq(turn_credential(secret, user, got), 0);
		reference_cred(secret, user, want);
		ck_assert_str_eq(got, want);
		ck_assert_uint_eq(strlen(got), 28);
	}
}
END_TEST

static const char *url_at(json_t *entry, size_t i)
{
	return json_string_value(json_array_get(json_object_get(entry, "urls"), i));
}

START_TEST(stun_only_default)
{
	struct nc_config cfg = { 0 };
	json_t *ice = turn_ice_servers(&cfg, "alice", 1700000000);

	ck_assert_uint_eq(json_array_size(ice), 1);
	ck_assert_uint_eq(json_object_size(json_array_get(ice, 0)), 1);
	ck_assert_str_eq(url_at(json_array_get(ice, 0), 0), "stun:stun.l.google.com:19302");
	json_decref(ice);
}
END_TEST

START_TEST(stun_urls_listed)
{
	struct nc_config cfg = { .stun_urls = "stun:a.example:3478, b.example:19302" };
	json_t *ice = turn_ice_servers(&cfg, "alice", 1700000000);
	json_t *e = json_array_get(ice, 0);

	ck_assert_uint_eq(json_array_size(ice), 1);
	ck_assert_uint_eq(json_array_size(json_object_get(e, "urls")), 2);
	ck_assert_str_eq(url_at(e, 0), "stun:a.example:3478");
	ck_assert_str_eq(url_at(e, 1), "stun:b.example:19302");
	ck_assert_ptr_null(json_object_get(e, "username"));
	json_decref(ice);
}
END_TEST

START_TEST(secret_missing_means_stun_only)
{
	struct nc_config cfg = { .turn_server_url = "turn.example.com" };
	json_t *ice = turn_ice_servers(&cfg, "alice", 1700000000);

	ck_assert(!turn_configured(&cfg));
	ck_assert_uint_eq(json_array_size(ice), 1);
	json_decref(ice);
}
END_TEST

START_TEST(turn_without_turns)
{
	struct nc_config cfg = { .turn_server_url = "turn.example.com", .turn_secret = "north",
				 .turn_ttl_s = 100 };
	json_t *ice = turn_ice_servers(&cfg, "alice", 1699999900);
	json_t *stun = json_array_get(ice, 0), *turn = json_array_get(ice, 1);

	ck_assert_uint_eq(json_array_size(ice), 2);
	ck_assert_str_eq(url_at(stun, 0), "stun:turn.example.com:3478");
	ck_assert_uint_eq(json_array_size(json_object_get(turn, "urls")), 2);
	ck_assert_str_eq(url_at(turn, 0), "turn:turn.example.com:3478?transport=udp");
	ck_assert_str_eq(url_at(turn, 1), "turn:turn.example.com:3478?transport=tcp");
	ck_assert_str_eq(json_string_value(json_object_get(turn, "username")), "1700000000:alice");
	ck_assert_str_eq(json_string_value(json_object_get(turn, "credential")),
			 "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
	ck_assert_uint_eq(json_object_size(turn), 3);
	json_decref(ice);
}
END_TEST

START_TEST(turn_with_turns_and_port)
{
	struct nc_config cfg = { .turn_server_url = "turn.example.com:3479", .turn_secret = "s",
				 .turns_port = 443, .stun_urls = "stun:stun.example:3478" };
	json_t *ice = turn_ice_servers(&cfg, "u1", 1000);
	json_t *turn = json_array_get(ice, 1);

	ck_assert_str_eq(url_at(json_array_get(ice, 0), 0), "stun:stun.example:3478");
	ck_assert_uint_eq(json_array_size(json_object_get(turn, "urls")), 3);
	ck_assert_str_eq(url_at(turn, 0), "turn:turn.example.com:3479?transport=udp");
	ck_assert_str_eq(url_at(turn, 2), "turns:turn.example.com:443?transport=tcp");
	/* default TTL when TURN_TTL_SECONDS is unset */
	ck_assert_str_eq(json_string_value(json_object_get(turn, "username")), "15400:u1");
	json_decref(ice);
}
END_TEST

START_TEST(ipv6_host)
{
	struct nc_config cfg = { .turn_server_url = "[2001:db8::1]:3478", .turn_secret = "s" };
	json_t *ice = turn_ice_servers(&cfg, "u", 1);

	ck_assert_str_eq(url_at(json_array_get(ice, 1), 0), "turn:[2001:db8::1]:3478?transport=udp");
	json_decref(ice);
}
END_TEST

START_TEST(log_startup_does_not_crash)
{
	struct nc_config none = { 0 };
	struct nc_config on = { .turn_server_url = "t.example", .turn_secret = "s" };

	turn_log_startup(&none);
	turn_log_startup(&on);
}
END_TEST

static Suite *turn_suite(void)
{
	Suite *s = suite_create("turn");
	TCase *cred = tcase_create("credential");
	TCase *ice = tcase_create("ice_servers");

	tcase_add_test(cred, protocol_test_vector);
	tcase_add_test(cred, random_inputs_match_reference);
	tcase_add_test(ice, stun_only_default);
	tcase_add_test(ice, stun_urls_listed);
	tcase_add_test(ice, secret_missing_means_stun_only);
	tcase_add_test(ice, turn_without_turns);
	tcase_add_test(ice, turn_with_turns_and_port);
	tcase_add_test(ice, ipv6_host);
	tcase_add_test(ice, log_startup_does_not_crash);
	suite_add_tcase(s, cred);
	suite_add_tcase(s, ice);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(turn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
