/*
 * twinc_graph.h — differentiable array graphs: record once, compile once,
 * replay natively many times, forward or forward + reverse.
 *
 * A graph is a DAG of array values (float64, row-major, every value has a
 * static shape).  Leaves are inputs (bound to caller memory at each replay)
 * and constants (copied in at recording).  Nodes are NumPy-like operations —
 * elementwise arithmetic and math with broadcasting, comparisons and logical
 * operations (0/1 masks, never differentiated), where, strided views and
 * gathers, writes into a region, reductions and scans along an axis, matmul,
 * concatenation, linear interpolation — and calls of twinc kernels, whose
 * lanes are the broadcast shape of their arguments.  Everything a NumPy
 * program does between its inputs and its outputs, minus the interpreter.
 *
 * Life cycle:
 *
 *     twinc_graph *g = twinc_graph_create();
 *     int x = twinc_graph_input(g, 1, (int64_t[]){n}, 1);   // differentiable
 *     int y = twinc_graph_unary(g, TWINC_GOP_EXP, x);
 *     int s = twinc_graph_reduce(g, TWINC_GOP_SUM, y, 0);
 *     twinc_graph_compile(g, 1, &s, (const unsigned char[]){1});
 *     twinc_graph_gradient(g, inputs, outputs, seeds, grads, err, sizeof err);
 *     twinc_graph_destroy(g);
 *
 * Builder calls return a node id (>= 0) or -1 with a message in
 * twinc_graph_error() (a shape mismatch names both shapes).  Compilation
 * (once) marks what is differentiated, fuses chains of elementwise operations
 * into single passes over blocks of elements, makes views read in place
 * where they can, runs chains of row-wise steps (elementwise, reductions and
 * scans along later axes, kernel calls) tile by tile so that their
 * intermediates never exist in full, and plans every other buffer of both
 * replays into one arena with buffers reused once dead.  After compilation
 * the graph is immutable: any number of threads may replay it at once; each
 * replay borrows an execution context (arena, registers, kernel workspace)
 * from a pool owned by the graph, so memory is bounded by the largest number
 * of concurrent replays and does not grow across replays.  A replay spreads
 * its work over a process-wide pool of worker threads and gives the same
 * bits however the work was scheduled.
 *
 * Differentiation: the reverse replay seeds the adjoints of the outputs
 * flagged at compilation and returns the adjoint of every differentiable
 * input (the vector-Jacobian product).  Kernel nodes call the kernel's
 * adjoint twin, which recomputes its forward sweep; fused elementwise passes
 * likewise recompute their intermediates block by block instead of storing
 * them.  Derivative conventions follow the twins: maximum/minimum (and fmax/
 * fmin) route the adjoint to one argument, ties to the second; |x|' = 1 at 0;
 * max/min reductions share the adjoint equally between tied elements.
 *
 * The runtime never prints and never exits; failures are statuses plus a
 * message in the caller's buffer.  MIT licence — see LICENSE.
 */
#ifndef TWINC_GRAPH_H
#define TWINC_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "twinc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TWINC_GRAPH_MAXDIM 32

/* The operations.  X(NAME, name, arity, kind) with kind E1/E2/E3 for
 * elementwise unary/binary/ternary, M for masks (elementwise, never
 * differentiated), R for reductions, S for scans, O for the rest.
 * ORDER TWINC_GOPS: graph.c's tables of derivative rules follow this order. */
