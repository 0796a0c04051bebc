/*
 * routes.c - joins the modules' route tables into the one the server uses.
 */
#include "app/api.h"
#include "calls/calls.h"
#include "http/sse.h"
#include "ops/gdpr.h"
#include "ops/ops.h"
#include "recordings/recordings.h"
#include "streams/streams.h"
#include "reports/reports.h"

#include <stdlib.h>
#include <string.h>

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
	const struct route *tables[] = {
		health_routes,	    calls_routes,  calls_read_routes, calls_host_routes,
		webhook_routes,	    recordings_routes, streams_routes, stream_chat_routes,
		viewers_routes,	    events_routes, governance_routes, gdpr_routes,
		reports_routes,
	};
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
