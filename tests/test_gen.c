/*
 * test_gen.c — unit tests of the generator's phases: pragma scan, lowering,
 * activity, varying/uniform, to-be-recorded, and the emitters (a few pinned
 * fragments of generated code).  Each test writes a small C file, runs the
 * front half of the generator on it (gen_open) and inspects the IR, the
 * diagnostics or the emitted text.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "twinc_gen.h"
#define TWINC_NO_SHORT_NAMES
#include "twinc.h"

typedef struct Msgs {
    char text[8192];
    int errors;
} Msgs;

static void sink(void *ctx, SrcLoc loc, int is_error, const char *msg)
{
    Msgs *m = ctx;
    size_t n = strlen(m->text);
    snprintf(m->text + n, sizeof m->text - n, "%d:%d: %s\n", loc.line, loc.col, msg);
    m->errors += is_error;
}

typedef struct Fixture {
    char path[64];
    GenSession *s;
    Unit *u;
    int rc;
    Msgs msgs;
} Fixture;

static Fixture *run(const char *src)
{
    Fixture *fx = calloc(1, sizeof *fx);
    strcpy(fx->path, "/tmp/twinc_unit_XXXXXX.c");
    int fd = mkstemps(fx->path, 2);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
    GenOptions opt = {.input = fx->path, .sink = sink, .sink_ctx = &fx->msgs};
    FILE *null = fopen("/dev/null", "w");
    opt.err_out = null;
    fx->s = gen_open(&opt, &fx->rc);
    fclose(null);
    fx->u = gen_unit(fx->s);
    return fx;
}

static void done(Fixture *fx)
{
    gen_close(fx->s);
    unlink(fx->path);
    free(fx);
}

static Func *fn(Fixture *fx, const char *name)
{
    Func *f = unit_find(fx->u, name);
    ck_assert_msg(f != NULL, "no function %s", name);
    return f;
}

static Var *var(Func *f, const char *name)
{
    for (int i = 0; i < f->vars.n; i++)
        if (!strcmp(((Var *)f->vars.v[i])->name, name))
            return f->vars.v[i];
    ck_abort_msg("no variable %s in %s", name, f->name);
    return NULL;
}

typedef struct Count {
    Op op;
    int n, saves;
} Count;

static void count_op(void *ctx, Stmt *s, bool uv)
{
    (void)uv;
    Count *c = ctx;
    c->n += s->ins.op == c->op;
    c->saves += s->ins.save_dst;
}

static int count(Func *f, Op op)
{
    Count c = {op, 0, 0};
    ir_walk(&f->body, count_op, &c);
    return c.n;
}

static int saves(Func *f)
{
    Count c = {OP_COUNT, 0, 0};
    ir_walk(&f->body, count_op, &c);
    return c.saves;
}

static int count_ifs(const Block *b)
{
    int n = 0;
    for (int i = 0; i < b->n; i++)
        if (b->v[i]->kind == ST_IF)
            n += 1 + count_ifs(&b->v[i]->then) + count_ifs(&b->v[i]->els);
    return n;
}

static char *emitted(Fixture *fx)
{
    Buf c = {0}, h = {0};
    emit_unit(fx->u, "x.twin.c", "x.twin.h", &c, &h);
    buf_free(&h);
    return c.s;
}


static char *emitted_header(Fixture *fx)
{
    Buf c = {0}, h = {0};
    emit_unit(fx->u, "x.twin.c", "x.twin.h", &c, &h);
    buf_free(&c);
    return h.s;
}

/* ---- the tape and its size ---- */

