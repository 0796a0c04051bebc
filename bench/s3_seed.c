/*
 * s3_seed.c - put N small objects through S3 (the test stand-in) with the
 * service's own client, for the recording-sweep benchmark of make bench.
 *
 *   s3_seed PREFIX N [BYTES]    keys PREFIX<i>.mp4, i = 0..N-1
 *
 * S3_* come from the environment like the service's.  Exit 0 when every put
 * succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/config.h"
#include "s3/s3.h"

int main(int argc, char **argv)
{
	char err[512], key[512], *data;
	struct nc_config *cfg;
	struct s3_client *c;
	long n, bytes = 1024, fails = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: s3_seed PREFIX N [BYTES]\n");
		return 2;
	}
	n = atol(argv[2]);
	if (argc > 3)
		bytes = atol(argv[3]);
	if (n < 0 || bytes < 0 || bytes > 1 << 24) {
		fprintf(stderr, "s3_seed: bad N or BYTES\n");
		return 2;
	}
	cfg = cfg_load(NULL, err, sizeof(err));
	if (cfg == NULL || cfg_validate(cfg, CFG_NEED_S3, err, sizeof(err)) != 0) {
		fprintf(stderr, "s3_seed: %s\n", err);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = s3_client_new(cfg);
	data = xmalloc((size_t)bytes + 1);
	memset(data, 'x', (size_t)bytes);
	for (long i = 0; i < n; i++) {
		struct nc_error e = {0};

		snprintf(key, sizeof(key), "%s%ld.mp4", argv[1], i);
		if (s3_put(c, key, data, (size_t)bytes, "video/mp4", &e) != NC_OK) {
			fprintf(stderr, "s3_seed: put %s: %s\n", key, e.msg);
			fails++;
		}
	}
	free(data);
	s3_client_free(c);
	cfg_free(cfg);
	curl_global_cleanup();
	return fails == 0 ? 0 : 1;
}
