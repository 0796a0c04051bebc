/*
 * hooks_pending.c - placeholders for modules that are being written in
 * parallel.  Each symbol is weak: the real module's definition replaces it
 * at link time.  This file disappears once every module has landed.
 */
#include "api.h"
#include "hooks.h"
#include "worker.h"

#include <stdio.h>

#define WEAK __attribute__((weak))

WEAK const struct route calls_routes[] = {{0, NULL, NULL, 0, NULL}};
WEAK const struct route webhook_routes[] = {{0, NULL, NULL, 0, NULL}};
WEAK const struct route recordings_routes[] = {{0, NULL, NULL, 0, NULL}};
WEAK const struct route streams_routes[] = {{0, NULL, NULL, 0, NULL}};
WEAK const struct route events_routes[] = {{0, NULL, NULL, 0, NULL}};
WEAK const struct route governance_routes[] = {{0, NULL, NULL, 0, NULL}};

WEAK int recordings_on_egress(struct nc_worker *w, const char *event, json_t *info,
			      int64_t created_at, struct nc_error *err)
{
	(void)w, (void)event, (void)info, (void)created_at, (void)err;
	return 0;
}

WEAK int streams_on_egress(struct nc_worker *w, const char *event, json_t *info,
			   int64_t created_at, struct nc_error *err)
{
	(void)w, (void)event, (void)info, (void)created_at, (void)err;
	return 0;
}

WEAK int streams_on_ingress(struct nc_worker *w, const char *event, json_t *info,
			    int64_t created_at, struct nc_error *err)
{
	(void)w, (void)event, (void)info, (void)created_at, (void)err;
	return 0;
}

WEAK enum nc_err recordings_stop_for_call(struct nc_worker *w, const char *call_id,
					  struct nc_error *err)
{
	(void)w, (void)call_id, (void)err;
	return NC_OK;
}

WEAK void calls_periodic(struct req *r)
{
	resp_json(r, 204, NULL);
}

WEAK int cmd_sweep_calls(int argc, char **argv, const struct nc_config *cfg)
{
	(void)argc, (void)argv, (void)cfg;
	fprintf(stderr, "sweep-calls: this build has no calls module\n");
	return 1;
}

WEAK int cmd_sweep_recordings(int argc, char **argv, const struct nc_config *cfg)
{
	(void)argc, (void)argv, (void)cfg;
	fprintf(stderr, "sweep-recordings: this build has no recordings module\n");
	return 1;
}

WEAK struct s3_client *s3_client_new(const struct nc_config *cfg)
{
	(void)cfg;
	return NULL;
}

WEAK void s3_client_free(struct s3_client *c)
{
	(void)c;
}
