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
 *     `reference` entry) bit for bit, lane by lane, for every output and
 *     every final element of an in/out array, and writes into no input;
 *   - the tangent and adjoint twins return the same values, bit for bit;
 *   - every adjoint partial agrees with a central finite difference of the
 *     primal:  |a - b| / max(1, |a| + |b|) <= 1e-6 — per element for arrays:
 *     each element of an active input array and each initial element of an
 *     in/out array is an input, each final element of an in/out array an
 *     output;
 *   - the tangent and adjoint agree in the dot-product test, per lane, over
 *     all those elements:
 *     |<ydot, ybar> - <xdot, xbar>| / max(sum |terms|, floor) <= 1e-12
 *     (sum |terms| >= |l| + |r|; the floor is explained at the check);
 *   - adjoints accumulate with += and are summed over lanes when the
 *     accumulator has lane stride 0 (element by element for a shared
 *     array's accumulator); in/out adjoints are overwritten, the same in
 *     every layout;
 *   - with n = 0 a twin returns TWINC_OK and touches nothing, even given
 *     NULL pointers;
 *   - a uniform parameter given a lane stride is refused (TWINC_EUNIFORM).
 *
 * Argument layouts vary with the trial number: an input is shared (lane
 * stride 0) when (i + trial) % 3 == 0, all inputs are shared in one trial
 * and none in another, some trials use lane stride 2 (the gaps are poisoned
 * with NaN for inputs and checked for outputs); uniform parameters are always
 * shared.  Arrays (twinc_param.length != NULL; element k of lane l at
 * p[l*ls + k*es]) come lane after lane (ls = longest length, es = 1),
 * interleaved (ls = 1, es = n), both with a gap after every element (es =
 * 2) or lane, or shared (ls = 0, es 1 or 2) — derivative companions in
 * other layouts than their values.  In/out arrays are never shared (each
 * lane overwrites its own) and are re-initialised before every call.
 * Doubles, array elements included, are drawn from [0.5, 1.5] but never
 * within 1e-4 of 0.5, 0.75, 1.0, 1.25 or 1.5 — the corpus puts every branch
 * point and int conversion step of an active input there (see
 * tests/corpus/branches.c), so neither a sample nor a finite-difference step
 * (1e-6) straddles a kink.  Integers are drawn from 1..4; array lengths come
 * from them through the registry's len().  All random numbers come from
 * splitmix64 seeded by the kernel name, n and trial, so a failure reproduces
 * exactly (TWINC_CORPUS_SEED=N picks other streams, to explore).
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
#include "twinc_simd.h" /* twinc_simd_detect(): which path the twins take */

enum {
    MAXP = 64,      /* parameters per kernel */
    MAXK = 1024,    /* kernels per library */
    MAXLIBS = 256,
    GUARD = 4,      /* sentinel elements after every output buffer */
    NTRIALS = 6,    /* argument layouts per lane count */
    FD_SAMPLES = 64, /* lanes checked against finite differences when n > 7 */
    MAXLEN = 1 << 16 /* elements of an array in one lane */
};

/* 3, 5 and 7, 9: one lane short of and past a SIMD block (W = 4, 8) */
static const size_t LANE_COUNTS[] = {0, 1, 3, 5, 7, 9, 1000};
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

/* Scalar outputs: `double *` and the return value (written only). */
static int is_output(const twinc_param *p)
{
    return p->role == TWINC_ROLE_OUT || p->role == TWINC_ROLE_RET;
}

/* `double v[n]`: initial values in, final values out, in place. */
static int is_inout(const twinc_param *p)
{
    return p->role == TWINC_ROLE_INOUT;
}

static int is_array(const twinc_param *p)
{
    return p->length != NULL;
}

/* An active input whose adjoint companion accumulates (+=): scalar or array. */
static int is_active_input(const twinc_param *p)
{
    return p->role == TWINC_ROLE_IN && p->type == TWINC_T_DOUBLE && (p->flags & TWINC_PARAM_ACTIVE);
}

/* Derivatives with respect to the parameter's (initial) values exist: the
 * tangent reads a direction, the adjoint gives the adjoint. */
static int has_d_in(const twinc_param *p)
{
    return is_active_input(p) || (is_inout(p) && (p->flags & TWINC_PARAM_ACTIVE));
}

/* Derivatives of the parameter's (final) values exist: the tangent writes
 * them, the adjoint reads a seed. */
static int has_d_out(const twinc_param *p)
{
    return is_output(p) || (is_inout(p) && (p->flags & TWINC_PARAM_ACTIVE));
}

/* Values the twins write: scalar outputs and the final values of in/out arrays. */
static int writes_value(const twinc_param *p)
{
    return is_output(p) || is_inout(p);
}

/* Doubles the harness draws from the domain: inputs and in/out initial values. */
static int is_double_input(const twinc_param *p)
{
    return (p->role == TWINC_ROLE_IN || is_inout(p)) && p->type == TWINC_T_DOUBLE;
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

/* Element k of lane `lane` (k = 0 for scalars, whose es is 0). */
static double *eptr(twinc_arg a, size_t lane, ptrdiff_t k)
{
    return (double *)a.p + (ptrdiff_t)lane * a.ls + k * a.es;
}

static double eget(twinc_arg a, size_t lane, ptrdiff_t k)
{
    return *eptr(a, lane, k);
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
 * buffers (plus GUARD sentinels past the end) that checks can inspect.
 *
 * Arrays: len[i][l] is the element count of array i in lane l, from the
 * registry's len() over the integer arguments; maxlen[i] the largest.  A
 * per-lane array (lane stride != 0) holds lane l's own len[i][l] elements;
 * a shared one (lane stride 0) holds maxlen[i], lane l reading the first
 * len[i][l] of them.  Slots that are no lane's element hold NaN in inputs
 * and SENTINEL in everything a twin may write (in/out arrays, derivative
 * companions), and the latter are checked to stay so.
 *
 * init[i] is a pristine copy of every double input.  Twins overwrite in/out
 * arrays, so val[i] of an in/out array is refreshed from init[i] (a new
 * copy) before every call: case_fresh_outputs, case_refresh_inout. */
typedef struct Case {
    const Lib *L;
    const twinc_kernel *k;
    size_t n;
    int trial;
    twinc_arg val[MAXP];
    twinc_arg init[MAXP];
    ptrdiff_t *len[MAXP];   /* arrays: n entries; scalars: NULL */
    ptrdiff_t maxlen[MAXP]; /* arrays: max over lanes (0 when n = 0); scalars: 1 */
} Case;

/* Elements of parameter i in a lane: len for arrays, 1 for scalars. */
static ptrdiff_t nel(const Case *c, int i, size_t lane)
{
    return c->len[i] ? c->len[i][lane] : 1;
}

/* Lanes of buffer a that hold their own elements (1 when shared), and the
 * elements such a lane holds. */
static size_t buf_lanes(const Case *c, twinc_arg a)
{
    return c->n == 0 ? 0 : a.ls == 0 ? 1 : c->n;
}

static ptrdiff_t buf_elems(const Case *c, int i, twinc_arg a, size_t lane)
{
    return a.ls == 0 ? c->maxlen[i] : nel(c, i, lane);
}

/* Doubles a buffer of parameter i with a's strides spans, GUARD included. */
static size_t span(const Case *c, int i, twinc_arg a)
{
    size_t e = 1;
    if (c->n > 0 && c->maxlen[i] > 0)
        e = (c->n - 1) * (size_t)a.ls + (size_t)(c->maxlen[i] - 1) * (size_t)a.es + 1;
    return e + GUARD;
}

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

typedef struct Lay {
    ptrdiff_t ls, es;
} Lay;

/* Per-lane layouts of array i, by variant: lane after lane (array of
 * structures), element after element with the lanes interleaved (structure
 * of arrays), and both with a gap after every element and lane. */
static Lay lay_array(const Case *c, int i, int variant)
{
    ptrdiff_t m = c->maxlen[i] > 0 ? c->maxlen[i] : 1, n = c->n ? (ptrdiff_t)c->n : 1;
    switch (variant % 4) {
    case 0: return (Lay){m, 1};
    case 1: return (Lay){1, n};
    case 2: return (Lay){2 * m + 1, 2};
    default: return (Lay){2, 2 * n + 1};
    }
}

/* One array for all lanes, dense or with gaps. */
static Lay lay_shared(int variant)
{
    return (Lay){0, 1 + variant % 2};
}

/* Layout of a derivative companion of parameter i: scalars per lane (ls 1)
 * or shared; arrays per lane in a layout chosen by variant, or shared.  An
 * in/out array's companions are overwritten per lane: never shared. */
static Lay lay_deriv(const Case *c, int i, int shared, int variant)
{
    const twinc_param *p = &c->k->params[i];
    if (!is_array(p))
        return (Lay){shared ? 0 : 1, 0};
    if (shared && !is_inout(p))
        return lay_shared(variant);
    return lay_array(c, i, variant);
}

/* Layout of the value of parameter i in c's trial. */
static Lay lay_value(const Case *c, int i)
{
    const twinc_param *p = &c->k->params[i];
    if (is_output(p))
        return (Lay){output_stride(c->trial), 0};
    ptrdiff_t ls = input_stride(p, i, c->trial);
    if (!is_array(p))
        return (Lay){ls, 0};
    if (ls == 0 && !is_inout(p))
        return lay_shared(i + c->trial);
    return lay_array(c, i, i + c->trial + (ls == 2 ? 2 : 0));
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
    double *p = arena_alloc(ar, (e + GUARD) * sizeof(double));
    for (size_t j = 0; j < e + GUARD; j++)
        p[j] = NAN;
    twinc_arg a = {p, ls, 0};
    if (ls == 0)
        p[0] = lanes[0];
    else
        for (size_t l = 0; l < n; l++)
            *dptr(a, l) = lanes[l];
    return a;
}

/* What dbuf puts into the elements. */
enum { E_GAP, E_ZERO, E_SYM, E_DOMAIN };

/* A double buffer for parameter i of c (scalar or array) with layout y:
 * every slot `gap`, then every lane's elements (see buf_lanes) from `what`. */
static twinc_arg dbuf(Arena *ar, const Case *c, int i, Lay y, double gap, int what, Rng *r)
{
    twinc_arg a = {NULL, y.ls, is_array(&c->k->params[i]) ? y.es : 0};
    size_t e = span(c, i, a);
    double *p = arena_alloc(ar, e * sizeof(double));
    for (size_t j = 0; j < e; j++)
        p[j] = gap;
    a.p = p;
    if (what == E_GAP)
        return a;
    for (size_t l = 0; l < buf_lanes(c, a); l++)
        for (ptrdiff_t k = 0; k < buf_elems(c, i, a, l); k++)
            *eptr(a, l, k) = what == E_ZERO ? 0.0 : what == E_SYM ? rng_sym(r) : rng_domain(r);
    return a;
}

/* The elements of src (parameter i, same lanes) in a new buffer of layout
 * y, SENTINEL elsewhere.  src may be shared only if y is. */
static twinc_arg dbuf_from(Arena *ar, const Case *c, int i, Lay y, twinc_arg src)
{
    twinc_arg a = dbuf(ar, c, i, y, SENTINEL, E_GAP, NULL);
    for (size_t l = 0; l < buf_lanes(c, a); l++)
        for (ptrdiff_t k = 0; k < buf_elems(c, i, a, l); k++)
            *eptr(a, l, k) = eget(src, l, k);
    return a;
}

/* A copy of buffer a of parameter i, same layout, every slot. */
static twinc_arg arg_copy(Arena *ar, const Case *c, int i, twinc_arg a)
{
    if (!a.p)
        return a;
    size_t e = span(c, i, a);
    double *p = arena_alloc(ar, e * sizeof(double));
    memcpy(p, a.p, e * sizeof(double));
    return (twinc_arg){p, a.ls, a.es};
}

static int same_buffer(const Case *c, int i, twinc_arg a, twinc_arg b)
{
    return memcmp(a.p, b.p, span(c, i, a) * sizeof(double)) == 0;
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
    /* Scalars first (the same draws as before arrays existed), then the
     * lengths, which need the integers, then the arrays. */
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        c->maxlen[i] = 1;
        if (is_array(p))
            continue;
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
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        if (!is_array(p))
            continue;
        if (!p->len || p->type != TWINC_T_DOUBLE || !is_double_input(p))
            report_failure("%s: kernel %s: array parameter %s (length %s) has %s, type %s, "
                           "role %d: the harness handles double inputs and in/out arrays "
                           "with a len function",
                           L->name, k->name, p->name, p->length, p->len ? "len" : "no len",
                           type_name(p->type), (int)p->role);
        c->len[i] = arena_alloc(ar, nl * sizeof(ptrdiff_t));
        c->maxlen[i] = 0;
        for (size_t l = 0; l < n; l++) {
            ptrdiff_t m = p->len(c->val, (ptrdiff_t)l);
            if (m < 0 || m > MAXLEN)
                report_failure("%s: kernel %s, n=%zu, trial %d: array %s has length %s = %td "
                               "in lane %zu (expected 0..%d on the harness's integers 1..4)",
                               L->name, k->name, n, trial, p->name, p->length, m, l,
                               (int)MAXLEN);
            c->len[i][l] = m;
            if (m > c->maxlen[i])
                c->maxlen[i] = m;
        }
    }
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        if (is_array(p))
            c->val[i] = dbuf(ar, c, i, lay_value(c, i), is_inout(p) ? SENTINEL : NAN, E_DOMAIN,
                             &rng);
    }
    for (int i = 0; i < k->nparams; i++) {
        if (!is_double_input(&k->params[i]))
            continue;
        c->init[i] = arg_copy(ar, c, i, c->val[i]);
        if (is_inout(&k->params[i]))
            c->val[i] = arg_copy(ar, c, i, c->init[i]);
    }
}

/* Fresh copies of every in/out array's initial values. */
static void case_refresh_inout(Case *c, Arena *ar)
{
    for (int i = 0; i < c->k->nparams; i++)
        if (is_inout(&c->k->params[i]))
            c->val[i] = arg_copy(ar, c, i, c->init[i]);
}

/* Fresh sentinel-filled buffers for every output of c, and fresh initial
 * values of its in/out arrays. */
static void case_fresh_outputs(Case *c, Arena *ar)
{
    for (int i = 0; i < c->k->nparams; i++)
        if (is_output(&c->k->params[i]))
            c->val[i] = new_output(ar, c->n, c->val[i].ls);
    case_refresh_inout(c, ar);
}

/* A short description of the layout, for messages. */
static const char *layout(const Case *c)
{
    static char buf[MAXP * 40];
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < c->k->nparams && used + 60 < sizeof buf; i++) {
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s:ls=%td", i ? " " : "",
                                 c->k->params[i].name, c->val[i].ls);
        if (is_array(&c->k->params[i]))
            used += (size_t)snprintf(buf + used, sizeof buf - used, ",es=%td,len<=%td",
                                     c->val[i].es, c->maxlen[i]);
    }
    return buf;
}

