/*
 * gradcheck.c — the gradient checker declared in twinc_check.h.
 *
 * A kernel's three twins are three claims about one function; this file
 * makes them testify against each other and against finite differences of
 * the primal twin.  Everything goes through the batched generic entry points,
 * the same ones the Python graph calls, so the checker also exercises lanes,
 * strides, workspace sizing and the NULL "value not wanted" convention.
 *
 * One run, for each group of points that share their uniform parameters:
 *
 *   primal    one call: block 0 is the points themselves, then one block per
 *             (varying active input, FD step) with that input shifted; one
 *             call per (uniform active input, step) with the shared value
 *             shifted.  Gives the values and the finite differences.
 *   reference the user's scalar function on block 0, when linked in.
 *   tangent   one call with a block per varying active input i (direction
 *             e_i in every lane); one call per uniform active input (its
 *             shared direction 1); one call with the dot test's random
 *             direction and output values not wanted (NULL).
 *   adjoint   one call with a block per active output j (seed e_j); one with
 *             the random seed and values not wanted.  A uniform input's
 *             adjoint has lane stride 0 and so sums over lanes: its per-point
 *             values come from one-lane calls, and the batch sum must equal
 *             their sum.
 *
 * Finite differences: D(h) at h = cbrt(DBL_EPSILON) max(|x|, s), s the size
 * of the input at the base point capped at 1 (1 where it is 0), with the
 * evaluations at x +- h/2 used to estimate its error (which widens the bound
 * on rho where the function is noisy) and to detect branches and kinks,
 * where one-sided differences replace it (see fd_estimates and choose_fd).
 *
 * Arrays: every element of an array parameter is a slot of its own (see
 * twinc_check.h), an input (and, for an in/out array, also an output) like
 * a scalar parameter: its own FD blocks, directions and seeds.  Lanes carry
 * whole arrays, elements opt.element_stride apart; in/out arrays get the
 * points' initial values again before every call, since calls overwrite
 * them, and their companions are read after a call (the tangent of the
 * final values, the adjoint of the initial ones) where they were written
 * before it (the direction, the seed).
 *
 * Before every call the output buffers are filled with NaN and the workspace
 * with 0xff bytes (a NaN pattern), so an output a twin forgets to write, or
 * scratch it reads before writing, shows up as a non-finite number instead
 * of a lucky pass.  Comparisons treat NaN as the worst possible error.
 *
 * MIT licence — see LICENSE.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "twinc_check.h"

/* ---- small helpers ---- */


/* splitmix64 (Steele, Lea, Flood 2014): tiny, full period, good enough for
 * test directions and points. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double twinc_check_uniform(uint64_t *state) { return (double)(splitmix64(state) >> 11) * 0x1p-53; }

/* The larger of two errors, NaN counting as the largest. */
static double worst(double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    return a > b ? a : b;
}

/* |a - b| / max(1, |a| + |b|): relative for large numbers, absolute near 0. */
static double rel1(double a, double b)
{
    double d = fabs(a - b), s = fabs(a) + fabs(b);
    if (isnan(d) || isnan(s))
        return NAN;
    return d / (s > 1.0 ? s : 1.0);
}

/* "x <= tol", false for NaN. */
static int within(double x, double tol) { return x <= tol; }

/* Written-only outputs: `double *` and the return value. */
static int p_output(const twinc_param *p)
{
    return p->role == TWINC_ROLE_OUT || p->role == TWINC_ROLE_RET;
}
/* `double v[n]`: initial values in, final values out. */
static int p_inout(const twinc_param *p) { return p->role == TWINC_ROLE_INOUT; }
static int p_array(const twinc_param *p) { return p->length != NULL; }
/* Parameters whose values the checker writes before a call. */
static int p_input(const twinc_param *p) { return p->role == TWINC_ROLE_IN || p_inout(p); }
/* Parameters whose values a call writes: outputs and final in/out values. */
static int p_result(const twinc_param *p) { return p_output(p) || p_inout(p); }
static int p_uniform(const twinc_param *p)
{
    return p->role == TWINC_ROLE_IN && (p->flags & TWINC_PARAM_UNIFORM);
}
static int p_double_in(const twinc_param *p)
{
    return p_input(p) && p->type == TWINC_T_DOUBLE;
}
static int p_active_in(const twinc_param *p)
{
    return p_double_in(p) && (p->flags & TWINC_PARAM_ACTIVE);
}
static int p_active_out(const twinc_param *p)
{
    return p_result(p) && (p->flags & TWINC_PARAM_ACTIVE);
}

static size_t type_size(twinc_type t)
{
    switch (t) {
    case TWINC_T_DOUBLE:
        return sizeof(double);
    case TWINC_T_INT:
        return sizeof(int);
    case TWINC_T_LONG:
        return sizeof(long);
    case TWINC_T_UINT:
        return sizeof(unsigned);
    case TWINC_T_ULONG:
        return sizeof(unsigned long);
    }
    return 0;
}

/* Store integer v in *dst as type t; TWINC_EINVAL when out of t's range. */
static int store_int(void *dst, twinc_type t, long long v)
{
    switch (t) {
    case TWINC_T_INT:
        if (v < INT_MIN || v > INT_MAX)
            return TWINC_EINVAL;
        *(int *)dst = (int)v;
        return TWINC_OK;
    case TWINC_T_LONG:
        if (v < LONG_MIN || v > LONG_MAX)
            return TWINC_EINVAL;
        *(long *)dst = (long)v;
        return TWINC_OK;
    case TWINC_T_UINT:
        if (v < 0 || (unsigned long long)v > UINT_MAX)
            return TWINC_EINVAL;
        *(unsigned *)dst = (unsigned)v;
        return TWINC_OK;
    case TWINC_T_ULONG:
        if (ULONG_MAX < ULLONG_MAX && (v < 0 || (unsigned long long)v > ULONG_MAX))
            return TWINC_EINVAL;
        *(unsigned long *)dst = (unsigned long)(unsigned long long)v;
        return TWINC_OK;
    case TWINC_T_DOUBLE:
        break;
    }
    return TWINC_EINVAL;
}

/* The FD abscissae: step s = 0..3 is x+h, x-h, x+h/2, x-h/2 rounded to
 * double, h = cbrt(DBL_EPSILON) max(|x|, scale).  scale is the input's size
 * at the base point (point 0), capped at 1: an input of order 1e-6 (a GARCH
 * omega) gets a step of its own order, not one that crosses zero. */
static double fd_step(double x, double scale)
{
    return cbrt(DBL_EPSILON) * (fabs(x) > scale ? fabs(x) : scale);
}
static double fd_point(double x, double scale, int s)
{
    double h = fd_step(x, scale);
    switch (s) {
    case 0:
        return x + h;
    case 1:
        return x - h;
    case 2:
        return x + 0.5 * h;
    default:
        return x - 0.5 * h;
    }
}

/* The finite-difference estimates at x from f0 = f(x) and fs[s] = f at
 * fd_point(x, s), into est[4] (est[0..2]: ORDER TWINC_FD_*):
 *
 *   est[0] = D(h) = (f(x+h) - f(x-h)) / ((x+h) - (x-h))   central, O(h^2)
 *   est[1] = 2 B(h/2) - B(h), B(h) = (f(x) - f(x-h)) / h   left, O(h^2)
 *   est[2] = 2 F(h/2) - F(h), F(h) = (f(x+h) - f(x)) / h   right, O(h^2)
 *   est[3] = |D(h) - D(h/2)|, an estimate of the error of D(h): for
 *            truncation it is 3/4 of it, for rounding noise (which D(h/2)
 *            has twice as much of) it is of the same size.
 *
 * The central estimate is not Richardson-extrapolated: at this step rounding
 * dominates truncation for real pricing code, and (4 D(h/2) - D(h)) / 3
 * triples the rounding error (measured on SABR: mean rho 1.6e-9 for D(h),
 * 3.8e-9 extrapolated).  The one-sided ones are, O(h) being too coarse.
 *
 * Returns 1 when f is not smooth within h of x.  For smooth f the one-sided
 * gap F(h) - B(h) = h f'' + O(h^3) halves with the step; at a kink it stays
 * (the jump of the slope), at a jump it doubles.  A branch between h/2 and h
 * away shows instead as D(h) far from D(h/2) (normally h^2 f'''/8 apart).
 * Either must stand above rounding noise and a tenth of the tolerance, and
 * so must the difference between the left and right slopes.
 * Central differences mean nothing there (at a kink they average the two
 * slopes, which no branch has), so only the one-sided ones are candidates:
 * at least one of them stays on one side of the branch. */
