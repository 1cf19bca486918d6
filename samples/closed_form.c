/*
 * closed_form.c — Black–Scholes Greeks by hand (see closed_form.h).
 *
 * With Dq = e^{-qT}, Dr = e^{-rT}, sd = sigma sqrt(T), d1, d2 as in bs.c, and
 * N, n the normal CDF and density, the identity S Dq n(d1) = K Dr n(d2) makes
 * every d(d1) term cancel, leaving for a call
 *
 *     dV/dS = Dq N(d1)            dV/dK = -Dr N(d2)
 *     dV/dr = K T Dr N(d2)        dV/dq = -S T Dq N(d1)
 *     dV/dsigma = S Dq n(d1) sqrt(T)
 *     dV/dT = S Dq n(d1) sigma / (2 sqrt(T)) + r K Dr N(d2) - q S Dq N(d1)
 *
 * and for a put the same with N(d) -> -N(-d) in the delta-like terms:
 *
 *     dV/dS = -Dq N(-d1)          dV/dK = Dr N(-d2)
 *     dV/dr = -K T Dr N(-d2)      dV/dq = S T Dq N(-d1)
 *     dV/dsigma = S Dq n(d1) sqrt(T)
 *     dV/dT = S Dq n(d1) sigma / (2 sqrt(T)) - r K Dr N(-d2) + q S Dq N(-d1)
 *
 * MIT licence — see LICENSE.
 */
#include "closed_form.h"

#include <math.h>
#include <stddef.h>

static double N(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }
static double n(double x) { return 0.39894228040143267794 * exp(-0.5 * x * x); }

double cf_bs_call(double S, double K, double r, double q, double sigma, double T, double *grad)
{
    double sqT = sqrt(T), sd = sigma * sqT;
    double d1 = (log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / sd, d2 = d1 - sd;
    double Dq = exp(-q * T), Dr = exp(-r * T);
    double Nd1 = N(d1), Nd2 = N(d2);
    if (grad) {
        grad[CF_S] = Dq * Nd1;
        grad[CF_K] = -Dr * Nd2;
        grad[CF_R] = K * T * Dr * Nd2;
        grad[CF_Q] = -S * T * Dq * Nd1;
        grad[CF_SIGMA] = S * Dq * n(d1) * sqT;
        grad[CF_T] = S * Dq * n(d1) * sigma / (2.0 * sqT) + r * K * Dr * Nd2 - q * S * Dq * Nd1;
    }
    return S * Dq * Nd1 - K * Dr * Nd2;
}

double cf_bs_put(double S, double K, double r, double q, double sigma, double T, double *grad)
{
    double sqT = sqrt(T), sd = sigma * sqT;
    double d1 = (log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / sd, d2 = d1 - sd;
    double Dq = exp(-q * T), Dr = exp(-r * T);
    double Nm1 = N(-d1), Nm2 = N(-d2);
    if (grad) {
        grad[CF_S] = -Dq * Nm1;
        grad[CF_K] = Dr * Nm2;
        grad[CF_R] = -K * T * Dr * Nm2;
        grad[CF_Q] = S * T * Dq * Nm1;
        grad[CF_SIGMA] = S * Dq * n(d1) * sqT;
        grad[CF_T] = S * Dq * n(d1) * sigma / (2.0 * sqT) - r * K * Dr * Nm2 + q * S * Dq * Nm1;
    }
    return K * Dr * Nm2 - S * Dq * Nm1;
}
