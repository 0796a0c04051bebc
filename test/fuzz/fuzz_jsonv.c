/*
 * fuzz_jsonv.c - libFuzzer target for request JSON decoding.
 *
 * Every handler reads its body through req_json and then the jv_* getters,
 * so these see attacker-controlled JSON on every request.  The input is fed
 * to req_json as a request body and every getter is called on a fixed set of
 * keys plus every key actually present, with bounds derived from the input.
 * Besides the sanitizers, the target checks the getters' promises: a value
 * returned as valid is within the bounds asked for, and utf8_valid agrees
 * with an independent reference decoder.
 */
#include "fuzz_util.h"
#include "core/uuid.h"
#include "http/http.h"
#include "http/req_private.h" /* the harness builds a request by hand */
#include "core/jsonv.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s\n", #c); abort(); } } while (0)

/* Reference UTF-8 check (RFC 3629 table form), independent of jsonv.c. */
static bool ref_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];

		if (c == 0)
			return false;
		if (c <= 0x7f) {
			i++;
		} else if (c >= 0xc2 && c <= 0xdf) {
			if (i + 1 >= len || (s[i + 1] & 0xc0) != 0x80)
				return false;
			i += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

			if (i + 2 >= len || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xc0) != 0x80)
				return false;
			i += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

			if (i + 3 >= len || s[i + 1] < lo || s[i + 1] > hi ||
			    (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80)
				return false;
			i += 4;
		} else {
			return false;
		}
	}
	return true;
}

static size_t ref_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void free_resp(struct req *r)
{
	free(r->resp_body);
	for (size_t i = 0; i < r->n_out; i++) {
		free(r->out_headers[i].name);
		free(r->out_headers[i].value);
	}
	free(r->out_headers);
}

static void all_getters(json_t *obj, const char *key, uint32_t h)
{
	static const char *const kinds[] = {"audio", "video", "screen", "", "\xc3\xa9", NULL};
	struct nc_error err;
	const char *s = NULL;
	bool b;
	long long ll;
	double d;
	json_t *j;
	unsigned flags = (h & 1) ? JV_REQUIRED : 0;
	size_t min_len = h % 5, max_len = min_len + (h >> 8) % 300;
	long long lo = (long long)(int32_t)h, hi = lo + (long long)((h >> 4) % 100000);
	int rc;

	memset(&err, 0, sizeof(err));
	rc = jv_string(obj, key, flags, min_len, max_len, &s, &err);
	if (rc == 1) {
		size_t n = ref_chars(s);

		FZ_CHECK(ref_utf8((const unsigned char *)s, strlen(s)));
		FZ_CHECK(n >= min_len && n <= max_len);
	} else if (rc < 0) {
		FZ_CHECK(err.code == NC_EBADREQ && err.msg[0] != '\0');
	}
	rc = jv_uuid(obj, key, flags, &s, &err);
	if (rc == 1)
		FZ_CHECK(is_uuid(s));
	(void)jv_bool(obj, key, flags, &b, &err);
	rc = jv_int(obj, key, flags, lo, hi, &ll, &err);
	if (rc == 1)
		FZ_CHECK(ll >= lo && ll <= hi);
	rc = jv_int(obj, key, flags, LLONG_MIN, LLONG_MAX, &ll, &err);
	rc = jv_number(obj, key, flags, -1e6, 1e6, &d, &err);
	if (rc == 1)
		FZ_CHECK(isfinite(d) && d >= -1e6 && d <= 1e6);
	rc = jv_enum(obj, key, flags, kinds, &s, &err);
	if (rc == 1) {
		bool found = false;

		for (size_t i = 0; kinds[i] != NULL; i++)
			found |= s == kinds[i];
		FZ_CHECK(found);
	}
	rc = jv_object(obj, key, flags, h % 3 ? (h >> 3) % 4096 : 0, &j, &err);
	if (rc == 1)
		FZ_CHECK(json_is_object(j));
	rc = jv_uuid_array(obj, key, flags, 1 + (h >> 12) % 64, &j, &err);
	if (rc == 1) {
		size_t i;
		json_t *it;

		FZ_CHECK(json_is_array(j) && json_array_size(j) >= 1);
		json_array_foreach(j, i, it)
			FZ_CHECK(is_uuid(json_string_value(it)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"name", "id", "user_ids", "metadata", "enabled",
					   "limit", "kind", "", "a", "title"};
	struct http_header hdr = {(char *)"Content-Type", (char *)"application/json"};
	struct req r;
	char *body = malloc(size + 1);
	uint32_t h = fz_hash(data, size);
	json_t *root;

	if (body == NULL)
		abort();
	memcpy(body, data, size);
	body[size] = '\0';
	/* The reference decoder and utf8_valid must agree on every input. */
	FZ_CHECK(utf8_valid(body, size) == ref_utf8(data, size));

	memset(&r, 0, sizeof(r));
	r.headers = &hdr;
	r.n_headers = 1;
	r.body = body;
	r.body_len = size;
	root = req_json(&r, (h & 2) != 0);
	if (root == NULL) {
		FZ_CHECK(r.status == 400 || r.status == 415);
	} else {
		const char *key;
		json_t *v;

		FZ_CHECK(json_is_object(root));
		for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++)
			all_getters(root, keys[i], h + (uint32_t)i * 0x9e3779b9u);
		json_object_foreach(root, key, v) {
			all_getters(root, key, h ^ (uint32_t)strlen(key));
			/* Nested objects are decoded the same way (e.g. "metadata"). */
			if (json_is_object(v))
				all_getters(v, key, ~h);
		}
		json_decref(root);
	}
	free_resp(&r);
	free(body);
	return 0;
}
