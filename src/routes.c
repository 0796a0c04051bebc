/*
 * routes.c - the route table: every endpoint of the service in one place.
 */
#include "api.h"

const struct route api_routes[] = {
	{RM_GET | RM_HEAD, "/healthz", api_healthz, ROUTE_ON_LOOP, NULL},
	{RM_GET | RM_HEAD, "/readyz", api_readyz, 0, NULL},
	{0, NULL, NULL, 0, NULL},
};
