/*
 * sabr.c — SABR implied volatility (Hagan, Kumar, Lesniewski, Woodward 2002,
 * "Managing smile risk", eq. (2.17a)) and a call priced with it through
 * Black-76.  Three `#pragma aad` functions; sabr_call calls the other two, so
 * its twins call their twins.
 *
 *   sigma_B(F, K) = alpha / [ (FK)^((1-b)/2) (1 + (1-b)^2/24 L^2 + (1-b)^4/1920 L^4) ]
 *                   * z / x(z)
 *                   * [ 1 + ( (1-b)^2/24 alpha^2/(FK)^(1-b)
 *                           + rho b nu alpha / (4 (FK)^((1-b)/2))
 *                           + (2 - 3 rho^2)/24 nu^2 ) T ]
 *   L = log(F/K),  z = nu/alpha (FK)^((1-b)/2) L,
 *   x(z) = log( (sqrt(1 - 2 rho z + z^2) + z - rho) / (1 - rho) ).
 *
 * At the money z/x(z) is 0/0 with limit 1.  The branch below replaces it by
 * its Taylor series, z/x = 1 - rho z/2 + (2 - 3 rho^2) z^2/12 + O(z^3), and
 * not by the constant 1: a constant is the right value but the wrong slope,
 * and any AD tool faithfully differentiates what is written — with `zx = 1`
 * dvol/dK at K == F comes out about half the true value (-rho/2 dz is lost).
 * The threshold 1e-4 balances two errors in the slope: the O(z^2) series
 * remainder inside the branch, and the cancellation in z/x(z) just outside
 * it (x(z) is accurate to ~1e-16 absolute, so d(z/x)/dz is off by ~1e-16/z^2;
 * at the textbook 1e-7 that is a 1e-3 relative error in dvol/dK).  With 1e-4
 * both sides agree with the exact slope to ~1e-7 relative.
 *
 * Assumes F, K, T, alpha > 0, 0 <= beta <= 1, -1 < rho < 1, nu > 0.
 * MIT licence — see LICENSE.
 */
#include <math.h>

#include "twinc.h" /* ncdf() */

#pragma aad check(F = 0.03, K = 0.035, T = 2, alpha = 0.035, beta = 0.5, rho = -0.3, nu = 0.4)
double sabr_vol(double F, double K, double T, double alpha, double beta, double rho, double nu)
{
    double logFK = log(F / K);
    double omb = 1.0 - beta;
    double fk = pow(F * K, 0.5 * omb); /* (FK)^((1-beta)/2) */
    double l2 = logFK * logFK;
    double denom = fk * (1.0 + omb * omb / 24.0 * l2 + omb * omb * omb * omb / 1920.0 * l2 * l2);
    double z = nu / alpha * fk * logFK;
    double zx;
    if (fabs(logFK) < 1e-4) {
        /* at the money: z/x(z) -> 1, keeping the slope */
        zx = 1.0 - 0.5 * rho * z + (2.0 - 3.0 * rho * rho) / 12.0 * z * z;
    } else {
        double x = log((sqrt(1.0 - 2.0 * rho * z + z * z) + z - rho) / (1.0 - rho));
        zx = z / x;
    }
    double corr = 1.0 + (omb * omb / 24.0 * alpha * alpha / (fk * fk)
                         + 0.25 * rho * beta * nu * alpha / fk
                         + (2.0 - 3.0 * rho * rho) / 24.0 * nu * nu) * T;
    return alpha / denom * zx * corr;
}

/* Black-76: a call on a forward F, discount factor df. */
#pragma aad check(F = 0.03, K = 0.035, T = 2, vol = 0.2, df = 0.95)
double black76_call(double F, double K, double T, double vol, double df)
{
    double sd = vol * sqrt(T);
    double d1 = (log(F / K) + 0.5 * sd * sd) / sd;
    double d2 = d1 - sd;
    return df * (F * ncdf(d1) - K * ncdf(d2));
}

#pragma aad check(F = 0.03, K = 0.035, T = 2, alpha = 0.035, beta = 0.5, rho = -0.3, nu = 0.4, df = 0.95)
double sabr_call(double F, double K, double T, double alpha, double beta, double rho, double nu,
                 double df)
{
    double vol = sabr_vol(F, K, T, alpha, beta, rho, nu);
    return black76_call(F, K, T, vol, df);
}
