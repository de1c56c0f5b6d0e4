# Precursor build.  Out of tree into $(BUILD); one static archive per
# program area (schema, agent, server) so unit tests link exactly what they use.
#
#   make            build/bin/precursor-server, build/bin/precursor-agent
#   make run        install deps, start PostgreSQL, server and a simulated fleet
#   make test       install deps, build with ASan+UBSan into build/san, run all suites
#   make stop       stop the private PostgreSQL if something left it running
#   make bench      benchmarks under bench/ (figures go to docs/BENCHMARKS.md)
#   make fuzz       libFuzzer targets under tests/fuzz (FUZZ_SECONDS each)
#   make m4         the agent's portable core for a Cortex-M4, with its size
#   SAN=address,undefined   sanitizer switch for any target

BUILD ?= build
SAN ?=
CC ?= cc

PKGS := libmicrohttpd libpq libzstd libsodium libcrypto jansson libcurl fftw3f libdeflate
# The unit tests read exports back with readers of their own: libarchive's
# zip reader and zlib's CRC-32 (the server links neither).
TEST_PKGS := libarchive zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(TEST_PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_PKG_LIBS := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
# mbed TLS (the agent's TLS, agent/net) ships no pkg-config file in Debian 12.
MBEDTLS_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
        -Wmissing-prototypes -Wpointer-arith -Wvla -Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -I. $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS := $(LDFLAGS)
ifeq ($(CI),true)
ALL_CFLAGS += -Werror
endif
ifneq ($(SAN),)
ALL_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ALL_LDFLAGS += -fsanitize=$(SAN)
endif
# ThreadSanitizer cannot run ifunc resolvers (they run before its runtime is
# up, and the program dies at start): the codec's AVX2 clones, chosen by
# ifunc, are left out of TSan builds, which then test the portable loops;
# so are the hand-written AVX paths picked at run time (the codec's 4-byte
# bit unshuffle, the stats features), whose SSE2 and scalar twins TSan runs.
ifneq ($(findstring thread,$(SAN)),)
ALL_CFLAGS += -DWIRE_NO_CLONES
endif
LIBS := $(PKG_LIBS) $(MBEDTLS_LIBS) -lm -lpthread
# The agent links only what it uses, whatever the linker's --as-needed default:
# every shared library costs a device its relocated pages (docs/BENCHMARKS.md).
AGENT_LIBS := $(shell pkg-config --libs libzstd libsodium jansson 2>/dev/null) $(MBEDTLS_LIBS) -lm -lpthread

# Sources by area.  A file named main.c holds a program's main(); everything
# else goes into the area's archive.
SCHEMA_SRC := $(sort $(wildcard schema/*.c))
AGENT_SRC  := $(sort $(shell find agent -name '*.c' ! -name main.c 2>/dev/null))
SERVER_SRC := $(sort $(shell find server -name '*.c' ! -name main.c 2>/dev/null))
UNIT_SRC   := $(sort $(shell find tests/unit -name 'check_*.c' 2>/dev/null))
BENCH_SRC  := $(sort $(wildcard bench/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

SCHEMA_LIB := $(BUILD)/lib/libprecursor-schema.a
AGENT_LIB  := $(BUILD)/lib/libprecursor-agent.a
SERVER_LIB := $(BUILD)/lib/libprecursor-server.a
SERVER_BIN := $(BUILD)/bin/precursor-server
AGENT_BIN  := $(BUILD)/bin/precursor-agent
LOADGEN_BIN := $(BUILD)/bin/precursor-loadgen
LOADGEN_SRC := $(sort $(wildcard tools/loadgen/*.c))
UNIT_BIN   := $(BUILD)/bin/check-unit
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bin/bench-%,$(BENCH_SRC))

.PHONY: all deps run test test-all test-unit bench bench-all fuzz m4 clean stop help
.DEFAULT_GOAL := all

all: $(SERVER_BIN) $(AGENT_BIN) $(LOADGEN_BIN)

# The comment block at the top, up to its first blank line, without the '#'.
help:
	@sed -n '/^$$/q; s/^# \{0,1\}//p' Makefile

# Flags are part of the build: a change of flags rebuilds everything.
FLAGS_FILE := $(BUILD)/.flags
FLAGS_NOW := $(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)
$(shell mkdir -p $(BUILD) && echo '$(FLAGS_NOW)' | cmp -s - $(FLAGS_FILE) || echo '$(FLAGS_NOW)' > $(FLAGS_FILE))

# The version (VERSION, and git describe in a checkout): a header rewritten
# only when its text changes, included by the programs' main.c alone, so a
# new commit recompiles three files and relinks, not the whole tree.
VERSION_H := $(BUILD)/gen/version.h
VERSION_ERR := $(shell scripts/version.sh $(VERSION_H) 2>&1)
$(if $(VERSION_ERR),$(error $(VERSION_ERR)))
VERSION_USERS := $(call obj,agent/main.c server/main.c tools/loadgen/main.c)
$(VERSION_USERS): $(VERSION_H)
$(VERSION_USERS): ALL_CFLAGS += -I$(BUILD)/gen

$(BUILD)/obj/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(SCHEMA_LIB): $(call obj,$(SCHEMA_SRC))
$(AGENT_LIB): $(call obj,$(AGENT_SRC))
$(SERVER_LIB): $(call obj,$(SERVER_SRC))
$(BUILD)/lib/%.a:
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

# Text the server serves as it is (the device install script) is kept as a
# file of its own and compiled in as one C string literal.
$(BUILD)/gen/install_sh.inc: server/fleet/install.sh
	@mkdir -p $(@D)
	@sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< > $@.tmp && mv $@.tmp $@
# The codec's per-sample loops: -O3 lets the compiler vectorise them.
$(call obj,schema/wire_predict.c): ALL_CFLAGS += -O3
# The min/max of a column's ragged ends (up to 2 x 63 samples per column,
# most of a samples answer's time): -O3 vectorises the int16/int32 loops
# (bench-ui decimate; DECIMATE_OPT=-O2 in another BUILD for the baseline).
DECIMATE_OPT ?= -O3
$(call obj,server/decimate/decimate.c): ALL_CFLAGS += $(DECIMATE_OPT)
$(call obj,server/fleet/fleet_install.c): $(BUILD)/gen/install_sh.inc
$(call obj,server/fleet/fleet_install.c): ALL_CFLAGS += -I$(BUILD)/gen

$(SERVER_BIN): $(call obj,server/main.c) $(SERVER_LIB) $(SCHEMA_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(AGENT_BIN): $(call obj,agent/main.c) $(AGENT_LIB) $(SCHEMA_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(AGENT_LIBS)

# The fleet load generator (docs/FLEET.md): its own sources + the wire format.
$(LOADGEN_BIN): $(call obj,$(LOADGEN_SRC)) $(SCHEMA_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# One Check runner for every unit suite: each tests/unit/**/check_*.c
# defines `Suite *NAME_suite(void)`; the list is generated from the sources.
$(BUILD)/gen/suites.h: $(UNIT_SRC) $(FLAGS_FILE)
	@mkdir -p $(@D)
	@grep -ho 'Suite \*[a-z0-9_]*_suite(void)$$' $(UNIT_SRC) /dev/null | \
	  sed 's/Suite \*\(.*\)(void)/SUITE(\1)/' > $@.tmp && mv $@.tmp $@

$(call obj,tests/unit/runner.c): $(BUILD)/gen/suites.h
$(call obj,tests/unit/runner.c): ALL_CFLAGS += -I$(BUILD)/gen

$(UNIT_BIN): $(call obj,tests/unit/runner.c $(UNIT_SRC)) $(SERVER_LIB) $(AGENT_LIB) $(SCHEMA_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(TEST_PKG_LIBS) $(CHECK_LIBS)

$(BUILD)/bin/bench-%: $(call obj,bench/%.c) $(AGENT_LIB) $(SERVER_LIB) $(SCHEMA_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

stop:
	@scripts/pg.sh stop

# make test: sanitizers on by default, in a build folder of their own.
TEST_BUILD ?= build/san
TEST_SAN ?= address,undefined
test: deps
	@$(MAKE) --no-print-directory BUILD=$(TEST_BUILD) SAN=$(TEST_SAN) test-all

test-all: all $(UNIT_BIN)
	@BUILD=$(BUILD) scripts/test.sh

test-unit: $(UNIT_BIN)
	@BUILD=$(BUILD) scripts/test.sh unit

bench: deps
	@$(MAKE) --no-print-directory BUILD=build/bench bench-all

bench-all: all $(BENCH_BINS)
	@BUILD=$(BUILD) scripts/bench.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# libFuzzer targets: tests/fuzz/fuzz_<name>.c, linked with the area archives
# built by clang with the fuzzer's instrumentation.  FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_SRC)

# The agent's portable core (ring buffer, detectors) for a Cortex-M4.
m4:
	@scripts/m4-build.sh
