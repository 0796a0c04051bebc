/*
 * router.c - linear route matching.
 *
 * The table is small (a few dozen routes) and matching is a segment-by-
 * segment comparison, so a linear scan costs well under a microsecond; a
 * trie would buy nothing measurable here.
 */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	unsigned bit;
} methods[] = {
	{"GET", RM_GET}, {"POST", RM_POST}, {"PUT", RM_PUT}, {"DELETE", RM_DELETE},
	{"PATCH", RM_PATCH}, {"HEAD", RM_HEAD}, {"OPTIONS", RM_OPTIONS},
};

unsigned route_method_bit(const char *name)
{
	for (size_t i = 0; i < NC_ARRAY_LEN(methods); i++)
		if (strcmp(methods[i].name, name) == 0)
			return methods[i].bit;
	return 0;
}

void route_allow_header(unsigned bits, char *out, size_t outlen)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < NC_ARRAY_LEN(methods); i++) {
		int n;

		if (!(bits & methods[i].bit))
			continue;
		n = snprintf(out + off, outlen - off, "%s%s", off ? ", " : "", methods[i].name);
		if (n < 0 || (size_t)n >= outlen - off)
			return;
		off += (size_t)n;
	}
}

/* Does pattern segment list match path segments?  Fills params on success. */
static bool match_one(const char *pattern, char *const *segs, int nsegs, struct route_match *m)
{
	const char *p = pattern;
	int i = 0;

	m->n_params = 0;
	while (*p == '/') {
		const char *start = ++p;
		size_t len;

		while (*p != '\0' && *p != '/')
			p++;
		len = (size_t)(p - start);
		if (i >= nsegs)
			return false;
		if (len >= 2 && start[0] == '{' && start[len - 1] == '}') {
			if (segs[i][0] == '\0' || m->n_params == ROUTE_MAX_PARAMS)
				return false;
			m->names[m->n_params] = start + 1;
			m->name_lens[m->n_params] = len - 2;
			m->values[m->n_params] = segs[i];
			m->n_params++;
		} else if (strlen(segs[i]) != len || memcmp(segs[i], start, len) != 0) {
			return false;
		}
		i++;
	}
	return i == nsegs;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode one raw segment in place.  An encoded '/' would join two
 * segments into one: nothing can match it (ROUTE_NOT_FOUND).  An encoded NUL
 * or a '%' without two hex digits is a malformed path (ROUTE_BAD_PATH).
 */
static enum route_result decode_segment(char *seg)
{
	char *in = seg, *out = seg;

	while (*in != '\0') {
		if (*in != '%') {
			*out++ = *in++;
			continue;
		}
		{
			int hi = hex_digit(in[1]), lo = hi >= 0 ? hex_digit(in[2]) : -1;
			int c = hi * 16 + lo;

			if (hi < 0 || lo < 0 || c == 0)
				return ROUTE_BAD_PATH;
			if (c == '/')
				return ROUTE_NOT_FOUND;
			*out++ = (char)c;
			in += 3;
		}
	}
	*out = '\0';
	return ROUTE_FOUND;
}

enum route_result route_match(const struct route *routes, unsigned method, char *path,
			      struct route_match *m)
{
	char *segs[ROUTE_MAX_SEGMENTS];
	int nsegs;
	unsigned allowed = 0;

	memset(m, 0, sizeof(*m));
	/* Segment the path once: every '/' becomes a NUL. */
	{
		char *p = path;
		nsegs = 0;
		if (*p != '/')
			return ROUTE_NOT_FOUND;
		while (*p == '/') {
			*p++ = '\0';
			if (*p == '\0' && nsegs > 0)
				break; /* trailing slash */
			if (nsegs == ROUTE_MAX_SEGMENTS)
				return ROUTE_NOT_FOUND;
			segs[nsegs++] = p;
			while (*p != '\0' && *p != '/')
				p++;
		}
	}
	/* Only now, one segment at a time: an encoded '/' never splits a segment. */
	for (int i = 0; i < nsegs; i++) {
		enum route_result rr = decode_segment(segs[i]);

		if (rr != ROUTE_FOUND)
			return rr;
	}
	for (const struct route *r = routes; r->pattern != NULL; r++) {
		struct route_match cand;

		memset(&cand, 0, sizeof(cand));
		if (!match_one(r->pattern, segs, nsegs, &cand))
			continue;
		if (r->methods & method) {
			*m = cand;
			m->route = r;
			return ROUTE_FOUND;
		}
		allowed |= r->methods;
	}
	if (allowed != 0) {
		m->allowed = allowed;
		return ROUTE_BAD_METHOD;
	}
	return ROUTE_NOT_FOUND;
}

const char *route_param(const struct route_match *m, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < m->n_params; i++)
		if (m->name_lens[i] == len && memcmp(m->names[i], name, len) == 0)
			return m->values[i];
	return NULL;
}
