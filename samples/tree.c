/*
 * tree.c — an American put on a Cox–Ross–Rubinstein binomial tree, by
 * backward induction in one array overwritten in place.
 *
 *   u = exp(sigma sqrt(dt)),  d = 1/u,  p = (exp(r dt) - d) / (u - d),
 *   S(i, j) = S u^j d^(i-j) = S exp((2j - i) sigma sqrt(dt)),  j = 0 .. i,
 *   V(N, j) = max(K - S(N, j), 0),
 *   V(i, j) = max(K - S(i, j), exp(-r dt) (p V(i+1, j+1) + (1-p) V(i+1, j))).
 *
 * Level i lives in v[0 .. i] of v[N + 1]: going up in j, v[j] is overwritten
 * after its last read (v[j + 1] is still level i + 1), so the reverse sweep
 * of the adjoint needs the values the forward sweep overwrote — the lattice
 * case where a careless tool silently uses the final values.  N is a
 * uniform parameter: the local array has the same size in every lane.
 *
 * The Greeks are those of the discrete tree price (the early-exercise
 * decisions are fixed where the derivatives are taken); they converge to the
 * model's as N grows, with the usual odd-even oscillation.
 * Assumes S, K, sigma, T > 0, N >= 1 and p in (0, 1).  MIT licence — see LICENSE.
 */
#include <math.h>

#include "twinc.h"

#pragma aad uniform(N) check(S = 100, K = 100, r = 0.05, sigma = 0.3, T = 1, N = 100)
double american_put_crr(double S, double K, double r, double sigma, double T, int N)
{
    double dt = T / N;
    double sdt = sigma * sqrt(dt);
    double u = exp(sdt);
    double d = 1.0 / u;
    double p = (exp(r * dt) - d) / (u - d);
    double q = 1.0 - p;
    double disc = exp(-r * dt);
    double v[N + 1];
    for (int j = 0; j <= N; j++)
        v[j] = fmax(K - S * exp((2 * j - N) * sdt), 0.0);
    for (int i = N - 1; i >= 0; i--) {
        for (int j = 0; j <= i; j++) {
            double payoff = K - S * exp((2 * j - i) * sdt);
            v[j] = fmax(payoff, disc * (p * v[j + 1] + q * v[j]));
        }
    }
    return v[0];
}
