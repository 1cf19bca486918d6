/*
 * tape_bytes.c — bytes of reverse-sweep tape per lane, stated and used, for
 * the loop samples at the sizes the issue measures (make tape-bytes):
 * the Asian path (252 steps), GARCH (2520 returns), the CRR tree (500 steps).
 * The twins are built with -include tests/tape_report.h, so they report their
 * tape's high-water mark (and abort if a stated bound fell short).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tape_report.h"
#include "twinc.h"
#define last_high twinc_test_tape_high
#define last_heap twinc_test_tape_heap

const twinc_registry *const *twinc_registries(size_t *count);

static const twinc_kernel *find(const char *name)
{
    size_t n;
    const twinc_registry *const *r = twinc_registries(&n);
    return twinc_find_kernel(r, n, name);
}

/* one lane: every double argument gets x[i], int arguments ints[i], arrays arr */
static void run(const char *name, const double *x, const int *ints, const double *arr, long len)
{
    const twinc_kernel *k = find(name);
    if (!k) {
        printf("%-20s not linked in\n", name);
        return;
    }
    twinc_arg val[16], bar[16];
    double out[16], seed = 1.0;
    double *adj = calloc((size_t)len + 1, sizeof *adj);
    memset(bar, 0, sizeof bar);
    for (int i = 0; i < k->nparams; i++) {
        const twinc_param *p = &k->params[i];
        val[i] = (twinc_arg){NULL, 0, 0};
        if (p->role == TWINC_ROLE_RET) {
            val[i].p = &out[i];
            bar[i].p = &seed;
        } else if (p->length) {
            val[i] = (twinc_arg){(void *)arr, 0, 1};
            if (p->flags & TWINC_PARAM_ACTIVE)
                bar[i] = (twinc_arg){adj, 0, 1};
        } else if (p->type == TWINC_T_INT) {
            val[i].p = (void *)&ints[i];
        } else {
            val[i].p = (void *)&x[i];
            out[i] = 0.0;
            bar[i].p = &out[i];
        }
    }
    size_t stated = k->workspace ? k->workspace(1, val) : 0;
    twinc_workspace ws = {malloc(stated ? stated : 1), stated};
    last_high = last_heap = 0;
    int st = k->adjoint(1, val, bar, &ws);
    printf("%-20s stated %9zu B/lane   used %9zu B   allocated %zu B   status %d\n", name, stated, last_high,
           last_heap, st);
    free(ws.base);
    free(adj);
}

/* A zero curve of a million nodes through bond_price's adjoint, with and
 * without a curve adjoint: the NULL companion's scratch comes from the heap,
 * not a VLA of 8 MB on the stack (which overflowed the default stack). */
static int big_curve(void)
{
    const twinc_kernel *k = find("bond_price");
    if (!k)
        return 0;
    int m = 1000000, ncf = 10;
    double *t = malloc((size_t)m * sizeof *t), *zr = malloc((size_t)m * sizeof *zr);
    double *zr_b = calloc((size_t)m, sizeof *zr_b), cf_t[10];
    for (int i = 0; i < m; i++)
        t[i] = 0.01 + 30.0 * i / m, zr[i] = 0.03 + 0.01 * i / m;
    for (int i = 0; i < ncf; i++)
        cf_t[i] = 0.5 * (i + 1);
    double coupon = 0.05, face = 100, price = 0, seed = 1, c_b = 0, f_b = 0;
    twinc_arg val[] = {{&coupon, 0, 0}, {&face, 0, 0}, {&m, 0, 0}, {t, 0, 1}, {zr, 0, 1},
                       {&ncf, 0, 0}, {cf_t, 0, 1}, {&price, 0, 0}};
    twinc_arg bar[] = {{&c_b, 0, 0}, {&f_b, 0, 0}, {0}, {0}, {zr_b, 0, 1}, {0}, {0}, {&seed, 0, 0}};
    int st1 = k->adjoint(1, val, bar, NULL);
    double sum = 0;
    for (int i = 0; i < m; i++)
        sum += zr_b[i];
    bar[4] = (twinc_arg){NULL, 0, 0};
    int st2 = k->adjoint(1, val, bar, NULL);
    printf("bond_price, 10^6 curve nodes: price %.6f, sum of curve adjoints %.6f (status %d), "
           "without curve adjoint status %d\n", price, sum, st1, st2);
    free(t), free(zr), free(zr_b);
    return st1 != 0 || st2 != 0 || !(sum < 0);
}

int main(void)
{
    static double z[2520];
    unsigned s = 12345;
    for (int i = 0; i < 2520; i++) {
        s = s * 1103515245u + 12345u;
        z[i] = ((double)(s >> 8) / (1 << 24) - 0.5) * 0.02;
    }
    /* asian_call(S0, K, r, sigma, T, nsteps, z) */
    run("asian_call", (double[]){100, 100, 0.03, 0.2, 1}, (int[]){0, 0, 0, 0, 0, 252}, z, 252);
    /* garch_nll(omega, alpha, beta, n, ret) */
    run("garch_nll", (double[]){2e-6, 0.1, 0.85}, (int[]){0, 0, 0, 2520}, z, 2520);
    /* american_put_crr(S, K, r, sigma, T, N) */
    run("american_put_crr", (double[]){100, 100, 0.05, 0.3, 1}, (int[]){0, 0, 0, 0, 0, 500}, NULL, 0);
    return big_curve();
}
