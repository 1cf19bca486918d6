/*
 * emit_registry.c — the twin ABI around the per-lane bodies: batched typed
 * twins, generic entry points, the registry and the header.
 *
 * Typed ABI, for `double f(double a, int k, double *o)`:
 *   every parameter is (pointer, lane stride in elements; 0 = shared by all
 *   lanes), followed in the tangent and adjoint twins by its derivative
 *   companion when it has one: an active input gets a direction (a_d) or an
 *   accumulator (a_b, which the adjoint ADDS to, summing over lanes when its
 *   lane stride is 0); every double output and the return value get their
 *   tangent (o_d) or adjoint seed (o_b).  The return value comes last, as an
 *   output named like the function's result variable ("ret").
 *   Input values must not be NULL when n > 0; any other pointer may be NULL
 *   (not wanted, or zero).  Parameters declared uniform(...) must be given lane
 *   stride 0 (else TWINC_EUNIFORM).
 * The generic entry points take the same pointers as twinc_arg arrays in the
 * registry's parameter order (see runtime/twinc.h).
 */
#include <ctype.h>
#include <string.h>

#include "twinc_gen.h"

static bool is_active_in(const Var *p) { return p->kind == V_PARAM && p->ty == TY_DOUBLE && !p->passive; }

/* The output "parameters" of the typed ABI: outputs in C order, then ret. */
static const char *ret_name(const Func *f) { return f->retvar ? f->retvar->name : NULL; }

/* which: 0 primal, 1 tangent, 2 adjoint */
void em_typed_params(Func *f, int which, Buf *b)
{
    buf_puts(b, "size_t twinc_n");
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind == V_OUT) {
            buf_printf(b, ", double *%s, ptrdiff_t %s_ls", p->name, p->name);
            if (which == 1)
                buf_printf(b, ", double *%s_d, ptrdiff_t %s_d_ls", p->name, p->name);
            if (which == 2)
                buf_printf(b, ", const double *%s_b, ptrdiff_t %s_b_ls", p->name, p->name);
            continue;
        }
        if (p->is_array) {
            const char *c = p->inout ? "" : "const ";
            buf_printf(b, ", %sdouble *%s, ptrdiff_t %s_ls, ptrdiff_t %s_es", c, p->name, p->name, p->name);
            if (is_active_in(p) && which == 1)
                buf_printf(b, ", %sdouble *%s_d, ptrdiff_t %s_d_ls, ptrdiff_t %s_d_es", c, p->name, p->name, p->name);
            if (is_active_in(p) && which == 2)
                buf_printf(b, ", double *%s_b, ptrdiff_t %s_b_ls, ptrdiff_t %s_b_es", p->name, p->name, p->name);
            continue;
        }
        buf_printf(b, ", const %s *%s, ptrdiff_t %s_ls", ty_c(p->ty), p->name, p->name);
        if (is_active_in(p) && which == 1)
            buf_printf(b, ", const double *%s_d, ptrdiff_t %s_d_ls", p->name, p->name);
        if (is_active_in(p) && which == 2)
            buf_printf(b, ", double *%s_b, ptrdiff_t %s_b_ls", p->name, p->name);
    }
    if (f->retvar) {
        const char *r = ret_name(f);
        buf_printf(b, ", double *%s, ptrdiff_t %s_ls", r, r);
        if (which == 1)
            buf_printf(b, ", double *%s_d, ptrdiff_t %s_d_ls", r, r);
        if (which == 2)
            buf_printf(b, ", const double *%s_b, ptrdiff_t %s_b_ls", r, r);
    }
    buf_puts(b, ", twinc_workspace *twinc_ws");
}

static const char *const twin_suffix[] = {"primal", "tangent", "adjoint"};

static void typed_signature(Func *f, int which, Buf *b)
{
    buf_printf(b, "int %s_%s(", f->name, twin_suffix[which]);
    em_typed_params(f, which, b);
    buf_puts(b, ")");
}

#define AT(name) arena_printf(a, "%s[twinc_i * %s_ls]", name, name)

