/*
 * gen.c — the generator driver.  Its main function is the pass list:
 *
 *   parse (libclang) -> pragma_scan -> lower_unit -> activity_unit
 *     -> varying_unit -> tbr_unit -> emit_unit -> write atomically
 *
 * Used by the twinc command line and by both compiler plugins.  On any user
 * error nothing is written: outputs go to temporaries in the destination
 * folder and are renamed into place only when everything succeeded.
 */
#include <clang-c/Index.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "twinc_gen.h"

static const char *const passes[] = {"lower", "activity", "varying", "tbr"};

static void maybe_dump(const GenOptions *opt, Unit *u, const char *pass)
{
    if (!opt->dump_ir)
        return;
    const char *want = *opt->dump_ir ? opt->dump_ir : "tbr";
    if (!strcmp(want, pass))
        ir_dump(u, opt->dump_out ? opt->dump_out : stdout, pass);
}

/* Derive "x.twin.c" from "x.c" and "x.twin.h" from "x.twin.c". */
static char *derive(Arena *a, const char *path, const char *from_ext, const char *to_ext)
{
    size_t n = strlen(path), fe = strlen(from_ext);
    if (n > fe && !strcmp(path + n - fe, from_ext))
        return arena_printf(a, "%.*s%s", (int)(n - fe), path, to_ext);
    return arena_printf(a, "%s%s", path, to_ext);
}

static int write_temp(Arena *a, const char *dest, const Buf *b, char **tmp_out)
{
    char *tmp = arena_printf(a, "%s.tmp.XXXXXX", dest);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    size_t left = b->len;
    const char *p = b->s;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(tmp);
            return -1;
        }
        left -= (size_t)w;
        p += w;
    }
    if (close(fd) != 0) {
        unlink(tmp);
        return -1;
    }
    *tmp_out = tmp;
    return 0;
}

/* Clang's own errors (syntax, types) come first: we lower only valid C. */
static int report_clang_errors(CXTranslationUnit tu, Diag *d, FILE *err)
{
    int errors = 0;
    unsigned n = clang_getNumDiagnostics(tu);
    for (unsigned i = 0; i < n; i++) {
        CXDiagnostic dg = clang_getDiagnostic(tu, i);
        enum CXDiagnosticSeverity sev = clang_getDiagnosticSeverity(dg);
        if (sev >= CXDiagnostic_Error) {
            CXString s = clang_getDiagnosticSpelling(dg);
            CXFile file;
            unsigned line, col;
            clang_getExpansionLocation(clang_getDiagnosticLocation(dg), &file, &line, &col, NULL);
            CXString fname = clang_getFileName(file);
            SrcLoc loc = {clang_getCString(fname), (int)line, (int)col};
            diag_error(d, loc, "%s", clang_getCString(s));
            clang_disposeString(fname);
            clang_disposeString(s);
            errors++;
        }
        clang_disposeDiagnostic(dg);
    }
    (void)err;
    return errors;
}

struct GenSession {
    Arena *arena;
    Diag *diag;
    CXIndex index;
    CXTranslationUnit tu;
    Unit unit;
};

/* Parse and run every pass up to emission.  Returns the session (also on
 * user errors, so that callers can look at it); *rc is 0, 1 (user errors,
 * reported) or 2 (internal). */
