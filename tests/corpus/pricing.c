/*
 * pricing.c — small pricing functions as a quant writes them.
 *
 * Covers: Black-Scholes with ncdf (six active inputs), greeks as outputs
 * through npdf, `#pragma aad passive(K, T)` (two passive doubles in one
 * clause), `#pragma aad uniform(kind)` selecting call or put on an integer,
 * a knock-out with an early return below a static const barrier, Margrabe's
 * exchange option with a passive correlation, an annuity with an integer
 * number of periods as a pow exponent, Bachelier's normal model, and a
 * digital with two clauses on one pragma (`passive(K) uniform(kind)`).
 *
 * Inputs are drawn from [0.5, 1.5] (rates of 50%-150% are unrealistic but
 * harmless); the barrier 0.75 is a point the harness never samples near.
 */
#include <math.h>

#include "twinc.h"

static const double BARRIER = 0.75;

#pragma aad
double bs_call(double S, double K, double r, double q, double sigma, double T)
{
    double sd = sigma * sqrt(T);
    double d1 = (log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / sd;
    return S * exp(-q * T) * ncdf(d1) - K * exp(-r * T) * ncdf(d1 - sd);
}

#pragma aad passive(K, T)
void bs_greeks(double S, double K, double r, double sigma, double T, double *delta,
               double *vega)
{
    double sd = sigma * sqrt(T);
    double d1 = (log(S / K) + (r + 0.5 * sigma * sigma) * T) / sd;
    *delta = ncdf(d1);
    *vega = S * npdf(d1) * sqrt(T);
}

#pragma aad uniform(kind)
double vanilla(double S, double K, double r, double sigma, double T, int kind)
{
    double sd = sigma * sqrt(T);
    double d1 = (log(S / K) + (r + 0.5 * sigma * sigma) * T) / sd;
    double d2 = d1 - sd;
    double df = exp(-r * T);
    if (kind <= 2)
        return S * ncdf(d1) - K * df * ncdf(d2);
    return K * df * ncdf(-d2) - S * ncdf(-d1);
}

#pragma aad
double knock_out_call(double S, double K, double sigma, double T)
{
    if (S < BARRIER)
        return 0.0;
    double sd = sigma * sqrt(T);
    double d1 = (log(S / K) + 0.5 * sd * sd) / sd;
    double call = S * ncdf(d1) - K * ncdf(d1 - sd);
    double survival = 1.0 - exp(-(S - BARRIER) / sd);
    return call * survival;
}

#pragma aad passive(rho)
double margrabe(double S1, double S2, double s1, double s2, double rho, double T)
{
    double rho_c = 0.5 * rho - 0.5; /* in [-0.25, 0.25] */
    double v = s1 * s1 + s2 * s2 - 2.0 * rho_c * s1 * s2;
    double sd = sqrt(v * T);
    double d1 = (log(S1 / S2) + 0.5 * sd * sd) / sd;
    return S1 * ncdf(d1) - S2 * ncdf(d1 - sd);
}

#pragma aad uniform(n)
double annuity(double r, double tau, int n)
{
    double g = 1.0 + 0.1 * r * tau;
    return tau * (1.0 - pow(g, -n)) / (0.1 * r * tau);
}

#pragma aad
double bachelier(double F, double K, double sigma, double T)
{
    double sd = sigma * sqrt(T);
    double d = (F - K) / sd;
    return (F - K) * ncdf(d) + sd * npdf(d);
}

#pragma aad passive(K) uniform(kind)
double cash_or_nothing(double S, double K, double r, double sigma, double T, int kind)
{
    double sd = sigma * sqrt(T);
    double d2 = (log(S / K) + (r - 0.5 * sigma * sigma) * T) / sd;
    double df = exp(-r * T);
    return kind > 2 ? df * ncdf(d2) : df * ncdf(-d2);
}
