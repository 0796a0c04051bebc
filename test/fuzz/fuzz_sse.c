/*
 * fuzz_sse.c - libFuzzer target for the SSE Last-Event-ID parser and the
 * Redis stream id comparison.
 *
 * Last-Event-ID is a client header replayed verbatim on reconnect, so
 * sse_parse_last_event_id sees arbitrary text; what it stores lands in fixed
 * buffers and is later compared with sse_id_cmp and sent to Redis.  The
 * input is split on NUL: the header value, then two ids to compare.
 * Invariants: positions stay NUL-terminated and hold only digits and '-';
 * sse_id_cmp is antisymmetric and reflexive.
 */
#include "fuzz_util.h"
#include "http/sse.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s\n", #c); abort(); } } while (0)

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_parts p;
	struct sse_spec spec;
	const char *a, *b;

	fz_split(data, size, &p);
	memset(&spec, 0, sizeof(spec));
	spec.n_topics = 1 + (int)(size & 1);
	snprintf(spec.topics[0], sizeof(spec.topics[0]), "user:%s", "00000000-0000-4000-8000-000000000001");
	snprintf(spec.topics[1], sizeof(spec.topics[1]), "stream:%s", "00000000-0000-4000-8000-000000000002");
	sse_parse_last_event_id(p.part[0], &spec);
	for (int i = 0; i < SSE_MAX_TOPICS; i++) {
		FZ_CHECK(memchr(spec.positions[i], '\0', sizeof(spec.positions[i])) != NULL);
		for (const char *c = spec.positions[i]; *c; c++)
			FZ_CHECK((*c >= '0' && *c <= '9') || *c == '-');
		if (i >= spec.n_topics)
			FZ_CHECK(spec.positions[i][0] == '\0');
		/* Parsed positions compare sanely with themselves and each other. */
		FZ_CHECK(sse_id_cmp(spec.positions[i], spec.positions[i]) == 0);
	}
	FZ_CHECK(sign(sse_id_cmp(spec.positions[0], spec.positions[1])) ==
		 -sign(sse_id_cmp(spec.positions[1], spec.positions[0])));
	a = fz_get(&p, 1, "");
	b = fz_get(&p, 2, "");
	FZ_CHECK(sign(sse_id_cmp(a, b)) == -sign(sse_id_cmp(b, a)));
	(void)sse_id_cmp(a, a);
	fz_free(&p);
	return 0;
}
