/*
 * test_corpus.c — the gradient-check corpus, run generically through the
 * kernel registry.
 *
 * Every file in tests/corpus/ is built, with its generated twins, into one
 * shared library; TWINC_CORPUS_LIBS names those libraries (space separated).
 * For every library and every kernel in its registry this suite checks, for
 * n = 0, 1, 7 and 1000 lanes and several argument layouts per n:
 *
 *   - the batched primal equals the user's scalar function (the registry's
 *     `reference` entry) bit for bit, lane by lane, for every output;
 *   - the tangent and adjoint twins return the same values, bit for bit;
 *   - every adjoint partial agrees with a central finite difference of the
 *     primal:  |a - b| / max(1, |a| + |b|) <= 1e-6;
 *   - the tangent and adjoint agree in the dot-product test, per lane:
 *     |<ydot, ybar> - <xdot, xbar>| / max(sum |terms|, floor) <= 1e-12
 *     (sum |terms| >= |l| + |r|; the floor is explained at the check);
 *   - adjoints accumulate with += and are summed over lanes when the
 *     accumulator has lane stride 0;
 *   - with n = 0 a twin returns TWINC_OK and touches nothing, even given
 *     NULL pointers;
 *   - a uniform parameter given a lane stride is refused (TWINC_EUNIFORM).
 *
 * Argument layouts vary with the trial number: an input is shared (lane
 * stride 0) when (i + trial) % 3 == 0, all inputs are shared in one trial
 * and none in another, some trials use lane stride 2 (the gaps are poisoned
 * with NaN for inputs and checked for outputs); uniform parameters are always
 * shared.  Doubles are drawn from [0.5, 1.5] but never within 1e-4 of 0.5,
 * 0.75, 1.0, 1.25 or 1.5 — the corpus puts every branch point and int
 * conversion step of an active input there (see tests/corpus/branches.c), so
 * neither a sample nor a finite-difference step (1e-6) straddles a kink.
 * Integers are drawn from 1..4.  All random numbers come from splitmix64
 * seeded by the kernel name, n and trial, so a failure reproduces exactly
 * (TWINC_CORPUS_SEED=N picks other streams, to explore).
 *
 * This file depends only on runtime/twinc.h (types and constants) and dlopen,
 * not on libtwinc, so it stays independent of the code under test.
 *
 * MIT licence — see LICENSE.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twinc.h"

enum {
    MAXP = 64,      /* parameters per kernel */
    MAXK = 1024,    /* kernels per library */
    MAXLIBS = 256,
    GUARD = 4,      /* sentinel elements after every output buffer */
    NTRIALS = 6,    /* argument layouts per lane count */
    FD_SAMPLES = 64 /* lanes checked against finite differences when n > 7 */
};

static const size_t LANE_COUNTS[] = {0, 1, 7, 1000};
#define NLANE_COUNTS (sizeof LANE_COUNTS / sizeof LANE_COUNTS[0])

static const double FD_STEP = 1e-6;   /* relative to max(1, |x|) */
static const double FD_TOL = 1e-6;
static const double DOT_TOL = 1e-12;
static const double SUM_TOL = 1e-12;
static const double KINK_MARGIN = 1e-4;
static const double SENTINEL = -8.125e77; /* written into output gaps and guards */
static const long INT_POISON = 1000003;   /* written into integer input gaps */

/* ---- the libraries under test ---- */

static char *g_lib_paths[MAXLIBS];
static int g_nlibs;

typedef struct Lib {
    const char *path;
    const char *name; /* basename, for messages */
    void *handle;
    int nk;
    const twinc_kernel *k[MAXK];
    const twinc_registry *reg[MAXK]; /* the registry each kernel came from */
} Lib;

static void lib_open(Lib *L, int index)
{
    memset(L, 0, sizeof *L);
    ck_assert_msg(index >= 0 && index < g_nlibs, "no library number %d", index);
    L->path = g_lib_paths[index];
    const char *slash = strrchr(L->path, '/');
    L->name = slash ? slash + 1 : L->path;
    L->handle = dlopen(L->path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(L->handle != NULL, "%s: dlopen failed: %s", L->path, dlerror());
    void *sym = dlsym(L->handle, "twinc_registries");
    ck_assert_msg(sym != NULL, "%s: no symbol twinc_registries", L->name);
    twinc_registries_fn fn;
    memcpy(&fn, &sym, sizeof fn); /* object pointer to function pointer, POSIX style */
    size_t count = 0;
    const twinc_registry *const *regs = fn(&count);
    ck_assert_msg(count >= 1 && regs != NULL, "%s: twinc_registries returned %zu registries",
                  L->name, count);
    for (size_t r = 0; r < count; r++) {
        const twinc_registry *R = regs[r];
        ck_assert_msg(R != NULL, "%s: registry %zu is NULL", L->name, r);
        ck_assert_msg(R->abi_version == TWINC_ABI_VERSION,
                      "%s: registry %zu has ABI version %d, expected %d", L->name, r,
                      R->abi_version, TWINC_ABI_VERSION);
        ck_assert_msg(R->nkernels >= 1 && R->kernels != NULL, "%s: registry %zu has %d kernels",
                      L->name, r, R->nkernels);
        for (int i = 0; i < R->nkernels; i++) {
            ck_assert_msg(L->nk < MAXK, "%s: more than %d kernels", L->name, MAXK);
            L->reg[L->nk] = R;
            L->k[L->nk++] = &R->kernels[i];
        }
    }
}

static void lib_close(Lib *L)
{
    if (L->handle)
        dlclose(L->handle);
    L->handle = NULL;
}

/* ---- failures: the first per kernel is recorded, the test goes on ---- */

/* A check that finds a wrong number calls report_failure(), which records the message
 * and jumps back to for_each_case; the next kernel is checked, and the test
 * fails at the end listing every failing kernel (a crash still ends it). */
static jmp_buf *g_fail_jmp;
static char g_fail_msg[1024];

static void report_failure(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void report_failure(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_fail_msg, sizeof g_fail_msg, fmt, ap);
    va_end(ap);
    if (g_fail_jmp)
        longjmp(*g_fail_jmp, 1);
    ck_abort_msg("%s", g_fail_msg);
    abort(); /* not reached */
}

/* ---- deterministic random numbers: splitmix64 ---- */

typedef struct Rng {
    uint64_t s;
} Rng;

static uint64_t rng_next(Rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(Rng *r) /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static double rng_sym(Rng *r) /* [-1, 1) */
{
    return 2.0 * rng_unit(r) - 1.0;
}

/* A double in [0.5, 1.5], at least KINK_MARGIN from every quarter point. */
static double rng_domain(Rng *r)
{
    for (;;) {
        double v = 0.5 + rng_unit(r);
        double q = v * 4.0;
        if (fabs(q - nearbyint(q)) >= 4.0 * KINK_MARGIN)
            return v;
    }
}

static long rng_int(Rng *r) /* 1..4 */
{
    return 1 + (long)(rng_next(r) % 4u);
}

/* TWINC_CORPUS_SEED (default 0) shifts every stream: for exploring, not CI. */
static uint64_t g_seed;

static Rng rng_for(const Lib *L, const twinc_kernel *k, size_t n, int trial, unsigned purpose)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over library and kernel names */
    for (const char *s = L->name; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    for (const char *s = k->name; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    Rng r = {h ^ ((uint64_t)n << 20) ^ ((uint64_t)trial << 8) ^ purpose ^ (g_seed << 40)};
    rng_next(&r);
    return r;
}

/* ---- memory: one arena per kernel and trial ---- */

typedef struct Arena {
    void **blocks;
    size_t n, cap;
} Arena;

static void *arena_alloc(Arena *a, size_t bytes)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->blocks = realloc(a->blocks, a->cap * sizeof *a->blocks);
        ck_assert_msg(a->blocks != NULL, "out of memory");
    }
    void *p = calloc(1, bytes ? bytes : 1);
    ck_assert_msg(p != NULL, "out of memory");
    a->blocks[a->n++] = p;
    return p;
}

static void arena_free(Arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->blocks[i]);
    free(a->blocks);
    memset(a, 0, sizeof *a);
}

