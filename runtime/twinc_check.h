/*
 * twinc_check.h — the gradient checker: measure a kernel's twins against each
 * other and against finite differences, at chosen points, from C.
 *
 * Used by `twinc check` and by users' own C tests:
 *
 *     char err[256];
 *     twinc_check *c = twinc_check_create(kernel, 4, err, sizeof err);
 *     twinc_check_set(c, 0, twinc_check_param(c, "S"), 100.0); // the base point
 *     twinc_check_randomize(c, 0, 42, 0.2);                    // points 1..3 near it
 *     if (twinc_check_run(c) == TWINC_OK && c->pass) ...
 *     twinc_check_destroy(c);
 *
 * With arrays, e.g. double f(double s, int n, const double z[n]):
 *
 *     long long ints[3] = {0, 8, 0};                 // by parameter: n = 8
 *     twinc_check *c = twinc_check_create_at(kernel, 4, ints, err, sizeof err);
 *     int z = twinc_check_param(c, "z");
 *     twinc_check_set(c, 0, z, 0.03);                // every element of z
 *     c->points[0].x[twinc_check_slot(c, z, 7)] = 0.05;   // element 7
 *
 * Per-point vectors are indexed by slot, not by parameter (the same only
 * for kernels without arrays): twinc_check_param gives a parameter,
 * twinc_check_slot its slots.
 *
 * Slots.  Everything per point is indexed by slot: one slot per scalar
 * parameter and one per element of an array parameter (twinc_param.length
 * != NULL), in registry order, an array's elements consecutive.  For a
 * kernel without arrays slot i is parameter i.  twinc_check_slot(c, param,
 * elem) finds a slot, c->slot_param / c->slot_elem say what one is, and
 * twinc_check_slot_name gives "x" or "x[3]".  An in/out array (`double
 * v[n]`, TWINC_ROLE_INOUT) has one slot per element that is both an input
 * (x: its initial value) and an output (value: its final value), so
 * d v[i] / d v[j] means final i with respect to initial j.
 *
 * Array lengths come from the integer inputs (the registry's len()) and are
 * fixed when the checker is created: twinc_check_create_at takes the
 * integers (twinc_check_create uses 1 for every one), every point starts
 * with them, and a point whose integers give other lengths is refused
 * (status TWINC_EINVAL, failed "checker").  At most TWINC_CHECK_MAX_ELEMS
 * elements in all: a finite difference per element, each a lane holding
 * every array, makes memory and time grow with the square of the elements.
 *
 * What is measured at every point, for every output j and active input i
 * (indices are slots; see twinc_check_idx):
 *
 *   value[j]        the primal twin's value of output j.
 *   adjoint[j,i]    dy_j/dx_i from the adjoint twin seeded with e_j.
 *   tangent[j,i]    dy_j/dx_i from the tangent twin with direction e_i.
 *   fd[j,i]         central finite difference of the primal twin,
 *                   D(h) = (f(x+h) - f(x-h)) / ((x+h) - (x-h)), with step
 *                   h = cbrt(DBL_EPSILON) * max(1, |x_i|) (x+h and x-h are
 *                   rounded to doubles and their actual difference is
 *                   divided by).  Not Richardson-extrapolated: at this step
 *                   rounding dominates truncation in real pricing code, and
 *                   (4 D(h/2) - D(h)) / 3 triples the rounding error.
 *                   Where output j is not smooth within h of x_i (a branch
 *                   or a kink, detected from the same evaluations) and D(h)
 *                   disagrees with the adjoint, fd is instead the left or
 *                   the right one-sided difference (Richardson-extrapolated
 *                   from h and h/2, O(h^2)), whichever is closer to the
 *                   adjoint: AD follows one side of a branch.  fd_kind[j,i]
 *                   says which.  At a kink D(h) is the mean of the two
 *                   slopes (a subgradient), which is accepted as well; a
 *                   value that belongs to neither side fails.
 *   fd_error[j,i]   |D(h) - D(h/2)|, an estimate of the error of D(h) (0
 *                   without opt.halfstep).
 *   rho[j,i]        |adjoint - fd| / max(1, |adjoint| + |fd|).
 *   rho_tangent     the same for tangent against fd.
 *   rho_bound[j,i]  what rho and rho_tangent must not exceed: opt.fd_rtol,
 *                   or where the differences are noisy, 10 fd_error (divided
 *                   like rho) but at most opt.fd_rtol_max: the tolerance
 *                   accounts for the error of finite differences without
 *                   letting a wrong derivative (off by O(1)) through.
 *   dot test        random xdot (one per active input slot) and ybar (one
 *                   per active output slot), components of magnitude in [0.5, 1.5]
 *                   with random sign: lhs = <tangent(xdot), ybar>,
 *                   rhs = <xdot, adjoint(ybar)>, dot_error = |lhs - rhs| /
 *                   max(1e-300, sum |ydot_j ybar_j| + sum |xdot_i xbar_i|).
 *                   That denominator is |lhs| + |rhs| unless the sums cancel,
 *                   when it keeps the test meaningful instead of dividing the
 *                   rounding error by a cancelled total.
 *   consistency     how far apart values are that must agree: the output
 *                   values written by the tangent and adjoint twins and by the
 *                   user's scalar function (kernel->reference, when linked in)
 *                   against the primal twin's; with uniform inputs, the
 *                   adjoint summed over lanes (lane stride 0) against the sum
 *                   of one-lane calls, and the one-lane calls' other
 *                   adjoints against the batch's.  |a - b| / max(1, |a|+|b|).
 *
 * Outputs the registry does not flag active have derivative 0 by the ABI; the
 * checker records 0 for them and still compares that with finite differences,
 * which tests the activity analysis.  Passive inputs are not differentiated.
 *
 * A point passes when every rho and rho_tangent is <= rho_bound (opt.fd_rtol,
 * default 1e-6, unless the differences are noisy), dot_error <= opt.dot_rtol
 * (default 1e-10), consistency <= opt.consistency_rtol (default 1e-12), every
 * number is finite and every twin returned TWINC_OK.  The kernel passes when
 * every point does.
 *
 * Batches.  All points are evaluated together: lane g of a batch is point g,
 * and the finite differences, the directions e_i and the seeds e_j are
 * further blocks of lanes of the same calls, so n is a multiple of the point
 * count and every argument is per-lane (lane stride opt.lane_stride, 1 by
 * default, in units of a lane's whole argument: larger strides leave NaN
 * between lanes).  Array elements are opt.element_stride apart (1 by
 * default; more leaves NaN between elements), one lane's array after the
 * other's.  In/out arrays are written again with the point's initial values
 * before every call, and their derivative companions are the direction of
 * the initial values / the tangent of the final ones (tangent) and the
 * seed of the final values / the adjoint of the initial ones (adjoint), in
 * place.  Parameters flagged
 * TWINC_PARAM_UNIFORM get lane stride 0 in val, dot and bar alike; points
 * whose uniform values differ are evaluated in separate batches, and
 * derivatives with respect to an active uniform input come from extra
 * one-lane calls (a lane-stride-0 adjoint sums over the lanes).
 *
 * Integers: ix[i] holds every integer input as long long and is converted to
 * the parameter's C type (twinc_param.type); a value out of that type's range
 * is TWINC_EINVAL.  unsigned accepts 0..UINT_MAX; unsigned long any value,
 * negative ones converting modulo 2^64, so every unsigned long has one.
 *
 * Nothing here prints or exits; memory is owned by the twinc_check object.
 *
 * MIT licence — see LICENSE.
 */
