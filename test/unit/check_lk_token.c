/*
 * check_lk_token.c - unit tests for lk_token.c: header, every claim and
 * grant present or absent exactly as asked, lifetime, signature; and the
 * `nchat-rtc token` command (cmd_token.c).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/evp.h>

#include "livekit/lk.h"

#define KEY "devkey"
#define SECRET "secret"
#define NOW 1700000000

/* Decode one base64url JWT segment into a JSON value (new reference). */
static json_t *segment_json(const char *seg, size_t len)
{
	size_t padded = (len + 3) / 4 * 4;
	char *b64 = calloc(1, padded + 1);
	unsigned char *raw = calloc(1, padded + 1);
	json_t *j;
	int n;

	for (size_t i = 0; i < padded; i++) {
		char ch = i < len ? seg[i] : '=';
		b64[i] = ch == '-' ? '+' : ch == '_' ? '/' : ch;
	}
	n = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)padded);
	ck_assert_int_gt(n, 0);
	while (n > 0 && raw[n - 1] == '\0')
		n--; /* EVP_DecodeBlock counts padding bytes */
	j = json_loadb((const char *)raw, (size_t)n, 0, NULL);
	free(b64);
	free(raw);
	ck_assert_ptr_nonnull(j);
	return j;
}

static json_t *token_header(const char *tok)
{
	const char *dot = strchr(tok, '.');

	ck_assert_ptr_nonnull(dot);
	return segment_json(tok, (size_t)(dot - tok));
}

/* Verify with libjwt and return the payload (new reference), or NULL. */
static json_t *verified_claims(const char *tok, const char *secret)
{
	jwt_t *jwt = NULL;
	char *text;
	json_t *j;

	if (jwt_decode(&jwt, tok, (const unsigned char *)secret, (int)strlen(secret)) != 0)
		return NULL;
	text = jwt_get_grants_json(jwt, NULL);
	j = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	jwt_free(jwt);
	return j;
}

static json_t *mint_claims(const struct lk_token_opts *o)
{
	char *tok = lk_token_mint(KEY, SECRET, o, NOW);
	json_t *hdr, *claims;

	ck_assert_ptr_nonnull(tok);
	hdr = token_header(tok);
	ck_assert_str_eq(json_string_value(json_object_get(hdr, "alg")), "HS256");
	json_decref(hdr);
	claims = verified_claims(tok, SECRET);
	ck_assert_ptr_nonnull(claims);
	free(tok);
	return claims;
}

/* Assert obj has exactly the listed keys (NULL-terminated). */
static void assert_keys(json_t *obj, const char *const *keys)
{
	size_t n = 0;

	for (; keys[n]; n++)
		ck_assert_msg(json_object_get(obj, keys[n]) != NULL, "missing %s", keys[n]);
	ck_assert_uint_eq(json_object_size(obj), n);
}

START_TEST(join_token_claims)
{
	struct lk_token_opts o = {
		.identity = "alice", .name = "Alice", .ttl_s = 600,
		.grant = { .room = "demo", .room_join = true, .can_publish = LK_TRUE,
			   .can_subscribe = LK_FALSE,
			   .sources = LK_SRC_CAMERA | LK_SRC_MICROPHONE },
	};
	json_t *c = mint_claims(&o), *v, *src;
	static const char *const top[] = { "iss", "sub", "nbf", "exp", "name", "video", NULL };
	static const char *const vk[] = { "roomJoin", "room", "canPublish", "canSubscribe",
					  "canPublishSources", NULL };

	assert_keys(c, top);
	ck_assert_str_eq(json_string_value(json_object_get(c, "iss")), KEY);
	ck_assert_str_eq(json_string_value(json_object_get(c, "sub")), "alice");
	ck_assert_str_eq(json_string_value(json_object_get(c, "name")), "Alice");
	ck_assert_int_eq(json_integer_value(json_object_get(c, "nbf")), NOW);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "exp")) -
			 json_integer_value(json_object_get(c, "nbf")), 600);
	v = json_object_get(c, "video");
	assert_keys(v, vk);
	ck_assert(json_is_true(json_object_get(v, "roomJoin")));
	ck_assert_str_eq(json_string_value(json_object_get(v, "room")), "demo");
	ck_assert(json_is_true(json_object_get(v, "canPublish")));
	ck_assert(json_is_false(json_object_get(v, "canSubscribe")));
	src = json_object_get(v, "canPublishSources");
	ck_assert_uint_eq(json_array_size(src), 2);
	ck_assert_str_eq(json_string_value(json_array_get(src, 0)), "camera");
	ck_assert_str_eq(json_string_value(json_array_get(src, 1)), "microphone");
	json_decref(c);
}
END_TEST

