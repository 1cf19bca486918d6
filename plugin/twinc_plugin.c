/*
 * twinc_plugin.c — the generator job both compiler plugins run.
 *
 * A job owns copies of everything it needs (input, output paths, flags), calls
 * twinc_generate() with a DiagSink that collects each diagnostic, and sends the
 * generator's own printed messages to /dev/null: the plugin re-reports every
 * collected diagnostic through its compiler, at the compiler's own location
 * for file:line:col, so the user sees one message in the compiler's format.
 *
 * Asynchronous jobs run on a thread started at the first `#pragma aad`; the
 * compiler goes on parsing, optimising and emitting code meanwhile, and the
 * plugin joins the thread at the end of the translation unit.  If the compiler
 * exits early (a fatal error), an atexit handler joins the thread before the
 * process tears libclang down under it.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "twinc_gen.h"
#include "twinc_plugin.h"

struct TpJob {
    char *input, *out_c, *out_h;
    TpArgs flags;
    TpDiag *diags;
    int ndiags, cap;
    int rc;
    int running;   /* a thread was started and not joined yet */
    pthread_t thread;
    struct TpJob *next_running;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("twinc plugin: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = xmalloc(la + lb + lc + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

/* ---- argument lists ---- */

void tp_args_add(TpArgs *a, const char *s)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 16;
        char **v = realloc(a->v, sizeof *v * (size_t)a->cap);
        if (!v)
            abort();
        a->v = v;
    }
    a->v[a->n++] = xstrdup(s);
}

void tp_args_add2(TpArgs *a, const char *prefix, const char *s)
{
    char *t = cat3(prefix, s, "");
    tp_args_add(a, t);
    free(t);
}

void tp_args_free(TpArgs *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    *a = (TpArgs){0};
}

/* ---- paths ---- */

char *tp_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

int tp_same_file(const char *a, const char *b)
{
    if (!strcmp(a, b))
        return 1;
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* mkdir -p; errors surface later, when the generator cannot write. */
static void make_dirs(const char *dir)
{
    char *p = xstrdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(p, 0777);
        *s = '/';
    }
    mkdir(p, 0777);
    free(p);
}

/* OUT_DIR/<basename of input without its extension><ext> */
static char *twin_path(const char *out_dir, const char *input, const char *ext)
{
    const char *base = strrchr(input, '/');
    base = base ? base + 1 : input;
    char *stem = xstrdup(base);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = '\0';
    char *dir = cat3(out_dir, "/", stem);
    char *path = cat3(dir, ext, "");
    free(dir);
    free(stem);
    return path;
}

/* ---- the job ---- */

static void collect(void *ctx, SrcLoc loc, int is_error, const char *msg)
{
    TpJob *j = ctx;
    if (j->ndiags == j->cap) {
        j->cap = j->cap ? 2 * j->cap : 8;
        TpDiag *d = realloc(j->diags, sizeof *d * (size_t)j->cap);
        if (!d)
            abort();
        j->diags = d;
    }
    j->diags[j->ndiags++] = (TpDiag){
        .file = loc.file && loc.line > 0 ? xstrdup(loc.file) : NULL,
        .line = loc.line,
        .col = loc.col,
        .is_error = is_error,
        .msg = xstrdup(msg),
    };
}

static void *run(void *arg)
{
    TpJob *j = arg;
    FILE *quiet = fopen("/dev/null", "w");
    GenOptions opt = {
        .input = j->input,
        .out_c = j->out_c,
        .out_h = j->out_h,
        .cflags = (const char *const *)j->flags.v,
        .ncflags = j->flags.n,
        .err_out = quiet ? quiet : stderr,
        .sink = collect,
        .sink_ctx = j,
    };
    j->rc = twinc_generate(&opt);
    if (j->rc != 0 && j->ndiags == 0)
        collect(j, (SrcLoc){0}, 1, "the generator failed without a diagnostic");
    if (quiet)
        fclose(quiet);
    return NULL;
}

/* Jobs whose thread is still to be joined, for the atexit handler. */
static TpJob *running_jobs;
static int atexit_done;

static void join(TpJob *j)
{
    if (!j->running)
        return;
    pthread_join(j->thread, NULL);
    j->running = 0;
    for (TpJob **p = &running_jobs; *p; p = &(*p)->next_running)
        if (*p == j) {
            *p = j->next_running;
            break;
        }
}

static void join_all_at_exit(void)
{
    while (running_jobs)
        join(running_jobs);
}

TpJob *tp_start(const char *input, const char *out_dir, const TpArgs *flags, int async)
{
    TpJob *j = xmalloc(sizeof *j);
    *j = (TpJob){0};
    j->input = xstrdup(input);
    make_dirs(out_dir);
    j->out_c = twin_path(out_dir, input, ".twin.c");
    j->out_h = twin_path(out_dir, input, ".twin.h");
    for (int i = 0; i < flags->n; i++)
        tp_args_add(&j->flags, flags->v[i]);
    if (async) {
        if (!atexit_done)
            atexit_done = atexit(join_all_at_exit) == 0;
        /* libclang parses on a thread of its own with a large stack; ours only waits for it */
        if (atexit_done && pthread_create(&j->thread, NULL, run, j) == 0) {
            j->running = 1;
            j->next_running = running_jobs;
            running_jobs = j;
            return j;
        }
    }
    run(j);
    return j;
}

int tp_wait(TpJob *j)
{
    join(j);
    return j->rc;
}

int tp_ndiags(const TpJob *j) { return j->ndiags; }
const TpDiag *tp_diag(const TpJob *j, int i) { return &j->diags[i]; }
const char *tp_out_c(const TpJob *j) { return j->out_c; }

void tp_free(TpJob *j)
{
    if (!j)
        return;
    join(j);
    for (int i = 0; i < j->ndiags; i++) {
        free(j->diags[i].file);
        free(j->diags[i].msg);
    }
    free(j->diags);
    tp_args_free(&j->flags);
    free(j->input);
    free(j->out_c);
    free(j->out_h);
    free(j);
}
