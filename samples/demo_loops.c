/*
 * demo_loops.c — `make demo`, loops and arrays: the twins of code that loops
 * over time steps, a return series, a curve and a lattice, checked and timed.
 *
 * paths.c, garch.c, curve.c and tree.c are plain pricing functions with
 * `#pragma aad`; twinc wrote their twins at build time.  For each kernel this
 * program runs a batch of lanes through the adjoint twin (value and every
 * sensitivity in one call) and compares every number, lane by lane, with
 * central finite differences of the user's own scalar function:
 *
 *   asian_call           252 steps, one path per lane (normals passed in);
 *                        then one option over 8192 paths: seeds 1/n and
 *                        accumulators of lane stride 0 give the Monte Carlo
 *                        price and pathwise Greeks in one call;
 *   barrier_up_out_call  252 monitoring dates, a per-lane knock-out inside
 *                        the loop;
 *   heston_call          100 full-truncation Euler steps, many lanes whose
 *                        variance goes negative (sqrt(fmax(v, 0)) there);
 *   garch_nll            2520 returns per series, some lanes shorter (the
 *                        trip count differs per lane);
 *   bond_price           a book of bonds of different maturities (cash-flow
 *                        arrays of different lengths) on one shared curve:
 *                        node risk per bond, and the book's summed by the twin;
 *   american_put_crr     a binomial tree of 100 and 500 steps, one array
 *                        overwritten in place by nested loops.
 *
 * Then it times, per kernel, the user's scalar loop, the batched primal and
 * the adjoint (median of several runs, ns per lane).
 *
 * Finite differences of the user's scalar function, compared with
 * |a - b| / max(1, |b|) <= 1e-6: central with step h = 1e-5 |x| (relative:
 * GARCH's omega is ~1e-6) or, where that step is too coarse for the
 * function's curvature or too fine for its size, Richardson-extrapolated
 * central differences at the step between 1e-9 |x| and 1e-3 |x| that comes
 * closest (fd_lane says why each case occurs).  The payoffs have kinks
 * (fmax, the exercise decision) and jumps (the knock-out); where a central
 * difference straddles one, the two one-sided slopes disagree, and the
 * adjoint — the derivative of the branch the code took — must match one of
 * them.  Such entries are counted and shown; any other disagreement fails.
 * Any failure makes the exit status 1.
 *
 * MIT licence — see LICENSE.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "curve.twin.h"
#include "garch.twin.h"
#include "paths.twin.h"
#include "tree.twin.h"

/* The user's scalar functions: the FD baseline and the loop we time. */
double asian_call(double S0, double K, double r, double sigma, double T, int nsteps,
                  const double z[nsteps]);
double barrier_up_out_call(double S0, double K, double B, double r, double sigma, double T,
                           int nsteps, const double z[nsteps]);
double heston_call(double S0, double v0, double kappa, double theta, double xi, double rho,
                   double r, double K, double T, int nsteps, const double z1[nsteps],
                   const double z2[nsteps]);
double garch_nll(double omega, double alpha, double beta, int n, const double ret[n]);
double bond_price(double coupon, double face, int m, const double t[m], const double zr[m],
                  int ncf, const double cf_t[ncf]);
double american_put_crr(double S, double K, double r, double sigma, double T, int N);

static int failures;
static const double one = 1.0;

enum { MAXX = 16 }; /* active inputs of one kernel, at most */
static const double FD_TOL = 1e-6;

/* ---- small helpers ---- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "demo_loops: out of memory\n");
        exit(2);
    }
    return p;
}

static double *dalloc(size_t n) { return xcalloc(n, sizeof(double)); }

static unsigned long long rng_state = 0x2545F4914F6CDD1Dull;
static double uniform(double lo, double hi) /* xorshift64*, deterministic */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return lo + (hi - lo) * (double)((rng_state * 2685821657736338717ull) >> 11) * 0x1p-53;
}

/* Standard normals by Box–Muller, two per pair of uniforms in (0, 1]. */
static void normals(double *z, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - uniform(0, 1), u2 = uniform(0, 1);
        double rad = sqrt(-2.0 * log(u1));
        z[i] = rad * cos(6.283185307179586 * u2);
        if (i + 1 < n) z[i + 1] = rad * sin(6.283185307179586 * u2);
    }
}

static void twin_ok(int status, const char *what)
{
    if (status != 0) {
        fprintf(stderr, "demo_loops: %s returned status %d\n", what, status);
        exit(1);
    }
}

typedef struct Worst {
    double err;
    size_t lane;
    const char *what;
} Worst;

static void track(Worst *w, double err, size_t lane, const char *what)
{
    if (!(err <= w->err)) { /* NaN counts as worst */
        w->err = err;
        w->lane = lane;
        w->what = what;
    }
}

static void verdict(const char *label, const Worst *w, double limit)
{
    int ok = w->err <= limit;
    printf("  %-58s %8.1e  (limit %.0e)  %s", label, w->err, limit, ok ? "ok" : "FAIL");
    if (!ok) printf("  worst at lane %zu, %s", w->lane, w->what);
    printf("\n");
    failures += !ok;
}

static double rel(double a, double b, double floor_)
{
    return fabs(a - b) / fmax(floor_, fabs(b));
}

/* A workspace for the adjoints' reverse-sweep stack, given to every call, so
 * the timed runs do not allocate. */
static twinc_workspace g_ws;

static twinc_workspace *ws(void)
{
    if (!g_ws.base) {
        g_ws.bytes = (size_t)64 << 20;
        g_ws.base = xcalloc(g_ws.bytes, 1);
    }
    return &g_ws;
}

/* ---- finite differences of one lane, with kinks ---- */

/* The user's scalar function at lane `lane` of a batch, with its active
 * inputs replaced by x (the passive ones — normals, grids — from the batch). */
typedef double (*lane_fn)(const void *batch, size_t lane, const double *x);

typedef struct FdCheck {
    Worst worst;    /* adjoint vs the finite difference it was compared with */
    size_t count;   /* partials compared */
    size_t refined; /* needed a step below 1e-5 |x| */
    size_t kinks;   /* matched one side of a kink */
} FdCheck;

/* Central difference of f in input j at x0, step h (x is scratch). */
static double central(lane_fn f, const void *batch, size_t lane, double *x, const double *x0,
                      int j, double h)
{
    x[j] = x0[j] + h;
    double fp = f(batch, lane, x);
    x[j] = x0[j] - h;
    double fm = f(batch, lane, x);
    x[j] = x0[j];
    return (fp - fm) / (2 * h);
}