#ifndef TWINC_CHECK_H
#define TWINC_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "twinc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct twinc_check_options {
    double fd_rtol;          /* bound on rho and rho_tangent; default 1e-6 */
    double fd_rtol_max;      /* the most noisy differences may raise it to; 1e-4 */
    double dot_rtol;         /* bound on dot_error; default 1e-10 */
    double consistency_rtol; /* bound on consistency; default 1e-12 */
    int halfstep;            /* 1 (default): also evaluate at x +- h/2, for fd_error,
                              * branches and kinks; 0: D(h) only, bound fd_rtol */
    uint64_t seed;           /* the dot test's random directions; default 1 */
    int lane_stride;         /* lane stride of per-lane arguments (>= 1); default 1.
                              * With more, the elements between lanes are NaN. */
    int element_stride;      /* element stride of array arguments (>= 1); default 1.
                              * With more, the elements between elements are NaN. */
} twinc_check_options;

/* The most array elements (slots of array parameters) a checker handles. */
#define TWINC_CHECK_MAX_ELEMS 1024

/* Why a point failed: bits of twinc_check_point.flags. */
enum {
    TWINC_CHECK_F_STATUS = 1u,      /* a twin (or the checker) returned an error: see status */
    TWINC_CHECK_F_NONFINITE = 2u,   /* a value, derivative or difference is inf or NaN */
    TWINC_CHECK_F_ADJOINT = 4u,     /* some rho > rho_bound */
    TWINC_CHECK_F_TANGENT = 8u,     /* some rho_tangent > rho_bound */
    TWINC_CHECK_F_DOT = 16u,        /* dot_error > dot_rtol */
    TWINC_CHECK_F_CONSISTENCY = 32u /* consistency > consistency_rtol */
};