static void batched(Emit *e, int which)
{
    Func *f = e->f;
    Arena *a = e->u->arena;
    Buf sig = {0};
    typed_signature(f, which, &sig);
    em_line(e, "%s", sig.s);
    buf_free(&sig);
    em_line(e, "{");
    e->indent++;
    bool tape = which == 2 && f->uses_tape;
    if (!tape)
        em_line(e, "(void)twinc_ws;");
    em_line(e, "if (twinc_n == 0)");
    em_line(e, "    return TWINC_OK;");
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind != V_PARAM)
            continue;
        em_line(e, "if (!%s)", p->name);
        em_line(e, "    return TWINC_EINVAL;");
        if (p->uniform) {
            em_line(e, "if (twinc_n > 1 && %s_ls != 0)", p->name);
            em_line(e, "    return TWINC_EUNIFORM;");
        }
    }
    /* an in/out array sharing memory with another array argument would make
     * the derivatives wrong (the twin keeps one adjoint per argument): the
     * tangent and adjoint refuse it (the primal is right either way) */
    for (int i = 0; which > 0 && i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (!p->is_array || !p->inout)
            continue;
        for (int k = 0; k < f->params.n; k++) {
            Var *q = f->params.v[k];
            if (k == i || !q->is_array || (q->inout && k < i))
                continue;
            em_line(e, "{");
            e->indent++;
            em_line(e, "uintptr_t twinc_lo[2] = {UINTPTR_MAX, UINTPTR_MAX}, twinc_hi[2] = {0, 0};");
            em_line(e, "for (ptrdiff_t twinc_i = 0; twinc_i < (ptrdiff_t)twinc_n; twinc_i++) {");
            em_line(e, "    twinc_span(%s + twinc_i * %s_ls, %s_es, %s, &twinc_lo[0], &twinc_hi[0]);", p->name, p->name,
                    p->name, em_len(e, p, 1));
            em_line(e, "    twinc_span(%s + twinc_i * %s_ls, %s_es, %s, &twinc_lo[1], &twinc_hi[1]);", q->name, q->name,
                    q->name, em_len(e, q, 1));
            em_line(e, "}");
            em_line(e, "if (twinc_lo[0] < twinc_hi[1] && twinc_lo[1] < twinc_hi[0])");
            em_line(e, "    return TWINC_EINVAL; /* '%s' shares memory with '%s' */", p->name, q->name);
            e->indent--;
            em_line(e, "}");
        }
    }
    /* an active array whose companion is NULL (not wanted / zero) gets
     * scratch of the longest lane's length, from the heap, once per call —
     * never a VLA of the caller's length on the stack */
    bool scratch = false;
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (!p->is_array || !is_active_in(p) || which == 0 || (which == 1 && !p->inout))
            continue;
        const char *c = arena_printf(a, "%s_%s", p->name, which == 1 ? "d" : "b");
        em_line(e, "double *twinc_z%d = NULL;", i);
        em_line(e, "if (!%s) {", c);
        e->indent++;
        em_line(e, "ptrdiff_t twinc_len = 1;");
        em_line(e, "for (ptrdiff_t twinc_i = 0; twinc_i < (ptrdiff_t)twinc_n; twinc_i++)");
        em_line(e, "    if (%s > twinc_len)", em_len(e, p, 1));
        em_line(e, "        twinc_len = %s;", em_len(e, p, 1));
        em_line(e, "twinc_z%d = (double *)malloc((size_t)twinc_len * sizeof(double));", i);
        em_line(e, "if (!twinc_z%d) {", i);
        for (int k = 0; k < i; k++) {
            Var *q = f->params.v[k];
            if (q->is_array && is_active_in(q) && (which == 2 || q->inout))
                em_line(e, "    free(twinc_z%d);", k);
        }
        em_line(e, "    return TWINC_ENOMEM;");
        em_line(e, "}");
        e->indent--;
        em_line(e, "}");
        scratch = true;
    }
    if (tape) {
        /* no workspace: ask for the stated size once (the tape grows by
         * doubling only if an estimate falls short) */
        Buf ws = {0};
        buf_printf(&ws, "%s_workspace(twinc_n", f->name);
        for (int i = 0; i < f->params.n; i++) {
            Var *p = f->params.v[i];
            if (p->kind == V_PARAM && !p->is_array && ty_is_int(p->ty))
                buf_printf(&ws, ", %s, %s_ls", p->name, p->name);
        }
        buf_puts(&ws, ")");
        em_line(e, "twinc_workspace twinc_own = {NULL, 0};");
        em_line(e, "if (!twinc_ws || !twinc_ws->base) {");
        em_line(e, "    twinc_own.bytes = %s;", ws.s);
        em_line(e, "    twinc_own.base = malloc(twinc_own.bytes ? twinc_own.bytes : 1);");
        em_line(e, "    if (!twinc_own.base) {");
        for (int i = 0; i < f->params.n; i++) {
            Var *p = f->params.v[i];
            if (p->is_array && is_active_in(p))
                em_line(e, "        free(twinc_z%d);", i);
        }
        em_line(e, "        return TWINC_ENOMEM;");
        em_line(e, "    }");
        em_line(e, "    twinc_ws = &twinc_own;");
        em_line(e, "}");
        buf_free(&ws);
        em_line(e, "twinc_tape twinc_tp;");
        em_line(e, "twinc_tape_init(&twinc_tp, twinc_ws);");
    }
    em_line(e, "for (ptrdiff_t twinc_i = %s; twinc_i < (ptrdiff_t)twinc_n; twinc_i++) {", simd_start(e, which));
    e->indent++;
    Buf call = {0};
    buf_printf(&call, "%s__lane%s(", f->name, which == 0 ? "" : which == 1 ? "_d" : "_b");
    int k = 0;
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (k++)
            buf_puts(&call, ", ");
        if (p->kind == V_OUT) {
            em_line(e, "double twinc_o%d = 0.0;", i);
            buf_printf(&call, "&twinc_o%d", i);
            if (which == 1) {
                em_line(e, "double twinc_od%d = 0.0;", i);
                buf_printf(&call, ", &twinc_od%d", i);
            }
            if (which == 2)
                buf_printf(&call, ", %s_b ? %s : 0.0", p->name, AT(arena_printf(a, "%s_b", p->name)));
            continue;
        }
        if (p->is_array) {
            /* arrays: this lane's base and the element stride; a NULL companion
               reads zeros (element stride 0) or accumulates into scratch */
            buf_printf(&call, "%s + twinc_i * %s_ls, %s_es", p->name, p->name, p->name);
            if (is_active_in(p) && which == 1) {
                if (p->inout) {
                    em_line(e, "if (twinc_z%d && %s > 0)", i, em_len(e, p, 1));
                    em_line(e, "    memset(twinc_z%d, 0, (size_t)%s * sizeof(double));", i, em_len(e, p, 1));
                    buf_printf(&call, ", %s_d ? %s_d + twinc_i * %s_d_ls : twinc_z%d, %s_d ? %s_d_es : 1", p->name,
                               p->name, p->name, i, p->name, p->name);
                } else {
                    buf_printf(&call, ", %s_d ? %s_d + twinc_i * %s_d_ls : &twinc_zero, %s_d ? %s_d_es : 0", p->name,
                               p->name, p->name, p->name, p->name);
                }
            }
            if (is_active_in(p) && which == 2) {
                em_line(e, "if (twinc_z%d && %s > 0)", i, em_len(e, p, 1));
                em_line(e, "    memset(twinc_z%d, 0, (size_t)%s * sizeof(double));", i, em_len(e, p, 1));
                buf_printf(&call, ", %s_b ? %s_b + twinc_i * %s_b_ls : twinc_z%d, %s_b ? %s_b_es : 1", p->name,
                           p->name, p->name, i, p->name, p->name);
            }
            continue;
        }
        buf_puts(&call, AT(p->name));
        if (is_active_in(p) && which == 1)
            buf_printf(&call, ", %s_d ? %s : 0.0", p->name, AT(arena_printf(a, "%s_d", p->name)));
        if (is_active_in(p) && which == 2) {
            em_line(e, "double twinc_b%d = 0.0;", i);
            buf_printf(&call, ", &twinc_b%d", i);
        }
    }
    const char *r = ret_name(f);
    if (f->retvar && which == 1) {
        em_line(e, "double twinc_rd = 0.0;");
        buf_printf(&call, "%s&twinc_rd", k++ ? ", " : "");
    }
    if (f->retvar && which == 2)
        buf_printf(&call, "%s%s_b ? %s : 0.0", k++ ? ", " : "", r, AT(arena_printf(a, "%s_b", r)));
    if (tape)
        buf_printf(&call, "%s&twinc_tp", k++ ? ", " : "");
    buf_puts(&call, ")");
    if (f->retvar)
        em_line(e, "const double twinc_r = %s;", call.s);
    else
        em_line(e, "%s;", call.s);
    buf_free(&call);
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind == V_OUT) {
            em_line(e, "if (%s)", p->name);
            em_line(e, "    %s = twinc_o%d;", AT(p->name), i);
            if (which == 1) {
                em_line(e, "if (%s_d)", p->name);
                em_line(e, "    %s = twinc_od%d;", AT(arena_printf(a, "%s_d", p->name)), i);
            }
        } else if (is_active_in(p) && which == 2 && !p->is_array) {
            em_line(e, "if (%s_b)", p->name);
            em_line(e, "    %s += twinc_b%d;", AT(arena_printf(a, "%s_b", p->name)), i);
        }
    }
    if (f->retvar) {
        em_line(e, "if (%s)", r);
        em_line(e, "    %s = twinc_r;", AT(r));
        if (which == 1) {
            em_line(e, "if (%s_d)", r);
            em_line(e, "    %s = twinc_rd;", AT(arena_printf(a, "%s_d", r)));
        }
    }
    e->indent--;
    em_line(e, "}");
    for (int i = 0; scratch && i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->is_array && is_active_in(p) && (which == 2 || p->inout))
            em_line(e, "free(twinc_z%d);", i);
    }
    if (tape) {
        em_line(e, "const int twinc_err = twinc_tp.err;");
        em_line(e, "#ifdef TWINC_TAPE_REPORT /* tests: what the call used against what was stated */");
        em_line(e, "TWINC_TAPE_REPORT(\"%s\", %d, twinc_ws == &twinc_own ? NULL : twinc_ws, twinc_tp.high, twinc_tp.heap);",
                f->name, ws_kind(e, f));
        em_line(e, "#endif");
        em_line(e, "twinc_tape_free(&twinc_tp, twinc_ws);");
        em_line(e, "free(twinc_own.base);");
        em_line(e, "return twinc_err ? TWINC_ENOMEM : TWINC_OK;");
    } else {
        em_line(e, "return TWINC_OK;");
    }
    e->indent--;
    em_line(e, "}");
}