/* Compares adj[0..nx) with finite differences of f at x0; fd[] gets the
 * difference each was compared with.  Returns the lane's worst error.
 *
 * 1. The central difference D(h), h = 1e-5 |x|.  Most partials end here,
 *    within a tenth of the tolerance.
 * 2. Otherwise the step may be too coarse for the function (pathwise Heston
 *    Greeks through sqrt of a variance near 0, kinks of the exercise
 *    boundary) or too fine for its size (a GARCH likelihood of 1e4 whose
 *    slope in alpha = 0.03 is 10): the Richardson extrapolation
 *    (4 D(s/2) - D(s)) / 3, error O(s^4), is formed for the steps s =
 *    h 2^k, k = -13 .. 7 (1.2e-9 |x| .. 1.3e-3 |x|), and the one closest to
 *    the adjoint is taken if closer than D(h).
 * 3. Failing that, a kink or jump within h: the one-sided slopes at the
 *    first step (Richardson-extrapolated from h and h/2) disagree, and the
 *    adjoint — the derivative of the branch the code took — must match one. */
static double fd_lane(lane_fn f, const void *batch, size_t lane, const double *x0, int nx,
                      const double *adj, const char *const *names, double *fd, FdCheck *chk)
{
    double x[MAXX], worst = 0;
    memcpy(x, x0, (size_t)nx * sizeof *x);
    for (int j = 0; j < nx; j++) {
        double h0 = x0[j] != 0 ? 1e-5 * fabs(x0[j]) : 1e-7, h = h0;
        double d = central(f, batch, lane, x, x0, j, h);
        fd[j] = d;
        double e = rel(adj[j], d, 1.0);
        /* smaller steps first (curvature, kinks), then larger (rounding) */
        double best = INFINITY, best_fd = d;
        for (int k = -1; k >= -14 && !(e <= 0.1 * FD_TOL); k--) {
            double d2 = central(f, batch, lane, x, x0, j, 0.5 * h);
            double r = (4 * d2 - d) / 3;
            if (rel(adj[j], r, 1.0) < best)
                best = rel(adj[j], r, 1.0), best_fd = r;
            d = d2, h *= 0.5;
        }
        h = h0, d = fd[j];
        for (int k = 1; k <= 6 && !(e <= 0.1 * FD_TOL); k++) {
            double d2 = central(f, batch, lane, x, x0, j, 2 * h);
            double r = (4 * d - d2) / 3;
            if (rel(adj[j], r, 1.0) < best)
                best = rel(adj[j], r, 1.0), best_fd = r;
            d = d2, h *= 2;
        }
        if (best < e)
            e = best, fd[j] = best_fd, chk->refined += best <= FD_TOL;
        if (!(e <= FD_TOL)) {
            double f0 = f(batch, lane, x);
            x[j] = x0[j] + h0;
            double fp = f(batch, lane, x);
            x[j] = x0[j] + 0.5 * h0;
            double fp2 = f(batch, lane, x);
            x[j] = x0[j] - h0;
            double fm = f(batch, lane, x);
            x[j] = x0[j] - 0.5 * h0;
            double fm2 = f(batch, lane, x);
            x[j] = x0[j];
            double right = 2 * (fp2 - f0) / (0.5 * h0) - (fp - f0) / h0;
            double left = 2 * (f0 - fm2) / (0.5 * h0) - (f0 - fm) / h0;
            double er = rel(adj[j], right, 1.0), el = rel(adj[j], left, 1.0);
            if (rel(right, left, 1.0) > 10 * FD_TOL && fmin(er, el) <= FD_TOL) {
                chk->kinks++;
                fd[j] = er < el ? right : left;
                e = fmin(er, el);
            }
        }
        track(&chk->worst, e, lane, names[j]);
        worst = fmax(worst, e);
        chk->count++;
    }
    return worst;
}

static void print_row(const char *label, double value, const double *g, int nx)
{
    printf("%s %9.4f", label, value);
    for (int j = 0; j < nx; j++) printf(" %10.5f", g[j]);
}

/* The finite differences under a lane's row, labelled in the same width. */
static void print_fd_row(const char *lane_label, double value, const double *fd, int nx)
{
    char label[128];
    snprintf(label, sizeof label, "%*s", (int)strlen(lane_label), "central FD |");
    print_row(label, value, fd, nx);
    printf("\n");
}

static void print_header(const char *lead, const char *const *names, int nx)
{
    printf("%s     value", lead);
    for (int j = 0; j < nx; j++) printf(" %10s", names[j]);
}

static void fd_verdict(const char *what, const FdCheck *c)
{
    char label[120];
    printf("  %zu partials compared: %zu closer at another step than 1e-5 |x|, %zu matched one side of a kink\n",
           c->count, c->refined, c->kinks);
    snprintf(label, sizeof label, "max error %s adjoint vs finite differences", what);
    verdict(label, &c->worst, FD_TOL);
}

/* ================= Monte Carlo paths: asian_call, barrier_up_out_call ================= */

enum { NSTEPS = 252, NPATH_LANES = 2000 };
enum { P_S0, P_K, P_R, P_SIGMA, P_T, P_B, P_NX }; /* ORDER asian/barrier active inputs */

typedef struct PathBatch {
    size_t n;
    int nsteps;
    double *S0, *K, *sigma, *T, *B; /* per lane */
    double r;                       /* shared by every lane: lane stride 0 */
    double *z;                      /* n rows of nsteps normals: lane stride nsteps */
} PathBatch;

static PathBatch path_batch(size_t n, int nsteps)
{
    PathBatch b = {n, nsteps, dalloc(n), dalloc(n), dalloc(n), dalloc(n), dalloc(n), 0.03,
                   dalloc(n * (size_t)nsteps)};
    static const double shown[4][5] = {/* S0, K, sigma, T, B */
                                       {100, 100, 0.20, 1.0, 130},
                                       {100, 90, 0.30, 0.5, 125},
                                       {100, 110, 0.25, 2.0, 160},
                                       {50, 45, 0.40, 1.0, 70}};
    for (size_t i = 0; i < n; i++) {
        if (i < 4) {
            b.S0[i] = shown[i][0], b.K[i] = shown[i][1], b.sigma[i] = shown[i][2];
            b.T[i] = shown[i][3], b.B[i] = shown[i][4];
        } else {
            b.S0[i] = uniform(80, 120);
            b.K[i] = b.S0[i] * uniform(0.8, 1.2);
            b.sigma[i] = uniform(0.1, 0.5);
            b.T[i] = uniform(0.25, 2);
            b.B[i] = b.S0[i] * uniform(1.1, 1.6);
        }
    }
    normals(b.z, n * (size_t)nsteps);
    return b;
}

static void path_free(PathBatch *b)
{
    free(b->S0), free(b->K), free(b->sigma), free(b->T), free(b->B), free(b->z);
}

static void path_lane(const PathBatch *b, size_t i, double x[P_NX])
{
    x[P_S0] = b->S0[i], x[P_K] = b->K[i], x[P_R] = b->r, x[P_SIGMA] = b->sigma[i];
    x[P_T] = b->T[i], x[P_B] = b->B[i];
}

static double asian_at(const void *batch, size_t i, const double *x)
{
    const PathBatch *b = batch;
    return asian_call(x[P_S0], x[P_K], x[P_R], x[P_SIGMA], x[P_T], b->nsteps,
                      b->z + i * (size_t)b->nsteps);
}

