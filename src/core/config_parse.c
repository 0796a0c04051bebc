/*
 * config_parse.c - parsers of configuration values that need more than a
 * number or a string: the Hasura JWT secret, LiveKit's URL, the rate-limit
 * lists.  They live here, below every module that uses the parsed values,
 * so that config.c depends on nothing above core.
 */
#include "core/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int auth_parse_hasura_secret(const char *json, enum cfg_auth_alg *alg, char **key,
			     size_t *keylen, char *errbuf, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loads(json, 0, &jerr);
	const char *type, *k;
	int rc = -1;

	if (root == NULL || !json_is_object(root)) {
		snprintf(errbuf, errlen, "must be a JSON object with type and key");
		goto out;
	}
	type = json_string_value(json_object_get(root, "type"));
	k = json_string_value(json_object_get(root, "key"));
	if (type == NULL || k == NULL || *k == '\0') {
		snprintf(errbuf, errlen, "needs string fields type and key");
		goto out;
	}
	if (strcmp(type, "HS256") == 0) {
		*alg = CFG_AUTH_HS256;
	} else if (strcmp(type, "RS256") == 0) {
		if (strstr(k, "-----BEGIN") == NULL) {
			snprintf(errbuf, errlen, "RS256 key must be a PEM public key");
			goto out;
		}
		*alg = CFG_AUTH_RS256;
	} else {
		snprintf(errbuf, errlen, "type must be HS256 or RS256");
		goto out;
	}
	*key = xstrdup(k);
	*keylen = strlen(k);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

char *lk_http_url(const char *url)
{
	static const struct { const char *from, *to; } map[] = {
		{ "ws://", "http://" }, { "wss://", "https://" },
		{ "http://", "http://" }, { "https://", "https://" },
	};
	char *out = NULL;
	size_t n;

	if (!url)
		return NULL;
	for (size_t i = 0; i < NC_ARRAY_LEN(map) && !out; i++) {
		size_t k = strlen(map[i].from);
		if (strncasecmp(url, map[i].from, k) == 0 && url[k])
			out = xasprintf("%s%s", map[i].to, url + k);
	}
	if (!out)
		return NULL;
	n = strlen(out);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
	return out;
}

static const char *const class_names[RL_CLASS_MAX] = {
	[RL_DEFAULT] = "default", [RL_INITIATE] = "initiate", [RL_JOIN] = "join",
	[RL_CHAT] = "chat",       [RL_REACTIONS] = "reactions", [RL_STATS] = "stats",
};

static const char default_user_limits[] =
	"default=300/60,initiate=20/60,join=60/60,chat=60/60,reactions=600/60,stats=60/60";
static const char default_ip_limit[] = "3000/60";

const char *rl_class_name(enum rl_class c)
{
	return c < RL_CLASS_MAX ? class_names[c] : "exempt";
}

/* "N/S" or "off" into *l. */
static int parse_one(const char *s, size_t len, struct rl_limit *l)
{
	char buf[32], *slash;
	long n, w;

	if (len == 3 && strncmp(s, "off", 3) == 0) {
		l->count = 0;
		l->window_s = 1;
		return 0;
	}
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	if (parse_long(buf, 1, 1000000, &n) != 0 || parse_long(slash + 1, 1, 86400, &w) != 0)
		return -1;
	l->count = (int)n;
	l->window_s = (int)w;
	return 0;
}

int rl_parse(const char *per_user, const char *per_ip, struct rl_config *out, char *errbuf,
	     size_t errlen)
{
	const char *p;

	memset(out, 0, sizeof(*out));
	/* Defaults first, then the configured entries override them. */
	for (int pass = 0; pass < 2; pass++) {
		p = pass == 0 ? default_user_limits : per_user;
		while (p != NULL && *p != '\0') {
			const char *end = strchr(p, ','), *eq;
			size_t len = end ? (size_t)(end - p) : strlen(p);
			int cls = -1;

			while (len > 0 && *p == ' ')
				p++, len--;
			eq = memchr(p, '=', len);
			for (int c = 0; eq != NULL && c < RL_CLASS_MAX; c++)
				if (strlen(class_names[c]) == (size_t)(eq - p) &&
				    strncmp(p, class_names[c], (size_t)(eq - p)) == 0)
					cls = c;
			if (len > 0 && (cls < 0 ||
					parse_one(eq + 1, len - (size_t)(eq + 1 - p), &out->user[cls]) != 0)) {
				snprintf(errbuf, errlen,
					 "config: RATE_LIMITS must be class=N/SECONDS pairs (classes: default, "
					 "initiate, join, chat, reactions, stats; N/SECONDS or off)");
				return -1;
			}
			p = end ? end + 1 : NULL;
		}
	}
	p = per_ip != NULL && *per_ip != '\0' ? per_ip : default_ip_limit;
	if (parse_one(p, strlen(p), &out->ip) != 0) {
		snprintf(errbuf, errlen, "config: RATE_LIMIT_IP must be N/SECONDS or off");
		return -1;
	}
	return 0;
}