#define WHERE "%s: kernel %s, n=%zu, trial %d (%s)"
#define WHERE_ARGS(c) (c)->L->name, (c)->k->name, (c)->n, (c)->trial, layout(c)

/* "a" or "a[3]", for messages. */
static const char *elem_name(const Case *c, int i, ptrdiff_t k, char *buf, size_t len)
{
    if (is_array(&c->k->params[i]))
        snprintf(buf, len, "%s[%td]", c->k->params[i].name, k);
    else
        snprintf(buf, len, "%s", c->k->params[i].name);
    return buf;
}

/* Buffer checks: every slot of a (parameter i) that is no lane's element —
 * gaps between lanes and elements, elements past a lane's length, the
 * GUARD after the end — still holds SENTINEL. */
static void check_gaps(const Case *c, int i, twinc_arg a, const char *what, const char *param)
{
    if (!a.p)
        return;
    const double *p = a.p;
    size_t e = span(c, i, a);
    unsigned char *mine = calloc(e, 1);
    ck_assert_msg(mine != NULL, "out of memory");
    for (size_t l = 0; l < buf_lanes(c, a); l++)
        for (ptrdiff_t k = 0; k < buf_elems(c, i, a, l); k++)
            mine[eptr(a, l, k) - p] = 1;
    for (size_t j = 0; j < e; j++) {
        if (!mine[j] && !same_bits(p[j], SENTINEL)) {
            double v = p[j];
            free(mine);
            report_failure(WHERE ": %s wrote %.17g into element %zu of %s, which is no lane's "
                           "(lane stride %td, element stride %td, %zu lanes)",
                           WHERE_ARGS(c), what, v, j, param, a.ls, a.es, c->n);
        }
    }
    free(mine);
}

