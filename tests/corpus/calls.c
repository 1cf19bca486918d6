/*
 * calls.c — calls between #pragma aad functions of one file.
 *
 * Covers: a callee called twice in one expression and with a literal
 * argument; a void callee with two outputs, called twice with the same
 * locals (&r, &th); a callee given the caller's own output pointers; a
 * callee's value in an if condition; a callee with `#pragma aad passive(z)` given only passive
 * values (the caller's own passive parameter, literals); a call chain three
 * deep (caller -> calls_twice -> sq_plus); a callee that overwrites its own
 * parameter (the caller's variable must not change); a callee with an int
 * parameter given int expressions; a callee with a per-lane branch and early
 * return.
 */
#include <math.h>

#include "twinc.h"

#pragma aad
double sq_plus(double a, double b)
{
    return a * a + b;
}

#pragma aad
double calls_twice(double x, double y)
{
    double u = sq_plus(x, y);
    return u * sq_plus(y, u) + sq_plus(0.5, x);
}

#pragma aad
double hypot_sum(double a, double b)
{
    return hypot(a, b) + a;
}

#pragma aad
void polar(double x, double y, double *r, double *theta)
{
    *r = hypot(x, y);
    *theta = atan2(y, x);
}

#pragma aad
double via_outputs(double x, double y)
{
    double r, th;
    polar(x, y, &r, &th);
    double z = r * cos(th) + x * sin(th);
    polar(y, x * y, &r, &th);
    return z + r * th;
}

#pragma aad
void forward_outputs(double x, double y, double *r, double *theta)
{
    polar(x * y, y, r, theta); /* the caller's own outputs, passed on */
    *r += *theta * x;
}

#pragma aad
double call_in_condition(double x, double y)
{
    if (sq_plus(x, 0.0) > 1.0) /* x * x > 1, i.e. x > 1 */
        return sq_plus(y, x);
    return hypot_sum(x, y);
}

#pragma aad passive(z)
double damped(double x, double z)
{
    return x * exp(-z * x);
}

#pragma aad passive(c)
double passive_callee(double x, double y, double c)
{
    return damped(x, c) + damped(y, 0.5) * damped(x * y, c + 1.0);
}

#pragma aad
double bump(double a, double b)
{
    a = a * b;
    a += 1.0;
    return a * b;
}

#pragma aad
double hinge(double a)
{
    if (a > 1.0)
        return a - 0.5;
    return 0.5 * a * a;
}

#pragma aad
double scaled_by(double x, int k)
{
    return x * k + k / 2;
}

#pragma aad
double call_chain(double x, double y, int k)
{
    double t = x;
    double a = calls_twice(x, y);
    double b = bump(t, y); /* t is still x afterwards */
    double c = hinge(x) + hinge(y + 0.25) * t;
    double d = scaled_by(y, k + 1) - scaled_by(x, 2 * k);
    return a - b + c * d;
}
