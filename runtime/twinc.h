/*
 * twinc.h — the twin ABI, the kernel registry and the runtime API.
 *
 * Generated twin files (`*.twin.c`) include this header and nothing else of
 * twinc's.  User code includes it for the normal CDF and density that
 * `#pragma aad` functions may call (`ncdf`, `npdf`), and C callers include it
 * to find kernels at run time (`twinc_lib_open`, `twinc_find_kernel`).
 *
 * The ABI in one paragraph.  Every twin evaluates a batch of n independent
 * scenarios ("lanes").  Every argument is a `twinc_arg`: a base pointer and a
 * lane stride in elements (0 = one value shared by every lane).  Arrays will
 * additionally use the element stride `es`.  A primal twin reads inputs and
 * writes outputs; a tangent twin also reads one direction per active input and
 * writes the directional derivative of every active output; an adjoint twin
 * computes the value, reads an adjoint seed per active output and ADDS (+=)
 * the adjoint of every active input, summing over lanes when that input's
 * adjoint has lane stride 0.  Twins touch no global state and are reentrant.
 * They return TWINC_OK or a negative twinc_status, never print, never exit.
 *
 * Generic entry points take the arguments as arrays indexed by the kernel's
 * registry parameter order (the C parameters in order, then the return value
 * if the function returns double):
 *     primal (n, val, ws)        val[i]: value of parameter i
 *     tangent(n, val, dot, ws)   dot[i]: direction (inputs) / result (outputs)
 *     adjoint(n, val, bar, ws)   bar[i]: accumulator (inputs) / seed (outputs)
 * Entries of dot/bar for passive parameters are ignored.  A NULL `p` for an
 * output value means "not wanted" in tangent and adjoint twins.
 *
 * MIT licence — see LICENSE.
 */
#ifndef TWINC_H
#define TWINC_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: twinc_kernel.check_at */
#define TWINC_ABI_VERSION 2

typedef enum twinc_status {
    TWINC_OK = 0,
    TWINC_EINVAL = -1,   /* a NULL pointer where a value is required, bad argument */
    TWINC_ENOMEM = -2,   /* the twin could not get the workspace it needs */
    TWINC_EUNIFORM = -3, /* a parameter declared uniform(...) was given a lane stride */
    TWINC_ENOENT = -4,   /* no such kernel / library / symbol */
    TWINC_EABI = -5,     /* the library was generated for another ABI version */
    TWINC_ENOREF = -6    /* the user's scalar function is not linked in */
} twinc_status;

typedef struct twinc_arg {
    void *p;        /* base pointer (const for inputs, by convention) */
    ptrdiff_t ls;   /* lane stride in elements; 0 = shared by all lanes */
    ptrdiff_t es;   /* element stride in elements, arrays only; 0 for scalars */
} twinc_arg;

/* Scratch memory a twin may need (the reverse-sweep stack of loops).  Twins of
 * loop-free kernels need none and accept NULL.  Any alignment will do.  A twin
 * whose workspace is missing or too small allocates what it needs itself
 * (once when it can size it, else by doubling) and frees it before returning. */
typedef struct twinc_workspace {
    void *base;
    size_t bytes;
} twinc_workspace;

/* How to read twinc_kernel.workspace(n, val) (each generated header states
 * it per kernel as NAME_WORKSPACE_KIND):
 *   TWINC_WS_BOUND     the bytes are enough for this call: computed from the
 *                      integer arguments (loop bounds, array lengths), never
 *                      less than what the call uses (a workspace of exactly
 *                      that size makes the twin allocate nothing);
 *   TWINC_WS_ESTIMATE  some loop's trip count depends on the data (a loop
 *                      that stops when a per-lane condition holds): the bytes
 *                      are those of the path on which no such loop stops
 *                      early (data-dependent loops counted once); the twin
 *                      grows its tape by doubling if it needs more. */
enum { TWINC_WS_NONE = 0, TWINC_WS_BOUND = 1, TWINC_WS_ESTIMATE = 2 };

typedef enum twinc_type {
    TWINC_T_DOUBLE = 1,
    TWINC_T_INT = 2,    /* C int */
    TWINC_T_LONG = 3,   /* C long */
    TWINC_T_UINT = 4,   /* C unsigned int */
    TWINC_T_ULONG = 5   /* C unsigned long / size_t */
} twinc_type;