static int fd_estimates(double x, double xscale, double f0, const double fs[4], double rtol,
                        double est[4])
{
    double xp = fd_point(x, xscale, 0), xm = fd_point(x, xscale, 1), xp2 = fd_point(x, xscale, 2),
           xm2 = fd_point(x, xscale, 3);
    double d1 = (fs[0] - fs[1]) / (xp - xm), d2 = (fs[2] - fs[3]) / (xp2 - xm2);
    double fwd1 = (fs[0] - f0) / (xp - x), fwd2 = (fs[2] - f0) / (xp2 - x);
    double bwd1 = (f0 - fs[1]) / (x - xm), bwd2 = (f0 - fs[3]) / (x - xm2);
    est[0] = d1;
    est[1] = 2.0 * bwd2 - bwd1;
    est[2] = 2.0 * fwd2 - fwd1;
    est[3] = fabs(d1 - d2);

    double fmag = fabs(f0);
    for (int s = 0; s < 4; s++)
        fmag = fabs(fs[s]) > fmag ? fabs(fs[s]) : fmag;
    double noise = 16.0 * DBL_EPSILON * fmag / (xp2 - x);
    double scale = fabs(est[0]) > 1.0 ? fabs(est[0]) : 1.0;
    double thr = noise > 0.1 * rtol * scale ? noise : 0.1 * rtol * scale;
    double gap1 = fwd1 - bwd1, gap2 = fwd2 - bwd2;
    if (!isfinite(est[0]) || !isfinite(f0))
        return 0; /* reported as non-finite; nothing to choose */
    int suspect = (fabs(gap2) > thr && fabs(gap2) > 0.75 * fabs(gap1)) || fabs(d1 - d2) > thr;
    /* confirmed by the two sides' slopes, as every real kink or jump is (a
     * function noisier than rounding can trip the tests above alone) */
    return suspect && fabs(est[1] - est[2]) > thr;
}

/* ---- options, create, destroy ---- */

void twinc_check_options_init(twinc_check_options *opt)
{
    if (!opt)
        return;
    opt->fd_rtol = 1e-6;
    opt->dot_rtol = 1e-10; /* rounding in ill-conditioned code (SABR near ATM) reaches ~1e-11 */
    opt->consistency_rtol = 1e-12;
    opt->fd_rtol_max = 1e-4;
    opt->halfstep = 1;
    opt->lane_stride = 1;
    opt->element_stride = 1;
    opt->seed = 1;
}

/* What create allocates besides the public struct. */
typedef struct CheckMem {
    twinc_check pub;
    int *inputs, *outputs;
    int *slot_param, *slot_elem, *param_slot, *length, *in_pos, *out_pos;
} CheckMem;

static int validate(const twinc_kernel *k, char *errbuf, size_t errlen)
{
    if (!k) {
        twinc__set_error(errbuf, errlen, "no kernel given");
        return TWINC_EINVAL;
    }
    const char *name = k->name ? k->name : "(unnamed)";
    if (k->nparams < 0 || (k->nparams > 0 && !k->params)) {
        twinc__set_error(errbuf, errlen, "kernel %s: malformed parameter table", name);
        return TWINC_EINVAL;
    }
    if (!k->primal || !k->tangent || !k->adjoint) {
        twinc__set_error(errbuf, errlen, "kernel %s: the registry has no %s twin", name,
                  !k->primal ? "primal" : !k->tangent ? "tangent" : "adjoint");
        return TWINC_ENOENT;
    }
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        const char *pn = p->name ? p->name : "(unnamed)";
        if (!p->name) {
            twinc__set_error(errbuf, errlen, "kernel %s: parameter %d has no name", name, i);
            return TWINC_EINVAL;
        }
        if (type_size(p->type) == 0) {
            twinc__set_error(errbuf, errlen, "kernel %s: parameter '%s' has unknown type %d", name, pn,
                      (int)p->type);
            return TWINC_EINVAL;
        }
        if (p->role != TWINC_ROLE_IN && !p_result(p)) {
            twinc__set_error(errbuf, errlen, "kernel %s: parameter '%s' has unknown role %d", name, pn,
                      (int)p->role);
            return TWINC_EINVAL;
        }
        if (p_output(p) && (p->type != TWINC_T_DOUBLE || (p->flags & TWINC_PARAM_UNIFORM) ||
                            p_array(p))) {
            twinc__set_error(errbuf, errlen,
                      "kernel %s: output '%s' is not a per-lane double; the gradient checker "
                      "cannot handle it",
                      name, pn);
            return TWINC_EINVAL;
        }
        if (p_array(p) && (p->type != TWINC_T_DOUBLE || !p->len)) {
            twinc__set_error(errbuf, errlen,
                      "kernel %s: array '%s' (length %s) %s; the gradient checker handles "
                      "double arrays with a length function",
                      name, pn, p->length, p->len ? "is not of doubles" : "has no length function");
            return TWINC_EINVAL;
        }
        if (p_inout(p) && (!p_array(p) || (p->flags & TWINC_PARAM_UNIFORM))) {
            twinc__set_error(errbuf, errlen,
                      "kernel %s: in/out parameter '%s' is not a per-lane array; the gradient "
                      "checker cannot handle it",
                      name, pn);
            return TWINC_EINVAL;
        }
    }
    return TWINC_OK;
}

int twinc_check_array_lengths(const twinc_kernel *k, const long long *ix, ptrdiff_t *len)
{
    if (!k || !len || k->nparams < 0 || (k->nparams > 0 && !k->params))
        return TWINC_EINVAL;
    int np = k->nparams;
    /* Every integer as a lane-stride-0 argument; len() reads nothing else. */
    union {
        int i;
        long l;
        unsigned u;
        unsigned long ul;
    } *store = calloc((size_t)(np ? np : 1), sizeof *store);
    twinc_arg *val = calloc((size_t)(np ? np : 1), sizeof *val);
    int st = store && val ? TWINC_OK : TWINC_ENOMEM;
    for (int i = 0; st == TWINC_OK && i < np; i++) {
        const twinc_param *p = &k->params[i];
        val[i] = (twinc_arg){NULL, 0, 0};
        if (p->role != TWINC_ROLE_IN || p->type == TWINC_T_DOUBLE)
            continue;
        st = store_int(&store[i], p->type, ix ? ix[i] : 1);
        val[i].p = &store[i];
    }
    for (int i = 0; st == TWINC_OK && i < np; i++) {
        const twinc_param *p = &k->params[i];
        len[i] = -1;
        if (!p_array(p))
            continue;
        if (!p->len) {
            st = TWINC_EINVAL;
            break;
        }
        ptrdiff_t m = p->len(val, 0);
        len[i] = m > 0 ? m : 0;
    }
    free(store);
    free(val);
    return st;
}

static void free_points(twinc_check *c)
{
    if (!c->points)
        return;
    for (int p = 0; p < c->npoints; p++) {
        free(c->points[p].x);
        free(c->points[p].ix);
        free(c->points[p].fd_kind);
    }
    free(c->points);
    c->points = NULL;
}

twinc_check *twinc_check_create(const twinc_kernel *k, int npoints, char *errbuf, size_t errlen)
{
    return twinc_check_create_at(k, npoints, NULL, errbuf, errlen);
}