/* Generic entry point: unpack twinc_arg arrays into the typed twin. */
static void thunk(Emit *e, int which)
{
    Func *f = e->f;
    static const char *const tsuffix[] = {"gp", "gt", "ga"};
    if (which == 0)
        em_line(e, "static int %s__gp(size_t n, const twinc_arg *val, twinc_workspace *ws)", f->name);
    else
        em_line(e, "static int %s__%s(size_t n, const twinc_arg *val, const twinc_arg *%s, twinc_workspace *ws)",
                f->name, tsuffix[which], which == 1 ? "dot" : "bar");
    em_line(e, "{");
    e->indent++;
    em_line(e, "if (n == 0)");
    em_line(e, "    return TWINC_OK;");
    Buf b = {0};
    buf_printf(&b, "return %s_%s(n", f->name, twin_suffix[which]);
    const char *comp = which == 1 ? "dot" : "bar";
    int np = f->params.n + (f->retvar ? 1 : 0);
    for (int i = 0; i < np; i++) {
        Var *p = i < f->params.n ? f->params.v[i] : f->retvar;
        bool out = p->kind != V_PARAM || p->inout;
        const char *es = p->is_array ? arena_printf(e->u->arena, ", val[%d].es", i) : "";
        buf_printf(&b, ", (%s%s *)val[%d].p, val[%d].ls%s", out ? "" : "const ", ty_c(p->ty), i, i, es);
        if (which && (out || is_active_in(p))) {
            bool cst = !p->inout && ((which == 1 && !out) || (which == 2 && out));
            buf_printf(&b, ", (%sdouble *)%s[%d].p, %s[%d].ls", cst ? "const " : "", comp, i, comp, i);
            if (p->is_array)
                buf_printf(&b, ", %s[%d].es", comp, i);
        }
    }
    buf_puts(&b, ", ws);");
    em_line(e, "%s", b.s);
    buf_free(&b);
    e->indent--;
    em_line(e, "}");
}