START_TEST(minimal_token_has_no_optional_claims)
{
	struct lk_token_opts o = { .ttl_s = 60 };
	json_t *c = mint_claims(&o);
	static const char *const top[] = { "iss", "nbf", "exp", NULL };

	assert_keys(c, top);
	json_decref(c);
}
END_TEST

START_TEST(every_grant_key)
{
	json_t *attrs = json_pack("{s:s,s:s}", "role", "host", "team", "blue");
	struct lk_token_opts o = {
		.identity = "bob", .metadata = "{\"x\":1}", .attributes = attrs, .ttl_s = 3600,
		.grant = { .room = "r", .room_join = true, .room_admin = true,
			   .room_create = true, .room_list = true, .room_record = true,
			   .ingress_admin = true, .can_publish = LK_FALSE,
			   .can_subscribe = LK_TRUE, .can_publish_data = LK_FALSE,
			   .sources = LK_SRC_SCREEN_SHARE | LK_SRC_SCREEN_SHARE_AUDIO,
			   .can_update_own_metadata = true, .hidden = true, .recorder = true },
	};
	json_t *c = mint_claims(&o), *v;
	static const char *const vk[] = {
		"room", "roomJoin", "roomAdmin", "roomCreate", "roomList", "roomRecord",
		"ingressAdmin", "canPublish", "canSubscribe", "canPublishData",
		"canPublishSources", "canUpdateOwnMetadata", "hidden", "recorder", NULL };

	ck_assert_str_eq(json_string_value(json_object_get(c, "metadata")), "{\"x\":1}");
	ck_assert(json_equal(json_object_get(c, "attributes"), attrs));
	v = json_object_get(c, "video");
	assert_keys(v, vk);
	ck_assert(json_is_false(json_object_get(v, "canPublishData")));
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(v, "canPublishSources"), 1)),
			 "screen_share_audio");
	ck_assert_int_eq(json_integer_value(json_object_get(c, "exp")), NOW + 3600);
	json_decref(c);
	json_decref(attrs);
}
END_TEST

START_TEST(server_grant_only)
{
	struct lk_token_opts o = { .ttl_s = 600, .grant = { .room_create = true } };
	json_t *c = mint_claims(&o);
	static const char *const vk[] = { "roomCreate", NULL };

	assert_keys(json_object_get(c, "video"), vk);
	ck_assert_ptr_null(json_object_get(c, "sub"));
	json_decref(c);
}
END_TEST

START_TEST(wrong_secret_fails)
{
	struct lk_token_opts o = { .identity = "a", .ttl_s = 60 };
	char *tok = lk_token_mint(KEY, SECRET, &o, NOW);

	ck_assert_ptr_nonnull(tok);
	ck_assert_ptr_null(verified_claims(tok, "not-the-secret"));
	free(tok);
}
END_TEST

START_TEST(bad_arguments)
{
	struct lk_token_opts o = { .ttl_s = 0 };
	json_t *arr = json_array();

	ck_assert_ptr_null(lk_token_mint(KEY, SECRET, &o, NOW));
	o.ttl_s = 10;
	ck_assert_ptr_null(lk_token_mint(KEY, "", &o, NOW));
	ck_assert_ptr_null(lk_token_mint(NULL, SECRET, &o, NOW));
	ck_assert_ptr_null(lk_token_mint(KEY, SECRET, NULL, NOW));
	o.attributes = arr;
	ck_assert_ptr_null(lk_token_mint(KEY, SECRET, &o, NOW));
	json_decref(arr);
}
END_TEST

START_TEST(source_names)
{
	ck_assert_uint_eq(lk_source_parse("camera"), LK_SRC_CAMERA);
	ck_assert_uint_eq(lk_source_parse("MICROPHONE"), LK_SRC_MICROPHONE);
	ck_assert_uint_eq(lk_source_parse("screen_share"), LK_SRC_SCREEN_SHARE);
	ck_assert_uint_eq(lk_source_parse("screen_share_audio"), LK_SRC_SCREEN_SHARE_AUDIO);
	ck_assert_uint_eq(lk_source_parse("webcam"), 0);
}
END_TEST