twinc_check *twinc_check_create_at(const twinc_kernel *k, int npoints, const long long *ix,
                                   char *errbuf, size_t errlen)
{
    twinc__set_error(errbuf, errlen, "%s", "");
    if (validate(k, errbuf, errlen) != TWINC_OK)
        return NULL;
    const char *kname = k->name ? k->name : "(unnamed)";
    if (npoints < 1 || npoints > (1 << 20)) {
        twinc__set_error(errbuf, errlen, "kernel %s: %d points (give 1 to 1048576)", kname,
                         npoints);
        return NULL;
    }

    int np = k->nparams;
    size_t np1 = (size_t)(np ? np : 1);
    ptrdiff_t *len = malloc(np1 * sizeof *len);
    CheckMem *m = calloc(1, sizeof *m);
    if (!len || !m)
        goto oom;
    int st = twinc_check_array_lengths(k, ix, len);
    if (st == TWINC_ENOMEM)
        goto oom;
    if (st != TWINC_OK) {
        twinc__set_error(errbuf, errlen,
                         "kernel %s: an integer input is out of the range of its C type", kname);
        free(len);
        free(m);
        return NULL;
    }
    long long elems = 0, nslots = 0;
    for (int i = 0; i < np; i++) {
        elems += len[i] >= 0 ? len[i] : 0;
        nslots += len[i] >= 0 ? len[i] : 1;
    }
    if (elems > TWINC_CHECK_MAX_ELEMS) {
        char lens[256];
        size_t used = 0;
        lens[0] = 0;
        for (int i = 0; i < np && used + 64 < sizeof lens; i++)
            if (len[i] >= 0)
                used += (size_t)snprintf(lens + used, sizeof lens - used, "%s%s has %td",
                                         used ? ", " : "", k->params[i].name, len[i]);
        twinc__set_error(errbuf, errlen,
                         "kernel %s: %lld array elements (%s); the gradient checker handles at "
                         "most %d",
                         kname, elems, lens, TWINC_CHECK_MAX_ELEMS);
        free(len);
        free(m);
        return NULL;
    }
    twinc_check *c = &m->pub;
    c->kernel = k;
    c->nparams = np;
    c->npoints = npoints;
    c->nslots = (int)nslots;
    twinc_check_options_init(&c->opt);

    size_t ns1 = (size_t)(nslots ? nslots : 1);
    m->inputs = malloc(ns1 * sizeof(int));
    m->outputs = malloc(ns1 * sizeof(int));
    m->slot_param = malloc(ns1 * sizeof(int));
    m->slot_elem = malloc(ns1 * sizeof(int));
    m->in_pos = malloc(ns1 * sizeof(int));
    m->out_pos = malloc(ns1 * sizeof(int));
    m->param_slot = malloc(np1 * sizeof(int));
    m->length = malloc(np1 * sizeof(int));
    c->points = calloc((size_t)npoints, sizeof *c->points);
    if (!m->inputs || !m->outputs || !m->slot_param || !m->slot_elem || !m->in_pos ||
        !m->out_pos || !m->param_slot || !m->length || !c->points)
        goto oom;
    int s = 0;
    for (int i = 0; i < np; i++) {
        const twinc_param *p = &k->params[i];
        m->param_slot[i] = s;
        m->length[i] = (int)len[i];
        int cnt = len[i] >= 0 ? (int)len[i] : 1;
        for (int e = 0; e < cnt; e++, s++) {
            m->slot_param[s] = i;
            m->slot_elem[s] = len[i] >= 0 ? e : -1;
            m->in_pos[s] = m->out_pos[s] = -1;
            if (p_active_in(p)) {
                m->in_pos[s] = c->nin;
                m->inputs[c->nin++] = s;
            }
            if (p_result(p)) {
                m->out_pos[s] = c->nout;
                m->outputs[c->nout++] = s;
            }
        }
    }
    c->inputs = m->inputs;
    c->outputs = m->outputs;
    c->slot_param = m->slot_param;
    c->slot_elem = m->slot_elem;
    c->param_slot = m->param_slot;
    c->length = m->length;
    c->in_pos = m->in_pos;
    c->out_pos = m->out_pos;

    /* One block of doubles per point: x, value, xdot, ybar, then 7 matrices. */
    size_t nm = (size_t)c->nout * (size_t)c->nin + 1;
    size_t nd = 4 * ns1 + 7 * nm;
    for (int p = 0; p < npoints; p++) {
        twinc_check_point *pt = &c->points[p];
        pt->x = calloc(nd, sizeof(double));
        pt->ix = calloc(ns1, sizeof(long long));
        pt->fd_kind = calloc(nm, 1);
        if (!pt->x || !pt->ix || !pt->fd_kind)
            goto oom;
        pt->value = pt->x + ns1;
        pt->xdot = pt->value + ns1;
        pt->ybar = pt->xdot + ns1;
        pt->adjoint = pt->ybar + ns1;
        pt->tangent = pt->adjoint + nm;
        pt->fd = pt->tangent + nm;
        pt->rho = pt->fd + nm;
        pt->rho_tangent = pt->rho + nm;
        pt->fd_error = pt->rho_tangent + nm;
        pt->rho_bound = pt->fd_error + nm;
        for (int t = 0; t < c->nslots; t++) {
            const twinc_param *par = &k->params[c->slot_param[t]];
            pt->x[t] = p_double_in(par) ? 1.0 : 0.0;
            pt->ix[t] = par->role == TWINC_ROLE_IN && par->type != TWINC_T_DOUBLE
                            ? (ix ? ix[c->slot_param[t]] : 1)
                            : 0;
        }
    }
    free(len);
    return c;

oom:
    twinc__set_error(errbuf, errlen, "kernel %s: %s", kname, twinc_strerror(TWINC_ENOMEM));
    free(len);
    twinc_check_destroy(m ? &m->pub : NULL);
    return NULL;
}

void twinc_check_destroy(twinc_check *c)
{
    if (!c)
        return;
    CheckMem *m = (CheckMem *)c; /* pub is the first member */
    free_points(c);
    free(m->inputs);
    free(m->outputs);
    free(m->slot_param);
    free(m->slot_elem);
    free(m->param_slot);
    free(m->length);
    free(m->in_pos);
    free(m->out_pos);
    free(m);
}

int twinc_check_param(const twinc_check *c, const char *name)
{
    if (!c || !name)
        return -1;
    for (int i = 0; i < c->nparams; i++)
        if (strcmp(c->kernel->params[i].name, name) == 0)
            return i;
    return -1;
}

int twinc_check_slot(const twinc_check *c, int param, int elem)
{
    if (!c || param < 0 || param >= c->nparams || elem < 0)
        return -1;
    int cnt = c->length[param] >= 0 ? c->length[param] : 1;
    return elem < cnt ? c->param_slot[param] + elem : -1;
}

const char *twinc_check_slot_name(const twinc_check *c, int slot, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    if (!c || slot < 0 || slot >= c->nslots)
        snprintf(buf, len, "?");
    else if (c->slot_elem[slot] < 0)
        snprintf(buf, len, "%s", c->kernel->params[c->slot_param[slot]].name);
    else
        snprintf(buf, len, "%s[%d]", c->kernel->params[c->slot_param[slot]].name,
                 c->slot_elem[slot]);
    return buf;
}

int twinc_check_set(twinc_check *c, int point, int param, double v)
{
    if (!c || point < 0 || point >= c->npoints || param < 0 || param >= c->nparams)
        return TWINC_EINVAL;
    const twinc_param *p = &c->kernel->params[param];
    twinc_check_point *pt = &c->points[point];
    int s = c->param_slot[param];
    if (!p_input(p))
        return TWINC_EINVAL;
    if (p->type == TWINC_T_DOUBLE) {
        int cnt = c->length[param] >= 0 ? c->length[param] : 1;
        for (int e = 0; e < cnt; e++)
            pt->x[s + e] = v;
        return TWINC_OK;
    }
    if (!isfinite(v) || v != floor(v))
        return TWINC_EINVAL;
    /* 2^63 and 2^64 are exact doubles; compare against them, not LLONG_MAX. */
    if (p->type == TWINC_T_ULONG || p->type == TWINC_T_UINT) {
        if (v < 0.0 || v >= 18446744073709551616.0)
            return TWINC_EINVAL;
        if (p->type == TWINC_T_UINT && v > (double)UINT_MAX)
            return TWINC_EINVAL;
        pt->ix[s] = (long long)(unsigned long long)v; /* modulo 2^64, see header */
        return TWINC_OK;
    }
    if (v < -9223372036854775808.0 || v >= 9223372036854775808.0)
        return TWINC_EINVAL;
    long long iv = (long long)v;
    if (p->type == TWINC_T_INT && (iv < INT_MIN || iv > INT_MAX))
        return TWINC_EINVAL;
    if (p->type == TWINC_T_LONG && (iv < LONG_MIN || iv > LONG_MAX))
        return TWINC_EINVAL;
    pt->ix[s] = iv;
    return TWINC_OK;
}

