/*
 * barrier_bb.c — an up-and-out call whose Monte Carlo estimator has useful
 * pathwise derivatives: the knock-out indicator is replaced by the path's
 * probability of survival between the dates (Brownian bridge; the barrier is
 * monitored continuously).  Part of the Python risk report (make demo).
 *
 * samples/paths.c's barrier_up_out_call knocks a path out at the first date
 * with S >= B.  With the normals fixed, that indicator is piecewise constant
 * in S0, sigma, B: its pathwise derivatives are those of the surviving paths
 * and miss the knock-out term (dV/dB is 0 on every path).  Here, in log-spot
 * x with b = log B, a path that stays below b at the dates survives step i
 * with probability
 *     p_i = 1 - exp(-2 (b - x_{i-1}) (b - x_i) / (sigma^2 dt))
 * (a Brownian bridge between the dates does not touch b), and its payoff is
 * weighted by prod p_i.  p_i -> 0 as x_i -> b, so the weight is continuous
 * where a date crosses the barrier and the estimator is Lipschitz in every
 * input: its pathwise derivatives are unbiased Greeks, dV/dB included.
 *
 * Assumes S0, K, B, sigma, T > 0, nsteps >= 1.  MIT licence — see LICENSE.
 */
#include <math.h>

#include "twinc.h"

#pragma aad passive(z) uniform(nsteps) check(S0 = 100, K = 100, B = 125, r = 0.03, sigma = 0.2, T = 1, nsteps = 52, z = 0.1)
double barrier_up_out_call_bb(double S0, double K, double B, double r, double sigma, double T,
                              int nsteps, const double z[nsteps])
{
    double dt = T / nsteps;
    double drift = (r - 0.5 * sigma * sigma) * dt;
    double var = sigma * sigma * dt;
    double vol = sqrt(var);
    double b = log(B);
    double x = log(S0);
    if (x >= b)
        return 0.0;
    double w = 1.0;
    for (int i = 0; i < nsteps; i++) {
        double xn = x + drift + vol * z[i];
        if (xn >= b)   /* at the barrier the survival probability is 0 */
            return 0.0;
        w *= 1.0 - exp(-2.0 * (b - x) * (b - xn) / var);
        x = xn;
    }
    return w * exp(-r * T) * fmax(exp(x) - K, 0.0);
}
