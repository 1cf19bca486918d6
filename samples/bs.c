/*
 * bs.c — Black–Scholes prices of European calls and puts on an asset paying a
 * continuous dividend yield q, written the way a quant writes them: a few
 * named intermediates, the textbook d1/d2, no tricks for the AD tool.
 *
 *   d1 = (log(S/K) + (r - q + sigma^2/2) T) / (sigma sqrt(T)),  d2 = d1 - sigma sqrt(T)
 *   call = S e^{-qT} N(d1) - K e^{-rT} N(d2)
 *   put  = K e^{-rT} N(-d2) - S e^{-qT} N(-d1)
 *
 * Both functions carry `#pragma aad`, so twinc writes bs.twin.c / bs.twin.h
 * next to this file: batched primal, tangent and adjoint twins of each.  The
 * closed-form Greeks in closed_form.c are the independent check.
 *
 * Assumes S, K, sigma, T > 0.  MIT licence — see LICENSE.
 */
#include <math.h>

#include "twinc.h" /* ncdf(), npdf() */

#pragma aad check(S = 100, K = 105, r = 0.03, q = 0.01, sigma = 0.2, T = 1)
double bs_call(double S, double K, double r, double q, double sigma, double T)
{
    double sd = sigma * sqrt(T);
    double d1 = (log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / sd;
    double d2 = d1 - sd;
    double fwd = S * exp(-q * T);   /* discounted forward, S e^{-qT} */
    double strike = K * exp(-r * T); /* discounted strike, K e^{-rT} */
    return fwd * ncdf(d1) - strike * ncdf(d2);
}

#pragma aad check(S = 100, K = 95, r = 0.03, q = 0.01, sigma = 0.2, T = 1)
double bs_put(double S, double K, double r, double q, double sigma, double T)
{
    double sd = sigma * sqrt(T);
    double d1 = (log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / sd;
    double d2 = d1 - sd;
    double fwd = S * exp(-q * T);
    double strike = K * exp(-r * T);
    return strike * ncdf(-d2) - fwd * ncdf(-d1);
}