START_TEST(test_tape_aligns_an_odd_workspace_and_grows_past_it_once)
{
    _Alignas(8) unsigned char buf[72];
    twinc_workspace ws = {buf + 1, 64}; /* misaligned base: UBSan would trap */
    twinc_tape t;
    twinc_tape_init(&t, &ws);
    ck_assert_int_eq((int)((uintptr_t)t.base % 8), 0);
    ck_assert_uint_eq(t.bytes, 57);
    for (int i = 0; i < 7; i++)
        twinc_push(&t, i + 0.5);
    twinc_pushb(&t, 1); /* 56 + 1 bytes: still the workspace */
    ck_assert_uint_eq(t.heap, 0);
    ck_assert_uint_eq(t.high, 57);
    twinc_pushb(&t, 0); /* one byte more: the heap, once */
    twinc_pushi(&t, 42);
    ck_assert_uint_gt(t.heap, 0);
    ck_assert_int_eq((int)twinc_popi(&t), 42);
    ck_assert_int_eq(twinc_popb(&t), 0);
    ck_assert_int_eq(twinc_popb(&t), 1);
    for (int i = 6; i >= 0; i--)
        ck_assert_double_eq(twinc_pop(&t), i + 0.5);
    ck_assert_uint_eq(t.n + t.nb, 0);
    twinc_tape_free(&t, &ws);
}
END_TEST

START_TEST(test_workspace_is_stated_for_loops_as_bound_or_estimate)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x, int n) { double p = 1;\n"
                      "  for (int i = 0; i < n; i++) p = p * x; return p; }\n"
                      "#pragma aad\ndouble g(double x, int n) { double p = 1;\n"
                      "  for (int i = 0; i < n; i++) { p = p * x; if (p > 10) break; } return p; }\n"
                      "#pragma aad\ndouble h(double x) { return x * x; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Emit e = {.u = fx->u, .f = fn(fx, "f")};
    ck_assert_int_eq(ws_kind(&e, fn(fx, "f")), TWINC_WS_BOUND);
    ck_assert_int_eq(ws_kind(&e, fn(fx, "g")), TWINC_WS_ESTIMATE); /* stops on the data */
    char *c = emitted(fx), *h = emitted_header(fx);
    ck_assert_ptr_nonnull(strstr(c, "static size_t f__ws_lane(int n)"));
    ck_assert_ptr_nonnull(strstr(c, "f__ga, f__gr, f__ws, NULL},"));
    ck_assert_ptr_nonnull(strstr(c, "h__ga, h__gr, NULL, NULL},")); /* no tape, no workspace */
    ck_assert_ptr_nonnull(strstr(h, "size_t f_workspace(size_t twinc_n, const int *n, ptrdiff_t n_ls);"));
    ck_assert_ptr_nonnull(strstr(h, "#define f_WORKSPACE_KIND TWINC_WS_BOUND"));
    ck_assert_ptr_nonnull(strstr(h, "#define g_WORKSPACE_KIND TWINC_WS_ESTIMATE"));
    ck_assert_ptr_nonnull(strstr(h, "#define h_WORKSPACE_KIND TWINC_WS_NONE"));
    free(c);
    free(h);
    done(fx);
}
END_TEST

START_TEST(test_tbr_recomputes_indices_and_inverts_counters)
{
    /* a lattice step: v[j] = fmax(x * v[j + 1], v[j]) */
    Fixture *fx = run("#include <math.h>\n#pragma aad\nvoid f(double x, int n, double v[n]) {\n"
                      "  for (int j = 0; j < n - 1; j++) v[j] = fmax(x * v[j + 1], v[j]); }\n");
    ck_assert_int_eq(fx->rc, 0);
    char *c = emitted(fx);
    /* the two loads are pushed (doubles), the fmax outcome is a byte, the
     * indices are recomputed from j, and j is restored by j -= 1 */
    ck_assert_ptr_null(strstr(c, "twinc_pushi(tp, (long long)"));
    ck_assert_ptr_nonnull(strstr(c, "j -= 1;"));
    ck_assert_ptr_nonnull(strstr(c, "twinc_pushb(tp, ("));
    const char *adj = strstr(c, "f__lane_b(double x");
    adj = adj ? strstr(adj + 1, "f__lane_b(double x") : NULL; /* the definition */
    ck_assert_ptr_nonnull(adj);
    int pushes = 0;
    for (const char *p = adj; (p = strstr(p, "twinc_push(tp,")) && p < strstr(adj, "/* reverse sweep"); p++)
        pushes++;
    ck_assert_int_eq(pushes, 1); /* v[j + 1], the factor of the product */
    free(c);
    done(fx);
}
END_TEST

