# device-descheduler: build, test, demo, bench, sanitizers.
# `make` builds bin/device-descheduler and k8sclient/libk8sclient.a.

SHELL   := /bin/bash
CC      ?= cc
DEBS    := build-essential pkg-config libcurl4-openssl-dev libjansson-dev libyaml-dev \
           libuv1-dev libmicrohttpd-dev libcmocka-dev python3 openssl \
           nghttp2-proxy valgrind clang libclang-rt-14-dev
BUILD   ?= build
SAN     ?=
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
HARDEN  := -fstack-protector-strong -fPIE
ifeq ($(SAN),)
HARDEN  += -D_FORTIFY_SOURCE=2
endif
OPT     ?= -O2 -g
CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) $(SAN) -MMD -MP
# The layers, enforced by the include paths each directory is compiled with:
#   k8sclient/        sees only itself (the reusable client knows no controller);
#   controller/core/  the pure decision code: sees itself and k8sclient, and the
#                     poison headers make any #include of uv.h, curl/curl.h or
#                     microhttpd.h an error;
#   controller/       the I/O shell: sees everything but the tests;
#   test/             sees everything.
# test/check_layers.sh proves that breaking either rule fails the build.
INC_KC   := -iquote k8sclient
INC_CORE := -I controller/core/poison -iquote controller/core -iquote k8sclient
INC_CTL  := -iquote controller -iquote controller/core -iquote k8sclient -iquote $(BUILD)/gen
INC_TEST := $(INC_CTL) -iquote test
LDFLAGS := -pie -Wl,-z,relro,-z,now $(SAN)
# Debian's headers live in the default include path, so no pkg-config is needed
# (and the flags stay right on a fresh machine where `make deps` runs first).
LDLIBS  := -lcurl -ljansson -lyaml -luv -lmicrohttpd -lm
TESTLIBS := -lcmocka
PYTHON  ?= python3

