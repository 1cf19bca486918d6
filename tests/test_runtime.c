/*
 * test_runtime.c — the runtime's library loader (runtime/lib.c) and gradient
 * checker (runtime/gradcheck.c), tested against hand-written twin libraries
 * (the C files in tests/fixtures) so that neither depends on the generator.
 *
 * The fixture libraries, built from tests/fixtures (see each file's Build line):
 *
 *   libhandtwin.so   handtwin.c                        3 kernels, one wrong
 *   libnoreg.so      noreg.c                           no twins at all
 *   libbadabi.so     handtwin.c -DHANDTWIN_ABI=99      another ABI version
 *   libduptwin.so    handtwin.c duptwin.c              one kernel name twice
 *   libtworegs.so    handtwin.c duptwin.c
 *                      -DDUPTWIN_KERNEL='"dup_triple"'  two registries, 4 kernels
 *
 * The array kernels of tests/fixtures/handarray.c are compiled into this file
 * (HANDARRAY_EMBED), so they need no library of their own here.
 *
 * The first two are named by the environment variables TWINC_HANDTWIN and
 * TWINC_NOREG; all are looked for in TWINC_FIXTURE_DIR, else in the directory
 * of TWINC_HANDTWIN, else in the compile-time TWINC_FIXTURE_DIR ("build/tests").
 *
 * Failure paths are tested on purpose: every flag the checker can raise is
 * provoked by a kernel whose twins are the fixture's, wrapped to corrupt one
 * thing (a tangent, a value, a lane sum, a status, an unwritten output).
 *
 * MIT licence — see LICENSE.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twinc.h"
#include "twinc_check.h"

/* Kernels with array parameters, hand-written (no generator), compiled in. */
#define HANDARRAY_EMBED
#include "fixtures/handarray.c"

#ifndef TWINC_FIXTURE_DIR
#define TWINC_FIXTURE_DIR "build/tests"
#endif

Suite *make_runtime_suite(void);

/* The path of fixture library `name` (e.g. "libhandtwin.so"). */
static const char *fixture(const char *name)
{
    static char path[4096];
    const char *env = strcmp(name, "libhandtwin.so") == 0 ? getenv("TWINC_HANDTWIN")
                      : strcmp(name, "libnoreg.so") == 0  ? getenv("TWINC_NOREG")
                                                          : NULL;
    if (env && *env)
        return env;
    const char *dir = getenv("TWINC_FIXTURE_DIR");
    const char *hand = getenv("TWINC_HANDTWIN");
    const char *slash = hand ? strrchr(hand, '/') : NULL;
    if (dir && *dir)
        snprintf(path, sizeof path, "%s/%s", dir, name);
    else if (slash)
        snprintf(path, sizeof path, "%.*s/%s", (int)(slash - hand), hand, name);
    else
        snprintf(path, sizeof path, "%s/%s", TWINC_FIXTURE_DIR, name);
    return path;
}

/* fixture(name), asserting that it has been built. */
static const char *need(const char *name)
{
    const char *path = fixture(name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "fixture %s not built (see tests/test_runtime.c)", path);
    fclose(f);
    return path;
}

static twinc_lib *lib;
static char err[1024];

static void open_hand(void)
{
    lib = twinc_lib_open(need("libhandtwin.so"), err, sizeof err);
    ck_assert_msg(lib != NULL, "cannot open the fixture: %s", err);
}

static void close_hand(void)
{
    twinc_lib_close(lib);
    lib = NULL;
}

static const twinc_kernel *kernel(const char *name)
{
    const twinc_kernel *k = twinc_lib_find(lib, name);
    ck_assert_msg(k != NULL, "fixture kernel %s missing", name);
    return k;
}

/* ---- lib.c ---- */

START_TEST(test_lib_open_lists_kernels_in_registry_order)
{
    ck_assert_int_eq(twinc_lib_count(lib), 3);
    ck_assert_str_eq(twinc_lib_kernel(lib, 0)->name, "hand_ok");
    ck_assert_str_eq(twinc_lib_kernel(lib, 1)->name, "hand_wrong_adjoint");
    ck_assert_str_eq(twinc_lib_kernel(lib, 2)->name, "hand_uniform");
    ck_assert_ptr_null(twinc_lib_kernel(lib, 3));
    ck_assert_ptr_null(twinc_lib_kernel(lib, -1));
}
END_TEST

START_TEST(test_lib_find_by_name)
{
    const twinc_kernel *k = twinc_lib_find(lib, "hand_uniform");
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(k->nparams, 6);
    ck_assert_str_eq(k->params[2].name, "T");
    ck_assert_uint_eq(k->params[2].flags, TWINC_PARAM_ACTIVE | TWINC_PARAM_UNIFORM);
    ck_assert_ptr_eq(k, twinc_lib_kernel(lib, 2));
    ck_assert_ptr_null(twinc_lib_find(lib, "hand"));
    ck_assert_ptr_null(twinc_lib_find(lib, NULL));
}
END_TEST

START_TEST(test_lib_null_is_harmless)
{
    ck_assert_int_eq(twinc_lib_count(NULL), 0);
    ck_assert_ptr_null(twinc_lib_kernel(NULL, 0));
    ck_assert_ptr_null(twinc_lib_find(NULL, "hand_ok"));
    twinc_lib_close(NULL);
    ck_assert_ptr_null(twinc_lib_open(NULL, err, sizeof err));
    ck_assert_ptr_null(twinc_lib_open("", NULL, 0));
}
END_TEST

START_TEST(test_lib_open_missing_file_gives_dlerror)
{
    const char *path = "/nonexistent/dir/libnothere.so";
    err[0] = '\0';
    ck_assert_ptr_null(twinc_lib_open(path, err, sizeof err));
    ck_assert_msg(strstr(err, "libnothere.so") != NULL, "message: %s", err);
    ck_assert_msg(strstr(err, "No such file") != NULL, "message: %s", err);
}
END_TEST

START_TEST(test_lib_open_without_registry_says_so)
{
    const char *path = need("libnoreg.so");
    ck_assert_ptr_null(twinc_lib_open(path, err, sizeof err));
    ck_assert_msg(strstr(err, "no twinc registry") != NULL, "message: %s", err);
    ck_assert_msg(strstr(err, "libnoreg.so") != NULL, "message: %s", err);
}
END_TEST

START_TEST(test_lib_open_rejects_other_abi_version)
{
    ck_assert_ptr_null(twinc_lib_open(need("libbadabi.so"), err, sizeof err));
    ck_assert_msg(strstr(err, "ABI version 99") != NULL, "message: %s", err);
    ck_assert_msg(strstr(err, "handtwin.c") != NULL, "message: %s", err);
}
END_TEST

START_TEST(test_lib_open_rejects_duplicate_kernel_names)
{
    ck_assert_ptr_null(twinc_lib_open(need("libduptwin.so"), err, sizeof err));
    ck_assert_msg(strstr(err, "'hand_ok'") != NULL, "message: %s", err);
    ck_assert_msg(strstr(err, "duptwin.c") != NULL, "message: %s", err);
}
END_TEST

