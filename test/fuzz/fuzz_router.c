/*
 * fuzz_router.c - libFuzzer target for route_match over the real route table.
 *
 * The raw request path is attacker text and route_match cuts it up and
 * percent-decodes it in place, so it must stay inside the buffer for any
 * path and method.  The
 * table is the service's own (api_routes(), every module linked in).  Input:
 * first byte picks the method bits, the rest is the path.  Invariants: a
 * FOUND route allows the method and has at most ROUTE_MAX_PARAMS non-empty,
 * slash-free parameters that route_param finds again by name; BAD_METHOD
 * reports allowed methods that exclude the request's.
 */
#include "app/api.h"
#include "fuzz_util.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s\n", #c); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD",
					    "OPTIONS", "get", "", "CONNECT"};
	const struct route *routes = api_routes();
	struct route_match m;
	unsigned method;
	char *path, allow[128], tiny[6];
	enum route_result rr;

	if (size == 0)
		return 0;
	method = data[0] & 0x7f;
	path = malloc(size);
	FZ_CHECK(path != NULL);
	memcpy(path, data + 1, size - 1);
	path[size - 1] = '\0';
	rr = route_match(routes, method, path, &m);
	switch (rr) {
	case ROUTE_FOUND:
		FZ_CHECK(m.route != NULL && (m.route->methods & method) != 0);
		FZ_CHECK(m.n_params <= ROUTE_MAX_PARAMS);
		for (size_t i = 0; i < m.n_params; i++) {
			char name[64];

			FZ_CHECK(m.values[i] >= path && m.values[i] < path + size);
			FZ_CHECK(m.values[i][0] != '\0' && strchr(m.values[i], '/') == NULL);
			FZ_CHECK(m.name_lens[i] < sizeof(name));
			memcpy(name, m.names[i], m.name_lens[i]);
			name[m.name_lens[i]] = '\0';
			FZ_CHECK(route_param(&m, name) != NULL);
		}
		break;
	case ROUTE_BAD_METHOD:
		FZ_CHECK(m.allowed != 0 && (m.allowed & method) == 0);
		route_allow_header(m.allowed, allow, sizeof(allow));
		route_allow_header(m.allowed, tiny, sizeof(tiny));
		FZ_CHECK(memchr(tiny, '\0', sizeof(tiny)) != NULL);
		break;
	case ROUTE_NOT_FOUND:
	case ROUTE_BAD_PATH:
		break;
	}
	(void)route_param(&m, "id");
	route_allow_header(method, tiny, sizeof(tiny));
	(void)route_method_bit(names[data[0] % NC_ARRAY_LEN(names)]);
	(void)route_method_bit(path);
	free(path);
	return 0;
}
