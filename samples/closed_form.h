/*
 * closed_form.h — Black–Scholes prices and first-order Greeks with a
 * continuous dividend yield, from the textbook formulas.  Plain C, no
 * `#pragma aad`: this is the independent reference the demo checks the
 * adjoint twins against.
 *
 * Every Greek is the plain partial derivative of the price with respect to
 * one parameter of bs_call / bs_put, in parameter order:
 *
 *     grad[CF_S]     dV/dS       (delta)
 *     grad[CF_K]     dV/dK       (the dual delta; e^{-rT} N(d2) with a minus sign for a call)
 *     grad[CF_R]     dV/dr       (rho)
 *     grad[CF_Q]     dV/dq       (dividend rho)
 *     grad[CF_SIGMA] dV/dsigma   (vega, per unit of vol, not per 1%)
 *     grad[CF_T]     dV/dT       (minus theta: T is time to expiry, not calendar time)
 *
 * MIT licence — see LICENSE.
 */
#ifndef CLOSED_FORM_H
#define CLOSED_FORM_H

/* ORDER BS_PARAMS: the parameter order of bs_call / bs_put in bs.c. */
enum { CF_S, CF_K, CF_R, CF_Q, CF_SIGMA, CF_T, CF_NGREEKS };

/* Price of a call (put); fills grad[CF_NGREEKS] unless it is NULL.
 * Assumes S, K, sigma, T > 0. */
double cf_bs_call(double S, double K, double r, double q, double sigma, double T, double *grad);
double cf_bs_put(double S, double K, double r, double q, double sigma, double T, double *grad);

#endif /* CLOSED_FORM_H */