/* ---- parameters ---- */

static size_t type_size(twinc_type t)
{
    switch (t) {
    case TWINC_T_DOUBLE: return sizeof(double);
    case TWINC_T_INT: return sizeof(int);
    case TWINC_T_LONG: return sizeof(long);
    case TWINC_T_UINT: return sizeof(unsigned);
    case TWINC_T_ULONG: return sizeof(unsigned long);
    }
    return 0;
}

static const char *type_name(twinc_type t)
{
    switch (t) {
    case TWINC_T_DOUBLE: return "double";
    case TWINC_T_INT: return "int";
    case TWINC_T_LONG: return "long";
    case TWINC_T_UINT: return "unsigned";
    case TWINC_T_ULONG: return "unsigned long";
    }
    return "?";
}

static int is_output(const twinc_param *p)
{
    return p->role == TWINC_ROLE_OUT || p->role == TWINC_ROLE_RET;
}

static int is_active_input(const twinc_param *p)
{
    return p->role == TWINC_ROLE_IN && p->type == TWINC_T_DOUBLE && (p->flags & TWINC_PARAM_ACTIVE);
}

static int is_uniform(const twinc_param *p)
{
    return (p->flags & TWINC_PARAM_UNIFORM) != 0;
}

/* Elements a buffer for n lanes at lane stride ls needs (at least one). */
static size_t lane_extent(size_t n, ptrdiff_t ls)
{
    if (ls == 0 || n == 0)
        return 1;
    return (n - 1) * (size_t)ls + 1;
}

static double *dptr(twinc_arg a, size_t lane)
{
    return (double *)a.p + (ptrdiff_t)lane * a.ls;
}

static double dget(twinc_arg a, size_t lane)
{
    return *dptr(a, lane);
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static uint64_t bits(double a)
{
    uint64_t u;
    memcpy(&u, &a, sizeof u);
    return u;
}

static double rho(double a, double b, double floor)
{
    double s = fabs(a) + fabs(b);
    return fabs(a - b) / (s > floor ? s : floor);
}

/* ---- one set of arguments for one kernel call ---- */

/* A Case holds the values (val) of every parameter for n lanes under the
 * layout of one trial.  Inputs get random values; outputs get sentinel-filled
 * buffers (plus GUARD sentinels past the end) that checks can inspect. */
typedef struct Case {
    const Lib *L;
    const twinc_kernel *k;
    size_t n;
    int trial;
    twinc_arg val[MAXP];
} Case;

/* Lane stride of input i in a trial. */
static ptrdiff_t input_stride(const twinc_param *p, int i, int trial)
{
    if (is_uniform(p))
        return 0;
    if (trial == 5)
        return 0; /* everything shared: the scalar-broadcast call */
    if (trial == 4)
        return 1; /* nothing shared */
    if ((i + trial) % 3 == 0)
        return 0;
    return trial == 3 ? 2 : 1;
}

static ptrdiff_t output_stride(int trial)
{
    return trial == 2 || trial == 3 ? 2 : 1;
}

static twinc_arg new_output(Arena *ar, size_t n, ptrdiff_t ls)
{
    size_t e = lane_extent(n, ls);
    double *p = arena_alloc(ar, (e + GUARD) * sizeof(double));
    for (size_t j = 0; j < e + GUARD; j++)
        p[j] = SENTINEL;
    return (twinc_arg){p, ls, 0};
}

/* A double buffer with the given lane values; gaps hold NaN. */
static twinc_arg new_doubles(Arena *ar, size_t n, ptrdiff_t ls, const double *lanes)
{
    size_t e = lane_extent(n, ls);
    double *p = arena_alloc(ar, e * sizeof(double));
    for (size_t j = 0; j < e; j++)
        p[j] = NAN;
    twinc_arg a = {p, ls, 0};
    if (ls == 0)
        p[0] = lanes[0];
    else
        for (size_t l = 0; l < n; l++)
            *dptr(a, l) = lanes[l];
    return a;
}

static void set_int(void *base, twinc_type t, size_t j, long v)
{
    switch (t) {
    case TWINC_T_INT: ((int *)base)[j] = (int)v; break;
    case TWINC_T_LONG: ((long *)base)[j] = v; break;
    case TWINC_T_UINT: ((unsigned *)base)[j] = (unsigned)v; break;
    case TWINC_T_ULONG: ((unsigned long *)base)[j] = (unsigned long)v; break;
    case TWINC_T_DOUBLE: ((double *)base)[j] = (double)v; break;
    }
}

static void case_new(Case *c, Arena *ar, const Lib *L, const twinc_kernel *k, size_t n,
                     int trial)
{
    memset(c, 0, sizeof *c);
    c->L = L;
    c->k = k;
    c->n = n;
    c->trial = trial;
    if (k->nparams < 0 || k->nparams > MAXP)
        report_failure("%s: kernel %s has %d parameters (at most %d supported)", L->name,
                       k->name, k->nparams, MAXP);
    Rng rng = rng_for(L, k, n, trial, 1);
    size_t nl = n ? n : 1;
    double *tmp = arena_alloc(ar, nl * sizeof(double));
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        if (is_output(p)) {
            c->val[i] = new_output(ar, n, output_stride(trial));
            continue;
        }
        ptrdiff_t ls = input_stride(p, i, trial);
        size_t e = lane_extent(n, ls);
        if (p->type == TWINC_T_DOUBLE) {
            for (size_t l = 0; l < nl; l++)
                tmp[l] = rng_domain(&rng);
            c->val[i] = new_doubles(ar, n, ls, tmp);
        } else {
            void *base = arena_alloc(ar, e * type_size(p->type));
            for (size_t j = 0; j < e; j++)
                set_int(base, p->type, j, INT_POISON);
            for (size_t l = 0; l < (ls ? nl : 1); l++)
                set_int(base, p->type, l * (size_t)ls, rng_int(&rng));
            c->val[i] = (twinc_arg){base, ls, 0};
        }
    }
}

