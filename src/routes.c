/*
 * routes.c - joins the modules' route tables into the one the server uses.
 */
#include "api.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

const struct route health_routes[] = {
	{RM_GET | RM_HEAD, "/healthz", api_healthz, ROUTE_ON_LOOP, NULL},
	{RM_GET | RM_HEAD, "/readyz", api_readyz, 0, NULL},
	{RM_GET, "/api/me", api_me, ROUTE_AUTH, NULL},
	{RM_GET, "/metrics", api_metrics, 0, NULL},
	{0, NULL, NULL, 0, NULL},
};

static size_t table_len(const struct route *t)
{
	size_t n = 0;

	while (t[n].pattern != NULL)
		n++;
	return n;
}

const struct route *api_routes(void)
{
	static struct route *all;
	const struct route *tables[] = {health_routes,	   calls_routes,     webhook_routes,
					recordings_routes, streams_routes,   events_routes,
					governance_routes, gdpr_routes,    reports_routes};
	size_t n = 0, off = 0;

	if (all != NULL)
		return all;
	for (size_t i = 0; i < NC_ARRAY_LEN(tables); i++)
		n += table_len(tables[i]);
	all = xcalloc(n + 1, sizeof(*all));
	for (size_t i = 0; i < NC_ARRAY_LEN(tables); i++) {
		size_t len = table_len(tables[i]);

		memcpy(all + off, tables[i], len * sizeof(*all));
		off += len;
	}
	return all;
}
