/*
 * loops.c — loops over scalars: every way a loop can start, stop and carry
 * values from one iteration to the next.
 *
 * Covers: for loops with trip counts from a per-lane int parameter, from a
 * uniform one (`uniform(n)`) and from a double converted to int (so it
 * differs per lane), counting up, down and in steps of 2, with an int,
 * unsigned or long counter, and a counter declared before the loop and read
 * after it; nested loops with an inner bound depending on the outer index;
 * `for (;;)`-style loops left by `break` only; `break` on an int condition,
 * on a per-lane double condition, and in an inner loop only; `continue` on
 * an int and on a per-lane condition; `return` from inside a loop and from
 * inside a nested loop; while loops whose condition depends on a per-lane
 * double (trip counts 0..4 differ per lane) and on int && double; do-while
 * (body runs at least once) with an int and with a per-lane double
 * condition; loop-carried recursions that overwrite values the reverse sweep
 * needs (a two-term recurrence, a logistic-style map); a local declared
 * without initialiser inside the loop body and assigned only in the
 * branches of an if/else (its value must be saved per iteration); a variable
 * that becomes active only through a loop-carried dependence (activity
 * analysis must iterate to a fixpoint) and one that stops being active;
 * `double *` outputs read and written inside a loop; a call to another
 * `#pragma aad` function inside a loop.
 *
 * Domain contract with the harness (tests/test_corpus.c): doubles in [0.5,
 * 1.5], never within 1e-4 of a quarter point; ints in 1..4.  Every
 * per-lane condition compares one input plus a multiple of 0.25 with a
 * quarter point (`x + 0.25 * i > 1.25`, `t += 0.25 ... t < 1.5`), so trip
 * counts and branches differ between lanes but no sample or FD step crosses
 * a switch.  Values stay O(1) for every trip count the harness can draw.
 */
#include <math.h>

#include "twinc.h"

/* sum_{i=1..n} x^i / i: trip count from a per-lane int, a carried product. */
#pragma aad
double sum_powers(double x, int n)
{
    double s = 0.0;
    double p = 1.0;
    for (int i = 1; i <= n; i++) {
        p *= x;
        s += p / i;
    }
    return s;
}

/* Nested loops, the inner bound depends on the outer index (n (n+1) / 2
 * iterations); the carried s is multiplied, so its old values are needed. */
#pragma aad
double nested_triangle(double x, double y, int n)
{
    double s = 0.5;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++)
            s = s * cos(x + 0.1 * j) + y * sin(x * i + y * j);
    return s;
}

/* A loop with no condition, left by break on an int condition. */
#pragma aad
double break_infinite_for(double x, double y, int n)
{
    double acc = y;
    for (int i = 0;; i++) {
        if (i >= n)
            break;
        acc = acc * x + y / (i + 1);
    }
    return acc;
}

/* break on a per-lane double: t = x + 0.25 k passes 1.5 after 1..4 steps. */
#pragma aad
double break_per_lane(double x, double y)
{
    double acc = y;
    double t = x;
    for (int i = 0; i < 8; i++) {
        acc = acc * t + 0.5 * sin(acc);
        t += 0.25;
        if (t > 1.5)
            break;
    }
    return acc * t;
}

/* return from inside the loop, on an int && per-lane double condition. */
#pragma aad
double return_in_loop(double x, double y, int n)
{
    double acc = x;
    for (int i = 0; i < n; i++) {
        acc = acc * y + x * x / (i + 1);
        if (i == 1 && y > 1.0)
            return acc * 2.0;
    }
    return acc - y;
}

/* return from inside a nested loop. */
#pragma aad
double return_in_nested_loop(double x, double y, int n)
{
    double s = x;
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            s = s * 0.75 + y * exp(-0.5 * s);
            if (i + j == n && x > 1.25)
                return s * y;
        }
        s -= 0.1 * x;
    }
    return s;
}

/* while on a per-lane double: 0..4 iterations, counted in k. */
#pragma aad
double while_per_lane(double x, double y)
{
    double t = x;
    double acc = y;
    int k = 0;
    while (t < 1.5) {
        acc = acc * t + sin(t * y);
        t += 0.25;
        k++;
    }
    return acc + t * k;
}

/* while on int && per-lane double. */
#pragma aad
double while_and_condition(double x, double y, int n)
{
    int k = 0;
    double s = y;
    while (k < n && x > 0.5 + 0.25 * k) {
        s = s * x - 0.25 * s * s;
        k++;
    }
    return s + k;
}

/* do-while: the body runs at least once, then while i < n. */
#pragma aad
double do_while_count(double x, int n)
{
    double s = x;
    int i = 0;
    do {
        s = s * s * 0.25 + x * 0.5 + i * 0.1;
        i++;
    } while (i < n);
    return s;
}

/* do-while on a per-lane double: u = y + 0.25 k stays below 1.25 for 0..3 more steps. */
#pragma aad
double do_while_per_lane(double x, double y)
{
    double acc = x;
    double u = y;
    do {
        acc = acc * u + log(1.0 + acc);
        u += 0.25;
    } while (u < 1.25);
    return acc / u;
}