/* Fresh sentinel-filled buffers for every output of c. */
static void case_fresh_outputs(Case *c, Arena *ar)
{
    for (int i = 0; i < c->k->nparams; i++)
        if (is_output(&c->k->params[i]))
            c->val[i] = new_output(ar, c->n, c->val[i].ls);
}

/* A short description of the layout, for messages. */
static const char *layout(const Case *c)
{
    static char buf[MAXP * 24];
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < c->k->nparams && used + 40 < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s:ls=%td", i ? " " : "",
                                 c->k->params[i].name, c->val[i].ls);
    return buf;
}

#define WHERE "%s: kernel %s, n=%zu, trial %d (%s)"
#define WHERE_ARGS(c) (c)->L->name, (c)->k->name, (c)->n, (c)->trial, layout(c)

/* Output buffer checks: lanes not written by a twin keep the sentinel, every
 * gap between lanes and every guard element past the end stay untouched. */
static void check_output_gaps(const Case *c, twinc_arg a, const char *what, const char *param)
{
    const double *p = a.p;
    size_t e = lane_extent(c->n, a.ls);
    for (size_t j = 0; j < e + GUARD; j++) {
        int lane_slot = j < e && (c->n > 0 && (a.ls == 0 ? j == 0 : j % (size_t)a.ls == 0));
        if (!lane_slot && !same_bits(p[j], SENTINEL))
            report_failure(WHERE ": %s wrote %.17g into element %zu of %s, which is not a lane "
                           "(lane stride %td, %zu lanes)",
                           WHERE_ARGS(c), what, p[j], j, param, a.ls, c->n);
    }
}

static twinc_workspace *workspace(const Case *c, Arena *ar, twinc_workspace *ws)
{
    if (!c->k->workspace)
        return NULL;
    size_t bytes = c->k->workspace(c->n, c->val);
    ws->base = arena_alloc(ar, bytes);
    ws->bytes = bytes;
    return ws;
}

static void expect_ok(const Case *c, int status, const char *twin)
{
    if (status != TWINC_OK)
        report_failure(WHERE ": %s returned status %d, expected 0", WHERE_ARGS(c), twin, status);
}

static void run_primal(Case *c, Arena *ar, twinc_primal_fn f, const char *twin)
{
    twinc_workspace ws;
    expect_ok(c, f(c->n, c->val, workspace(c, ar, &ws)), twin);
}

/* dot or bar arguments: zero-filled per-lane buffers (ls) for active inputs,
 * {NULL} for passive parameters, and for outputs what the caller sets. */
static void derivs_zero(const Case *c, Arena *ar, twinc_arg *d, ptrdiff_t ls)
{
    for (int i = 0; i < c->k->nparams; i++) {
        d[i] = (twinc_arg){NULL, 0, 0};
        if (is_active_input(&c->k->params[i])) {
            size_t e = lane_extent(c->n, ls);
            d[i] = (twinc_arg){arena_alloc(ar, e * sizeof(double)), ls, 0};
        }
    }
}

/* Random doubles in [-1, 1) for n lanes at lane stride ls (0: one value). */
static twinc_arg random_doubles(Arena *ar, Rng *r, size_t n, ptrdiff_t ls)
{
    size_t nl = n ? n : 1;
    double *tmp = arena_alloc(ar, nl * sizeof(double));
    for (size_t l = 0; l < nl; l++)
        tmp[l] = rng_sym(r);
    return new_doubles(ar, n, ls, tmp);
}

static twinc_arg constant_doubles(Arena *ar, size_t n, ptrdiff_t ls, double v)
{
    size_t nl = n ? n : 1;
    double *tmp = arena_alloc(ar, nl * sizeof(double));
    for (size_t l = 0; l < nl; l++)
        tmp[l] = v;
    return new_doubles(ar, n, ls, tmp);
}

/* Lanes to check: all for n <= 7, else the first, the last and a sample. */
static size_t pick_lanes(size_t n, Rng *r, size_t *lanes)
{
    if (n <= 7) {
        for (size_t l = 0; l < n; l++)
            lanes[l] = l;
        return n;
    }
    size_t m = 0;
    lanes[m++] = 0;
    lanes[m++] = n - 1;
    while (m < FD_SAMPLES)
        lanes[m++] = (size_t)(rng_next(r) % n);
    return m;
}

typedef void (*kernel_check)(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                             Arena *ar);

/* Run a check for every kernel of library lib_index, every lane count and
 * trial; record the first failure of each kernel and fail at the end. */
static void for_each_case(int lib_index, kernel_check check, int with_n0)
{
    enum { REPORT = 3500 }; /* check truncates messages at 4 KiB (CK_MAX_MSG_SIZE) */
    Lib *L = malloc(sizeof *L);
    Arena *ar = calloc(1, sizeof *ar);
    char *report = calloc(1, REPORT);
    ck_assert_msg(L && ar && report, "out of memory");
    lib_open(L, lib_index);
    int nfailed = 0, nomitted = 0;
    size_t used = 0;
    for (int ki = 0; ki < L->nk; ki++) {
        jmp_buf jb;
        if (setjmp(jb) == 0) {
            g_fail_jmp = &jb;
            for (size_t ni = 0; ni < NLANE_COUNTS; ni++) {
                if (LANE_COUNTS[ni] == 0 && !with_n0)
                    continue;
                for (int trial = 0; trial < NTRIALS; trial++) {
                    check(L, L->k[ki], LANE_COUNTS[ni], trial, ar);
                    arena_free(ar);
                }
            }
        } else {
            arena_free(ar);
            size_t len = strlen(g_fail_msg) + 3;
            if (used + len < REPORT)
                used += (size_t)snprintf(report + used, REPORT - used, "\n  %s", g_fail_msg);
            else
                nomitted++;
            nfailed++;
        }
        g_fail_jmp = NULL;
    }
    int nk = L->nk;
    lib_close(L);
    free(L);
    free(ar);
    if (nfailed) {
        /* check keeps one message per test: list every failing kernel in it */
        static char msg[REPORT + 160];
        snprintf(msg, sizeof msg, "%d of %d kernels fail:%s%s", nfailed, nk, report,
                 nomitted ? "\n  (more failing kernels omitted)" : "");
        free(report);
        ck_abort_msg("%s", msg);
    }
    free(report);
}

