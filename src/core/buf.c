/*
 * buf.c - the growable string of buf.h.
 */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 256;

	if (need <= b->cap)
		return;
	while (cap < need)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void buf_addn(struct buf *b, const void *data, size_t n)
{
	reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void buf_add(struct buf *b, const char *s)
{
	buf_addn(b, s, strlen(s));
}

void buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort(); /* only a malformed format gets here */
	reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

const char *buf_str(const struct buf *b)
{
	return b->p ? b->p : "";
}

char *buf_steal(struct buf *b)
{
	char *s = b->p ? b->p : xstrdup("");

	b->p = NULL;
	b->len = b->cap = 0;
	return s;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

bool buf_append_capped(char **p, size_t *len, size_t *cap, size_t max, const void *data, size_t n)
{
	if (*len + n > max)
		return false;
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;

		while (c < *len + n + 1)
			c *= 2;
		*p = xrealloc(*p, c);
		*cap = c;
	}
	memcpy(*p + *len, data, n);
	*len += n;
	(*p)[*len] = '\0';
	return true;
}
