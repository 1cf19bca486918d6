/*
 * tape_bytes.c — bytes of reverse-sweep tape per lane, stated and used, for
 * the loop samples at the sizes the issue measures (make tape-bytes):
 * the Asian path (252 steps), GARCH (2520 returns), the CRR tree (500 steps).
 * The twins are built with -include tests/tape_report.h, so they report their
 * tape's high-water mark (and abort if a stated bound fell short).
 */
#include <math.h>
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

/* A path of 10^6 steps under checkpoint(i = 1000), against the same path
 * without checkpointing (asian_call's stated tape) and against central
 * finite differences of the primal in s0 and sigma. */
static int long_path(void)
{
    const twinc_kernel *k = find("gbm_long"), *a = find("asian_call");
    if (!k)
        return 0;
    int n = 1000000;
    double *z = malloc((size_t)n * sizeof *z);
    unsigned s = 777;
    for (int i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        z[i] = ((double)(s >> 8) / (1 << 24) - 0.5) * 3.4;
    }
    double x[3] = {100, 0.03, 0.2}, xb[3] = {0, 0, 0}, r = 0, seed = 1;
    twinc_arg val[] = {{&x[0], 0, 0}, {&x[1], 0, 0}, {&x[2], 0, 0}, {&n, 0, 0}, {z, 0, 1}, {&r, 0, 0}};
    twinc_arg bar[] = {{&xb[0], 0, 0}, {&xb[1], 0, 0}, {&xb[2], 0, 0}, {0}, {0}, {&seed, 0, 0}};
    size_t stated = k->workspace(1, val);
    twinc_workspace ws = {malloc(stated), stated};
    last_high = last_heap = 0;
    int st = k->adjoint(1, val, bar, &ws);
    printf("gbm_long, 10^6 steps, checkpoint(i = 1000): stated %zu B   used %zu B   allocated %zu B   status %d\n",
           stated, last_high, last_heap, st);
    if (a) {
        double ax[5] = {100, 100, 0.03, 0.2, 1}, out = 0;
        twinc_arg av[] = {{&ax[0], 0, 0}, {&ax[1], 0, 0}, {&ax[2], 0, 0}, {&ax[3], 0, 0}, {&ax[4], 0, 0},
                          {&n, 0, 0}, {z, 0, 1}, {&out, 0, 0}};
        printf("asian_call, 10^6 steps, no checkpointing: stated %zu B\n", a->workspace(1, av));
    }
    double worst = 0;
    for (int i = 0; i < 3; i += 2) {
        double h = 1e-5 * x[i], keep = x[i], up, dn;
        x[i] = keep + h;
        k->primal(1, val, NULL);
        up = r;
        x[i] = keep - h;
        k->primal(1, val, NULL);
        dn = r;
        x[i] = keep;
        double fd = (up - dn) / (2 * h), rho = fabs(fd - xb[i]) / fmax(fabs(fd), 1e-300);
        printf("  d/d%s: adjoint %.12g  central FD %.12g  rho %.2e\n", i ? "sigma" : "s0", xb[i], fd, rho);
        worst = fmax(worst, rho);
    }
    free(ws.base);
    free(z);
    return st != 0 || last_heap != 0 || last_high > stated || worst > 1e-6;
}

/* scale_in_place with v and x the same memory: the derivatives would be
 * wrong, so the tangent and adjoint refuse (TWINC_EINVAL); apart, fine. */
static int aliased(void)
{
    const twinc_kernel *k = find("scale_in_place");
    if (!k)
        return 0;
    int n = 8;
    double buf[16], vb[8] = {0}, xb[8] = {0}, r = 0, seed = 1;
    for (int i = 0; i < 16; i++)
        buf[i] = 0.5 + 0.05 * i;
    twinc_arg val[] = {{&n, 0, 0}, {buf, 0, 1}, {buf, 0, 1}, {&r, 0, 0}};
    twinc_arg bar[] = {{0}, {xb, 0, 1}, {vb, 0, 1}, {&seed, 0, 0}};
    int same = k->adjoint(1, val, bar, NULL);
    val[2].p = buf + 4; /* overlapping halves */
    int half = k->adjoint(1, val, bar, NULL);
    val[2].p = buf + 8; /* apart */
    int apart = k->adjoint(1, val, bar, NULL);
    printf("scale_in_place with v aliasing x: adjoint status %d (same), %d (overlapping), %d (apart)\n", same, half,
           apart);
    return same != TWINC_EINVAL || half != TWINC_EINVAL || apart != TWINC_OK;
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
    int bad = big_curve();
    bad |= long_path();
    bad |= aliased();
    return bad;
}
