/*
 * demo.c — `make demo`: what twinc's twins give a quant, checked and timed.
 *
 * bs.c and sabr.c are plain pricing functions with `#pragma aad`; twinc wrote
 * bs.twin.c and sabr.twin.c from them at build time.  This program
 *
 *   1. prices a batch of Black–Scholes calls and puts with the adjoint twin
 *      (value and all six partials in one call per batch) and compares every
 *      number with the closed form (closed_form.c) and central finite
 *      differences of the user's own scalar functions;
 *   2. shows the lane-stride ABI: r and q are one value shared by all lanes
 *      (lane stride 0); their adjoints come back per lane (accumulator stride
 *      1) or summed over the book (accumulator stride 0, seeds = positions);
 *   3. does the same for a SABR smile priced through Black-76, including a
 *      lane exactly at the money, where the formula is 0/0 and the user's
 *      code takes a branch;
 *   4. checks the tangent twin: one directional derivative equals the dot of
 *      the adjoint gradient with the direction;
 *   5. times the user's scalar loop, the batched primal and the adjoint over
 *      100k lanes.
 *
 * Every check prints its worst error and its limit; any failure makes the
 * exit status 1.
 *
 * MIT licence — see LICENSE.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bs.twin.h"
#include "closed_form.h"
#include "sabr.twin.h"

/* The user's scalar functions (bs.c, sabr.c): the FD baseline and the loop we time. */
double bs_call(double S, double K, double r, double q, double sigma, double T);
double bs_put(double S, double K, double r, double q, double sigma, double T);
double sabr_vol(double F, double K, double T, double alpha, double beta, double rho, double nu);
double sabr_call(double F, double K, double T, double alpha, double beta, double rho, double nu,
                 double df);

static int failures;

/* ---- small helpers ---- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "demo: out of memory\n");
        exit(2);
    }
    return p;
}

static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static double uniform(double lo, double hi) /* xorshift64*, deterministic */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return lo + (hi - lo) * (double)((rng_state * 2685821657736338717ull) >> 11) * 0x1p-53;
}

static void twin_ok(int status, const char *what)
{
    if (status != 0) {
        fprintf(stderr, "demo: %s returned status %d\n", what, status);
        exit(1);
    }
}

/* The worst error of a check and where it happened. */
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

/* |a - b| relative to max(floor, |b|). */
static double rel(double a, double b, double floor_)
{
    return fabs(a - b) / fmax(floor_, fabs(b));
}

/* ---- Black–Scholes ---- */

enum { NBS = 4099 }; /* not a multiple of any SIMD width on purpose */
static const char *const bs_names[CF_NGREEKS] = {"dV/dS", "dV/dK", "dV/dr",
                                                 "dV/dq", "dV/dsigma", "dV/dT"};

typedef double (*bs_scalar_fn)(double S, double K, double r, double q, double sigma, double T);
typedef double (*bs_closed_fn)(double S, double K, double r, double q, double sigma, double T,
                               double *grad);
/* The adjoint twin of a function of (S, K, r, q, sigma, T): per parameter its
 * value and its accumulator, each with a lane stride; then ret and its seed. */
typedef int (*bs_adjoint_fn)(size_t n, const double *S, ptrdiff_t S_ls, double *S_b,
                             ptrdiff_t S_b_ls, const double *K, ptrdiff_t K_ls, double *K_b,
                             ptrdiff_t K_b_ls, const double *r, ptrdiff_t r_ls, double *r_b,
                             ptrdiff_t r_b_ls, const double *q, ptrdiff_t q_ls, double *q_b,
                             ptrdiff_t q_b_ls, const double *sigma, ptrdiff_t sigma_ls,
                             double *sigma_b, ptrdiff_t sigma_b_ls, const double *T,
                             ptrdiff_t T_ls, double *T_b, ptrdiff_t T_b_ls, double *ret,
                             ptrdiff_t ret_ls, const double *ret_b, ptrdiff_t ret_b_ls,
                             twinc_workspace *ws);