#define TWINC_GOPS(X)                                                                           \
    X(INPUT, "input", 0, O)                                                                     \
    X(CONST, "const", 0, O)                                                                     \
    /* elementwise, differentiable */                                                           \
    X(NEG, "negative", 1, E1)                                                                   \
    X(SQUARE, "square", 1, E1)                                                                  \
    X(SQRT, "sqrt", 1, E1)                                                                      \
    X(EXP, "exp", 1, E1)                                                                        \
    X(LOG, "log", 1, E1)                                                                        \
    X(LOG1P, "log1p", 1, E1)                                                                    \
    X(EXPM1, "expm1", 1, E1)                                                                    \
    X(ABS, "absolute", 1, E1)                                                                   \
    X(TANH, "tanh", 1, E1)                                                                      \
    X(SIN, "sin", 1, E1)                                                                        \
    X(COS, "cos", 1, E1)                                                                        \
    X(NCDF, "ncdf", 1, E1)                                                                      \
    X(NPDF, "npdf", 1, E1)                                                                      \
    X(ERF, "erf", 1, E1)                                                                        \
    X(ADD, "add", 2, E2)                                                                        \
    X(SUB, "subtract", 2, E2)                                                                   \
    X(MUL, "multiply", 2, E2)                                                                   \
    X(DIV, "divide", 2, E2)                                                                     \
    X(POW, "power", 2, E2)                                                                      \
    X(MAXIMUM, "maximum", 2, E2)                                                                \
    X(MINIMUM, "minimum", 2, E2)                                                                \
    X(FMAX, "fmax", 2, E2)                                                                      \
    X(FMIN, "fmin", 2, E2)                                                                      \
    X(WHERE, "where", 3, E3)                                                                    \
    /* elementwise masks: results are 0.0 / 1.0, never differentiated */                        \
    X(LT, "less", 2, M)                                                                         \
    X(LE, "less_equal", 2, M)                                                                   \
    X(GT, "greater", 2, M)                                                                      \
    X(GE, "greater_equal", 2, M)                                                                \
    X(EQ, "equal", 2, M)                                                                        \
    X(NE, "not_equal", 2, M)                                                                    \
    X(AND, "logical_and", 2, M)                                                                 \
    X(OR, "logical_or", 2, M)                                                                   \
    X(XOR, "logical_xor", 2, M)                                                                 \
    X(NOT, "logical_not", 1, M)                                                                 \
    X(SIGN, "sign", 1, M)                                                                       \
    X(FLOOR, "floor", 1, M)                                                                     \
    X(CEIL, "ceil", 1, M)                                                                       \
    /* reductions and scans along one axis */                                                   \
    X(SUM, "sum", 1, R)                                                                         \
    X(PROD, "prod", 1, R)                                                                       \
    X(MAX, "max", 1, R)                                                                         \
    X(MIN, "min", 1, R)                                                                         \
    X(CUMSUM, "cumsum", 1, S)                                                                   \
    X(CUMPROD, "cumprod", 1, S)                                                                 \
    /* structure */                                                                             \
    X(VIEW, "view", 1, O)                                                                       \
    X(TAKE, "take", 1, O)                                                                       \
    X(SET, "set", 2, O)                                                                         \
    X(MATMUL, "matmul", 2, O)                                                                   \
    X(CONCAT, "concatenate", -1, O)                                                             \
    X(INTERP, "interp", 3, O)                                                                   \
    X(KERNEL, "kernel", -1, O)                                                                  \
    X(KOUT, "kernel output", 1, O)

typedef enum twinc_gop {
#define TWINC_GOP_ENUM(NAME, name, arity, kind) TWINC_GOP_##NAME,
    TWINC_GOPS(TWINC_GOP_ENUM)
#undef TWINC_GOP_ENUM
    TWINC_GOP_COUNT
} twinc_gop;

typedef struct twinc_graph twinc_graph;

twinc_graph *twinc_graph_create(void);          /* NULL when out of memory */
void twinc_graph_destroy(twinc_graph *g);       /* NULL is fine */
const char *twinc_graph_error(const twinc_graph *g); /* the last builder error */
const char *twinc_gop_name(twinc_gop op);       /* NumPy's name of the operation */
int twinc_gop_arity(twinc_gop op);              /* -1: variadic */

/* ---- recording (before twinc_graph_compile) ---- */

/* Input number i (in the order of these calls) of the given shape.  A
 * differentiable input gets a gradient from twinc_graph_gradient. */
int twinc_graph_input(twinc_graph *g, int ndim, const int64_t *shape, int differentiable);
/* A constant; data (row-major, prod(shape) values) is copied. */
int twinc_graph_const(twinc_graph *g, int ndim, const int64_t *shape, const double *data);
int twinc_graph_scalar(twinc_graph *g, double value); /* a 0-d constant */