/* ==== the registry ==== */

static int count_pragmas(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[4096];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s != '#')
            continue;
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncmp(s, "pragma", 6) != 0)
            continue;
        s += 6;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncmp(s, "aad", 3) == 0 && (s[3] == 0 || s[3] == ' ' || s[3] == '\t' ||
                                          s[3] == '\n' || s[3] == '\r'))
            count++;
    }
    fclose(f);
    return count;
}

START_TEST(test_registry_describes_every_kernel)
{
    Lib *L = malloc(sizeof *L);
    ck_assert_msg(L != NULL, "out of memory");
    lib_open(L, _i);
    for (int ki = 0; ki < L->nk; ki++) {
        const twinc_kernel *k = L->k[ki];
        ck_assert_msg(k->name != NULL, "%s: kernel %d has no name", L->name, ki);
        ck_assert_msg(k->primal && k->tangent && k->adjoint && k->reference,
                      "%s: kernel %s lacks an entry point (present: primal %d tangent %d "
                      "adjoint %d reference %d)",
                      L->name, k->name, k->primal != NULL, k->tangent != NULL,
                      k->adjoint != NULL, k->reference != NULL);
        ck_assert_msg(k->nparams >= 1 && k->nparams <= MAXP && k->params != NULL,
                      "%s: kernel %s has %d parameters", L->name, k->name, k->nparams);
        ck_assert_msg(dlsym(L->handle, k->name) != NULL,
                      "%s: kernel %s: the user's function %s is not in the library", L->name,
                      k->name, k->name);
        int outputs = 0;
        for (int i = 0; i < k->nparams; i++) {
            const twinc_param *p = &k->params[i];
            ck_assert_msg(p->name != NULL, "%s: kernel %s: parameter %d has no name", L->name,
                          k->name, i);
            ck_assert_msg(type_size(p->type) != 0, "%s: kernel %s: parameter %s has type %d",
                          L->name, k->name, p->name, (int)p->type);
            ck_assert_msg(p->role == TWINC_ROLE_IN || p->role == TWINC_ROLE_OUT ||
                              p->role == TWINC_ROLE_RET,
                          "%s: kernel %s: parameter %s has role %d", L->name, k->name, p->name,
                          (int)p->role);
            ck_assert_msg(p->length == NULL, "%s: kernel %s: scalar parameter %s has length %s",
                          L->name, k->name, p->name, p->length);
            if (p->role == TWINC_ROLE_RET)
                ck_assert_msg(i == k->nparams - 1 && strcmp(p->name, "return") == 0,
                              "%s: kernel %s: return value is parameter %d named %s, expected "
                              "the last, named \"return\"",
                              L->name, k->name, i, p->name);
            if (is_output(p)) {
                outputs++;
                ck_assert_msg(p->type == TWINC_T_DOUBLE,
                              "%s: kernel %s: output %s has type %s, expected double", L->name,
                              k->name, p->name, type_name(p->type));
                ck_assert_msg(!is_uniform(p), "%s: kernel %s: output %s is flagged uniform",
                              L->name, k->name, p->name);
            }
            if (p->type != TWINC_T_DOUBLE)
                ck_assert_msg(!(p->flags & TWINC_PARAM_ACTIVE),
                              "%s: kernel %s: %s parameter %s is flagged active", L->name,
                              k->name, type_name(p->type), p->name);
        }
        ck_assert_msg(outputs >= 1, "%s: kernel %s has no output", L->name, k->name);
    }
    /* Where the source is readable from here, no #pragma aad was dropped. */
    const twinc_registry *seen[MAXK];
    int nseen = 0;
    for (int ki = 0; ki < L->nk; ki++) {
        int dup = 0;
        for (int s = 0; s < nseen; s++)
            dup |= seen[s] == L->reg[ki];
        if (dup)
            continue;
        seen[nseen++] = L->reg[ki];
        int pragmas = L->reg[ki]->source ? count_pragmas(L->reg[ki]->source) : -1;
        if (pragmas >= 0)
            ck_assert_msg(pragmas == L->reg[ki]->nkernels,
                          "%s: registry of %s has %d kernels, the source has %d #pragma aad",
                          L->name, L->reg[ki]->source, L->reg[ki]->nkernels, pragmas);
    }
    lib_close(L);
    free(L);
}
END_TEST

/* ==== a. the batched primal is the user's function, bit for bit ==== */

static void compare_outputs(const Case *a, const Case *b, const char *what_a,
                            const char *what_b)
{
    const twinc_kernel *k = a->k;
    for (int i = 0; i < k->nparams; i++) {
        if (!is_output(&k->params[i]))
            continue;
        for (size_t l = 0; l < a->n; l++) {
            double x = dget(a->val[i], l), y = dget(b->val[i], l);
            if (!same_bits(x, y))
                report_failure(WHERE ": output %s, lane %zu: %s %.17g (0x%016llx) != %s %.17g "
                               "(0x%016llx)",
                               WHERE_ARGS(a), k->params[i].name, l, what_a, x,
                               (unsigned long long)bits(x), what_b, y,
                               (unsigned long long)bits(y));
        }
        check_output_gaps(a, a->val[i], what_a, k->params[i].name);
        check_output_gaps(b, b->val[i], what_b, k->params[i].name);
    }
}

static void check_primal_vs_reference(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                                      Arena *ar)
{
    Case c, ref;
    case_new(&c, ar, L, k, n, trial);
    ref = c;
    case_fresh_outputs(&ref, ar);
    run_primal(&ref, ar, k->reference, "reference");
    run_primal(&c, ar, k->primal, "primal");
    compare_outputs(&c, &ref, "primal", "reference");
    /* The corpus must stay finite on the harness domain. */
    for (int i = 0; i < k->nparams; i++)
        if (is_output(&k->params[i]))
            for (size_t l = 0; l < n; l++)
                if (!isfinite(dget(ref.val[i], l)))
                    report_failure(WHERE ": reference output %s is %g at lane %zu: the corpus "
                                   "function leaves the harness domain",
                                   WHERE_ARGS(&c), k->params[i].name, dget(ref.val[i], l), l);
}

