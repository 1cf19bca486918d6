# plugin/plugin.mk — compiler plugins, build-system integration, install.
# Included by the top-level Makefile (-include plugin/plugin.mk).
#
#   make plugins          build/plugin/gcc/twinc.so      the GCC 12 plugin   (-fplugin=...)
#                         build/plugin/clang/twinc.so    the Clang 14 plugin (-fplugin=...)
#                         build/plugin/twinc-gen         the generator process both plugins use
#                         build/cmake/twincConfig.cmake  find_package(twinc) from the build tree
#   make plugin-tests     tests/plugin/run.sh (part of `make test`)
#   make plugin-bench     plugin-enabled compile of the samples vs a plain one
#   make install   [PREFIX=/usr/local] [DESTDIR=]   CLI, plugins, runtime, headers,
#                         pkg-config file, CMake package, twinc.mk
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]   removes exactly those files
#
# The plugins are thin and link only libc.  The generator (libclang_tool/ and
# libclang) runs in twinc-gen, one folder above the plugins (in the build tree
# and under PREFIX/lib/twinc/), as a warm server shared by a build's compiles
# or as a fresh process (plugin/twinc_plugin.c says why and how).
#
# The generator finds twinc.h through the -I flags of the compile, and else
# through the folder compiled into gen.c (TWINC_INCLUDE_DIR).  The build tree
# uses $(CURDIR)/runtime; `make install` links its own twinc and twinc-gen with
# a gen.o that names INCLUDEDIR/twinc (in build/install/, rebuilt when the
# install folders change).
#
# Hook for other components (e.g. the Python package): add prerequisites,
#   install: install-python
#   uninstall: uninstall-python
# and use $(DESTDIR)$(PREFIX) and the directory variables below.

DEB_PACKAGES += g++ gcc-12-plugin-dev libclang-cpp14-dev cmake ninja-build

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR    ?= $(PREFIX)/share

TWINC_GCC   ?= gcc
TWINC_GXX   ?= g++
CLANGXX     ?= clang++-14
TWINC_VER   := $(shell sed -n 's/^\#define TWINC_VERSION "\(.*\)"/\1/p' libclang_tool/twinc_gen.h)
# recursive: evaluated in recipes, after `deps` installed gcc-12-plugin-dev
GCC_PLUGIN_INC = $(shell $(TWINC_GCC) -print-file-name=plugin)/include

PL         := $(B)/plugin
PLUGIN_BIN := $(PL)/gcc/twinc.so $(PL)/clang/twinc.so $(PL)/twinc-gen
CXXFLAGS_PL:= -std=c++17 $(OPT) -fPIC -fno-rtti -Wall -Wextra -Werror

.PHONY: plugins plugin-tests plugin-bench install uninstall FORCE
all: plugins
EXTRA_TESTS += plugin-tests

plugins: $(PLUGIN_BIN) $(B)/cmake/twincConfig.cmake

# ---- the generator process and the plugins ----

$(PL)/twinc-gen: plugin/gen_helper.c $(B)/libtwincgen.a $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_GEN) $< $(B)/libtwincgen.a $(LDFLAGS_GEN) -lm -o $@

$(PL)/twinc_plugin.o: plugin/twinc_plugin.c plugin/twinc_plugin.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -fPIC -c $< -o $@

$(PL)/gcc/twinc.so: plugin/gcc/twinc_gcc.cc $(PL)/twinc_plugin.o plugin/twinc_plugin.h | deps
	@mkdir -p $(dir $@)
	$(TWINC_GXX) $(CXXFLAGS_PL) -I$(GCC_PLUGIN_INC) -DTWINC_PLUGIN_VERSION='"$(TWINC_VER)"' \
	  -shared $< $(PL)/twinc_plugin.o -o $@ -ldl

# Clang's own symbols come from the clang process that loads the plugin.
$(PL)/clang/twinc.so: plugin/clang/twinc_clang.cc $(PL)/twinc_plugin.o plugin/twinc_plugin.h | deps
	@mkdir -p $(dir $@)
	$(CLANGXX) $(CXXFLAGS_PL) -isystem $(LLVM_DIR)/include -D__STDC_CONSTANT_MACROS -D__STDC_FORMAT_MACROS \
	  -D__STDC_LIMIT_MACROS -shared $< $(PL)/twinc_plugin.o -o $@ -ldl

