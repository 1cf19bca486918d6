# twinc.mk — twins from GNU Make.  In your Makefile:
#
#   TWINC_SOURCES := pricing.c sabr.c        # the files with #pragma aad, before the include
#   include $(shell pkg-config --variable=twinc_mk twinc)   # or a path to this file
#   CFLAGS += $(TWINC_CFLAGS)                # twinc.h and the twin folders
#   prog: main.o pricing.o sabr.o $(TWINC_OBJS)
#   main.o: $(TWINC_HEADERS)                 # every object whose source includes a twin header
#
# Each FILE.c of TWINC_SOURCES gets FILE.twin.c and FILE.twin.h (in $(TWINC_OUT),
# mirroring the source's folder), compiled by your usual %.o: %.c rule.
#
# How the twins are written:
#   TWINC_PLUGIN empty   the twinc command, with the parse flags $(TWINC_CPPFLAGS)
#                        (default: $(CPPFLAGS)).  `$(CC) -MM` writes FILE.twin.d listing
#                        the headers FILE.c includes, so editing one regenerates the twins.
#                        FILE.o gets -Wno-unknown-pragmas (the compiler does not know
#                        the pragma; with a plugin it does).
#   TWINC_PLUGIN=gcc     FILE.o is compiled with the GCC (or Clang) plugin, which writes
#   TWINC_PLUGIN=clang   the twins as it compiles with exactly your flags; -MMD makes
#                        FILE.d, so editing a header recompiles FILE.o and so the twins.
#                        FILE.o must come from a rule that passes $(CFLAGS) (the built-in
#                        one does) and lie next to FILE.c.
#
# Variables you may set (before the include):
#   TWINC_OUT        folder prefix of the twins with a trailing slash, e.g. "gen/";
#                    empty (default): next to each source
#   TWINC_CPPFLAGS   parse flags for the twinc command (default $(CPPFLAGS))
#   TWINC, TWINC_INCLUDE, TWINC_PLUGIN_DIR   the command, the folder of twinc.h and the
#                    folder holding gcc/twinc.so and clang/twinc.so (found from this
#                    file's place: an install, or a twinc source tree with its build/)
# Defined for you: TWINC_TWINS (.twin.c), TWINC_HEADERS (.twin.h), TWINC_OBJS (.twin.o),
#                  TWINC_CFLAGS (-I for twinc.h and the twin folders).

TWINC_MK_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
# the rules below must not become the including Makefile's default goal
TWINC_SAVED_GOAL := $(.DEFAULT_GOAL)

# `make install` writes the installed folders here; empty in a source tree.
TWINC_INSTALLED_BIN :=
TWINC_INSTALLED_INCLUDE :=
TWINC_INSTALLED_PLUGINS :=

ifneq ($(TWINC_INSTALLED_BIN),)
TWINC            ?= $(TWINC_INSTALLED_BIN)/twinc
TWINC_INCLUDE    ?= $(TWINC_INSTALLED_INCLUDE)
TWINC_PLUGIN_DIR ?= $(TWINC_INSTALLED_PLUGINS)
else
TWINC            ?= $(abspath $(TWINC_MK_DIR)/../build/twinc)
TWINC_INCLUDE    ?= $(abspath $(TWINC_MK_DIR)/../runtime)
TWINC_PLUGIN_DIR ?= $(abspath $(TWINC_MK_DIR)/../build/plugin)
endif

TWINC_OUT      ?=
TWINC_CPPFLAGS ?= $(CPPFLAGS)
TWINC_PLUGIN   ?=
TWINC_DEPCC    ?= $(CC)

TWINC_TWINS   := $(addprefix $(TWINC_OUT),$(TWINC_SOURCES:.c=.twin.c))
TWINC_HEADERS := $(TWINC_TWINS:.c=.h)
TWINC_OBJS    := $(TWINC_TWINS:.c=.o)
TWINC_CFLAGS  := -I$(TWINC_INCLUDE) $(addprefix -I,$(patsubst %/,%,$(sort $(dir $(TWINC_HEADERS)))))

# generated sources are kept, not deleted as intermediates
.SECONDARY: $(TWINC_TWINS) $(TWINC_HEADERS)

ifeq ($(TWINC_PLUGIN),)

$(TWINC_OUT)%.twin.c $(TWINC_OUT)%.twin.h: %.c $(wildcard $(TWINC))
	@mkdir -p $(@D)
	$(TWINC_DEPCC) -MM -MP -MT '$(TWINC_OUT)$*.twin.c $(TWINC_OUT)$*.twin.h' -MF $(TWINC_OUT)$*.twin.d \
	  -I$(TWINC_INCLUDE) $(TWINC_CPPFLAGS) $<
	$(TWINC) gen $< -o $(TWINC_OUT)$*.twin.c --header $(TWINC_OUT)$*.twin.h -- $(TWINC_CPPFLAGS)

# the compiler does not know `#pragma aad` without the plugin: quiet it there only
$(foreach s,$(TWINC_SOURCES),$(eval $(s:.c=.o): CFLAGS += -Wno-unknown-pragmas))

-include $(TWINC_TWINS:.c=.d)

else

TWINC_PLUGIN_SO := $(TWINC_PLUGIN_DIR)/$(TWINC_PLUGIN)/twinc.so
ifeq ($(wildcard $(TWINC_PLUGIN_SO)),)
$(error twinc.mk: TWINC_PLUGIN=$(TWINC_PLUGIN): no plugin $(TWINC_PLUGIN_SO) (gcc or clang))
endif

# the kernels' objects: plugin on, twins to $(TWINC_OUT)<folder of the source>, and -MMD
$(foreach s,$(TWINC_SOURCES),$(eval $(s:.c=.o): CFLAGS += -fplugin=$(TWINC_PLUGIN_SO) \
  -fplugin-arg-twinc-out=$(or $(patsubst %/,%,$(TWINC_OUT)$(patsubst ./,,$(dir $(s)))),.) -MMD -MP))
# a new plugin or generator regenerates the twins
$(TWINC_SOURCES:.c=.o): $(TWINC_PLUGIN_SO) $(wildcard $(TWINC_PLUGIN_DIR)/twinc-gen)

# The plugin wrote the twins while compiling FILE.o (just before the object);
# the touch only tells Make they are as new as the object.
$(TWINC_OUT)%.twin.c $(TWINC_OUT)%.twin.h: %.o
	@test -f $(TWINC_OUT)$*.twin.c || { echo "twinc.mk: $*.o was compiled without the twinc plugin" >&2; exit 1; }
	@touch $(TWINC_OUT)$*.twin.c $(TWINC_OUT)$*.twin.h

-include $(TWINC_SOURCES:.c=.d)

endif

.DEFAULT_GOAL := $(TWINC_SAVED_GOAL)