START_TEST(test_batched_adjoint_array_scratch_is_heap_and_only_when_null)
{
    Fixture *fx = run("#pragma aad\ndouble f(int n, const double x[n]) { double s = 0;\n"
                      "  for (int i = 0; i < n; i++) s += x[i] * x[i]; return s; }\n");
    ck_assert_int_eq(fx->rc, 0);
    char *c = emitted(fx);
    ck_assert_ptr_null(strstr(c, "double twinc_z1[")); /* no VLA of the caller's length */
    ck_assert_ptr_nonnull(strstr(c, "if (!x_b) {"));
    ck_assert_ptr_nonnull(strstr(c, "twinc_z1 = (double *)malloc("));
    free(c);
    done(fx);
}
END_TEST

/* ---- pragma scan ---- */

START_TEST(test_pragma_binds_to_following_definition_with_clauses)
{
    Fixture *fx = run("#pragma aad passive(b) uniform(n)\n"
                      "double f(double a, double b, int n) { return a * b + n; }\n"
                      "double g(double a) { return a; }\n");
    ck_assert_int_eq(fx->rc, 0);
    ck_assert_int_eq(fx->u->funcs.n, 1);
    Func *f = fn(fx, "f");
    ck_assert(var(f, "b")->passive);
    ck_assert(!var(f, "a")->passive);
    ck_assert(var(f, "n")->uniform);
    done(fx);
}
END_TEST

START_TEST(test_pragma_in_skipped_region_is_ignored)
{
    Fixture *fx = run("#if 0\n#pragma aad\n#endif\ndouble g(double a) { return a; }\n"
                      "#pragma aad\ndouble f(double a) { return a; }\n");
    ck_assert_int_eq(fx->rc, 0);
    ck_assert_int_eq(fx->u->funcs.n, 1);
    fn(fx, "f");
    done(fx);
}
END_TEST

START_TEST(test_pragma_followed_by_declaration_is_error)
{
    Fixture *fx = run("#pragma aad\ndouble f(double a);\ndouble f(double a) { return a; }\n");
    ck_assert_int_eq(fx->rc, 1);
    ck_assert_ptr_nonnull(strstr(fx->msgs.text, "1:1: '#pragma aad' must be followed by a function definition, "
                                                "but is followed by a function declaration without a body"));
    done(fx);
}
END_TEST

START_TEST(test_pragma_unknown_clause_is_error)
{
    Fixture *fx = run("#pragma aad frobnicate(a)\ndouble f(double a) { return a; }\n");
    ck_assert_int_eq(fx->rc, 1);
    ck_assert_ptr_nonnull(strstr(fx->msgs.text, "1:13: unknown clause 'frobnicate'"));
    done(fx);
}
END_TEST

START_TEST(test_pragma_clause_names_unknown_parameter)
{
    Fixture *fx = run("#pragma aad passive(zz)\ndouble f(double a) { return a; }\n");
    ck_assert_int_eq(fx->rc, 1);
    ck_assert_ptr_nonnull(strstr(fx->msgs.text, "'zz' in clause 'passive' is not an input parameter of 'f'"));
    done(fx);
}
END_TEST

/* ---- lowering ---- */

START_TEST(test_lower_self_assignment_goes_through_temporary)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x, double y) { x = x * y; return x; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    /* t = x * y; x = t; ret = x */
    ck_assert_int_eq(count(f, OP_MUL), 1);
    ck_assert_int_eq(count(f, OP_COPY), 2);
    Stmt *mul = f->body.v[0];
    ck_assert_int_eq(mul->ins.op, OP_MUL);
    ck_assert_int_eq(mul->ins.dst->kind, V_TEMP);
    done(fx);
}
END_TEST