typedef struct Option {
    const char *name;
    bs_scalar_fn scalar;
    bs_closed_fn closed;
    bs_adjoint_fn adjoint;
} Option;

static const Option options[2] = {{"call", bs_call, cf_bs_call, bs_call_adjoint},
                                  {"put", bs_put, cf_bs_put, bs_put_adjoint}};

typedef struct BsBatch {
    size_t n;
    double *S, *K, *sigma, *T; /* per lane */
    double r, q;               /* shared by every lane: lane stride 0 */
} BsBatch;

static BsBatch bs_batch(size_t n)
{
    /* The first four lanes are the ones printed; the rest are random. */
    static const double shown[4][4] = {
        {100, 100, 0.20, 1.00}, {100, 120, 0.25, 0.50}, {100, 80, 0.40, 2.00}, {50, 55, 0.30, 0.25}};
    BsBatch b = {n, xcalloc(n, sizeof(double)), xcalloc(n, sizeof(double)),
                 xcalloc(n, sizeof(double)), xcalloc(n, sizeof(double)), 0.03, 0.015};
    for (size_t i = 0; i < n; i++) {
        if (i < 4) {
            b.S[i] = shown[i][0], b.K[i] = shown[i][1], b.sigma[i] = shown[i][2], b.T[i] = shown[i][3];
            continue;
        }
        b.S[i] = uniform(50, 150);
        b.sigma[i] = uniform(0.1, 0.8);
        b.T[i] = uniform(0.1, 5);
        b.K[i] = b.S[i] * exp(uniform(-1.5, 1.5) * b.sigma[i] * sqrt(b.T[i]));
    }
    return b;
}

static void bs_free(BsBatch *b)
{
    free(b->S), free(b->K), free(b->sigma), free(b->T);
}

static void bs_lane(const BsBatch *b, size_t i, double x[CF_NGREEKS])
{
    x[CF_S] = b->S[i], x[CF_K] = b->K[i], x[CF_R] = b->r, x[CF_Q] = b->q;
    x[CF_SIGMA] = b->sigma[i], x[CF_T] = b->T[i];
}

static double bs_eval(bs_scalar_fn f, const double x[CF_NGREEKS])
{
    return f(x[CF_S], x[CF_K], x[CF_R], x[CF_Q], x[CF_SIGMA], x[CF_T]);
}

/* Central differences of the user's scalar function, step h = 1e-5 max(1, |x|). */
static void bs_fd(bs_scalar_fn f, const double x0[CF_NGREEKS], double g[CF_NGREEKS])
{
    double x[CF_NGREEKS];
    memcpy(x, x0, sizeof x);
    for (int j = 0; j < CF_NGREEKS; j++) {
        double h = 1e-5 * fmax(1.0, fabs(x0[j]));
        x[j] = x0[j] + h;
        double up = bs_eval(f, x);
        x[j] = x0[j] - h;
        double dn = bs_eval(f, x);
        x[j] = x0[j];
        g[j] = (up - dn) / (2 * h);
    }
}

/* Value and every partial per lane: one adjoint call, seed 1 shared by all
 * lanes (stride 0), per-lane accumulators (stride 1) even for the shared r, q. */
static void bs_adjoint_per_lane(const Option *o, const BsBatch *b, double *V, double *g[CF_NGREEKS])
{
    static const double one = 1.0;
    for (int j = 0; j < CF_NGREEKS; j++) memset(g[j], 0, b->n * sizeof(double));
    twin_ok(o->adjoint(b->n, b->S, 1, g[CF_S], 1, b->K, 1, g[CF_K], 1, &b->r, 0, g[CF_R], 1,
                       &b->q, 0, g[CF_Q], 1, b->sigma, 1, g[CF_SIGMA], 1, b->T, 1, g[CF_T], 1,
                       V, 1, &one, 0, NULL),
            "bs adjoint");
}

