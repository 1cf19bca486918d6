/*
 * mc_kernels.c — small kernels for the Python binding's tests, examples and
 * benchmark: the pieces of a Monte Carlo pricer a quant keeps in C while the
 * path construction and the averaging stay in NumPy.
 *
 *   gbm_log_step      the log-return of a Black–Scholes asset over dt, given
 *                     a standard normal z (passive: random numbers are inputs,
 *                     never differentiated)
 *   disc_call_payoff  a call payoff on a (path) average, discounted
 *
 * MIT licence — see LICENSE.
 */
#include <math.h>

#include "twinc.h"

#pragma aad passive(z)
double gbm_log_step(double r, double q, double sigma, double dt, double z)
{
    return (r - q - 0.5 * sigma * sigma) * dt + sigma * sqrt(dt) * z;
}

#pragma aad
double disc_call_payoff(double A, double K, double r, double T)
{
    return exp(-r * T) * fmax(A - K, 0.0);
}