static double barrier_at(const void *batch, size_t i, const double *x)
{
    const PathBatch *b = batch;
    return barrier_up_out_call(x[P_S0], x[P_K], x[P_B], x[P_R], x[P_SIGMA], x[P_T], b->nsteps,
                               b->z + i * (size_t)b->nsteps);
}

static void asian_adjoint(const PathBatch *b, double *V, double *g[P_NX])
{
    for (int j = 0; j < P_NX; j++) memset(g[j], 0, b->n * sizeof(double));
    twin_ok(asian_call_adjoint(b->n, b->S0, 1, g[P_S0], 1, b->K, 1, g[P_K], 1, &b->r, 0, g[P_R], 1,
                               b->sigma, 1, g[P_SIGMA], 1, b->T, 1, g[P_T], 1, &b->nsteps, 0, b->z,
                               b->nsteps, 1, V, 1, &one, 0, ws()),
            "asian_call_adjoint");
}

static void barrier_adjoint(const PathBatch *b, double *V, double *g[P_NX])
{
    for (int j = 0; j < P_NX; j++) memset(g[j], 0, b->n * sizeof(double));
    twin_ok(barrier_up_out_call_adjoint(b->n, b->S0, 1, g[P_S0], 1, b->K, 1, g[P_K], 1, b->B, 1,
                                        g[P_B], 1, &b->r, 0, g[P_R], 1, b->sigma, 1, g[P_SIGMA], 1,
                                        b->T, 1, g[P_T], 1, &b->nsteps, 0, b->z, b->nsteps, 1, V,
                                        1, &one, 0, ws()),
            "barrier_up_out_call_adjoint");
}

/* Per lane: one option per lane on its own path; shows lanes 0..3. */
static void check_paths(const char *title, const PathBatch *b, int barrier)
{
    static const char *const names[P_NX] = {"dV/dS0", "dV/dK", "dV/dr", "dV/dsigma", "dV/dT",
                                            "dV/dB"};
    int nx = barrier ? P_NX : P_NX - 1;
    double *V = dalloc(b->n), *g[P_NX];
    for (int j = 0; j < P_NX; j++) g[j] = dalloc(b->n);
    if (barrier)
        barrier_adjoint(b, V, g);
    else
        asian_adjoint(b, V, g);

    printf("\n== %s over %zu lanes, %d steps, one path per lane ==\n", title, b->n, b->nsteps);
    printf("  per lane: S0, K, sigma, T%s, its own row of normals (lane stride %d);"
           "  shared: r = %.2f%%\n\n", barrier ? ", B" : "", b->nsteps, 100 * b->r);
    print_header(barrier ? "  lane     S0     K sigma    T      B |" : "  lane     S0     K sigma    T |",
                 names, nx);
    printf(" | err FD\n");
    FdCheck chk = {{0, 0, ""}, 0, 0, 0};
    Worst val = {0, 0, ""};
    size_t knocked = 0, itm = 0, shown = 0;
    for (size_t i = 0; i < b->n; i++) {
        double x[P_NX], ga[P_NX], gf[P_NX];
        path_lane(b, i, x);
        lane_fn f = barrier ? barrier_at : asian_at;
        track(&val, rel(V[i], f(b, i, x), 1.0), i, "value vs scalar function");
        for (int j = 0; j < nx; j++) ga[j] = g[j][i];
        double e = fd_lane(f, b, i, x, nx, ga, names, gf, &chk);
        knocked += barrier && V[i] == 0 && ga[P_S0] == 0;
        itm += V[i] > 0;
        if (V[i] > 0 && shown < 4) { /* the first four lanes in the money */
            char label[80];
            if (barrier)
                snprintf(label, sizeof label, "  %4zu %6.1f %5.1f %5.2f %4.2f %6.1f |", i, b->S0[i],
                         b->K[i], b->sigma[i], b->T[i], b->B[i]);
            else
                snprintf(label, sizeof label, "  %4zu %6.1f %5.1f %5.2f %4.2f |", i, b->S0[i],
                         b->K[i], b->sigma[i], b->T[i]);
            print_row(label, V[i], ga, nx);
            printf(" | %6.0e\n", e);
            if (shown++ == 0) print_fd_row(label, f(b, i, x), gf, nx);
        }
    }
    printf("  (the first four lanes in the money; central FD of the scalar function under the first)\n");
    printf("\n  %zu of %zu paths end in the money", itm, b->n);
    if (barrier)
        printf(" (alive at maturity); %zu value 0 (knocked out or out of the money).\n"
               "  Pathwise dV/dB is 0 on every path: the knock-out indicator is piecewise constant"
               " in B.\n", knocked);
    else
        printf(".\n");
    verdict("max error value (adjoint twin) vs scalar function", &val, 0);
    fd_verdict("every lane, every partial,", &chk);
    free(V);
    for (int j = 0; j < P_NX; j++) free(g[j]);
}

/* One option, n paths: the Monte Carlo price and its pathwise Greeks in one
 * adjoint call (seed 1/n, every input and accumulator shared). */
static void asian_mc(void)
{
    enum { NMC = 8192 };
    static const char *const names[5] = {"dV/dS0", "dV/dK", "dV/dr", "dV/dsigma", "dV/dT"};
    double S0 = 100, K = 100, r = 0.03, sigma = 0.25, T = 1, w = 1.0 / NMC;
    int nsteps = NSTEPS;
    double *z = dalloc((size_t)NMC * NSTEPS), *V = dalloc(NMC), G[5] = {0}, *g[5];
    normals(z, (size_t)NMC * NSTEPS);
    for (int j = 0; j < 5; j++) g[j] = dalloc(NMC);
    twin_ok(asian_call_adjoint(NMC, &S0, 0, &G[0], 0, &K, 0, &G[1], 0, &r, 0, &G[2], 0, &sigma, 0,
                               &G[3], 0, &T, 0, &G[4], 0, &nsteps, 0, z, NSTEPS, 1, V, 1, &w, 0,
                               ws()),
            "asian_call_adjoint (Monte Carlo)");
    double m = 0, m2 = 0;
    for (size_t i = 0; i < NMC; i++) m += V[i], m2 += V[i] * V[i];
    m /= NMC;
    double se = sqrt((m2 / NMC - m * m) / NMC);
    /* the same through per-lane accumulators, summed here */
    twin_ok(asian_call_adjoint(NMC, &S0, 0, g[0], 1, &K, 0, g[1], 1, &r, 0, g[2], 1, &sigma, 0, g[3],
                               1, &T, 0, g[4], 1, &nsteps, 0, z, NSTEPS, 1, NULL, 0, &w, 0, ws()),
            "asian_call_adjoint (per lane)");
    printf("\n  Monte Carlo, one option (S0 = K = 100, r = 3%%, sigma = 25%%, T = 1) over %d paths:\n"
           "  every input shared (lane stride 0), seed 1/n, accumulators of lane stride 0:\n",
           NMC);
    printf("    price %.4f +- %.4f (1 s.e.)", m, se);
    Worst e = {0, 0, ""};
    for (int j = 0; j < 5; j++) {
        double s = 0, mag = 0;
        for (size_t i = 0; i < NMC; i++) s += g[j][i], mag += fabs(g[j][i]);
        printf("  %s %.4f", names[j], G[j]);
        track(&e, fabs(G[j] - s) / fmax(1.0, mag), 0, names[j]);
    }
    printf("\n");
    verdict("summed by the twin vs sum of per-lane adjoints", &e, 1e-12);
    for (int j = 0; j < 5; j++) free(g[j]);
    free(z), free(V);
}

