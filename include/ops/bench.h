/*
 * bench.h - `nchat-rtc bench-tokens`: LiveKit token minting speed next to
 * the ceiling of the same work done bare (HMAC-SHA256 + base64url) in the
 * same binary.  Used by scripts/bench.sh (make bench).
 */
#ifndef NC_BENCH_H
#define NC_BENCH_H

#include "core/config.h"

/* argv[0] is "bench-tokens"; [--seconds N] (default 3).  Exit code. */
int cmd_bench_tokens(int argc, char **argv, const struct nc_config *cfg);

#endif