static void print_bs_row(const char *label, double price, const double g[CF_NGREEKS])
{
    printf("%s %9.4f", label, price);
    for (int j = 0; j < CF_NGREEKS; j++) printf(" %9.4f", g[j]);
}

static void demo_bs(void)
{
    BsBatch b = bs_batch(NBS);
    double *V[2], *g[2][CF_NGREEKS], side[3] = {0}, side_g[3][CF_NGREEKS] = {{0}};
    for (int k = 0; k < 2; k++) {
        V[k] = xcalloc(b.n, sizeof(double));
        for (int j = 0; j < CF_NGREEKS; j++) g[k][j] = xcalloc(b.n, sizeof(double));
        bs_adjoint_per_lane(&options[k], &b, V[k], g[k]);
    }

    printf("== Black-Scholes: bs_call, bs_put (bs.c) over %zu lanes ==\n", b.n);
    printf("  per lane: S, K, sigma, T;  shared by all lanes (stride 0): r = %.2f%%, q = %.2f%%\n",
           100 * b.r, 100 * b.q);
    printf("  adjoint twin, one call per batch: the price and all six partials per lane\n\n");
    printf("  lane type    S    K sigma    T |     price     dV/dS     dV/dK     dV/dr"
           "     dV/dq dV/dsigma     dV/dT | err CF  err FD\n");

    /* Every lane against both references; the first four lanes are printed
     * with their worst error over the seven numbers, lane 1 side by side. */
    Worst cf = {0, 0, ""}, fd = {0, 0, ""};
    for (size_t i = 0; i < b.n; i++)
        for (int k = 0; k < 2; k++) {
            double x[CF_NGREEKS], ga[CF_NGREEKS], gc[CF_NGREEKS], gf[CF_NGREEKS];
            bs_lane(&b, i, x);
            double vc = options[k].closed(x[CF_S], x[CF_K], x[CF_R], x[CF_Q], x[CF_SIGMA],
                                          x[CF_T], gc);
            bs_fd(options[k].scalar, x, gf);
            Worst lane_cf = {0, 0, ""}, lane_fd = {0, 0, ""};
            track(&lane_cf, rel(V[k][i], vc, 1.0), i, k ? "put price" : "call price");
            for (int j = 0; j < CF_NGREEKS; j++) {
                ga[j] = g[k][j][i];
                track(&lane_cf, rel(ga[j], gc[j], 1.0), i, bs_names[j]);
                track(&lane_fd, rel(ga[j], gf[j], 1.0), i, bs_names[j]);
            }
            track(&cf, lane_cf.err, i, lane_cf.what);
            track(&fd, lane_fd.err, i, lane_fd.what);
            if (i < 4) {
                char label[64];
                snprintf(label, sizeof label, "  %4zu %-4s %4.0f %4.0f %5.2f %4.2f |", i,
                         options[k].name, b.S[i], b.K[i], b.sigma[i], b.T[i]);
                print_bs_row(label, V[k][i], ga);
                printf(" | %6.0e  %6.0e\n", lane_cf.err, lane_fd.err);
            }
            if (i == 1 && k == 0) {
                side[0] = V[k][i], side[1] = vc, side[2] = bs_eval(bs_call, x);
                memcpy(side_g[0], ga, sizeof ga), memcpy(side_g[1], gc, sizeof gc);
                memcpy(side_g[2], gf, sizeof gf);
            }
        }
    printf("\n  lane 1 call, side by side:\n");
    print_bs_row("    adjoint twin           |", side[0], side_g[0]);
    printf("\n");
    print_bs_row("    closed form            |", side[1], side_g[1]);
    printf("\n");
    print_bs_row("    central FD of bs_call  |", side[2], side_g[2]);
    printf("\n");
    printf("\n  every lane, call and put, price and six partials; error = |a - b| / max(1, |b|):\n");
    verdict("max error adjoint vs closed form", &cf, 1e-10);
    verdict("max error adjoint vs central FD (h = 1e-5 max(1,|x|))", &fd, 1e-6);

    /* The portfolio view: the same call with accumulators of stride 0 for the
     * shared r and q sums seed * partial over the lanes.  Seeds = positions. */
    double *w = xcalloc(b.n, sizeof(double)), *scratch[4];
    for (size_t i = 0; i < b.n; i++) w[i] = (double)((long)(i % 11) - 5); /* -5 .. +5 contracts */
    for (int j = 0; j < 4; j++) scratch[j] = xcalloc(b.n, sizeof(double));
    printf("\n  a book of calls, position w_i in lane i (-5..+5 contracts): seed = w (stride 1),\n"
           "  accumulators of r and q with stride 0, so the twin sums w_i dV_i/dr over the lanes:\n");
    double book[2] = {0, 0}; /* dV/dr, dV/dq of the book, summed by the twin */
    twin_ok(bs_call_adjoint(b.n, b.S, 1, scratch[0], 1, b.K, 1, scratch[1], 1, &b.r, 0, &book[0],
                            0, &b.q, 0, &book[1], 0, b.sigma, 1, scratch[2], 1, b.T, 1,
                            scratch[3], 1, NULL, 0, /* value not wanted */
                            w, 1, NULL),
            "bs_call_adjoint (book)");
    for (int k = 0; k < 2; k++) {
        int j = k ? CF_Q : CF_R;
        double per_lane = 0, closed = 0, mag = 0;
        for (size_t i = 0; i < b.n; i++) {
            double x[CF_NGREEKS], gc[CF_NGREEKS];
            bs_lane(&b, i, x);
            cf_bs_call(x[CF_S], x[CF_K], x[CF_R], x[CF_Q], x[CF_SIGMA], x[CF_T], gc);
            per_lane += w[i] * g[0][j][i];
            closed += w[i] * gc[j];
            mag += fabs(w[i] * gc[j]);
        }
        Worst e = {0, 0, ""};
        track(&e, fabs(book[k] - per_lane) / fmax(1.0, mag), 0, "vs sum of per-lane adjoints");
        track(&e, fabs(book[k] - closed) / fmax(1.0, mag), 0, "vs sum of closed forms");
        printf("    book %s: twin %.6f   sum of per-lane %.6f   closed form %.6f\n",
               bs_names[j], book[k], per_lane, closed);
        char label[80];
        snprintf(label, sizeof label, "max error book %s (relative to sum |w_i dV_i|)", bs_names[j]);
        verdict(label, &e, 1e-12);
    }

    /* Tangent twin: one direction per lane, r and q shared values but per-lane directions. */
    double *dir[CF_NGREEKS], *Vt = xcalloc(b.n, sizeof(double)), *Vd = xcalloc(b.n, sizeof(double));
    for (int j = 0; j < CF_NGREEKS; j++) {
        dir[j] = xcalloc(b.n, sizeof(double));
        for (size_t i = 0; i < b.n; i++) dir[j][i] = uniform(-1, 1);
    }
    twin_ok(bs_call_tangent(b.n, b.S, 1, dir[CF_S], 1, b.K, 1, dir[CF_K], 1, &b.r, 0, dir[CF_R], 1,
                            &b.q, 0, dir[CF_Q], 1, b.sigma, 1, dir[CF_SIGMA], 1, b.T, 1,
                            dir[CF_T], 1, Vt, 1, Vd, 1, NULL),
            "bs_call_tangent");
    Worst tg = {0, 0, ""};
    for (size_t i = 0; i < b.n; i++) {
        double dot = 0, mag = 0;
        for (int j = 0; j < CF_NGREEKS; j++) {
            dot += g[0][j][i] * dir[j][i];
            mag += fabs(g[0][j][i] * dir[j][i]);
        }
        track(&tg, fabs(Vd[i] - dot) / fmax(1.0, mag), i, "directional derivative");
        track(&tg, rel(Vt[i], V[0][i], 1.0), i, "value");
    }
    printf("\n  tangent twin, random direction u per lane: dV.u vs <adjoint gradient, u>\n");
    verdict("max error bs_call tangent vs adjoint", &tg, 1e-12);

    for (int j = 0; j < CF_NGREEKS; j++) free(dir[j]);
    for (int j = 0; j < 4; j++) free(scratch[j]);
    free(Vt), free(Vd), free(w);
    for (int k = 0; k < 2; k++) {
        free(V[k]);
        for (int j = 0; j < CF_NGREEKS; j++) free(g[k][j]);
    }
    bs_free(&b);
}