/* ================= heston_call ================= */

enum { H_S0, H_V0, H_KAPPA, H_THETA, H_XI, H_RHO, H_R, H_K, H_T, H_NX };
enum { HSTEPS = 100, NHESTON = 1000 };

typedef struct HestonBatch {
    size_t n;
    int nsteps;
    double *x[H_NX]; /* per lane, except r: x[H_R] has one element, lane stride 0 */
    double *z1, *z2;
} HestonBatch;

static HestonBatch heston_batch(size_t n, int nsteps)
{
    HestonBatch b = {n, nsteps, {NULL}, dalloc(n * (size_t)nsteps), dalloc(n * (size_t)nsteps)};
    for (int j = 0; j < H_NX; j++) b.x[j] = dalloc(j == H_R ? 1 : n);
    b.x[H_R][0] = 0.02;
    for (size_t i = 0; i < n; i++) {
        b.x[H_S0][i] = i == 0 ? 100 : uniform(80, 120);
        b.x[H_V0][i] = i == 0 ? 0.04 : uniform(0.01, 0.09);
        b.x[H_KAPPA][i] = i == 0 ? 1.5 : uniform(0.5, 3);
        b.x[H_THETA][i] = i == 0 ? 0.04 : uniform(0.02, 0.08);
        b.x[H_XI][i] = i == 0 ? 0.8 : uniform(0.3, 1.0); /* Feller violated: v hits 0 */
        b.x[H_RHO][i] = i == 0 ? -0.7 : uniform(-0.9, 0.0);
        b.x[H_K][i] = i == 0 ? 100 : b.x[H_S0][i] * uniform(0.8, 1.2);
        b.x[H_T][i] = i == 0 ? 1 : uniform(0.25, 2);
    }
    normals(b.z1, n * (size_t)nsteps);
    normals(b.z2, n * (size_t)nsteps);
    return b;
}

static void heston_lane(const HestonBatch *b, size_t i, double x[H_NX])
{
    for (int j = 0; j < H_NX; j++) x[j] = j == H_R ? b->x[j][0] : b->x[j][i];
}

static double heston_at(const void *batch, size_t i, const double *x)
{
    const HestonBatch *b = batch;
    return heston_call(x[H_S0], x[H_V0], x[H_KAPPA], x[H_THETA], x[H_XI], x[H_RHO], x[H_R], x[H_K],
                       x[H_T], b->nsteps, b->z1 + i * (size_t)b->nsteps,
                       b->z2 + i * (size_t)b->nsteps);
}

/* Steps where the lane's variance is negative: the same recursion as heston_call. */
static int negative_steps(const HestonBatch *b, size_t i)
{
    double x[H_NX];
    heston_lane(b, i, x);
    double dt = x[H_T] / b->nsteps, v = x[H_V0], rc = sqrt(1 - x[H_RHO] * x[H_RHO]);
    int neg = 0;
    for (int s = 0; s < b->nsteps; s++) {
        double vp = fmax(v, 0.0), z1 = b->z1[i * (size_t)b->nsteps + s];
        double z2 = x[H_RHO] * z1 + rc * b->z2[i * (size_t)b->nsteps + s];
        v += x[H_KAPPA] * (x[H_THETA] - vp) * dt + x[H_XI] * sqrt(vp) * sqrt(dt) * z2;
        neg += v < 0;
    }
    return neg;
}

static void heston_adjoint(const HestonBatch *b, double *V, double *g[H_NX])
{
    double *const *x = b->x;
    for (int j = 0; j < H_NX; j++) memset(g[j], 0, b->n * sizeof(double));
    twin_ok(heston_call_adjoint(b->n, x[H_S0], 1, g[H_S0], 1, x[H_V0], 1, g[H_V0], 1, x[H_KAPPA], 1,
                                g[H_KAPPA], 1, x[H_THETA], 1, g[H_THETA], 1, x[H_XI], 1, g[H_XI], 1,
                                x[H_RHO], 1, g[H_RHO], 1, x[H_R], 0, g[H_R], 1, x[H_K], 1, g[H_K],
                                1, x[H_T], 1, g[H_T], 1, &b->nsteps, 0, b->z1, b->nsteps, 1, b->z2,
                                b->nsteps, 1, V, 1, &one, 0, ws()),
            "heston_call_adjoint");
}

static void check_heston(void)
{
    static const char *const names[H_NX] = {"dV/dS0", "dV/dv0",  "dV/dkappa", "dV/dtheta", "dV/dxi",
                                            "dV/drho", "dV/dr", "dV/dK",     "dV/dT"};
    HestonBatch b = heston_batch(NHESTON, HSTEPS);
    double *V = dalloc(b.n), *g[H_NX];
    for (int j = 0; j < H_NX; j++) g[j] = dalloc(b.n);
    heston_adjoint(&b, V, g);

    printf("\n== Heston, full-truncation Euler: heston_call (paths.c) over %zu lanes, %d steps ==\n",
           b.n, b.nsteps);
    printf("  per lane: every parameter and two rows of normals; shared: r = %.2f%%;"
           " xi in [0.3, 1]: the variance goes negative\n\n", 100 * b.x[H_R][0]);
    print_header("  lane neg |", names, H_NX);
    printf(" | err FD\n");
    FdCheck chk = {{0, 0, ""}, 0, 0, 0};
    Worst val = {0, 0, ""};
    size_t lanes_neg = 0, finite = 1, shown = 0;
    for (size_t i = 0; i < b.n; i++) {
        double x[H_NX], ga[H_NX], gf[H_NX];
        heston_lane(&b, i, x);
        int neg = negative_steps(&b, i);
        lanes_neg += neg > 0;
        track(&val, rel(V[i], heston_at(&b, i, x), 1.0), i, "value vs scalar function");
        for (int j = 0; j < H_NX; j++) {
            ga[j] = g[j][i];
            finite &= isfinite(ga[j]) != 0;
        }
        double e = fd_lane(heston_at, &b, i, x, H_NX, ga, names, gf, &chk);
        if (V[i] > 0 && neg > 0 && shown < 4) {
            char label[64];
            snprintf(label, sizeof label, "  %4zu %3d |", i, neg);
            print_row(label, V[i], ga, H_NX);
            printf(" | %6.0e\n", e);
            if (shown++ == 0) print_fd_row(label, heston_at(&b, i, x), gf, H_NX);
        }
    }
    printf("  (the first four lanes in the money with v < 0 on some steps, 'neg' of them: there\n"
           "   sqrt(fmax(v, 0.0)) has derivative 0; central FD of the scalar function under the first)\n");
    printf("\n  %zu of %zu lanes have steps with v < 0; every partial finite: %s\n", lanes_neg, b.n,
           finite ? "yes" : "NO");
    failures += !finite;
    verdict("max error value (adjoint twin) vs scalar function", &val, 0);
    fd_verdict("every lane, every partial,", &chk);
    for (int j = 0; j < H_NX; j++) free(g[j]), free(b.x[j]);
    free(V), free(b.z1), free(b.z2);
}