# ---- CMake package and pkg-config file (one template for build tree and install) ----

# $(call twinc_config,OUT,exe,includedir,libdir-of-libtwinc,plugindir,twinc.mk)
define twinc_config
	@mkdir -p $(dir $(1))
	sed -e 's|@TWINC_VERSION@|$(TWINC_VER)|g' -e 's|@TWINC_EXECUTABLE@|$(2)|g' \
	    -e 's|@TWINC_INCLUDE_DIR@|$(3)|g' -e 's|@TWINC_LIB_DIR@|$(4)|g' \
	    -e 's|@TWINC_PLUGIN_DIR@|$(5)|g' -e 's|@TWINC_MK@|$(6)|g' $< > $(1)
endef

$(B)/cmake/twincConfig.cmake: plugin/cmake/twincConfig.cmake.in plugin/cmake/twinc.cmake \
                              plugin/cmake/twincConfigVersion.cmake.in
	$(call twinc_config,$@,$(CURDIR)/$(B)/twinc,$(CURDIR)/runtime,$(CURDIR)/$(B),$(CURDIR)/$(PL),$(CURDIR)/plugin/twinc.mk)
	sed 's|@TWINC_VERSION@|$(TWINC_VER)|g' plugin/cmake/twincConfigVersion.cmake.in > $(B)/cmake/twincConfigVersion.cmake
	cp plugin/cmake/twinc.cmake $(B)/cmake/twinc.cmake

# ---- the installed variant: the CLI and the generator with PREFIX's include folder ----
# (a Python package would add `install: install-python` and `uninstall: uninstall-python`)

IN := $(B)/install

$(IN)/prefix.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(PREFIX) $(INCLUDEDIR) $(LIBDIR) $(BINDIR) $(DATADIR)' | cmp -s - $@ || \
	  echo '$(PREFIX) $(INCLUDEDIR) $(LIBDIR) $(BINDIR) $(DATADIR)' > $@

$(IN)/gen.o: libclang_tool/gen.c $(GEN_HDRS) $(IN)/prefix.stamp | deps
	$(CC) $(filter-out -DTWINC_INCLUDE_DIR=%,$(CFLAGS_GEN)) -DTWINC_INCLUDE_DIR='"$(INCLUDEDIR)/twinc"' -c $< -o $@

IN_GEN_OBJS := $(filter-out $(B)/gen/gen.o,$(GEN_OBJS)) $(IN)/gen.o

$(IN)/twinc-gen: plugin/gen_helper.c $(IN_GEN_OBJS) $(GEN_HDRS)
	$(CC) $(CFLAGS_GEN) $< $(IN_GEN_OBJS) $(LDFLAGS_GEN) -lm -o $@

$(IN)/twinc: libclang_tool/main.c libclang_tool/check_cmd.c $(IN_GEN_OBJS) $(B)/libtwinc.a $(GEN_HDRS)
	$(CC) $(CFLAGS_GEN) -Iruntime libclang_tool/main.c libclang_tool/check_cmd.c $(IN_GEN_OBJS) \
	  $(B)/libtwinc.a $(LDFLAGS_GEN) -ldl -lm -o $@

$(IN)/twinc.pc: plugin/twinc.pc.in $(IN)/prefix.stamp
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' -e 's|@TWINC_VERSION@|$(TWINC_VER)|g' $< > $@

$(IN)/cmake/twincConfig.cmake: plugin/cmake/twincConfig.cmake.in $(IN)/prefix.stamp
	$(call twinc_config,$@,$(BINDIR)/twinc,$(INCLUDEDIR)/twinc,$(LIBDIR),$(LIBDIR)/twinc,$(DATADIR)/twinc/twinc.mk)