START_TEST(test_primal_equals_scalar_reference_bitwise)
{
    for_each_case(_i, check_primal_vs_reference, 1);
}
END_TEST

/* ==== b. tangent and adjoint twins return the primal's values ==== */

static void check_twin_values(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                              Arena *ar)
{
    Case c, t, a;
    twinc_arg dot[MAXP], bar[MAXP];
    twinc_workspace ws;
    Rng rng = rng_for(L, k, n, trial, 2);
    case_new(&c, ar, L, k, n, trial);
    t = c;
    a = c;
    case_fresh_outputs(&t, ar);
    case_fresh_outputs(&a, ar);
    run_primal(&c, ar, k->primal, "primal");

    derivs_zero(&c, ar, dot, 1);
    derivs_zero(&c, ar, bar, 1);
    for (int i = 0; i < k->nparams; i++) {
        if (is_active_input(&k->params[i]))
            dot[i] = random_doubles(ar, &rng, n, trial % 2);
        if (is_output(&k->params[i])) {
            dot[i] = new_output(ar, n, 1);
            bar[i] = random_doubles(ar, &rng, n, trial % 2);
        }
    }
    expect_ok(&t, k->tangent(n, t.val, dot, workspace(&t, ar, &ws)), "tangent");
    compare_outputs(&t, &c, "tangent", "primal");
    expect_ok(&a, k->adjoint(n, a.val, bar, workspace(&a, ar, &ws)), "adjoint");
    compare_outputs(&a, &c, "adjoint", "primal");
}

START_TEST(test_tangent_and_adjoint_values_equal_primal)
{
    for_each_case(_i, check_twin_values, 1);
}
END_TEST

/* A NULL value pointer for an output means "not wanted": the derivatives are
 * the same as when the values are written. */
static void check_unwanted_values(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                                  Arena *ar)
{
    Case c, u;
    twinc_arg dot[MAXP], dot_u[MAXP], bar[MAXP], bar_u[MAXP];
    twinc_workspace ws;
    Rng rng = rng_for(L, k, n, trial, 3);
    if (n == 0)
        return;
    case_new(&c, ar, L, k, n, trial);
    u = c;
    for (int i = 0; i < k->nparams; i++)
        if (is_output(&k->params[i]))
            u.val[i].p = NULL;
    derivs_zero(&c, ar, dot, 1);
    derivs_zero(&c, ar, dot_u, 1);
    derivs_zero(&c, ar, bar, 1);
    derivs_zero(&c, ar, bar_u, 1);
    for (int i = 0; i < k->nparams; i++) {
        if (is_active_input(&k->params[i]))
            dot[i] = dot_u[i] = random_doubles(ar, &rng, n, 1);
        if (is_output(&k->params[i])) {
            dot[i] = new_output(ar, n, 1);
            dot_u[i] = new_output(ar, n, 1);
            bar[i] = bar_u[i] = random_doubles(ar, &rng, n, 1);
        }
    }
    expect_ok(&c, k->tangent(n, c.val, dot, workspace(&c, ar, &ws)), "tangent");
    expect_ok(&u, k->tangent(n, u.val, dot_u, workspace(&c, ar, &ws)),
              "tangent with NULL output values");
    expect_ok(&c, k->adjoint(n, c.val, bar, workspace(&c, ar, &ws)), "adjoint");
    expect_ok(&u, k->adjoint(n, u.val, bar_u, workspace(&c, ar, &ws)),
              "adjoint with NULL output values");
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        const twinc_arg *x = is_output(p) ? dot : is_active_input(p) ? bar : NULL;
        const twinc_arg *y = is_output(p) ? dot_u : bar_u;
        if (!x)
            continue;
        for (size_t l = 0; l < n; l++)
            if (!same_bits(dget(x[i], l), dget(y[i], l)))
                report_failure(WHERE ": %s of %s, lane %zu: %.17g with output values, %.17g "
                               "with NULL output values",
                               WHERE_ARGS(&c), is_output(p) ? "tangent" : "adjoint", p->name, l,
                               dget(x[i], l), dget(y[i], l));
    }
}

START_TEST(test_null_output_values_leave_derivatives_unchanged)
{
    for_each_case(_i, check_unwanted_values, 0);
}
END_TEST

/* ==== c. adjoints agree with central finite differences ==== */

/* Central differences of every output with respect to active input j, for
 * every lane at once (lanes are independent, so moving input j of all lanes
 * together moves each lane's outputs by its own partial).  fd[o * n + l]. */
static void central_differences(Case *c, Arena *ar, int j, double *fd)
{
    const twinc_kernel *k = c->k;
    size_t n = c->n, nsteps = c->val[j].ls ? n : 1;
    double *x0 = arena_alloc(ar, nsteps * sizeof(double));
    double *xs[2] = {arena_alloc(ar, nsteps * sizeof(double)),
                     arena_alloc(ar, nsteps * sizeof(double))};
    Case side[2] = {*c, *c};
    for (size_t l = 0; l < nsteps; l++) {
        x0[l] = dget(c->val[j], l);
        xs[0][l] = x0[l] + FD_STEP * fmax(1.0, fabs(x0[l]));
        xs[1][l] = x0[l] - FD_STEP * fmax(1.0, fabs(x0[l]));
    }
    for (int s = 0; s < 2; s++) {
        case_fresh_outputs(&side[s], ar);
        for (size_t l = 0; l < nsteps; l++)
            *dptr(c->val[j], l) = xs[s][l];
        run_primal(&side[s], ar, k->primal, "primal");
    }
    for (size_t l = 0; l < nsteps; l++)
        *dptr(c->val[j], l) = x0[l];
    int o = 0;
    for (int i = 0; i < k->nparams; i++) {
        if (!is_output(&k->params[i]))
            continue;
        for (size_t l = 0; l < n; l++) {
            size_t m = c->val[j].ls ? l : 0;
            /* xs[0] - xs[1] is exact: the points are within a factor 2 */
            fd[(size_t)o * n + l] = (dget(side[0].val[i], l) - dget(side[1].val[i], l)) /
                                    (xs[0][m] - xs[1][m]);
        }
        o++;
    }
}