/* ================= garch_nll ================= */

enum { NRET = 2520, NGARCH = 64 };

typedef struct GarchBatch {
    size_t n;
    double *omega, *alpha, *beta; /* per lane */
    int *len;                     /* returns per lane (<= NRET) */
    double *ret;                  /* lane stride NRET */
} GarchBatch;

static GarchBatch garch_batch(size_t n)
{
    GarchBatch b = {n, dalloc(n), dalloc(n), dalloc(n), xcalloc(n, sizeof(int)),
                    dalloc(n * NRET)};
    for (size_t i = 0; i < n; i++) {
        /* a series simulated from GARCH(1,1) with its own parameters; the
         * lane's parameters are near them (where an optimiser would look) */
        double w = uniform(1e-6, 4e-6), a = uniform(0.03, 0.12), be = uniform(0.80, 0.95 - a);
        double h = w / (1 - a - be), z[2];
        b.len[i] = i == 1 ? 1260 : i == 2 ? 252 : i % 5 == 4 ? (int)uniform(500, NRET) : NRET;
        for (int t = -500; t < b.len[i]; t++) { /* 500 steps of burn-in */
            normals(z, 1);
            double e = sqrt(h) * z[0];
            if (t >= 0) b.ret[i * NRET + (size_t)t] = e;
            h = w + a * e * e + be * h;
        }
        b.omega[i] = w * uniform(0.7, 1.3);
        b.alpha[i] = a * uniform(0.8, 1.2);
        b.beta[i] = be * uniform(0.97, 1.02);
    }
    return b;
}

static double garch_at(const void *batch, size_t i, const double *x)
{
    const GarchBatch *b = batch;
    return garch_nll(x[0], x[1], x[2], b->len[i], b->ret + i * NRET);
}

static void garch_adjoint(const GarchBatch *b, double *V, double *g[3])
{
    for (int j = 0; j < 3; j++) memset(g[j], 0, b->n * sizeof(double));
    twin_ok(garch_nll_adjoint(b->n, b->omega, 1, g[0], 1, b->alpha, 1, g[1], 1, b->beta, 1, g[2], 1,
                              b->len, 1, b->ret, NRET, 1, V, 1, &one, 0, ws()),
            "garch_nll_adjoint");
}

static void check_garch(void)
{
    static const char *const names[3] = {"dnll/domega", "dnll/dalpha", "dnll/dbeta"};
    GarchBatch b = garch_batch(NGARCH);
    double *V = dalloc(b.n), *g[3];
    for (int j = 0; j < 3; j++) g[j] = dalloc(b.n);
    garch_adjoint(&b, V, g);

    printf("\n== GARCH(1,1) negative log-likelihood: garch_nll (garch.c) over %zu series ==\n", b.n);
    printf("  per lane: omega, alpha, beta and a simulated series of up to %d returns"
           " (lane 1: 1260, lane 2: 252, every 5th: fewer) — trip counts differ per lane\n\n", NRET);
    printf("  lane     n      omega  alpha   beta |           nll   dnll/domega   dnll/dalpha"
           "    dnll/dbeta | err FD\n");
    FdCheck chk = {{0, 0, ""}, 0, 0, 0};
    Worst val = {0, 0, ""};
    for (size_t i = 0; i < b.n; i++) {
        double x[3] = {b.omega[i], b.alpha[i], b.beta[i]}, ga[3], gf[3];
        track(&val, rel(V[i], garch_at(&b, i, x), 1.0), i, "value vs scalar function");
        for (int j = 0; j < 3; j++) ga[j] = g[j][i];
        double e = fd_lane(garch_at, &b, i, x, 3, ga, names, gf, &chk);
        if (i < 4) {
            printf("  %4zu %5d %10.3e %6.4f %6.4f | %13.4f %13.6e %13.4f %13.4f | %6.0e\n", i,
                   b.len[i], x[0], x[1], x[2], V[i], ga[0], ga[1], ga[2], e);
            if (i == 0)
                printf("  %36s %13s %13.6e %13.4f %13.4f\n", "central FD |", "", gf[0], gf[1], gf[2]);
        }
    }
    printf("\n");
    verdict("max error value (adjoint twin) vs scalar function", &val, 0);
    fd_verdict("every series, every partial,", &chk);
    for (int j = 0; j < 3; j++) free(g[j]);
    free(V), free(b.omega), free(b.alpha), free(b.beta), free(b.len), free(b.ret);
}

/* ================= bond_price ================= */

enum { NODES = 12, MAXCF = 60, NBONDS = 1000 };
static const double node_t[NODES] = {0.25, 0.5, 1, 2, 3, 5, 7, 10, 15, 20, 25, 30};

typedef struct BondBatch {
    size_t n;
    double *coupon, *face; /* per lane */
    int *ncf;              /* cash flows per lane */
    double *cf_t;          /* lane stride MAXCF */
    int m;                 /* the curve, shared by every lane (lane stride 0) */
    double t[NODES], zr[NODES];
} BondBatch;

static BondBatch bond_batch(size_t n)
{
    BondBatch b = {n, dalloc(n), dalloc(n), xcalloc(n, sizeof(int)), dalloc(n * MAXCF), NODES,
                   {0}, {0}};
    for (int j = 0; j < NODES; j++) {
        b.t[j] = node_t[j];
        b.zr[j] = 0.02 + 0.02 * (1 - exp(-node_t[j] / 5)); /* an upward-sloping curve */
    }
    static const int shown_years[3] = {2, 10, 30}; /* semi-annual: 4, 20, 60 cash flows */
    for (size_t i = 0; i < n; i++) {
        int half_years = i < 3 ? 2 * shown_years[i] : 1 + (int)uniform(0, MAXCF);
        if (half_years > MAXCF) half_years = MAXCF;
        b.ncf[i] = half_years;
        b.coupon[i] = i < 3 ? 0.04 : uniform(0.01, 0.08);
        b.face[i] = 100;
        for (int k = 0; k < half_years; k++) b.cf_t[i * MAXCF + (size_t)k] = 0.5 * (k + 1);
    }
    return b;
}

enum { B_COUPON, B_FACE, B_ZR, B_NX = B_ZR + NODES };

