/*
 * arrays.c — array parameters and local arrays.
 *
 * Covers: `const double a[n]` inputs (active by default, per lane or shared
 * by every lane: the harness passes some with lane stride 0, whose adjoints
 * are then summed over lanes), lengths `n`, `n + 1` and `2 * n` from int
 * parameters that differ per lane; `passive(...)` arrays (a grid, weights)
 * including a passive loop that feeds an active recursion; in/out arrays
 * `double v[n]` updated in place (with and without a return value, two of
 * them coupled, one updated from its already-updated neighbour); local
 * arrays of constant size and of size `n + 1` / `n * n` over a uniform n,
 * overwritten in place by nested loops and read again (a lattice); index
 * arithmetic (n - 1 - i, 2 * i + 1, i * n + j, (3 * i + 1) % 4); a bounded
 * bracket search on a passive grid; early exit from a loop over an array by
 * return and by a while condition on an element.
 *
 * Domain contract with the harness (tests/test_corpus.c): doubles, array
 * elements included, in [0.5, 1.5] never within 1e-4 of a quarter point;
 * ints in 1..4.  Conditions compare one element with a quarter point, so
 * no FD step crosses a switch.  The grid of interp_passive_grid is random
 * and unsorted; the search stays in bounds and the result is linear in the
 * active values.
 */
#include <math.h>

#include "twinc.h"

/* Two active arrays: sum a_i b_i + a_i^2 b_i / 2. */
#pragma aad
double dot(int n, const double a[n], const double b[n])
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i] * (1.0 + 0.5 * a[i]);
    return s;
}

/* Horner from the top coefficient down: c has n + 1 elements, read at n - i. */
#pragma aad
double horner(double x, int n, const double c[n + 1])
{
    double p = c[n];
    for (int i = 1; i <= n; i++)
        p = p * x + c[n - i];
    return p;
}

/* Pairs of a length-2n array: a[2i] and a[2i+1]. */
#pragma aad
double pairs_2n(int n, const double a[2 * n])
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += log(a[2 * i] + a[2 * i + 1] * a[2 * i + 1]) * a[2 * i];
    return s;
}

/* a against b reversed, through exp. */
#pragma aad
double reverse_product(int n, const double a[n], const double b[n])
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += exp(-a[i] * b[n - 1 - i]) * a[i];
    return s;
}

/* A passive loop (the mean of passive weights) feeds an active recursion
 * that also reads the weights: w carries no derivative, x does. */
#pragma aad passive(w)
double passive_feeds_active(double x, int n, const double w[n])
{
    double m = 0.0;
    for (int i = 0; i < n; i++)
        m += w[i];
    m /= n;
    double y = x;
    for (int i = 0; i < n; i++)
        y = y * m + w[i] * sin(y);
    return y * m;
}

/* An in/out array updated in place from its already-updated left
 * neighbour: the final v[i] depends on every initial v[j], j <= i. */
#pragma aad
void inout_prefix(double x, int n, double v[n])
{
    for (int i = 1; i < n; i++)
        v[i] = v[i] * x + sin(v[i - 1]);
    v[0] *= x;
}

/* An in/out array updated from the top down, and a return value. */
#pragma aad
double inout_with_return(double x, int n, double v[n])
{
    double s = 0.0;
    for (int i = n - 1; i >= 0; i--) {
        v[i] = v[i] * v[i] * 0.5 + x;
        s += v[i] * (i + 1);
    }
    return s;
}

/* Two in/out arrays coupled element by element. */
#pragma aad
void inout_two(int n, double u[n], double v[n])
{
    for (int i = 0; i < n; i++) {
        double t = u[i];
        u[i] = u[i] * v[i];
        v[i] = t + v[i] * 0.5;
    }
}

/* A local array of constant size, permuted reads and an in-place product
 * that overwrites values the reverse sweep needs. */
