# fuzz.mk - libFuzzer targets (included by the top-level Makefile).
#
#   make fuzz        every target for FUZZ_SECONDS (default 60) each
#   make fuzz-ci     every target ~10 s, plus replay of test/fuzz/regressions
#   make fuzz-bins   just build them (build/fuzz/fuzz_<name>)
#
# The service sources are compiled again with clang and coverage
# instrumentation (-fsanitize=fuzzer-no-link) into build/fuzz/obj, so the
# fuzzers see exactly the code that runs in production.  Needs clang and
# libclang-rt-14-dev (libFuzzer runtime) on Debian 12.

FUZZ_CC ?= clang
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) \
	-Wall -Wextra -Wno-unused-parameter -Iinclude -I$(FUZZ_BUILD)/gen \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
FUZZ_SRCS := $(wildcard test/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst test/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))
FUZZ_GEN_C := $(patsubst proto/%.proto,$(FUZZ_BUILD)/gen/%.pb-c.c,$(PROTOS))
FUZZ_GEN_H := $(FUZZ_GEN_C:.c=.h)
FUZZ_GEN_O := $(patsubst $(FUZZ_BUILD)/gen/%.c,$(FUZZ_BUILD)/obj/gen/%.o,$(FUZZ_GEN_C))
FUZZ_LIB_OBJS := $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out src/app/main.c,$(SRCS))) \
	$(FUZZ_GEN_O)

.PHONY: fuzz fuzz-ci fuzz-bins
.SECONDARY: $(FUZZ_GEN_C) $(FUZZ_GEN_H) $(FUZZ_LIB_OBJS)

fuzz-bins: $(FUZZ_LIB_OBJS) $(FUZZ_BINS)

fuzz: fuzz-bins
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-60} bash scripts/fuzz.sh

fuzz-ci: fuzz-bins
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-10} bash scripts/fuzz.sh --ci

$(FUZZ_BUILD)/gen/%.pb-c.c $(FUZZ_BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(FUZZ_BUILD)/gen
	$(PROTOC_C) --c_out=$(FUZZ_BUILD)/gen -Iproto $<

$(FUZZ_BUILD)/obj/gen/%.o: $(FUZZ_BUILD)/gen/%.c $(FUZZ_GEN_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -I$(FUZZ_BUILD)/gen \
		$(shell pkg-config --cflags libprotobuf-c) -c $< -o $@

$(FUZZ_BUILD)/obj/%.o: src/%.c | $(FUZZ_GEN_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/fuzz_util.h $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) $(LIBS)

-include $(FUZZ_LIB_OBJS:.o=.d)