static double bond_at(const void *batch, size_t i, const double *x)
{
    const BondBatch *b = batch;
    return bond_price(x[B_COUPON], x[B_FACE], b->m, b->t, x + B_ZR, b->ncf[i],
                      b->cf_t + i * MAXCF);
}

static void check_bond(void)
{
    static const char *names[B_NX];
    static char node_names[NODES][16];
    names[B_COUPON] = "dP/dcoupon", names[B_FACE] = "dP/dface";
    for (int j = 0; j < NODES; j++) {
        snprintf(node_names[j], sizeof node_names[j], "dP/dzr[%d]", j);
        names[B_ZR + j] = node_names[j];
    }
    BondBatch b = bond_batch(NBONDS);
    double *V = dalloc(b.n), *gc = dalloc(b.n), *gf = dalloc(b.n);
    double *gz = dalloc(b.n * NODES); /* per-bond node risk: lane stride NODES */
    twin_ok(bond_price_adjoint(b.n, b.coupon, 1, gc, 1, b.face, 1, gf, 1, &b.m, 0, b.t, 0, 1, b.zr, 0,
                               1, gz, NODES, 1, b.ncf, 1, b.cf_t, MAXCF, 1, V, 1, &one, 0, ws()),
            "bond_price_adjoint (per bond)");

    printf("\n== Fixed-rate bonds on one zero curve: bond_price (curve.c), a book of %zu bonds ==\n",
           b.n);
    printf("  shared (lane stride 0): %d node times and rates; per lane: coupon, face and the"
           " cash-flow times (%s)\n", NODES, "0.5 to 30 years semi-annual: arrays of 1..60");
    printf("  per-bond node risk: accumulator zr_b with lane stride %d; the book's: lane stride 0\n\n",
           NODES);

    /* the book: positions as seeds, node risk summed over bonds by the twin */
    double *pos = dalloc(b.n), book[NODES] = {0}, coupon_sink = 0, face_sink = 0;
    for (size_t i = 0; i < b.n; i++) pos[i] = (double)((long)(i % 7) - 3) * 1e4; /* bonds of 100 */
    twin_ok(bond_price_adjoint(b.n, b.coupon, 1, &coupon_sink, 0, b.face, 1, &face_sink, 0, &b.m, 0,
                               b.t, 0, 1, b.zr, 0, 1, book, 0, 1, b.ncf, 1, b.cf_t, MAXCF, 1, NULL,
                               0, pos, 1, ws()),
            "bond_price_adjoint (book)");

    FdCheck chk = {{0, 0, ""}, 0, 0, 0};
    Worst val = {0, 0, ""}, sum = {0, 0, ""};
    double fds[3][B_NX], vs[3];
    for (size_t i = 0; i < b.n; i++) {
        double x[B_NX], ga[B_NX], fd[B_NX];
        x[B_COUPON] = b.coupon[i], x[B_FACE] = b.face[i];
        memcpy(x + B_ZR, b.zr, sizeof b.zr);
        ga[B_COUPON] = gc[i], ga[B_FACE] = gf[i];
        memcpy(ga + B_ZR, gz + i * NODES, NODES * sizeof(double));
        track(&val, rel(V[i], bond_at(&b, i, x), 1.0), i, "value vs scalar function");
        fd_lane(bond_at, &b, i, x, B_NX, ga, names, fd, &chk);
        if (i < 3) memcpy(fds[i], fd, sizeof fd), vs[i] = bond_at(&b, i, x);
    }
    printf("  %-11s", "");
    for (int l = 0; l < 3; l++) {
        char head[32];
        snprintf(head, sizeof head, "%dy %.0f%% bond", b.ncf[l] / 2, 100 * b.coupon[l]);
        printf(" %25s |", head);
    }
    printf(" book: sum of position x\n  %-11s", "");
    for (int l = 0; l < 3; l++) printf(" %12s %12s |", "adjoint", "central FD");
    printf(" dP/dzr x 1bp, by the twin\n  %-11s", "price");
    for (int l = 0; l < 3; l++) printf(" %12.4f %12.4f |", V[l], vs[l]);
    printf("\n");
    for (int j = 0; j < B_NX; j++) {
        printf("  %-11s", names[j] + 3); /* without "dP/" */
        for (int l = 0; l < 3; l++) {
            double a = j == B_COUPON ? gc[l] : j == B_FACE ? gf[l] : gz[(size_t)l * NODES + (size_t)(j - B_ZR)];
            printf(" %12.4f %12.4f |", a, fds[l][j]);
        }
        if (j >= B_ZR) {
            double s = 0, mag = 0;
            for (size_t i = 0; i < b.n; i++) {
                double t = pos[i] * gz[i * NODES + (size_t)(j - B_ZR)];
                s += t, mag += fabs(t);
            }
            track(&sum, fabs(book[j - B_ZR] - s) / fmax(1.0, mag), 0, names[j]);
            printf(" %12.0f  (t = %g)", 1e-4 * book[j - B_ZR], b.t[j - B_ZR]);
        }
        printf("\n");
    }
    printf("  (price: adjoint twin and scalar function; a bond loads only the nodes around its cash\n"
           "   flows; positions -30000 .. +30000 bonds of 100, the seeds of one adjoint call)\n\n");
    verdict("max error value (adjoint twin) vs scalar function", &val, 0);
    fd_verdict("every bond, coupon, face and 12 nodes,", &chk);
    verdict("book node risk (stride-0 accumulator) vs sum of per-bond", &sum, 1e-12);
    free(V), free(gc), free(gf), free(gz), free(pos);
    free(b.coupon), free(b.face), free(b.ncf), free(b.cf_t);
}

/* ================= american_put_crr ================= */

enum { T_S, T_K, T_R, T_SIGMA, T_T, T_NX };

typedef struct TreeBatch {
    size_t n;
    int N; /* uniform: every lane's tree has N steps */
    double *x[T_NX];
} TreeBatch;

static TreeBatch tree_batch(size_t n, int N)
{
    TreeBatch b = {n, N, {NULL}};
    for (int j = 0; j < T_NX; j++) b.x[j] = dalloc(n);
    /* lane 0: Hull's example 21.1 (S = K = 50, r = 10%, sigma = 40%, T = 5 months) */
    for (size_t i = 0; i < n; i++) {
        b.x[T_S][i] = i == 0 ? 50 : uniform(80, 120);
        b.x[T_K][i] = i == 0 ? 50 : 100;
        b.x[T_R][i] = i == 0 ? 0.10 : uniform(0.01, 0.08);
        b.x[T_SIGMA][i] = i == 0 ? 0.40 : uniform(0.1, 0.5);
        b.x[T_T][i] = i == 0 ? 5.0 / 12 : uniform(0.25, 2);
    }
    return b;
}

static double tree_at(const void *batch, size_t i, const double *x)
{
    const TreeBatch *b = batch;
    (void)i;
    return american_put_crr(x[T_S], x[T_K], x[T_R], x[T_SIGMA], x[T_T], b->N);
}