/* ---- SABR ---- */

enum { SP_F, SP_K, SP_T, SP_ALPHA, SP_BETA, SP_RHO, SP_NU, SP_DF, SP_N }; /* ORDER sabr_call */
static const char *const sabr_names[SP_N] = {"dV/dF",    "dV/dK",   "dV/dT",  "dV/dalpha",
                                             "dV/dbeta", "dV/drho", "dV/dnu", "dV/ddf"};
enum { NSABR = 4099, SABR_ATM = 3, SABR_NEAR = 4 };

typedef struct SabrBatch {
    size_t n;
    double *K, *T, *df;                 /* per lane */
    double F, alpha, beta, rho, nu;     /* one smile, shared: lane stride 0 */
} SabrBatch;

static SabrBatch sabr_batch(size_t n)
{
    SabrBatch b = {n, xcalloc(n, sizeof(double)), xcalloc(n, sizeof(double)),
                   xcalloc(n, sizeof(double)), 100.0, 2.0, 0.5, -0.3, 0.4};
    /* Printed lanes: T = 1, strikes across the smile, lane 3 exactly at the
     * money and lane 4 a hair away from it. */
    static const double shown_K[8] = {70, 80, 90, 100, 100, 110, 120, 140};
    for (size_t i = 0; i < n; i++) {
        if (i < 8) {
            b.T[i] = 1.0;
            b.K[i] = shown_K[i];
            if (i == SABR_NEAR) b.K[i] = b.F * (1 + 1e-10);
        } else {
            b.T[i] = uniform(0.1, 10);
            b.K[i] = b.F * exp(uniform(-1.5, 1.5) * 0.2 * sqrt(b.T[i]));
        }
        b.df[i] = exp(-0.03 * b.T[i]);
    }
    return b;
}