# Every file install puts in place, for uninstall (keep the two lists in step).
INSTALLED := $(BINDIR)/twinc $(INCLUDEDIR)/twinc/twinc.h $(INCLUDEDIR)/twinc/twinc_check.h $(INCLUDEDIR)/twinc/twinc_simd.h \
             $(LIBDIR)/libtwinc.a $(LIBDIR)/libtwinc.so $(LIBDIR)/twinc/twinc-gen \
             $(LIBDIR)/twinc/gcc/twinc.so $(LIBDIR)/twinc/clang/twinc.so $(LIBDIR)/pkgconfig/twinc.pc \
             $(LIBDIR)/cmake/twinc/twincConfig.cmake $(LIBDIR)/cmake/twinc/twincConfigVersion.cmake \
             $(LIBDIR)/cmake/twinc/twinc.cmake $(DATADIR)/twinc/twinc.mk
# folders that are twinc's alone, deepest first
INSTALLED_DIRS := $(INCLUDEDIR)/twinc $(LIBDIR)/twinc/gcc $(LIBDIR)/twinc/clang $(LIBDIR)/twinc \
                  $(LIBDIR)/cmake/twinc $(DATADIR)/twinc

install: all $(IN)/twinc $(IN)/twinc-gen $(IN)/twinc.pc $(IN)/cmake/twincConfig.cmake
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR)/twinc $(DESTDIR)$(LIBDIR)/twinc/gcc \
	  $(DESTDIR)$(LIBDIR)/twinc/clang $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(LIBDIR)/cmake/twinc \
	  $(DESTDIR)$(DATADIR)/twinc
	install -m 755 $(IN)/twinc $(DESTDIR)$(BINDIR)/twinc
	install -m 644 runtime/twinc.h runtime/twinc_check.h runtime/twinc_simd.h $(DESTDIR)$(INCLUDEDIR)/twinc/
	install -m 644 $(B)/libtwinc.a $(DESTDIR)$(LIBDIR)/libtwinc.a
	install -m 755 $(B)/libtwinc.so $(DESTDIR)$(LIBDIR)/libtwinc.so
	install -m 755 $(IN)/twinc-gen $(DESTDIR)$(LIBDIR)/twinc/twinc-gen
	install -m 755 $(PL)/gcc/twinc.so $(DESTDIR)$(LIBDIR)/twinc/gcc/twinc.so
	install -m 755 $(PL)/clang/twinc.so $(DESTDIR)$(LIBDIR)/twinc/clang/twinc.so
	install -m 644 $(IN)/twinc.pc $(DESTDIR)$(LIBDIR)/pkgconfig/twinc.pc
	install -m 644 $(IN)/cmake/twincConfig.cmake plugin/cmake/twinc.cmake $(DESTDIR)$(LIBDIR)/cmake/twinc/
	sed 's|@TWINC_VERSION@|$(TWINC_VER)|g' plugin/cmake/twincConfigVersion.cmake.in \
	  > $(DESTDIR)$(LIBDIR)/cmake/twinc/twincConfigVersion.cmake
	sed -e 's|^TWINC_INSTALLED_BIN :=.*|TWINC_INSTALLED_BIN := $(BINDIR)|' \
	    -e 's|^TWINC_INSTALLED_INCLUDE :=.*|TWINC_INSTALLED_INCLUDE := $(INCLUDEDIR)/twinc|' \
	    -e 's|^TWINC_INSTALLED_PLUGINS :=.*|TWINC_INSTALLED_PLUGINS := $(LIBDIR)/twinc|' \
	    plugin/twinc.mk > $(DESTDIR)$(DATADIR)/twinc/twinc.mk
	@echo "installed twinc $(TWINC_VER) under $(DESTDIR)$(PREFIX)"

uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)%)
	@for d in $(INSTALLED_DIRS:%=$(DESTDIR)%); do \
	  if [ -d "$$d" ]; then rmdir --ignore-fail-on-non-empty "$$d"; fi; done
	@echo "removed twinc from $(DESTDIR)$(PREFIX)"

# ---- tests ----

plugin-tests: all plugins
	bash tests/plugin/run.sh

plugin-bench: plugins
	$(PYTHON) tests/plugin/bench.py