static void check_adjoint_vs_fd(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                                Arena *ar)
{
    Case c;
    twinc_arg bar[MAXP];
    twinc_workspace ws;
    Rng rng = rng_for(L, k, n, trial, 4);
    case_new(&c, ar, L, k, n, trial);
    int nout = 0;
    for (int i = 0; i < k->nparams; i++)
        nout += is_output(&k->params[i]);
    size_t lanes[FD_SAMPLES];
    size_t nlanes = pick_lanes(n, &rng, lanes);

    double *fd[MAXP] = {0};
    for (int j = 0; j < k->nparams; j++)
        if (is_active_input(&k->params[j])) {
            fd[j] = arena_alloc(ar, (size_t)nout * n * sizeof(double));
            central_differences(&c, ar, j, fd[j]);
        }

    int o = 0;
    for (int i = 0; i < k->nparams; i++) {
        if (!is_output(&k->params[i]))
            continue;
        /* Seed output i with 1 (shared seed on odd trials), the others with 0;
         * per-lane accumulators give each lane's own partials. */
        Case a = c;
        case_fresh_outputs(&a, ar);
        derivs_zero(&c, ar, bar, 1);
        for (int m = 0; m < k->nparams; m++)
            if (is_output(&k->params[m]))
                bar[m] = constant_doubles(ar, n, trial % 2 ? 0 : 1, m == i ? 1.0 : 0.0);
        expect_ok(&a, k->adjoint(n, a.val, bar, workspace(&a, ar, &ws)), "adjoint");
        for (int j = 0; j < k->nparams; j++) {
            if (!is_active_input(&k->params[j]))
                continue;
            for (size_t s = 0; s < nlanes; s++) {
                size_t l = lanes[s];
                double adj = dget(bar[j], l), fdv = fd[j][(size_t)o * n + l];
                double r = rho(adj, fdv, 1.0);
                if (!(r <= FD_TOL))
                    report_failure(WHERE ": d %s / d %s at lane %zu: adjoint %.17g, central "
                                   "difference %.17g (rho %.3g > %g)",
                                   WHERE_ARGS(&c), k->params[i].name, k->params[j].name, l, adj,
                                   fdv, r, FD_TOL);
            }
        }
        o++;
    }
}

START_TEST(test_adjoint_matches_central_differences)
{
    for_each_case(_i, check_adjoint_vs_fd, 0);
}
END_TEST

/* ==== d. tangent and adjoint pass the dot-product test ==== */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check_dot_product(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                              Arena *ar)
{
    Case c, t, a;
    twinc_arg dot[MAXP], bar[MAXP];
    twinc_workspace ws;
    Rng rng = rng_for(L, k, n, trial, 5);
    case_new(&c, ar, L, k, n, trial);
    t = c;
    a = c;
    case_fresh_outputs(&t, ar);
    case_fresh_outputs(&a, ar);
    derivs_zero(&c, ar, dot, 1);
    derivs_zero(&c, ar, bar, 1);
    for (int i = 0; i < k->nparams; i++) {
        /* Directions shared on trials 1 and 5, seeds on trials 2 and 5. */
        if (is_active_input(&k->params[i]))
            dot[i] = random_doubles(ar, &rng, n, trial == 1 || trial == 5 ? 0 : 1);
        if (is_output(&k->params[i])) {
            dot[i] = new_output(ar, n, output_stride(trial));
            bar[i] = random_doubles(ar, &rng, n, trial == 2 || trial == 5 ? 0 : 1);
        }
    }
    expect_ok(&t, k->tangent(n, t.val, dot, workspace(&t, ar, &ws)), "tangent");
    expect_ok(&a, k->adjoint(n, a.val, bar, workspace(&a, ar, &ws)), "adjoint");
    for (int i = 0; i < k->nparams; i++)
        if (is_output(&k->params[i]))
            check_output_gaps(&t, dot[i], "tangent", k->params[i].name);
    /* rho = |l - r| / max(sum of |terms| of both products, floor).  The
     * terms' magnitudes, not |l| + |r|, are the scale of the rounding error:
     * random directions often make O(1) terms cancel to |l| ~ 1e-5.
     *
     * The floor covers lanes where a derivative itself cancels, e.g.
     * d/dx x exp(-zx) = exp(-zx) (1 - zx) at zx ~ 1: tangent and adjoint
     * round it differently, by a few ulps of the kernel's typical derivative
     * rather than of this lane's.  So floor = 1e-2 * J * |xdot|_1 * |ybar|_1,
     * where J, the typical derivative, is the median over lanes of
     * sum |terms| / (|xdot|_1 |ybar|_1).  Only lanes whose terms are 100 times
     * smaller than typical get the absolute tolerance 1e-14 J |xdot| |ybar|. */
    size_t nl = n ? n : 1;
    double *lhs = arena_alloc(ar, nl * sizeof(double));
    double *rhs = arena_alloc(ar, nl * sizeof(double));
    double *scale = arena_alloc(ar, nl * sizeof(double));
    double *dirs = arena_alloc(ar, nl * sizeof(double));
    double *ratio = arena_alloc(ar, nl * sizeof(double));
    size_t nratio = 0;
    for (size_t l = 0; l < n; l++) {
        double xdot1 = 0.0, ybar1 = 0.0;
        lhs[l] = rhs[l] = scale[l] = 0.0;
        for (int i = 0; i < k->nparams; i++) {
            if (!is_output(&k->params[i]) && !is_active_input(&k->params[i]))
                continue;
            double term = dget(dot[i], l) * dget(bar[i], l);
            if (is_output(&k->params[i])) {
                lhs[l] += term;
                ybar1 += fabs(dget(bar[i], l));
            } else {
                rhs[l] += term;
                xdot1 += fabs(dget(dot[i], l));
            }
            scale[l] += fabs(term);
        }
        dirs[l] = xdot1 * ybar1;
        if (dirs[l] > 0.0 && isfinite(scale[l]))
            ratio[nratio++] = scale[l] / dirs[l];
    }
    double typical = 0.0;
    if (nratio) {
        qsort(ratio, nratio, sizeof *ratio, cmp_double);
        typical = ratio[nratio / 2];
    }
    for (size_t l = 0; l < n; l++) {
        double floor = fmax(1e-2 * typical * dirs[l], 1e-300);
        double r = fabs(lhs[l] - rhs[l]) / fmax(scale[l], floor);
        if (!(r <= DOT_TOL))
            report_failure(WHERE ": lane %zu: <ydot, ybar> = %.17g but <xdot, xbar> = %.17g "
                           "(rho %.3g > %g; the terms sum to %.3g in magnitude, floor %.3g)",
                           WHERE_ARGS(&c), l, lhs[l], rhs[l], r, DOT_TOL, scale[l], floor);
    }
}

START_TEST(test_tangent_and_adjoint_pass_dot_product_test)
{
    for_each_case(_i, check_dot_product, 0);
}
END_TEST