START_TEST(test_lower_logical_and_is_short_circuit_branch)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x, int k, int n) { if (k != 0 && n / k > 1) x = 2 * x; "
                      "return x; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    /* the division must sit inside the branch on k != 0 */
    ck_assert_int_eq(count_ifs(&f->body), 2);
    Stmt *first_if = NULL;
    for (int i = 0; i < f->body.n && !first_if; i++)
        if (f->body.v[i]->kind == ST_IF)
            first_if = f->body.v[i];
    ck_assert_ptr_nonnull(first_if);
    bool div_inside = false;
    for (int i = 0; i < first_if->then.n; i++)
        div_inside |= first_if->then.v[i]->kind == ST_INS && first_if->then.v[i]->ins.op == OP_DIV;
    ck_assert(div_inside);
    done(fx);
}
END_TEST

START_TEST(test_lower_ternary_becomes_branch)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x) { return x > 1 ? x * x : -x; }\n");
    ck_assert_int_eq(fx->rc, 0);
    ck_assert_int_eq(count_ifs(&fn(fx, "f")->body), 1);
    done(fx);
}
END_TEST

START_TEST(test_lower_early_return_guards_the_rest)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x) { if (x > 1) return x; x = x * 3; return x; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    Var *d = var(f, "done");
    ck_assert_int_eq(d->kind, V_FLAG);
    /* if (x > 1) {...}; t = !done; if (t) {...} */
    ck_assert_int_eq(count_ifs(&f->body), 2);
    ck_assert_int_eq(count(f, OP_NOT), 1);
    done(fx);
}
END_TEST

START_TEST(test_lower_int_to_double_conversion_is_explicit_and_constants_fold)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x, int n) { return n * x + 2; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    ck_assert_int_eq(count(f, OP_CONV), 1); /* (double)n; the literal 2 folds to 2.0 */
    Stmt *add = NULL;
    for (int i = 0; i < f->body.n; i++)
        if (f->body.v[i]->ins.op == OP_ADD)
            add = f->body.v[i];
    ck_assert_ptr_nonnull(add);
    ck_assert_int_eq(add->ins.b.kind, O_CONST);
    ck_assert(add->ins.b.ty == TY_DOUBLE && add->ins.b.d == 2.0);
    done(fx);
}
END_TEST

START_TEST(test_lower_compound_assignment_converts_like_c)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x, int n) { int k = n; k += x; return k * x; }\n");
    ck_assert_int_eq(fx->rc, 0);
    /* k = (int)((double)k + x) */
    ck_assert_int_eq(count(fn(fx, "f"), OP_CONV), 3);
    done(fx);
}
END_TEST

START_TEST(test_lower_binary_operator_from_macro_is_error)
{
    Fixture *fx = run("#define TIMES *\n#pragma aad\ndouble f(double x) { return x TIMES x; }\n");
    ck_assert_int_eq(fx->rc, 1);
    ck_assert_ptr_nonnull(strstr(fx->msgs.text, "3:29: operator comes from a macro expansion in 'f'"));
    done(fx);
}
END_TEST

START_TEST(test_lower_output_must_be_assigned_on_every_path)
{
    Fixture *fx = run("#pragma aad\nvoid f(double x, double *o) { if (x > 0) *o = x; }\n");
    ck_assert_int_eq(fx->rc, 1);
    ck_assert_ptr_nonnull(strstr(fx->msgs.text, "output '*o' of function 'f' is not assigned on every path"));
    done(fx);
}
END_TEST

START_TEST(test_lower_calls_a_function_defined_later)
{
    Fixture *fx = run("double g(double);\n#pragma aad\ndouble f(double x) { return g(x) * 2; }\n"
                      "#pragma aad\ndouble g(double x) { return x * x; }\n");
    ck_assert_int_eq(fx->rc, 0);
    ck_assert_int_eq(count(fn(fx, "f"), OP_CALL), 1);
    done(fx);
}
END_TEST

/* ---- activity ---- */

