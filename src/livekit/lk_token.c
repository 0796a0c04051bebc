/*
 * lk_token.c - LiveKit access tokens: HS256 JWTs (libjwt) with the claims
 * LiveKit reads (iss, sub, nbf, exp, name, metadata, attributes, video).
 *
 * The payload is built as a jansson object first so that absent keys stay
 * absent and types are exact (booleans, integers, arrays), then handed to
 * libjwt for signing.
 */
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <openssl/sha.h>

#include "livekit/lk.h"
#include "core/buf.h"
#include "core/kvcache.h"
#include "core/log.h"

static const struct {
	unsigned bit;
	const char *name;
} source_names[] = {
	{ LK_SRC_CAMERA, "camera" },
	{ LK_SRC_MICROPHONE, "microphone" },
	{ LK_SRC_SCREEN_SHARE, "screen_share" },
	{ LK_SRC_SCREEN_SHARE_AUDIO, "screen_share_audio" },
};

unsigned lk_source_parse(const char *name)
{
	for (size_t i = 0; i < NC_ARRAY_LEN(source_names); i++)
		if (strcasecmp(name, source_names[i].name) == 0)
			return source_names[i].bit;
	return 0;
}

static void set_flag(json_t *o, const char *key, bool v)
{
	if (v)
		json_object_set_new(o, key, json_true());
}

static void set_tri(json_t *o, const char *key, enum lk_tri v)
{
	if (v != LK_UNSET)
		json_object_set_new(o, key, json_boolean(v == LK_TRUE));
}

static void set_str(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, json_string(v));
}

static json_t *sources_json(unsigned bits)
{
	json_t *a = json_array();

	for (size_t i = 0; i < NC_ARRAY_LEN(source_names); i++)
		if (bits & source_names[i].bit)
			json_array_append_new(a, json_string(source_names[i].name));
	return a;
}

json_t *lk_grant_json(const struct lk_grant *g)
{
	json_t *v = json_object();

	set_flag(v, "roomCreate", g->room_create);
	set_flag(v, "roomList", g->room_list);
	set_flag(v, "roomRecord", g->room_record);
	set_flag(v, "roomAdmin", g->room_admin);
	set_flag(v, "roomJoin", g->room_join);
	set_str(v, "room", g->room);
	set_tri(v, "canPublish", g->can_publish);
	set_tri(v, "canSubscribe", g->can_subscribe);
	set_tri(v, "canPublishData", g->can_publish_data);
	if (g->sources)
		json_object_set_new(v, "canPublishSources", sources_json(g->sources));
	set_flag(v, "canUpdateOwnMetadata", g->can_update_own_metadata);
	set_flag(v, "ingressAdmin", g->ingress_admin);
	set_flag(v, "hidden", g->hidden);
	set_flag(v, "recorder", g->recorder);
	return v;
}

/* The whole claim set (new reference). */
static json_t *claims_json(const char *key, const struct lk_token_opts *o, int64_t now)
{
	json_t *c = json_object();
	json_t *video = lk_grant_json(&o->grant);

	json_object_set_new(c, "iss", json_string(key));
	set_str(c, "sub", o->identity);
	json_object_set_new(c, "nbf", json_integer(now));
	json_object_set_new(c, "exp", json_integer(now + o->ttl_s));
	set_str(c, "name", o->name);
	set_str(c, "metadata", o->metadata);
	if (o->attributes)
		json_object_set(c, "attributes", o->attributes);
	if (json_object_size(video) > 0)
		json_object_set(c, "video", video);
	json_decref(video);
	return c;
}

/* Sign claims with HS256; malloc'd token or NULL. */
static char *sign_hs256(const char *secret, const json_t *claims)
{
	jwt_t *jwt = NULL;
	char *text = json_dumps(claims, JSON_COMPACT);
	char *tok = NULL;

	if (!text || jwt_new(&jwt) != 0)
		goto out;
	if (jwt_add_grants_json(jwt, text) != 0)
		goto out;
	if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret,
			(int)strlen(secret)) != 0)
		goto out;
	tok = jwt_encode_str(jwt);
out:
	jwt_free(jwt);
	free(text);
	return tok;
}

char *lk_token_mint(const char *key, const char *secret,
		    const struct lk_token_opts *o, int64_t now)
{
	json_t *claims;
	char *tok;

	if (!key || !*key || !secret || !*secret || !o || o->ttl_s <= 0)
		return NULL;
	if (o->attributes && !json_is_object(o->attributes))
		return NULL;
	claims = claims_json(key, o, now);
	tok = sign_hs256(secret, claims);
	json_decref(claims);
	if (!tok)
		log_error("lk_token: signing failed");
	return tok;
}

