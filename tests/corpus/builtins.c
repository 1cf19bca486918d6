/*
 * builtins.c — every math builtin of the subset, with active arguments.
 *
 * Covers: exp log log1p expm1 sqrt cbrt (of a negative argument) pow (both
 * arguments active, a constant double exponent, an int-literal exponent) fabs
 * (both signs) fmin fmax (each side selected, depending on an int) sin cos
 * tan atan atan2 (two quadrants) sinh cosh tanh erf erfc hypot, the normal
 * CDF and density from twinc.h (short names and twinc_ prefixed names), and a
 * clamp fmin(fmax(x, lo), hi).
 *
 * Kinks are placed by construction where the harness never samples: the
 * selects of fmin/fmax/fabs are decided by an integer shift of +-1.5 or
 * +-4.5 (a margin of at least 0.5 on the whole domain), and the clamp bounds
 * are 0.75 and 1.25, which the harness keeps 1e-4 away from.
 */
#include <math.h>

#include "twinc.h"

#pragma aad
double exp_log_family(double x, double y)
{
    return exp(x - y) + log(x * y) + log1p(x) * expm1(y - 1.0);
}

#pragma aad
double roots_and_powers(double x, double y)
{
    double a = sqrt(x + y) + cbrt(x - 2.0);
    double b = pow(x, y) + pow(y, 2.5) + pow(x, 3);
    return a * b;
}

#pragma aad
double trig(double x, double y)
{
    double s = sin(x * y) + cos(x - y) * tan(0.5 * x);
    return s + atan(y / x) + atan2(y - 1.0, x) + atan2(x - 2.0, -y);
}

#pragma aad
double hyperbolic(double x, double y)
{
    return sinh(x - y) * cosh(y) + tanh(x * y - 1.0);
}

#pragma aad
double error_functions(double x, double y)
{
    double a = erf(x - y) + erfc(y) * ncdf(x - 1.0);
    return a + npdf(x * y - 1.0) + twinc_ncdf(-y) * twinc_npdf(x);
}

#pragma aad
double abs_min_max(double x, double y, int k)
{
    double shift = 3.0 * (k - 2.5);  /* -4.5, -1.5, 1.5, 4.5 */
    double lo = fmin(x, y + shift);  /* y + shift for k <= 2, x for k >= 3 */
    double hi = fmax(x, y + shift);  /* x for k <= 2, y + shift for k >= 3 */
    double d = fabs(x - y - shift);  /* positive for k <= 2, negative inside */
    return lo * hi + d * x + hypot(x, y - 1.0) + hypot(y, 2.0);
}

#pragma aad
double clamp_band(double x, double y)
{
    double c = fmin(fmax(x, 0.75), 1.25);
    return c * y + fmax(0.0, y - 1.0) * x;
}