static void sabr_lane(const SabrBatch *b, size_t i, double x[SP_N])
{
    x[SP_F] = b->F, x[SP_K] = b->K[i], x[SP_T] = b->T[i], x[SP_ALPHA] = b->alpha;
    x[SP_BETA] = b->beta, x[SP_RHO] = b->rho, x[SP_NU] = b->nu, x[SP_DF] = b->df[i];
}

static double sabr_eval(const double x[SP_N])
{
    return sabr_call(x[SP_F], x[SP_K], x[SP_T], x[SP_ALPHA], x[SP_BETA], x[SP_RHO], x[SP_NU],
                     x[SP_DF]);
}

/* Central differences of sabr_call with step h = rel_step max(1, |x|);
 * five points (error O(h^4)) when wide, so a wide step stays accurate. */
static void sabr_fd(const double x0[SP_N], double rel_step, int five_point, double g[SP_N])
{
    double x[SP_N];
    memcpy(x, x0, sizeof x);
    for (int j = 0; j < SP_N; j++) {
        double h = rel_step * fmax(1.0, fabs(x0[j])), d;
        x[j] = x0[j] + h, d = sabr_eval(x);
        x[j] = x0[j] - h, d -= sabr_eval(x);
        if (five_point) {
            double d2;
            x[j] = x0[j] + 2 * h, d2 = sabr_eval(x);
            x[j] = x0[j] - 2 * h, d2 -= sabr_eval(x);
            g[j] = (8 * d - d2) / (12 * h);
        } else {
            g[j] = d / (2 * h);
        }
        x[j] = x0[j];
    }
}