/* How fd[j,i] was obtained (ORDER: the estimates of fd_estimates). */
enum {
    TWINC_FD_SMOOTH = 0, /* central, D(h) */
    TWINC_FD_LEFT = 1,   /* not smooth within h of x: one-sided from the left */
    TWINC_FD_RIGHT = 2   /* not smooth within h of x: one-sided from the right */
};

/* One point.  x and ix are inputs (filled with 1.0 and 1 by create, or the
 * integers given to create_at); the rest are results of twinc_check_run.
 * Vectors of length nslots are indexed by slot (= registry parameter for
 * kernels without arrays); matrices by twinc_check_idx(c, output, input),
 * which maps every pair that is not (output, active input) to one entry
 * that stays 0. */
typedef struct twinc_check_point {
    double *x;             /* [nslots] in: value of each double input (element) */
    long long *ix;         /* [nslots] in: value of each integer input */

    double *value;         /* [nslots] value of each output (final in/out element) */
    double *adjoint;       /* [nout * nin + 1] */
    double *tangent;       /* [nout * nin + 1] */
    double *fd;            /* [nout * nin + 1] */
    double *rho;           /* [nout * nin + 1] adjoint vs fd */
    double *rho_tangent;   /* [nout * nin + 1] tangent vs fd */
    double *fd_error;      /* [nout * nin + 1] estimated error of fd */
    double *rho_bound;     /* [nout * nin + 1] the bound rho and rho_tangent must meet */
    unsigned char *fd_kind;/* [nout * nin + 1] TWINC_FD_* */
    int nonsmooth;         /* entries with fd_kind != TWINC_FD_SMOOTH */
    double *xdot;          /* [nslots] the dot test's direction (active inputs) */
    double *ybar;          /* [nslots] the dot test's seed (active outputs) */
    double dot_lhs;        /* <tangent(xdot), ybar> */
    double dot_rhs;        /* <xdot, adjoint(ybar)> */
    double dot_error;
    double max_rho;        /* max of rho and rho_tangent over all entries */
    double consistency;
    int status;            /* TWINC_OK, or the first error of a call for this point */
    const char *failed;    /* which call gave that error: "primal", "tangent",
                            * "adjoint", "reference", "checker"; else NULL */
    unsigned flags;        /* TWINC_CHECK_F_*; 0 when the point passes */
    int pass;
} twinc_check_point;

typedef struct twinc_check {
    const twinc_kernel *kernel;
    int nparams;
    int npoints;
    twinc_check_point *points;
    int nin;               /* active inputs (slots: array elements, initial
                            * in/out elements) ... */
    const int *inputs;     /* ... their slot indices, in order */
    int nout;              /* outputs (ROLE_OUT, ROLE_RET, final in/out
                            * elements), active or not ... */
    const int *outputs;    /* ... their slot indices, in order */
    twinc_check_options opt; /* set by create to the defaults; change before run */

    /* Results of twinc_check_run over all points. */
    int pass;              /* every point passed */
    int npassed;
    double max_rho;
    double max_dot_error;
    double max_consistency;

    /* Slots (see the top of this file). */
    int nslots;
    const int *slot_param; /* [nslots] the parameter of each slot */
    const int *slot_elem;  /* [nslots] its element, -1 for a scalar */
    const int *param_slot; /* [nparams] the first slot of each parameter */
    const int *length;     /* [nparams] elements of each array, -1 for a scalar */
    const int *in_pos;     /* [nslots] position in inputs, -1 if none */
    const int *out_pos;    /* [nslots] position in outputs, -1 if none */
} twinc_check;