static void tree_adjoint(const TreeBatch *b, double *V, double *g[T_NX])
{
    double *const *x = b->x;
    for (int j = 0; j < T_NX; j++) memset(g[j], 0, b->n * sizeof(double));
    twin_ok(american_put_crr_adjoint(b->n, x[T_S], 1, g[T_S], 1, x[T_K], 1, g[T_K], 1, x[T_R], 1,
                                     g[T_R], 1, x[T_SIGMA], 1, g[T_SIGMA], 1, x[T_T], 1, g[T_T], 1,
                                     &b->N, 0, V, 1, &one, 0, ws()),
            "american_put_crr_adjoint");
}

static void check_tree(int N, size_t n, int show, FdCheck *chk, Worst *val)
{
    static const char *const names[T_NX] = {"dV/dS", "dV/dK", "dV/dr", "dV/dsigma", "dV/dT"};
    TreeBatch b = tree_batch(n, N);
    double *V = dalloc(b.n), *g[T_NX];
    for (int j = 0; j < T_NX; j++) g[j] = dalloc(b.n);
    tree_adjoint(&b, V, g);
    for (size_t i = 0; i < b.n; i++) {
        double x[T_NX], ga[T_NX], gf[T_NX];
        for (int j = 0; j < T_NX; j++) x[j] = b.x[j][i], ga[j] = g[j][i];
        track(val, rel(V[i], tree_at(&b, i, x), 1.0), i, "value vs scalar function");
        double e = fd_lane(tree_at, &b, i, x, T_NX, ga, names, gf, chk);
        if ((int)i < show) {
            char label[80];
            snprintf(label, sizeof label, "  %4d %4zu %5.1f %5.1f %5.3f %5.2f %5.3f |", N, i, x[T_S],
                     x[T_K], x[T_R], x[T_SIGMA], x[T_T]);
            print_row(label, V[i], ga, T_NX);
            printf(" | %6.0e\n", e);
            if (i == 0) print_fd_row(label, tree_at(&b, i, x), gf, T_NX);
        }
    }
    for (int j = 0; j < T_NX; j++) free(g[j]), free(b.x[j]);
    free(V);
}

static void demo_tree(void)
{
    static const char *const names[T_NX] = {"dV/dS", "dV/dK", "dV/dr", "dV/dsigma", "dV/dT"};
    printf("\n== American put, CRR binomial tree: american_put_crr (tree.c) ==\n");
    printf("  per lane: S, K, r, sigma, T; uniform: N (the local array v[N + 1] is the same size"
           " in every lane)\n  lane 0 is Hull's example 21.1 (4.283 with 500 steps)\n\n");
    print_header("     N lane     S     K     r sigma     T |", names, T_NX);
    printf(" | err FD\n");
    FdCheck chk = {{0, 0, ""}, 0, 0, 0};
    Worst val = {0, 0, ""};
    check_tree(500, 48, 4, &chk, &val);
    check_tree(100, 1000, 2, &chk, &val);
    printf("\n  48 lanes with N = 500 and 1000 lanes with N = 100:\n");
    verdict("max error value (adjoint twin) vs scalar function", &val, 0);
    fd_verdict("every lane, every partial,", &chk);
}

/* ================= timing ================= */

enum { REPS = 7 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* What is timed: 0 = the user's scalar loop, 1 = batched primal, 2 = adjoint. */
typedef void (*timed_fn)(int what, void *ctx);

static double time_ns_per_lane(timed_fn f, int what, void *ctx, size_t lanes)
{
    double t[REPS];
    f(what, ctx); /* warm-up */
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        f(what, ctx);
        t[r] = now() - t0;
    }
    qsort(t, REPS, sizeof *t, cmp_double);
    return 1e9 * t[REPS / 2] / (double)lanes;
}

typedef struct PathTiming {
    PathBatch b;
    double *V, *g[P_NX];
    int barrier;
} PathTiming;

static void time_path(int what, void *ctx)
{
    PathTiming *c = ctx;
    PathBatch *b = &c->b;
    if (what == 0) {
        for (size_t i = 0; i < b->n; i++) {
            const double *z = b->z + i * (size_t)b->nsteps;
            c->V[i] = c->barrier ? barrier_up_out_call(b->S0[i], b->K[i], b->B[i], b->r, b->sigma[i],
                                                       b->T[i], b->nsteps, z)
                                 : asian_call(b->S0[i], b->K[i], b->r, b->sigma[i], b->T[i],
                                              b->nsteps, z);
        }
    } else if (what == 1) {
        if (c->barrier)
            twin_ok(barrier_up_out_call_primal(b->n, b->S0, 1, b->K, 1, b->B, 1, &b->r, 0, b->sigma,
                                               1, b->T, 1, &b->nsteps, 0, b->z, b->nsteps, 1, c->V,
                                               1, ws()),
                    "barrier_up_out_call_primal");
        else
            twin_ok(asian_call_primal(b->n, b->S0, 1, b->K, 1, &b->r, 0, b->sigma, 1, b->T, 1,
                                      &b->nsteps, 0, b->z, b->nsteps, 1, c->V, 1, ws()),
                    "asian_call_primal");
    } else if (c->barrier) {
        barrier_adjoint(b, c->V, c->g);
    } else {
        asian_adjoint(b, c->V, c->g);
    }
}

typedef struct HestonTiming {
    HestonBatch b;
    double *V, *g[H_NX];
} HestonTiming;

static void time_heston(int what, void *ctx)
{
    HestonTiming *c = ctx;
    HestonBatch *b = &c->b;
    double *const *x = b->x;
    if (what == 0) {
        for (size_t i = 0; i < b->n; i++) {
            double xi[H_NX];
            heston_lane(b, i, xi);
            c->V[i] = heston_at(b, i, xi);
        }
    } else if (what == 1) {
        twin_ok(heston_call_primal(b->n, x[H_S0], 1, x[H_V0], 1, x[H_KAPPA], 1, x[H_THETA], 1,
                                   x[H_XI], 1, x[H_RHO], 1, x[H_R], 0, x[H_K], 1, x[H_T], 1,
                                   &b->nsteps, 0, b->z1, b->nsteps, 1, b->z2, b->nsteps, 1, c->V,
                                   1, ws()),
                "heston_call_primal");
    } else {
        heston_adjoint(b, c->V, c->g);
    }
}

typedef struct GarchTiming {
    GarchBatch b;
    double *V, *g[3];
} GarchTiming;

static void time_garch(int what, void *ctx)
{
    GarchTiming *c = ctx;
    GarchBatch *b = &c->b;
    if (what == 0) {
        for (size_t i = 0; i < b->n; i++)
            c->V[i] = garch_nll(b->omega[i], b->alpha[i], b->beta[i], b->len[i], b->ret + i * NRET);
    } else if (what == 1) {
        twin_ok(garch_nll_primal(b->n, b->omega, 1, b->alpha, 1, b->beta, 1, b->len, 1, b->ret,
                                 NRET, 1, c->V, 1, ws()),
                "garch_nll_primal");
    } else {
        garch_adjoint(b, c->V, c->g);
    }
}

