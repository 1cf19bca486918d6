/*
 * ints.c — integer parameters, integer arithmetic and int<->double casts.
 *
 * Covers: int, long, unsigned and unsigned long scalar parameters (passive);
 * integer + - * / % and unary minus, integer division of negative values
 * (truncation toward zero) and of literals (`1 / 2 + 3 / 2 * x` is `x`),
 * unsigned wrap-around, explicit and implicit conversions int -> double
 * (`(double)k / m`, `x * q`, `double d = k / 2`) and double -> int
 * (`(int)(x * 4.0)`, `int i = x`, `(int)(x - 2.0)` truncating a negative
 * value toward zero), comparisons and ! && || on integers with
 * int-valued results, a short circuit that matters (`j != 0 && n / j > 1`
 * with j == 0 on some lanes: evaluating the right side would divide by zero;
 * likewise an int division in one arm of ?: and in a per-lane if), compound
 * assignment of a double into an int (`c *= 1.5`), an int parameter
 * reassigned, an int compared with a double, an unsigned wrap in a condition,
 * and `#pragma aad uniform(k)` with branches and arithmetic on k.
 *
 * The double -> int conversions step at x = 0.75, 1.0 and 1.25, which the
 * harness never samples within 1e-4 of.
 */
#include <math.h>

#include "twinc.h"

#pragma aad
double int_arith(double x, int k, int m)
{
    int q = k / 2;
    int r = (k * m + 3) % 4;
    int s = -k + m * 2 - r;
    double h = 1 / 2 + 3 / 2 * x;
    double d = k / 2;
    int c = k;
    c *= 1.5;   /* c = (int)(k * 1.5): 1, 3, 4, 6 */
    double e = 3;
    e /= 2;     /* 1.5: double division of an int-valued double */
    k = k * 2 + m; /* an int parameter reassigned */
    return x * q + r * x * x + (double)s / 3.0 + h + d + (double)k / m + c * e * x;
}

#pragma aad
double short_circuit(double x, int k, int n)
{
    int j = k - 2; /* 0 when k == 2: n / j and n % j must not run then */
    double r = x;
    if (j != 0 && n / j > 1)
        r *= 2.0;
    if (j == 0 || n % j == 1)
        r += x * x;
    r += (j != 0 && 8 / j >= 4) ? x : 1.0;
    if (!j)
        r -= 0.5 * x;
    int q = j != 0 ? n / j : 7;   /* only the selected arm may run */
    if (j != 0) {
        int rem = n % j;          /* only lanes with j != 0 may run this */
        r += rem * x;
    }
    return r + q * x;
}

#pragma aad
double long_and_unsigned(double x, long a, unsigned b, unsigned long c)
{
    long p = a * a - 5L;       /* negative for a <= 2 */
    long pq = p / 3;           /* truncates toward zero */
    long pr = p % 3;           /* takes the sign of p */
    unsigned w = b * 3u + 1u;
    unsigned wrap = b - 5u;    /* wraps: 2^32 - 5 + b */
    unsigned long big = c * c + 2ul;
    double r = x * p + (double)w / x + big * x * x;
    r += (wrap % 7u) * x + pq * x * x + pr;
    if (b - 3u > 2u)              /* wraps for b < 3: true for b = 1, 2 */
        r *= 1.5;
    return r;
}

#pragma aad
double double_to_int(double x, double y)
{
    int t = (int)(x * 4.0); /* 2, 3, 4 or 5 */
    long u = (long)y;       /* 0 or 1 */
    int i = x;              /* implicit conversion: 0 or 1 */
    int neg = (int)(x - 2.0); /* truncates toward zero: -1 or 0 */
    double r = t * x + u * y * y + i + neg * y;
    return r / (1 + t);
}

#pragma aad uniform(k)
double uniform_int(double x, double y, int k)
{
    double r = x;
    if (k > 2)
        r = r * y;
    else
        r = r + y;
    if (k == 4)
        return r * r;
    return r * k - y / k;
}

#pragma aad
double int_logic(double x, int k, int m)
{
    int both = k > 1 && m < 4;
    int either = !(k == m) || k >= 3;
    int neg = !k;
    double r = x * both + x * x * either + neg;
    if (k > x)              /* int against double: for k = 1 this is x < 1 */
        r += x;
    if (k <= m)
        r += 1;
    if (k != m && !(m > 3))
        r *= x;
    return r;
}