void twinc_check_randomize(twinc_check *c, int base, uint64_t seed, double spread)
{
    if (!c || base < 0 || base >= c->npoints)
        return;
    const twinc_check_point *b = &c->points[base];
    uint64_t s = seed;
    for (int p = 0; p < c->npoints; p++) {
        if (p == base)
            continue;
        twinc_check_point *pt = &c->points[p];
        for (int t = 0; t < c->nslots; t++) {
            const twinc_param *par = &c->kernel->params[c->slot_param[t]];
            pt->x[t] = b->x[t];
            pt->ix[t] = b->ix[t];
            if (p_double_in(par) && !p_uniform(par)) {
                double u = 2.0 * twinc_check_uniform(&s) - 1.0;
                double scale = b->x[t] != 0.0 ? fabs(b->x[t]) : 1e-3;
                pt->x[t] = b->x[t] + u * spread * scale;
            }
        }
    }
}

/* ---- one run ---- */

/* Buffers hold cap lanes of every parameter: lane l of parameter i at
 * l * pls[i] (0 if uniform), element e of it e * pes[i] further.  pls[i] is
 * lane_stride times a whole lane's span (1 for a scalar, len * es for an
 * array), so lane_stride > 1 leaves NaN between lanes and element_stride
 * > 1 NaN between elements. */
typedef struct Run {
    twinc_check *c;
    const twinc_kernel *k;
    int np, ns;
    size_t cap;             /* lanes allocated */
    size_t pad;             /* NaN elements before and after every buffer */
    size_t *pls;            /* [np] lane stride of each parameter's buffers, 0 if uniform */
    size_t *pes;            /* [np] element stride, 0 for scalars */
    double *scale;          /* [ns] FD step scale of each slot (fd_step) */
    void **val;             /* [np] value buffers */
    double **der;           /* [np] dot/bar buffers, doubles only; else NULL */
    twinc_arg *aval, *ader; /* [np] the arguments of the next call */
    unsigned char *ws;      /* workspace, 64-byte aligned */
    size_t wscap;
    int *vin, nvin;         /* varying active input slots */
    int *uin, nuin;         /* uniform active input slots */
    int *aout, naout;       /* active output slots */
    int G;                  /* points in the current group */
    twinc_check_point **pt; /* [G] */
    double *F;              /* [nin * 4 * G * nout] primal values at the FD abscissae */
    double *cand;           /* [nin * G * nout * 4] fd_estimates per entry */
    unsigned char *kink;    /* [nin * G * nout] not smooth there */
    double *xb;             /* [G * nin] batch adjoints of the random seed */
    double *lhs_abs, *rhs_abs; /* [G] sums of |terms| of the dot test */
    double *usum;           /* [3 * nuin] scratch of run_adjoint_set */
} Run;

static const twinc_param *sparam(const Run *R, int s) { return &R->k->params[R->c->slot_param[s]]; }

static size_t selem(const Run *R, int s)
{
    return R->c->slot_elem[s] < 0 ? 0 : (size_t)R->c->slot_elem[s];
}

/* Offset (in elements) of slot s in lane `lane`. */
static size_t soff(const Run *R, int s, size_t lane)
{
    int i = R->c->slot_param[s];
    return lane * R->pls[i] + selem(R, s) * R->pes[i];
}

static void *val_at(const Run *R, int s, size_t lane)
{
    return (char *)R->val[R->c->slot_param[s]] + soff(R, s, lane) * type_size(sparam(R, s)->type);
}

static double *der_at(const Run *R, int s, size_t lane)
{
    return R->der[R->c->slot_param[s]] + soff(R, s, lane);
}

static double out_at(const Run *R, int s, size_t lane) { return *(double *)val_at(R, s, lane); }

static void set_x(Run *R, int s, size_t lane, double v) { *(double *)val_at(R, s, lane) = v; }

/* Write point pt's inputs (in/out initial values included) into lane `lane`. */
static int put_point(Run *R, size_t lane, const twinc_check_point *pt)
{
    for (int s = 0; s < R->ns; s++) {
        const twinc_param *p = sparam(R, s);
        if (!p_input(p))
            continue;
        void *dst = val_at(R, s, lane);
        if (p->type == TWINC_T_DOUBLE)
            *(double *)dst = pt->x[s];
        else if (store_int(dst, p->type, pt->ix[s]) != TWINC_OK)
            return TWINC_EINVAL;
    }
    return TWINC_OK;
}

/* Lanes [0, n): outputs' values to NaN, all derivative buffers to 0 (the
 * padding between lanes and elements stays NaN: see run_alloc). */
static void clear_lanes(Run *R, size_t n)
{
    for (int s = 0; s < R->ns; s++) {
        const twinc_param *p = sparam(R, s);
        size_t len = p_uniform(p) ? 1 : n;
        if (p_output(p))
            for (size_t l = 0; l < n; l++)
                *(double *)val_at(R, s, l) = NAN;
        if (R->der[R->c->slot_param[s]])
            for (size_t l = 0; l < len; l++)
                *der_at(R, s, l) = 0.0;
    }
}

/* Point the call's arguments at lanes [first, ...); outputs' values NULL
 * when not wanted (in/out arrays are inputs too: never NULL). */
static void set_args(Run *R, size_t first, int want_values)
{
    for (int i = 0; i < R->np; i++) {
        const twinc_param *p = &R->k->params[i];
        size_t off = first * R->pls[i];
        ptrdiff_t ls = (ptrdiff_t)R->pls[i], es = (ptrdiff_t)R->pes[i];
        R->aval[i] = (twinc_arg){(char *)R->val[i] + off * type_size(p->type), ls, es};
        if (p_output(p) && !want_values)
            R->aval[i].p = NULL;
        R->ader[i] = R->der[i] ? (twinc_arg){R->der[i] + off, ls, es} : (twinc_arg){NULL, 0, 0};
    }
}

/* The workspace a call of n lanes needs (NULL if none), filled with 0xff. */
static int get_ws(Run *R, size_t n, twinc_workspace *ws, twinc_workspace **wsp)
{
    *wsp = NULL;
    if (!R->k->workspace)
        return TWINC_OK;
    size_t bytes = R->k->workspace(n, R->aval);
    if (bytes == 0)
        return TWINC_OK;
    if (bytes > R->wscap) {
        size_t rounded = (bytes + 63) / 64 * 64;
        if (rounded < bytes)
            return TWINC_ENOMEM;
        free(R->ws);
        R->ws = aligned_alloc(64, rounded);
        R->wscap = R->ws ? rounded : 0;
        if (!R->ws)
            return TWINC_ENOMEM;
    }
    memset(R->ws, 0xff, bytes);
    ws->base = R->ws;
    ws->bytes = bytes;
    *wsp = ws;
    return TWINC_OK;
}

enum { CALL_PRIMAL, CALL_REFERENCE, CALL_TANGENT, CALL_ADJOINT };
static const char *const call_name[] = {"primal", "reference", "tangent", "adjoint"};

/* Call a twin on lanes [first, first + n). */
static int call(Run *R, int which, size_t first, size_t n, int want_values)
{
    twinc_workspace wsbuf, *ws;
    set_args(R, first, which == CALL_PRIMAL || which == CALL_REFERENCE || want_values);
    int st = get_ws(R, n, &wsbuf, &ws);
    if (st != TWINC_OK)
        return st;
    switch (which) {
    case CALL_PRIMAL:
        return R->k->primal(n, R->aval, ws);
    case CALL_REFERENCE:
        return R->k->reference(n, R->aval, ws);
    case CALL_TANGENT:
        return R->k->tangent(n, R->aval, R->ader, ws);
    default:
        return R->k->adjoint(n, R->aval, R->ader, ws);
    }
}

