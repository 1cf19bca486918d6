/*
 * checkpoint.c — loops under `checkpoint(k = K)`: the adjoint keeps a
 * snapshot of the loop's state every K iterations and re-runs one segment at
 * a time in the reverse sweep, instead of a tape of every iteration.
 *
 * Covers: a GBM path (loop-carried product, passive normals) with K = 1, 2,
 * 3 against trip counts 1..4 (segments full, partial and empty); a per-lane
 * branch inside the checkpointed loop; a break on a per-lane double
 * condition (the loop stops inside a segment); an inner loop in the body
 * (its counts and saves replayed per segment); a call to another kernel in
 * the body; the checkpointed loop after an ordinary one that shares a
 * variable with it; a value computed before the loop, read inside and after.
 *
 * Domain contract with the harness (tests/test_corpus.c): doubles in
 * [0.5, 1.5], never within 1e-4 of a quarter point; ints in 1..4.
 * tests/tape_bytes.c runs gbm_long for 10^6 steps and prints the bytes.
 */
#include <math.h>

#include "twinc.h"

/* One GBM path, the average and the end value; z[] are normals. */
#pragma aad passive(z) checkpoint(i = 2)
double gbm_ckpt(double s0, double mu, double sigma, int n, const double z[n])
{
    double dt = 1.0 / n;
    double vol = sigma * sqrt(dt);
    double s = s0, sum = 0.0;
    for (int i = 0; i < n; i++) {
        s = s * exp((mu - 0.5 * sigma * sigma) * dt + vol * z[i]);
        sum += s;
    }
    return sum / n + 0.1 * s * vol;
}

/* The same path checkpointed every 1000 steps: tests/tape_bytes.c runs it
 * for 10^6 steps (the harness's 1..4 steps make one segment). */
#pragma aad passive(z) checkpoint(i = 1000)
double gbm_long(double s0, double mu, double sigma, int n, const double z[n])
{
    double dt = 1.0 / n;
    double vol = sigma * sqrt(dt);
    double s = s0, sum = 0.0;
    for (int i = 0; i < n; i++) {
        s = s * exp((mu - 0.5 * sigma * sigma) * dt + vol * z[i]);
        sum += s;
    }
    return sum / n + 0.1 * s * vol;
}

#pragma aad checkpoint(k = 1)
double every_step(double x, double y, int n)
{
    double a = x, b = y;
    for (int k = 0; k < n; k++) {
        double t = a * b + sin(a);
        b = a;
        a = 0.5 * t;
    }
    return a + b * b;
}

#pragma aad checkpoint(k = 3)
double branch_in_ckpt(double x, double y, int n)
{
    double s = x;
    for (int k = 0; k < n; k++) {
        double t;
        if (x + 0.25 * k > 1.25)
            t = s * y;
        else
            t = s + y * y;
        s = 0.75 * t + 0.1 * cos(s);
    }
    return s;
}

#pragma aad checkpoint(k = 2)
double break_in_ckpt(double x, double y, int n)
{
    double s = y;
    for (int k = 0; k < n; k++) {
        s = s * x + 0.25;
        if (x + 0.25 * k > 1.25)
            break;
        s = sqrt(s * s + y);
    }
    return s * x;
}

#pragma aad checkpoint(k = 2)
double inner_loop_ckpt(double x, double y, int n)
{
    double s = x;
    for (int k = 0; k < n; k++) {
        for (int j = 0; j <= k; j++)
            s = s * cos(y + 0.1 * j) + 0.2 * x;
        s = log(1.0 + s * s);
    }
    return s;
}

#pragma aad
double ckpt_helper(double a, double b)
{
    return a * exp(-b * a);
}

#pragma aad checkpoint(k = 3)
double call_in_ckpt(double x, double y, int n)
{
    double s = x, acc = 0.0;
    for (int i = 0; i < n; i++)
        s = s + 0.1;
    for (int k = 0; k < n; k++) {
        acc += ckpt_helper(s, y);
        s = s * y + 0.25;
    }
    return acc + s;
}
