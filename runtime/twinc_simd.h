/*
 * twinc_simd.h — what the SIMD twins are written in: lane blocks as GCC/Clang
 * vector extensions, their vector math, and the run-time choice of ISA.
 *
 * Generated twin files include this header (through twinc.h's neighbour, by
 * name) and use nothing else of it.  A lane block is W scenarios held in one
 * vector: W = 8 doubles for AVX-512 (twinc_v8d), W = 4 for AVX2 (twinc_v4d).
 * Each has a mask type of 64-bit integers (twinc_v8l, twinc_v4l), where a
 * true lane is all ones (-1) — what a vector comparison yields — and a false
 * one 0.  Every function here carries the target attribute of its ISA, so a
 * twin file compiled without -march still contains both paths; a twin calls
 * one only after twinc_simd_isa() said the CPU has it.
 *
 * Vector math is glibc's libmvec (the _ZGV* functions, linked by -lm on
 * x86-64 glibc, whose libm.so pulls libmvec in as needed).  docs/SIMD.md has
 * the measurements behind that choice (speed and accuracy against SLEEF) and
 * the error bound: each libmvec function is within 4 ulp of the exact result
 * (glibc's documented bound; tests/test_simd.c checks it against the scalar
 * libm on sweeps of every builtin's domain).  ncdf and npdf use the same
 * formulas as the scalar twinc_ncdf / twinc_npdf in twinc.h.
 *
 * Run-time choice: twinc_simd_isa() returns TWINC_ISA_AVX512, _AVX2 or
 * _SCALAR: the best the CPU supports, or the one forced by the environment
 * variable TWINC_ISA=avx512|avx2|scalar (never one the CPU lacks: a forced
 * path the CPU cannot run falls back to the best it can).  The answer is
 * computed once per twin file and cached (a benign race: every thread
 * computes the same value).
 *
 * MIT licence — see LICENSE.
 */
#ifndef TWINC_SIMD_H
#define TWINC_SIMD_H

#include <stdlib.h>
#include <string.h>

enum { TWINC_ISA_SCALAR = 0, TWINC_ISA_AVX2 = 1, TWINC_ISA_AVX512 = 2 };

#if defined(__x86_64__) && defined(__GNUC__) && !defined(TWINC_NO_SIMD)
#define TWINC_SIMD 1
#else
#define TWINC_SIMD 0
#endif

static inline int twinc_simd_detect(void)
{
    int best = TWINC_ISA_SCALAR;
#if TWINC_SIMD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        best = TWINC_ISA_AVX2;
    if (__builtin_cpu_supports("avx512f"))
        best = TWINC_ISA_AVX512;
#endif
    const char *s = getenv("TWINC_ISA");
    int want = best;
    if (s && !strcmp(s, "scalar"))
        want = TWINC_ISA_SCALAR;
    else if (s && !strcmp(s, "avx2"))
        want = TWINC_ISA_AVX2;
    else if (s && !strcmp(s, "avx512"))
        want = TWINC_ISA_AVX512;
    return want < best ? want : best;
}

