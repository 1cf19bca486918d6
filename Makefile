# twinc — build, test, demo.
#
#   make          build the generator (build/twinc) and the runtime (build/libtwinc.*)
#   make test     every test: unit suites, gradient corpus, error corpus, CLI, sanitizers
#   make demo     build the samples through twinc and print prices, Greeks and timings
#   make deps     install the Debian packages the project needs (only those missing)
#
# Every target that builds depends on `deps`, so a fresh Debian 12 machine needs
# only `make demo` and `make test`.

LLVM_DIR   ?= /usr/lib/llvm-14
CC         ?= gcc
ifeq ($(origin CC),default)
CC         := gcc
endif
CLANG      ?= clang-14
PYTHON     ?= /usr/bin/python3
B          := build
SHELL      := /bin/bash
CSTD       := -std=c11 -D_GNU_SOURCE
WARN       := -Wall -Wextra -Werror
OPT        ?= -O2 -g
CFLAGS_GEN := $(CSTD) $(OPT) $(WARN) -I$(LLVM_DIR)/include -Ilibclang_tool -DTWINC_INCLUDE_DIR='"$(CURDIR)/runtime"'
LDFLAGS_GEN:= -L$(LLVM_DIR)/lib -lclang -Wl,-rpath,$(LLVM_DIR)/lib
CFLAGS_RT  := $(CSTD) $(OPT) $(WARN) -fPIC -Iruntime
# Twins are compiled without FMA contraction so that the batched primal is
# bit-for-bit the user's scalar function (tests check equality exactly).
CFLAGS_TWIN:= -std=c99 -O2 -ffp-contract=off -fPIC -Iruntime -Wall -Wextra -Wno-unknown-pragmas
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)

DEB_PACKAGES := gcc make pkg-config clang-14 libclang-14-dev llvm-14-dev check libadolc-dev libsleef-dev \
                python3 python3-dev python3-numpy python3-pytest valgrind

GEN_SRCS := arena diag ir builtins pragma lower activity varying tbr \
            emit emit_primal emit_tangent emit_adjoint emit_registry emit_simd emit_ws gen
GEN_OBJS := $(GEN_SRCS:%=$(B)/gen/%.o)
RT_SRCS  := lib gradcheck
RT_OBJS  := $(RT_SRCS:%=$(B)/rt/%.o)
GEN_HDRS := libclang_tool/twinc_gen.h libclang_tool/builtins.h runtime/twinc.h runtime/twinc_simd.h