void twinc_check_options_init(twinc_check_options *opt);

/* A checker for kernel k at npoints (>= 1) points, every point at the default
 * (1.0 for doubles, 1 for integers).  NULL on failure with a message in
 * errbuf: a malformed parameter table, a missing twin, arrays longer than
 * TWINC_CHECK_MAX_ELEMS in all, out of memory.  The kernel must outlive the
 * checker.  Same as twinc_check_create_at(k, npoints, NULL, ...). */
twinc_check *twinc_check_create(const twinc_kernel *k, int npoints, char *errbuf,
                                size_t errlen);

/* The same with the integer inputs ix[nparams] (indexed by parameter;
 * entries of other parameters are ignored; NULL: 1 for every integer),
 * which fix the array lengths and become every point's integers.  A value
 * out of its parameter's range is an error. */
twinc_check *twinc_check_create_at(const twinc_kernel *k, int npoints, const long long *ix,
                                   char *errbuf, size_t errlen);

/* The length of every array parameter of k for the integers ix (as for
 * create_at) into len[nparams] (-1 for scalars).  TWINC_EINVAL when an
 * integer is out of its type's range or the parameter table is malformed. */
int twinc_check_array_lengths(const twinc_kernel *k, const long long *ix, ptrdiff_t *len);
void twinc_check_destroy(twinc_check *c); /* NULL is fine */

/* Parameter index of `name`, or -1. */
int twinc_check_param(const twinc_check *c, const char *name);

/* Slot of element `elem` of parameter `param` (elem 0 for a scalar), or -1. */
int twinc_check_slot(const twinc_check *c, int param, int elem);

/* "x" or "x[3]" into buf; returns buf ("?" for a bad slot). */
const char *twinc_check_slot_name(const twinc_check *c, int slot, char *buf, size_t len);

/* Set input `param` of `point` to v: x for doubles (every element of an
 * array, the initial values of an in/out array); ix for integers, when v is
 * integral and in range.  TWINC_EINVAL for outputs, bad indices or values.
 * (Set one element through x[twinc_check_slot(c, param, elem)].) */
int twinc_check_set(twinc_check *c, int point, int param, double v);

/* Make every point other than `base` a copy of it with every double input
 * (every element of an array, initial values of in/out arrays included) that
 * is not uniform (active or passive) moved by u * spread * |x| (1e-3 if x = 0), u
 * uniform in [-1, 1] from a splitmix64 stream seeded with `seed`, drawn per
 * element.  Integers and uniform parameters keep the base value, so all
 * points share one batch. */
void twinc_check_randomize(twinc_check *c, int base, uint64_t seed, double spread);

/* Evaluate everything at every point and fill in the results.  Returns
 * TWINC_OK when every call succeeded (pass or fail is then in the results),
 * else the first error (also recorded in the points it concerns, which fail).
 * Can be run again after changing points or options. */
int twinc_check_run(twinc_check *c);

/* Index into a point's matrices of d output / d input (slots); a pair that
 * is not (output, active input) gives the last entry, which is always 0. */
static inline size_t twinc_check_idx(const twinc_check *c, int out, int in)
{
    if (out < 0 || in < 0 || out >= c->nslots || in >= c->nslots || c->out_pos[out] < 0 ||
        c->in_pos[in] < 0)
        return (size_t)c->nout * (size_t)c->nin;
    return (size_t)c->out_pos[out] * (size_t)c->nin + (size_t)c->in_pos[in];
}

/* A uniform deviate in [0, 1) from a splitmix64 state (deterministic, no
 * global state; exposed so callers draw from the same generator). */
double twinc_check_uniform(uint64_t *state);

#ifdef __cplusplus
}
#endif
#endif /* TWINC_CHECK_H */
