/*
 * alias.c — in/out arrays next to input arrays.  The harness checks them
 * like the rest; tests/tape_bytes.c also calls scale_in_place with v and x
 * the same memory, which the tangent and adjoint must refuse (TWINC_EINVAL):
 * one adjoint per argument cannot describe v[i] = v[i] * v[i].
 *
 * Domain contract with the harness (tests/test_corpus.c): doubles in
 * [0.5, 1.5], ints in 1..4.
 */
#include <math.h>

#include "twinc.h"

#pragma aad
double scale_in_place(int n, const double x[n], double v[n])
{
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        v[i] = v[i] * x[i] + 0.5 * sin(v[i]);
        s += v[i] * x[n - 1 - i];
    }
    return s;
}

#pragma aad
void two_in_place(int n, double a[n], double b[n], double y)
{
    for (int i = 0; i < n; i++) {
        double t = a[i];
        a[i] = t * b[n - 1 - i] + y;
        b[i] = b[i] * t;
    }
}
