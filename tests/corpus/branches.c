/*
 * branches.c — control flow that depends on per-lane values.
 *
 * Covers: if / else if / else, nested ifs, a branch without else, early
 * return from inside an if (twice, one from a nested block), the conditional
 * operator ?: (nested, and with an int and a double arm), comparisons
 * < <= > >= == != on doubles, logical && || ! (nested, negated compound
 * conditions), locals declared without an initialiser and assigned only in
 * the branches of an if/else, and sqrt(fmax(v, 0.0)) where v < 0 on part of
 * the domain (its derivative there must be 0, not NaN).
 *
 * Domain contract with the harness (tests/test_corpus.c): doubles are drawn
 * from [0.5, 1.5] but never within 1e-4 of 0.5, 0.75, 1.0, 1.25 or 1.5, so a
 * branch on a single input against one of those constants splits the domain
 * (lanes disagree) without any sample or finite-difference step crossing it.
 * Conditions on combinations of inputs would put kinks anywhere; the
 * functions here only branch on one input at a time, or on integers.
 */
#include <math.h>

#include "twinc.h"

#pragma aad
double piecewise_nested(double x, double y)
{
    double r;
    if (x > 1.0) {
        if (y > 1.0)
            r = x * y;
        else
            r = x / y;
    } else if (y <= 0.75) {
        r = exp(x - y);
    } else {
        r = x + y * y;
        if (x < 0.75)
            r *= 2.0;
    }
    return r;
}

#pragma aad
double early_return(double x, double y)
{
    double t = x * y;
    if (x > 1.25)
        return t * t;
    t += y;
    if (y < 0.75) {
        double u = t - x;
        return u * 3.0;
    }
    t = log(t);
    return t + x;
}

#pragma aad
double ternaries(double x, double y)
{
    double a = x > 1.0 ? x * x : y / x;
    double b = (y >= 1.25) ? (x < 0.75 ? 1.0 : a * y) : -a;
    return a + b + (x <= 1.0 ? 2 : 0.5) * y;
}

#pragma aad
double logic_ops(double x, double y, double z)
{
    double r = x + y + z;
    if (x > 1.0 && y < 1.0)
        r *= x;
    if (x < 0.75 || z > 1.25)
        r -= y * z;
    if (!(y > 1.0))
        r += 1.0;
    if ((x >= 1.25 || y <= 0.75) && !(z < 1.0 && x != 1.0))
        r = r * r;
    if (x == 1.0)
        r = 0.0; /* never taken: the harness never draws 1.0 */
    return r;
}

#pragma aad
double assigned_in_branches(double x, double y)
{
    double a, b;
    if (x > 1.0) {
        a = x * y;
        b = a + 1.0;
    } else {
        a = y;
        b = x * a;
    }
    a = a * b;
    return a + b;
}

#pragma aad
double clamped_sqrt(double x, double y, int k)
{
    /* For even k, v < 0 on the whole domain: the sqrt term is 0 and so is
     * its derivative, while a naive adjoint computes 0 * (0.5 / sqrt(0)) =
     * NaN.  For odd k, v = x * y >= 0.25 and the term is smooth. */
    double v = (k % 2 == 0) ? x - 2.0 : x * y;
    double s = sqrt(fmax(v, 0.0));
    double s0 = sqrt(fmax(0.0, v - 3.0)); /* always 0: the tie-free other order */
    return s + s0 + x * y;
}