/* Elementwise operations with NumPy broadcasting.  WHERE(c, a, b) is
 * c != 0 ? a : b; masks produce 0.0/1.0. */
int twinc_graph_unary(twinc_graph *g, twinc_gop op, int a);
int twinc_graph_binary(twinc_graph *g, twinc_gop op, int a, int b);
int twinc_graph_where(twinc_graph *g, int c, int a, int b);

/* out[i...] = a[offset + sum_k i_k strides[k]]: any strided view of a's
 * row-major elements (slices, transposes, broadcasts with stride 0, reshapes
 * of contiguous data).  Every addressed element must lie inside a. */
int twinc_graph_view(twinc_graph *g, int a, int ndim, const int64_t *shape, int64_t offset,
                     const int64_t *strides);
/* out (of `shape`) element j = a[index[j]], index flat into a (copied). */
int twinc_graph_take(twinc_graph *g, int a, int ndim, const int64_t *shape,
                     const int64_t *index);
/* a copy of a whose region (a strided view of a, as in twinc_graph_view, of
 * shape `shape`) is replaced by v broadcast to that shape.  The region must
 * address each element of a at most once.  index != NULL gives the region as
 * flat indices instead (then offset and strides are ignored). */
int twinc_graph_set(twinc_graph *g, int a, int v, int ndim, const int64_t *shape, int64_t offset,
                    const int64_t *strides, const int64_t *index);

/* SUM, PROD, MAX, MIN along `axis` (which disappears from the shape). */
int twinc_graph_reduce(twinc_graph *g, twinc_gop op, int a, int axis);
/* CUMSUM, CUMPROD along `axis`. */
int twinc_graph_scan(twinc_graph *g, twinc_gop op, int a, int axis);
/* (..., m, k) @ (..., k, n) -> (..., m, n); the leading dimensions of both
 * must be equal (the binding broadcasts them). */
int twinc_graph_matmul(twinc_graph *g, int a, int b);
int twinc_graph_concat(twinc_graph *g, int n, const int *parts, int axis);
/* np.interp(x, xp, fp): xp increasing, xp and fp 1-d of one length >= 1. */
int twinc_graph_interp(twinc_graph *g, int x, int xp, int fp);

/* A call of kernel k.  args[i] for every ROLE_IN parameter, in registry
 * order; the lanes are the broadcast shape of all args.  outs receives one
 * node per ROLE_OUT / ROLE_RET parameter, in registry order, each of the lane
 * shape.  Uniform parameters need a one-element argument.  Integer
 * parameters receive values converted at replay (a value that is not an
 * integer of the parameter's type fails the replay).  The kernel must outlive
 * the graph.  Returns the KERNEL node id or -1. */
int twinc_graph_kernel(twinc_graph *g, const twinc_kernel *k, const int *args, int *outs);

int twinc_graph_ndim(const twinc_graph *g, int node);          /* -1 for a bad id */
const int64_t *twinc_graph_shape(const twinc_graph *g, int node); /* NULL for a bad id */
int twinc_graph_node_count(const twinc_graph *g);

/* ---- compilation ---- */

/* Fix the outputs (node ids; repeats allowed) and which of them the reverse
 * replay seeds (seeded[j] != 0; NULL: none).  Returns TWINC_OK, or
 * TWINC_EINVAL with a message in twinc_graph_error().  Once only. */
int twinc_graph_compile(twinc_graph *g, int nout, const int *outputs, const unsigned char *seeded);

typedef struct twinc_graph_stats {
    int nodes;              /* recorded */
    int live;               /* needed by the outputs */
    int steps;              /* forward passes after fusion */
    int fused;              /* elementwise nodes executed inside fused passes */
    int reverse_steps;      /* reverse passes */
    int tiled;              /* passes run tile by tile in fused row regions */
    size_t arena_forward;   /* bytes of the forward replay's arena */
    size_t arena_gradient;  /* bytes of the forward + reverse replay's arena */
} twinc_graph_stats;

