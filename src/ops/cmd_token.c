/*
 * cmd_token.c - `nchat-rtc token`: print a LiveKit access token (dev helper).
 *
 *   nchat-rtc token --identity I [--room R] [--name N] [--metadata M]
 *                   [--ttl SECONDS] [--grant LIST] [--sources LIST]
 *
 * --grant is a comma list of: join, publish, subscribe, data, admin, create,
 * list, record, ingress, hidden, recorder, metadata (canUpdateOwnMetadata);
 * publish/subscribe/data may be written no-publish etc. to set them false.
 * Default: join,publish,subscribe,data.  join and admin need --room.
 * --sources is a comma list of camera, microphone, screen_share,
 * screen_share_audio.  Exit code: 0 ok, 1 failure, 2 bad arguments.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "livekit/lk.h"

#define DEFAULT_TTL_S 3600

static void usage(FILE *f)
{
	fputs("usage: nchat-rtc token --identity I [--room R] [--name N] [--metadata M]\n"
	      "         [--ttl SECONDS] [--grant join,publish,subscribe,data,admin,create,\n"
	      "          list,record,ingress,hidden,recorder,metadata,no-publish,...]\n"
	      "         [--sources camera,microphone,screen_share,screen_share_audio]\n", f);
}

/* Apply one grant word to g.  0, or -1 if unknown. */
static int apply_grant(struct lk_grant *g, const char *w)
{
	bool neg = strncmp(w, "no-", 3) == 0;
	enum lk_tri tri = neg ? LK_FALSE : LK_TRUE;
	const char *name = neg ? w + 3 : w;

	if (strcmp(name, "publish") == 0)
		g->can_publish = tri;
	else if (strcmp(name, "subscribe") == 0)
		g->can_subscribe = tri;
	else if (strcmp(name, "data") == 0)
		g->can_publish_data = tri;
	else if (neg)
		return -1;
	else if (strcmp(w, "join") == 0)
		g->room_join = true;
	else if (strcmp(w, "admin") == 0)
		g->room_admin = true;
	else if (strcmp(w, "create") == 0)
		g->room_create = true;
	else if (strcmp(w, "list") == 0)
		g->room_list = true;
	else if (strcmp(w, "record") == 0)
		g->room_record = true;
	else if (strcmp(w, "ingress") == 0)
		g->ingress_admin = true;
	else if (strcmp(w, "hidden") == 0)
		g->hidden = true;
	else if (strcmp(w, "recorder") == 0)
		g->recorder = true;
	else if (strcmp(w, "metadata") == 0)
		g->can_update_own_metadata = true;
	else
		return -1;
	return 0;
}

/* Split a comma list and feed each word to fn.  0, or -1 naming the bad word. */
static int each_word(const char *list, int (*fn)(struct lk_grant *, const char *),
		     struct lk_grant *g)
{
	char *copy = xstrdup(list), *save = NULL;
	int rc = 0;

	for (char *w = strtok_r(copy, ",", &save); w && rc == 0; w = strtok_r(NULL, ",", &save)) {
		rc = fn(g, w);
		if (rc != 0)
			fprintf(stderr, "nchat-rtc token: unknown value '%s'\n", w);
	}
	free(copy);
	return rc;
}

static int apply_source(struct lk_grant *g, const char *w)
{
	unsigned bit = lk_source_parse(w);

	if (!bit)
		return -1;
	g->sources |= bit;
	return 0;
}

static const struct option long_opts[] = {
	{ "room", required_argument, NULL, 'r' },
	{ "identity", required_argument, NULL, 'i' },
	{ "name", required_argument, NULL, 'n' },
	{ "metadata", required_argument, NULL, 'm' },
	{ "ttl", required_argument, NULL, 't' },
	{ "grant", required_argument, NULL, 'g' },
	{ "sources", required_argument, NULL, 's' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Parse argv into o.  0 ok, 2 bad arguments, 1 for --help (print usage, exit 0). */
static int parse_args(int argc, char **argv, struct lk_token_opts *o, const char **grants,
		      const char **sources)
{
	int ch;
	long ttl;

	optind = 0; /* glibc: full re-initialisation for a new argv */
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "r:i:n:m:t:g:s:h", long_opts, NULL)) != -1) {
		switch (ch) {
		case 'r': o->grant.room = optarg; break;
		case 'i': o->identity = optarg; break;
		case 'n': o->name = optarg; break;
		case 'm': o->metadata = optarg; break;
		case 'g': *grants = optarg; break;
		case 's': *sources = optarg; break;
		case 'h': return 1;
		case 't':
			if (parse_long(optarg, 1, 366L * 86400, &ttl) != 0) {
				fprintf(stderr, "nchat-rtc token: bad --ttl '%s'\n", optarg);
				return 2;
			}
			o->ttl_s = (int)ttl;
			break;
		default: return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nchat-rtc token: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

/* Check the combination of options.  0 or 2. */
static int check_opts(const struct lk_token_opts *o)
{
	const struct lk_grant *g = &o->grant;

	if (!o->identity || !*o->identity) {
		fputs("nchat-rtc token: --identity is required\n", stderr);
		return 2;
	}
	if ((g->room_join || g->room_admin) && (!g->room || !*g->room)) {
		fputs("nchat-rtc token: join and admin grants need --room\n", stderr);
		return 2;
	}
	return 0;
}

int cmd_token(int argc, char **argv, const struct nc_config *cfg)
{
	struct lk_token_opts o = { 0 };
	const char *grants = "join,publish,subscribe,data", *sources = NULL;
	char *tok;
	int rc = parse_args(argc, argv, &o, &grants, &sources);

	if (rc == 1) {
		usage(stdout);
		return 0;
	}
	if (rc == 0 && each_word(grants, apply_grant, &o.grant) != 0)
		rc = 2;
	if (rc == 0 && sources && each_word(sources, apply_source, &o.grant) != 0)
		rc = 2;
	if (rc == 0)
		rc = check_opts(&o);
	if (rc != 0) {
		usage(stderr);
		return rc;
	}
	if (o.ttl_s == 0)
		o.ttl_s = cfg->livekit_token_ttl_s > 0 ? cfg->livekit_token_ttl_s : DEFAULT_TTL_S;
	tok = lk_token_mint(cfg->livekit_api_key, cfg->livekit_api_secret, &o, now_unix());
	if (!tok) {
		fputs("nchat-rtc token: cannot mint (are LIVEKIT_API_KEY and LIVEKIT_API_SECRET set?)\n",
		      stderr);
		return 1;
	}
	printf("%s\n", tok);
	free(tok);
	return 0;
}
