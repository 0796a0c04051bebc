# bench/bench.mk - helpers for `make bench` / `make soak` (scripts/bench.sh,
# scripts/soak.sh).  Included from the top-level Makefile after its own
# variables (BUILD, CFLAGS_ALL, LIB_OBJS, LIBS, LDSAN) are set.
#
#   make bench-tools   build/<variant>/bench/{sse_hold,s3_seed,bench_tokens}

BENCH_TOOLS := $(BUILD)/bench/sse_hold $(BUILD)/bench/s3_seed $(BUILD)/bench/bench_tokens

.PHONY: bench-tools
bench-tools: $(BENCH_TOOLS)

# Needs nothing of the service: plain sockets.
$(BUILD)/bench/sse_hold: bench/sse_hold.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(LDSAN) -o $@ $<

# Linked with the service's objects: its S3 client, its token code.
$(BUILD)/bench/s3_seed: bench/s3_seed.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -o $@ $< $(LIB_OBJS) $(LIBS)

$(BUILD)/bench/bench_tokens: bench/tokens_main.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -o $@ $< $(LIB_OBJS) $(LIBS)