int twinc_graph_ninputs(const twinc_graph *g);
int twinc_graph_input_node(const twinc_graph *g, int i); /* node id of input i */
int twinc_graph_input_differentiable(const twinc_graph *g, int i);
int twinc_graph_noutputs(const twinc_graph *g);
int twinc_graph_output_node(const twinc_graph *g, int j);
void twinc_graph_get_stats(const twinc_graph *g, twinc_graph_stats *st);

/* ---- replay (after compilation; thread-safe) ---- */

/* inputs[i]: contiguous row-major data of input i.  outputs[j]: contiguous
 * buffer for output j (written).  Inputs are only read; an output buffer must
 * not overlap any input. */
int twinc_graph_forward(twinc_graph *g, const double *const *inputs, double *const *outputs,
                        char *errbuf, size_t errlen);

/* Forward + reverse.  seeds[j] for each seeded output: its adjoint, p =
 * contiguous data with ls = 1, or one value broadcast with ls = 0 (p NULL:
 * zero).  grads[i] for each differentiable input: written (=) with the
 * adjoint of that input; NULL entries (and entries for other inputs) are
 * skipped. */
int twinc_graph_gradient(twinc_graph *g, const double *const *inputs, double *const *outputs,
                         const twinc_arg *seeds, double *const *grads, char *errbuf,
                         size_t errlen);

/* Free the pooled execution contexts of replays that have finished (the next
 * replay allocates again).  Safe to call while other threads replay. */
void twinc_graph_trim(twinc_graph *g);

/* ---- calling one kernel over an n-d lane space ---- */

/* One argument over an nd lane shape: element (i_0..i_{nd-1}) of it is at
 * p + sum_k i_k strides[k] elements of its parameter's type (stride 0:
 * broadcast).  es is the element stride of array parameters (0 for scalars). */
typedef struct twinc_ndarg {
    void *p;
    const ptrdiff_t *strides; /* nd entries; NULL when p is NULL or nd == 0 */
    ptrdiff_t es;             /* arrays: element stride (elements) */
    ptrdiff_t len;            /* arrays: elements available in each lane (checked
                               * against the parameter's length in every lane) */
} twinc_ndarg;

typedef enum twinc_twin { TWINC_TWIN_PRIMAL = 0, TWINC_TWIN_TANGENT = 1, TWINC_TWIN_ADJOINT = 2 } twinc_twin;

/* Grows as needed; start zeroed, free with twinc_scratch_free. */
typedef struct twinc_scratch {
    void *base;
    size_t bytes;
} twinc_scratch;
void twinc_scratch_free(twinc_scratch *s);

/* Threads replays and kernel calls use (TWINC_NUM_THREADS, else one per
 * CPU), and the vector math in use (0 libm, 1 AVX2, 2 AVX-512 libmvec;
 * TWINC_VMATH=0 turns it off). */
int twinc_graph_threads(void);
int twinc_graph_vector_math(void);

/* Run a twin over every lane of `shape`: dimensions that all arguments
 * traverse alike are merged, the innermost becomes the twin's batch and the
 * others are looped over (so any broadcast or strided layout works without
 * copies).  val/dual are indexed by registry parameter as in twinc.h (dual:
 * the tangent twin's dot or the adjoint twin's bar; NULL for the primal).
 * For the adjoint, accumulators with stride 0 in a dimension sum over it.
 * Outputs (and in/out arrays) need their own memory in every lane.  Large
 * calls are split over the worker threads (see twinc_graph_threads); an
 * accumulator summed over lanes gets a private copy per part, added in a
 * fixed order, so results do not depend on the scheduling.  Returns the
 * twin's status, with the kernel's name and the status's meaning in errbuf
 * on failure (also TWINC_EINVAL when an array's length in some lane exceeds
 * the elements given).  ws (may be NULL) keeps the calling thread's
 * workspace between calls. */
int twinc_kernel_run_nd(const twinc_kernel *k, twinc_twin twin, int nd, const int64_t *shape,
                        const twinc_ndarg *val, const twinc_ndarg *dual, twinc_scratch *ws,
                        char *errbuf, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* TWINC_GRAPH_H */