/* The user's own function, lane by lane: the registry's reference.  Arrays
 * are copied to contiguous scratch (the user's function takes plain C arrays)
 * and in/out arrays copied back. */
static void reference(Emit *e)
{
    Func *f = e->f;
    if (!f->external)
        return;
    Buf proto = {0};
    buf_printf(&proto, "extern %s %s(", ty_c(f->ret), f->name);
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        const char *t = p->kind == V_OUT || p->inout ? "double *" : p->is_array ? "const double *" : ty_c(p->ty);
        buf_printf(&proto, "%s%s", i ? ", " : "", t);
    }
    buf_puts(&proto, f->params.n ? ")" : "void)");
    em_line(e, "%s __attribute__((weak));", proto.s);
    buf_free(&proto);
    em_line(e, "static int %s__gr(size_t n, const twinc_arg *val, twinc_workspace *ws)", f->name);
    em_line(e, "{");
    e->indent++;
    em_line(e, "(void)ws;");
    em_line(e, "if (!%s)", f->name);
    em_line(e, "    return TWINC_ENOREF;");
    em_line(e, "if (n == 0)");
    em_line(e, "    return TWINC_OK;");
    em_line(e, "for (ptrdiff_t lane = 0; lane < (ptrdiff_t)n; lane++) {");
    e->indent++;
    Buf call = {0};
    buf_printf(&call, "%s(", f->name);
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (i)
            buf_puts(&call, ", ");
        if (p->kind == V_OUT) {
            em_line(e, "double o%d = 0.0;", i);
            buf_printf(&call, "&o%d", i);
        } else if (p->is_array) {
            const char *len = em_len(e, p, 2);
            em_line(e, "const ptrdiff_t n%d = %s;", i, len);
            /* the heap, not a VLA of the caller's length */
            em_line(e, "double *a%d = (double *)malloc((size_t)(n%d > 0 ? n%d : 1) * sizeof(double));", i, i, i);
            em_line(e, "if (!a%d) {", i);
            for (int k = 0; k < i; k++)
                if (((Var *)f->params.v[k])->is_array)
                    em_line(e, "    free(a%d);", k);
            em_line(e, "    return TWINC_ENOMEM;");
            em_line(e, "}");
            em_line(e, "for (ptrdiff_t k = 0; k < n%d; k++)", i);
            em_line(e, "    a%d[k] = ((const double *)val[%d].p)[lane * val[%d].ls + k * val[%d].es];", i, i, i, i);
            buf_printf(&call, "a%d", i);
        } else {
            buf_printf(&call, "((const %s *)val[%d].p)[lane * val[%d].ls]", ty_c(p->ty), i, i);
        }
    }
    buf_puts(&call, ")");
    if (f->retvar)
        em_line(e, "const double r = %s;", call.s);
    else
        em_line(e, "%s;", call.s);
    buf_free(&call);
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind == V_OUT) {
            em_line(e, "if (val[%d].p)", i);
            em_line(e, "    ((double *)val[%d].p)[lane * val[%d].ls] = o%d;", i, i, i);
        } else if (p->inout) {
            em_line(e, "for (ptrdiff_t k = 0; k < n%d; k++)", i);
            em_line(e, "    ((double *)val[%d].p)[lane * val[%d].ls + k * val[%d].es] = a%d[k];", i, i, i, i);
        }
    }
    for (int i = 0; i < f->params.n; i++)
        if (((Var *)f->params.v[i])->is_array)
            em_line(e, "free(a%d);", i);
    if (f->retvar) {
        int ri = f->params.n;
        em_line(e, "if (val[%d].p)", ri);
        em_line(e, "    ((double *)val[%d].p)[lane * val[%d].ls] = r;", ri, ri);
    }
    e->indent--;
    em_line(e, "}");
    em_line(e, "return TWINC_OK;");
    e->indent--;
    em_line(e, "}");
}

