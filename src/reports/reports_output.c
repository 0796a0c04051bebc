/*
 * reports_output.c - writing figures as JSON or as CSV.
 *
 * One writer serves both: the figures of a bucket are emitted once, in
 * order, and land either as JSON members ("callsByType":{"audio":3}) or as
 * CSV cells under dotted column names (callsByType.audio), with the very
 * same number text, so the two formats cannot disagree.  Numbers are exact
 * decimals (integers scaled by a power of ten), printed without trailing
 * zeros; null is an empty CSV cell.  Text is built straight into one
 * buffer: a 31-day hourly report has 745 buckets of 30 figures, which a
 * JSON library would allocate value by value.
 */
#include "reports/reports_int.h"
#include "core/buf.h"
#include "core/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FW_MAX (32 * 1024 * 1024)

void fw_init(struct fw *w, enum fw_mode mode)
{
	memset(w, 0, sizeof(*w));
	w->mode = mode;
	w->first = true;
}

void fw_free(struct fw *w)
{
	free(w->p);
	memset(w, 0, sizeof(*w));
}

void fw_raw(struct fw *w, const char *s, size_t n)
{
	/* most appends are a few bytes into room there is: no call for those */
	if (w->len + n < w->cap && w->len + n <= FW_MAX) {
		memcpy(w->p + w->len, s, n);
		w->len += n;
		w->p[w->len] = '\0';
		return;
	}
	if (!w->overflow && !buf_append_capped(&w->p, &w->len, &w->cap, FW_MAX, s, n))
		w->overflow = true;
}

static void raw(struct fw *w, const char *s)
{
	fw_raw(w, s, strlen(s));
}

/* A JSON string (the values written here never need escapes but get them). */
static void json_str(struct fw *w, const char *s)
{
	raw(w, "\"");
	while (*s) {
		size_t n = 0;

		while (s[n] && s[n] != '"' && s[n] != '\\' && (unsigned char)s[n] >= 0x20)
			n++;
		fw_raw(w, s, n);   /* the plain run, in one piece */
		s += n;
		if (*s) {
			char esc[8];

			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char)*s);
			raw(w, esc);
			s++;
		}
	}
	raw(w, "\"");
}

/* Separator and name of the next item. */
static void item(struct fw *w, const char *key)
{
	switch (w->mode) {
	case FW_JSON:
		if (!w->first)
			raw(w, ",");
		json_str(w, key);
		raw(w, ":");
		break;
	case FW_CSV_HEAD:
		if (!w->first)
			raw(w, ",");
		if (w->prefix[0]) {
			raw(w, w->prefix);
			raw(w, ".");
		}
		raw(w, key);
		break;
	case FW_CSV_ROW:
		if (!w->first)
			raw(w, ",");
		break;
	}
	w->first = false;
}

static void value(struct fw *w, const char *text)
{
	if (w->mode != FW_CSV_HEAD)
		raw(w, text);
}

void fw_open(struct fw *w)
{
	if (w->mode == FW_JSON)
		raw(w, "{");
	w->first = true;
}

void fw_close(struct fw *w)
{
	if (w->mode == FW_JSON)
		raw(w, "}");
	w->first = false;
}

void fw_line_end(struct fw *w)
{
	raw(w, "\r\n");
	w->first = true;
}

void fw_obj(struct fw *w, const char *key)
{
	if (w->mode == FW_JSON) {
		item(w, key);
		raw(w, "{");
		w->first = true;
	} else {
		snprintf(w->prefix, sizeof(w->prefix), "%s", key);
	}
}

void fw_end(struct fw *w)
{
	if (w->mode == FW_JSON) {
		raw(w, "}");
		w->first = false;
	} else {
		w->prefix[0] = '\0';
	}
}

void fw_str(struct fw *w, const char *key, const char *v)
{
	item(w, key);
	if (w->mode == FW_JSON)
		json_str(w, v);
	else
		value(w, v);   /* timestamps and ids: no comma, no quote */
}

void fw_null(struct fw *w, const char *key)
{
	item(w, key);
	if (w->mode == FW_JSON)
		raw(w, "null");
}

/* Decimal digits of u, right-aligned ending at end; the first digit. */
static char *digits(uint64_t u, char *end)
{
	do {
		*--end = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	return end;
}

void fw_int(struct fw *w, const char *key, int64_t v)
{
	char text[24], *p = digits(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, text + 23);

	text[23] = '\0';
	if (v < 0)
		*--p = '-';
	item(w, key);
	value(w, p);
}

void fw_fixed(struct fw *w, const char *key, int64_t scaled, int decimals)
{
	char text[48];
	uint64_t u = scaled < 0 ? (uint64_t)0 - (uint64_t)scaled : (uint64_t)scaled, div = 1;
	uint64_t frac;
	int d = decimals;

	for (int i = 0; i < decimals; i++)
		div *= 10;
	frac = u % div;
	while (d > 0 && frac % 10 == 0) {   /* no trailing zeros */
		frac /= 10;
		d--;
	}
	{
		/* [-]integer[.fraction of d digits, zero-padded], built from the end */
		char *p = text + sizeof(text) - 1;

		*p = '\0';
		if (d > 0) {
			for (int k = 0; k < d; k++) {
				*--p = (char)('0' + frac % 10);
				frac /= 10;
			}
			*--p = '.';
		}
		p = digits(u / div, p);
		if (scaled < 0)
			*--p = '-';
		item(w, key);
		value(w, p);
	}
}
