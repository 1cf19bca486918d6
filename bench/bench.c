/*
 * bench.c — make bench: SIMD twins against the user's scalar function,
 * finite differences and ADOL-C.  Medians of REPS runs, one process.
 *
 * Per sample (loop-free kernels the vectorizer handles):
 *   scalar   the user's function compiled -O3 -march=native, looped over the
 *            same scenarios (samples/bs.c, samples/sabr.c built in)
 *   primal   the batched primal twin (best ISA at run time, or TWINC_ISA)
 *   adjoint  value + every sensitivity, one adjoint twin call
 *   fd       central differences on the scalar function (2 evals per input)
 *   adolc    ADOL-C gradient() per scenario from one tape (bs_call only)
 * Writes bench/results/bench.md and bench/results/bench.json.
 *
 * MIT licence — see LICENSE.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "twinc.h"
#include "twinc_simd.h"
#include "bs.twin.h"
#include "sabr.twin.h"

double bs_call(double S, double K, double r, double q, double sigma, double T);
double sabr_call(double F, double K, double T, double alpha, double beta, double rho, double nu, double df);
void adolc_bs_tape(const double *x);
void adolc_bs_grad(const double *x, double *g);

enum { N = 1 << 14, REPS = 7 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MEDIAN(out, ...)                                                                           \
    do {                                                                                           \
        double ts_[REPS];                                                                          \
        for (int rep_ = 0; rep_ < REPS; rep_++) {                                                  \
            double t0_ = now();                                                                    \
            __VA_ARGS__;                                                                           \
            ts_[rep_] = now() - t0_;                                                               \
        }                                                                                          \
        qsort(ts_, REPS, sizeof(double), cmp);                                                     \
        out = ts_[REPS / 2] / N * 1e9; /* ns per scenario */                                        \
    } while (0)

static double X[8][N], G[8][N], V[N], SINK;

static double urand(double lo, double hi) { return lo + (hi - lo) * (rand() / (double)RAND_MAX); }

typedef struct Row {
    const char *name;
    double scalar, primal, adjoint, fd, adolc; /* ns per scenario */
} Row;

