# nchat-rtc - GNU make.
#
#   make            build the service (build/release/nchat-rtc); stops with one line naming
#                   `make deps` when protoc-c, pkg-config or a library is missing
#   make deps       install what building and testing need (scripts/deps.sh: apt-get, npm ci)
#   make run        install what is missing, start Postgres/Redis/LiveKit, migrate, serve
#   make test       the same set-up, then every test (also under ASan+UBSan)
#   make unit       the unit tests alone (ASan+UBSan; no Postgres, Redis or network)
#   make stop       stop what `make run` started
#   make SAN=1      build with AddressSanitizer and UndefinedBehaviorSanitizer (build/asan)
#   make openapi-docs   the API reference from etc/openapi.yaml: build/openapi/nchat-rtc.html
#   make openapi-types  TypeScript types from etc/openapi.yaml: test/contract/gen/nchat-rtc.d.ts

SHELL := /bin/bash
CC ?= cc
PROTOC_C ?= protoc-c
PKG_CONFIG ?= pkg-config
PKGS := libevent libevent_pthreads libpq libcurl jansson libjwt openssl libprotobuf-c hiredis
TEST_PKGS := check

# Goals that install what they need themselves (or need nothing) skip this check.
NO_DEPS_GOALS := deps clean test run stop bench soak valgrind fuzz openapi-docs openapi-types
BUILD_GOALS := $(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all))
ifneq ($(BUILD_GOALS),)
NEED_PKGS := $(PKGS) $(if $(filter unit-bins it-bins %/test/check_%,$(BUILD_GOALS)),$(TEST_PKGS))
MISSING := $(strip $(if $(shell command -v $(PROTOC_C) 2>/dev/null),,protoc-c) \
	$(if $(shell command -v $(PKG_CONFIG) 2>/dev/null),,pkg-config) \
	$(foreach p,$(NEED_PKGS),$(if $(shell $(PKG_CONFIG) --exists $(p) 2>/dev/null && echo y),,$(p))))
ifneq ($(MISSING),)
$(error missing $(MISSING): run `make deps` (or `make run` / `make test`, which install them too))
endif
endif

ifeq ($(SAN),1)
BUILD ?= build/asan
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
else
BUILD ?= build/release
OPT := -O2 -g
LDSAN :=
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wformat=2 -Wno-format-nonliteral -fno-common
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Iinclude -I$(BUILD)/gen \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lpthread -lm
TEST_LIBS := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS) 2>/dev/null)

PROTOS := $(wildcard proto/*.proto)
GEN_C := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)
GEN_O := $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))

SRCS := $(wildcard src/*/*.c)
OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
LIB_OBJS := $(filter-out $(BUILD)/obj/app/main.o,$(OBJS)) $(GEN_O)

include test/unit/unit.mk
UNIT_SRCS := $(wildcard test/unit/check_*.c)
UNIT_BINS := $(patsubst test/unit/%.c,$(BUILD)/test/%,$(UNIT_SRCS))
IT_SRCS := $(wildcard test/integration/check_*.c)
IT_BINS := $(patsubst test/integration/%.c,$(BUILD)/test/%,$(IT_SRCS))
IT_HELPERS := $(filter-out $(IT_SRCS),$(wildcard test/integration/*.c))
IT_HELPER_OBJS := $(patsubst test/integration/%.c,$(BUILD)/obj/ithelp/%.o,$(IT_HELPERS))

.PHONY: all layers deps unit unit-bins it-bins test run stop clean bench soak fuzz valgrind \
	openapi-docs openapi-types
.DEFAULT_GOAL := all
.SECONDARY: $(GEN_C) $(GEN_H)

all: layers $(BUILD)/nchat-rtc

# Includes point only down the layers of scripts/layers, and never in a circle.
layers:
	@bash scripts/check-layers.sh >/dev/null || bash scripts/check-layers.sh

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	$(PROTOC_C) --c_out=$(BUILD)/gen -Iproto $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(OPT) -Wall -Werror -I$(BUILD)/gen $(shell pkg-config --cflags libprotobuf-c) -c $< -o $@

$(BUILD)/obj/%.o: src/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/obj/ithelp/%.o: test/integration/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itest/integration $(shell pkg-config --cflags check) -MMD -MP -c $< -o $@

$(BUILD)/nchat-rtc: $(OBJS) $(GEN_O)
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests link only their own modules (test/unit/unit.mk).
.SECONDEXPANSION:
$(BUILD)/test/check_%: test/unit/check_%.c $$(call unit_objs,check_$$*) | $(GEN_H)
	@mkdir -p $(dir $@)
	@[ -n "$(UNIT_MODS_check_$*)" ] || { echo "test/unit/unit.mk: no UNIT_MODS_check_$* for $<"; exit 1; }
	$(CC) $(CFLAGS_ALL) $(shell pkg-config --cflags check) -MMD -MP $(LDSAN) -o $@ $< $(call unit_objs,check_$*) $(LIBS) $(TEST_LIBS)

$(BUILD)/test/check_%: test/integration/check_%.c $(LIB_OBJS) $(IT_HELPER_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itest/integration $(shell pkg-config --cflags check) -MMD -MP $(LDSAN) -o $@ $< $(IT_HELPER_OBJS) $(LIB_OBJS) $(LIBS) $(TEST_LIBS)

unit-bins: $(UNIT_BINS)
it-bins: $(IT_BINS) $(BUILD)/nchat-rtc

deps:
	@bash scripts/deps.sh

test:
	@bash scripts/test.sh

unit:
	@UNIT_ONLY=1 bash scripts/test.sh

# The rendered API reference (one self-contained HTML file; not committed).
openapi-docs:
	@bash scripts/deps.sh
	@mkdir -p build/openapi
	cd test/contract && node node_modules/@redocly/cli/bin/cli.js build-docs ../../etc/openapi.yaml \
		--config redocly.yaml -o ../../build/openapi/nchat-rtc.html
	@echo "open build/openapi/nchat-rtc.html"

# TypeScript types for the frontend (openapi-typescript; copy the file into the app).
openapi-types:
	@bash scripts/deps.sh
	cd test/contract && node node_modules/openapi-typescript/bin/cli.js ../../etc/openapi.yaml \
		--default-non-nullable false -o gen/nchat-rtc.d.ts

run:
	@bash scripts/run.sh

stop:
	@bash scripts/services.sh stop

bench:
	@bash scripts/bench.sh

soak:
	@bash scripts/soak.sh

valgrind:
	@bash scripts/valgrind.sh

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(IT_HELPER_OBJS:.o=.d) $(UNIT_BINS:=.d) $(IT_BINS:=.d)

# libFuzzer targets: make fuzz, make fuzz-ci, make fuzz-bins
include test/fuzz/fuzz.mk

# make bench helpers (SSE holder, S3 seeder)
include bench/bench.mk
