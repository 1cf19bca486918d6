/*
 * builtins.h — the math builtins a #pragma aad function may call, with the
 * derivative rules every emitter reads.  Adding a builtin is one line here.
 *
 * Columns: id, C names recognised (primary, alias), arity, kind, the C
 * expression that computes the value in generated code, and one partial
 * derivative per argument.  In the expressions %0 and %1 stand for the
 * arguments and %r for the result (already computed when partials are used).
 *
 *   BK_SMOOTH  r = f(a, b);  dr = (df/da) da + (df/db) db;  ā += (df/da) r̄ ...
 *   BK_SELECT  r is one of its arguments; partial column 0 is the condition
 *              under which r == %0 (else r == %1).  The adjoint is routed by
 *              a branch, never multiplied by 0, so an infinite adjoint on the
 *              losing side cannot turn into NaN: sqrt(fmax(v, 0)) at v <= 0
 *              has derivative 0.  Ties go to the second argument, so
 *              fmax(v, 0) at v == 0 also has derivative 0 in v.
 *
 *   BK_SINGULAR  as BK_SMOOTH, but a partial may be infinite at a point (sqrt
 *              and cbrt at 0, pow at a zero base); a zero tangent or adjoint
 *              then contributes 0, never inf * 0 = NaN, so sqrt(fmax(v, 0))
 *              at v < 0 has tangent 0 as well.
 *
 * Where a partial is undefined at a point (hypot at the origin) the rule
 * picks the limit or 0 as commented.
 *
 * ORDER BUILTIN: the enum in twinc_gen.h and the table in builtins.c expand
 * this list; never reorder one without the other (they expand the same list,
 * so they cannot disagree).
 */
#define TWINC_BUILTINS(X)                                                              \
    /* d exp(a) = exp(a) da */                                                        \
    X(EXP, "exp", NULL, 1, BK_SMOOTH, "exp(%0)", "%r", NULL)                          \
    /* d log(a) = da / a */                                                           \
    X(LOG, "log", NULL, 1, BK_SMOOTH, "log(%0)", "1.0 / %0", NULL)                    \
    X(LOG1P, "log1p", NULL, 1, BK_SMOOTH, "log1p(%0)", "1.0 / (1.0 + %0)", NULL)      \
    X(EXPM1, "expm1", NULL, 1, BK_SMOOTH, "expm1(%0)", "(%r + 1.0)", NULL)             \
    /* d sqrt(a) = da / (2 sqrt(a)); infinite at 0 (the true one-sided limit) */      \
    X(SQRT, "sqrt", NULL, 1, BK_SINGULAR, "sqrt(%0)", "0.5 / %r", NULL)                 \
    /* d cbrt(a) = da / (3 cbrt(a)^2) */                                              \
    X(CBRT, "cbrt", NULL, 1, BK_SINGULAR, "cbrt(%0)", "1.0 / (3.0 * %r * %r)", NULL)    \
    /* d a^b = b a^(b-1) da + a^b log(a) db; the db term is 0 for a <= 0 */          \
    X(POW, "pow", NULL, 2, BK_SINGULAR, "pow(%0, %1)", "%1 * pow(%0, %1 - 1.0)",        \
      "(%0 > 0.0 ? %r * log(%0) : 0.0)")                                              \
    /* d |a| = sign(a) da, with sign(0) = +1 */                                       \
    X(FABS, "fabs", NULL, 1, BK_SMOOTH, "fabs(%0)", "(%0 >= 0.0 ? 1.0 : -1.0)", NULL) \
    X(FMIN, "fmin", NULL, 2, BK_SELECT, "fmin(%0, %1)", "(%0 < %1)", NULL)            \
    X(FMAX, "fmax", NULL, 2, BK_SELECT, "fmax(%0, %1)", "(%0 > %1)", NULL)            \
    X(SIN, "sin", NULL, 1, BK_SMOOTH, "sin(%0)", "cos(%0)", NULL)                     \
    X(COS, "cos", NULL, 1, BK_SMOOTH, "cos(%0)", "(-sin(%0))", NULL)                  \
    /* d tan(a) = (1 + tan(a)^2) da */                                                \
    X(TAN, "tan", NULL, 1, BK_SMOOTH, "tan(%0)", "(1.0 + %r * %r)", NULL)             \
    X(ATAN, "atan", NULL, 1, BK_SMOOTH, "atan(%0)", "1.0 / (1.0 + %0 * %0)", NULL)    \
    /* d atan2(a, b) = (b da - a db) / (a^2 + b^2) */                                 \
    X(ATAN2, "atan2", NULL, 2, BK_SMOOTH, "atan2(%0, %1)", "%1 / (%0 * %0 + %1 * %1)", \
      "(-%0) / (%0 * %0 + %1 * %1)")                                                  \
    X(SINH, "sinh", NULL, 1, BK_SMOOTH, "sinh(%0)", "cosh(%0)", NULL)                 \
    X(COSH, "cosh", NULL, 1, BK_SMOOTH, "cosh(%0)", "sinh(%0)", NULL)                 \
    X(TANH, "tanh", NULL, 1, BK_SMOOTH, "tanh(%0)", "(1.0 - %r * %r)", NULL)          \
    /* d erf(a) = 2/sqrt(pi) exp(-a^2) da */                                          \
    X(ERF, "erf", NULL, 1, BK_SMOOTH, "erf(%0)",                                      \
      "(1.12837916709551257390 * exp(-%0 * %0))", NULL)                               \
    X(ERFC, "erfc", NULL, 1, BK_SMOOTH, "erfc(%0)",                                   \
      "(-1.12837916709551257390 * exp(-%0 * %0))", NULL)                              \
    /* d hypot(a, b) = (a da + b db) / hypot(a, b); 0 at the origin */                \
    X(HYPOT, "hypot", NULL, 2, BK_SMOOTH, "hypot(%0, %1)",                            \
      "(%r > 0.0 ? %0 / %r : 0.0)", "(%r > 0.0 ? %1 / %r : 0.0)")                     \
    /* d N(a) = phi(a) da, the standard normal CDF and density (twinc.h) */          \
    X(NCDF, "ncdf", "twinc_ncdf", 1, BK_SMOOTH, "twinc_ncdf(%0)", "twinc_npdf(%0)", NULL) \
    /* d phi(a) = -a phi(a) da */                                                     \
    X(NPDF, "npdf", "twinc_npdf", 1, BK_SMOOTH, "twinc_npdf(%0)", "(-%0 * %r)", NULL)