START_TEST(test_lib_open_collects_every_registry)
{
    twinc_lib *two = twinc_lib_open(need("libtworegs.so"), err, sizeof err);
    ck_assert_msg(two != NULL, "%s", err);
    ck_assert_int_eq(twinc_lib_count(two), 4);
    ck_assert_ptr_nonnull(twinc_lib_find(two, "dup_triple"));
    ck_assert_ptr_nonnull(twinc_lib_find(two, "hand_uniform"));
    twinc_lib_close(two);
}
END_TEST

START_TEST(test_lib_open_twice_gives_independent_handles)
{
    twinc_lib *again = twinc_lib_open(fixture("libhandtwin.so"), err, sizeof err);
    ck_assert_ptr_nonnull(again);
    ck_assert_ptr_eq(twinc_lib_find(again, "hand_ok"), twinc_lib_find(lib, "hand_ok"));
    twinc_lib_close(again);
    /* the first handle still works after the second is closed */
    ck_assert_str_eq(twinc_lib_kernel(lib, 0)->name, "hand_ok");
}
END_TEST

START_TEST(test_find_kernel_skips_other_abi_and_null)
{
    const twinc_kernel *ok = kernel("hand_ok");
    twinc_registry good = {TWINC_ABI_VERSION, "a.c", 1, ok};
    twinc_registry stale = {TWINC_ABI_VERSION + 1, "b.c", 1, kernel("hand_uniform")};
    const twinc_registry *regs[] = {NULL, &stale, &good};
    ck_assert_ptr_eq(twinc_find_kernel(regs, 3, "hand_ok"), ok);
    ck_assert_ptr_null(twinc_find_kernel(regs, 3, "hand_uniform"));
    ck_assert_ptr_null(twinc_find_kernel(regs, 2, "hand_ok"));
    ck_assert_ptr_null(twinc_find_kernel(NULL, 3, "hand_ok"));
    ck_assert_ptr_null(twinc_find_kernel(regs, 3, NULL));
}
END_TEST

START_TEST(test_strerror_names_every_status)
{
    const int all[] = {TWINC_OK,     TWINC_EINVAL, TWINC_ENOMEM, TWINC_EUNIFORM,
                       TWINC_ENOENT, TWINC_EABI,   TWINC_ENOREF};
    const char *unknown = twinc_strerror(12345);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *m = twinc_strerror(all[i]);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_ne(m, unknown);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(m, twinc_strerror(all[j]));
    }
    ck_assert_ptr_nonnull(strstr(twinc_strerror(TWINC_EUNIFORM), "uniform"));
}
END_TEST

/* ---- gradcheck.c: correct kernels pass ---- */

START_TEST(test_gradcheck_passes_correct_kernel_at_several_points)
{
    twinc_check *c = twinc_check_create(kernel("hand_ok"), 6, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->nin, 2);  /* x y; k is an integer */
    ck_assert_int_eq(c->nout, 2); /* out return */
    c->points[0].x[0] = 0.7;
    c->points[0].x[1] = -0.4;
    c->points[0].ix[2] = 3;
    twinc_check_randomize(c, 0, 7, 0.2);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert_msg(c->pass, "max rho %g, dot %g", c->max_rho, c->max_dot_error);
    ck_assert_int_eq(c->npassed, 6);
    ck_assert_double_lt(c->max_rho, 1e-8);
    /* the numbers are the right lanes': compare with the analytic gradient */
    for (int p = 0; p < c->npoints; p++) {
        const twinc_check_point *pt = &c->points[p];
        double x = pt->x[0], y = pt->x[1], k = (double)pt->ix[2];
        ck_assert_int_eq(pt->flags, 0);
        ck_assert_double_eq_tol(pt->value[4], x * y + sin(x) * k, 1e-14);
        ck_assert_double_eq_tol(pt->value[3], x * x * exp(-y), 1e-14);
        ck_assert_double_eq_tol(pt->adjoint[twinc_check_idx(c, 4, 0)], y + cos(x) * k, 1e-14);
        ck_assert_double_eq_tol(pt->adjoint[twinc_check_idx(c, 4, 1)], x, 1e-14);
        ck_assert_double_eq_tol(pt->tangent[twinc_check_idx(c, 3, 1)], -x * x * exp(-y), 1e-14);
        ck_assert_double_eq_tol(pt->fd[twinc_check_idx(c, 3, 0)], 2 * x * exp(-y), 1e-8);
        ck_assert_int_eq(pt->ix[2], 3); /* integers are not perturbed */
    }
    ck_assert_double_ne(c->points[1].x[0], c->points[2].x[0]);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_dot_product_error_tiny_on_correct_kernels)
{
    const char *names[] = {"hand_ok", "hand_uniform"};
    for (int n = 0; n < 2; n++) {
        twinc_check *c = twinc_check_create(kernel(names[n]), 5, err, sizeof err);
        ck_assert_ptr_nonnull(c);
        twinc_check_randomize(c, 0, 3, 0.2);
        ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
        for (int p = 0; p < c->npoints; p++) {
            ck_assert_double_lt(c->points[p].dot_error, 1e-14);
            ck_assert_double_ne(c->points[p].dot_lhs, 0.0); /* a real test, not 0 == 0 */
        }
        twinc_check_destroy(c);
    }
}
END_TEST