#pragma aad
double local_array_fixed(double x, double y)
{
    double w[4];
    for (int i = 0; i < 4; i++)
        w[i] = x + i * y;
    for (int i = 0; i < 4; i++)
        w[i] = w[i] * w[(3 * i + 1) % 4] * 0.5;
    double s = 0.0;
    for (int i = 0; i < 4; i++)
        s += w[i] * (4 - i);
    return s;
}

/* A local array sized from a uniform parameter, reverse cumulative sums in place. */
#pragma aad uniform(n)
double local_array_uniform(double x, double y, int n)
{
    double w[n + 1];
    for (int i = 0; i <= n; i++)
        w[i] = sin(x * (i + 1)) + y;
    for (int i = n - 1; i >= 0; i--)
        w[i] += w[i + 1] * y * 0.5;
    return w[0] * w[n];
}

/* A smooth lattice: backward induction over n levels in one array
 * overwritten in place by nested loops, a nonlinear term so that the
 * reverse sweep needs the overwritten values (like a CRR tree, without the
 * kink of the exercise max). */
#pragma aad uniform(n)
double lattice_in_place(double x, double y, int n)
{
    double v[n + 1];
    double p = 0.5 * y;
    for (int j = 0; j <= n; j++)
        v[j] = x * exp(0.2 * (2 * j - n));
    for (int i = n - 1; i >= 0; i--)
        for (int j = 0; j <= i; j++)
            v[j] = 0.9 * (p * v[j + 1] + (1.0 - p) * v[j]) + 0.1 * sin(v[j] * v[j + 1]);
    return v[0];
}

/* A flattened n x n local matrix (index i * n + j) applied twice to a local vector. */
#pragma aad uniform(n)
double local_matrix(double x, double y, int n)
{
    double m[n * n];
    double u[n];
    double t[n];
    for (int i = 0; i < n; i++) {
        u[i] = 1.0 + 0.1 * i;
        for (int j = 0; j < n; j++)
            m[i * n + j] = x / (1.0 + i + j) + (i == j ? y : 0.0);
    }
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < n; i++) {
            t[i] = 0.0;
            for (int j = 0; j < n; j++)
                t[i] += m[i * n + j] * u[j];
        }
        for (int i = 0; i < n; i++)
            u[i] = t[i];
    }
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += u[i] * u[i];
    return sqrt(s);
}

/* Linear interpolation of (t, y) at the fixed point 1.0 on a passive grid,
 * with a bounded bracket search (the grid may be unsorted) and flat
 * extrapolation; linear in the active y, scaled by x. */
#pragma aad passive(t)
double interp_passive_grid(double x, int m, const double t[m], const double y[m])
{
    double q = 1.0;
    double z;
    if (q <= t[0]) {
        z = y[0];
    } else if (q >= t[m - 1]) {
        z = y[m - 1];
    } else {
        int j = 0;
        while (j < m - 2 && t[j + 1] < q)
            j++;
        double w = (q - t[j]) / (t[j + 1] - t[j]);
        z = (1.0 - w) * y[j] + w * y[j + 1];
    }
    return x * z;
}

/* Discounting on a curve of n node rates at times 0.5, 1, 1.5, ...: the
 * harness passes the curve shared by all lanes in some trials. */
#pragma aad
double curve_discount(double s, int n, const double zr[n])
{
    double pv = 0.0;
    for (int i = 0; i < n; i++) {
        double ti = 0.5 * (i + 1);
        pv += s * exp(-zr[i] * ti * 0.1);
    }
    return pv;
}

/* return from inside a loop over an array, on an element's value. */
#pragma aad
double early_exit_array(double x, int n, const double a[n])
{
    double s = x;
    for (int i = 0; i < n; i++) {
        s = s * a[i] + x;
        if (a[i] > 1.25)
            return s * 0.5;
    }
    return s;
}

/* A while search on element values, then do-while over the rest. */
#pragma aad
double while_search(double x, int n, const double a[n])
{
    int k = 0;
    while (k < n && a[k] < 1.0)
        k++;
    double s = x;
    if (k < n) {
        do {
            s += a[k] * x * s * 0.25;
            k++;
        } while (k < n);
    }
    return s;
}
