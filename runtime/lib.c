/*
 * lib.c — finding kernels: open a shared library built from twins, read its
 * registries, hand out its kernels by index or by name.
 *
 * Every generated `*.twin.c` file puts a pointer to its twinc_registry in the
 * section TWINC_REGISTRY_SECTION and defines, weakly, `twinc_registries()`,
 * which returns the range of that section between the linker-provided
 * __start_/__stop_ symbols.  All the twin files linked into one shared object
 * therefore share one definition and one section, and a single dlsym() finds
 * every registry of the library.
 *
 * twinc_lib_open() loads the library with RTLD_NOW | RTLD_LOCAL (unresolved
 * symbols fail now, with dlerror's message, not at the first call; kernels of
 * two libraries never interpose on each other), rejects registries of another
 * ABI version, and copies the kernel pointers into an array it owns.  Kernel
 * names must be unique within a library: a duplicate is an error that names
 * both registries' source files.  The kernels themselves stay in the
 * library's memory and are valid until twinc_lib_close().
 *
 * The runtime never prints and never exits: failures come back as NULL plus a
 * message in the caller's buffer, or as a twinc_status.
 *
 * MIT licence — see LICENSE.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* access() */
#endif

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt_internal.h"
#include "twinc.h"

struct twinc_lib {
    void *handle;
    int nkernels;
    const twinc_kernel **kernels; /* in registry order, then kernel order */
};

void twinc__set_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static const char *nonnull(const char *s) { return s ? s : "(unnamed)"; }

/* A kernel record we can read safely: it has a name and its parameter table
 * is present when it claims parameters. */
static int kernel_sane(const twinc_kernel *k)
{
    return k->name && k->nparams >= 0 && (k->nparams == 0 || k->params);
}

/* dlopen() searches the library path, never the working directory, for a
 * name without a slash; `twinc check libfoo.so` means the file here. */