typedef struct BondTiming {
    BondBatch b;
    double *V, *gc, *gf, *gz;
} BondTiming;

static void time_bond(int what, void *ctx)
{
    BondTiming *c = ctx;
    BondBatch *b = &c->b;
    if (what == 0) {
        for (size_t i = 0; i < b->n; i++)
            c->V[i] = bond_price(b->coupon[i], b->face[i], b->m, b->t, b->zr, b->ncf[i],
                                 b->cf_t + i * MAXCF);
    } else if (what == 1) {
        twin_ok(bond_price_primal(b->n, b->coupon, 1, b->face, 1, &b->m, 0, b->t, 0, 1, b->zr, 0, 1,
                                  b->ncf, 1, b->cf_t, MAXCF, 1, c->V, 1, ws()),
                "bond_price_primal");
    } else {
        twin_ok(bond_price_adjoint(b->n, b->coupon, 1, c->gc, 1, b->face, 1, c->gf, 1, &b->m, 0,
                                   b->t, 0, 1, b->zr, 0, 1, c->gz, NODES, 1, b->ncf, 1, b->cf_t,
                                   MAXCF, 1, c->V, 1, &one, 0, ws()),
                "bond_price_adjoint");
    }
}

typedef struct TreeTiming {
    TreeBatch b;
    double *V, *g[T_NX];
} TreeTiming;

static void time_tree(int what, void *ctx)
{
    TreeTiming *c = ctx;
    TreeBatch *b = &c->b;
    double *const *x = b->x;
    if (what == 0) {
        for (size_t i = 0; i < b->n; i++)
            c->V[i] = american_put_crr(x[T_S][i], x[T_K][i], x[T_R][i], x[T_SIGMA][i], x[T_T][i], b->N);
    } else if (what == 1) {
        twin_ok(american_put_crr_primal(b->n, x[T_S], 1, x[T_K], 1, x[T_R], 1, x[T_SIGMA], 1,
                                        x[T_T], 1, &b->N, 0, c->V, 1, ws()),
                "american_put_crr_primal");
    } else {
        tree_adjoint(b, c->V, c->g);
    }
}

static void timing_row(const char *name, const char *size, size_t lanes, int nsens, timed_fn f,
                       void *ctx)
{
    double s = time_ns_per_lane(f, 0, ctx, lanes), p = time_ns_per_lane(f, 1, ctx, lanes);
    double a = time_ns_per_lane(f, 2, ctx, lanes);
    printf("  %-20s %-14s %6zu %12.0f %14.0f %11.0f (%2d) %13.2f %14.2f\n", name, size, lanes, s, p,
           a, nsens, p / s, a / p);
}

static void demo_timing(void)
{
    printf("\n== Timing: median of %d runs, ns per lane (one lane = one path / series / bond / tree) ==\n",
           REPS);
    printf("  %-20s %-14s %6s %12s %14s %16s %13s %14s\n", "", "size", "lanes", "scalar loop",
           "batched primal", "adjoint (#)", "primal/scalar", "adjoint/primal");

    PathTiming at = {path_batch(4096, NSTEPS), NULL, {NULL}, 0};
    at.V = dalloc(at.b.n);
    for (int j = 0; j < P_NX; j++) at.g[j] = dalloc(at.b.n);
    timing_row("asian_call", "252 steps", at.b.n, P_NX - 1, time_path, &at);
    at.barrier = 1;
    timing_row("barrier_up_out_call", "252 steps", at.b.n, P_NX, time_path, &at);
    path_free(&at.b);
    free(at.V);
    for (int j = 0; j < P_NX; j++) free(at.g[j]);

    HestonTiming ht = {heston_batch(2048, HSTEPS), NULL, {NULL}};
    ht.V = dalloc(ht.b.n);
    for (int j = 0; j < H_NX; j++) ht.g[j] = dalloc(ht.b.n);
    timing_row("heston_call", "100 steps", ht.b.n, H_NX, time_heston, &ht);
    for (int j = 0; j < H_NX; j++) free(ht.g[j]), free(ht.b.x[j]);
    free(ht.V), free(ht.b.z1), free(ht.b.z2);

    GarchTiming gt = {garch_batch(256), NULL, {NULL}};
    for (size_t i = 0; i < gt.b.n; i++) gt.b.len[i] = NRET; /* every series full length */
    gt.V = dalloc(gt.b.n);
    for (int j = 0; j < 3; j++) gt.g[j] = dalloc(gt.b.n);
    timing_row("garch_nll", "2520 returns", gt.b.n, 3, time_garch, &gt);
    for (int j = 0; j < 3; j++) free(gt.g[j]);
    free(gt.V), free(gt.b.omega), free(gt.b.alpha), free(gt.b.beta), free(gt.b.len), free(gt.b.ret);

    BondTiming bt = {bond_batch(8192), NULL, NULL, NULL, NULL};
    bt.V = dalloc(bt.b.n), bt.gc = dalloc(bt.b.n), bt.gf = dalloc(bt.b.n);
    bt.gz = dalloc(bt.b.n * NODES);
    timing_row("bond_price", "1-60 flows", bt.b.n, 2 + NODES, time_bond, &bt);
    free(bt.V), free(bt.gc), free(bt.gf), free(bt.gz);
    free(bt.b.coupon), free(bt.b.face), free(bt.b.ncf), free(bt.b.cf_t);

    TreeTiming tt = {tree_batch(64, 500), NULL, {NULL}};
    tt.V = dalloc(tt.b.n);
    for (int j = 0; j < T_NX; j++) tt.g[j] = dalloc(tt.b.n);
    timing_row("american_put_crr", "500 steps", tt.b.n, T_NX, time_tree, &tt);
    for (int j = 0; j < T_NX; j++) free(tt.g[j]), free(tt.b.x[j]);
    free(tt.V);

    printf("  issue 3 measures asian_call (252 steps), garch_nll (2520 returns) and american_put_crr\n"
           "  (500 steps): target adjoint/primal <= 4\n");
    printf("  (#) the adjoint returns the value and # partials per lane in one call;"
           " every adjoint call is given one\n      %zu MiB workspace for its reverse-sweep stack\n",
           g_ws.bytes >> 20);
}

int main(void)
{
    PathBatch pb = path_batch(NPATH_LANES, NSTEPS);
    check_paths("Arithmetic Asian call: asian_call (paths.c)", &pb, 0);
    asian_mc();
    check_paths("Up-and-out call, discrete monitoring: barrier_up_out_call (paths.c)", &pb, 1);
    path_free(&pb);
    check_heston();
    check_garch();
    check_bond();
    demo_tree();
    demo_timing();
    free(g_ws.base);
    if (failures) {
        printf("\nFAILED: %d check%s\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    printf("\nall checks passed\n");
    return 0;
}