/* Record an error for every point of the group (keeping the first one). */
static int group_fail(Run *R, int st, const char *what)
{
    for (int g = 0; g < R->G; g++) {
        if (R->pt[g]->status == TWINC_OK) {
            R->pt[g]->status = st;
            R->pt[g]->failed = what;
        }
    }
    return st;
}

#define CALL_OR_FAIL(R, which, first, n, want)                                                 \
    do {                                                                                       \
        int st_ = call((R), (which), (first), (n), (want));                                    \
        if (st_ != TWINC_OK)                                                                   \
            return group_fail((R), st_, call_name[(which)]);                                   \
    } while (0)

/* Put the group's points into every block of lanes [0, nblk * G). */
static int put_blocks(Run *R, size_t nblk)
{
    for (size_t b = 0; b < nblk; b++)
        for (int g = 0; g < R->G; g++)
            if (put_point(R, b * (size_t)R->G + (size_t)g, R->pt[g]) != TWINC_OK)
                return group_fail(R, TWINC_EINVAL, "checker");
    return TWINC_OK;
}

/* Compare the output values in lane `lane` with point g's primal values. */
static void check_values(Run *R, size_t lane, int g)
{
    twinc_check_point *pt = R->pt[g];
    for (int jo = 0; jo < R->c->nout; jo++) {
        int j = R->c->outputs[jo];
        pt->consistency = worst(pt->consistency, rel1(out_at(R, j, lane), pt->value[j]));
    }
}

/* Position of slot s among the active inputs. */
static int in_pos(const Run *R, int s) { return R->c->in_pos[s]; }

/* Fill the tangents of the written-only active outputs of lanes [0, n)
 * with NaN (a tangent twin must write them); in/out companions hold the
 * directions and are left alone. */
static void poison_out_tangents(Run *R, size_t n)
{
    for (int b = 0; b < R->naout; b++)
        if (p_output(sparam(R, R->aout[b])))
            for (size_t l = 0; l < n; l++)
                *der_at(R, R->aout[b], l) = NAN;
}

/* Values and finite differences. */
static int run_primal(Run *R)
{
    twinc_check *c = R->c;
    const int S = c->opt.halfstep ? 4 : 2;
    const int G = R->G, nout = c->nout;
    size_t nblk = 1 + (size_t)S * (size_t)R->nvin;

    int st = put_blocks(R, nblk);
    if (st != TWINC_OK)
        return st;
    for (int a = 0; a < R->nvin; a++)
        for (int s = 0; s < S; s++)
            for (int g = 0; g < G; g++) {
                int i = R->vin[a];
                set_x(R, i, (1 + (size_t)a * S + s) * G + g, fd_point(R->pt[g]->x[i], R->scale[i], s));
            }
    clear_lanes(R, nblk * G);
    CALL_OR_FAIL(R, CALL_PRIMAL, 0, nblk * G, 1);

    for (int g = 0; g < G; g++)
        for (int jo = 0; jo < nout; jo++)
            R->pt[g]->value[c->outputs[jo]] = out_at(R, c->outputs[jo], (size_t)g);
    /* F[((ii * 4 + s) * G + g) * nout + jo], ii the position among c->inputs */
    for (int a = 0; a < R->nvin; a++) {
        int ii = in_pos(R, R->vin[a]);
        for (int s = 0; s < S; s++)
            for (int g = 0; g < G; g++)
                for (int jo = 0; jo < nout; jo++)
                    R->F[(((size_t)ii * 4 + s) * G + g) * nout + jo] =
                        out_at(R, c->outputs[jo], (1 + (size_t)a * S + s) * G + g);
    }

    /* A uniform input is shared by the lanes: shift it a call at a time. */
    for (int a = 0; a < R->nuin; a++) {
        int i = R->uin[a], ii = in_pos(R, i);
        for (int s = 0; s < S; s++) {
            if ((st = put_blocks(R, 1)) != TWINC_OK)
                return st;
            set_x(R, i, 0, fd_point(R->pt[0]->x[i], R->scale[i], s));
            clear_lanes(R, G);
            CALL_OR_FAIL(R, CALL_PRIMAL, 0, G, 1);
            for (int g = 0; g < G; g++)
                for (int jo = 0; jo < nout; jo++)
                    R->F[(((size_t)ii * 4 + s) * G + g) * nout + jo] =
                        out_at(R, c->outputs[jo], (size_t)g);
        }
    }

    for (int ii = 0; ii < c->nin; ii++) {
        int i = c->inputs[ii];
        for (int g = 0; g < G; g++) {
            double x = R->pt[g]->x[i];
            for (int jo = 0; jo < nout; jo++) {
                const double *f = &R->F[((size_t)ii * 4 * G + g) * nout + jo];
                size_t stride = (size_t)G * nout; /* from step s to s + 1 */
                double fs[4] = {f[0], f[stride], f[2 * stride], f[3 * stride]};
                size_t e = ((size_t)ii * G + g) * nout + jo;
                double *est = &R->cand[4 * e];
                if (S == 4) {
                    R->kink[e] = fd_estimates(x, R->scale[i], R->pt[g]->value[c->outputs[jo]],
                                              fs, c->opt.fd_rtol, est);
                } else {
                    R->kink[e] = 0;
                    est[0] = (fs[0] - fs[1]) / (fd_point(x, R->scale[i], 0) - fd_point(x, R->scale[i], 1));
                    est[1] = est[2] = est[3] = 0.0;
                }
                size_t ix = twinc_check_idx(c, c->outputs[jo], i);
                R->pt[g]->fd[ix] = est[0];
                R->pt[g]->fd_error[ix] = est[3];
            }
        }
    }
    return TWINC_OK;
}

/* The bound on rho for an adjoint a against the central estimate fd with
 * error estimate err: fd_rtol, raised to 10 err (relative, as rho is) where
 * the differences are noisier than that, but never above fd_rtol_max. */
static double rho_bound(const twinc_check_options *o, double a, double fd, double err)
{
    double s = fabs(a) + fabs(fd);
    double allow = 10.0 * err / (s > 1.0 ? s : 1.0);
    if (!(allow <= o->fd_rtol_max)) /* NaN too */
        allow = o->fd_rtol_max;
    return allow > o->fd_rtol ? allow : o->fd_rtol;
}

/* Where the central estimate disagrees with the adjoint and the function is
 * not smooth within h of x, take the one-sided estimate that agrees better:
 * AD follows one side of a branch, and either may be the one taken (see
 * fd_estimates).  Where the central estimate agrees it stays: a noisy but
 * smooth function is better served by it (one-sided differences amplify
 * noise more), and at a kink it is the mean of the two slopes, a
 * subgradient, which we accept. */
static void choose_fd(Run *R)
{
    twinc_check *c = R->c;
    for (int ii = 0; ii < c->nin; ii++)
        for (int g = 0; g < R->G; g++)
            for (int jo = 0; jo < c->nout; jo++) {
                size_t e = ((size_t)ii * R->G + g) * c->nout + jo;
                size_t ix = twinc_check_idx(c, c->outputs[jo], c->inputs[ii]);
                twinc_check_point *pt = R->pt[g];
                pt->fd_kind[ix] = TWINC_FD_SMOOTH;
                pt->rho_bound[ix] =
                    rho_bound(&c->opt, pt->adjoint[ix], pt->fd[ix], pt->fd_error[ix]);
                if (!R->kink[e] || within(rel1(pt->adjoint[ix], pt->fd[ix]), pt->rho_bound[ix]))
                    continue;
                const double *est = &R->cand[4 * e];
                pt->rho_bound[ix] = c->opt.fd_rtol;
                int right = rel1(pt->adjoint[ix], est[2]) < rel1(pt->adjoint[ix], est[1]);
                pt->fd[ix] = est[right ? 2 : 1];
                pt->fd_kind[ix] = right ? TWINC_FD_RIGHT : TWINC_FD_LEFT;
                pt->nonsmooth++;
            }
}