GenSession *gen_open(const GenOptions *opt, int *rc)
{
    GenSession *s = calloc(1, sizeof *s);
    if (!s) {
        *rc = 2;
        return NULL;
    }
    s->arena = arena_new();
    s->diag = diag_new(opt->err_out ? opt->err_out : stderr);
    if (opt->sink)
        diag_set_sink(s->diag, opt->sink, opt->sink_ctx);
    s->index = clang_createIndex(0, 0);
    Arena *a = s->arena;
    Diag *d = s->diag;
    *rc = 1;

    /* flags: the user's, then ours (so theirs win), then quieting the pragma */
    const char **args = arena_alloc(a, sizeof *args * (size_t)(opt->ncflags + 4));
    int k = 0;
    for (int i = 0; i < opt->ncflags; i++)
        args[k++] = opt->cflags[i];
    const char *inc = getenv("TWINC_INCLUDE");
#ifdef TWINC_INCLUDE_DIR
    if (!inc || !*inc)
        inc = TWINC_INCLUDE_DIR;
#endif
    if (inc && *inc)
        args[k++] = arena_printf(a, "-I%s", inc);
    args[k++] = "-Wno-unknown-pragmas";
    enum CXErrorCode ec = clang_parseTranslationUnit2(s->index, opt->input, args, k, NULL, 0,
                                                      CXTranslationUnit_DetailedPreprocessingRecord |
                                                          CXTranslationUnit_KeepGoing,
                                                      &s->tu);
    if (ec != CXError_Success || !s->tu) {
        if (access(opt->input, R_OK) != 0)
            diag_error(d, (SrcLoc){0}, "cannot read '%s': %s", opt->input, strerror(errno));
        else
            diag_error(d, (SrcLoc){0}, "libclang could not parse '%s' (error %d)", opt->input, (int)ec);
        s->tu = NULL;
        return s;
    }
    if (report_clang_errors(s->tu, d, opt->err_out))
        return s;

    Unit *u = &s->unit;
    *u = (Unit){.arena = a, .diag = d, .file = opt->input};
    unsigned ntoks = 0;
    Tok *toks = file_tokens(u, s->tu, &ntoks);
    PtrVec pragmas = {0};
    pragma_scan(u, s->tu, toks, ntoks, &pragmas);
    if (!diag_count(d) && pragmas.n == 0) {
        diag_error(d, (SrcLoc){0}, "no '#pragma aad' function in '%s': nothing to generate", opt->input);
        return s;
    }
    lower_unit(u, s->tu, toks, ntoks, &pragmas);
    maybe_dump(opt, u, passes[0]);
    if (diag_count(d))
        return s;
    activity_unit(u);
    maybe_dump(opt, u, passes[1]);
    varying_unit(u);
    maybe_dump(opt, u, passes[2]);
    tbr_unit(u);
    maybe_dump(opt, u, passes[3]);
    if (!diag_count(d))
        *rc = 0;
    return s;
}

Unit *gen_unit(GenSession *s) { return s ? &s->unit : NULL; }

void gen_close(GenSession *s)
{
    if (!s)
        return;
    if (s->tu)
        clang_disposeTranslationUnit(s->tu);
    clang_disposeIndex(s->index);
    diag_free(s->diag);
    arena_free(s->arena);
    free(s);
}

int twinc_generate(const GenOptions *opt)
{
    int rc;
    GenSession *s = gen_open(opt, &rc);
    Buf c = {0}, h = {0};
    char *tmp_c = NULL, *tmp_h = NULL;
    if (rc != 0)
        goto cleanup;
    rc = 2;
    Unit *u = &s->unit;
    Arena *a = s->arena;
    Diag *d = s->diag;
    const char *out_c = opt->out_c ? opt->out_c : derive(a, opt->input, ".c", ".twin.c");
    const char *out_h = opt->out_h ? opt->out_h : derive(a, out_c, ".c", ".h");
    emit_unit(u, out_c, out_h, &c, &h);
    if (write_temp(a, out_c, &c, &tmp_c) || write_temp(a, out_h, &h, &tmp_h)) {
        diag_error(d, (SrcLoc){0}, "cannot write next to '%s': %s", out_c, strerror(errno));
        goto cleanup;
    }
    if (rename(tmp_h, out_h) != 0) {
        diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", out_h, strerror(errno));
        goto cleanup;
    }
    tmp_h = NULL;
    if (rename(tmp_c, out_c) != 0) {
        diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", out_c, strerror(errno));
        unlink(out_h);
        goto cleanup;
    }
    tmp_c = NULL;
    rc = 0;

cleanup:
    if (tmp_c)
        unlink(tmp_c);
    if (tmp_h)
        unlink(tmp_h);
    buf_free(&c);
    buf_free(&h);
    gen_close(s);
    return rc;
}

bool twinc_is_pass(const char *name)
{
    for (size_t i = 0; i < sizeof passes / sizeof *passes; i++)
        if (!strcmp(passes[i], name))
            return true;
    return false;
}