static void print_sabr_row(const char *label, double vol, double price, const double g[SP_N])
{
    printf("%s %7.4f %9.4f", label, vol, price);
    for (int j = 0; j < SP_N; j++) printf(" %9.4f", g[j]);
}

static void demo_sabr(void)
{
    static const double one = 1.0;
    SabrBatch b = sabr_batch(NSABR);
    double *vol = xcalloc(b.n, sizeof(double)), *V = xcalloc(b.n, sizeof(double)), *g[SP_N];
    for (int j = 0; j < SP_N; j++) g[j] = xcalloc(b.n, sizeof(double));

    twin_ok(sabr_vol_primal(b.n, &b.F, 0, b.K, 1, b.T, 1, &b.alpha, 0, &b.beta, 0, &b.rho, 0,
                            &b.nu, 0, vol, 1, NULL),
            "sabr_vol_primal");
    twin_ok(sabr_call_adjoint(b.n, &b.F, 0, g[SP_F], 1, b.K, 1, g[SP_K], 1, b.T, 1, g[SP_T], 1,
                              &b.alpha, 0, g[SP_ALPHA], 1, &b.beta, 0, g[SP_BETA], 1, &b.rho, 0,
                              g[SP_RHO], 1, &b.nu, 0, g[SP_NU], 1, b.df, 1, g[SP_DF], 1, V, 1,
                              &one, 0, NULL),
            "sabr_call_adjoint");

    printf("\n== SABR (Hagan 2002) smile, call through Black-76: sabr_call (sabr.c) over %zu lanes ==\n",
           b.n);
    printf("  shared (stride 0): F = %g, alpha = %g, beta = %g, rho = %g, nu = %g;"
           "  per lane: K, T, df\n\n", b.F, b.alpha, b.beta, b.rho, b.nu);
    printf("  lane        K    T |     vol     price     dV/dF     dV/dK     dV/dT dV/dalpha"
           "  dV/dbeta   dV/drho    dV/dnu    dV/ddf | err FD\n");
    Worst fd = {0, 0, ""};
    for (size_t i = 0; i < b.n; i++) {
        double x[SP_N], gf[SP_N], ga[SP_N];
        sabr_lane(&b, i, x);
        sabr_fd(x, 1e-5, 0, gf);
        Worst lane = {0, 0, ""};
        track(&lane, rel(V[i], sabr_eval(x), 1.0), i, "price vs scalar sabr_call");
        for (int j = 0; j < SP_N; j++) {
            ga[j] = g[j][i];
            track(&lane, rel(ga[j], gf[j], 1.0), i, sabr_names[j]);
        }
        track(&fd, lane.err, i, lane.what);
        if (i < 8) {
            char label[64];
            snprintf(label, sizeof label, "  %4zu %8.3f %4.2f |", i, b.K[i], b.T[i]);
            print_sabr_row(label, vol[i], V[i], ga);
            printf(" | %6.0e\n", lane.err);
        }
    }
    printf("  (lane %d: K = F exactly, the code's ATM branch; lane %d: K = F (1 + 1e-10))\n",
           SABR_ATM, SABR_NEAR);
    printf("\n  every lane, price and eight partials; error = |a - b| / max(1, |b|):\n");
    verdict("max error adjoint vs central FD (h = 1e-5 max(1,|x|))", &fd, 1e-6);

    /* At the money: finite, and equal to the slope of the textbook formula
     * next to it — FD at the lane a hair off ATM, with steps (1e-3 F, five
     * points) wide enough that the bumped F and K never enter the ATM branch. */
    Worst atm = {0, 0, ""};
    double x[SP_N], gf[SP_N], ga[SP_N];
    sabr_lane(&b, SABR_NEAR, x);
    sabr_fd(x, 1e-3, 1, gf);
    int finite = isfinite(V[SABR_ATM]);
    for (int j = 0; j < SP_N; j++) {
        finite &= isfinite(g[j][SABR_ATM]);
        track(&atm, rel(g[j][SABR_ATM], gf[j], 1.0), SABR_ATM, sabr_names[j]);
        ga[j] = g[j][SABR_ATM];
    }
    printf("\n  ATM lane %d: price and partials finite: %s\n", SABR_ATM, finite ? "yes" : "NO");
    print_sabr_row("    adjoint, K = F exactly   |", vol[SABR_ATM], V[SABR_ATM], ga);
    printf("\n");
    print_sabr_row("    FD, K = F(1+1e-10), wide |", sabr_vol(x[SP_F], x[SP_K], x[SP_T],
                   x[SP_ALPHA], x[SP_BETA], x[SP_RHO], x[SP_NU]), sabr_eval(x), gf);
    printf("\n");
    printf("    (five-point FD, steps 1e-3 max(1,|x|): the bumped F and K land outside the ATM branch)\n");
    failures += !finite;
    verdict("max error ATM adjoint vs off-ATM FD", &atm, 1e-7);

    /* Tangent twin of sabr_call, one random direction per lane. */
    double *dir[SP_N], *Vd = xcalloc(b.n, sizeof(double));
    for (int j = 0; j < SP_N; j++) {
        dir[j] = xcalloc(b.n, sizeof(double));
        for (size_t i = 0; i < b.n; i++) dir[j][i] = uniform(-1, 1);
    }
    twin_ok(sabr_call_tangent(b.n, &b.F, 0, dir[SP_F], 1, b.K, 1, dir[SP_K], 1, b.T, 1, dir[SP_T],
                              1, &b.alpha, 0, dir[SP_ALPHA], 1, &b.beta, 0, dir[SP_BETA], 1,
                              &b.rho, 0, dir[SP_RHO], 1, &b.nu, 0, dir[SP_NU], 1, b.df, 1,
                              dir[SP_DF], 1, NULL, 0, /* value not wanted */
                              Vd, 1, NULL),
            "sabr_call_tangent");
    Worst tg = {0, 0, ""};
    for (size_t i = 0; i < b.n; i++) {
        double dot = 0, mag = 0;
        for (int j = 0; j < SP_N; j++) {
            dot += g[j][i] * dir[j][i];
            mag += fabs(g[j][i] * dir[j][i]);
        }
        track(&tg, fabs(Vd[i] - dot) / fmax(1e-3, mag), i, "directional derivative");
    }
    /* 1e-11, not 1e-12: just outside the ATM branch z/x(z) is ill-conditioned
     * (terms of size 1/z cancel), and the two sweeps round in different orders. */
    printf("\n  tangent twin, random direction u per lane: dV.u vs <adjoint gradient, u>\n");
    verdict("max error sabr_call tangent vs adjoint", &tg, 1e-11);

    for (int j = 0; j < SP_N; j++) free(g[j]), free(dir[j]);
    free(vol), free(V), free(Vd), free(b.K), free(b.T), free(b.df);
}