typedef enum twinc_role {
    TWINC_ROLE_IN = 1,  /* scalar input */
    TWINC_ROLE_OUT = 2, /* double * output, written on every path */
    TWINC_ROLE_RET = 3, /* the function's return value */
    TWINC_ROLE_INOUT = 4 /* double v[n]: initial values in, final values out */
} twinc_role;

enum { TWINC_PARAM_ACTIVE = 1u, TWINC_PARAM_UNIFORM = 2u };

struct twinc_arg;
/* Number of elements of an array parameter in lane `lane`, from the integer
 * arguments (val in registry order). */
typedef ptrdiff_t (*twinc_len_fn)(const struct twinc_arg *val, ptrdiff_t lane);

typedef struct twinc_param {
    const char *name;   /* C parameter name; "return" for the return value */
    twinc_type type;
    twinc_role role;
    unsigned flags;     /* TWINC_PARAM_ACTIVE, TWINC_PARAM_UNIFORM */
    const char *length; /* array length expression as written (arrays only), else NULL */
    twinc_len_fn len;   /* the same, evaluated (arrays only), else NULL */
} twinc_param;

typedef int (*twinc_primal_fn)(size_t n, const twinc_arg *val, twinc_workspace *ws);
typedef int (*twinc_tangent_fn)(size_t n, const twinc_arg *val, const twinc_arg *dot,
                                twinc_workspace *ws);
typedef int (*twinc_adjoint_fn)(size_t n, const twinc_arg *val, const twinc_arg *bar,
                                twinc_workspace *ws);
typedef size_t (*twinc_ws_fn)(size_t n, const twinc_arg *val);

typedef struct twinc_kernel {
    const char *name;
    const char *file;          /* the user's source file */
    int line;                  /* line of the function definition */
    int nparams;               /* including the return value, if any */
    const twinc_param *params;
    twinc_primal_fn primal;
    twinc_tangent_fn tangent;
    twinc_adjoint_fn adjoint;
    twinc_primal_fn reference; /* the user's own scalar function, lane by lane */
    twinc_ws_fn workspace;     /* bytes of workspace a call needs; NULL = none */
    const char *check_at;      /* `#pragma aad check(...)`: "name=value,..." where
                                  gradient checks start by default; NULL = none */
} twinc_kernel;

typedef struct twinc_registry {
    int abi_version;
    const char *source;        /* the user's source file */
    int nkernels;
    const twinc_kernel *kernels;
} twinc_registry;

/* Every generated file places a pointer to its registry in this section and
 * defines (weakly) twinc_registries(), which returns all of them in the
 * shared object or executable it is linked into. */
#define TWINC_REGISTRY_SECTION "twinc_reg"
typedef const twinc_registry *const *(*twinc_registries_fn)(size_t *count);

/* ---- the reverse-sweep tape (used by generated adjoints of loops) ----
 *
 * Values the forward sweep overwrites and the reverse sweep needs are pushed
 * here and popped in reverse order; branch outcomes go to a byte stack.  Both
 * live in one buffer: values (8-byte slots) grow up from its 8-aligned base,
 * bytes grow down from its end, so any mix fits in 8 * values + bytes.  The
 * buffer is the caller's workspace; only if that is missing or too small does
 * the tape move to the heap, doubling (so never per iteration).  On
 * allocation failure the tape stops recording, sets err, and the twin returns
 * TWINC_ENOMEM: pops never read outside what was pushed. */
typedef union twinc_slot {
    double d;
    long long i;
} twinc_slot;

typedef struct twinc_tape {
    unsigned char *base;  /* 8-byte aligned */
    size_t bytes;         /* capacity */
    size_t n;             /* slots pushed: base[0, 8n) */
    size_t nb;            /* branch bytes pushed: base[bytes - nb, bytes) */
    size_t high;          /* high-water mark of 8n + nb */
    size_t heap;          /* bytes allocated */
    int owned, err;
} twinc_tape;

static inline void twinc_tape_init(twinc_tape *t, twinc_workspace *ws)
{
    memset(t, 0, sizeof *t);
    if (ws && ws->base) {
        size_t pad = (size_t)(-(uintptr_t)ws->base & (sizeof(twinc_slot) - 1));
        if (ws->bytes > pad) {
            t->base = (unsigned char *)ws->base + pad;
            t->bytes = ws->bytes - pad;
        }
    }
}