/* ---- tokens handed out again ---- */

/*
 * A participant who joins again (a reload, a reconnect, a second tab) asks
 * for the very token it was given a moment ago, and minting costs about a
 * fifth of a join's CPU (the claims built, dumped, parsed and dumped again
 * by libjwt, then signed).  So the process keeps what it minted, keyed on
 * everything that goes into a token but its times, and hands a token out
 * again while it is young: at most a tenth of its lifetime old.  A token is
 * never extended (its own exp is reported), so the holder of a reused token
 * can do exactly what the first holder could, for no longer.
 */
static struct kvcache minted = KVCACHE_INIT;

/* Room for the times and the token in a cached value. */
#define REUSE_VALUE_MAX 4096

struct minted_head {
	int64_t nbf, exp;
};

static void key_bytes(struct buf *k, const void *p, uint32_t n)
{
	buf_addn(k, &n, sizeof(n));
	if (p)
		buf_addn(k, p, n);
}

static void key_str(struct buf *k, const char *s)
{
	key_bytes(k, s, s ? (uint32_t)strlen(s) : UINT32_MAX);
}

/*
 * Everything a token says but nbf and exp, unambiguously, and which secret
 * signs it (its SHA-256: the table holds no copy of the secret); false if it
 * cannot be written.
 */
static bool reuse_key(struct buf *k, const char *key, const char *secret,
		      const struct lk_token_opts *o)
{
	const struct lk_grant *g = &o->grant;
	unsigned char sig_key[SHA256_DIGEST_LENGTH];
	int32_t nums[16];
	char *attrs = NULL;
	size_t n = 0;

	if (SHA256((const unsigned char *)secret, strlen(secret), sig_key) == NULL)
		return false;
	if (o->attributes) {
		attrs = json_dumps(o->attributes, JSON_COMPACT | JSON_SORT_KEYS);
		if (!attrs)
			return false;
	}
	key_str(k, key);
	key_bytes(k, sig_key, sizeof(sig_key));
	key_str(k, o->identity);
	key_str(k, o->name);
	key_str(k, o->metadata);
	key_str(k, attrs);
	key_str(k, g->room);
	free(attrs);
	nums[n++] = o->ttl_s;
	nums[n++] = g->room_join;
	nums[n++] = g->room_admin;
	nums[n++] = g->room_create;
	nums[n++] = g->room_list;
	nums[n++] = g->room_record;
	nums[n++] = g->ingress_admin;
	nums[n++] = (int32_t)g->can_publish;
	nums[n++] = (int32_t)g->can_subscribe;
	nums[n++] = (int32_t)g->can_publish_data;
	nums[n++] = (int32_t)g->sources;
	nums[n++] = g->can_update_own_metadata;
	nums[n++] = g->hidden;
	nums[n++] = g->recorder;
	buf_addn(k, nums, n * sizeof(nums[0]));
	return true;
}

char *lk_token_mint_reuse(const char *key, const char *secret,
			  const struct lk_token_opts *o, int64_t now, int64_t *exp_out)
{
	unsigned char val[REUSE_VALUE_MAX];
	struct minted_head h;
	struct buf k = {0};
	size_t len, tlen;
	char *tok = NULL;

	if (!key || !*key || !secret || !*secret || !o || o->ttl_s <= 0)
		return NULL;
	if (!reuse_key(&k, key, secret, o))
		goto mint;
	if (kvcache_get(&minted, k.p, k.len, val, REUSE_VALUE_MAX, &len) && len > sizeof(h)) {
		memcpy(&h, val, sizeof(h));
		if (now >= h.nbf && now - h.nbf <= o->ttl_s / 10 && h.exp > now) {
			tok = malloc(len - sizeof(h) + 1);
			if (tok) {
				memcpy(tok, val + sizeof(h), len - sizeof(h));
				tok[len - sizeof(h)] = '\0';
				*exp_out = h.exp;
				goto out;
			}
		}
	}
mint:
	tok = lk_token_mint(key, secret, o, now);
	if (tok == NULL)
		goto out;
	*exp_out = now + o->ttl_s;
	tlen = strlen(tok);
	if (k.len > 0 && sizeof(h) + tlen <= REUSE_VALUE_MAX) {
		h.nbf = now;
		h.exp = now + o->ttl_s;
		memcpy(val, &h, sizeof(h));
		memcpy(val + sizeof(h), tok, tlen);
		kvcache_put(&minted, k.p, k.len, val, sizeof(h) + tlen);
	}
out:
	buf_free(&k);
	return tok;
}

void lk_token_cache_release(void)
{
	kvcache_clear(&minted);
}
