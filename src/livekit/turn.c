/*
 * turn.c - coturn REST-API credentials (use-auth-secret) and the
 * RTCIceServer JSON array browsers pass to RTCPeerConnection.
 *
 * username   = "<expiry unix seconds>:<user id>"
 * credential = base64(HMAC-SHA1(TURN_SECRET, username)), standard alphabet,
 *              padded (28 characters).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/log.h"
#include "livekit/turn.h"

#define TURN_DEFAULT_PORT 3478
/* Used only when neither STUN_URLS nor TURN is configured: Google's public STUN. */
#define DEFAULT_STUN_URL "stun:stun.l.google.com:19302"

/* TURN_SERVER_URL split into the URL host part and a port. */
struct turn_addr {
	char host[260]; /* IPv6 literals keep (or get) their brackets */
	int port;
};

static bool nonempty(const char *s)
{
	return s && *s;
}

bool turn_configured(const struct nc_config *cfg)
{
	return nonempty(cfg->turn_server_url) && nonempty(cfg->turn_secret);
}

char *turn_username(int64_t expiry, const char *user_id)
{
	return xasprintf("%lld:%s", (long long)expiry, user_id ? user_id : "");
}

int turn_credential(const char *secret, const char *username,
		    char out[TURN_CRED_LEN])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	if (!secret || !username)
		return -1;
	if (!HMAC(EVP_sha1(), secret, (int)strlen(secret),
		  (const unsigned char *)username, strlen(username), mac, &mac_len))
		return -1;
	if (mac_len != 20)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
	return 0;
}

/* Drop an optional "turn:"/"turns:"/"stun:" prefix and any "?query". */
static void strip_url_decor(const char *in, char *out, size_t outlen)
{
	static const char *const schemes[] = { "turns:", "turn:", "stun:" };

	for (size_t i = 0; i < NC_ARRAY_LEN(schemes); i++) {
		size_t n = strlen(schemes[i]);
		if (strncmp(in, schemes[i], n) == 0) {
			in += n;
			break;
		}
	}
	snprintf(out, outlen, "%s", in);
	out[strcspn(out, "?/")] = '\0';
}

/* Parse host[:port], [v6]:port or a bare IPv6 literal.  0 or -1. */
static int parse_addr(const char *url, struct turn_addr *a)
{
	char buf[256];
	char *colon;
	long port = TURN_DEFAULT_PORT;

	strip_url_decor(url, buf, sizeof buf);
	colon = strrchr(buf, ':');
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (!close)
			return -1;
		colon = close[1] == ':' ? close + 1 : NULL;
	} else if (colon && strchr(buf, ':') != colon) {
		colon = NULL; /* bare IPv6 literal, no port */
	}
	if (colon) {
		*colon = '\0';
		if (parse_long(colon + 1, 1, 65535, &port) != 0)
			return -1;
	}
	if (!buf[0])
		return -1;
	if (buf[0] != '[' && strchr(buf, ':'))
		snprintf(a->host, sizeof a->host, "[%s]", buf);
	else
		snprintf(a->host, sizeof a->host, "%s", buf);
	a->port = (int)port;
	return 0;
}

/* Append each comma-separated STUN URL (adding "stun:" when missing). */
static void add_stun_list(json_t *urls, const char *list)
{
	char *copy = xstrdup(list), *save = NULL;

	for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		char *u = strncmp(t, "stun:", 5) == 0 || strncmp(t, "stuns:", 6) == 0
			? xstrdup(t) : xasprintf("stun:%s", t);

		json_array_append_new(urls, json_string(u));
		free(u);
	}
	free(copy);
}

static json_t *stun_entry(const struct nc_config *cfg, const struct turn_addr *turn)
{
	json_t *urls = json_array();

	if (nonempty(cfg->stun_urls))
		add_stun_list(urls, cfg->stun_urls);
	if (json_array_size(urls) == 0 && turn) {
		char *u = xasprintf("stun:%s:%d", turn->host, turn->port);
		json_array_append_new(urls, json_string(u));
		free(u);
	}
	if (json_array_size(urls) == 0)
		json_array_append_new(urls, json_string(DEFAULT_STUN_URL));
	return json_pack("{s:o}", "urls", urls);
}

static void add_url(json_t *urls, const char *fmt, const char *host, int port)
{
	char *u = xasprintf(fmt, host, port);

	json_array_append_new(urls, json_string(u));
	free(u);
}

static json_t *turn_entry(const struct nc_config *cfg, const struct turn_addr *a,
			  const char *user_id, int64_t now)
{
	int ttl = cfg->turn_ttl_s > 0 ? cfg->turn_ttl_s : TURN_DEFAULT_TTL_S;
	char *user = turn_username(now + ttl, user_id);
	char cred[TURN_CRED_LEN];
	json_t *urls = json_array(), *e = NULL;

	add_url(urls, "turn:%s:%d?transport=udp", a->host, a->port);
	add_url(urls, "turn:%s:%d?transport=tcp", a->host, a->port);
	if (cfg->turns_port > 0)
		add_url(urls, "turns:%s:%d?transport=tcp", a->host, cfg->turns_port);
	if (turn_credential(cfg->turn_secret, user, cred) == 0)
		e = json_pack("{s:o,s:s,s:s}", "urls", urls, "username", user,
			      "credential", cred);
	else
		json_decref(urls);
	free(user);
	return e;
}

json_t *turn_ice_servers(const struct nc_config *cfg, const char *user_id, int64_t now)
{
	json_t *list = json_array();
	struct turn_addr addr;
	bool turn = turn_configured(cfg) && parse_addr(cfg->turn_server_url, &addr) == 0;

	json_array_append_new(list, stun_entry(cfg, turn ? &addr : NULL));
	if (turn) {
		json_t *t = turn_entry(cfg, &addr, user_id, now);
		if (t)
			json_array_append_new(list, t);
	}
	return list;
}

void turn_log_startup(const struct nc_config *cfg)
{
	struct turn_addr addr;

	if (!nonempty(cfg->turn_server_url)) {
		log_info("turn: not configured, offering STUN only");
		return;
	}
	if (parse_addr(cfg->turn_server_url, &addr) != 0) {
		log_warn("turn: TURN_SERVER_URL '%s' is not host[:port]; offering STUN only",
			 cfg->turn_server_url);
		return;
	}
	if (!nonempty(cfg->turn_secret)) {
		log_warn("turn: TURN_SERVER_URL set but TURN_SECRET empty; offering STUN only");
		return;
	}
	log_info("turn: %s:%d (udp, tcp%s), credential ttl %ds", addr.host, addr.port,
		 cfg->turns_port > 0 ? ", turns" : "",
		 cfg->turn_ttl_s > 0 ? cfg->turn_ttl_s : TURN_DEFAULT_TTL_S);
}
