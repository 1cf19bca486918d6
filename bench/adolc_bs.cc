// adolc_bs.cc — ADOL-C gradient of the same Black-Scholes call as samples/bs.c
// (ncdf(x) = 0.5 erfc(-x/sqrt2) = 0.5 (1 + erf(x/sqrt2))), taped once and
// replayed per scenario with gradient(): ADOL-C's usual record-once use.
#include <adolc/adolc.h>
#include <cmath>

template <class T> static T ncdf_t(const T &x) { return 0.5 * (1.0 + erf(x * 0.70710678118654752440)); }

template <class T> static T bs_call_t(const T &S, const T &K, const T &r, const T &q, const T &sigma, const T &Tm)
{
    T sd = sigma * sqrt(Tm);
    T d1 = (log(S / K) + (r - q + 0.5 * sigma * sigma) * Tm) / sd;
    T d2 = d1 - sd;
    T fwd = S * exp(-q * Tm);
    T strike = K * exp(-r * Tm);
    return fwd * ncdf_t(d1) - strike * ncdf_t(d2);
}

extern "C" void adolc_bs_tape(const double *x)
{
    trace_on(1);
    adouble a[6];
    for (int i = 0; i < 6; i++)
        a[i] <<= x[i];
    adouble y = bs_call_t(a[0], a[1], a[2], a[3], a[4], a[5]);
    double v;
    y >>= v;
    trace_off();
}

/* gradient of lane i: x[6] in, g[6] out */
extern "C" void adolc_bs_grad(const double *x, double *g) { gradient(1, 6, x, g); }
