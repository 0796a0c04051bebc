/*
 * tokens_main.c - stand-alone `bench-tokens` for make bench, so the figure
 * can be taken before (or without) the subcommand being wired into
 * nchat-rtc's main.c.  Same code: cmd_bench_tokens from src/cmd_bench.c.
 */
#include <stdio.h>

#include "ops/bench.h"

int main(int argc, char **argv)
{
	char err[512];
	struct nc_config *cfg = cfg_load(NULL, err, sizeof(err));
	int rc;

	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	rc = cmd_bench_tokens(argc, argv, cfg);
	cfg_free(cfg);
	return rc;
}