/* ==== e. adjoints accumulate (+=) and shared ones sum over lanes ==== */

static void check_accumulation(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                               Arena *ar)
{
    Case c, a1, a2;
    twinc_arg seeds[MAXP], bar1[MAXP], bar2[MAXP];
    double prefill[MAXP];
    twinc_workspace ws;
    Rng rng = rng_for(L, k, n, trial, 6);
    case_new(&c, ar, L, k, n, trial);
    a1 = c;
    a2 = c;
    case_fresh_outputs(&a1, ar);
    case_fresh_outputs(&a2, ar);
    for (int i = 0; i < k->nparams; i++)
        if (is_output(&k->params[i]))
            seeds[i] = random_doubles(ar, &rng, n, 1);

    /* Run 1: per-lane accumulators starting at 0 give each lane's partials. */
    derivs_zero(&c, ar, bar1, 1);
    /* Run 2: an input shared by all lanes accumulates into one shared value,
     * and so does a per-lane input on odd trials; other accumulators are per
     * lane.  All start from known random values. */
    for (int i = 0; i < k->nparams; i++) {
        bar2[i] = (twinc_arg){NULL, 0, 0};
        if (is_output(&k->params[i]))
            bar1[i] = bar2[i] = seeds[i];
        if (!is_active_input(&k->params[i]))
            continue;
        int shared = c.val[i].ls == 0 || trial % 2 == 1;
        prefill[i] = rng_sym(&rng);
        bar2[i] = shared ? constant_doubles(ar, n, 0, prefill[i])
                         : random_doubles(ar, &rng, n, 1);
    }
    twinc_arg before[MAXP]; /* copies of the starting values of bar2 */
    for (int i = 0; i < k->nparams; i++) {
        before[i] = (twinc_arg){NULL, 0, 0};
        if (!is_active_input(&k->params[i]))
            continue;
        before[i] = (twinc_arg){arena_alloc(ar, lane_extent(n, bar2[i].ls) * sizeof(double)),
                                bar2[i].ls, 0};
        memcpy(before[i].p, bar2[i].p, lane_extent(n, bar2[i].ls) * sizeof(double));
    }
    expect_ok(&a1, k->adjoint(n, a1.val, bar1, workspace(&a1, ar, &ws)), "adjoint");
    expect_ok(&a2, k->adjoint(n, a2.val, bar2, workspace(&a2, ar, &ws)), "adjoint");

    for (int i = 0; i < k->nparams; i++) {
        if (!is_active_input(&k->params[i]))
            continue;
        const char *name = k->params[i].name;
        if (bar2[i].ls == 0) {
            double start = dget(before[i], 0), sum = 0.0, scale = fabs(start);
            for (size_t l = 0; l < n; l++) {
                sum += dget(bar1[i], l);
                scale += fabs(dget(bar1[i], l));
            }
            double got = dget(bar2[i], 0) - start;
            if (!(fabs(got - sum) <= SUM_TOL * fmax(scale, 1e-300)))
                report_failure(WHERE ": shared adjoint of %s (input lane stride %td): "
                               "accumulator went from %.17g to %.17g, an increase of %.17g, but "
                               "the per-lane adjoints sum to %.17g",
                               WHERE_ARGS(&c), name, c.val[i].ls, start, dget(bar2[i], 0), got,
                               sum);
        } else {
            for (size_t l = 0; l < n; l++) {
                double start = dget(before[i], l), got = dget(bar2[i], l) - start;
                double want = dget(bar1[i], l);
                if (!(fabs(got - want) <= SUM_TOL * (fabs(start) + fabs(want))))
                    report_failure(WHERE ": adjoint of %s at lane %zu: accumulator went from "
                                   "%.17g to %.17g, an increase of %.17g, expected %.17g",
                                   WHERE_ARGS(&c), name, l, start, dget(bar2[i], l), got, want);
            }
        }
    }
}

START_TEST(test_adjoints_accumulate_and_shared_ones_sum_over_lanes)
{
    for_each_case(_i, check_accumulation, 0);
}
END_TEST

/* ==== f. zero lanes touch nothing ==== */

static void check_zero_lanes(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                             Arena *ar)
{
    twinc_arg val[MAXP], dot[MAXP], bar[MAXP];
    Case c;
    if (n != 0 || trial != 0)
        return;
    case_new(&c, ar, L, k, 0, trial);
    /* Real buffers, shared and per-lane: n = 0 leaves every byte alone. */
    Rng rng = rng_for(L, k, 0, trial, 7);
    for (int i = 0; i < k->nparams; i++) {
        dot[i] = bar[i] = (twinc_arg){NULL, 0, 0};
        if (is_active_input(&k->params[i])) {
            dot[i] = random_doubles(ar, &rng, 1, i % 2);
            bar[i] = random_doubles(ar, &rng, 1, i % 2);
        }
        if (is_output(&k->params[i])) {
            dot[i] = new_output(ar, 1, 1);
            bar[i] = random_doubles(ar, &rng, 1, 1);
        }
    }
    double dot0[MAXP], bar0[MAXP];
    for (int i = 0; i < k->nparams; i++) {
        dot0[i] = dot[i].p ? *(double *)dot[i].p : 0.0;
        bar0[i] = bar[i].p ? *(double *)bar[i].p : 0.0;
    }
    expect_ok(&c, k->primal(0, c.val, NULL), "primal");
    expect_ok(&c, k->reference(0, c.val, NULL), "reference");
    expect_ok(&c, k->tangent(0, c.val, dot, NULL), "tangent");
    expect_ok(&c, k->adjoint(0, c.val, bar, NULL), "adjoint");
    for (int i = 0; i < k->nparams; i++) {
        const char *name = k->params[i].name;
        if (is_output(&k->params[i]))
            check_output_gaps(&c, c.val[i], "a twin with n=0", name);
        if (dot[i].p && !same_bits(*(double *)dot[i].p, dot0[i]))
            report_failure(WHERE ": tangent with n=0 changed dot of %s from %.17g to %.17g",
                           WHERE_ARGS(&c), name, dot0[i], *(double *)dot[i].p);
        if (bar[i].p && !same_bits(*(double *)bar[i].p, bar0[i]))
            report_failure(WHERE ": adjoint with n=0 changed bar of %s from %.17g to %.17g",
                           WHERE_ARGS(&c), name, bar0[i], *(double *)bar[i].p);
    }

    /* Argument arrays whose pointers are all NULL. */
    for (int i = 0; i < k->nparams; i++)
        val[i] = dot[i] = bar[i] = (twinc_arg){NULL, 0, 0};
    /* One call at a time, so a crash names its twin in the log (check reports
     * the last line reached). */
    int st;
    const char *what = "n=0, every p NULL";
    st = k->primal(0, val, NULL);
    if (st != 0)
        report_failure("%s: kernel %s, %s: primal returned %d", L->name, k->name, what, st);
    st = k->reference(0, val, NULL);
    if (st != 0)
        report_failure("%s: kernel %s, %s: reference returned %d", L->name, k->name, what, st);
    st = k->tangent(0, val, dot, NULL);
    if (st != 0)
        report_failure("%s: kernel %s, %s: tangent returned %d", L->name, k->name, what, st);
    st = k->adjoint(0, val, bar, NULL);
    if (st != 0)
        report_failure("%s: kernel %s, %s: adjoint returned %d", L->name, k->name, what, st);
}