/* ---- timing ---- */

enum { NTIME = 100000, REPS = 9 };

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

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

/* What is timed: 0 = the user's scalar loop, 1 = batched primal, 2 = adjoint. */
typedef void (*timed_fn)(int what, void *ctx);

static double time_ns_per_lane(timed_fn f, int what, void *ctx)
{
    double t[REPS];
    f(what, ctx); /* warm-up */
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        f(what, ctx);
        t[r] = now() - t0;
    }
    return 1e9 * median(t, REPS) / NTIME;
}

typedef struct BsTiming {
    BsBatch b;
    double *V, *g[CF_NGREEKS];
} BsTiming;

static void time_bs(int what, void *ctx)
{
    static const double one = 1.0;
    BsTiming *c = ctx;
    BsBatch *b = &c->b;
    if (what == 0) {
        for (size_t i = 0; i < b->n; i++)
            c->V[i] = bs_call(b->S[i], b->K[i], b->r, b->q, b->sigma[i], b->T[i]);
    } else if (what == 1) {
        twin_ok(bs_call_primal(b->n, b->S, 1, b->K, 1, &b->r, 0, &b->q, 0, b->sigma, 1, b->T, 1,
                               c->V, 1, NULL),
                "bs_call_primal");
    } else {
        twin_ok(bs_call_adjoint(b->n, b->S, 1, c->g[0], 1, b->K, 1, c->g[1], 1, &b->r, 0,
                                c->g[2], 1, &b->q, 0, c->g[3], 1, b->sigma, 1, c->g[4], 1, b->T,
                                1, c->g[5], 1, c->V, 1, &one, 0, NULL),
                "bs_call_adjoint");
    }
}