/* Array lengths for the registry. */
static void length_fns(Emit *e)
{
    Func *f = e->f;
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (!p->is_array)
            continue;
        em_line(e, "static ptrdiff_t %s__len_%s(const twinc_arg *val, ptrdiff_t lane)", f->name, p->name);
        em_line(e, "{");
        em_line(e, "    (void)val;");
        em_line(e, "    (void)lane;");
        em_line(e, "    return (ptrdiff_t)%s;", em_len(e, p, 2));
        em_line(e, "}");
    }
}

void emit_batched(Emit *e)
{
    for (int w = 0; w < 3; w++) {
        em_blank(e);
        batched(e, w);
    }
    for (int w = 0; w < 3; w++) {
        em_blank(e);
        thunk(e, w);
    }
    em_blank(e);
    reference(e);
    length_fns(e);
    if (e->f->uses_tape) {
        em_blank(e);
        emit_ws(e);
    }
}

static const char *c_string(Arena *a, const char *s)
{
    Buf b = {0};
    buf_puts(&b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '\\' || *p == '"')
            buf_puts(&b, "\\");
        char c[2] = {*p, 0};
        buf_puts(&b, c);
    }
    buf_puts(&b, "\"");
    const char *r = arena_strdup(a, b.s);
    buf_free(&b);
    return r;
}

