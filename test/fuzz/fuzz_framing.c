/*
 * fuzz_framing.c - libFuzzer target for the HTTP request framing check
 * (http_framing.c), which sees every byte any client sends.
 *
 * Input: the first byte seeds how the rest is cut into pieces, as TCP reads
 * would cut it.  Invariants: the verdict (sound or refused, the request
 * count, the reason) is the same whether the bytes come at once, one by one,
 * or in those pieces; a refusal names a reason and stays a refusal.
 */
#include "fuzz_util.h"
#include "http/http_framing.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s\n", #c); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_framer whole, bytes, pieces;
	const char *p;
	size_t n, off = 0;
	unsigned seed;
	int rw, rb = 0, rp = 0;

	if (size == 0)
		return 0;
	seed = data[0] | 1u;
	p = (const char *)data + 1;
	n = size - 1;
	http_framer_init(&whole);
	http_framer_init(&bytes);
	http_framer_init(&pieces);
	rw = http_framer_feed(&whole, p, n);
	for (size_t i = 0; i < n; i++)
		rb = http_framer_feed(&bytes, p + i, 1);
	while (off < n) {
		size_t take = 1 + (seed % 37);

		seed = seed * 1103515245u + 12345u;
		if (take > n - off)
			take = n - off;
		rp = http_framer_feed(&pieces, p + off, take);
		off += take;
	}
	if (n == 0)
		return 0;
	FZ_CHECK(rw == rb && rw == rp);
	FZ_CHECK(whole.requests == bytes.requests && whole.requests == pieces.requests);
	FZ_CHECK(whole.error == bytes.error && whole.error == pieces.error);
	if (rw != 0) {
		FZ_CHECK(whole.error != NULL && whole.requests >= 1);
		FZ_CHECK(http_framer_feed(&whole, "GET / HTTP/1.1\r\n\r\n", 18) == -1);
	} else {
		FZ_CHECK(whole.error == NULL);
	}
	return 0;
}
