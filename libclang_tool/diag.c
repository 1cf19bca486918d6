/*
 * diag.c — errors that read like a compiler's.
 *
 *     pricing.c:12:17: error: call to 'foo', which is not #pragma aad ... in function 'price'
 *        12 |     double y = foo(x);
 *           |                ^
 *
 * The source line is read back from the file named by the location.  Every
 * error is counted; the driver writes no output when the count is non-zero.
 * An optional sink receives each message too (the compiler plugins turn them
 * into their own diagnostics).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twinc_gen.h"

struct Diag {
    FILE *out;
    int errors;
    DiagSink sink;
    void *ctx;
};

Diag *diag_new(FILE *out)
{
    Diag *d = calloc(1, sizeof *d);
    if (!d)
        abort();
    d->out = out;
    return d;
}

void diag_free(Diag *d) { free(d); }
int diag_count(const Diag *d) { return d->errors; }

void diag_set_sink(Diag *d, DiagSink sink, void *ctx)
{
    d->sink = sink;
    d->ctx = ctx;
}

/* Print line `line` of `file` with a caret under column `col` (1-based). */
static void show_source(FILE *out, const char *file, int line, int col)
{
    FILE *f = file ? fopen(file, "r") : NULL;
    if (!f || line <= 0)
        goto cleanup;
    char text[4096];
    int n = 0;
    while (fgets(text, sizeof text, f)) {
        size_t len = strlen(text);
        bool whole = len > 0 && text[len - 1] == '\n';
        if (++n == line) {
            if (whole)
                text[--len] = '\0';
            fprintf(out, "%5d | %s\n      | ", line, text);
            for (int i = 1; i < col && (size_t)(i - 1) < len; i++)
                fputc(text[i - 1] == '\t' ? '\t' : ' ', out);
            fputs("^\n", out);
            break;
        }
        /* a line longer than the buffer continues without counting */
        while (!whole && fgets(text, sizeof text, f)) {
            len = strlen(text);
            whole = len > 0 && text[len - 1] == '\n';
        }
    }
cleanup:
    if (f)
        fclose(f);
}

static void report(Diag *d, SrcLoc loc, int is_error, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (is_error)
        d->errors++;
    if (d->sink)
        d->sink(d->ctx, loc, is_error, msg);
    if (!d->out)
        return;
    const char *kind = is_error ? "error" : "note";
    if (loc.file && loc.line > 0)
        fprintf(d->out, "%s:%d:%d: %s: %s\n", loc.file, loc.line, loc.col, kind, msg);
    else
        fprintf(d->out, "twinc: %s: %s\n", kind, msg);
    if (loc.file && loc.line > 0)
        show_source(d->out, loc.file, loc.line, loc.col);
}

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, 1, fmt, ap);
    va_end(ap);
}

void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, 0, fmt, ap);
    va_end(ap);
}