START_TEST(test_gradcheck_plain_central_differences_also_pass)
{
    twinc_check *c = twinc_check_create(kernel("hand_ok"), 3, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    c->opt.halfstep = 0;
    twinc_check_randomize(c, 0, 5, 0.2);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(c->pass);
    ck_assert_double_lt(c->max_rho, 1e-7);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_uniform_inputs_share_lanes_and_sum)
{
    const twinc_kernel *k = kernel("hand_uniform"); /* x r T m c return, uniform(T, m) */
    twinc_check *c = twinc_check_create(k, 5, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->nin, 3); /* x r T; c is passive, m an integer */
    c->points[0].x[2] = 0.5;
    c->points[0].ix[3] = 2;
    twinc_check_randomize(c, 0, 11, 0.2);
    /* points 3 and 4 get other uniform values: they need batches of their own */
    c->points[3].x[2] = 2.0;
    c->points[4].ix[3] = 3;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert_msg(c->pass, "consistency %g rho %g", c->max_consistency, c->max_rho);
    for (int p = 0; p < c->npoints; p++) {
        const twinc_check_point *pt = &c->points[p];
        double x = pt->x[0], r = pt->x[1], T = pt->x[2], m = (double)pt->ix[3];
        ck_assert_double_eq(pt->x[2], p == 3 ? 2.0 : 0.5);
        ck_assert_double_eq_tol(pt->value[5], pt->x[4] + m * x * exp(-r * T), 1e-14);
        ck_assert_double_eq_tol(pt->adjoint[twinc_check_idx(c, 5, 2)], -x * r * m * exp(-r * T),
                                1e-14);
        ck_assert_double_eq_tol(pt->tangent[twinc_check_idx(c, 5, 2)], -x * r * m * exp(-r * T),
                                1e-14);
        /* passive c is not differentiated */
        ck_assert_double_eq(pt->adjoint[twinc_check_idx(c, 5, 4)], 0.0);
    }
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_randomize_keeps_integers_and_uniforms)
{
    twinc_check *c = twinc_check_create(kernel("hand_uniform"), 50, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    c->points[0].x[0] = 100.0;
    c->points[0].x[4] = 0.0; /* moves by at most 20% of 1e-3 */
    twinc_check_randomize(c, 0, 1, 0.2);
    int moved = 0;
    for (int p = 1; p < c->npoints; p++) {
        const twinc_check_point *pt = &c->points[p];
        ck_assert_double_ge(pt->x[0], 80.0);
        ck_assert_double_le(pt->x[0], 120.0);
        ck_assert_double_le(fabs(pt->x[4]), 2e-4);
        ck_assert_double_eq(pt->x[2], 1.0); /* uniform T */
        ck_assert_int_eq(pt->ix[3], 1);     /* uniform integer m */
        moved += pt->x[0] != 100.0 && pt->x[1] != 1.0;
    }
    ck_assert_int_eq(moved, 49);
    /* deterministic */
    double keep = c->points[7].x[1];
    twinc_check_randomize(c, 0, 1, 0.2);
    ck_assert_double_eq(c->points[7].x[1], keep);
    twinc_check_randomize(c, 0, 2, 0.2);
    ck_assert_double_ne(c->points[7].x[1], keep);
    twinc_check_destroy(c);
}
END_TEST

/* ---- gradcheck.c: wrong kernels fail, each for its reason ---- */

START_TEST(test_gradcheck_fails_wrong_adjoint_with_rho_above_tolerance)
{
    twinc_check *c = twinc_check_create(kernel("hand_wrong_adjoint"), 4, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    twinc_check_randomize(c, 0, 1, 0.2);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK); /* the check ran; the kernel failed */
    ck_assert(!c->pass);
    ck_assert_int_eq(c->npassed, 0);
    for (int p = 0; p < c->npoints; p++) {
        const twinc_check_point *pt = &c->points[p];
        ck_assert(!pt->pass);
        ck_assert(pt->flags & TWINC_CHECK_F_ADJOINT);
        ck_assert(pt->flags & TWINC_CHECK_F_DOT);
        ck_assert(!(pt->flags & TWINC_CHECK_F_TANGENT)); /* the tangent is right */
        /* d(a a b)/da: the adjoint says a b, the truth is 2 a b: rho = 1/3 */
        ck_assert_double_eq_tol(pt->rho[twinc_check_idx(c, 2, 0)], 1.0 / 3.0, 1e-6);
        ck_assert_double_gt(pt->rho[twinc_check_idx(c, 2, 0)], c->opt.fd_rtol);
        ck_assert_double_lt(pt->rho[twinc_check_idx(c, 2, 1)], 1e-8);
        ck_assert_double_gt(pt->dot_error, 1e-3);
    }
    /* a generous enough tolerance lets the same numbers pass */
    c->opt.fd_rtol = 0.5;
    c->opt.dot_rtol = 0.5;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(c->pass);
    twinc_check_destroy(c);
}
END_TEST

/* Wrapped twins: the fixture's, with one thing broken. */
static const twinc_kernel *base_ok, *base_un;

static int bad_tangent(size_t n, const twinc_arg *val, const twinc_arg *dot, twinc_workspace *ws)
{
    int st = base_ok->tangent(n, val, dot, ws);
    for (size_t l = 0; l < n; l++) /* dreturn off by 1% */
        ((double *)dot[4].p)[l * (size_t)dot[4].ls] *= 1.01;
    return st;
}

static int bad_value_adjoint(size_t n, const twinc_arg *val, const twinc_arg *bar,
                             twinc_workspace *ws)
{
    int st = base_ok->adjoint(n, val, bar, ws);
    if (val[4].p)
        for (size_t l = 0; l < n; l++)
            ((double *)val[4].p)[l * (size_t)val[4].ls] += 1e-6;
    return st;
}

static int enomem_primal(size_t n, const twinc_arg *val, twinc_workspace *ws)
{
    (void)n;
    (void)val;
    (void)ws;
    return TWINC_ENOMEM;
}

static int forgetful_primal(size_t n, const twinc_arg *val, twinc_workspace *ws)
{
    twinc_arg copy[5];
    double scratch[64];
    memcpy(copy, val, sizeof copy);
    if (n > 64)
        return TWINC_EINVAL;
    copy[3] = (twinc_arg){scratch, 1, 0}; /* `out` is never written */
    return base_ok->primal(n, copy, ws);
}

/* Assigns the adjoint of the uniform T instead of adding to it: right for
 * one lane, wrong once lanes must be summed. */
static int assigning_adjoint(size_t n, const twinc_arg *val, const twinc_arg *bar,
                             twinc_workspace *ws)
{
    double *tb = bar[2].p;
    if (bar[2].ls != 0)
        return TWINC_EUNIFORM;
    double before = *tb;
    int st = base_un->adjoint(n, val, bar, ws);
    if (n > 1)
        *tb -= before + 0.5 * (*tb - before); /* keeps only half of the lanes' sum */
    return st;
}

/* Reads its workspace before writing it (a reverse sweep popping what was
 * never pushed): harmless on zeroed memory, wrong on anything else. */
static int uninit_ws_adjoint(size_t n, const twinc_arg *val, const twinc_arg *bar,
                             twinc_workspace *ws)
{
    if (!ws || !ws->base || ws->bytes < sizeof(double))
        return TWINC_ENOMEM;
    double stale = *(const double *)ws->base;
    int st = base_un->adjoint(n, val, bar, ws);
    ((double *)bar[0].p)[0] += stale;
    return st;
}

/* Walks the lanes as if every lane stride were 1. */
static int stride_blind_primal(size_t n, const twinc_arg *val, twinc_workspace *ws)
{
    twinc_arg copy[5];
    memcpy(copy, val, sizeof copy);
    for (int i = 0; i < 5; i++)
        copy[i].ls = copy[i].ls ? 1 : 0;
    return base_ok->primal(n, copy, ws);
}

static twinc_check *check_variant(twinc_kernel *k, const twinc_kernel *base)
{
    *k = *base;
    twinc_check *c = twinc_check_create(k, 4, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    return c;
}

START_TEST(test_gradcheck_catches_wrong_tangent)
{
    twinc_kernel k;
    base_ok = kernel("hand_ok");
    twinc_check *c = check_variant(&k, base_ok);
    k.tangent = bad_tangent;
    twinc_check_randomize(c, 0, 1, 0.2);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    for (int p = 0; p < c->npoints; p++) {
        ck_assert(c->points[p].flags & TWINC_CHECK_F_TANGENT);
        ck_assert(c->points[p].flags & TWINC_CHECK_F_DOT);
        ck_assert(!(c->points[p].flags & TWINC_CHECK_F_ADJOINT));
    }
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_catches_values_that_differ_between_twins)
{
    twinc_kernel k;
    base_ok = kernel("hand_ok");
    twinc_check *c = check_variant(&k, base_ok);
    k.adjoint = bad_value_adjoint;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    ck_assert_uint_eq(c->points[0].flags, TWINC_CHECK_F_CONSISTENCY);
    ck_assert_double_gt(c->points[0].consistency, 1e-7);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_reports_twin_errors)
{
    twinc_kernel k;
    base_ok = kernel("hand_ok");
    twinc_check *c = check_variant(&k, base_ok);
    k.primal = enomem_primal;
    ck_assert_int_eq(twinc_check_run(c), TWINC_ENOMEM);
    ck_assert(!c->pass);
    for (int p = 0; p < c->npoints; p++) {
        ck_assert_int_eq(c->points[p].status, TWINC_ENOMEM);
        ck_assert_str_eq(c->points[p].failed, "primal");
        ck_assert_uint_eq(c->points[p].flags, TWINC_CHECK_F_STATUS);
    }
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_catches_unwritten_output)
{
    twinc_kernel k;
    base_ok = kernel("hand_ok");
    twinc_check *c = check_variant(&k, base_ok);
    k.primal = forgetful_primal;
    k.reference = NULL;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    ck_assert(c->points[0].flags & TWINC_CHECK_F_NONFINITE);
    ck_assert(isnan(c->points[0].value[3]));
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_catches_uniform_adjoint_not_summed_over_lanes)
{
    twinc_kernel k;
    base_un = kernel("hand_uniform");
    twinc_check *c = check_variant(&k, base_un);
    k.adjoint = assigning_adjoint;
    twinc_check_randomize(c, 0, 1, 0.2);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    ck_assert(c->points[0].flags & TWINC_CHECK_F_CONSISTENCY);
    ck_assert(!(c->points[0].flags & TWINC_CHECK_F_ADJOINT)); /* one-lane calls are right */
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_lane_stride_is_honoured_and_checked)
{
    const char *names[] = {"hand_ok", "hand_uniform"};
    for (int n = 0; n < 2; n++) {
        twinc_check *c = twinc_check_create(kernel(names[n]), 5, err, sizeof err);
        ck_assert_ptr_nonnull(c);
        c->opt.lane_stride = 3;
        twinc_check_randomize(c, 0, 9, 0.2);
        ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
        ck_assert_msg(c->pass, "%s with lane stride 3", names[n]);
        twinc_check_destroy(c);
    }
    twinc_kernel k;
    base_ok = kernel("hand_ok");
    twinc_check *c = check_variant(&k, base_ok);
    k.primal = stride_blind_primal;
    c->opt.lane_stride = 3;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    ck_assert(c->points[1].flags & TWINC_CHECK_F_NONFINITE);
    c->opt.lane_stride = 1; /* where the stride is 1 the blind twin is right */
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(c->pass);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_poisons_workspace_to_catch_reads_before_writes)
{
    twinc_kernel k;
    base_un = kernel("hand_uniform");
    twinc_check *c = check_variant(&k, base_un);
    k.adjoint = uninit_ws_adjoint;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    ck_assert(c->points[0].flags & TWINC_CHECK_F_NONFINITE);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_flags_non_finite_values)
{
    twinc_check *c = twinc_check_create(kernel("hand_ok"), 1, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    c->points[0].x[1] = -1e300; /* exp(-y) overflows */
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    ck_assert(c->points[0].flags & TWINC_CHECK_F_NONFINITE);
    twinc_check_destroy(c);
}
END_TEST

/* ---- gradcheck.c: branches and kinks ---- */

/* One-input kernels f(x) written here, selected by `shape`; df is what an AD
 * tool following the branch taken at x returns. */
enum {
    SHAPE_FMAX,
    SHAPE_JUMP,
    SHAPE_ISOLATED,
    SHAPE_STEEP,
    SHAPE_FMAX_BAD,
    SHAPE_FMAX_MEAN,
    SHAPE_NOISY,
    SHAPE_NOISY_BAD
};
static int shape;

/* x with relative noise of 1e-10, a deterministic function of x's bits: a
 * stand-in for pricing code that loses digits to cancellation. */
static double noisy(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    b ^= b >> 31;
    b *= 0x9E3779B97F4A7C15ull;
    b ^= b >> 29;
    return x * (1.0 + 1e-10 * ((double)(b >> 11) * 0x1p-52 - 1.0));
}

static double shape_f(double x)
{
    switch (shape) {
    case SHAPE_FMAX:
    case SHAPE_FMAX_BAD:
    case SHAPE_FMAX_MEAN:
        return fmax(x, 1.0);
    case SHAPE_JUMP:
        return x > 1.0 ? 2.0 * x : 3.0 * x;
    case SHAPE_ISOLATED:
        return x == 1.0 ? 0.0 : x;
    case SHAPE_NOISY:
    case SHAPE_NOISY_BAD:
        return noisy(x);
    default:
        return exp(10.0 * x);
    }
}

static double shape_df(double x)
{
    switch (shape) {
    case SHAPE_FMAX:
        return x > 1.0 ? 1.0 : 0.0; /* ties to the second argument */
    case SHAPE_FMAX_BAD:
        return x == 1.0 ? 0.25 : x > 1.0 ? 1.0 : 0.0; /* no side's slope, nor their mean */
    case SHAPE_FMAX_MEAN:
        return x == 1.0 ? 0.5 : x > 1.0 ? 1.0 : 0.0; /* the mean: a subgradient */
    case SHAPE_JUMP:
        return x > 1.0 ? 2.0 : 3.0;
    case SHAPE_ISOLATED:
        return x == 1.0 ? 0.0 : 1.0;
    case SHAPE_NOISY:
        return 1.0;
    case SHAPE_NOISY_BAD:
        return 1.001;
    default:
        return 10.0 * exp(10.0 * x);
    }
}

#define LANE(a, l) (((double *)(a).p)[(ptrdiff_t)(l) * (a).ls])

static int shape_primal(size_t n, const twinc_arg *val, twinc_workspace *ws)
{
    (void)ws;
    for (size_t l = 0; l < n; l++)
        LANE(val[1], l) = shape_f(LANE(val[0], l));
    return TWINC_OK;
}

static int shape_tangent(size_t n, const twinc_arg *val, const twinc_arg *dot,
                         twinc_workspace *ws)
{
    (void)ws;
    for (size_t l = 0; l < n; l++) {
        double x = LANE(val[0], l);
        if (val[1].p)
            LANE(val[1], l) = shape_f(x);
        LANE(dot[1], l) = shape_df(x) * LANE(dot[0], l);
    }
    return TWINC_OK;
}

static int shape_adjoint(size_t n, const twinc_arg *val, const twinc_arg *bar,
                         twinc_workspace *ws)
{
    (void)ws;
    for (size_t l = 0; l < n; l++) {
        double x = LANE(val[0], l);
        if (val[1].p)
            LANE(val[1], l) = shape_f(x);
        LANE(bar[0], l) += shape_df(x) * LANE(bar[1], l);
    }
    return TWINC_OK;
}

static const twinc_param shape_params[] = {
    {"x", TWINC_T_DOUBLE, TWINC_ROLE_IN, TWINC_PARAM_ACTIVE, NULL, NULL},
    {"return", TWINC_T_DOUBLE, TWINC_ROLE_RET, TWINC_PARAM_ACTIVE, NULL, NULL},
};
static const twinc_kernel shape_kernel = {
    "shape", "test_runtime.c", 1, 2, shape_params, shape_primal, shape_tangent, shape_adjoint,
    NULL, NULL, NULL};

/* Check `shape` at x (point 0) and at points near it; returns the checker. */
static twinc_check *check_shape(int which, double x)
{
    shape = which;
    twinc_check *c = twinc_check_create(&shape_kernel, 4, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    c->points[0].x[0] = x;
    twinc_check_randomize(c, 0, 1, 0.2);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    return c;
}

START_TEST(test_gradcheck_kink_at_the_point_uses_the_matching_side)
{
    twinc_check *c = check_shape(SHAPE_FMAX, 1.0);
    ck_assert_msg(c->pass, "rho %g", c->points[0].rho[twinc_check_idx(c, 1, 0)]);
    ck_assert_int_eq(c->points[0].fd_kind[twinc_check_idx(c, 1, 0)], TWINC_FD_LEFT);
    ck_assert_int_eq(c->points[0].nonsmooth, 1);
    ck_assert_double_eq_tol(c->points[0].fd[twinc_check_idx(c, 1, 0)], 0.0, 1e-9);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_jump_at_the_point_uses_the_matching_side)
{
    twinc_check *c = check_shape(SHAPE_JUMP, 1.0);
    ck_assert(c->pass);
    ck_assert_int_eq(c->points[0].fd_kind[twinc_check_idx(c, 1, 0)], TWINC_FD_LEFT);
    ck_assert_double_eq_tol(c->points[0].fd[twinc_check_idx(c, 1, 0)], 3.0, 1e-8);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_kink_between_half_step_and_step)
{
    double h = cbrt(DBL_EPSILON);
    twinc_check *c = check_shape(SHAPE_FMAX, 1.0 - 0.75 * h);
    ck_assert(c->pass);
    ck_assert_int_eq(c->points[0].fd_kind[twinc_check_idx(c, 1, 0)], TWINC_FD_LEFT);
    /* plain central differences straddle the kink and fail */
    c->opt.halfstep = 0;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->points[0].pass);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_wrong_derivative_at_a_kink_still_fails)
{
    twinc_check *c = check_shape(SHAPE_FMAX_BAD, 1.0);
    ck_assert(!c->pass);
    ck_assert(c->points[0].flags & TWINC_CHECK_F_ADJOINT);
    ck_assert(c->points[1].pass); /* away from the kink it is right */
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_mean_slope_at_a_kink_is_accepted)
{
    /* like fabs'(0) = 0: the central difference agrees, and is kept */
    twinc_check *c = check_shape(SHAPE_FMAX_MEAN, 1.0);
    ck_assert(c->pass);
    ck_assert_int_eq(c->points[0].fd_kind[twinc_check_idx(c, 1, 0)], TWINC_FD_SMOOTH);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_isolated_point_fails)
{
    twinc_check *c = check_shape(SHAPE_ISOLATED, 1.0);
    ck_assert(!c->points[0].pass);
    ck_assert_int_ne(c->points[0].fd_kind[twinc_check_idx(c, 1, 0)], TWINC_FD_SMOOTH);
    ck_assert(c->points[1].pass);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_steep_smooth_function_is_not_a_kink)
{
    twinc_check *c = check_shape(SHAPE_STEEP, 1.0);
    ck_assert(c->pass);
    for (int p = 0; p < c->npoints; p++)
        ck_assert_int_eq(c->points[p].nonsmooth, 0);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_noisy_function_gets_a_wider_bound)
{
    twinc_check *c = check_shape(SHAPE_NOISY, 1.0);
    ck_assert_msg(c->pass, "max rho %g", c->max_rho);
    int raised = 0;
    for (int p = 0; p < c->npoints; p++) {
        size_t ix = twinc_check_idx(c, 1, 0);
        ck_assert_double_gt(c->points[p].fd_error[ix], 0.0);
        ck_assert_double_le(c->points[p].rho_bound[ix], c->opt.fd_rtol_max);
        raised += c->points[p].rho_bound[ix] > c->opt.fd_rtol;
    }
    ck_assert_int_gt(raised, 0); /* the noise is real: fd_rtol alone would fail */
    /* without the h/2 evaluations there is no error estimate */
    c->opt.halfstep = 0;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_noisy_function_with_wrong_derivative_fails)
{
    twinc_check *c = check_shape(SHAPE_NOISY_BAD, 1.0); /* off by 1e-3 */
    ck_assert(!c->pass);
    for (int p = 0; p < c->npoints; p++)
        ck_assert(c->points[p].flags & TWINC_CHECK_F_ADJOINT);
    twinc_check_destroy(c);
}
END_TEST

/* ---- gradcheck.c: the API's edges ---- */

START_TEST(test_gradcheck_create_refuses_bad_counts)
{
    const twinc_kernel *ok = kernel("hand_ok");
    twinc_kernel k = *ok;
    k.adjoint = NULL;
    ck_assert_ptr_null(twinc_check_create(&k, 2, err, sizeof err));
    ck_assert_msg(strstr(err, "no adjoint twin") != NULL, "message: %s", err);

    ck_assert_ptr_null(twinc_check_create(ok, 0, err, sizeof err));
    ck_assert_ptr_null(twinc_check_create(NULL, 1, NULL, 0));
    twinc_check_destroy(NULL);
}
END_TEST

START_TEST(test_gradcheck_set_by_name_checks_types)
{
    twinc_check *c = twinc_check_create(kernel("hand_ok"), 2, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    int k = twinc_check_param(c, "k");
    ck_assert_int_eq(k, 2);
    ck_assert_int_eq(twinc_check_param(c, "nope"), -1);
    ck_assert_int_eq(twinc_check_set(c, 1, k, 2.5), TWINC_EINVAL);
    ck_assert_int_eq(twinc_check_set(c, 1, k, 1e12), TWINC_EINVAL); /* beyond int */
    ck_assert_int_eq(twinc_check_set(c, 1, k, -7), TWINC_OK);
    ck_assert_int_eq(c->points[1].ix[k], -7);
    ck_assert_int_eq(twinc_check_set(c, 1, twinc_check_param(c, "return"), 1.0), TWINC_EINVAL);
    ck_assert_int_eq(twinc_check_set(c, 2, 0, 1.0), TWINC_EINVAL);
    ck_assert_int_eq(twinc_check_set(c, 0, 0, 0.25), TWINC_OK);
    ck_assert_double_eq(c->points[0].x[0], 0.25);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_integer_out_of_range_is_einval)
{
    twinc_check *c = twinc_check_create(kernel("hand_ok"), 2, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    c->points[1].ix[2] = 1LL << 40; /* k is a C int */
    ck_assert_int_eq(twinc_check_run(c), TWINC_EINVAL);
    ck_assert_int_eq(c->points[1].status, TWINC_EINVAL);
    ck_assert_str_eq(c->points[1].failed, "checker");
    ck_assert(!c->pass);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_runs_again_after_changes)
{
    twinc_check *c = twinc_check_create(kernel("hand_ok"), 2, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    double v = c->points[0].value[4];
    c->points[0].x[0] = 2.0;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(c->pass);
    ck_assert_double_ne(c->points[0].value[4], v);
    ck_assert_double_eq_tol(c->points[0].value[4], 2.0 + sin(2.0), 1e-14);
    twinc_check_destroy(c);
}
END_TEST

/* ---- gradcheck.c: array parameters (tests/fixtures/handarray.c, compiled in) ---- */

/* hand_arr_ok(s, n, a[n], w[n]) passive(w) at n = 3. */
static twinc_check *check_arr(int which, long long n, int npoints)
{
    const twinc_kernel *k = &handarray_kernels[which];
    long long ix[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < k->nparams; i++)
        if (k->params[i].type == TWINC_T_INT)
            ix[i] = n;
    twinc_check *c = twinc_check_create_at(k, npoints, ix, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    return c;
}

START_TEST(test_gradcheck_array_inputs_are_checked_element_by_element)
{
    twinc_check *c = check_arr(0, 3, 5); /* s n a[3] w[3] return */
    const int S = 0, N = 1, A = 2, W = 3, RET = 4;
    ck_assert_int_eq(c->nslots, 9);
    ck_assert_int_eq(c->length[A], 3);
    ck_assert_int_eq(c->length[W], 3);
    ck_assert_int_eq(c->length[S], -1);
    ck_assert_int_eq(c->nin, 4);  /* s a[0] a[1] a[2]; w is passive */
    ck_assert_int_eq(c->nout, 1); /* return */
    int a0 = twinc_check_slot(c, A, 0), w0 = twinc_check_slot(c, W, 0);
    int ret = twinc_check_slot(c, RET, 0);
    ck_assert_int_eq(a0, 2);
    ck_assert_int_eq(twinc_check_slot(c, A, 3), -1);
    ck_assert_int_eq(twinc_check_slot(c, S, 1), -1);
    ck_assert_int_eq(c->slot_param[a0 + 2], A);
    ck_assert_int_eq(c->slot_elem[a0 + 2], 2);
    ck_assert_int_eq(c->slot_elem[ret], -1);
    char name[32];
    ck_assert_str_eq(twinc_check_slot_name(c, a0 + 2, name, sizeof name), "a[2]");
    ck_assert_str_eq(twinc_check_slot_name(c, ret, name, sizeof name), "return");
    ck_assert_int_eq(c->points[0].ix[twinc_check_slot(c, N, 0)], 3);
    /* the base point: s = 0.7, a = 0.2 0.9 -1.3, w = 2 (every element) */
    ck_assert_int_eq(twinc_check_set(c, 0, S, 0.7), TWINC_OK);
    ck_assert_int_eq(twinc_check_set(c, 0, W, 2.0), TWINC_OK);
    ck_assert_double_eq(c->points[0].x[w0 + 2], 2.0);
    c->points[0].x[a0] = 0.2;
    c->points[0].x[a0 + 1] = 0.9;
    c->points[0].x[a0 + 2] = -1.3;
    twinc_check_randomize(c, 0, 5, 0.2);
    ck_assert_double_ne(c->points[1].x[a0], c->points[2].x[a0]);
    ck_assert_double_ne(c->points[1].x[a0], c->points[1].x[a0 + 1] * 0.2 / 0.9);
    ck_assert_double_ne(c->points[1].x[w0], c->points[1].x[w0 + 1]); /* passive too */
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert_msg(c->pass, "max rho %g, dot %g, consistency %g", c->max_rho, c->max_dot_error,
                  c->max_consistency);
    for (int p = 0; p < c->npoints; p++) {
        const twinc_check_point *pt = &c->points[p];
        double s = pt->x[S], q = 0.0, t = 0.0;
        for (int e = 0; e < 3; e++) {
            double a = pt->x[a0 + e], w = pt->x[w0 + e];
            q += w * a * a;
            t += sin(a);
            ck_assert_double_eq_tol(pt->adjoint[twinc_check_idx(c, ret, a0 + e)],
                                    2 * s * w * a + cos(a), 1e-13);
            ck_assert_double_eq_tol(pt->tangent[twinc_check_idx(c, ret, a0 + e)],
                                    2 * s * w * a + cos(a), 1e-13);
            ck_assert_double_eq_tol(pt->fd[twinc_check_idx(c, ret, a0 + e)],
                                    2 * s * w * a + cos(a), 1e-8);
            /* passive w: the entry that is always 0 */
            ck_assert_uint_eq(twinc_check_idx(c, ret, w0 + e), (size_t)(c->nout * c->nin));
            ck_assert_double_eq(pt->adjoint[twinc_check_idx(c, ret, w0 + e)], 0.0);
        }
        ck_assert_double_eq_tol(pt->value[ret], s * q + t, 1e-13);
        ck_assert_double_eq_tol(pt->adjoint[twinc_check_idx(c, ret, S)], q, 1e-13);
        ck_assert_double_ne(pt->dot_lhs, 0.0);
    }
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_array_wrong_element_is_named)
{
    twinc_check *c = check_arr(1, 4, 3); /* n a[4] return; a[3]'s adjoint is wrong */
    twinc_check_randomize(c, 0, 2, 0.2);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    int a0 = twinc_check_slot(c, 1, 0), ret = twinc_check_slot(c, 2, 0);
    for (int p = 0; p < c->npoints; p++) {
        const twinc_check_point *pt = &c->points[p];
        ck_assert(pt->flags & TWINC_CHECK_F_ADJOINT);
        ck_assert(pt->flags & TWINC_CHECK_F_DOT);
        ck_assert(!(pt->flags & TWINC_CHECK_F_TANGENT));
        for (int e = 0; e < 3; e++)
            ck_assert_double_lt(pt->rho[twinc_check_idx(c, ret, a0 + e)], 1e-8);
        /* a^2/4 instead of 3 a^2/4: rho = 2/4 / max(1, 4/4 a^2) = 1/2 at a = 1 */
        ck_assert_double_gt(pt->rho[twinc_check_idx(c, ret, a0 + 3)], 0.1);
    }
    twinc_check_destroy(c);
}
END_TEST

/* v[i] = v[i] x + v[i-1]^2 (i = n-1 .. 1), v[0] = v[0] x: finals against initials. */
static void expect_inout_derivatives(const twinc_check *c)
{
    const int X = 0, V = 2;
    int v0 = twinc_check_slot(c, V, 0), n = c->length[V];
    ck_assert_int_eq(n, 3);
    for (int p = 0; p < c->npoints; p++) {
        const twinc_check_point *pt = &c->points[p];
        double x = pt->x[X];
        for (int i = 0; i < n; i++) {
            double vi = pt->x[v0 + i], prev = i ? pt->x[v0 + i - 1] : 0.0;
            ck_assert_double_eq_tol(pt->value[v0 + i], vi * x + prev * prev, 1e-13);
            ck_assert_double_eq_tol(pt->adjoint[twinc_check_idx(c, v0 + i, X)], vi, 1e-13);
            for (int j = 0; j < n; j++) {
                double want = j == i ? x : j == i - 1 ? 2 * prev : 0.0;
                ck_assert_double_eq_tol(pt->adjoint[twinc_check_idx(c, v0 + i, v0 + j)], want,
                                        1e-13);
                ck_assert_double_eq_tol(pt->tangent[twinc_check_idx(c, v0 + i, v0 + j)], want,
                                        1e-13);
            }
        }
    }
}

START_TEST(test_gradcheck_inout_array_initial_values_in_final_values_out)
{
    twinc_check *c = check_arr(2, 3, 4); /* x n v[3] */
    const int X = 0, V = 2;
    int v0 = twinc_check_slot(c, V, 0);
    ck_assert_int_eq(c->nin, 4);  /* x, initial v[0..2] */
    ck_assert_int_eq(c->nout, 3); /* final v[0..2] */
    ck_assert_int_eq(c->inputs[1], v0);
    ck_assert_int_eq(c->outputs[0], v0);
    ck_assert_int_eq(twinc_check_set(c, 0, V, 0.5), TWINC_OK); /* initial values */
    c->points[0].x[v0 + 2] = -0.75;
    c->points[0].x[X] = 1.5;
    twinc_check_randomize(c, 0, 3, 0.2);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert_msg(c->pass, "max rho %g, dot %g, consistency %g", c->max_rho, c->max_dot_error,
                  c->max_consistency);
    ck_assert_double_eq(c->points[0].x[v0 + 2], -0.75); /* the inputs stay the inputs */
    expect_inout_derivatives(c);
    /* and again with gaps between lanes and between elements */
    c->opt.lane_stride = 3;
    c->opt.element_stride = 2;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(c->pass);
    expect_inout_derivatives(c);
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_uniform_array_is_shared_and_its_adjoint_summed)
{
    twinc_check *c = check_arr(3, 2, 5); /* x m c[m + 1] return, uniform(c) */
    const int X = 0, C = 2;
    int c0 = twinc_check_slot(c, C, 0), ret = twinc_check_slot(c, 3, 0);
    ck_assert_int_eq(c->length[C], 3);
    c->points[0].x[c0] = 0.5;
    c->points[0].x[c0 + 1] = -1.0;
    c->points[0].x[c0 + 2] = 2.0;
    twinc_check_randomize(c, 0, 4, 0.2);
    for (int p = 1; p < c->npoints; p++) /* uniform: not moved */
        ck_assert_double_eq(c->points[p].x[c0 + 1], -1.0);
    c->points[3].x[c0 + 1] = 0.25; /* another batch */
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert_msg(c->pass, "max rho %g, dot %g, consistency %g", c->max_rho, c->max_dot_error,
                  c->max_consistency);
    for (int p = 0; p < c->npoints; p++) {
        const twinc_check_point *pt = &c->points[p];
        double x = pt->x[X];
        for (int e = 0; e < 3; e++)
            ck_assert_double_eq_tol(pt->adjoint[twinc_check_idx(c, ret, c0 + e)], pow(x, e),
                                    1e-13);
        ck_assert_double_eq_tol(pt->adjoint[twinc_check_idx(c, ret, X)],
                                pt->x[c0 + 1] + 2 * pt->x[c0 + 2] * x, 1e-13);
    }
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_array_lengths_are_fixed_at_create)
{
    const twinc_kernel *k = &handarray_kernels[0];
    ptrdiff_t len[5];
    long long ix[5] = {0, 4, 0, 0, 0};
    ck_assert_int_eq(twinc_check_array_lengths(k, ix, len), TWINC_OK);
    ck_assert_int_eq(len[2], 4);
    ck_assert_int_eq(len[3], 4);
    ck_assert_int_eq(len[0], -1);
    ix[1] = -5; /* a negative length is no elements */
    ck_assert_int_eq(twinc_check_array_lengths(k, ix, len), TWINC_OK);
    ck_assert_int_eq(len[2], 0);
    ix[1] = 1LL << 40; /* n is a C int */
    ck_assert_int_eq(twinc_check_array_lengths(k, ix, len), TWINC_EINVAL);
    ck_assert_ptr_null(twinc_check_create_at(k, 2, ix, err, sizeof err));
    ck_assert_msg(strstr(err, "out of the range") != NULL, "message: %s", err);
    ix[1] = TWINC_CHECK_MAX_ELEMS; /* a and w: twice the most elements */
    ck_assert_ptr_null(twinc_check_create_at(k, 2, ix, err, sizeof err));
    ck_assert_msg(strstr(err, "at most") && strstr(err, "a has"), "message: %s", err);
    /* no integers given: every one is 1 */
    twinc_check *c = twinc_check_create(k, 3, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->length[2], 1);
    twinc_check_destroy(c);

    c = check_arr(0, 2, 3);
    c->points[1].ix[twinc_check_slot(c, 1, 0)] = 3; /* other lengths: refused */
    ck_assert_int_eq(twinc_check_run(c), TWINC_EINVAL);
    ck_assert_int_eq(c->points[1].status, TWINC_EINVAL);
    ck_assert_str_eq(c->points[1].failed, "checker");
    ck_assert(c->points[0].pass && c->points[2].pass);
    ck_assert_int_eq(c->npassed, 2);
    twinc_check_destroy(c);

    c = check_arr(0, 0, 2); /* n = 0: no elements, s still checked */
    ck_assert_int_eq(c->nin, 1);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(c->pass);
    twinc_check_destroy(c);
}
END_TEST

/* Wrapped array twins, each with one thing broken. */
static const twinc_kernel *base_arr, *base_inout;

/* Reads elements as if the element stride were 1. */
static int es_blind_primal(size_t n, const twinc_arg *val, twinc_workspace *ws)
{
    twinc_arg copy[5];
    memcpy(copy, val, sizeof copy);
    copy[2].es = copy[3].es = 1;
    return base_arr->primal(n, copy, ws);
}

/* Adds the adjoint of the initial values to the seed instead of
 * overwriting the seed with it. */
static int inout_adding_adjoint(size_t n, const twinc_arg *val, const twinc_arg *bar,
                                twinc_workspace *ws)
{
    double seeds[4096];
    size_t cnt = 0;
    for (size_t l = 0; l < n; l++)
        for (int e = 0; e < HA_I(val[AI_N], l) && cnt < 4096; e++)
            seeds[cnt++] = bar[AI_V].p ? HA_E(bar[AI_V], l, e) : 0.0;
    int st = base_inout->adjoint(n, val, bar, ws);
    cnt = 0;
    for (size_t l = 0; l < n; l++)
        for (int e = 0; e < HA_I(val[AI_N], l) && cnt < 4096; e++)
            if (bar[AI_V].p)
                HA_E(bar[AI_V], l, e) += seeds[cnt++];
    return st;
}

/* Reads a[-1] (an index off by one, as x[n - 1] with n = 0 would be) and
 * writes return[-1]: the checker's buffers are padded with NaN, so lane 0
 * sees a NaN and nothing of the checker's is overwritten. */
static int off_by_one_primal(size_t n, const twinc_arg *val, twinc_workspace *ws)
{
    int st = base_arr->primal(n, val, ws);
    for (size_t l = 0; l < n; l++)
        HA_D(val[AO_RET], l) += 0.0 * HA_E(val[AO_A], l, -1);
    if (n > 0)
        HA_D(val[AO_RET], -1) = 42.0;
    return st;
}

/* Writes the final values of the in/out array only in lane 0. */
static int inout_lazy_primal(size_t n, const twinc_arg *val, twinc_workspace *ws)
{
    return base_inout->primal(n ? 1 : 0, val, ws);
}

START_TEST(test_gradcheck_catches_broken_array_twins)
{
    base_arr = &handarray_kernels[0];
    base_inout = &handarray_kernels[2];
    twinc_kernel k = *base_arr;
    k.primal = es_blind_primal;
    long long ix[5] = {1, 3, 1, 1, 1};
    twinc_check *c = twinc_check_create_at(&k, 3, ix, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(c->pass); /* element stride 1: nothing to see */
    c->opt.element_stride = 2;
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass); /* it reads the NaN between the elements */
    ck_assert(c->points[0].flags & (TWINC_CHECK_F_NONFINITE | TWINC_CHECK_F_CONSISTENCY));
    twinc_check_destroy(c);

    k = *base_arr;
    k.primal = off_by_one_primal;
    c = twinc_check_create_at(&k, 3, ix, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->points[0].pass);
    ck_assert(c->points[0].flags & TWINC_CHECK_F_NONFINITE);
    twinc_check_destroy(c);

    k = *base_inout;
    k.adjoint = inout_adding_adjoint;
    c = twinc_check_create_at(&k, 3, ix, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass);
    for (int p = 0; p < c->npoints; p++)
        ck_assert(c->points[p].flags & TWINC_CHECK_F_ADJOINT);
    twinc_check_destroy(c);

    k = *base_inout;
    k.primal = inout_lazy_primal;
    c = twinc_check_create_at(&k, 3, ix, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(twinc_check_run(c), TWINC_OK);
    ck_assert(!c->pass); /* points 1 and 2 keep their initial values: wrong */
    twinc_check_destroy(c);
}
END_TEST

START_TEST(test_gradcheck_refuses_malformed_arrays)
{
    const twinc_kernel *ok = kernel("hand_ok");
    twinc_param params[5];
    twinc_kernel k = *ok;
    k.params = params;

    memcpy(params, ok->params, sizeof params);
    params[0].length = "n"; /* an array without a length function */
    ck_assert_ptr_null(twinc_check_create(&k, 2, err, sizeof err));
    ck_assert_msg(strstr(err, "array") && strstr(err, "'x'") && strstr(err, "length function"),
                  "message: %s", err);

    memcpy(params, ok->params, sizeof params);
    params[2].length = "k"; /* an array of ints */
    params[2].len = ao_len;
    ck_assert_ptr_null(twinc_check_create(&k, 2, err, sizeof err));
    ck_assert_msg(strstr(err, "'k'") && strstr(err, "not of doubles"), "message: %s", err);

    memcpy(params, ok->params, sizeof params);
    params[3].length = "k"; /* an output array */
    params[3].len = ao_len;
    ck_assert_ptr_null(twinc_check_create(&k, 2, err, sizeof err));
    ck_assert_msg(strstr(err, "output 'out'") != NULL, "message: %s", err);

    memcpy(params, ok->params, sizeof params);
    params[1].role = TWINC_ROLE_INOUT; /* a scalar in/out */
    ck_assert_ptr_null(twinc_check_create(&k, 2, err, sizeof err));
    ck_assert_msg(strstr(err, "in/out parameter 'y'") != NULL, "message: %s", err);
}
END_TEST

Suite *make_runtime_suite(void)
{
    Suite *s = suite_create("runtime");

    TCase *tl = tcase_create("lib");
    tcase_add_checked_fixture(tl, open_hand, close_hand);
    tcase_add_test(tl, test_lib_open_lists_kernels_in_registry_order);
    tcase_add_test(tl, test_lib_find_by_name);
    tcase_add_test(tl, test_lib_null_is_harmless);
    tcase_add_test(tl, test_lib_open_missing_file_gives_dlerror);
    tcase_add_test(tl, test_lib_open_without_registry_says_so);
    tcase_add_test(tl, test_lib_open_rejects_other_abi_version);
    tcase_add_test(tl, test_lib_open_rejects_duplicate_kernel_names);
    tcase_add_test(tl, test_lib_open_collects_every_registry);
    tcase_add_test(tl, test_lib_open_twice_gives_independent_handles);
    tcase_add_test(tl, test_find_kernel_skips_other_abi_and_null);
    tcase_add_test(tl, test_strerror_names_every_status);
    suite_add_tcase(s, tl);

    TCase *tg = tcase_create("gradcheck");
    tcase_add_checked_fixture(tg, open_hand, close_hand);
    tcase_add_test(tg, test_gradcheck_passes_correct_kernel_at_several_points);
    tcase_add_test(tg, test_gradcheck_dot_product_error_tiny_on_correct_kernels);
    tcase_add_test(tg, test_gradcheck_plain_central_differences_also_pass);
    tcase_add_test(tg, test_gradcheck_uniform_inputs_share_lanes_and_sum);
    tcase_add_test(tg, test_gradcheck_randomize_keeps_integers_and_uniforms);
    tcase_add_test(tg, test_gradcheck_fails_wrong_adjoint_with_rho_above_tolerance);
    tcase_add_test(tg, test_gradcheck_catches_wrong_tangent);
    tcase_add_test(tg, test_gradcheck_catches_values_that_differ_between_twins);
    tcase_add_test(tg, test_gradcheck_reports_twin_errors);
    tcase_add_test(tg, test_gradcheck_catches_unwritten_output);
    tcase_add_test(tg, test_gradcheck_catches_uniform_adjoint_not_summed_over_lanes);
    tcase_add_test(tg, test_gradcheck_lane_stride_is_honoured_and_checked);
    tcase_add_test(tg, test_gradcheck_poisons_workspace_to_catch_reads_before_writes);
    tcase_add_test(tg, test_gradcheck_flags_non_finite_values);
    tcase_add_test(tg, test_gradcheck_kink_at_the_point_uses_the_matching_side);
    tcase_add_test(tg, test_gradcheck_jump_at_the_point_uses_the_matching_side);
    tcase_add_test(tg, test_gradcheck_kink_between_half_step_and_step);
    tcase_add_test(tg, test_gradcheck_wrong_derivative_at_a_kink_still_fails);
    tcase_add_test(tg, test_gradcheck_mean_slope_at_a_kink_is_accepted);
    tcase_add_test(tg, test_gradcheck_isolated_point_fails);
    tcase_add_test(tg, test_gradcheck_steep_smooth_function_is_not_a_kink);
    tcase_add_test(tg, test_gradcheck_noisy_function_gets_a_wider_bound);
    tcase_add_test(tg, test_gradcheck_noisy_function_with_wrong_derivative_fails);
    tcase_add_test(tg, test_gradcheck_create_refuses_bad_counts);
    tcase_add_test(tg, test_gradcheck_set_by_name_checks_types);
    tcase_add_test(tg, test_gradcheck_integer_out_of_range_is_einval);
    tcase_add_test(tg, test_gradcheck_runs_again_after_changes);
    suite_add_tcase(s, tg);

    TCase *ta = tcase_create("gradcheck_arrays");
    tcase_add_checked_fixture(ta, open_hand, close_hand);
    tcase_add_test(ta, test_gradcheck_array_inputs_are_checked_element_by_element);
    tcase_add_test(ta, test_gradcheck_array_wrong_element_is_named);
    tcase_add_test(ta, test_gradcheck_inout_array_initial_values_in_final_values_out);
    tcase_add_test(ta, test_gradcheck_uniform_array_is_shared_and_its_adjoint_summed);
    tcase_add_test(ta, test_gradcheck_array_lengths_are_fixed_at_create);
    tcase_add_test(ta, test_gradcheck_catches_broken_array_twins);
    tcase_add_test(ta, test_gradcheck_refuses_malformed_arrays);
    suite_add_tcase(s, ta);
    return s;
}
