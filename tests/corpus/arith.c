/*
 * arith.c — straight-line arithmetic on doubles.
 *
 * Covers: + - * / and unary minus (also a double negation `- -y`), integer
 * and floating literals mixed with doubles (`3 * x`, `1 + x * x`, `1.5e-1`),
 * locals and const locals (one initialised from an int literal), every
 * compound assignment (+= -= *= /=), including a variable compounded with
 * itself, a variable reassigned many times (x = x*y; x = exp(x); ...), double
 * parameters overwritten in the body, names shadowed in nested blocks, and
 * file-scope `static const double` constants (one with a constant-expression
 * initialiser).
 *
 * Every function is smooth on the harness domain (doubles in [0.5, 1.5]).
 */
#include <math.h>

#include "twinc.h"

static const double HALF = 0.5;
static const double THIRD = 1.0 / 3.0;
static const double SCALE = 2.5e-1;

#pragma aad
double poly_mix(double x, double y)
{
    const double a = 2;
    double t = x * y - x / y + 3 * x - -y;
    double u = -t + a * t * t - 1.5e-1 * y;
    return u / (1 + x * x) + 7;
}

#pragma aad
double compound_assign(double x, double y)
{
    double acc = 1.0;
    acc += x * y;
    acc -= 0.25 * y;
    acc *= x + 2;
    acc /= y + 1.0;
    acc += acc * x;
    double w = y;
    w *= w;
    w -= acc / 3;
    w /= 1.0 + x;
    return acc - w;
}

#pragma aad
double reassign_chain(double x, double y)
{
    x = x * y;
    x = exp(x);
    x = x + y;
    x = log(x);
    x = x * x;
    y = y - x;
    x = x / (1.0 + y * y);
    x = sqrt(x + 1.0);
    x = x * x * x;
    return x * y;
}

#pragma aad
double shadowed_names(double x, double y)
{
    double t = x + y;
    double r = t;
    {
        double t = x * y;
        r *= t;
        {
            double t = r - x;
            r += t * t;
        }
        r -= t;
    }
    r += t;
    return r;
}

#pragma aad
double file_constants(double x, double y)
{
    const double lin = SCALE * x * y;
    return HALF * x * x + THIRD * y * y * y - lin;
}