/* Release what the tape allocated.  (Generated adjoints report t->high and
 * t->heap to TWINC_TAPE_REPORT(kernel, kind, ws, high, heap) if a test
 * defines it.) */
static inline void twinc_tape_free(twinc_tape *t, twinc_workspace *ws)
{
    (void)ws;
    if (t->owned)
        free(t->base);
    t->base = NULL;
    t->owned = 0;
}

static inline int twinc_tape_grow(twinc_tape *t, size_t use)
{
    if (t->err)
        return -1;
    size_t ncap = t->bytes > 2048 ? 2 * t->bytes : 4096;
    while (ncap < use)
        ncap *= 2;
    unsigned char *p = (unsigned char *)malloc(ncap);
    if (!p) {
        t->err = 1;
        return -1;
    }
    if (t->n)
        memcpy(p, t->base, t->n * sizeof(twinc_slot));
    if (t->nb)
        memcpy(p + ncap - t->nb, t->base + t->bytes - t->nb, t->nb);
    if (t->owned)
        free(t->base);
    t->base = p;
    t->bytes = ncap;
    t->heap += ncap;
    t->owned = 1;
    return 0;
}

/* 0 when `more` bytes fit (growing if need be) */
static inline int twinc_tape_room(twinc_tape *t, size_t more)
{
    size_t use = t->n * sizeof(twinc_slot) + t->nb + more;
    if (use > t->high)
        t->high = use;
    return use <= t->bytes ? 0 : twinc_tape_grow(t, use);
}

static inline twinc_slot *twinc_tape_slots(twinc_tape *t) { return (twinc_slot *)(void *)t->base; }

static inline void twinc_push(twinc_tape *t, double d)
{
    if (twinc_tape_room(t, sizeof(twinc_slot)) == 0)
        twinc_tape_slots(t)[t->n++].d = d;
}
static inline void twinc_pushi(twinc_tape *t, long long i)
{
    if (twinc_tape_room(t, sizeof(twinc_slot)) == 0)
        twinc_tape_slots(t)[t->n++].i = i;
}
static inline void twinc_pushb(twinc_tape *t, int b)
{
    if (twinc_tape_room(t, 1) == 0) {
        t->nb++;
        t->base[t->bytes - t->nb] = (unsigned char)(b != 0);
    }
}
static inline double twinc_pop(twinc_tape *t) { return t->n ? twinc_tape_slots(t)[--t->n].d : 0.0; }
static inline long long twinc_popi(twinc_tape *t) { return t->n ? twinc_tape_slots(t)[--t->n].i : 0; }
static inline int twinc_popb(twinc_tape *t) { return t->nb ? t->base[t->bytes - t->nb--] : 0; }

/* ---- the normal distribution, callable from #pragma aad functions ---- */

static inline double twinc_ncdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }
static inline double twinc_npdf(double x) { return 0.39894228040143267794 * exp(-0.5 * x * x); }
#ifndef TWINC_NO_SHORT_NAMES
static inline double ncdf(double x) { return twinc_ncdf(x); }
static inline double npdf(double x) { return twinc_npdf(x); }
#endif

/* ---- runtime library (libtwinc) ---- */

typedef struct twinc_lib twinc_lib;

/* Open a shared library built from twins; NULL on failure, with a message in
 * errbuf (if given).  Kernels stay valid until twinc_lib_close. */
twinc_lib *twinc_lib_open(const char *path, char *errbuf, size_t errlen);
void twinc_lib_close(twinc_lib *lib); /* NULL is fine */
int twinc_lib_count(const twinc_lib *lib);
const twinc_kernel *twinc_lib_kernel(const twinc_lib *lib, int i);
const twinc_kernel *twinc_lib_find(const twinc_lib *lib, const char *name);

/* Kernels linked into the calling executable itself (or NULL). */
const twinc_kernel *twinc_find_kernel(const twinc_registry *const *regs, size_t count,
                                      const char *name);

const char *twinc_strerror(int status);

#ifdef __cplusplus
}
#endif
#endif /* TWINC_H */
