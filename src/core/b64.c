/*
 * b64.c - base64url without padding, both ways, table-driven: no
 * allocation, no OpenSSL round trip through the standard alphabet.
 */
#include "core/b64.h"
#include "core/common.h"

#include <string.h>

static const char enc_tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64url_encode(const void *in_, size_t n, char *out)
{
	const unsigned char *in = in_;
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];

		out[o++] = enc_tab[v >> 18 & 63];
		out[o++] = enc_tab[v >> 12 & 63];
		out[o++] = enc_tab[v >> 6 & 63];
		out[o++] = enc_tab[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)in[i] << 16;

		out[o++] = enc_tab[v >> 18 & 63];
		out[o++] = enc_tab[v >> 12 & 63];
	} else if (n - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;

		out[o++] = enc_tab[v >> 18 & 63];
		out[o++] = enc_tab[v >> 12 & 63];
		out[o++] = enc_tab[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

char *b64url_encode_str(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(B64URL_LEN(n) + 1);

	b64url_encode(s, n, out);
	return out;
}

/* 0-63 for an alphabet character, -1 otherwise. */
static int dec(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long b64url_decode(const char *in, size_t len, unsigned char *out)
{
	size_t o = 0, i = 0;
	unsigned v = 0;
	int bits = 0;

	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++) {
		int d = dec((unsigned char)in[i]);

		if (d < 0)
			return -1;
		v = (v << 6 | (unsigned)d) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits & 0xff);
		}
	}
	/* The unused low bits of the last character must be zero (canonical form). */
	if (bits > 0 && (v & ((1u << bits) - 1)) != 0)
		return -1;
	return (long)o;
}