static inline int twinc_simd_isa(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        v = twinc_simd_detect();
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

#if TWINC_SIMD

#define TWINC_T8 __attribute__((target("avx512f")))
#define TWINC_T4 __attribute__((target("avx2")))

/* One ISA's lane block: W lanes of type VD, masks VL, libmvec prefix ZGV.
 * Expanded twice below; the names say the width (twinc_v8_exp, twinc_v4_exp). */
#define TWINC_SIMD_ISA(W, T, VD, VL, ZGV1, ZGV2)                                                   \
    typedef double VD __attribute__((vector_size(8 * W)));                                         \
    typedef long long VL __attribute__((vector_size(8 * W)));                                      \
    T VD ZGV1##exp(VD);                                                                            \
    T VD ZGV1##log(VD);                                                                            \
    T VD ZGV1##log1p(VD);                                                                          \
    T VD ZGV1##expm1(VD);                                                                          \
    T VD ZGV1##cbrt(VD);                                                                           \
    T VD ZGV1##sin(VD);                                                                            \
    T VD ZGV1##cos(VD);                                                                            \
    T VD ZGV1##tan(VD);                                                                            \
    T VD ZGV1##atan(VD);                                                                           \
    T VD ZGV1##sinh(VD);                                                                           \
    T VD ZGV1##cosh(VD);                                                                           \
    T VD ZGV1##tanh(VD);                                                                           \
    T VD ZGV1##erf(VD);                                                                            \
    T VD ZGV1##erfc(VD);                                                                           \
    T VD ZGV2##pow(VD, VD);                                                                        \
    T VD ZGV2##atan2(VD, VD);                                                                      \
    T VD ZGV2##hypot(VD, VD);                                                                      \
    static inline T VD twinc_v##W##_bc(double x)                                                   \
    {                                                                                              \
        VD r;                                                                                      \
        for (int k = 0; k < W; k++)                                                                \
            r[k] = x;                                                                              \
        return r;                                                                                  \
    }                                                                                              \
    static inline T VL twinc_v##W##_mask(int x)                                                    \
    {                                                                                              \
        VL r;                                                                                      \
        for (int k = 0; k < W; k++)                                                                \
            r[k] = x ? -1 : 0;                                                                     \
        return r;                                                                                  \
    }                                                                                              \
    /* m ? a : b, lane by lane */                                                                  \
    static inline T VD twinc_v##W##_sel(VL m, VD a, VD b)                                          \
    {                                                                                              \
        return (VD)(((VL)a & m) | ((VL)b & ~m));                                                   \
    }                                                                                              \
    static inline T VL twinc_v##W##_seli(VL m, VL a, VL b) { return (a & m) | (b & ~m); }          \
    static inline T VD twinc_v##W##_load(const double *p, ptrdiff_t ls)                            \
    {                                                                                              \
        VD r;                                                                                      \
        if (ls == 1)                                                                               \
            memcpy(&r, p, sizeof r);                                                               \
        else                                                                                       \
            for (int k = 0; k < W; k++)                                                            \
                r[k] = p[k * ls];                                                                  \
        return r;                                                                                  \
    }                                                                                              \
    /* a NULL companion reads zeros */                                                             \
    static inline T VD twinc_v##W##_load0(const double *p, ptrdiff_t ls)                           \
    {                                                                                              \
        return p ? twinc_v##W##_load(p, ls) : twinc_v##W##_bc(0.0);                                \
    }                                                                                              \
    static inline T void twinc_v##W##_store(double *p, ptrdiff_t ls, VD v)                         \
    {                                                                                              \
        if (ls == 1)                                                                               \
            memcpy(p, &v, sizeof v);                                                               \
        else                                                                                       \
            for (int k = 0; k < W; k++)                                                            \
                p[k * ls] = v[k];                                                                  \
    }                                                                                              \
    /* p[k ls] += v[k] in lane order: with ls == 0 the sum over lanes is taken in                  \
       the order the scalar loop takes it */                                                       \
    static inline T void twinc_v##W##_addto(double *p, ptrdiff_t ls, VD v)                         \
    {                                                                                              \
        for (int k = 0; k < W; k++)                                                                \
            p[k * ls] += v[k];                                                                     \
    }                                                                                              \
    static inline T VD twinc_v##W##_exp(VD x) { return ZGV1##exp(x); }                             \
    static inline T VD twinc_v##W##_log(VD x) { return ZGV1##log(x); }                             \
    static inline T VD twinc_v##W##_log1p(VD x) { return ZGV1##log1p(x); }                         \
    static inline T VD twinc_v##W##_expm1(VD x) { return ZGV1##expm1(x); }                         \
    static inline T VD twinc_v##W##_cbrt(VD x) { return ZGV1##cbrt(x); }                           \
    static inline T VD twinc_v##W##_sin(VD x) { return ZGV1##sin(x); }                             \
    static inline T VD twinc_v##W##_cos(VD x) { return ZGV1##cos(x); }                             \
    static inline T VD twinc_v##W##_tan(VD x) { return ZGV1##tan(x); }                             \
    static inline T VD twinc_v##W##_atan(VD x) { return ZGV1##atan(x); }                           \
    static inline T VD twinc_v##W##_sinh(VD x) { return ZGV1##sinh(x); }                           \
    static inline T VD twinc_v##W##_cosh(VD x) { return ZGV1##cosh(x); }                           \
    static inline T VD twinc_v##W##_tanh(VD x) { return ZGV1##tanh(x); }                           \
    static inline T VD twinc_v##W##_erf(VD x) { return ZGV1##erf(x); }                             \
    static inline T VD twinc_v##W##_erfc(VD x) { return ZGV1##erfc(x); }                           \
    static inline T VD twinc_v##W##_pow(VD x, VD y) { return ZGV2##pow(x, y); }                    \
    static inline T VD twinc_v##W##_atan2(VD x, VD y) { return ZGV2##atan2(x, y); }                \
    static inline T VD twinc_v##W##_hypot(VD x, VD y) { return ZGV2##hypot(x, y); }                \
    /* sqrt is correctly rounded, as the scalar one */                                             \
    static inline T VD twinc_v##W##_sqrt(VD x)                                                     \
    {                                                                                              \
        VD r;                                                                                      \
        for (int k = 0; k < W; k++)                                                                \
            r[k] = __builtin_sqrt(x[k]);                                                           \
        return r;                                                                                  \
    }                                                                                              \
    static inline T VD twinc_v##W##_fabs(VD x)                                                     \
    {                                                                                              \
        return (VD)((VL)x & twinc_v##W##_mask(1) & ~(VL)twinc_v##W##_bc(-0.0));                   \
    }                                                                                              \
    /* glibc: fmax(x, y) = (x >= y || isnan(y)) ? x : y, fmin likewise */                         \
    static inline T VD twinc_v##W##_fmax(VD x, VD y) { return twinc_v##W##_sel((x >= y) | (y != y), x, y); } \
    static inline T VD twinc_v##W##_fmin(VD x, VD y) { return twinc_v##W##_sel((x <= y) | (y != y), x, y); } \
    static inline T VD twinc_v##W##_ncdf(VD x) { return 0.5 * ZGV1##erfc(-x * 0.70710678118654752440); } \
    static inline T VD twinc_v##W##_npdf(VD x) { return 0.39894228040143267794 * ZGV1##exp(-0.5 * x * x); }

TWINC_SIMD_ISA(8, TWINC_T8, twinc_v8d, twinc_v8l, _ZGVeN8v_, _ZGVeN8vv_)
TWINC_SIMD_ISA(4, TWINC_T4, twinc_v4d, twinc_v4l, _ZGVdN4v_, _ZGVdN4vv_)

#endif /* TWINC_SIMD */
#endif /* TWINC_SIMD_H */
