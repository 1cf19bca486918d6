/*
 * emit.c — what every emitter shares, and the order the twin file is written.
 *
 * A twin file holds, for each kernel f of the unit:
 *   f__lane, f__lane_d, f__lane_b   per-lane primal, tangent and adjoint bodies
 *                                   (static inline; calls between kernels call
 *                                   these, so a callee's twin is reused, not
 *                                   re-derived)
 *   f_primal, f_tangent, f_adjoint  the batched twins of the typed ABI
 *   f__gp, f__gt, f__ga, f__gr      generic entry points for the registry
 * and one registry for the unit.  Lane bodies carry #line directives back to
 * the user's source so that a compiler message or a debugger step lands on
 * the user's line; scaffolding carries #line back to the twin file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twinc_gen.h"

void em_line(Emit *e, const char *fmt, ...)
{
    char tmp[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    for (int i = 0; i < e->indent; i++)
        buf_puts(e->b, "    ");
    buf_puts(e->b, tmp);
    buf_puts(e->b, "\n");
    if (e->last_line > 0)
        e->last_line++;
}

void em_blank(Emit *e)
{
    buf_puts(e->b, "\n");
    if (e->last_line > 0)
        e->last_line++;
}

static void put_path(Buf *b, const char *path)
{
    buf_puts(b, "\"");
    for (const char *p = path; *p; p++) {
        if (*p == '\\' || *p == '"')
            buf_puts(b, "\\");
        char c[2] = {*p, 0};
        buf_puts(b, c);
    }
    buf_puts(b, "\"");
}

void em_srcline(Emit *e, SrcLoc loc)
{
    if (loc.line <= 0 || e->last_line == loc.line)
        return;
    buf_printf(e->b, "#line %d ", loc.line);
    put_path(e->b, loc.file ? loc.file : e->u->file);
    buf_puts(e->b, "\n");
    e->last_line = loc.line;
}

void em_twinline(Emit *e)
{
    if (e->last_line == 0)
        return;
    buf_printf(e->b, "#line %d ", e->b->line + 2);
    put_path(e->b, e->twin_path);
    buf_puts(e->b, "\n");
    e->last_line = 0;
}

const char *em_opnd(Emit *e, const Opnd *o) { return opnd_c(e->u->arena, o); }

/* Substitute %0, %1 (arguments) and %r (result) in a builtin pattern. */
const char *em_subst(Emit *e, const char *pattern, const Ins *ins)
{
    Buf b = {0};
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && (p[1] == '0' || p[1] == '1')) {
            buf_puts(&b, em_opnd(e, &ins->args[p[1] - '0']));
            p++;
        } else if (p[0] == '%' && p[1] == 'r') {
            buf_puts(&b, ins->dst->name);
            p++;
        } else {
            char c[2] = {*p, 0};
            buf_puts(&b, c);
        }
    }
    const char *r = arena_strdup(e->u->arena, b.s ? b.s : "");
    buf_free(&b);
    return r;
}

const char *em_value_expr(Emit *e, const Ins *in)
{
    Arena *a = e->u->arena;
    switch (in->op) {
    case OP_COPY:
        return em_opnd(e, &in->a);
    case OP_CONV:
        return arena_printf(a, "(%s)%s", ty_c(in->dst->ty), em_opnd(e, &in->a));
    case OP_NEG:
    case OP_NOT:
    case OP_BNOT:
        return arena_printf(a, "%s%s", op_c(in->op), em_opnd(e, &in->a));
    case OP_BUILTIN:
        return em_subst(e, builtin_table[in->builtin].value, in);
    case OP_LOAD:
        return em_elem(e, in->a.v, em_opnd(e, &in->b), 0);
    case OP_STORE:
    case OP_CALL:
    case OP_COUNT:
        break;
    default:
        return arena_printf(a, "%s %s %s", em_opnd(e, &in->a), op_c(in->op), em_opnd(e, &in->b));
    }
    abort(); /* calls are emitted by each sweep */
}