/* Run cmd_token with argv, stdout captured into out (if not NULL). */
static int run_cmd(char **argv, int argc, char *out, size_t outlen)
{
	struct nc_config cfg = { .livekit_api_key = KEY, .livekit_api_secret = SECRET };
	FILE *tmp = tmpfile();
	int saved = dup(fileno(stdout)), rc;
	size_t n;

	ck_assert_ptr_nonnull(tmp);
	fflush(stdout);
	dup2(fileno(tmp), fileno(stdout));
	ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
	rc = cmd_token(argc, argv, &cfg);
	fflush(stdout);
	dup2(saved, fileno(stdout));
	close(saved);
	rewind(tmp);
	n = fread(out, 1, outlen - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return rc;
}

START_TEST(cmd_token_prints_token)
{
	char *argv[] = { "token", "--identity", "alice", "--room", "demo", "--ttl", "120",
			 "--grant", "join,no-publish,subscribe", "--sources", "camera", NULL };
	char out[4096];
	json_t *c, *v;

	ck_assert_int_eq(run_cmd(argv, 11, out, sizeof out), 0);
	out[strcspn(out, "\n")] = '\0';
	c = verified_claims(out, SECRET);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(json_string_value(json_object_get(c, "sub")), "alice");
	ck_assert_int_eq(json_integer_value(json_object_get(c, "exp")) -
			 json_integer_value(json_object_get(c, "nbf")), 120);
	v = json_object_get(c, "video");
	ck_assert(json_is_true(json_object_get(v, "roomJoin")));
	ck_assert(json_is_false(json_object_get(v, "canPublish")));
	ck_assert(json_is_true(json_object_get(v, "canSubscribe")));
	ck_assert_ptr_null(json_object_get(v, "canPublishData"));
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(v, "canPublishSources"), 0)),
			 "camera");
	json_decref(c);
}
END_TEST

START_TEST(cmd_token_bad_args)
{
	char *no_identity[] = { "token", "--room", "r", NULL };
	char *no_room[] = { "token", "--identity", "a", NULL };
	char *bad_grant[] = { "token", "--identity", "a", "--room", "r", "--grant", "fly", NULL };
	char *bad_ttl[] = { "token", "--identity", "a", "--room", "r", "--ttl", "-5", NULL };
	char *bad_src[] = { "token", "--identity", "a", "--room", "r", "--sources", "webcam", NULL };
	char *extra[] = { "token", "--identity", "a", "--room", "r", "junk", NULL };
	char *list_only[] = { "token", "--identity", "a", "--grant", "list", NULL };
	char out[4096];

	ck_assert_int_eq(run_cmd(no_identity, 3, out, sizeof out), 2);
	ck_assert_int_eq(run_cmd(no_room, 3, out, sizeof out), 2);
	ck_assert_int_eq(run_cmd(bad_grant, 7, out, sizeof out), 2);
	ck_assert_int_eq(run_cmd(bad_ttl, 7, out, sizeof out), 2);
	ck_assert_int_eq(run_cmd(bad_src, 7, out, sizeof out), 2);
	ck_assert_int_eq(run_cmd(extra, 6, out, sizeof out), 2);
	ck_assert_int_eq(run_cmd(list_only, 5, out, sizeof out), 0);
	ck_assert(strncmp(out, "eyJ", 3) == 0);
}
END_TEST

/* A token minted again or reused: its claims. */
static json_t *reused_claims(const char *tok, const char *secret)
{
	json_t *c = verified_claims(tok, secret);

	ck_assert_ptr_nonnull(c);
	return c;
}