/* Scalar outputs (the former check_output_gaps). */
static void check_output_gaps(const Case *c, int i, twinc_arg a, const char *what)
{
    check_gaps(c, i, a, what, c->k->params[i].name);
}

/* Inputs are const: no twin may write into them. */
static void check_inputs_unchanged(const Case *c, const char *what)
{
    for (int i = 0; i < c->k->nparams; i++) {
        const twinc_param *p = &c->k->params[i];
        if (p->role == TWINC_ROLE_IN && p->type == TWINC_T_DOUBLE &&
            !same_buffer(c, i, c->val[i], c->init[i]))
            report_failure(WHERE ": %s wrote into input %s", WHERE_ARGS(c), what, p->name);
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

/* dot or bar arguments: zero-filled buffers for active inputs — scalars per
 * lane (ls) with SENTINEL guards, arrays per lane in a trial-dependent
 * layout (or shared when ls is 0) with SENTINEL gaps — and {NULL} for
 * everything else (outputs and in/out arrays are for the caller to set). */
static void derivs_zero(const Case *c, Arena *ar, twinc_arg *d, ptrdiff_t ls)
{
    for (int i = 0; i < c->k->nparams; i++) {
        d[i] = (twinc_arg){NULL, 0, 0};
        if (!is_active_input(&c->k->params[i]))
            continue;
        if (is_array(&c->k->params[i])) {
            d[i] = dbuf(ar, c, i, lay_deriv(c, i, ls == 0, c->trial + i), SENTINEL, E_ZERO,
                        NULL);
        } else {
            size_t e = lane_extent(c->n, ls);
            double *p = arena_alloc(ar, (e + GUARD) * sizeof(double));
            for (size_t j = e; j < e + GUARD; j++)
                p[j] = SENTINEL;
            d[i] = (twinc_arg){p, ls, 0};
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

/* Random directions or seeds in [-1, 1) for parameter i: scalars as
 * random_doubles (ls 0 when shared, else 1), arrays by lay_deriv, NaN or
 * SENTINEL (gap) elsewhere. */
static twinc_arg random_deriv(Arena *ar, const Case *c, int i, Rng *r, int shared, int variant,
                              double gap)
{
    if (!is_array(&c->k->params[i]))
        return random_doubles(ar, r, c->n, shared ? 0 : 1);
    return dbuf(ar, c, i, lay_deriv(c, i, shared, variant), gap, E_SYM, r);
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

/* ---- items: one scalar of a parameter in a lane ---- */

/* Element k of parameter p (k = 0 for scalars).  The derivative checks run
 * over items: inputs are the elements of every has_d_in parameter (for an
 * in/out array, its initial values), outputs the elements of every
 * has_d_out parameter (for an in/out array, its final values). */
typedef struct Item {
    int p;
    ptrdiff_t k;
} Item;

static size_t items(const Case *c, Arena *ar, int (*which)(const twinc_param *), Item **out)
{
    size_t cnt = 0;
    for (int i = 0; i < c->k->nparams; i++)
        if (which(&c->k->params[i]))
            cnt += (size_t)c->maxlen[i];
    Item *it = arena_alloc(ar, (cnt ? cnt : 1) * sizeof *it);
    cnt = 0;
    for (int i = 0; i < c->k->nparams; i++)
        if (which(&c->k->params[i]))
            for (ptrdiff_t k = 0; k < c->maxlen[i]; k++)
                it[cnt++] = (Item){i, k};
    *out = it;
    return cnt;
}

/* Does lane `lane` have the item? */
static int has_item(const Case *c, Item it, size_t lane)
{
    return it.k < nel(c, it.p, lane);
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
                              p->role == TWINC_ROLE_RET || p->role == TWINC_ROLE_INOUT,
                          "%s: kernel %s: parameter %s has role %d", L->name, k->name, p->name,
                          (int)p->role);
            ck_assert_msg((p->length == NULL) == (p->len == NULL),
                          "%s: kernel %s: parameter %s has length %s but %s len function",
                          L->name, k->name, p->name, p->length ? p->length : "NULL",
                          p->len ? "a" : "no");
            if (is_array(p)) {
                ck_assert_msg(p->length[0] != '\0', "%s: kernel %s: array %s has an empty "
                              "length expression", L->name, k->name, p->name);
                ck_assert_msg(p->type == TWINC_T_DOUBLE && !is_output(p),
                              "%s: kernel %s: array %s is a %s %s, expected a double input or "
                              "in/out array",
                              L->name, k->name, p->name, type_name(p->type),
                              p->role == TWINC_ROLE_RET ? "return value" : "output");
            }
            if (is_inout(p)) {
                ck_assert_msg(is_array(p) && p->type == TWINC_T_DOUBLE,
                              "%s: kernel %s: in/out parameter %s is not a double array",
                              L->name, k->name, p->name);
                ck_assert_msg(!is_uniform(p), "%s: kernel %s: in/out array %s is flagged "
                              "uniform", L->name, k->name, p->name);
            }
            if (p->role == TWINC_ROLE_RET)
                ck_assert_msg(i == k->nparams - 1 && strcmp(p->name, "return") == 0,
                              "%s: kernel %s: return value is parameter %d named %s, expected "
                              "the last, named \"return\"",
                              L->name, k->name, i, p->name);
            if (writes_value(p))
                outputs++;
            if (is_output(p)) {
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

/* On a SIMD path (TWINC_ISA=avx2|avx512, or the CPU's best) the lanes in
 * whole blocks go through libmvec, whose functions are within 4 ulp of the
 * exact result where glibc's scalar ones are within 1; a kernel composes a
 * few of them, so its lanes may differ from the scalar function by a few
 * ulp of the intermediates, and where a result cancels (x - y with x ~ y ~ 1)
 * by as much relative to the result.  The bound checked there, in units of
 * eps = 2^-52 at the scale of the harness domain (inputs in [0.5, 1.5]):
 *     |simd - scalar| <= SIMD_ULPS * eps * max(1, |simd|, |scalar|)
 * (docs/SIMD.md).  On the scalar path: bit for bit. */
enum { SIMD_ULPS = 64 };

static double ulp_distance(double x, double y)
{
    if (same_bits(x, y) || (isnan(x) && isnan(y)))
        return 0;
    return fabs(x - y) / (0x1p-52 * fmax(1.0, fmax(fabs(x), fabs(y))));
}

/* Every value the twins write (scalar outputs, final in/out elements) of
 * a and b, bit for bit (or within ulps units in the last place), and the
 * gaps of both. */
static void compare_outputs_ulps(const Case *a, const Case *b, const char *what_a,
                                 const char *what_b, double ulps)
{
    const twinc_kernel *k = a->k;
    char name[256];
    for (int i = 0; i < k->nparams; i++) {
        if (!writes_value(&k->params[i]))
            continue;
        for (size_t l = 0; l < a->n; l++)
            for (ptrdiff_t e = 0; e < nel(a, i, l); e++) {
                double x = eget(a->val[i], l, e), y = eget(b->val[i], l, e);
                if (ulps > 0 ? !(ulp_distance(x, y) <= ulps) : !same_bits(x, y))
                    report_failure(WHERE ": %s %s, lane %zu: %s %.17g (0x%016llx) != %s %.17g "
                                   "(0x%016llx)",
                                   WHERE_ARGS(a), is_inout(&k->params[i]) ? "final" : "output",
                                   elem_name(a, i, e, name, sizeof name), l, what_a, x,
                                   (unsigned long long)bits(x), what_b, y,
                                   (unsigned long long)bits(y));
            }
        check_output_gaps(a, i, a->val[i], what_a);
        check_output_gaps(b, i, b->val[i], what_b);
    }
}

static void compare_outputs(const Case *a, const Case *b, const char *what_a,
                            const char *what_b)
{
    compare_outputs_ulps(a, b, what_a, what_b, 0);
}

static void check_primal_vs_reference(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                                      Arena *ar)
{
    Case c, ref;
    char name[256];
    case_new(&c, ar, L, k, n, trial);
    ref = c;
    case_fresh_outputs(&ref, ar);
    run_primal(&ref, ar, k->reference, "reference");
    run_primal(&c, ar, k->primal, "primal");
    const double ulps = twinc_simd_detect() == TWINC_ISA_SCALAR ? 0 : SIMD_ULPS;
    compare_outputs_ulps(&c, &ref, "primal", "reference", ulps);
    check_inputs_unchanged(&c, "the primal or the reference");
    /* The corpus must stay finite on the harness domain. */
    for (int i = 0; i < k->nparams; i++)
        if (writes_value(&k->params[i]))
            for (size_t l = 0; l < n; l++)
                for (ptrdiff_t e = 0; e < nel(&c, i, l); e++)
                    if (!isfinite(eget(ref.val[i], l, e)))
                        report_failure(WHERE ": reference output %s is %g at lane %zu: the "
                                       "corpus function leaves the harness domain",
                                       WHERE_ARGS(&c), elem_name(&c, i, e, name, sizeof name),
                                       eget(ref.val[i], l, e), l);
    /* Calling again with the same initial values gives the same results:
     * nothing but the arguments carries over between calls. */
    Case again = c;
    case_fresh_outputs(&again, ar);
    run_primal(&again, ar, k->primal, "primal (again)");
    compare_outputs_ulps(&again, &ref, "primal (again)", "reference", ulps);
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
        const twinc_param *p = &k->params[i];
        if (is_active_input(p))
            dot[i] = random_deriv(ar, &c, i, &rng, trial % 2 == 0, trial + i, NAN);
        if (is_output(p)) {
            dot[i] = new_output(ar, n, 1);
            bar[i] = random_doubles(ar, &rng, n, trial % 2);
        }
        if (has_d_in(p) && is_inout(p)) {
            dot[i] = random_deriv(ar, &c, i, &rng, 0, trial + i, SENTINEL);
            bar[i] = random_deriv(ar, &c, i, &rng, 0, trial + i + 1, SENTINEL);
        }
    }
    expect_ok(&t, k->tangent(n, t.val, dot, workspace(&t, ar, &ws)), "tangent");
    compare_outputs(&t, &c, "tangent", "primal");
    check_inputs_unchanged(&t, "the tangent");
    expect_ok(&a, k->adjoint(n, a.val, bar, workspace(&a, ar, &ws)), "adjoint");
    compare_outputs(&a, &c, "adjoint", "primal");
    check_inputs_unchanged(&a, "the adjoint");
}

START_TEST(test_tangent_and_adjoint_values_equal_primal)
{
    for_each_case(_i, check_twin_values, 1);
}
END_TEST

/* A NULL value pointer for an output means "not wanted": the derivatives are
 * the same as when the values are written.  (In/out arrays are inputs too:
 * their values are never NULL.) */
static void check_unwanted_values(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                                  Arena *ar)
{
    Case c, u;
    twinc_arg dot[MAXP], dot_u[MAXP], bar[MAXP], bar_u[MAXP];
    twinc_workspace ws;
    char name[256];
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
        const twinc_param *p = &k->params[i];
        if (is_active_input(p))
            dot[i] = dot_u[i] = random_deriv(ar, &c, i, &rng, 0, trial + i, NAN);
        if (is_output(p)) {
            dot[i] = new_output(ar, n, 1);
            dot_u[i] = new_output(ar, n, 1);
            bar[i] = bar_u[i] = random_doubles(ar, &rng, n, 1);
        }
        if (has_d_in(p) && is_inout(p)) {
            dot[i] = random_deriv(ar, &c, i, &rng, 0, trial + i, SENTINEL);
            dot_u[i] = arg_copy(ar, &c, i, dot[i]);
            bar[i] = random_deriv(ar, &c, i, &rng, 0, trial + i + 1, SENTINEL);
            bar_u[i] = arg_copy(ar, &c, i, bar[i]);
        }
    }
    expect_ok(&c, k->tangent(n, c.val, dot, workspace(&c, ar, &ws)), "tangent");
    case_refresh_inout(&u, ar);
    expect_ok(&u, k->tangent(n, u.val, dot_u, workspace(&c, ar, &ws)),
              "tangent with NULL output values");
    case_refresh_inout(&c, ar);
    expect_ok(&c, k->adjoint(n, c.val, bar, workspace(&c, ar, &ws)), "adjoint");
    case_refresh_inout(&u, ar);
    expect_ok(&u, k->adjoint(n, u.val, bar_u, workspace(&c, ar, &ws)),
              "adjoint with NULL output values");
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        /* [0]: tangents of outputs and final values; [1]: adjoints of inputs */
        const twinc_arg *x[2] = {has_d_out(p) ? dot : NULL, has_d_in(p) ? bar : NULL};
        const twinc_arg *y[2] = {dot_u, bar_u};
        for (int w = 0; w < 2; w++) {
            if (!x[w])
                continue;
            for (size_t l = 0; l < n; l++)
                for (ptrdiff_t e = 0; e < nel(&c, i, l); e++)
                    if (!same_bits(eget(x[w][i], l, e), eget(y[w][i], l, e)))
                        report_failure(WHERE ": %s of %s, lane %zu: %.17g with output values, "
                                       "%.17g with NULL output values",
                                       WHERE_ARGS(&c), w == 0 ? "tangent" : "adjoint",
                                       elem_name(&c, i, e, name, sizeof name), l,
                                       eget(x[w][i], l, e), eget(y[w][i], l, e));
        }
    }
}

START_TEST(test_null_output_values_leave_derivatives_unchanged)
{
    for_each_case(_i, check_unwanted_values, 0);
}
END_TEST

/* ==== c. adjoints agree with central finite differences ==== */

/* Central differences of every output item with respect to input item j,
 * for every lane at once (lanes are independent, so moving item j of all
 * lanes together moves each lane's outputs by its own partial; a shared
 * array element moves once for all lanes).  fd[o * n + l]; lanes without
 * item j get 0. */
static void central_differences(Case *c, Arena *ar, Item j, const Item *out, size_t nout,
                                double *fd)
{
    const twinc_kernel *k = c->k;
    size_t n = c->n;
    const twinc_param *p = &k->params[j.p];
    twinc_arg base = is_inout(p) ? c->init[j.p] : c->val[j.p];
    size_t nsteps = base.ls ? n : 1;
    double *xs[2] = {arena_alloc(ar, (nsteps ? nsteps : 1) * sizeof(double)),
                     arena_alloc(ar, (nsteps ? nsteps : 1) * sizeof(double))};
    Case side[2] = {*c, *c};
    for (int s = 0; s < 2; s++) {
        case_fresh_outputs(&side[s], ar);
        side[s].val[j.p] = arg_copy(ar, c, j.p, base);
        for (size_t l = 0; l < nsteps; l++) {
            /* a shared element exists if any lane reads it: k < maxlen */
            if (base.ls ? !has_item(c, j, l) : j.k >= c->maxlen[j.p])
                continue;
            double x0 = eget(base, l, j.k);
            double h = FD_STEP * fmax(1.0, fabs(x0));
            xs[s][l] = s == 0 ? x0 + h : x0 - h;
            *eptr(side[s].val[j.p], l, j.k) = xs[s][l];
        }
        run_primal(&side[s], ar, k->primal, "primal");
    }
    for (size_t o = 0; o < nout; o++)
        for (size_t l = 0; l < n; l++) {
            size_t m = base.ls ? l : 0;
            if (!has_item(c, j, l) || !has_item(c, out[o], l)) {
                fd[o * n + l] = 0.0;
                continue;
            }
            /* xs[0] - xs[1] is exact: the points are within a factor 2 */
            fd[o * n + l] = (eget(side[0].val[out[o].p], l, out[o].k) -
                             eget(side[1].val[out[o].p], l, out[o].k)) /
                            (xs[0][m] - xs[1][m]);
        }
}

static void check_adjoint_vs_fd(const Lib *L, const twinc_kernel *k, size_t n, int trial,
                                Arena *ar)
{
    Case c;
    twinc_arg bar[MAXP];
    twinc_workspace ws;
    char iname[256], oname[256];
    Rng rng = rng_for(L, k, n, trial, 4);
    case_new(&c, ar, L, k, n, trial);
    Item *in, *out;
    size_t nin = items(&c, ar, has_d_in, &in), nout = items(&c, ar, has_d_out, &out);
    size_t lanes[FD_SAMPLES];
    size_t nlanes = pick_lanes(n, &rng, lanes);

    double **fd = arena_alloc(ar, (nin ? nin : 1) * sizeof *fd);
    for (size_t j = 0; j < nin; j++) {
        fd[j] = arena_alloc(ar, (nout ? nout : 1) * n * sizeof(double));
        central_differences(&c, ar, in[j], out, nout, fd[j]);
    }

    for (size_t o = 0; o < nout; o++) {
        /* Seed output item o with 1 (scalar seeds shared on odd trials), the
         * others with 0; per-lane accumulators give each lane's partials. */
        Case a = c;
        case_fresh_outputs(&a, ar);
        derivs_zero(&c, ar, bar, 1);
        for (int m = 0; m < k->nparams; m++) {
            const twinc_param *p = &k->params[m];
            if (is_output(p))
                bar[m] = constant_doubles(ar, n, trial % 2 ? 0 : 1, m == out[o].p ? 1.0 : 0.0);
            if (is_inout(p) && has_d_out(p)) {
                bar[m] = dbuf(ar, &c, m, lay_deriv(&c, m, 0, trial + m + (int)o), SENTINEL,
                              E_ZERO, NULL);
                if (m == out[o].p)
                    for (size_t l = 0; l < n; l++)
                        if (has_item(&c, out[o], l))
                            *eptr(bar[m], l, out[o].k) = 1.0;
            }
        }
        expect_ok(&a, k->adjoint(n, a.val, bar, workspace(&a, ar, &ws)), "adjoint");
        for (size_t j = 0; j < nin; j++) {
            for (size_t s = 0; s < nlanes; s++) {
                size_t l = lanes[s];
                if (!has_item(&c, in[j], l) || !has_item(&c, out[o], l))
                    continue;
                double adj = eget(bar[in[j].p], l, in[j].k), fdv = fd[j][o * n + l];
                double r = rho(adj, fdv, 1.0);
                if (!(r <= FD_TOL))
                    report_failure(WHERE ": d %s / d %s%s at lane %zu: adjoint %.17g, central "
                                   "difference %.17g (rho %.3g > %g)",
                                   WHERE_ARGS(&c),
                                   elem_name(&c, out[o].p, out[o].k, oname, sizeof oname),
                                   elem_name(&c, in[j].p, in[j].k, iname, sizeof iname),
                                   is_inout(&k->params[in[j].p]) ? " (initial)" : "", l, adj,
                                   fdv, r, FD_TOL);
            }
        }
        for (int m = 0; m < k->nparams; m++)
            if (is_array(&k->params[m]) && bar[m].p)
                check_gaps(&c, m, bar[m], "adjoint", "an adjoint companion");
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
    twinc_arg dot[MAXP], bar[MAXP], dot0[MAXP], bar0[MAXP];
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
        const twinc_param *p = &k->params[i];
        /* Directions shared on trials 1 and 5, seeds on trials 2 and 5. */
        if (is_active_input(p))
            dot[i] = random_deriv(ar, &c, i, &rng, trial == 1 || trial == 5, trial + i, NAN);
        if (is_output(p)) {
            dot[i] = new_output(ar, n, output_stride(trial));
            bar[i] = random_doubles(ar, &rng, n, trial == 2 || trial == 5 ? 0 : 1);
        }
        /* In/out: the direction of the initial values, overwritten with the
         * tangent of the final ones; the seed of the final values,
         * overwritten with the adjoint of the initial ones. */
        if (has_d_in(p) && is_inout(p)) {
            dot[i] = random_deriv(ar, &c, i, &rng, 0, trial + i + 1, SENTINEL);
            bar[i] = random_deriv(ar, &c, i, &rng, 0, trial + i + 2, SENTINEL);
        }
    }
    for (int i = 0; i < k->nparams; i++) {
        dot0[i] = arg_copy(ar, &c, i, dot[i]);
        bar0[i] = arg_copy(ar, &c, i, bar[i]);
    }
    expect_ok(&t, k->tangent(n, t.val, dot, workspace(&t, ar, &ws)), "tangent");
    expect_ok(&a, k->adjoint(n, a.val, bar, workspace(&a, ar, &ws)), "adjoint");
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        if (is_output(p) || is_inout(p))
            check_gaps(&c, i, dot[i], "tangent", "a tangent companion");
        if (is_inout(p) || is_active_input(p))
            check_gaps(&c, i, bar[i], "adjoint", "an adjoint companion");
        if (is_active_input(p) && !same_buffer(&c, i, dot[i], dot0[i]))
            report_failure(WHERE ": tangent wrote into the direction of input %s",
                           WHERE_ARGS(&c), p->name);
        if (is_output(p) && !same_buffer(&c, i, bar[i], bar0[i]))
            report_failure(WHERE ": adjoint wrote into the seed of output %s", WHERE_ARGS(&c),
                           p->name);
    }
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
     * smaller than typical get the absolute tolerance 1e-14 J |xdot| |ybar|.
     *
     * Terms: <ydot, ybar> over every output item (scalar outputs, final
     * in/out elements), <xdot, xbar> over every input item (active input
     * elements, initial in/out elements). */
    Item *in, *out;
    size_t nin = items(&c, ar, has_d_in, &in), nout = items(&c, ar, has_d_out, &out);
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
        for (size_t o = 0; o < nout; o++) {
            if (!has_item(&c, out[o], l))
                continue;
            double yb = eget(bar0[out[o].p], l, out[o].k);
            double term = eget(dot[out[o].p], l, out[o].k) * yb;
            lhs[l] += term;
            ybar1 += fabs(yb);
            scale[l] += fabs(term);
        }
        for (size_t j = 0; j < nin; j++) {
            if (!has_item(&c, in[j], l))
                continue;
            double xd = eget(dot0[in[j].p], l, in[j].k);
            double term = xd * eget(bar[in[j].p], l, in[j].k);
            rhs[l] += term;
            xdot1 += fabs(xd);
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
    char name[256];
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
    /* Run 2: an input shared by all lanes accumulates into one shared value
     * (one shared array), and so does a per-lane input on odd trials; other
     * accumulators are per lane (arrays in another layout than run 1's).
     * All start from known random values.  In/out arrays: the same seeds in
     * two layouts; their adjoints are overwritten, not added, so both runs
     * must give the same numbers. */
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        bar2[i] = (twinc_arg){NULL, 0, 0};
        if (is_output(p))
            bar1[i] = bar2[i] = seeds[i];
        if (is_inout(p) && has_d_in(p)) {
            bar1[i] = random_deriv(ar, &c, i, &rng, 0, trial + i, SENTINEL);
            bar2[i] = dbuf_from(ar, &c, i, lay_deriv(&c, i, 0, trial + i + 1), bar1[i]);
        }
        if (!is_active_input(p))
            continue;
        int shared = c.val[i].ls == 0 || trial % 2 == 1;
        if (is_array(p)) {
            bar2[i] = dbuf(ar, &c, i, lay_deriv(&c, i, shared, trial + i + 1), SENTINEL, E_SYM,
                           &rng);
            continue;
        }
        prefill[i] = rng_sym(&rng);
        bar2[i] = shared ? constant_doubles(ar, n, 0, prefill[i])
                         : random_doubles(ar, &rng, n, 1);
    }
    twinc_arg before[MAXP]; /* copies of the starting values of bar2 */
    for (int i = 0; i < k->nparams; i++)
        before[i] = arg_copy(ar, &c, i, bar2[i]);
    expect_ok(&a1, k->adjoint(n, a1.val, bar1, workspace(&a1, ar, &ws)), "adjoint");
    expect_ok(&a2, k->adjoint(n, a2.val, bar2, workspace(&a2, ar, &ws)), "adjoint");

    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        if (is_array(p) && (is_active_input(p) || is_inout(p))) {
            check_gaps(&c, i, bar1[i], "adjoint", "an adjoint companion");
            check_gaps(&c, i, bar2[i], "adjoint", "an adjoint companion");
        }
        if (is_inout(p) && has_d_in(p)) {
            for (size_t l = 0; l < n; l++)
                for (ptrdiff_t e = 0; e < nel(&c, i, l); e++) {
                    double x = eget(bar1[i], l, e), y = eget(bar2[i], l, e);
                    if (!(fabs(x - y) <= SUM_TOL * (fabs(x) + fabs(y))))
                        report_failure(WHERE ": adjoint of in/out %s at lane %zu: %.17g in "
                                       "one layout (ls %td, es %td), %.17g in another (ls %td, "
                                       "es %td), from the same seeds",
                                       WHERE_ARGS(&c), elem_name(&c, i, e, name, sizeof name),
                                       l, x, bar1[i].ls, bar1[i].es, y, bar2[i].ls, bar2[i].es);
                }
            continue;
        }
        if (!is_active_input(p))
            continue;
        if (bar2[i].ls == 0) {
            for (ptrdiff_t e = 0; e < c.maxlen[i]; e++) {
                double start = eget(before[i], 0, e), sum = 0.0, scale = fabs(start);
                for (size_t l = 0; l < n; l++) {
                    if (e >= nel(&c, i, l))
                        continue;
                    sum += eget(bar1[i], l, e);
                    scale += fabs(eget(bar1[i], l, e));
                }
                double got = eget(bar2[i], 0, e) - start;
                if (!(fabs(got - sum) <= SUM_TOL * fmax(scale, 1e-300)))
                    report_failure(WHERE ": shared adjoint of %s (input lane stride %td): "
                                   "accumulator went from %.17g to %.17g, an increase of %.17g, "
                                   "but the per-lane adjoints sum to %.17g",
                                   WHERE_ARGS(&c), elem_name(&c, i, e, name, sizeof name),
                                   c.val[i].ls, start, eget(bar2[i], 0, e), got, sum);
            }
        } else {
            for (size_t l = 0; l < n; l++)
                for (ptrdiff_t e = 0; e < nel(&c, i, l); e++) {
                    double start = eget(before[i], l, e), got = eget(bar2[i], l, e) - start;
                    double want = eget(bar1[i], l, e);
                    if (!(fabs(got - want) <= SUM_TOL * (fabs(start) + fabs(want))))
                        report_failure(WHERE ": adjoint of %s at lane %zu: accumulator went "
                                       "from %.17g to %.17g, an increase of %.17g, expected "
                                       "%.17g",
                                       WHERE_ARGS(&c), elem_name(&c, i, e, name, sizeof name),
                                       l, start, eget(bar2[i], l, e), got, want);
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
    twinc_arg val[MAXP], dot[MAXP], bar[MAXP], dot0[MAXP], bar0[MAXP];
    Case c;
    if (n != 0 || trial != 0)
        return;
    case_new(&c, ar, L, k, 0, trial);
    /* Real buffers, shared and per-lane: n = 0 leaves every byte alone. */
    Rng rng = rng_for(L, k, 0, trial, 7);
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        dot[i] = bar[i] = (twinc_arg){NULL, 0, 0};
        if (is_active_input(p)) {
            dot[i] = random_doubles(ar, &rng, 1, i % 2);
            bar[i] = random_doubles(ar, &rng, 1, i % 2);
        }
        if (is_output(p)) {
            dot[i] = new_output(ar, 1, 1);
            bar[i] = random_doubles(ar, &rng, 1, 1);
        }
        if (has_d_in(p) && is_inout(p)) {
            dot[i] = random_doubles(ar, &rng, 1, 1);
            bar[i] = random_doubles(ar, &rng, 1, 1);
        }
        if (is_array(p)) {
            dot[i].es = dot[i].p ? 1 : 0;
            bar[i].es = bar[i].p ? 1 : 0;
        }
    }
    for (int i = 0; i < k->nparams; i++) {
        dot0[i] = arg_copy(ar, &c, i, dot[i]);
        bar0[i] = arg_copy(ar, &c, i, bar[i]);
    }
    expect_ok(&c, k->primal(0, c.val, NULL), "primal");
    expect_ok(&c, k->reference(0, c.val, NULL), "reference");
    expect_ok(&c, k->tangent(0, c.val, dot, NULL), "tangent");
    expect_ok(&c, k->adjoint(0, c.val, bar, NULL), "adjoint");
    for (int i = 0; i < k->nparams; i++) {
        const char *name = k->params[i].name;
        if (writes_value(&k->params[i]))
            check_output_gaps(&c, i, c.val[i], "a twin with n=0");
        if (dot[i].p && !same_buffer(&c, i, dot[i], dot0[i]))
            report_failure(WHERE ": tangent with n=0 changed dot of %s from %.17g to %.17g",
                           WHERE_ARGS(&c), name, *(double *)dot0[i].p, *(double *)dot[i].p);
        if (bar[i].p && !same_buffer(&c, i, bar[i], bar0[i]))
            report_failure(WHERE ": adjoint with n=0 changed bar of %s from %.17g to %.17g",
                           WHERE_ARGS(&c), name, *(double *)bar0[i].p, *(double *)bar[i].p);
    }
    check_inputs_unchanged(&c, "a twin with n=0");

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
        /* The same value in every lane, but addressed with a lane stride. */
        if (is_array(&k->params[u])) {
            twinc_arg per_lane = dbuf(ar, &c, u, lay_array(&c, u, 0), NAN, E_GAP, NULL);
            for (size_t l = 0; l < n; l++)
                for (ptrdiff_t e = 0; e < c.maxlen[u]; e++)
                    *eptr(per_lane, l, e) = eget(c.val[u], 0, e);
            c.val[u] = per_lane;
        } else {
            size_t sz = type_size(k->params[u].type);
            unsigned char *p = arena_alloc(ar, n * sz);
            for (size_t l = 0; l < n; l++)
                memcpy(p + l * sz, c.val[u].p, sz);
            c.val[u] = (twinc_arg){p, 1, 0};
        }
        derivs_zero(&c, ar, dot, 1);
        derivs_zero(&c, ar, bar, 1);
        for (int i = 0; i < k->nparams; i++) {
            if (is_output(&k->params[i])) {
                dot[i] = new_output(ar, n, 1);
                bar[i] = constant_doubles(ar, n, 1, 1.0);
            }
            if (is_inout(&k->params[i]) && has_d_in(&k->params[i])) {
                dot[i] = dbuf(ar, &c, i, lay_array(&c, i, 0), SENTINEL, E_ZERO, NULL);
                bar[i] = dbuf(ar, &c, i, lay_array(&c, i, 0), SENTINEL, E_ZERO, NULL);
            }
        }
        int s[3];
        s[0] = k->primal(n, c.val, workspace(&c, ar, &ws));
        case_refresh_inout(&c, ar);
        s[1] = k->tangent(n, c.val, dot, workspace(&c, ar, &ws));
        case_refresh_inout(&c, ar);
        s[2] = k->adjoint(n, c.val, bar, workspace(&c, ar, &ws));
        const char *names[3] = {"primal", "tangent", "adjoint"};
        for (int j = 0; j < 3; j++)
            if (s[j] != TWINC_EUNIFORM)
                report_failure(WHERE ": uniform parameter %s given lane stride %td: %s "
                               "returned %d, expected TWINC_EUNIFORM (%d)",
                               WHERE_ARGS(&c), k->params[u].name, c.val[u].ls, names[j], s[j],
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
