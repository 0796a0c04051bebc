/*
 * jsonv.c - validated getters for request JSON (see jsonv.h).
 */
#include "core/jsonv.h"
#include "core/uuid.h"

#include <math.h>
#include <string.h>

static int absent(const char *key, unsigned flags, struct nc_error *err)
{
	if (flags & JV_REQUIRED) {
		err_set(err, NC_EBADREQ, "%s is required", key);
		return -1;
	}
	return 0;
}

static int wrong(const char *key, const char *what, struct nc_error *err)
{
	err_set(err, NC_EBADREQ, "%s must be %s", key, what);
	return -1;
}

bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p;
		size_t n;
		unsigned cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			n = 1, cp = c & 0x1f;
		else if ((c & 0xf0) == 0xe0)
			n = 2, cp = c & 0x0f;
		else if ((c & 0xf8) == 0xf0)
			n = 3, cp = c & 0x07;
		else
			return false;
		if ((size_t)(end - p) <= n)
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		p += n + 1;
	}
	return true;
}

/* Number of code points in valid UTF-8. */
static size_t utf8_len(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

int jv_string(json_t *obj, const char *key, unsigned flags, size_t min_len, size_t max_len,
	      const char **out, struct nc_error *err)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t bytes, chars;

	if (v == NULL || json_is_null(v))
		return absent(key, flags, err);
	if (!json_is_string(v))
		return wrong(key, "a string", err);
	s = json_string_value(v);
	bytes = json_string_length(v);
	if (!utf8_valid(s, bytes))
		return wrong(key, "valid UTF-8 text", err);
	chars = utf8_len(s, bytes);
	if (chars < min_len || chars > max_len) {
		err_set(err, NC_EBADREQ, "%s must be %zu to %zu characters", key, min_len, max_len);
		return -1;
	}
	*out = s;
	return 1;
}

int jv_uuid(json_t *obj, const char *key, unsigned flags, const char **out, struct nc_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return absent(key, flags, err);
	if (!json_is_string(v) || !is_uuid(json_string_value(v)))
		return wrong(key, "a UUID", err);
	*out = json_string_value(v);
	return 1;
}

int jv_bool(json_t *obj, const char *key, unsigned flags, bool *out, struct nc_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return absent(key, flags, err);
	if (!json_is_boolean(v))
		return wrong(key, "true or false", err);
	*out = json_is_true(v);
	return 1;
}

int jv_int(json_t *obj, const char *key, unsigned flags, long long min, long long max,
	   long long *out, struct nc_error *err)
{
	json_t *v = json_object_get(obj, key);
	long long x;

	if (v == NULL || json_is_null(v))
		return absent(key, flags, err);
	if (!json_is_integer(v))
		return wrong(key, "an integer", err);
	x = json_integer_value(v);
	if (x < min || x > max) {
		err_set(err, NC_EBADREQ, "%s must be from %lld to %lld", key, min, max);
		return -1;
	}
	*out = x;
	return 1;
}

int jv_number(json_t *obj, const char *key, unsigned flags, double min, double max, double *out,
	      struct nc_error *err)
{
	json_t *v = json_object_get(obj, key);
	double x;

	if (v == NULL || json_is_null(v))
		return absent(key, flags, err);
	if (!json_is_number(v))
		return wrong(key, "a number", err);
	x = json_number_value(v);
	if (!isfinite(x) || x < min || x > max) {
		err_set(err, NC_EBADREQ, "%s must be from %g to %g", key, min, max);
		return -1;
	}
	*out = x;
	return 1;
}

int jv_enum(json_t *obj, const char *key, unsigned flags, const char *const *choices,
	    const char **out, struct nc_error *err)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	if (v == NULL || json_is_null(v))
		return absent(key, flags, err);
	if (!json_is_string(v))
		return wrong(key, "a string", err);
	s = json_string_value(v);
	for (size_t i = 0; choices[i] != NULL; i++) {
		if (strcmp(s, choices[i]) == 0) {
			*out = choices[i];
			return 1;
		}
	}
	{
		char list[160] = "";
		size_t off = 0;

		for (size_t i = 0; choices[i] != NULL && off < sizeof(list); i++) {
			int n = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", choices[i]);
			if (n < 0)
				break;
			off += (size_t)n;
		}
		err_set(err, NC_EBADREQ, "%s must be one of: %s", key, list);
	}
	return -1;
}

int jv_object(json_t *obj, const char *key, unsigned flags, size_t max_bytes, json_t **out,
	      struct nc_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return absent(key, flags, err);
	if (!json_is_object(v))
		return wrong(key, "an object", err);
	if (max_bytes > 0) {
		size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT);
		if (n > max_bytes) {
			err_set(err, NC_EBADREQ, "%s must be at most %zu bytes of JSON", key, max_bytes);
			return -1;
		}
	}
	*out = v;
	return 1;
}

int jv_uuid_array(json_t *obj, const char *key, unsigned flags, size_t max_items, json_t **out,
		  struct nc_error *err)
{
	json_t *v = json_object_get(obj, key), *item;
	size_t i;

	if (v == NULL || json_is_null(v))
		return absent(key, flags, err);
	if (!json_is_array(v))
		return wrong(key, "an array of UUIDs", err);
	if (json_array_size(v) == 0 || json_array_size(v) > max_items) {
		err_set(err, NC_EBADREQ, "%s must have 1 to %zu entries", key, max_items);
		return -1;
	}
	json_array_foreach(v, i, item) {
		if (!json_is_string(item) || !is_uuid(json_string_value(item)))
			return wrong(key, "an array of UUIDs", err);
	}
	*out = v;
	return 1;
}
