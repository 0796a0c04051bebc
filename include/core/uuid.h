/*
 * uuid.h - textual UUIDs as the API and Postgres exchange them.
 */
#ifndef NC_UUID_H
#define NC_UUID_H

#include <stdbool.h>
#include <stddef.h>

/* True if s is a canonical textual UUID (8-4-4-4-12 hex, either case). */
bool is_uuid(const char *s);
/* Fill out with a random v4 UUID (37 bytes incl. NUL). */
void uuid_v4(char out[37]);
/* The lower-case form of a UUID that is_uuid accepted (37 bytes incl. NUL). */
void uuid_lower(const char *in, char out[37]);
/*
 * "{a,b,c}": a Postgres uuid[] literal of n validated UUIDs, malloc'd, sent
 * as a query parameter (never spliced into SQL).
 */
char *uuid_array_literal(const char (*ids)[37], size_t n);

#endif
