/*
 * twinc_plugin.h — what the GCC and the Clang plugin share (twinc_plugin.c).
 *
 * A plugin learns that the file it compiles has a `#pragma aad`, starts a
 * generator job on that file with the include paths and defines it rebuilt
 * from its compiler's own options, and at the end of the translation unit
 * waits for the job and turns each of its diagnostics into one of its
 * compiler's diagnostics.  The job (twinc-gen, in a process of its own) works
 * while the compiler does, and touches nothing of the host compiler.
 *
 * Plain C, callable from the C++ of both plugins.
 */
#ifndef TWINC_PLUGIN_H
#define TWINC_PLUGIN_H

#ifdef __cplusplus
extern "C" {
#endif

/* One diagnostic of the generator: file NULL when it has no location. */
typedef struct TpDiag {
    char *file;
    int line, col;
    int is_error;
    char *msg;
} TpDiag;

typedef struct TpJob TpJob;

/* A growable argument list (the flags for the parse), NULL-terminated. */
typedef struct TpArgs {
    char **v;
    int n, cap;
} TpArgs;
void tp_args_add(TpArgs *a, const char *s);
void tp_args_add2(TpArgs *a, const char *prefix, const char *s); /* prefix + s */
void tp_args_free(TpArgs *a);

/* Start generating the twins of `input` into OUT_DIR/<stem>.twin.c and .h
 * (OUT_DIR is created if missing) in twinc-gen, warm or fresh.  The job copies
 * what it keeps.  With `async` it runs alongside the caller; otherwise it has
 * finished when this returns.  Never NULL: a job that could not start holds
 * its error. */
TpJob *tp_start(const char *input, const char *out_dir, const TpArgs *flags, int async);

/* Wait for the job; returns the generator's status: 0 written, 1 user errors
 * (nothing written), 2 internal or I/O error. */
int tp_wait(TpJob *j);
int tp_ndiags(const TpJob *j);
const TpDiag *tp_diag(const TpJob *j, int i);
void tp_free(TpJob *j);

/* Whether a line of `path` reads `#pragma aad` (spaces allowed around '#'): a
 * quick look at the raw text, so a job can start before the compiler parses.
 * The compiler's pragma handler has the last word. */
int tp_file_has_pragma(const char *path);

/* The folder part of `path` ("." when it has none), malloc'ed. */
char *tp_dirname(const char *path);
/* Whether two paths name the same file (same string, or same real path). */
int tp_same_file(const char *a, const char *b);

#ifdef __cplusplus
}
#endif

#endif /* TWINC_PLUGIN_H */
