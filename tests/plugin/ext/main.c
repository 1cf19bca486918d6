/* main.c — calls the adjoint twin of forward_value and prints value and
 * gradient; links libtwinc (twinc_strerror) to show the runtime is found. */
#include <math.h>
#include <stdio.h>

#include "price.twin.h"

int main(void)
{
    double S = 100, r = 0.05, q = 0.01, T = 2, v = 0, one = 1;
    double dS = 0, dr = 0, dq = 0, dT = 0;
    int rc = forward_value_adjoint(1, &S, 0, &dS, 0, &r, 0, &dr, 0, &q, 0, &dq, 0, &T, 0, &dT, 0,
                                   &v, 0, &one, 0, NULL);
    double want = S * exp((r - q) * T);
    printf("status %s value %.12g dS %.12g dT %.12g\n", twinc_strerror(rc), v, dS, dT);
    return rc != 0 || fabs(v - want) > 1e-12 * want || fabs(dS - want / S) > 1e-12;
}
