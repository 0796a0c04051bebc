/*
 * fuzz_util.h - small helpers shared by the libFuzzer targets.
 *
 * Targets that need several inputs (a JWT header, its claims, a body) take
 * them from one fuzzer buffer split on NUL bytes, so that the fuzzer can grow
 * each part independently; base64url encoding lets a target build tokens that
 * get past the signature check and reach the claim logic behind it.
 */
#ifndef NC_FUZZ_UTIL_H
#define NC_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FZ_MAX_PARTS 8

struct fz_parts {
	size_t n;
	char *part[FZ_MAX_PARTS];  /* NUL-terminated copies */
	size_t len[FZ_MAX_PARTS];
};

/* Split data on NUL bytes into at most FZ_MAX_PARTS parts (the last keeps the rest). */
static inline void fz_split(const uint8_t *data, size_t size, struct fz_parts *p)
{
	size_t start = 0;

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i <= size; i++) {
		if (i == size || (data[i] == 0 && p->n + 1 < FZ_MAX_PARTS)) {
			size_t len = i - start;

			p->part[p->n] = malloc(len + 1);
			if (p->part[p->n] == NULL)
				abort();
			memcpy(p->part[p->n], data + start, len);
			p->part[p->n][len] = '\0';
			p->len[p->n] = len;
			p->n++;
			start = i + 1;
		}
	}
}

static inline void fz_free(struct fz_parts *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->part[i]);
}

static inline const char *fz_get(const struct fz_parts *p, size_t i, const char *dflt)
{
	return i < p->n ? p->part[i] : dflt;
}

/* base64url without padding of in[0..len) into a malloc'd string. */
static inline char *fz_b64url(const void *in, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *s = in;
	char *out = malloc(len / 3 * 4 + 5), *o = out;
	size_t i = 0;

	if (out == NULL)
		abort();
	for (; i + 2 < len; i += 3) {
		*o++ = tab[s[i] >> 2];
		*o++ = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*o++ = tab[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		*o++ = tab[s[i + 2] & 63];
	}
	if (len - i == 1) {
		*o++ = tab[s[i] >> 2];
		*o++ = tab[(s[i] & 3) << 4];
	} else if (len - i == 2) {
		*o++ = tab[s[i] >> 2];
		*o++ = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*o++ = tab[(s[i + 1] & 15) << 2];
	}
	*o = '\0';
	return out;
}

/* A cheap 32-bit hash of the input, to derive bounds and choices from it. */
static inline uint32_t fz_hash(const uint8_t *data, size_t size)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	return h;
}

#endif