static void *open_handle(const char *path)
{
    if (!strchr(path, '/') && access(path, F_OK) == 0) {
        size_t len = strlen(path);
        char *local = malloc(len + 3);
        if (!local)
            return NULL;
        memcpy(local, "./", 2);
        memcpy(local + 2, path, len + 1);
        void *h = dlopen(local, RTLD_NOW | RTLD_LOCAL);
        free(local);
        return h;
    }
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

twinc_lib *twinc_lib_open(const char *path, char *errbuf, size_t errlen)
{
    twinc_lib *lib = NULL;
    void *handle = NULL;

    twinc__set_error(errbuf, errlen, "%s", "");
    if (!path || !*path) {
        twinc__set_error(errbuf, errlen, "no library path given");
        return NULL;
    }

    dlerror(); /* clear any stale message */
    handle = open_handle(path);
    if (!handle) {
        const char *why = dlerror();
        twinc__set_error(errbuf, errlen, "%s", why ? why : "cannot load library (out of memory?)");
        return NULL;
    }

    dlerror();
    void *sym = dlsym(handle, "twinc_registries");
    if (!sym) {
        twinc__set_error(errbuf, errlen,
                  "%s: no twinc registry (was it built from twinc-generated *.twin.c files?)",
                  path);
        goto fail;
    }
    /* POSIX guarantees data and function pointers convert through dlsym. */
    twinc_registries_fn get_registries;
    memcpy(&get_registries, &sym, sizeof get_registries);

    size_t nregs = 0;
    const twinc_registry *const *regs = get_registries(&nregs);
    if (!regs || nregs == 0) {
        twinc__set_error(errbuf, errlen,
                  "%s: no twinc registry (was it built from twinc-generated *.twin.c files?)",
                  path);
        goto fail;
    }

    /* First pass: check every registry and count the kernels. */
    size_t total = 0;
    for (size_t r = 0; r < nregs; r++) {
        const twinc_registry *reg = regs[r];
        if (!reg)
            continue; /* section padding, if a linker ever adds any */
        if (reg->abi_version != TWINC_ABI_VERSION) {
            twinc__set_error(errbuf, errlen,
                      "%s: the registry of %s has twin ABI version %d, this runtime expects "
                      "version %d (%s); regenerate the twins with a matching twinc",
                      path, nonnull(reg->source), reg->abi_version, TWINC_ABI_VERSION,
                      twinc_strerror(TWINC_EABI));
            goto fail;
        }
        if (reg->nkernels < 0 || (reg->nkernels > 0 && !reg->kernels)) {
            twinc__set_error(errbuf, errlen, "%s: the registry of %s is malformed (%d kernels)", path,
                      nonnull(reg->source), reg->nkernels);
            goto fail;
        }
        for (int i = 0; i < reg->nkernels; i++) {
            if (!kernel_sane(&reg->kernels[i])) {
                twinc__set_error(errbuf, errlen,
                          "%s: the registry of %s is malformed (kernel %d has no name or "
                          "no parameter table)",
                          path, nonnull(reg->source), i);
                goto fail;
            }
        }
        total += (size_t)reg->nkernels;
    }
    if (total > (size_t)0x7fffffff) {
        twinc__set_error(errbuf, errlen, "%s: too many kernels", path);
        goto fail;
    }

    lib = calloc(1, sizeof *lib);
    if (!lib || (total && !(lib->kernels = malloc(total * sizeof *lib->kernels)))) {
        twinc__set_error(errbuf, errlen, "%s: %s", path, twinc_strerror(TWINC_ENOMEM));
        goto fail;
    }
    lib->handle = handle;

    /* Second pass: collect, rejecting duplicate names (the first one is kept
     * until we give up, so the message can name both sources). */
    for (size_t r = 0; r < nregs; r++) {
        const twinc_registry *reg = regs[r];
        if (!reg)
            continue;
        for (int i = 0; i < reg->nkernels; i++) {
            const twinc_kernel *k = &reg->kernels[i];
            const twinc_kernel *first = twinc_lib_find(lib, k->name);
            if (first) {
                twinc__set_error(errbuf, errlen,
                          "%s: kernel '%s' is defined twice (%s:%d and %s:%d); kernel names "
                          "must be unique within a library",
                          path, k->name, nonnull(first->file), first->line, nonnull(k->file),
                          k->line);
                goto fail;
            }
            lib->kernels[lib->nkernels++] = k;
        }
    }
    return lib;

fail:
    if (lib) {
        free(lib->kernels);
        free(lib);
    }
    dlclose(handle);
    return NULL;
}

void twinc_lib_close(twinc_lib *lib)
{
    if (!lib)
        return;
    dlclose(lib->handle);
    free(lib->kernels);
    free(lib);
}

int twinc_lib_count(const twinc_lib *lib) { return lib ? lib->nkernels : 0; }

const twinc_kernel *twinc_lib_kernel(const twinc_lib *lib, int i)
{
    if (!lib || i < 0 || i >= lib->nkernels)
        return NULL;
    return lib->kernels[i];
}

const twinc_kernel *twinc_lib_find(const twinc_lib *lib, const char *name)
{
    if (!lib || !name)
        return NULL;
    for (int i = 0; i < lib->nkernels; i++)
        if (strcmp(lib->kernels[i]->name, name) == 0)
            return lib->kernels[i];
    return NULL;
}

/* Registries of another ABI version are skipped: their kernel records may not
 * even have the layout this runtime reads. */
const twinc_kernel *twinc_find_kernel(const twinc_registry *const *regs, size_t count,
                                      const char *name)
{
    if (!regs || !name)
        return NULL;
    for (size_t r = 0; r < count; r++) {
        const twinc_registry *reg = regs[r];
        if (!reg || reg->abi_version != TWINC_ABI_VERSION || !reg->kernels)
            continue;
        for (int i = 0; i < reg->nkernels; i++)
            if (reg->kernels[i].name && strcmp(reg->kernels[i].name, name) == 0)
                return &reg->kernels[i];
    }
    return NULL;
}

/* ORDER twinc_status: one case per enumerator of twinc.h. */
const char *twinc_strerror(int status)
{
    switch (status) {
    case TWINC_OK:
        return "success";
    case TWINC_EINVAL:
        return "invalid argument (a NULL pointer where a value is required, or a bad value)";
    case TWINC_ENOMEM:
        return "out of memory (the twin could not get the workspace it needs)";
    case TWINC_EUNIFORM:
        return "a parameter declared uniform(...) was given a nonzero lane stride";
    case TWINC_ENOENT:
        return "no such kernel, library or symbol";
    case TWINC_EABI:
        return "the library was generated for another twin ABI version";
    case TWINC_ENOREF:
        return "the user's scalar function is not linked in";
    default:
        return "unknown twinc status";
    }
}