void emit_registry(Emit *e)
{
    Unit *u = e->u;
    Arena *a = u->arena;
    em_blank(e);
    em_line(e, "/* ---- registry ---- */");
    for (int i = 0; i < u->funcs.n; i++) {
        Func *f = u->funcs.v[i];
        em_line(e, "static const twinc_param %s__params[] = {", f->name);
        e->indent++;
        e->f = f;
        for (int k = 0; k < f->params.n; k++) {
            Var *p = f->params.v[k];
            const char *flags = is_active_in(p) || p->kind == V_OUT ? "TWINC_PARAM_ACTIVE" : "0";
            if (p->uniform)
                flags = arena_printf(a, "%s | TWINC_PARAM_UNIFORM", flags);
            const char *role = p->kind == V_OUT ? "TWINC_ROLE_OUT" : p->inout ? "TWINC_ROLE_INOUT" : "TWINC_ROLE_IN";
            if (p->is_array) {
                Buf lb = {0};
                for (int t = 0; t < p->len.n; t++)
                    buf_printf(&lb, "%s%s", t ? " " : "", (const char *)p->len.v[t]);
                em_line(e, "{\"%s\", %s, %s, %s, %s, %s__len_%s},", p->name, ty_abi_name(p->ty), role, flags,
                        c_string(a, lb.s), f->name, p->name);
                buf_free(&lb);
            } else {
                em_line(e, "{\"%s\", %s, %s, %s, NULL, NULL},", p->name, ty_abi_name(p->ty), role, flags);
            }
        }
        if (f->retvar)
            em_line(e, "{\"return\", TWINC_T_DOUBLE, TWINC_ROLE_RET, TWINC_PARAM_ACTIVE, NULL, NULL},");
        if (!f->params.n && !f->retvar)
            em_line(e, "{NULL, 0, 0, 0, NULL, NULL},");
        e->indent--;
        em_line(e, "};");
    }
    em_line(e, "static const twinc_kernel twinc_kernels[] = {");
    e->indent++;
    for (int i = 0; i < u->funcs.n; i++) {
        Func *f = u->funcs.v[i];
        em_line(e, "{\"%s\", %s, %d, %d, %s__params, %s__gp, %s__gt, %s__ga, %s, %s, %s},", f->name,
                c_string(a, u->file), f->loc.line, f->params.n + (f->retvar ? 1 : 0), f->name, f->name,
                f->name, f->name, f->external ? arena_printf(a, "%s__gr", f->name) : "NULL",
                f->uses_tape ? arena_printf(a, "%s__ws", f->name) : "NULL",
                f->check_at ? c_string(a, f->check_at) : "NULL");
    }
    e->indent--;
    em_line(e, "};");
    em_line(e, "static const twinc_registry twinc_registry_unit = {TWINC_ABI_VERSION, %s, %d, twinc_kernels};",
            c_string(a, u->file), u->funcs.n);
    em_line(e, "/* every twin file adds its registry to this section; twinc_registries()");
    em_line(e, "   returns all of them in the library or program they are linked into */");
    em_line(e, "static const twinc_registry *const twinc_registry_entry");
    em_line(e, "    __attribute__((used, section(TWINC_REGISTRY_SECTION))) = &twinc_registry_unit;");
    em_line(e, "extern const twinc_registry *const __start_twinc_reg[] __attribute__((weak, visibility(\"hidden\")));");
    em_line(e, "extern const twinc_registry *const __stop_twinc_reg[] __attribute__((weak, visibility(\"hidden\")));");
    em_line(e, "__attribute__((weak, visibility(\"default\"))) const twinc_registry *const *twinc_registries(size_t *count)");
    em_line(e, "{");
    em_line(e, "    *count = (size_t)(__stop_twinc_reg - __start_twinc_reg);");
    em_line(e, "    return __start_twinc_reg;");
    em_line(e, "}");
}