START_TEST(reuse_while_young)
{
	struct lk_token_opts o = {
		.identity = "alice", .name = "Alice", .ttl_s = 600,
		.grant = { .room = "demo", .room_join = true, .can_publish = LK_TRUE,
			   .sources = LK_SRC_CAMERA },
	};
	struct lk_token_opts p;
	int64_t exp = 0, exp2 = 0;
	char *a, *b, *c;
	json_t *cl;

	lk_token_cache_release();
	a = lk_token_mint_reuse(KEY, SECRET, &o, NOW, &exp);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(exp, NOW + 600);
	/* a tenth of the lifetime later: the same token, its own exp */
	b = lk_token_mint_reuse(KEY, SECRET, &o, NOW + 60, &exp2);
	ck_assert_str_eq(a, b);
	ck_assert_int_eq(exp2, NOW + 600);
	free(b);
	/* one second older than that: a new one, from now */
	b = lk_token_mint_reuse(KEY, SECRET, &o, NOW + 61, &exp2);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(exp2, NOW + 61 + 600);
	cl = reused_claims(b, SECRET);
	ck_assert_int_eq(json_integer_value(json_object_get(cl, "nbf")), NOW + 61);
	ck_assert_int_eq(json_integer_value(json_object_get(cl, "exp")), NOW + 661);
	json_decref(cl);
	free(b);
	/* a clock stepped back before the cached nbf: minted anew */
	b = lk_token_mint_reuse(KEY, SECRET, &o, NOW + 30, &exp2);
	ck_assert_int_eq(exp2, NOW + 30 + 600);
	free(b);

	/* anything else that goes into a token makes it another token */
	c = lk_token_mint_reuse(KEY, SECRET, &o, NOW + 31, &exp2);
	p = o; p.name = "Alicia";
	b = lk_token_mint_reuse(KEY, SECRET, &p, NOW + 31, &exp2);
	cl = reused_claims(b, SECRET);
	ck_assert_str_eq(json_string_value(json_object_get(cl, "name")), "Alicia");
	json_decref(cl);
	ck_assert_str_ne(b, c);
	free(b);
	p = o; p.identity = "bob";
	b = lk_token_mint_reuse(KEY, SECRET, &p, NOW + 31, &exp2);
	cl = reused_claims(b, SECRET);
	ck_assert_str_eq(json_string_value(json_object_get(cl, "sub")), "bob");
	json_decref(cl);
	free(b);
	p = o; p.grant.room = "other";
	b = lk_token_mint_reuse(KEY, SECRET, &p, NOW + 31, &exp2);
	cl = reused_claims(b, SECRET);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(cl, "video"), "room")),
			 "other");
	json_decref(cl);
	free(b);
	p = o; p.grant.can_publish = LK_FALSE;
	b = lk_token_mint_reuse(KEY, SECRET, &p, NOW + 31, &exp2);
	cl = reused_claims(b, SECRET);
	ck_assert(json_is_false(json_object_get(json_object_get(cl, "video"), "canPublish")));
	json_decref(cl);
	free(b);
	/* another secret: signed with it, not handed the first one's token */
	b = lk_token_mint_reuse(KEY, "another-secret", &o, NOW + 31, &exp2);
	ck_assert_ptr_null(verified_claims(b, SECRET));
	cl = reused_claims(b, "another-secret");
	json_decref(cl);
	free(b);
	/* and the first is still there, unchanged */
	b = lk_token_mint_reuse(KEY, SECRET, &o, NOW + 32, &exp2);
	ck_assert_str_eq(b, c);
	free(b);
	/* released: minted at the time asked */
	lk_token_cache_release();
	b = lk_token_mint_reuse(KEY, SECRET, &o, NOW + 33, &exp2);
	ck_assert_int_eq(exp2, NOW + 33 + 600);
	free(b);
	lk_token_cache_release();
	free(c);
	free(a);
}
END_TEST

START_TEST(reuse_with_attributes)
{
	json_t *x = json_pack("{s:s, s:s}", "a", "1", "b", "2");
	json_t *y = json_pack("{s:s, s:s}", "b", "2", "a", "1");
	json_t *z = json_pack("{s:s, s:s}", "a", "1", "b", "3");
	struct lk_token_opts o = { .identity = "carol", .ttl_s = 3600, .attributes = x };
	int64_t exp;
	char *a, *b;
	json_t *cl;

	lk_token_cache_release();
	a = lk_token_mint_reuse(KEY, SECRET, &o, NOW, &exp);
	o.attributes = y; /* the same attributes in another order */
	b = lk_token_mint_reuse(KEY, SECRET, &o, NOW + 1, &exp);
	ck_assert_str_eq(a, b);
	free(b);
	o.attributes = z;
	b = lk_token_mint_reuse(KEY, SECRET, &o, NOW + 1, &exp);
	ck_assert_str_ne(a, b);
	cl = reused_claims(b, SECRET);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(cl, "attributes"), "b")),
			 "3");
	json_decref(cl);
	free(b);
	/* bad arguments are refused as by lk_token_mint */
	o.ttl_s = 0;
	ck_assert_ptr_null(lk_token_mint_reuse(KEY, SECRET, &o, NOW, &exp));
	o.ttl_s = 60;
	ck_assert_ptr_null(lk_token_mint_reuse("", SECRET, &o, NOW, &exp));
	lk_token_cache_release();
	free(a);
	json_decref(x);
	json_decref(y);
	json_decref(z);
}
END_TEST

static Suite *lk_token_suite(void)
{
	Suite *s = suite_create("lk_token");
	TCase *tc = tcase_create("mint");

	tcase_add_test(tc, join_token_claims);
	tcase_add_test(tc, minimal_token_has_no_optional_claims);
	tcase_add_test(tc, every_grant_key);
	tcase_add_test(tc, server_grant_only);
	tcase_add_test(tc, wrong_secret_fails);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, source_names);
	tcase_add_test(tc, reuse_while_young);
	tcase_add_test(tc, reuse_with_attributes);
	suite_add_tcase(s, tc);
	tc = tcase_create("cmd_token");
	tcase_add_test(tc, cmd_token_prints_token);
	tcase_add_test(tc, cmd_token_bad_args);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lk_token_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
