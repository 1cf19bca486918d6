/*
 * outputs.c — `double *` output parameters.
 *
 * Covers: a void function with one output, with two, and with three (one of
 * them also given a passive parameter); a function that returns a value and
 * writes an output; outputs read back after being assigned, updated with a
 * compound assignment (*aux *= r) and reassigned after being read; outputs
 * assigned on every path of an if/else, including an early `return;` from a
 * void function; sqrt(fmax(v, 0.0)) stored in an output.
 */
#include <math.h>

#include "twinc.h"

#pragma aad
void one_output(double x, double *y)
{
    *y = x * sin(x);
}

#pragma aad
void sum_diff(double x, double y, double *s, double *d)
{
    *s = x * y + y;
    *d = x / y - x;
}

#pragma aad
double value_and_aux(double x, double y, double *aux)
{
    *aux = x * y;
    double r = *aux + exp(-*aux);
    *aux *= r;
    return r / y;
}

#pragma aad
void outputs_every_path(double x, double y, double *lo, double *hi)
{
    if (x > 1.0) {
        *lo = y;
        *hi = x * y;
        return;
    }
    *hi = x + y;
    if (y < 0.75)
        *lo = *hi * 0.5;
    else
        *lo = x;
}

#pragma aad passive(w)
void three_outputs(double x, double y, double w, double *a, double *b, double *c)
{
    double t = x * y;
    *a = t;
    *b = *a * w + y;
    *c = *a - *b;
    *a = *a * *a;
    *c += sqrt(fmax(x - 2.0, 0.0));
}
