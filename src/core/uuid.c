/*
 * uuid.c - checking, making and passing on textual UUIDs.
 */
#include "core/uuid.h"
#include "core/common.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool is_uuid(const char *s)
{
	static const int dash[] = {8, 13, 18, 23};
	size_t i, d = 0;

	if (s == NULL || strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		char c = s[i];
		if (d < 4 && (int)i == dash[d]) {
			if (c != '-')
				return false;
			d++;
			continue;
		}
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

void uuid_v4(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		fputs("fatal: RAND_bytes failed\n", stderr);
		abort();
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
		 b[11], b[12], b[13], b[14], b[15]);
}

void uuid_lower(const char *in, char out[37])
{
	for (size_t i = 0; i < 36; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'F') ? (char)(in[i] - 'A' + 'a') : in[i];
	out[36] = '\0';
}

char *uuid_array_literal(const char (*ids)[37], size_t n)
{
	char *s = xmalloc(n * 37 + 3), *p = s;

	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, ids[i], 36);
		p += 36;
	}
	*p++ = '}';
	*p = '\0';
	return s;
}