static int run_reference(Run *R)
{
    if (!R->k->reference)
        return TWINC_OK;
    int st = put_blocks(R, 1);
    if (st != TWINC_OK)
        return st;
    clear_lanes(R, R->G);
    st = call(R, CALL_REFERENCE, 0, R->G, 1);
    if (st == TWINC_ENOREF)
        return TWINC_OK; /* the user's function is not linked in: nothing to compare */
    if (st != TWINC_OK)
        return group_fail(R, st, "reference");
    for (int g = 0; g < R->G; g++)
        check_values(R, (size_t)g, g);
    return TWINC_OK;
}

/* Read the active outputs' tangents at `lane` into column i of point g. */
static void read_tangent(Run *R, size_t lane, int g, int i)
{
    for (int b = 0; b < R->naout; b++) {
        int j = R->aout[b];
        R->pt[g]->tangent[twinc_check_idx(R->c, j, i)] = *der_at(R, j, lane);
    }
}

static int run_tangent(Run *R)
{
    twinc_check *c = R->c;
    const int G = R->G;
    int st;

    if (R->nvin > 0) { /* block a: direction e_vin[a] */
        size_t n = (size_t)R->nvin * G;
        if ((st = put_blocks(R, (size_t)R->nvin)) != TWINC_OK)
            return st;
        clear_lanes(R, n);
        for (int a = 0; a < R->nvin; a++)
            for (int g = 0; g < G; g++)
                *der_at(R, R->vin[a], (size_t)a * G + g) = 1.0;
        poison_out_tangents(R, n);
        CALL_OR_FAIL(R, CALL_TANGENT, 0, n, 1);
        for (int a = 0; a < R->nvin; a++)
            for (int g = 0; g < G; g++) {
                read_tangent(R, (size_t)a * G + g, g, R->vin[a]);
                check_values(R, (size_t)a * G + g, g);
            }
    }
    for (int a = 0; a < R->nuin; a++) { /* a shared direction e_uin[a] */
        if ((st = put_blocks(R, 1)) != TWINC_OK)
            return st;
        clear_lanes(R, G);
        *der_at(R, R->uin[a], 0) = 1.0;
        poison_out_tangents(R, (size_t)G);
        CALL_OR_FAIL(R, CALL_TANGENT, 0, G, 1);
        for (int g = 0; g < G; g++) {
            read_tangent(R, (size_t)g, g, R->uin[a]);
            check_values(R, (size_t)g, g);
        }
    }

    /* The dot test's direction; values not wanted (unless no other call
     * checked them). */
    int want = c->nin == 0;
    if ((st = put_blocks(R, 1)) != TWINC_OK)
        return st;
    clear_lanes(R, G);
    for (int g = 0; g < G; g++)
        for (int ii = 0; ii < c->nin; ii++) {
            int i = c->inputs[ii];
            *der_at(R, i, (size_t)g) = R->pt[g]->xdot[i]; /* uniform: all share pt[0]'s */
        }
    poison_out_tangents(R, (size_t)G);
    CALL_OR_FAIL(R, CALL_TANGENT, 0, G, want);
    for (int g = 0; g < G; g++) {
        twinc_check_point *pt = R->pt[g];
        double l = 0.0, la = 0.0;
        for (int b = 0; b < R->naout; b++) {
            int j = R->aout[b];
            double t = *der_at(R, j, (size_t)g) * pt->ybar[j];
            l += t;
            la += fabs(t);
        }
        pt->dot_lhs = l;
        R->lhs_abs[g] = la;
        if (want)
            check_values(R, (size_t)g, g);
    }
    return TWINC_OK;
}

/* Adjoint of the seeds already in lanes: one-lane calls for the uniform
 * inputs.  seed(b) gives the seed of active output b at a lane; results go
 * to store(g, b, i, value). */
typedef struct SeedSpec {
    int nblk;      /* blocks of G lanes */
    int unit;      /* 1: block b seeds e_aout[b]; 0: one block, seeds ybar */
} SeedSpec;

static void put_seeds(Run *R, const SeedSpec *sp, size_t lane, int b, int g)
{
    for (int o = 0; o < R->naout; o++) {
        int j = R->aout[o];
        *der_at(R, j, lane) = sp->unit ? (o == b ? 1.0 : 0.0) : R->pt[g]->ybar[j];
    }
}

static int run_adjoint_set(Run *R, const SeedSpec *sp, int want)
{
    twinc_check *c = R->c;
    const int G = R->G;
    size_t n = (size_t)sp->nblk * G;
    int st;

    if ((st = put_blocks(R, (size_t)sp->nblk)) != TWINC_OK)
        return st;
    clear_lanes(R, n);
    for (int b = 0; b < sp->nblk; b++)
        for (int g = 0; g < G; g++)
            put_seeds(R, sp, (size_t)b * G + g, b, g);
    CALL_OR_FAIL(R, CALL_ADJOINT, 0, n, want);

    /* Varying inputs: per lane from the batch. */
    for (int b = 0; b < sp->nblk; b++)
        for (int g = 0; g < G; g++) {
            size_t lane = (size_t)b * G + g;
            for (int a = 0; a < R->nvin; a++) {
                int i = R->vin[a];
                double v = *der_at(R, i, lane);
                if (sp->unit)
                    R->pt[g]->adjoint[twinc_check_idx(c, R->aout[b], i)] = v;
                else
                    R->xb[(size_t)g * c->nin + in_pos(R, i)] = v;
            }
            if (want)
                check_values(R, lane, g);
        }
    if (R->nuin == 0)
        return TWINC_OK;

    /* Uniform inputs: the batch summed over lanes; redo each lane alone. */
    double *batch_sum = R->usum;
    double *lane_sum = batch_sum + R->nuin;
    double *abs_sum = lane_sum + R->nuin;
    for (int a = 0; a < R->nuin; a++) {
        batch_sum[a] = *der_at(R, R->uin[a], 0);
        lane_sum[a] = abs_sum[a] = 0.0;
    }
    for (int b = 0; b < sp->nblk; b++)
        for (int g = 0; g < G; g++) {
            size_t lane = (size_t)b * G + g;
            twinc_check_point *pt = R->pt[g];
            /* the batch overwrote the lane's in/out values */
            if (put_point(R, lane, pt) != TWINC_OK)
                return group_fail(R, TWINC_EINVAL, "checker");
            for (int s = 0; s < R->ns; s++) {
                const twinc_param *p = sparam(R, s);
                if (R->der[R->c->slot_param[s]] && (p_uniform(p) || p->role == TWINC_ROLE_IN))
                    *der_at(R, s, lane) = 0.0;
            }
            put_seeds(R, sp, lane, b, g);
            CALL_OR_FAIL(R, CALL_ADJOINT, lane, 1, 1);
            check_values(R, lane, g);
            for (int a = 0; a < R->nuin; a++) {
                int i = R->uin[a];
                double v = *der_at(R, i, lane);
                if (sp->unit)
                    pt->adjoint[twinc_check_idx(c, R->aout[b], i)] = v;
                else
                    R->xb[(size_t)g * c->nin + in_pos(R, i)] = v;
                lane_sum[a] += v;
                abs_sum[a] += fabs(v);
            }
            /* the varying inputs again, one lane at a time */
            for (int a = 0; a < R->nvin; a++) {
                int i = R->vin[a];
                double batch = sp->unit ? pt->adjoint[twinc_check_idx(c, R->aout[b], i)]
                                        : R->xb[(size_t)g * c->nin + in_pos(R, i)];
                pt->consistency = worst(pt->consistency, rel1(*der_at(R, i, lane), batch));
            }
        }
    for (int a = 0; a < R->nuin; a++) {
        double d = fabs(batch_sum[a] - lane_sum[a]);
        double e = isnan(d) || isnan(abs_sum[a]) ? NAN : d / (abs_sum[a] > 1.0 ? abs_sum[a] : 1.0);
        for (int g = 0; g < G; g++)
            R->pt[g]->consistency = worst(R->pt[g]->consistency, e);
    }
    return TWINC_OK;
}

