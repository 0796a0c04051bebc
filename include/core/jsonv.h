/*
 * jsonv.h - typed, validated access to request JSON objects.
 *
 * Every getter returns 1 when the field is present and valid (value stored
 * in *out), 0 when it is absent or JSON null and not required (*out left
 * unchanged), and -1 when it is present with the wrong type or out of range,
 * or required and absent; then err holds a 400 naming the field, which is
 * what API.md asks for ("wrong types are 400 naming the field").  Returned
 * strings are borrowed from the JSON object.  Unknown fields are ignored.
 */
#ifndef NC_JSONV_H
#define NC_JSONV_H

#include "core/common.h"

#include <jansson.h>

enum jv_flags {
	JV_REQUIRED = 1 << 0,
};

int jv_string(json_t *obj, const char *key, unsigned flags, size_t min_len, size_t max_len,
	      const char **out, struct nc_error *err);
int jv_uuid(json_t *obj, const char *key, unsigned flags, const char **out, struct nc_error *err);
int jv_bool(json_t *obj, const char *key, unsigned flags, bool *out, struct nc_error *err);
int jv_int(json_t *obj, const char *key, unsigned flags, long long min, long long max,
	   long long *out, struct nc_error *err);
int jv_number(json_t *obj, const char *key, unsigned flags, double min, double max, double *out,
	      struct nc_error *err);
/* One of a fixed set of strings; *out is the matching entry of choices. */
int jv_enum(json_t *obj, const char *key, unsigned flags, const char *const *choices,
	    const char **out, struct nc_error *err);
/* An object (borrowed); max_bytes bounds its compact serialisation (0 = no bound). */
int jv_object(json_t *obj, const char *key, unsigned flags, size_t max_bytes, json_t **out,
	      struct nc_error *err);
/* An array of UUID strings, 1..max_items entries (borrowed array). */
int jv_uuid_array(json_t *obj, const char *key, unsigned flags, size_t max_items, json_t **out,
		  struct nc_error *err);

/* True if s (len bytes) is valid UTF-8 without NUL bytes. */
bool utf8_valid(const char *s, size_t len);

#endif