/* continue on an int (odd i) and on a per-lane condition. */
#pragma aad
double continue_skip(double x, double y, int n)
{
    double s = 1.0;
    for (int i = 0; i < 2 * n; i++) {
        if (i % 2 == 1)
            continue;
        if (x > 1.0 && i == 2)
            continue;
        s = s * y + sin(x * s);
    }
    return s;
}

/* A local declared without initialiser in the loop body, assigned only in
 * the branches of an if/else whose condition changes per lane and per
 * iteration (x + 0.25 i passes 1.25 at a different i in each lane).  The
 * reverse sweep needs w of every iteration. */
#pragma aad
double uninit_local_in_loop(double x, double y, int n)
{
    double s = x;
    for (int i = 0; i < n; i++) {
        double w;
        if (x + 0.25 * i > 1.25)
            w = sin(s) + y;
        else
            w = s * y;
        s = s * w * 0.5 + 0.5 * x;
    }
    return s;
}

/* The same trap with the branch on the counter and two such locals. */
#pragma aad
double uninit_locals_int_branch(double x, double y, int n)
{
    double s = y;
    for (int i = 0; i < n + 1; i++) {
        double a;
        double b;
        if (i % 2 == 0) {
            a = exp(-s);
            b = x;
        } else {
            a = s * x;
            b = cos(s);
        }
        s = a * b + s * 0.5;
    }
    return s;
}

/* b is passive in the first iteration and active from the second on (a
 * loop-carried dependence); c is active in the first iteration only.  A
 * one-pass activity analysis gets d/dx of a wrong for n >= 2. */
#pragma aad
double activity_fixpoint(double x, int n)
{
    double a = 1.0;
    double b = 0.5;
    double c = x;
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        a = a * b + 1.0;
        b = x * (i + 1);
        s += c * (i + 1);
        c = 1.0;
    }
    return a + s;
}

/* Two-term recurrence (a Chebyshev-like recursion): prev and cur are
 * overwritten every iteration, and 2 x cur needs the old cur. */
#pragma aad
double two_term_recursion(double x, double y, int n)
{
    double prev = 1.0;
    double cur = x;
    for (int k = 0; k < n; k++) {
        double next = 2.0 * x * cur - y * prev;
        prev = cur;
        cur = next;
    }
    return cur + prev * y;
}

/* A nonlinear map t <- r t (2 - t): t stays in (0, 2) on the domain. */
#pragma aad
double logistic_overwrite(double x, double r, int n)
{
    double t = x;
    for (int i = 0; i < 3 * n; i++)
        t = r * t * (2.0 - t);
    return t;
}

/* break in the inner loop only: on an int, and on a per-lane double. */
#pragma aad
double nested_inner_break(double x, double y, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 4; j++) {
            if (j > i)
                break;
            s = s * 0.5 + x * exp(-y * j);
            if (y + 0.25 * j > 1.5)
                break;
        }
        s += y * i;
    }
    return s;
}

/* A uniform trip count (shared by every lane), with a bound 2 n. */
#pragma aad uniform(n)
double uniform_trip(double x, double y, int n)
{
    double s = x;
    for (int i = 0; i < 2 * n; i++)
        s = s * 0.5 + sqrt(s * y + i);
    return s;
}

/* The trip count comes from a per-lane double: (int)(x * 4) is 2..5,
 * stepping at x = 0.75, 1.0 and 1.25. */
#pragma aad
double trip_from_double(double x, double y)
{
    int k = (int)(x * 4.0);
    double s = y;
    for (int i = 0; i < k; i++)
        s = s * y * 0.5 + x / (i + 1);
    return s;
}

/* Counting down in steps of 2, the counter declared before the loop and
 * read after it (0 or -1); an unsigned and a long counter. */
#pragma aad
double counters(double x, int n)
{
    double s = 1.0;
    int i;
    for (i = n; i > 0; i -= 2)
        s = s * x + i;
    for (unsigned u = 0; u < (unsigned)n; u++)
        s += x * u;
    long k = 3;
    while (k > 0) {
        s = s * 0.5 + x;
        k--;
    }
    return s + i * x;
}

/* Outputs read and written inside the loop. */
#pragma aad
void loop_outputs(double x, double y, int n, double *lo, double *hi)
{
    *lo = x;
    *hi = y;
    for (int i = 0; i < n; i++) {
        *lo = *lo * x * 0.5 + 0.25;
        *hi += *lo * y;
        if (i % 2 == 1)
            *hi *= 0.5;
    }
}

/* One explicit Euler-like step, called from loops below. */
#pragma aad
double ode_step(double s, double h, double a)
{
    return s + h * (a * sin(s) - 0.5 * s);
}

/* A call to a #pragma aad function inside a loop: the callee's adjoint runs
 * once per iteration, in reverse, with that iteration's s. */
#pragma aad
double call_in_loop(double x, double y, int n)
{
    double s = x;
    double h = 1.0 / n;
    for (int i = 0; i < n; i++)
        s = ode_step(s, h, y);
    return s;
}