START_TEST(test_activity_passive_input_and_its_dependents_are_inactive)
{
    Fixture *fx = run("#pragma aad passive(z)\ndouble f(double x, double z) { double p = z * z; "
                      "double unused = x * 3; return x * p; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    ck_assert(var(f, "x")->active);
    ck_assert(!var(f, "z")->active);
    ck_assert(!var(f, "p")->active);      /* depends on passive z only */
    ck_assert(!var(f, "unused")->active); /* varied but not useful */
    ck_assert(var(f, "ret")->active);
    done(fx);
}
END_TEST

START_TEST(test_activity_integers_and_comparisons_carry_no_derivative)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x) { int k = x > 1; double y = k; return x * y; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    ck_assert(!var(f, "k")->active);
    ck_assert(!var(f, "y")->active);
    done(fx);
}
END_TEST

START_TEST(test_activity_derivative_into_passive_callee_parameter_is_error)
{
    Fixture *fx = run("#pragma aad passive(z)\ndouble g(double x, double z) { return x * z; }\n"
                      "#pragma aad\ndouble f(double x) { return g(x, x); }\n");
    ck_assert_int_eq(fx->rc, 1);
    ck_assert_ptr_nonnull(strstr(fx->msgs.text, "carries a derivative into parameter 'z' of 'g', which is "
                                                "declared passive"));
    done(fx);
}
END_TEST

/* ---- varying / uniform ---- */

START_TEST(test_varying_control_dependence_and_uniform_params)
{
    Fixture *fx = run("#pragma aad uniform(n, c)\ndouble f(double x, int n, double c) {\n"
                      "  double u = c * n; double v = 0; if (x > 1) v = 1; else v = 2;\n"
                      "  double w = 0; if (n > 2) w = c; return u + v * x + w; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    ck_assert(!var(f, "u")->varying); /* uniform inputs only */
    ck_assert(var(f, "v")->varying);  /* assigned under a branch on x */
    ck_assert(!var(f, "w")->varying); /* branch on uniform n */
    ck_assert(var(f, "ret")->varying);
    done(fx);
}
END_TEST

/* ---- to be recorded ---- */

START_TEST(test_tbr_saves_only_overwritten_needed_values)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x, double y) {\n"
                      "  double a = x * y;\n"      /* assigned once: never saved */
                      "  double s = x + y; s = s + 1;\n" /* overwritten but only summed: not needed */
                      "  double m = x; m = m * y; m = m * y;\n" /* needed and overwritten: saved */
                      "  return a + s + m; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    ck_assert(!var(f, "s")->needed);
    ck_assert(var(f, "m")->needed);
    ck_assert_int_eq(saves(f), 2); /* the two overwrites of m, not its initialisation */
    done(fx);
}
END_TEST

/* ---- emitters ---- */

START_TEST(test_emit_adjoint_of_product_uses_product_rule)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x, double y) { return x * y; }\n");
    ck_assert_int_eq(fx->rc, 0);
    char *c = emitted(fx);
    /* d(x*y) = y dx + x dy */
    ck_assert_ptr_nonnull(strstr(c, "x__b += y * twinc_t;"));
    ck_assert_ptr_nonnull(strstr(c, "y__b += x * twinc_t;"));
    /* tangent: the same rule forward */
    ck_assert_ptr_nonnull(strstr(c, "__d = y * x__d + x * y__d;"));
    ck_assert_ptr_nonnull(strstr(c, "#line 2 \"/tmp/twinc_unit_"));
    free(c);
    done(fx);
}
END_TEST

START_TEST(test_emit_fmax_adjoint_is_routed_not_multiplied)
{
    Fixture *fx = run("#include <math.h>\n#pragma aad\ndouble f(double v) { return sqrt(fmax(v, 0.0)); }\n");
    ck_assert_int_eq(fx->rc, 0);
    char *c = emitted(fx);
    /* the winner is recorded in the forward sweep and routes the adjoint */
    ck_assert_ptr_nonnull(strstr(c, "= (v > 0.0);"));
    ck_assert_ptr_nonnull(strstr(c, ") v__b += twinc_t;"));
    ck_assert_ptr_null(strstr(c, "v__b += 0"));
    free(c);
    done(fx);
}
END_TEST

