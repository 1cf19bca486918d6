/*
 * garch.c — the Gaussian negative log-likelihood of a GARCH(1,1) model
 * (Bollerslev 1986) over a series of (demeaned) returns, the objective an
 * optimiser minimises to fit omega, alpha and beta; the adjoint twin gives its
 * value and gradient in one sweep.
 *
 *   h_1     = sample variance of the returns,  (1/n) sum_t ret_t^2
 *   h_{t+1} = omega + alpha ret_t^2 + beta h_t
 *   nll     = 1/2 sum_{t=1..n} [ log(2 pi) + log h_t + ret_t^2 / h_t ]
 *
 * The first variance is the sample variance (the usual "backcast" choice,
 * not the unconditional omega / (1 - alpha - beta)): it depends on the data
 * only, so it stays finite when alpha + beta >= 1 and the first loop is
 * passive.  That loop feeds the active recursion of the second, so activity
 * analysis must keep h passive at the start and active from its first update.
 *
 * The returns are data (`passive`); n may differ per lane (one series per
 * lane, series of different lengths).  Assumes n >= 1, omega > 0,
 * alpha, beta >= 0 and returns not all zero.  MIT licence — see LICENSE.
 */
#include <math.h>

#include "twinc.h"

#pragma aad passive(ret) check(omega = 2e-6, alpha = 0.1, beta = 0.85, n = 250, ret = 0.01)
double garch_nll(double omega, double alpha, double beta, int n, const double ret[n])
{
    double var0 = 0.0;
    for (int t = 0; t < n; t++)
        var0 += ret[t] * ret[t];
    double h = var0 / n;
    double nll = 0.0;
    for (int t = 0; t < n; t++) {
        double e2 = ret[t] * ret[t];
        nll += 0.5 * (1.8378770664093454836 + log(h) + e2 / h); /* log(2 pi) = 1.8379 */
        h = omega + alpha * e2 + beta * h;
    }
    return nll;
}