/* Declare every non-parameter variable (outputs become locals), zeroed, and
 * the derivative companions of active ones (suffix_d / suffix_b, or NULL). */
/* An array's length as C: ctx 0 in a lane function (parameters by name),
 * 1 in a batched twin (NAME[twinc_i * NAME_ls]), 2 in a registry length
 * function (from the twinc_arg array `val` and `lane`). */
const char *em_len(Emit *e, const Var *v, int ctx)
{
    Buf b = {0};
    buf_puts(&b, "(");
    for (int i = 0; i < v->len.n; i++) {
        const char *t = v->len.v[i];
        const Var *p = NULL;
        for (int k = 0; k < e->f->params.n && !p; k++)
            if (!strcmp(((Var *)e->f->params.v[k])->user_name, t))
                p = e->f->params.v[k];
        if (i)
            buf_puts(&b, " ");
        if (!p || ctx == 0)
            buf_puts(&b, p ? p->name : t);
        else if (ctx == 1)
            buf_printf(&b, "%s[twinc_i * %s_ls]", p->name, p->name);
        else
            buf_printf(&b, "((const %s *)val[%d].p)[lane * val[%d].ls]", ty_c(p->ty), p->param_index,
                       p->param_index);
    }
    buf_puts(&b, ")");
    const char *r = arena_strdup(e->u->arena, b.s);
    buf_free(&b);
    return r;
}

/* Element `idx` of array v: which 0 value, 1 tangent, 2 adjoint. */
const char *em_elem(Emit *e, const Var *v, const char *idx, int which)
{
    static const char *const local_sfx[] = {"", "__d", "__b"};
    static const char *const ptr_sfx[] = {"", "__d", "__bp"};
    static const char *const es_sfx[] = {"__es", "__des", "__bes"};
    if (v->kind != V_PARAM)
        return arena_printf(e->u->arena, "%s%s[%s]", v->name, local_sfx[which], idx);
    return arena_printf(e->u->arena, "%s%s[(%s) * %s%s]", v->name, ptr_sfx[which], idx, v->name, es_sfx[which]);
}

static void decl_array(Emit *e, const Var *v, const char *sfx)
{
    em_line(e, "double %s%s[%s > 0 ? %s : 1];", v->name, sfx, em_len(e, v, 0), em_len(e, v, 0));
    em_line(e, "for (ptrdiff_t twinc_k = 0; twinc_k < %s; twinc_k++)", em_len(e, v, 0));
    em_line(e, "    %s%s[twinc_k] = 0.0;", v->name, sfx);
}

void em_decl_locals(Emit *e, const char *suffix_d, const char *suffix_b)
{
    Func *f = e->f;
    for (int i = 0; i < f->vars.n; i++) {
        Var *v = f->vars.v[i];
        if (v->is_array) {
            if (v->kind == V_PARAM)
                continue; /* the caller's memory, through pointers */
            decl_array(e, v, "");
            if (v->active && suffix_d)
                decl_array(e, v, suffix_d);
            if (v->active && suffix_b)
                decl_array(e, v, suffix_b);
            continue;
        }
        if (v->kind != V_PARAM)
            em_line(e, "%s %s = 0;", ty_c(v->ty), v->name);
        if (!v->active)
            continue;
        if (suffix_d && v->kind != V_PARAM)
            em_line(e, "double %s%s = 0.0;", v->name, suffix_d);
        if (suffix_b)
            em_line(e, "double %s%s = 0.0;", v->name, suffix_b);
    }
}

/* Prototypes of the per-lane functions, so kernels may call kernels defined
 * later in the file. */