CORPUS   := $(basename $(notdir $(wildcard tests/corpus/*.c)))
CORPUS_SO:= $(CORPUS:%=$(B)/corpus/lib%.so)
SAMPLES  := bs sabr
LOOP_SAMPLES := paths garch curve tree

.PHONY: all deps test demo demo-c bench bench-c clean unit-tests corpus-tests error-tests cli-tests sanitize check-warnings
.DELETE_ON_ERROR:
# keep intermediate twins and warning stamps (no rebuild on every make)
.SECONDARY:

all: deps $(B)/twinc $(B)/libtwinc.a $(B)/libtwinc.so

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "make deps: need root (or sudo) to install:$$missing" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
	    || { echo "make deps: apt-get install failed for:$$missing" >&2; exit 1; }; \
	fi

# ---- generator and runtime ----

$(B)/gen/%.o: libclang_tool/%.c $(GEN_HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_GEN) -c $< -o $@

$(B)/libtwincgen.a: $(GEN_OBJS)
	ar rcs $@ $^

$(B)/rt/%.o: runtime/%.c runtime/twinc.h runtime/twinc_check.h runtime/rt_internal.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_RT) -c $< -o $@

$(B)/libtwinc.a: $(RT_OBJS)
	ar rcs $@ $^

$(B)/libtwinc.so: $(RT_OBJS)
	$(CC) -shared $^ -o $@ -ldl -lm

$(B)/twinc: libclang_tool/main.c libclang_tool/check_cmd.c $(B)/libtwincgen.a $(B)/libtwinc.a $(GEN_HDRS)
	$(CC) $(CFLAGS_GEN) -Iruntime libclang_tool/main.c libclang_tool/check_cmd.c $(B)/libtwincgen.a \
	  $(B)/libtwinc.a $(LDFLAGS_GEN) -ldl -lm -o $@

# ---- twins of the test corpus and the samples ----

$(B)/corpus/%.twin.c: tests/corpus/%.c $(B)/twinc
	@mkdir -p $(dir $@)
	$(B)/twinc gen $< -o $@ --header $(B)/corpus/$*.twin.h

# every corpus twin compiles warning-free with gcc and clang at -Wall -Wextra -Werror
$(B)/corpus/%.warn: $(B)/corpus/%.twin.c
	$(CC) $(CFLAGS_TWIN) -Werror -I$(B)/corpus -c $< -o /dev/null
	$(CLANG) $(CFLAGS_TWIN) -Werror -I$(B)/corpus -c $< -o /dev/null
	@touch $@

$(B)/corpus/lib%.so: tests/corpus/%.c $(B)/corpus/%.twin.c $(B)/corpus/%.warn
	$(CC) $(CFLAGS_TWIN) -shared -I$(B)/corpus tests/corpus/$*.c $(B)/corpus/$*.twin.c -o $@ -lm

$(B)/samples/%.twin.c: samples/%.c $(B)/twinc
	@mkdir -p $(dir $@)
	$(B)/twinc gen $< -o $@ --header $(B)/samples/$*.twin.h

$(B)/samples/%.warn: $(B)/samples/%.twin.c
	$(CC) $(CFLAGS_TWIN) -Werror -I$(B)/samples -c $< -o /dev/null
	$(CLANG) $(CFLAGS_TWIN) -Werror -I$(B)/samples -c $< -o /dev/null
	@touch $@

ALL_SAMPLES := $(SAMPLES) $(LOOP_SAMPLES)

$(B)/samples/libsamples.so: $(ALL_SAMPLES:%=samples/%.c) $(ALL_SAMPLES:%=$(B)/samples/%.twin.c) $(ALL_SAMPLES:%=$(B)/samples/%.warn)
	$(CC) $(CFLAGS_TWIN) -shared -I$(B)/samples $(ALL_SAMPLES:%=samples/%.c) $(ALL_SAMPLES:%=$(B)/samples/%.twin.c) -o $@ -lm

$(B)/samples/demo: samples/demo.c samples/closed_form.c samples/closed_form.h $(SAMPLES:%=samples/%.c) \
                   $(SAMPLES:%=$(B)/samples/%.twin.c) $(SAMPLES:%=$(B)/samples/%.warn)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -ffp-contract=off -Wall -Wextra -Wno-unknown-pragmas -Iruntime -I$(B)/samples -Isamples \
	  samples/demo.c samples/closed_form.c $(SAMPLES:%=samples/%.c) $(SAMPLES:%=$(B)/samples/%.twin.c) -o $@ -lm

$(B)/samples/demo_loops: samples/demo_loops.c $(LOOP_SAMPLES:%=samples/%.c) \
                   $(LOOP_SAMPLES:%=$(B)/samples/%.twin.c) $(LOOP_SAMPLES:%=$(B)/samples/%.warn)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -ffp-contract=off -Wall -Wextra -Wno-unknown-pragmas -Iruntime -I$(B)/samples -Isamples \
	  samples/demo_loops.c $(LOOP_SAMPLES:%=samples/%.c) $(LOOP_SAMPLES:%=$(B)/samples/%.twin.c) -o $@ -lm

# ---- tests ----

TEST_SRCS := tests/check_main.c tests/test_gen.c tests/test_runtime.c tests/test_corpus.c
# test_runtime.c compiles the array fixtures in
TEST_DEPS := tests/fixtures/handarray.c

$(B)/tests/check_main: $(TEST_SRCS) $(TEST_DEPS) $(B)/libtwincgen.a $(B)/libtwinc.a $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_GEN) -Iruntime -DTWINC_SOURCE_DIR='"$(CURDIR)"' $(TEST_SRCS) $(B)/libtwincgen.a \
	  $(B)/libtwinc.a $(LDFLAGS_GEN) $(CHECK_LIBS) -ldl -lm -o $@

$(B)/tests/libhandtwin.so: tests/fixtures/handtwin.c runtime/twinc.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TWIN) -shared $< -o $@ -lm

$(B)/tests/libnoreg.so: tests/fixtures/noreg.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TWIN) -shared $< -o $@

$(B)/tests/libbadabi.so: tests/fixtures/handtwin.c runtime/twinc.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TWIN) -shared -DHANDTWIN_ABI=99 $< -o $@ -lm

$(B)/tests/libduptwin.so: tests/fixtures/handtwin.c tests/fixtures/duptwin.c runtime/twinc.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TWIN) -shared tests/fixtures/handtwin.c tests/fixtures/duptwin.c -o $@ -lm

$(B)/tests/libtworegs.so: tests/fixtures/handtwin.c tests/fixtures/duptwin.c runtime/twinc.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TWIN) -shared '-DDUPTWIN_KERNEL="dup_triple"' tests/fixtures/handtwin.c tests/fixtures/duptwin.c -o $@ -lm

$(B)/tests/libhandarray.so: tests/fixtures/handarray.c runtime/twinc.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TWIN) -Werror -shared $< -o $@ -lm

FIXTURES := $(B)/tests/libhandtwin.so $(B)/tests/libnoreg.so $(B)/tests/libbadabi.so $(B)/tests/libduptwin.so \
            $(B)/tests/libtworegs.so $(B)/tests/libhandarray.so

# The corpus again on every SIMD path this CPU has (TWINC_ISA forces one):
# bit for bit on the scalar path, within the documented bound on the others.
SIMD_ISAS = scalar $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo avx2) \
            $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo avx512)

unit-tests: $(B)/tests/check_main $(CORPUS_SO) $(FIXTURES)
	TWINC_CORPUS_LIBS="$(CORPUS_SO)" TWINC_HANDTWIN=$(B)/tests/libhandtwin.so \
	  TWINC_NOREG=$(B)/tests/libnoreg.so $(B)/tests/check_main
	@for isa in $(SIMD_ISAS); do echo "corpus with TWINC_ISA=$$isa"; \
	  TWINC_ISA=$$isa CK_RUN_SUITE=corpus TWINC_CORPUS_LIBS="$(CORPUS_SO)" $(B)/tests/check_main || exit 1; done

error-tests: $(B)/twinc
	bash tests/run_errors.sh $(B)/twinc tests/errors

cli-tests: $(B)/twinc $(FIXTURES) $(B)/samples/libsamples.so
	bash tests/test_check_cli.sh $(B)/twinc $(B)/tests/libhandtwin.so $(B)/tests/libnoreg.so $(B)/tests/libhandarray.so
	bash tests/test_cli.sh $(B)/twinc $(B)/samples/libsamples.so

# The generator under AddressSanitizer and UBSan, over the corpus and the
# error corpus; the corpus twins under both sanitizers through the harness.
$(B)/asan/twinc: $(GEN_SRCS:%=libclang_tool/%.c) libclang_tool/main.c libclang_tool/check_cmd.c $(RT_SRCS:%=runtime/%.c) $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	  -I$(LLVM_DIR)/include -Ilibclang_tool -Iruntime -DTWINC_INCLUDE_DIR='"$(CURDIR)/runtime"' \
	  $(GEN_SRCS:%=libclang_tool/%.c) libclang_tool/main.c libclang_tool/check_cmd.c $(RT_SRCS:%=runtime/%.c) \
	  $(LDFLAGS_GEN) -ldl -lm -o $@

sanitize: $(B)/asan/twinc $(B)/tests/check_main $(CORPUS_SO) $(B)/samples/libsamples.so
	@mkdir -p $(B)/asan/out
	@for f in tests/corpus/*.c $(ALL_SAMPLES:%=samples/%.c); do \
	  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    $(B)/asan/twinc gen $$f -o $(B)/asan/out/$$(basename $$f .c).twin.c >/dev/null || exit 1; \
	  ref=$$(ls $(B)/corpus/$$(basename $$f .c).twin.c $(B)/samples/$$(basename $$f .c).twin.c 2>/dev/null | head -1); \
	  diff -q <(grep -v '^#line .*twin\.c"$$' $(B)/asan/out/$$(basename $$f .c).twin.c) <(grep -v '^#line .*twin\.c"$$' $$ref) >/dev/null \
	    || { echo "sanitize: ASan build generated different code for $$f"; exit 1; }; \
	done
	@ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  bash tests/run_errors.sh $(B)/asan/twinc tests/errors
	@mkdir -p $(B)/asan/corpus
	@for c in $(CORPUS); do \
	  $(CC) $(CFLAGS_TWIN) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -shared -I$(B)/corpus \
	    tests/corpus/$$c.c -include tests/tape_report.h $(B)/corpus/$$c.twin.c -o $(B)/asan/corpus/lib$$c.so -lm || exit 1; \
	done
	$(CC) $(CFLAGS_GEN) -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -Iruntime -DTWINC_CORPUS_ONLY \
	  tests/check_main.c tests/test_corpus.c $(CHECK_LIBS) -ldl -lm -o $(B)/asan/check_corpus
	TWINC_CORPUS_LIBS="$(CORPUS:%=$(B)/asan/corpus/lib%.so)" CK_FORK=no ASAN_OPTIONS=detect_leaks=0 \
	  $(B)/asan/check_corpus
	@echo "sanitize: generator and corpus twins clean under ASan/UBSan"

# Components with their own rules (plugins, Python binding) add their test
# targets to EXTRA_TESTS and their build targets to EXTRA_ALL.
EXTRA_TESTS :=
EXTRA_ALL   :=
# Demos beyond the C ones add their phony targets to EXTRA_DEMOS.
EXTRA_DEMOS :=
-include plugin/plugin.mk
-include python_bindings/python.mk
-include samples/demo.mk

test: all $(EXTRA_ALL) unit-tests error-tests cli-tests sanitize tape-bytes $(EXTRA_TESTS)
	@echo "make test: all passed"

# ---- demo ----

demo: demo-c $(EXTRA_DEMOS)

demo-c: all $(B)/samples/demo $(B)/samples/demo_loops
	$(B)/samples/demo
	$(B)/samples/demo_loops

# ---- bench: SIMD twins vs the scalar function (-O3 -march=native), FD, ADOL-C ----

$(B)/bench/bench: bench/bench.c bench/adolc_bs.cc samples/bs.c samples/sabr.c $(B)/samples/bs.twin.c \
                  $(B)/samples/sabr.twin.c runtime/twinc_simd.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O3 -march=native -Wall -Wextra -Wno-unknown-pragmas -Iruntime -c samples/bs.c -o $(B)/bench/bs_user.o
	$(CC) -std=c11 -D_GNU_SOURCE -O3 -march=native -Wall -Wextra -Wno-unknown-pragmas -Iruntime -c samples/sabr.c -o $(B)/bench/sabr_user.o
	$(CC) $(CFLAGS_TWIN) -I$(B)/samples -c $(B)/samples/bs.twin.c -o $(B)/bench/bs_twin.o
	$(CC) $(CFLAGS_TWIN) -I$(B)/samples -c $(B)/samples/sabr.twin.c -o $(B)/bench/sabr_twin.o
	g++ -O2 -c bench/adolc_bs.cc -o $(B)/bench/adolc_bs.o
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Iruntime -I$(B)/samples bench/bench.c $(B)/bench/bs_user.o \
	  $(B)/bench/sabr_user.o $(B)/bench/bs_twin.o $(B)/bench/sabr_twin.o $(B)/bench/adolc_bs.o -ladolc -lstdc++ -lm -o $@

bench-c: all $(B)/bench/bench
	@mkdir -p bench/results
	$(B)/bench/bench

bench: bench-c

clean:
	rm -rf $(B) demo-output

# Bytes of tape per lane (stated by the registry, used by a call) for the
# loop samples at the issue's sizes.
$(B)/tests/tape_bytes: tests/tape_bytes.c tests/tape_report.h $(LOOP_SAMPLES:%=samples/%.c) $(LOOP_SAMPLES:%=$(B)/samples/%.twin.c) \
                      tests/corpus/checkpoint.c $(B)/corpus/checkpoint.twin.c tests/corpus/alias.c \
                      $(B)/corpus/alias.twin.c $(B)/libtwinc.a
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -ffp-contract=off -Wall -Wextra -Wno-unknown-pragmas -Iruntime -Itests -I$(B)/samples \
	  -I$(B)/corpus -include tests/tape_report.h tests/tape_bytes.c $(LOOP_SAMPLES:%=$(B)/samples/%.twin.c) \
	  $(LOOP_SAMPLES:%=samples/%.c) $(B)/corpus/checkpoint.twin.c tests/corpus/checkpoint.c \
	  $(B)/corpus/alias.twin.c tests/corpus/alias.c $(B)/libtwinc.a -ldl -lm -o $@
TAPE_BYTES_SRCS := tests/tape_bytes.c $(LOOP_SAMPLES:%=$(B)/samples/%.twin.c) $(LOOP_SAMPLES:%=samples/%.c) \
                   $(B)/corpus/checkpoint.twin.c tests/corpus/checkpoint.c $(B)/corpus/alias.twin.c tests/corpus/alias.c
# the same under ASan/UBSan/LSan (10^6-element arrays, 10^6-step checkpointing, aliasing)
$(B)/asan/tape_bytes: $(B)/tests/tape_bytes runtime/lib.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -ffp-contract=off \
	  -Wno-unknown-pragmas -Iruntime -Itests -I$(B)/samples -I$(B)/corpus -include tests/tape_report.h \
	  $(TAPE_BYTES_SRCS) runtime/lib.c -ldl -lm -o $@
tape-bytes: $(B)/tests/tape_bytes $(B)/asan/tape_bytes
	$(B)/tests/tape_bytes
	@ASAN_OPTIONS=detect_leaks=1 $(B)/asan/tape_bytes >/dev/null && echo "tape-bytes: clean under ASan/UBSan/LSan"
.PHONY: tape-bytes
