/*
 * buf.h - a growable, always NUL-terminated byte string.
 *
 * Small builders (SQL fragments of fixed shape, canonical requests, CSV)
 * grow without bound and abort on allocation failure like the rest of our
 * small allocations; anything sized by a peer goes through
 * buf_append_capped, which refuses to pass its cap.
 */
#ifndef NC_BUF_H
#define NC_BUF_H

#include "core/common.h"

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *p;        /* NULL until the first append; then NUL-terminated */
	size_t len, cap;
};

void buf_addn(struct buf *b, const void *data, size_t n);
void buf_add(struct buf *b, const char *s);
void buf_addf(struct buf *b, const char *fmt, ...) NC_PRINTF(2, 3);
/* The string (never NULL: "" for an empty buffer). */
const char *buf_str(const struct buf *b);
/* Hand the string to the caller (malloc'd, never NULL) and empty b. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);

/*
 * Append n bytes to a growable, NUL-terminated buffer (*p, *len, *cap),
 * refusing to grow past max bytes: false (buffer unchanged) when it would.
 * Used as the body sink of every curl client.
 */
bool buf_append_capped(char **p, size_t *len, size_t *cap, size_t max, const void *data,
		       size_t n) NC_MUSTCHECK;

#endif