static int run_adjoint(Run *R)
{
    twinc_check *c = R->c;
    int st;
    if (R->naout > 0) {
        SeedSpec unit = {R->naout, 1};
        if ((st = run_adjoint_set(R, &unit, 1)) != TWINC_OK)
            return st;
    }
    SeedSpec rnd = {1, 0};
    if ((st = run_adjoint_set(R, &rnd, R->naout == 0)) != TWINC_OK)
        return st;
    for (int g = 0; g < R->G; g++) {
        twinc_check_point *pt = R->pt[g];
        double r = 0.0, ra = 0.0;
        for (int ii = 0; ii < c->nin; ii++) {
            double t = pt->xdot[c->inputs[ii]] * R->xb[(size_t)g * c->nin + ii];
            r += t;
            ra += fabs(t);
        }
        pt->dot_rhs = r;
        R->rhs_abs[g] = ra;
    }
    return TWINC_OK;
}

static void run_free(Run *R)
{
    if (R->val)
        for (int i = 0; i < R->np; i++)
            if (R->val[i])
                free((char *)R->val[i] - R->pad * type_size(R->k->params[i].type));
    if (R->der)
        for (int i = 0; i < R->np; i++)
            if (R->der[i])
                free(R->der[i] - R->pad);
    free(R->val);
    free(R->der);
    free(R->pls);
    free(R->pes);
    free(R->scale);
    free(R->aval);
    free(R->ader);
    free(R->ws);
    free(R->vin);
    free(R->uin);
    free(R->aout);
    free(R->pt);
    free(R->F);
    free(R->cand);
    free(R->kink);
    free(R->xb);
    free(R->lhs_abs);
    free(R->rhs_abs);
    free(R->usum);
}

/* Buffers for groups of up to maxG points. */
static int run_alloc(Run *R, twinc_check *c, int maxG)
{
    const twinc_kernel *k = c->kernel;
    int np = k->nparams, ns = c->nslots;
    size_t np1 = (size_t)(np ? np : 1), ns1 = (size_t)(ns ? ns : 1);
    memset(R, 0, sizeof *R);
    R->c = c;
    R->k = k;
    R->np = np;
    R->ns = ns;
    R->vin = malloc(ns1 * sizeof(int));
    R->uin = malloc(ns1 * sizeof(int));
    R->aout = malloc(ns1 * sizeof(int));
    R->val = calloc(np1, sizeof(void *));
    R->der = calloc(np1, sizeof(double *));
    R->pls = calloc(np1, sizeof(size_t));
    R->pes = calloc(np1, sizeof(size_t));
    R->aval = calloc(np1, sizeof(twinc_arg));
    R->ader = calloc(np1, sizeof(twinc_arg));
    R->pt = calloc((size_t)maxG, sizeof *R->pt);
    R->scale = malloc(ns1 * sizeof(double));
    if (!R->vin || !R->uin || !R->aout || !R->val || !R->der || !R->pls || !R->pes ||
        !R->aval || !R->ader || !R->pt || !R->scale)
        return TWINC_ENOMEM;
    for (int s = 0; s < ns; s++) { /* see fd_step */
        double b = fabs(c->points[0].x[s]);
        R->scale[s] = b > 0.0 && b < 1.0 ? b : 1.0;
    }
    for (int s = 0; s < ns; s++) {
        const twinc_param *p = sparam(R, s);
        if (p_active_in(p) && p_uniform(p))
            R->uin[R->nuin++] = s;
        else if (p_active_in(p))
            R->vin[R->nvin++] = s;
        if (p_active_out(p))
            R->aout[R->naout++] = s;
    }
    size_t blocks = 1 + 4 * (size_t)R->nvin;
    if ((size_t)R->naout > blocks)
        blocks = (size_t)R->naout;
    R->cap = blocks * (size_t)maxG;
    size_t L = c->opt.lane_stride >= 1 ? (size_t)c->opt.lane_stride : 1;
    size_t E = c->opt.element_stride >= 1 ? (size_t)c->opt.element_stride : 1;
    /* Per-lane buffers hold cap lanes; the elements in between are NaN for
     * doubles (-1 for integers) and stay so: a twin that ignores a stride
     * reads them.  So are pad elements before and after every buffer, where
     * an index off by a little (x[n - 1] with n = 0 in the user's code)
     * lands: a NaN, not someone else's memory. */
    R->pad = 16 * E + 16;
    for (int i = 0; i < np; i++) {
        const twinc_param *p = &k->params[i];
        size_t span = 1, ts = type_size(p->type);
        if (p_array(p)) {
            R->pes[i] = E;
            span = c->length[i] > 0 ? (size_t)c->length[i] * E : 1;
        }
        R->pls[i] = p_uniform(p) ? 0 : L * span;
        size_t len = (p_uniform(p) ? span : R->cap * R->pls[i]) + 2 * R->pad;
        char *v = malloc(len * ts);
        if (!v)
            return TWINC_ENOMEM;
        R->val[i] = v + R->pad * ts;
        if (p->type == TWINC_T_DOUBLE) {
            double *d = malloc(len * sizeof(double));
            if (!d)
                return TWINC_ENOMEM;
            R->der[i] = d + R->pad;
            for (size_t l = 0; l < len; l++)
                ((double *)v)[l] = d[l] = NAN;
        } else {
            memset(v, 0xff, len * ts);
        }
    }
    size_t nout1 = (size_t)(c->nout ? c->nout : 1), nin1 = (size_t)(c->nin ? c->nin : 1);
    R->F = malloc(nin1 * 4 * (size_t)maxG * nout1 * sizeof(double));
    R->cand = malloc(nin1 * 4 * (size_t)maxG * nout1 * sizeof(double));
    R->kink = malloc(nin1 * (size_t)maxG * nout1);
    R->xb = malloc((size_t)maxG * nin1 * sizeof(double));
    R->lhs_abs = malloc((size_t)maxG * sizeof(double));
    R->rhs_abs = malloc((size_t)maxG * sizeof(double));
    R->usum = malloc(3 * ns1 * sizeof(double));
    if (!R->F || !R->cand || !R->kink || !R->xb || !R->lhs_abs || !R->rhs_abs || !R->usum)
        return TWINC_ENOMEM;
    return TWINC_OK;
}

/* Reset results, draw the dot test's directions. */
static void reset_points(twinc_check *c)
{
    const twinc_kernel *k = c->kernel;
    size_t nm = (size_t)c->nout * (size_t)c->nin + 1;
    for (int p = 0; p < c->npoints; p++) {
        twinc_check_point *pt = &c->points[p];
        uint64_t s = c->opt.seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(p + 1));
        for (int t = 0; t < c->nslots; t++) {
            pt->value[t] = c->out_pos[t] >= 0 ? NAN : 0.0;
            pt->xdot[t] = pt->ybar[t] = 0.0;
        }
        for (size_t ix = 0; ix < nm; ix++) {
            double init = ix + 1 < nm ? NAN : 0.0; /* the last entry stays 0 */
            pt->adjoint[ix] = pt->tangent[ix] = pt->fd[ix] = init;
            pt->rho[ix] = pt->rho_tangent[ix] = init;
            pt->fd_error[ix] = 0.0;
            pt->rho_bound[ix] = ix + 1 < nm ? c->opt.fd_rtol : 0.0;
        }
        /* Outputs the registry does not flag active have derivative 0. */
        for (int jo = 0; jo < c->nout; jo++) {
            int j = c->outputs[jo];
            if (p_active_out(&k->params[c->slot_param[j]]))
                continue;
            for (int ii = 0; ii < c->nin; ii++) {
                size_t ix = twinc_check_idx(c, j, c->inputs[ii]);
                pt->adjoint[ix] = pt->tangent[ix] = 0.0;
            }
        }
        for (int ii = 0; ii < c->nin; ii++) {
            double u = 0.5 + twinc_check_uniform(&s);
            pt->xdot[c->inputs[ii]] = twinc_check_uniform(&s) < 0.5 ? -u : u;
        }
        for (int jo = 0; jo < c->nout; jo++) {
            double u = 0.5 + twinc_check_uniform(&s);
            if (p_active_out(&k->params[c->slot_param[c->outputs[jo]]]))
                pt->ybar[c->outputs[jo]] = twinc_check_uniform(&s) < 0.5 ? -u : u;
        }
        pt->dot_lhs = pt->dot_rhs = pt->dot_error = NAN;
        pt->max_rho = NAN;
        pt->consistency = 0.0;
        pt->nonsmooth = 0;
        memset(pt->fd_kind, 0, nm);
        pt->status = TWINC_OK;
        pt->failed = NULL;
        pt->flags = 0;
        pt->pass = 0;
    }
}