void emit_header(Unit *u, Buf *h, const char *h_path)
{
    const char *base = strrchr(h_path, '/') ? strrchr(h_path, '/') + 1 : h_path;
    char guard[256];
    size_t n = 0;
    for (const char *p = base; *p && n + 2 < sizeof guard; p++)
        guard[n++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    guard[n] = '\0';
    buf_printf(h, "/* Generated by twinc %s from %s. Do not edit: edit the source and regenerate. */\n",
               TWINC_VERSION, u->file);
    buf_printf(h, "#ifndef TWINC_%s\n#define TWINC_%s\n\n#include <stddef.h>\n#include \"twinc.h\"\n\n", guard, guard);
    buf_puts(h, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
    for (int i = 0; i < u->funcs.n; i++) {
        Func *f = u->funcs.v[i];
        buf_printf(h, "\n/* %s (%s:%d) */\n", f->name, u->file, f->loc.line);
        for (int w = 0; w < 3; w++) {
            typed_signature(f, w, h);
            buf_puts(h, ";\n");
        }
        if (f->uses_tape) {
            Emit e = {.u = u, .f = f};
            int kind = ws_kind(&e, f);
            buf_printf(h, "/* bytes of workspace %s_adjoint records for n lanes: %s */\n", f->name,
                       kind == 1 ? "a bound, from the integer arguments"
                                 : "an estimate (a trip count depends on the data); the tape grows if it falls short");
            buf_printf(h, "#define %s_WORKSPACE_KIND %s\n", f->name, kind == 1 ? "TWINC_WS_BOUND" : "TWINC_WS_ESTIMATE");
            ws_signature(&e, f, h);
            buf_puts(h, ";\n");
        } else {
            buf_printf(h, "#define %s_WORKSPACE_KIND TWINC_WS_NONE\n", f->name);
        }
    }
    buf_puts(h, "\nconst twinc_registry *const *twinc_registries(size_t *count);\n");
    buf_puts(h, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
}