START_TEST(test_emit_typed_abi_signature)
{
    Fixture *fx = run("#pragma aad passive(k)\ndouble f(double a, double k, int n, double *o) "
                      "{ *o = a * k; return a * n; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Buf c = {0}, h = {0};
    emit_unit(fx->u, "x.twin.c", "x.twin.h", &c, &h);
    ck_assert_ptr_nonnull(strstr(h.s,
        "int f_adjoint(size_t twinc_n, const double *a, ptrdiff_t a_ls, double *a_b, ptrdiff_t a_b_ls, "
        "const double *k, ptrdiff_t k_ls, const int *n, ptrdiff_t n_ls, double *o, ptrdiff_t o_ls, "
        "const double *o_b, ptrdiff_t o_b_ls, double *ret, ptrdiff_t ret_ls, const double *ret_b, "
        "ptrdiff_t ret_b_ls, twinc_workspace *twinc_ws);"));
    ck_assert_ptr_nonnull(strstr(c.s, "{\"k\", TWINC_T_DOUBLE, TWINC_ROLE_IN, 0, NULL, NULL},"));
    ck_assert_ptr_nonnull(strstr(c.s, "{\"o\", TWINC_T_DOUBLE, TWINC_ROLE_OUT, TWINC_PARAM_ACTIVE, NULL, NULL},"));
    buf_free(&c);
    buf_free(&h);
    done(fx);
}
END_TEST

START_TEST(test_dump_ir_marks_activity)
{
    Fixture *fx = run("#pragma aad passive(z)\ndouble f(double x, double z) { return x * z; }\n");
    ck_assert_int_eq(fx->rc, 0);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    ir_dump(fx->u, m, "tbr");
    fclose(m);
    ck_assert_ptr_nonnull(strstr(text, "func f(x: double active varying needed, z: double passive varying needed)"));
    free(text);
    done(fx);
}
END_TEST


/* ---- loops and arrays ---- */

static int count_loops(const Block *b)
{
    int n = 0;
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        if (s->kind == ST_LOOP)
            n += 1 + count_loops(&s->body);
        else if (s->kind == ST_IF)
            n += count_loops(&s->then) + count_loops(&s->els);
    }
    return n;
}

START_TEST(test_loops_lower_to_one_loop_form_with_flags)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x, int n) {\n"
                      "  for (int i = 0; i < n; i++) { if (x > 10) break; if (i == 1) continue; x = x * 1.5; }\n"
                      "  while (x > 1) x = x / 2;\n"
                      "  do { x = x + 1; } while (x < 0);\n"
                      "  return x; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    ck_assert_int_eq(count_loops(&f->body), 3);
    ck_assert_int_eq(var(f, "brk")->kind, V_FLAG);
    ck_assert_int_eq(var(f, "cont")->kind, V_FLAG);
    ck_assert(f->uses_tape);
    done(fx);
}
END_TEST