START_TEST(test_zero_lanes_return_ok_and_touch_nothing)
{
    for_each_case(_i, check_zero_lanes, 1);
}
END_TEST

/* The generic entry points given n = 0 and NULL for the argument arrays
 * themselves (val, dot, bar): nothing may be read. */
static void check_zero_lanes_null_arrays(const Lib *L, const twinc_kernel *k, size_t n,
                                         int trial, Arena *ar)
{
    (void)ar;
    if (n != 0 || trial != 0)
        return;
    int st;
    const char *what = "n=0, NULL argument arrays";
    st = k->primal(0, NULL, NULL);
    if (st != 0)
        report_failure("%s: kernel %s, %s: primal returned %d", L->name, k->name, what, st);
    st = k->tangent(0, NULL, NULL, NULL);
    if (st != 0)
        report_failure("%s: kernel %s, %s: tangent returned %d", L->name, k->name, what, st);
    st = k->adjoint(0, NULL, NULL, NULL);
    if (st != 0)
        report_failure("%s: kernel %s, %s: adjoint returned %d", L->name, k->name, what, st);
}

START_TEST(test_zero_lanes_with_null_argument_arrays_return_ok)
{
    for_each_case(_i, check_zero_lanes_null_arrays, 1);
}
END_TEST

/* ==== uniform parameters refuse a lane stride ==== */

static void check_uniform_refused(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                                  Arena *ar)
{
    twinc_arg dot[MAXP], bar[MAXP];
    twinc_workspace ws;
    if (n != 7 || trial != 0)
        return;
    for (int u = 0; u < k->nparams; u++) {
        if (!is_uniform(&k->params[u]) || is_output(&k->params[u]))
            continue;
        Case c;
        case_new(&c, ar, L, k, n, trial);
        /* The same value in every lane, but addressed with lane stride 1. */
        size_t sz = type_size(k->params[u].type);
        unsigned char *p = arena_alloc(ar, n * sz);
        for (size_t l = 0; l < n; l++)
            memcpy(p + l * sz, c.val[u].p, sz);
        c.val[u] = (twinc_arg){p, 1, 0};
        derivs_zero(&c, ar, dot, 1);
        derivs_zero(&c, ar, bar, 1);
        for (int i = 0; i < k->nparams; i++)
            if (is_output(&k->params[i])) {
                dot[i] = new_output(ar, n, 1);
                bar[i] = constant_doubles(ar, n, 1, 1.0);
            }
        int s[3] = {k->primal(n, c.val, workspace(&c, ar, &ws)),
                    k->tangent(n, c.val, dot, workspace(&c, ar, &ws)),
                    k->adjoint(n, c.val, bar, workspace(&c, ar, &ws))};
        const char *names[3] = {"primal", "tangent", "adjoint"};
        for (int j = 0; j < 3; j++)
            if (s[j] != TWINC_EUNIFORM)
                report_failure(WHERE ": uniform parameter %s given lane stride 1: %s returned "
                               "%d, expected TWINC_EUNIFORM (%d)",
                               WHERE_ARGS(&c), k->params[u].name, names[j], s[j],
                               TWINC_EUNIFORM);
    }
}

START_TEST(test_uniform_parameter_with_lane_stride_is_refused)
{
    for_each_case(_i, check_uniform_refused, 0);
}
END_TEST

/* ==== the suite ==== */

START_TEST(test_corpus_libraries_are_given)
{
    ck_abort_msg("TWINC_CORPUS_LIBS is unset or empty: set it to the space-separated paths of "
                 "the corpus libraries (one per tests/corpus/*.c, built with its twins)");
}
END_TEST

static void parse_libs(void)
{
    const char *env = getenv("TWINC_CORPUS_LIBS");
    g_nlibs = 0;
    if (!env)
        return;
    const char *s = env;
    while (*s && g_nlibs < MAXLIBS) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        const char *e = s;
        while (*e && *e != ' ' && *e != '\t' && *e != '\n')
            e++;
        if (e > s) {
            char *path = malloc((size_t)(e - s) + 1);
            if (!path)
                return;
            memcpy(path, s, (size_t)(e - s));
            path[e - s] = 0;
            g_lib_paths[g_nlibs++] = path;
        }
        s = e;
    }
}

/* One TCase per behaviour, so CK_RUN_CASE=<name> runs one of them. */
static void add_case(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 120);
    if (g_nlibs == 0)
        tcase_add_test(tc, test_corpus_libraries_are_given);
    else
        tcase_add_loop_test(tc, test, 0, g_nlibs);
    suite_add_tcase(s, tc);
}

Suite *make_corpus_suite(void)
{
    Suite *s = suite_create("corpus");
    parse_libs();
    const char *seed = getenv("TWINC_CORPUS_SEED");
    g_seed = seed ? strtoull(seed, NULL, 10) : 0;
    if (g_nlibs == 0) {
        add_case(s, "corpus_libs", NULL);
        return s;
    }
    add_case(s, "registry", test_registry_describes_every_kernel);
    add_case(s, "primal_bitwise", test_primal_equals_scalar_reference_bitwise);
    add_case(s, "twin_values", test_tangent_and_adjoint_values_equal_primal);
    add_case(s, "null_output_values", test_null_output_values_leave_derivatives_unchanged);
    add_case(s, "adjoint_vs_fd", test_adjoint_matches_central_differences);
    add_case(s, "dot_product", test_tangent_and_adjoint_pass_dot_product_test);
    add_case(s, "accumulation", test_adjoints_accumulate_and_shared_ones_sum_over_lanes);
    add_case(s, "zero_lanes", test_zero_lanes_return_ok_and_touch_nothing);
    add_case(s, "zero_lanes_null_arrays", test_zero_lanes_with_null_argument_arrays_return_ok);
    add_case(s, "uniform_refused", test_uniform_parameter_with_lane_stride_is_refused);
    return s;
}