static void lane_params(Emit *e, Func *f, int which, Buf *b)
{
    int k = 0;
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (k++)
            buf_puts(b, ", ");
        if (p->kind == V_OUT) {
            buf_printf(b, "double *%s__p", p->name);
            if (which == 1)
                buf_printf(b, ", double *%s__dp", p->name);
            if (which == 2)
                buf_printf(b, ", double %s__bs", p->name);
            continue;
        }
        bool act = p->ty == TY_DOUBLE && !p->passive;
        if (p->is_array) {
            const char *c = p->inout ? "" : "const ";
            buf_printf(b, "%sdouble *%s, ptrdiff_t %s__es", c, p->name, p->name);
            if (act && which == 1)
                buf_printf(b, ", %sdouble *%s__d, ptrdiff_t %s__des", c, p->name, p->name);
            if (act && which == 2)
                buf_printf(b, ", double *%s__bp, ptrdiff_t %s__bes", p->name, p->name);
            continue;
        }
        buf_printf(b, "%s %s", ty_c(p->ty), p->name);
        if (act && which == 1)
            buf_printf(b, ", double %s__d", p->name);
        if (act && which == 2)
            buf_printf(b, ", double *%s__bp", p->name);
    }
    if (f->ret != TY_VOID) {
        if (which == 1)
            buf_printf(b, "%sdouble *ret__dp", k++ ? ", " : "");
        if (which == 2)
            buf_printf(b, "%sdouble ret__bs", k++ ? ", " : "");
    }
    if (which == 2 && f->uses_tape)
        buf_printf(b, "%stwinc_tape *tp", k++ ? ", " : "");
    if (!k)
        buf_puts(b, "void");
    (void)e;
}

const char *em_lane_signature(Emit *e, Func *f, int which)
{
    static const char *const suffix[] = {"__lane", "__lane_d", "__lane_b"};
    Buf b = {0};
    buf_printf(&b, "static inline %s %s%s(", ty_c(f->ret), f->name, suffix[which]);
    lane_params(e, f, which, &b);
    buf_puts(&b, ")");
    const char *r = arena_strdup(e->u->arena, b.s);
    buf_free(&b);
    return r;
}

void emit_lane_prototypes(Emit *e)
{
    for (int i = 0; i < e->u->funcs.n; i++) {
        Func *f = e->u->funcs.v[i];
        for (int w = 0; w < 3; w++)
            em_line(e, "%s;", em_lane_signature(e, f, w));
        if (f->uses_tape) {
            Buf b = {0};
            buf_printf(&b, "static size_t %s__ws_lane(", f->name);
            int k = 0;
            for (int i = 0; i < f->params.n; i++) {
                Var *p = f->params.v[i];
                if (p->kind == V_PARAM && !p->is_array && ty_is_int(p->ty))
                    buf_printf(&b, "%s%s %s", k++ ? ", " : "", ty_c(p->ty), p->name);
            }
            buf_puts(&b, k ? ");" : "void);");
            em_line(e, "%s", b.s);
            buf_free(&b);
        }
    }
}

/* (void) every parameter: a user's function may ignore one. */
void em_void_params(Emit *e)
{
    for (int i = 0; i < e->f->params.n; i++) {
        Var *p = e->f->params.v[i];
        em_line(e, "(void)%s%s;", p->name, p->kind == V_OUT ? "__p" : "");
        if (p->is_array)
            em_line(e, "(void)%s__es;", p->name);
    }
}