/* Do points p and q share every uniform parameter's value? */
static int same_uniforms(const twinc_check *c, int p, int q)
{
    for (int t = 0; t < c->nslots; t++) {
        if (!p_uniform(&c->kernel->params[c->slot_param[t]]))
            continue;
        if (memcmp(&c->points[p].x[t], &c->points[q].x[t], sizeof(double)) != 0 ||
            c->points[p].ix[t] != c->points[q].ix[t])
            return 0;
    }
    return 1;
}

/* Do point p's integers give the arrays the lengths the checker was made
 * for (and fit their types)? */
static int lengths_match(const twinc_check *c, int p, ptrdiff_t *len, long long *ixp)
{
    for (int i = 0; i < c->nparams; i++)
        ixp[i] = c->points[p].ix[c->param_slot[i]];
    if (twinc_check_array_lengths(c->kernel, ixp, len) != TWINC_OK)
        return 0;
    for (int i = 0; i < c->nparams; i++)
        if (len[i] != c->length[i])
            return 0;
    return 1;
}

static void finish_point(twinc_check *c, twinc_check_point *pt, double lhs_abs, double rhs_abs)
{
    const twinc_check_options *o = &c->opt;
    unsigned flags = 0;
    double mr = 0.0, mrt = 0.0;
    int finite = 1, bad_adjoint = 0, bad_tangent = 0;
    if (pt->status != TWINC_OK) { /* the numbers are incomplete: say only that */
        pt->flags = TWINC_CHECK_F_STATUS;
        pt->pass = 0;
        return;
    }
    for (int jo = 0; jo < c->nout; jo++) {
        int j = c->outputs[jo];
        finite &= isfinite(pt->value[j]) != 0;
        for (int ii = 0; ii < c->nin; ii++) {
            size_t ix = twinc_check_idx(c, j, c->inputs[ii]);
            finite &= isfinite(pt->adjoint[ix]) && isfinite(pt->tangent[ix]) &&
                      isfinite(pt->fd[ix]);
            pt->rho[ix] = rel1(pt->adjoint[ix], pt->fd[ix]);
            pt->rho_tangent[ix] = rel1(pt->tangent[ix], pt->fd[ix]);
            mr = worst(mr, pt->rho[ix]);
            mrt = worst(mrt, pt->rho_tangent[ix]);
            bad_adjoint |= !within(pt->rho[ix], pt->rho_bound[ix]);
            bad_tangent |= !within(pt->rho_tangent[ix], pt->rho_bound[ix]);
        }
    }
    double denom = lhs_abs + rhs_abs;
    pt->dot_error = fabs(pt->dot_lhs - pt->dot_rhs) / (denom > 1e-300 ? denom : 1e-300);
    if (isnan(denom))
        pt->dot_error = NAN;
    finite &= isfinite(pt->dot_lhs) && isfinite(pt->dot_rhs);
    pt->max_rho = worst(mr, mrt);
    if (!finite)
        flags |= TWINC_CHECK_F_NONFINITE;
    if (bad_adjoint)
        flags |= TWINC_CHECK_F_ADJOINT;
    if (bad_tangent)
        flags |= TWINC_CHECK_F_TANGENT;
    if (!within(pt->dot_error, o->dot_rtol))
        flags |= TWINC_CHECK_F_DOT;
    if (!within(pt->consistency, o->consistency_rtol))
        flags |= TWINC_CHECK_F_CONSISTENCY;
    pt->flags = flags;
    pt->pass = flags == 0;
}

int twinc_check_run(twinc_check *c)
{
    if (!c)
        return TWINC_EINVAL;
    int first_error = TWINC_OK;
    size_t np1 = (size_t)(c->nparams ? c->nparams : 1);
    int *group = malloc((size_t)c->npoints * sizeof(int));
    int *done = calloc((size_t)c->npoints, sizeof(int));
    double *abs_l = malloc((size_t)c->npoints * 2 * sizeof(double));
    ptrdiff_t *len = malloc(np1 * sizeof *len);
    long long *ixp = malloc(np1 * sizeof *ixp);
    Run R;
    int st = run_alloc(&R, c, c->npoints);
    if (!group || !done || !abs_l || !len || !ixp)
        st = TWINC_ENOMEM;

    reset_points(c);
    for (int p = 0; abs_l && p < c->npoints; p++)
        abs_l[2 * p] = abs_l[2 * p + 1] = NAN;
    if (st != TWINC_OK) {
        for (int p = 0; p < c->npoints; p++) {
            c->points[p].status = st;
            c->points[p].failed = "checker";
        }
        first_error = st;
    }
    /* Array lengths are fixed at create: a point whose integers give others
     * cannot be evaluated. */
    int has_arrays = 0;
    for (int i = 0; i < c->nparams; i++)
        has_arrays |= c->length[i] >= 0;
    for (int p = 0; st == TWINC_OK && has_arrays && p < c->npoints; p++) {
        if (lengths_match(c, p, len, ixp))
            continue;
        done[p] = 1;
        c->points[p].status = TWINC_EINVAL;
        c->points[p].failed = "checker";
        if (first_error == TWINC_OK)
            first_error = TWINC_EINVAL;
    }

    for (int p = 0; st == TWINC_OK && p < c->npoints; p++) {
        if (done[p])
            continue;
        R.G = 0;
        for (int q = p; q < c->npoints; q++) {
            if (!done[q] && same_uniforms(c, p, q)) {
                done[q] = 1;
                group[R.G] = q;
                R.pt[R.G++] = &c->points[q];
            }
        }
        /* Uniform inputs share their direction within a batch. */
        for (int ii = 0; ii < c->nin; ii++) {
            int i = c->inputs[ii];
            if (p_uniform(&c->kernel->params[c->slot_param[i]]))
                for (int g = 1; g < R.G; g++)
                    R.pt[g]->xdot[i] = R.pt[0]->xdot[i];
        }
        int gst = run_primal(&R);
        if (gst == TWINC_OK)
            gst = run_reference(&R);
        if (gst == TWINC_OK)
            gst = run_tangent(&R);
        if (gst == TWINC_OK)
            gst = run_adjoint(&R);
        if (gst == TWINC_OK)
            choose_fd(&R);
        if (gst == TWINC_OK)
            for (int g = 0; g < R.G; g++) {
                abs_l[2 * group[g]] = R.lhs_abs[g];
                abs_l[2 * group[g] + 1] = R.rhs_abs[g];
            }
        if (gst != TWINC_OK && first_error == TWINC_OK)
            first_error = gst;
    }

    c->pass = 1;
    c->npassed = 0;
    c->max_rho = c->max_dot_error = c->max_consistency = 0.0;
    for (int p = 0; p < c->npoints; p++) {
        twinc_check_point *pt = &c->points[p];
        finish_point(c, pt, abs_l ? abs_l[2 * p] : NAN, abs_l ? abs_l[2 * p + 1] : NAN);
        c->pass &= pt->pass;
        c->npassed += pt->pass;
        c->max_rho = worst(c->max_rho, pt->max_rho);
        c->max_dot_error = worst(c->max_dot_error, pt->dot_error);
        c->max_consistency = worst(c->max_consistency, pt->consistency);
    }

    run_free(&R);
    free(group);
    free(done);
    free(abs_l);
    free(len);
    free(ixp);
    return first_error;
}
