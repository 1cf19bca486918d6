# python_bindings/python.mk — the Python binding: the twinc package (C
# extension twinc._twinc over the runtime, plus a thin Python layer), its
# pytest suite and its benchmark.  Included by the top-level Makefile.
#
#   make python-binding   build/python/twinc/ (import with PYTHONPATH=build/python)
#   make python-tests     pytest tests/python (part of `make test`)
#   make python-sanitize  the extension under ASan/UBSan over the pytest suite
#   make python-bench     MC Asian and Black–Scholes: replay vs NumPy (and PyTorch if installed)
#
# Built with plain gcc against Debian's python3-dev and python3-numpy (no
# setuptools, no pip).  The extension is named _twinc.so, which CPython imports
# like any other extension suffix, so the target name needs no python3-config
# at parse time.

PYB        := $(B)/python
PY_SRCS    := python_bindings/module.c python_bindings/kernel.c python_bindings/graphobj.c
PY_HDRS    := python_bindings/pyt.h runtime/twinc.h runtime/twinc_graph.h
PY_FILES   := $(notdir $(wildcard python_bindings/twinc/*.py))
# evaluated when a recipe runs (after `deps` has installed python3-dev and numpy)
PY_CFLAGS   = $(CSTD) $(OPT) $(WARN) -fPIC -fvisibility=hidden -Iruntime -Ipython_bindings \
              $(shell $(PYTHON)-config --includes) -I$(shell $(PYTHON) -c 'import numpy; print(numpy.get_include())')
PY_SAN     := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

DEB_PACKAGES += python3-dev python3-numpy python3-pytest
EXTRA_ALL    += python-binding
EXTRA_TESTS  += python-tests

.PHONY: python-binding python-tests python-sanitize python-bench
all: python-binding
bench: python-bench

# the graph runtime, built here at -O3 with hidden symbols (the top-level
# Makefile's RT_SRCS does not list it yet); libmvec gives it vector exp/log/erfc
$(PYB)/graph.o: runtime/graph.c runtime/twinc_graph.h runtime/twinc.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O3 -g $(WARN) -fPIC -fvisibility=hidden -Iruntime -c $< -o $@

$(PYB)/twinc/_twinc.so: $(PY_SRCS) $(PY_HDRS) $(PYB)/graph.o $(B)/libtwinc.a | deps
	@mkdir -p $(dir $@)
	$(CC) $(PY_CFLAGS) -shared $(PY_SRCS) $(PYB)/graph.o $(B)/libtwinc.a -o $@ \
	  -Wl,--exclude-libs,ALL -Wl,--no-as-needed -lmvec -Wl,--as-needed -lm -ldl -lpthread

$(PYB)/twinc/%.py: python_bindings/twinc/%.py
	@mkdir -p $(dir $@)
	cp $< $@

python-binding: $(PYB)/twinc/_twinc.so $(PY_FILES:%=$(PYB)/twinc/%)

# kernels of the tests, examples and benchmark, through twinc like any user's
$(PYB)/gen/%.twin.c: python_bindings/examples/%.c $(B)/twinc
	@mkdir -p $(dir $@)
	$(B)/twinc gen $< -o $@ --header $(PYB)/gen/$*.twin.h

$(PYB)/lib%.so: python_bindings/examples/%.c $(PYB)/gen/%.twin.c
	$(CC) $(CFLAGS_TWIN) -Werror -shared -I$(PYB)/gen $< $(PYB)/gen/$*.twin.c -o $@ -lm

PY_TEST_LIBS := $(B)/samples/libsamples.so $(FIXTURES) $(CORPUS_SO) $(PYB)/libmc_kernels.so

python-tests: python-binding $(PY_TEST_LIBS)
	cd tests/python && TWINC_BUILD=$(CURDIR)/$(B) PYTHONPATH=$(CURDIR)/$(PYB) PYTHONDONTWRITEBYTECODE=1 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider .

# The extension and the runtime under ASan/UBSan, over the whole suite
# (the interpreter itself is not instrumented: libasan is preloaded; leaks are
# not checked, CPython keeps memory until exit by design).
$(PYB)-asan/twinc/_twinc.so: $(PY_SRCS) $(PY_HDRS) runtime/graph.c runtime/lib.c $(PY_FILES:%=python_bindings/twinc/%)
	@mkdir -p $(dir $@)
	$(CC) $(PY_CFLAGS) $(PY_SAN) -shared $(PY_SRCS) runtime/graph.c runtime/lib.c -o $@ -Wl,--no-as-needed -lmvec -Wl,--as-needed -lm -ldl -lpthread
	cp $(PY_FILES:%=python_bindings/twinc/%) $(dir $@)

python-sanitize: $(PYB)-asan/twinc/_twinc.so $(PY_TEST_LIBS)
	cd tests/python && TWINC_BUILD=$(CURDIR)/$(B) PYTHONPATH=$(CURDIR)/$(PYB)-asan PYTHONDONTWRITEBYTECODE=1 \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 TWINC_SANITIZE=1 $(PYTHON) -m pytest -q -p no:cacheprovider -x .

python-bench: python-binding $(PYB)/libmc_kernels.so $(B)/samples/libsamples.so
	PYTHONPATH=$(CURDIR)/$(PYB) $(PYTHON) -P python_bindings/bench.py --build $(CURDIR)/$(B)

# ---- install: the package under PYTHONDIR (plugin/plugin.mk's install and
# uninstall depend on these).  For PREFIX=/usr/local that folder is on
# Debian's sys.path; for another PREFIX, set PYTHONPATH=PYTHONDIR.
PYVER      = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYTHONDIR ?= $(LIBDIR)/python$(PYVER)/dist-packages

.PHONY: install-python uninstall-python
install: install-python
uninstall: uninstall-python

install-python: python-binding
	install -d $(DESTDIR)$(PYTHONDIR)/twinc
	install -m 755 $(PYB)/twinc/_twinc.so $(DESTDIR)$(PYTHONDIR)/twinc/_twinc.so
	install -m 644 $(PY_FILES:%=$(PYB)/twinc/%) $(DESTDIR)$(PYTHONDIR)/twinc/

uninstall-python:
	rm -f $(DESTDIR)$(PYTHONDIR)/twinc/_twinc.so $(PY_FILES:%=$(DESTDIR)$(PYTHONDIR)/twinc/%)
	rm -rf $(DESTDIR)$(PYTHONDIR)/twinc/__pycache__
	-rmdir $(DESTDIR)$(PYTHONDIR)/twinc $(DESTDIR)$(PYTHONDIR) $(DESTDIR)$(LIBDIR)/python$(PYVER) 2>/dev/null
