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

#ifdef __cplusplus
extern "C" {
#endif

#define TWINC_ABI_VERSION 1

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
 * loop-free kernels need none and accept NULL. */
typedef struct twinc_workspace {
    void *base;
    size_t bytes;
} twinc_workspace;

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
    TWINC_ROLE_RET = 3  /* the function's return value */
} twinc_role;

enum { TWINC_PARAM_ACTIVE = 1u, TWINC_PARAM_UNIFORM = 2u };

typedef struct twinc_param {
    const char *name;   /* C parameter name; "return" for the return value */
    twinc_type type;
    twinc_role role;
    unsigned flags;     /* TWINC_PARAM_ACTIVE, TWINC_PARAM_UNIFORM */
    const char *length; /* array length expression (arrays only), else NULL */
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