KC_SRC   := $(sort $(wildcard k8sclient/*.c))
CTL_SRC  := $(filter-out controller/main.c,$(sort $(wildcard controller/*.c controller/core/*.c)))
KC_OBJ   := $(KC_SRC:%.c=$(BUILD)/%.o)
CTL_OBJ  := $(CTL_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard test/test_*.c))
UNIT_BIN := $(UNIT_SRC:test/%.c=$(BUILD)/test/%)
ITEST_SRC := $(sort $(wildcard test/itest_*.c))
ITEST_BIN := $(ITEST_SRC:test/%.c=$(BUILD)/test/%)
TESTSUP_SRC := $(filter-out $(UNIT_SRC) $(ITEST_SRC) test/bench.c,$(sort $(wildcard test/*.c)))
TESTSUP_OBJ := $(TESTSUP_SRC:%.c=$(BUILD)/%.o)
KC_LIB   := $(BUILD)/libk8sclient.a
CTL_LIB  := $(BUILD)/libcontroller.a
BIN      := bin/device-descheduler

export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

.SECONDARY:

.PHONY: all deps check-deps check-layers test unit itest itest-h2 pytest asan bench bench-e2e demo fuzz fuzz-smoke fuzz-build valgrind clean format FORCE
all: check-deps $(BIN) k8sclient/libk8sclient.a

# Installs the Debian packages the build and tests need (as root), or says what to install.
deps:
	@missing=""; for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then echo "make deps: installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "make deps: missing Debian packages:$$missing"; \
		echo "install them with: sudo apt-get install -y$$missing"; exit 1; fi

# Cheap check used by every build target: runs `make deps` only when a library is missing.
check-deps:
	@for h in curl/curl.h jansson.h yaml.h uv.h microhttpd.h cmocka.h; do \
		[ -e /usr/include/$$h ] || [ -e /usr/include/x86_64-linux-gnu/$$h ] || { $(MAKE) --no-print-directory deps; exit $$?; }; done; \
	for c in $(PYTHON) openssl nghttpx valgrind clang; do command -v $$c >/dev/null || { $(MAKE) --no-print-directory deps; exit $$?; }; done

$(BUILD)/k8sclient/%.o: k8sclient/%.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_KC) -c -o $@ $<

$(BUILD)/controller/core/%.o: controller/core/%.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_CORE) -c -o $@ $<

$(BUILD)/controller/%.o: controller/%.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_CTL) -c -o $@ $<

$(BUILD)/%.o: %.c | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INC_TEST) -c -o $@ $<

$(KC_LIB): $(KC_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

k8sclient/libk8sclient.a: $(KC_LIB)
	cp $< $@

$(CTL_LIB): $(CTL_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# --version names the commit it was built from: the header is rewritten only
# when the commit changes, so main.o is rebuilt exactly then.
DD_GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
$(BUILD)/gen/dd_version.h: FORCE
	@mkdir -p $(dir $@); v='#define DD_GIT_COMMIT "$(DD_GIT_COMMIT)"'; \
	[ "$$(cat $@ 2>/dev/null)" = "$$v" ] || echo "$$v" > $@
$(BUILD)/controller/main.o: $(BUILD)/gen/dd_version.h
FORCE:

$(BIN): $(BUILD)/controller/main.o $(CTL_LIB) $(KC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test/%: $(BUILD)/test/%.o $(TESTSUP_OBJ) $(CTL_LIB) $(KC_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(TESTLIBS) $(LDLIBS)

$(BUILD)/bench: $(BUILD)/test/bench.o $(CTL_LIB) $(KC_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests (no server), C integration tests (each against its own test API
# server), then the Python-driven suites (the test API server with real
# kubectl, and the controller scenarios).
test: check-deps $(BIN) k8sclient/libk8sclient.a check-layers unit itest itest-h2 pytest realtest

# The real control plane and the scenarios against it: cluster-build, cluster-up, cluster-down, realtest.
include test/cluster/cluster.mk

# The build's layer rules hold (and cannot be widened silently).
check-layers:
	@CC="$(CC)" INC_KC="$(INC_KC)" INC_CORE="$(INC_CORE)" INC_CTL="$(INC_CTL)" test/check_layers.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; FIXTURES=$(CURDIR)/test/fixtures $$t; done

itest: $(ITEST_BIN) $(BIN)
	@set -e; for t in $(ITEST_BIN); do echo "== $$t"; $(PYTHON) test/run_with_apiserver.py $$t; done

# The C integration suite a second time, through nghttpx (HTTP/2 with ALPN, TLS on the front).
itest-h2: $(ITEST_BIN) $(BIN)
	@set -e; for t in $(filter-out %_h2,$(ITEST_BIN)); do echo "== $$t (HTTP/2 via nghttpx)"; $(PYTHON) test/run_with_apiserver.py --h2 $$t; done

PYTEST_DIR ?= test
pytest: $(BIN)
	DD_BIN=$(CURDIR)/$(BIN) $(PYTHON) -m unittest discover -s $(PYTEST_DIR) -p 'test_*.py' -t .

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: check-deps
	$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/bin/device-descheduler OPT="-O1 -g" \
		SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		PYTEST_DIR=test/integration build-asan/bin/device-descheduler unit itest pytest

bench: check-deps $(BUILD)/bench
	$(BUILD)/bench $(BENCH_ARGS)

# The real binary against test/bench_e2e/benchsrv, a fast API server serving a generated,
# cached cluster (not part of `make test`; SIZES=5000 for a quick run).
SIZES ?= 5000 150000 500000
BENCH_E2E_BIN := $(BUILD)/bench_e2e/benchsrv $(BUILD)/bench_e2e/gen $(BUILD)/bench_e2e/floor
$(BUILD)/bench_e2e/%: test/bench_e2e/%.c test/bench_e2e/bench_e2e.h test/bench_e2e/pb.h | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $<

bench-e2e: check-deps $(BIN) $(BENCH_E2E_BIN)
	$(PYTHON) test/bench_e2e/run.py --bin $(BIN) --build $(BUILD)/bench_e2e --sizes "$(SIZES)" $(BENCH_E2E_ARGS)

demo: check-deps $(BIN)
	$(PYTHON) test/demo.py --bin $(BIN)

# libFuzzer targets: test/fuzz/fuzz_NAME.c, seed corpus test/fuzz/corpus/NAME/.
FUZZ_SECONDS ?= 30
FUZZ_SRC := $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:test/fuzz/%.c=build-fuzz/%)
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer

fuzz: check-deps
	$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT="-O1 -g" SAN="$(FUZZ_FLAGS)" fuzz-build
	@set -eo pipefail; for f in $(FUZZ_BIN); do n=$${f#build-fuzz/}; n=$${n#fuzz_}; \
		mkdir -p build-fuzz/corpus/$$n; echo "== $$f ($(FUZZ_SECONDS)s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
			build-fuzz/corpus/$$n test/fuzz/corpus/$$n 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)'; done

# CI's smoke: a fixed seed and run count over the committed corpora only, so that
# the run is the same on every machine (long, exploratory runs are `make fuzz`).
FUZZ_SMOKE_RUNS ?= 200000
# fuzz_pb runs about 1,500 times a second (bodies of up to 34 KB, each decoded twice):
# fewer runs keep it near 25 s.
FUZZ_SMOKE_RUNS_PB ?= 20000
fuzz-smoke: check-deps
	$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT="-O1 -g" SAN="$(FUZZ_FLAGS)" fuzz-build
	@set -eo pipefail; for f in $(FUZZ_BIN); do n=$${f#build-fuzz/}; n=$${n#fuzz_}; \
		runs=$(FUZZ_SMOKE_RUNS); [ $$n != pb ] || runs=$(FUZZ_SMOKE_RUNS_PB); \
		out=$$(mktemp -d); echo "== $$f (smoke: seed 1, $$runs runs)"; \
		TMPDIR=/dev/shm $$f -seed=1 -runs=$$runs -max_total_time=45 -print_final_stats=1 -timeout=10 \
			-rss_limit_mb=2048 $$out test/fuzz/corpus/$$n 2>&1 | \
			grep -E '^(stat::number_of_executed_units|==|SUMMARY|Done)'; rm -rf $$out; done

fuzz-build: $(FUZZ_BIN)

build-fuzz/fuzz_%: $(BUILD)/test/fuzz/fuzz_%.o $(CTL_LIB) $(KC_LIB)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

valgrind: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== valgrind $$t"; \
		PROPERTY_CASES=200 FIXTURES=$(CURDIR)/test/fixtures valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect $$t >/dev/null; done

format:
	clang-format -i k8sclient/*.[ch] controller/*.[ch] test/*.[ch]

clean:
	rm -rf build build-asan build-fuzz bin k8sclient/libk8sclient.a

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