typedef struct SabrTiming {
    SabrBatch b;
    double *V, *g[SP_N];
} SabrTiming;

static void time_sabr(int what, void *ctx)
{
    static const double one = 1.0;
    SabrTiming *c = ctx;
    SabrBatch *b = &c->b;
    if (what == 0) {
        for (size_t i = 0; i < b->n; i++)
            c->V[i] = sabr_call(b->F, b->K[i], b->T[i], b->alpha, b->beta, b->rho, b->nu, b->df[i]);
    } else if (what == 1) {
        twin_ok(sabr_call_primal(b->n, &b->F, 0, b->K, 1, b->T, 1, &b->alpha, 0, &b->beta, 0,
                                 &b->rho, 0, &b->nu, 0, b->df, 1, c->V, 1, NULL),
                "sabr_call_primal");
    } else {
        twin_ok(sabr_call_adjoint(b->n, &b->F, 0, c->g[0], 1, b->K, 1, c->g[1], 1, b->T, 1,
                                  c->g[2], 1, &b->alpha, 0, c->g[3], 1, &b->beta, 0, c->g[4], 1,
                                  &b->rho, 0, c->g[5], 1, &b->nu, 0, c->g[6], 1, b->df, 1,
                                  c->g[7], 1, c->V, 1, &one, 0, NULL),
                "sabr_call_adjoint");
    }
}

static void timing_row(const char *name, int nsens, timed_fn f, void *ctx)
{
    double s = time_ns_per_lane(f, 0, ctx), p = time_ns_per_lane(f, 1, ctx);
    double a = time_ns_per_lane(f, 2, ctx);
    printf("  %-10s %13.1f %16.1f %10.1f (%d) %14.2f %15.2f\n", name, s, p, a, nsens, p / s, a / p);
}

static void demo_timing(void)
{
    /* The adjoint accumulates into g each run; the values only grow, which
     * does not change the work done. */
    BsTiming bt = {bs_batch(NTIME), xcalloc(NTIME, sizeof(double)), {NULL}};
    SabrTiming st = {sabr_batch(NTIME), xcalloc(NTIME, sizeof(double)), {NULL}};
    for (int j = 0; j < CF_NGREEKS; j++) bt.g[j] = xcalloc(NTIME, sizeof(double));
    for (int j = 0; j < SP_N; j++) st.g[j] = xcalloc(NTIME, sizeof(double));

    printf("\n== Timing: %d lanes, median of %d runs, ns per lane ==\n", NTIME, REPS);
    printf("  %-10s %13s %16s %14s %14s %15s\n", "", "scalar loop", "batched primal",
           "adjoint (#)", "primal/scalar", "adjoint/primal");
    timing_row("bs_call", CF_NGREEKS, time_bs, &bt);
    timing_row("sabr_call", SP_N, time_sabr, &st);
    printf("  (#) the adjoint returns the price and # partials per lane in one call\n");

    for (int j = 0; j < CF_NGREEKS; j++) free(bt.g[j]);
    for (int j = 0; j < SP_N; j++) free(st.g[j]);
    free(bt.V), free(st.V), free(st.b.K), free(st.b.T), free(st.b.df);
    bs_free(&bt.b);
}

int main(void)
{
    demo_bs();
    demo_sabr();
    demo_timing();
    if (failures) {
        printf("\nFAILED: %d check%s\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    printf("\nall checks passed\n");
    return 0;
}
