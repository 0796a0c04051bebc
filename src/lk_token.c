/*
 * lk_token.c - LiveKit access tokens: HS256 JWTs (libjwt) with the claims
 * LiveKit reads (iss, sub, nbf, exp, name, metadata, attributes, video).
 *
 * The payload is built as a jansson object first so that absent keys stay
 * absent and types are exact (booleans, integers, arrays), serialised once
 * and signed (HMAC-SHA256) directly.
 */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lk.h"
#include "log.h"

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

/* base64url without padding of n bytes (malloc'd). */
static char *b64url(const unsigned char *in, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1), *p;

	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	for (p = out; *p; p++) {
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

/*
 * Sign claims with HS256; malloc'd token or NULL.  The claims are
 * serialised once and signed as they are (the header is a constant), with
 * no round trip through libjwt's own JSON: minting is on every join.
 */
static char *sign_hs256(const char *secret, const json_t *claims)
{
	/* base64url of {"alg":"HS256","typ":"JWT"} */
	static const char header[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char *text = json_dumps(claims, JSON_COMPACT), *payload, *sig, *tok = NULL;
	size_t hl = sizeof(header) - 1, pl, sl;

	if (text == NULL)
		return NULL;
	payload = b64url((const unsigned char *)text, strlen(text));
	free(text);
	pl = strlen(payload);
	tok = xmalloc(hl + 1 + pl + 1 + 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1);
	memcpy(tok, header, hl);
	tok[hl] = '.';
	memcpy(tok + hl + 1, payload, pl);
	tok[hl + 1 + pl] = '\0';
	free(payload);
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)tok, hl + 1 + pl,
		 mac, &mac_len) == NULL) {
		free(tok);
		return NULL;
	}
	sig = b64url(mac, mac_len);
	sl = strlen(sig);
	tok[hl + 1 + pl] = '.';
	memcpy(tok + hl + 1 + pl + 1, sig, sl + 1);
	free(sig);
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