int main(void)
{
    static const char *const isa_name[] = {"scalar", "avx2", "avx512"};
    srand(7);
    Row rows[2];
    memset(rows, 0, sizeof rows);
    double one = 1.0;
    /* bs_call: S, K, r, q, sigma, T per lane */
    for (int i = 0; i < N; i++) {
        X[0][i] = urand(80, 120), X[1][i] = urand(80, 120), X[2][i] = urand(0, 0.05);
        X[3][i] = urand(0, 0.03), X[4][i] = urand(0.1, 0.5), X[5][i] = urand(0.1, 3);
    }
    Row *r = &rows[0];
    r->name = "bs_call";
    MEDIAN(r->scalar, for (int i = 0; i < N; i++) V[i] = bs_call(X[0][i], X[1][i], X[2][i], X[3][i], X[4][i], X[5][i]));
    MEDIAN(r->primal, bs_call_primal(N, X[0], 1, X[1], 1, X[2], 1, X[3], 1, X[4], 1, X[5], 1, V, 1, NULL));
    MEDIAN(r->adjoint, memset(G, 0, sizeof G);
           bs_call_adjoint(N, X[0], 1, G[0], 1, X[1], 1, G[1], 1, X[2], 1, G[2], 1, X[3], 1, G[3], 1, X[4], 1,
                           G[4], 1, X[5], 1, G[5], 1, V, 1, &one, 0, NULL));
    MEDIAN(r->fd, for (int i = 0; i < N; i++) {
        double x[6] = {X[0][i], X[1][i], X[2][i], X[3][i], X[4][i], X[5][i]};
        V[i] = bs_call(x[0], x[1], x[2], x[3], x[4], x[5]);
        for (int k = 0; k < 6; k++) {
            double h = 1e-6 * fmax(1.0, fabs(x[k])), s = x[k];
            x[k] = s + h;
            double up = bs_call(x[0], x[1], x[2], x[3], x[4], x[5]);
            x[k] = s - h;
            double dn = bs_call(x[0], x[1], x[2], x[3], x[4], x[5]);
            x[k] = s;
            G[k][i] = (up - dn) / (2 * h);
        }
    });
    {
        double x0[6] = {X[0][0], X[1][0], X[2][0], X[3][0], X[4][0], X[5][0]};
        adolc_bs_tape(x0);
    }
    MEDIAN(r->adolc, for (int i = 0; i < N; i++) {
        double x[6] = {X[0][i], X[1][i], X[2][i], X[3][i], X[4][i], X[5][i]}, g[6];
        adolc_bs_grad(x, g);
        SINK += g[0];
    });
    /* sabr_call: F, K, T, alpha, beta, rho, nu, df; some lanes at the money */
    for (int i = 0; i < N; i++) {
        X[0][i] = urand(0.02, 0.04), X[1][i] = i % 8 == 0 ? X[0][i] : urand(0.02, 0.05), X[2][i] = urand(0.5, 5);
        X[3][i] = urand(0.02, 0.05), X[4][i] = urand(0.3, 0.7), X[5][i] = urand(-0.5, 0.3);
        X[6][i] = urand(0.2, 0.6), X[7][i] = urand(0.9, 1.0);
    }
    r = &rows[1];
    r->name = "sabr_call";
#define SX(i) X[0][i], X[1][i], X[2][i], X[3][i], X[4][i], X[5][i], X[6][i], X[7][i]
    MEDIAN(r->scalar, for (int i = 0; i < N; i++) V[i] = sabr_call(SX(i)));
    MEDIAN(r->primal, sabr_call_primal(N, X[0], 1, X[1], 1, X[2], 1, X[3], 1, X[4], 1, X[5], 1, X[6], 1, X[7], 1,
                                       V, 1, NULL));
    MEDIAN(r->adjoint, memset(G, 0, sizeof G);
           sabr_call_adjoint(N, X[0], 1, G[0], 1, X[1], 1, G[1], 1, X[2], 1, G[2], 1, X[3], 1, G[3], 1, X[4], 1,
                             G[4], 1, X[5], 1, G[5], 1, X[6], 1, G[6], 1, X[7], 1, G[7], 1, V, 1, &one, 0, NULL));
    MEDIAN(r->fd, for (int i = 0; i < N; i++) {
        double x[8] = {SX(i)};
        V[i] = sabr_call(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]);
        for (int k = 0; k < 8; k++) {
            double h = 1e-6 * fmax(1e-2, fabs(x[k])), s = x[k];
            x[k] = s + h;
            double up = sabr_call(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]);
            x[k] = s - h;
            double dn = sabr_call(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]);
            x[k] = s;
            G[k][i] = (up - dn) / (2 * h);
        }
    });
    r->adolc = NAN;

    const char *isa = isa_name[twinc_simd_isa()];
    FILE *md = fopen("bench/results/bench.md", "w"), *js = fopen("bench/results/bench.json", "w");
    if (!md || !js) {
        perror("bench/results");
        return 1;
    }
    FILE *outs[2] = {stdout, md};
    for (int o = 0; o < 2; o++) {
        fprintf(outs[o], "ISA %s, %d scenarios, medians of %d runs (ns per scenario; ratios of medians)\n\n", isa, N,
                REPS);
        fprintf(outs[o], "| sample | scalar -O3 | primal | adjoint | FD | ADOL-C | scalar/primal | adjoint/primal "
                         "| FD/adjoint | ADOL-C/adjoint | adjoint/scalar | tape bytes/lane |\n");
        fprintf(outs[o], "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < 2; i++) {
            Row *w = &rows[i];
            fprintf(outs[o], "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fx | %.2fx | %.1fx | %.1fx | %.2f | 0 |\n",
                    w->name, w->scalar, w->primal, w->adjoint, w->fd, w->adolc, w->scalar / w->primal,
                    w->adjoint / w->primal, w->fd / w->adjoint, w->adolc / w->adjoint, w->adjoint / w->scalar);
        }
    }
    fprintf(js, "{\"isa\": \"%s\", \"scenarios\": %d, \"reps\": %d, \"unit\": \"ns/scenario\", \"samples\": [", isa, N,
            REPS);
    for (int i = 0; i < 2; i++) {
        Row *w = &rows[i];
        fprintf(js, "%s{\"name\": \"%s\", \"scalar\": %.3f, \"primal\": %.3f, \"adjoint\": %.3f, \"fd\": %.3f, ",
                i ? ", " : "", w->name, w->scalar, w->primal, w->adjoint, w->fd);
        if (isnan(w->adolc))
            fprintf(js, "\"adolc\": null, ");
        else
            fprintf(js, "\"adolc\": %.3f, ", w->adolc);
        fprintf(js, "\"tape_bytes_per_lane\": 0}");
    }
    fprintf(js, "]}\n");
    fclose(md);
    fclose(js);
    return SINK == 12345.0;
}