void emit_unit(Unit *u, const char *c_path, const char *h_path, Buf *c, Buf *h)
{
    Emit e = {.u = u, .b = c, .twin_path = c_path};
    const char *hbase = strrchr(h_path, '/') ? strrchr(h_path, '/') + 1 : h_path;
    em_line(&e, "/* Generated by twinc %s from %s. Do not edit: edit the source and regenerate. */",
            TWINC_VERSION, u->file);
    em_line(&e, "#include <math.h>");
    em_line(&e, "#include <stddef.h>");
    em_line(&e, "#include \"twinc.h\"");
    em_line(&e, "#include \"twinc_simd.h\"");
    em_line(&e, "#include \"%s\"", hbase);
    em_blank(&e);
    bool arrays = false;
    for (int i = 0; i < u->funcs.n; i++)
        for (int k = 0; k < ((Func *)u->funcs.v[i])->params.n; k++)
        {
            Var *p = ((Func *)u->funcs.v[i])->params.v[k];
            arrays |= p->is_array && !p->inout && !p->passive;
        }
    if (arrays)
        em_line(&e, "static const double twinc_zero = 0.0; /* what a NULL direction reads */");
    em_line(&e, "/* ---- per-lane bodies ---- */");
    emit_lane_prototypes(&e);
    for (int i = 0; i < u->funcs.n; i++) {
        e.f = u->funcs.v[i];
        em_blank(&e);
        emit_lane_primal(&e);
        em_blank(&e);
        emit_lane_tangent(&e);
        em_blank(&e);
        emit_lane_adjoint(&e);
        if (e.f->uses_tape) {
            em_blank(&e);
            emit_ws_lane(&e);
        }
    }
    emit_simd(&e);
    for (int i = 0; i < u->funcs.n; i++) {
        e.f = u->funcs.v[i];
        emit_batched(&e);
    }
    emit_registry(&e);
    emit_header(u, h, h_path);
}

/* The partial derivatives of a non-call instruction with respect to each of
 * its inputs, as C expressions; NULL where the input is not active (its term
 * is dropped).  SELECT builtins are routed, not multiplied: see builtins.h. */
int em_partials(Emit *e, const Ins *in, const Opnd **ops, const char **p)
{
    Arena *a = e->u->arena;
    int n;
    if (in->op == OP_BUILTIN) {
        n = in->nargs;
        for (int k = 0; k < n; k++) {
            ops[k] = &in->args[k];
            p[k] = builtin_table[in->builtin].partial[k];
            p[k] = p[k] && opnd_active(ops[k]) ? em_subst(e, p[k], in) : NULL;
        }
        return n;
    }
    ops[0] = &in->a;
    ops[1] = &in->b;
    n = in->b.kind == O_NONE ? 1 : 2;
    const char *A = em_opnd(e, &in->a), *B = n == 2 ? em_opnd(e, &in->b) : NULL;
    switch (in->op) {
    /* d(a) = da;  d(-a) = -da;  d(a +- b) = da +- db */
    case OP_COPY: p[0] = "1"; break;
    case OP_NEG: p[0] = "-1"; break;
    case OP_ADD: p[0] = "1"; p[1] = "1"; break;
    case OP_SUB: p[0] = "1"; p[1] = "-1"; break;
    /* d(a*b) = b da + a db */
    case OP_MUL: p[0] = B; p[1] = A; break;
    /* d(a/b) = da / b - (a/b) db / b */
    case OP_DIV:
        p[0] = arena_printf(a, "1.0 / %s", B);
        p[1] = arena_printf(a, "-%s / %s", in->dst->name, B);
        break;
    default: /* conversions from integers, comparisons: no derivative */
        p[0] = p[1] = NULL;
        break;
    }
    for (int k = 0; k < n; k++)
        if (!opnd_active(ops[k]))
            p[k] = NULL;
    return n;
}

/* "p * x" with the 1 and -1 cases written plainly. */
const char *em_times(Emit *e, const char *p, const char *x)
{
    if (!strcmp(p, "1"))
        return x;
    if (!strcmp(p, "-1"))
        return arena_printf(e->u->arena, "-%s", x);
    return arena_printf(e->u->arena, "%s * %s", p, x);
}

const char *em_term(Emit *e, const Ins *in, const char *p, const char *x)
{
    if (in->op == OP_BUILTIN && builtin_table[in->builtin].kind == BK_SINGULAR)
        return arena_printf(e->u->arena, "(%s == 0.0 ? 0.0 : %s)", x, em_times(e, p, x));
    return em_times(e, p, x);
}
