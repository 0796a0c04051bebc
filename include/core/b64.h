/*
 * b64.h - base64url without padding (JWT segments, cursors, tokens).
 */
#ifndef NC_B64_H
#define NC_B64_H

#include <stddef.h>

/* Characters b64url_encode writes for n bytes (no NUL). */
#define B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Encode n bytes into out (room for B64URL_LEN(n) + 1); returns the length written. */
size_t b64url_encode(const void *in, size_t n, char *out);
/* The encoding of the string s, malloc'd. */
char *b64url_encode_str(const char *s);
/*
 * Decode len characters of base64url (no padding; '+', '/' and '=' refused)
 * into out, which must hold 3 * (len + 3) / 4 bytes.  The decoded length,
 * or -1 when in is not base64url.
 */
long b64url_decode(const char *in, size_t len, unsigned char *out);

#endif
