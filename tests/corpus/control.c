/*
 * control.c — control flow inside loops that is easy to get subtly wrong.
 *
 * Covers: `continue` in a do-while and in a while (both jump to the
 * condition, not to the top of the body); a local array declared inside a
 * loop body (fresh every iteration); an in/out array updated with reads of
 * the element being written (v[j] = v[j] * v[n - 1 - j], the same element
 * when j == n - 1 - j; v[k] *= v[k]; v[0] += v[0]) at an index computed
 * from a double; an array-length parameter reassigned in the body (the
 * array keeps the length it had on entry); a for-loop counter also changed
 * in the body, and a loop that runs zero times; a double loop counter; a
 * counter and a local shadowed in inner scopes; a postfix decrement in a
 * while condition; three nested loops with break in the innermost,
 * continue in the middle one and return from the middle one; compound
 * assignments *= /= -= += on in/out array elements and ?: choosing between
 * elements; two loops in sequence overwriting the same variable.
 *
 * Domain contract with the harness (tests/test_corpus.c): doubles in
 * [0.5, 1.5] never within 1e-4 of a quarter point, ints in 1..4; the only
 * per-lane switches are at quarter points ((int)(x * 4.0), x > 1.0).
 */
#include <math.h>

#include "twinc.h"

/* continue inside do-while must jump to the condition */
#pragma aad
double do_continue(double x, int n)
{
    double s = x;
    int i = 0;
    do {
        i++;
        if (i == 2)
            continue;
        s = s * x + 1.0;
    } while (i < n + 1);
    return s;
}

/* continue inside while goes to the condition */
#pragma aad
double while_continue(double x, int n)
{
    double s = x;
    int i = 0;
    while (i < n + 1) {
        i++;
        if (i % 2 == 0)
            continue;
        s = sin(s) * x + s;
    }
    return s;
}

/* local array declared inside the loop body */
#pragma aad
double local_array_in_loop(double x, double y, int n)
{
    double s = x;
    for (int i = 0; i < n; i++) {
        double w[3];
        w[0] = s * y;
        w[1] = w[0] * w[0];
        w[2] = sin(w[1]) + x;
        s = w[2] * 0.5 + w[0] * 0.25;
    }
    return s;
}

/* index from an active double via a cast; self-aliasing in/out element */
#pragma aad
void alias_inout(double x, int n, double v[n])
{
    for (int j = 0; j < n; j++)
        v[j] = v[j] * v[n - 1 - j] + x;
    int k = (int)(x * 4.0) % n;
    v[k] *= v[k];
    v[0] += v[0];
}

/* a length parameter reassigned in the body */
#pragma aad
double length_reassigned(int n, const double a[n])
{
    n = n - 1;
    double s = a[n];
    for (int i = 0; i < n; i++)
        s = s * a[i] + 0.5;
    return s;
}

/* loop counter changed in the body; zero-trip loop */
#pragma aad
double counter_in_body(double x, int n)
{
    double s = x;
    for (int i = 0; i < 8; i++) {
        s = s * 0.5 + x * i;
        if (i % 3 == 0)
            i += n % 2;
    }
    for (int i = n; i < 2; i++)
        s += x;
    return s;
}

/* a double loop counter, active: t accumulates dt = x / 4 */
#pragma aad
double double_counter(double x, double y)
{
    double s = y;
    for (double t = 0.0; t < 1.0; t += 0.25)
        s = s * x + t;
    return s;
}

/* shadowing: an inner s and an inner i */
#pragma aad
double shadowing(double x, int n)
{
    double s = x;
    int i = 7;
    for (int i = 0; i < n; i++) {
        double s2 = s;
        {
            double s = s2 * x;
            s2 = s + 1.0;
        }
        s = s2 * 0.5;
    }
    return s + i;
}

/* postfix decrement in a condition */
#pragma aad
double postfix_condition(double x, int n)
{
    double s = x;
    int k = n;
    while (k-- > 0)
        s = s * x + k;
    return s;
}

/* three nested loops, break inner, continue middle, return from the middle */
#pragma aad
double three_nested(double x, double y, int n)
{
    double s = x;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 3; j++) {
            if (j == i)
                continue;
            for (int k = 0; k < 3; k++) {
                if (k > j)
                    break;
                s = s * 0.9 + y * sin(s + k);
            }
            if (i == 3 && j == 2 && x > 1.0)
                return s * 2.0;
        }
    }
    return s;
}

/* compound assignment on array elements, ?: selecting elements */
#pragma aad
double compound_elems(double x, int n, double v[n], const double a[n])
{
    for (int i = 0; i < n; i++) {
        v[i] *= x;
        v[i] /= a[i];
        v[i] -= (x > 1.0 ? a[0] : a[n - 1]) * 0.5;
        v[i] += exp(-a[i]);
    }
    return v[0] * v[n - 1];
}

/* two sequential loops overwriting the same scalar */
#pragma aad
double sequential_loops(double x, int n)
{
    double t = x;
    for (int i = 0; i < n; i++)
        t = t * t * 0.25 + 0.5;
    double u = t;
    for (int i = 0; i < n; i++)
        t = sin(t) * u;
    return t;
}