START_TEST(test_arrays_parameters_lengths_and_roles)
{
    Fixture *fx = run("#pragma aad passive(z)\n"
                      "void f(double a, int n, const double z[n], double v[n + 1]) {\n"
                      "  double w[4];\n"
                      "  for (int i = 0; i < n; i++) { w[i % 4] = z[i]; v[i + 1] = a * v[i] + w[i % 4]; } }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    Var *z = var(f, "z"), *v = var(f, "v"), *w = var(f, "w");
    ck_assert(z->is_array && !z->inout && z->passive);
    ck_assert(v->is_array && v->inout && v->active);
    ck_assert_int_eq(v->len.n, 3); /* n + 1 */
    ck_assert_str_eq(w->len.v[0], "4");
    ck_assert(!w->active);         /* only passive values are stored in w */
    ck_assert_int_eq(count(f, OP_STORE), 2);
    ck_assert_int_eq(count(f, OP_LOAD), 3);
    done(fx);
}
END_TEST

START_TEST(test_tbr_saves_needed_values_overwritten_in_loops)
{
    Fixture *fx = run("#pragma aad\ndouble f(double x, int n) { double p = 1;\n"
                      "  for (int i = 0; i < n; i++) { double t = x * p; p = t * t; } return p; }\n");
    ck_assert_int_eq(fx->rc, 0);
    Func *f = fn(fx, "f");
    /* p is read by a product and rewritten every iteration: saved; t is
     * recomputed from x and the restored p, never saved */
    ck_assert(var(f, "p")->needed);
    ck_assert_int_eq(saves(f), 1);
    char *c = emitted(fx);
    ck_assert_ptr_nonnull(strstr(c, "twinc_push(tp, p);"));
    ck_assert_ptr_nonnull(strstr(c, "twinc_pushi(tp, twinc_n"));
    ck_assert_ptr_nonnull(strstr(c, "= twinc_popi(tp);"));
    free(c);
    done(fx);
}
END_TEST

START_TEST(test_array_without_length_is_error)
{
    Fixture *fx = run("#pragma aad\ndouble f(const double *x) { return x[0]; }\n");
    ck_assert_int_eq(fx->rc, 1);
    ck_assert_ptr_nonnull(strstr(fx->msgs.text, "input array 'x' of 'f' needs its length"));
    done(fx);
}
END_TEST

Suite *make_gen_suite(void)
{
    Suite *s = suite_create("generator");
    TCase *t = tcase_create("pragma");
    tcase_add_test(t, test_pragma_binds_to_following_definition_with_clauses);
    tcase_add_test(t, test_pragma_in_skipped_region_is_ignored);
    tcase_add_test(t, test_pragma_followed_by_declaration_is_error);
    tcase_add_test(t, test_pragma_unknown_clause_is_error);
    tcase_add_test(t, test_pragma_clause_names_unknown_parameter);
    suite_add_tcase(s, t);
    t = tcase_create("lower");
    tcase_add_test(t, test_lower_self_assignment_goes_through_temporary);
    tcase_add_test(t, test_lower_logical_and_is_short_circuit_branch);
    tcase_add_test(t, test_lower_ternary_becomes_branch);
    tcase_add_test(t, test_lower_early_return_guards_the_rest);
    tcase_add_test(t, test_lower_int_to_double_conversion_is_explicit_and_constants_fold);
    tcase_add_test(t, test_lower_compound_assignment_converts_like_c);
    tcase_add_test(t, test_lower_binary_operator_from_macro_is_error);
    tcase_add_test(t, test_lower_output_must_be_assigned_on_every_path);
    tcase_add_test(t, test_lower_calls_a_function_defined_later);
    suite_add_tcase(s, t);
    t = tcase_create("analyses");
    tcase_add_test(t, test_activity_passive_input_and_its_dependents_are_inactive);
    tcase_add_test(t, test_activity_integers_and_comparisons_carry_no_derivative);
    tcase_add_test(t, test_activity_derivative_into_passive_callee_parameter_is_error);
    tcase_add_test(t, test_varying_control_dependence_and_uniform_params);
    tcase_add_test(t, test_tbr_saves_only_overwritten_needed_values);
    suite_add_tcase(s, t);
    t = tcase_create("emit");
    tcase_add_test(t, test_emit_adjoint_of_product_uses_product_rule);
    tcase_add_test(t, test_emit_fmax_adjoint_is_routed_not_multiplied);
    tcase_add_test(t, test_emit_typed_abi_signature);
    tcase_add_test(t, test_dump_ir_marks_activity);
    suite_add_tcase(s, t);
    t = tcase_create("loops");
    tcase_add_test(t, test_loops_lower_to_one_loop_form_with_flags);
    tcase_add_test(t, test_arrays_parameters_lengths_and_roles);
    tcase_add_test(t, test_tbr_saves_needed_values_overwritten_in_loops);
    tcase_add_test(t, test_tape_aligns_an_odd_workspace_and_grows_past_it_once);
    tcase_add_test(t, test_workspace_is_stated_for_loops_as_bound_or_estimate);
    tcase_add_test(t, test_tbr_recomputes_indices_and_inverts_counters);
    tcase_add_test(t, test_batched_adjoint_array_scratch_is_heap_and_only_when_null);
    tcase_add_test(t, test_array_without_length_is_error);
    suite_add_tcase(s, t);
    return s;
}
