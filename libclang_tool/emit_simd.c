/*
 * emit_simd.c — SIMD twins: the same three sweeps as emit_primal.c,
 * emit_tangent.c and emit_adjoint.c, over a block of W lanes held in GCC/Clang
 * vector extensions (runtime/twinc_simd.h), once per ISA (AVX-512: W = 8,
 * AVX2: W = 4).
 *
 *   f__v8, f__v8_d, f__v8_b     block bodies: varying values are vectors,
 *                               uniform values stay scalar (varying.c decides);
 *                               derivative companions are always vectors
 *   f__x8_primal, ...           drivers: the typed ABI over whole blocks,
 *                               return how many lanes they did (n - n % W)
 *   f__simd_primal, ...         run-time dispatch on twinc_simd_isa(); the
 *                               batched twins (emit_registry.c) start their
 *                               scalar lane loop where these stop
 *
 * Varying branches become masks.  Both sides run on every lane; an
 * assignment under mask m is  x = sel(m, new, x), so a lane keeps what its
 * own branch computed, and what the other side computed for it (NaN or inf
 * included) is never seen.  The reverse sweep replays the recorded branch
 * masks and blends every adjoint update the same way, so a NaN partial on a
 * lane that did not take the branch never reaches an adjoint.  Saved values
 * are restored unmasked: a lane the masked assignment did not change saved
 * the value it still has.  Uniform branches stay scalar `if`s.
 *
 * What is vectorized today (simd_ok): kernels without loops, arrays or a
 * tape, whose varying integers are only truth values (comparisons, !, &&-
 * style copies: held as all-ones masks), whose calls go to kernels that are
 * themselves vectorized with varying results.  Any other kernel keeps only
 * the scalar per-lane loop, which is always correct (docs/SIMD.md).
 */
#include <string.h>

#include "twinc_gen.h"

void em_primal_ins(Emit *e, const Ins *in);

typedef struct Isa {
    int w;
    const char *attr, *vd, *vl, *p, *sfx, *drv;
} Isa;

static const Isa isas[] = {
    {8, "TWINC_T8", "twinc_v8d", "twinc_v8l", "twinc_v8_", "__v8", "__x8"},
    {4, "TWINC_T4", "twinc_v4d", "twinc_v4l", "twinc_v4_", "__v4", "__x4"},
};
#define NISAS (int)(sizeof isas / sizeof isas[0])

typedef struct VE {
    Emit *e;
    const Isa *I;
    int nmask;
} VE;

#define A (v->e->u->arena)

/* ---- which kernels the vectorizer handles ---- */

static bool is_mask(const Var *x) { return ty_is_int(x->ty) && x->varying; }
static bool opnd_mask(const Opnd *o) { return o->kind == O_VAR && is_mask(o->v); }

static bool block_ok(Func *f, const Block *b, int depth);

bool simd_ok(Func *f) { return f && f->lowered && !f->uses_tape && block_ok(f, &f->body, 0); }

static bool ins_ok(const Ins *in, int depth)
{
    switch (in->op) {
    case OP_LOAD:
    case OP_STORE:
        return false;
    case OP_CALL:
        if (depth > 16 || !in->callee->lowered || in->callee->uses_tape ||
            !block_ok(in->callee, &in->callee->body, depth + 1))
            return false;
        if (in->dst && !in->dst->varying)
            return false;
        for (int k = 0; k < in->nouts; k++)
            if (!in->outs[k]->varying)
                return false;
        for (int i = 0, ki = 0; i < in->callee->params.n; i++) {
            Var *p = in->callee->params.v[i];
            if (p->kind == V_OUT)
                continue;
            const Opnd *a = &in->args[ki++];
            if (p->is_array || opnd_mask(a) || (!p->varying && a->kind == O_VAR && a->v->varying))
                return false;
        }
        return true;
    case OP_BUILTIN:
        for (int k = 0; k < in->nargs; k++)
            if (opnd_mask(&in->args[k]))
                return false;
        return true;
    default:
        break;
    }
    if (in->dst && is_mask(in->dst)) {
        /* a varying integer is a truth value */
        if (op_is_compare(in->op)) /* compared as doubles: 32-bit integers are exact */
            return !opnd_mask(&in->a) && !opnd_mask(&in->b) && in->a.ty != TY_LONG && in->a.ty != TY_ULONG &&
                   in->b.ty != TY_LONG && in->b.ty != TY_ULONG;
        if (in->op == OP_NOT)
            return true;
        if (in->op == OP_COPY)
            return opnd_mask(&in->a) || in->a.kind == O_CONST;
        if (in->op == OP_BAND || in->op == OP_BOR)
            return (opnd_mask(&in->a) || (in->a.kind == O_CONST && (in->a.i == 0 || in->a.i == 1))) &&
                   (opnd_mask(&in->b) || (in->b.kind == O_CONST && (in->b.i == 0 || in->b.i == 1)));
        return false;
    }
    /* a truth value used as a number would be -1, not 1 */
    return !opnd_mask(&in->a) && !opnd_mask(&in->b);
}

static bool block_ok(Func *f, const Block *b, int depth)
{
    for (int i = 0; i < f->vars.n; i++) {
        Var *x = f->vars.v[i];
        if (x->is_array || (x->kind == V_PARAM && is_mask(x)))
            return false;
    }
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        if (s->kind == ST_LOOP)
            return false;
        if (s->kind == ST_IF) {
            if (!block_ok(f, &s->then, depth) || !block_ok(f, &s->els, depth))
                return false;
            continue;
        }
        if (!ins_ok(&s->ins, depth))
            return false;
    }
    return true;
}

/* ---- operands and expressions ---- */

static const char *bc(VE *v, const char *x) { return arena_printf(A, "%sbc(%s)", v->I->p, x); }
static const char *zero(VE *v) { return bc(v, "0.0"); }

static const char *vtype(VE *v, const Var *x)
{
    if (!x->varying)
        return ty_c(x->ty);
    return ty_is_int(x->ty) ? v->I->vl : v->I->vd;
}

/* A double operand as a vector. */
static const char *vop(VE *v, const Opnd *o)
{
    const char *s = em_opnd(v->e, o);
    if (o->kind == O_VAR && o->v->varying)
        return s;
    return bc(v, ty_is_int(o->ty) ? arena_printf(A, "(double)%s", s) : s);
}

/* A condition (integer or double operand) as a mask. */
static const char *mop(VE *v, const Opnd *o)
{
    const char *s = em_opnd(v->e, o);
    if (o->kind == O_VAR && o->v->varying)
        return ty_is_int(o->ty) ? s : arena_printf(A, "(%s != 0.0)", s);
    return arena_printf(A, "%smask((%s) != 0)", v->I->p, s);
}

static bool is_ident(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* Rewrite a builtin pattern (builtins.h) into vector code: operands as
 * vectors, math calls to their twinc_vW_ versions, and (c ? a : b) into a
 * lane-wise select. */
static const char *vtrans(VE *v, const char *s, size_t len);

static const char *vpat(VE *v, const char *pattern, const Ins *in)
{
    Buf b = {0};
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && (p[1] == '0' || p[1] == '1')) {
            buf_printf(&b, "(%s)", vop(v, &in->args[p[1] - '0']));
            p++;
        } else if (p[0] == '%' && p[1] == 'r') {
            buf_printf(&b, "(%s)", vop(v, &(Opnd){.kind = O_VAR, .ty = in->dst->ty, .v = in->dst}));
            p++;
        } else {
            char c[2] = {*p, 0};
            buf_puts(&b, c);
        }
    }
    const char *r = vtrans(v, b.s, strlen(b.s));
    buf_free(&b);
    return r;
}

static const char *vtrans(VE *v, const char *s, size_t len)
{
    /* (c ? x : y) spanning the whole text */
    if (len >= 2 && s[0] == '(' && s[len - 1] == ')') {
        int depth = 0;
        size_t q = 0, col = 0;
        bool whole = true;
        for (size_t i = 0; i < len; i++) {
            if (s[i] == '(')
                depth++;
            else if (s[i] == ')' && --depth == 0 && i != len - 1)
                whole = false;
            else if (depth == 1 && s[i] == '?' && !q)
                q = i;
            else if (depth == 1 && s[i] == ':' && q && !col)
                col = i;
        }
        if (whole && q && col) {
            const char *c = vtrans(v, s + 1, q - 1);
            const char *x = vtrans(v, s + q + 1, col - q - 1);
            const char *y = vtrans(v, s + col + 1, len - col - 2);
            if (!strchr(x, '('))
                x = bc(v, x);
            if (!strchr(y, '('))
                y = bc(v, y);
            return arena_printf(A, "%ssel(%s, %s, %s)", v->I->p, c, x, y);
        }
    }
    static const char *const fns[] = {"exp", "log", "log1p", "expm1", "sqrt", "cbrt", "pow", "fabs",
                                      "fmin", "fmax", "sin", "cos", "tan", "atan", "atan2", "sinh",
                                      "cosh", "tanh", "erf", "erfc", "hypot", "twinc_ncdf", "twinc_npdf"};
    Buf b = {0};
    for (size_t i = 0; i < len;) {
        if (is_ident(s[i]) && (i == 0 || !is_ident(s[i - 1]))) {
            size_t j = i;
            while (j < len && is_ident(s[j]))
                j++;
            char word[64] = {0};
            memcpy(word, s + i, j - i < 63 ? j - i : 63);
            bool fn = false;
            for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++)
                fn |= !strcmp(word, fns[k]) && j < len && s[j] == '(';
            if (fn)
                buf_printf(&b, "%s%s", v->I->p, strncmp(word, "twinc_", 6) ? word : word + 6);
            else
                buf_puts(&b, word);
            i = j;
            continue;
        }
        char c[2] = {s[i], 0};
        buf_puts(&b, c);
        i++;
    }
    const char *r = arena_strdup(A, b.s ? b.s : "");
    buf_free(&b);
    return r;
}

/* The value of a non-call instruction whose destination is varying. */
static const char *vexpr(VE *v, const Ins *in)
{
    const char *a = in->a.kind != O_NONE ? em_opnd(v->e, &in->a) : NULL;
    const char *b = in->b.kind != O_NONE ? em_opnd(v->e, &in->b) : NULL;
    if (is_mask(in->dst)) {
        if (op_is_compare(in->op))
            return arena_printf(A, "%s %s %s", vop(v, &in->a), op_c(in->op), vop(v, &in->b));
        if (in->op == OP_NOT)
            return ty_is_int(in->a.ty) ? arena_printf(A, "~%s", mop(v, &in->a))
                                        : arena_printf(A, "(%s == 0.0)", vop(v, &in->a));
        if (in->op == OP_COPY)
            return mop(v, &in->a);
        return arena_printf(A, "%s %s %s", mop(v, &in->a), op_c(in->op), mop(v, &in->b));
    }
    switch (in->op) {
    case OP_COPY:
    case OP_CONV:
        return vop(v, &in->a);
    case OP_NEG:
        return arena_printf(A, "-%s", vop(v, &in->a));
    case OP_BUILTIN:
        return vpat(v, builtin_table[in->builtin].value, in);
    default:
        /* vector op scalar splats the scalar */
        return arena_printf(A, "%s %s %s", a, op_c(in->op), b);
    }
}

/* dst = x, under mask m (NULL: every lane) */
static void assign(VE *v, const char *dst, bool mask_ty, const char *x, const char *m)
{
    if (!m)
        em_line(v->e, "%s = %s;", dst, x);
    else
        em_line(v->e, "%s = %ssel%s(%s, %s, %s);", dst, v->I->p, mask_ty ? "i" : "", m, x, dst);
}

static const char *dname(VE *v, const Var *x, const char *sfx) { return arena_printf(A, "%s%s", x->name, sfx); }

/* Partials as vector code (builtins of varying values) or scalar code. */
static int vpartials(VE *v, const Ins *in, const Opnd **ops, const char **p)
{
    int n = em_partials(v->e, in, ops, p);
    if (in->op == OP_BUILTIN && in->dst->varying)
        for (int k = 0; k < n; k++)
            if (p[k])
                p[k] = vpat(v, builtin_table[in->builtin].partial[k], in);
    return n;
}

/* p * x, and 0 where x == 0 for rules whose partial may be infinite */
static const char *vterm(VE *v, const Ins *in, const char *p, const char *x)
{
    const char *t = em_times(v->e, p, x);
    if (in->op == OP_BUILTIN && builtin_table[in->builtin].kind == BK_SINGULAR)
        return arena_printf(A, "%ssel(%s == 0.0, %s, %s)", v->I->p, x, zero(v), t);
    return t;
}

/* The condition of a select builtin as a mask. */
static const char *select_cond(VE *v, const Ins *in)
{
    if (in->dst->varying)
        return vpat(v, builtin_table[in->builtin].partial[0], in);
    return arena_printf(A, "%smask(%s)", v->I->p, em_subst(v->e, builtin_table[in->builtin].partial[0], in));
}

static const char *and_mask(VE *v, const char *m, const char *c)
{
    return m ? arena_printf(A, "(%s & %s)", m, c) : c;
}

/* ---- forward: primal (mode 0), tangent (1), adjoint's forward sweep (2) ---- */

static void save(VE *v, const Var *x, int slot) { em_line(v->e, "twinc_s%d = %s;", slot, x->name); }

static void call_fwd(VE *v, const Ins *in, const char *m, int mode)
{
    Emit *e = v->e;
    Func *g = in->callee;
    Buf b = {0};
    em_line(e, "{");
    e->indent++;
    buf_printf(&b, "%s%s%s(", g->name, v->I->sfx, mode == 1 ? "_d" : "");
    int ki = 0, ko = 0;
    for (int i = 0; i < g->params.n; i++) {
        Var *p = g->params.v[i];
        if (i)
            buf_puts(&b, ", ");
        if (p->kind == V_OUT) {
            em_line(e, "%s twinc_o%d = {0};", v->I->vd, ko);
            buf_printf(&b, "&twinc_o%d", ko);
            if (mode == 1) {
                em_line(e, "%s twinc_od%d = {0};", v->I->vd, ko);
                buf_printf(&b, ", &twinc_od%d", ko);
            }
            ko++;
            continue;
        }
        const Opnd *arg = &in->args[ki++];
        buf_puts(&b, p->varying ? vop(v, arg) : em_opnd(e, arg));
        if (mode == 1 && p->ty == TY_DOUBLE && !p->passive)
            buf_printf(&b, ", %s", opnd_active(arg) ? dname(v, arg->v, "__d") : zero(v));
    }
    if (g->ret != TY_VOID && mode == 1) {
        em_line(e, "%s twinc_rd = {0};", v->I->vd);
        buf_printf(&b, "%s&twinc_rd", ki + ko ? ", " : "");
    }
    buf_puts(&b, ")");
    if (in->dst)
        em_line(e, "const %s twinc_r = %s;", v->I->vd, b.s);
    else
        em_line(e, "%s;", b.s);
    buf_free(&b);
    if (in->dst) {
        assign(v, in->dst->name, false, "twinc_r", m);
        if (mode == 1 && in->dst->active)
            assign(v, dname(v, in->dst, "__d"), false, "twinc_rd", m);
    }
    for (int k = 0; k < in->nouts; k++) {
        assign(v, in->outs[k]->name, false, arena_printf(A, "twinc_o%d", k), m);
        if (mode == 1 && in->outs[k]->active)
            assign(v, dname(v, in->outs[k], "__d"), false, arena_printf(A, "twinc_od%d", k), m);
    }
    e->indent--;
    em_line(e, "}");
}

static void ins_fwd(VE *v, const Ins *in, const char *m, int mode)
{
    Emit *e = v->e;
    if (mode == 2) {
        int slot = in->slot;
        if (in->save_dst)
            save(v, in->dst, slot++);
        for (int k = 0; k < in->nouts; k++)
            if (in->save_outs[k])
                save(v, in->outs[k], slot++);
    }
    if (in->op == OP_CALL) {
        call_fwd(v, in, m, mode == 1);
        return;
    }
    if (in->dst->varying)
        assign(v, in->dst->name, is_mask(in->dst), vexpr(v, in), m);
    else
        em_primal_ins(e, in); /* uniform: never under a varying mask */
    if (mode != 1 || !in->dst->active)
        return;
    const char *dd = dname(v, in->dst, "__d");
    if (in->op == OP_BUILTIN && builtin_table[in->builtin].kind == BK_SELECT) {
        /* r = cond ? a : b  =>  r__d = cond ? a__d : b__d */
        const Opnd *x = &in->args[0], *y = &in->args[1];
        assign(v, dd, false,
               arena_printf(A, "%ssel(%s, %s, %s)", v->I->p, select_cond(v, in),
                            opnd_active(x) ? dname(v, x->v, "__d") : zero(v),
                            opnd_active(y) ? dname(v, y->v, "__d") : zero(v)),
               m);
        return;
    }
    const Opnd *ops[2];
    const char *p[2];
    int n = vpartials(v, in, ops, p);
    const char *sum = NULL;
    for (int k = 0; k < n; k++) {
        if (!p[k])
            continue;
        const char *t = vterm(v, in, p[k], dname(v, ops[k]->v, "__d"));
        sum = sum ? arena_printf(A, "%s + %s", sum, t) : t;
    }
    assign(v, dd, false, sum ? sum : zero(v), m);
}

static void block_fwd(VE *v, const Block *b, const char *m, int mode)
{
    Emit *e = v->e;
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        em_srcline(e, s->loc);
        if (s->kind == ST_INS) {
            ins_fwd(v, &s->ins, m, mode);
            continue;
        }
        bool vary = s->cond.kind == O_VAR && s->cond.v->varying;
        if (!vary) {
            if (mode == 2)
                em_line(e, "twinc_br%d = (%s) != 0;", s->id, em_opnd(e, &s->cond));
            em_line(e, "if (%s) {", mode == 2 ? arena_printf(A, "twinc_br%d", s->id) : em_opnd(e, &s->cond));
            e->indent++;
            block_fwd(v, &s->then, m, mode);
            e->indent--;
            if (s->els.n) {
                em_line(e, "} else {");
                e->indent++;
                block_fwd(v, &s->els, m, mode);
                e->indent--;
            }
            em_line(e, "}");
            continue;
        }
        int id = v->nmask++;
        em_line(e, "{");
        e->indent++;
        em_line(e, "const %s twinc_c%d = %s;", v->I->vl, id, mop(v, &s->cond));
        if (mode == 2)
            em_line(e, "twinc_br%d = twinc_c%d;", s->id, id);
        em_line(e, "const %s twinc_mt%d = %s;", v->I->vl, id, and_mask(v, m, arena_printf(A, "twinc_c%d", id)));
        em_line(e, "(void)twinc_mt%d;", id);
        block_fwd(v, &s->then, arena_printf(A, "twinc_mt%d", id), mode);
        if (s->els.n) {
            em_line(e, "const %s twinc_me%d = %s;", v->I->vl, id, and_mask(v, m, arena_printf(A, "~twinc_c%d", id)));
            em_line(e, "(void)twinc_me%d;", id);
            block_fwd(v, &s->els, arena_printf(A, "twinc_me%d", id), mode);
        }
        e->indent--;
        em_line(e, "}");
    }
}

/* ---- reverse sweep ---- */

/* x__b += t under mask m */
static void badd(VE *v, const Var *x, const char *t, const char *m)
{
    const char *xb = dname(v, x, "__b");
    if (!m)
        em_line(v->e, "%s += %s;", xb, t);
    else
        em_line(v->e, "%s = %ssel(%s, %s + %s, %s);", xb, v->I->p, m, xb, t, xb);
}

static void restore(VE *v, const Ins *in)
{
    int nsaved = (in->save_dst ? 1 : 0);
    for (int k = 0; k < in->nouts; k++)
        nsaved += in->save_outs[k];
    int slot = in->slot + nsaved;
    for (int k = in->nouts - 1; k >= 0; k--)
        if (in->save_outs[k])
            em_line(v->e, "%s = twinc_s%d;", in->outs[k]->name, --slot);
    if (in->save_dst)
        em_line(v->e, "%s = twinc_s%d;", in->dst->name, --slot);
}

/* take x__b as the seed t and zero it, under mask m */
static void take(VE *v, const Var *x, const char *t, const char *m)
{
    const char *xb = dname(v, x, "__b");
    if (m)
        em_line(v->e, "const %s %s = %ssel(%s, %s, %s);", v->I->vd, t, v->I->p, m, xb, zero(v));
    else
        em_line(v->e, "const %s %s = %s;", v->I->vd, t, xb);
    assign(v, xb, false, zero(v), m);
}

static void call_rev(VE *v, const Ins *in, const char *m)
{
    Emit *e = v->e;
    Func *g = in->callee;
    em_line(e, "{");
    e->indent++;
    bool ret_seed = in->dst && in->dst->active;
    if (ret_seed)
        take(v, in->dst, "twinc_t", m);
    for (int k = 0; k < in->nouts; k++) {
        em_line(e, "%s twinc_o%d = {0};", v->I->vd, k);
        if (in->outs[k]->active)
            take(v, in->outs[k], arena_printf(A, "twinc_t%d", k), m);
    }
    restore(v, in);
    Buf b = {0};
    buf_printf(&b, "(void)%s%s_b(", g->name, v->I->sfx);
    int ki = 0, ko = 0;
    for (int i = 0; i < g->params.n; i++) {
        Var *p = g->params.v[i];
        if (i)
            buf_puts(&b, ", ");
        if (p->kind == V_OUT) {
            buf_printf(&b, "&twinc_o%d, %s", ko, in->outs[ko]->active ? arena_printf(A, "twinc_t%d", ko) : zero(v));
            ko++;
            continue;
        }
        const Opnd *arg = &in->args[ki];
        buf_puts(&b, p->varying ? vop(v, arg) : em_opnd(e, arg));
        if (p->ty == TY_DOUBLE && !p->passive) {
            em_line(e, "%s twinc_a%d = {0};", v->I->vd, ki);
            buf_printf(&b, ", &twinc_a%d", ki);
        }
        ki++;
    }
    if (g->ret != TY_VOID)
        buf_printf(&b, "%s%s", ki + ko ? ", " : "", ret_seed ? "twinc_t" : zero(v));
    buf_puts(&b, ");");
    em_line(e, "%s", b.s);
    buf_free(&b);
    for (int i = 0, k = 0; i < g->params.n; i++) {
        Var *p = g->params.v[i];
        if (p->kind == V_OUT)
            continue;
        const Opnd *arg = &in->args[k];
        if (p->ty == TY_DOUBLE && !p->passive && opnd_active(arg))
            badd(v, arg->v, arena_printf(A, "twinc_a%d", k), m);
        k++;
    }
    e->indent--;
    em_line(e, "}");
}

static void ins_rev(VE *v, const Ins *in, const char *m)
{
    Emit *e = v->e;
    if (in->op == OP_CALL) {
        bool any = in->dst && in->dst->active;
        for (int k = 0; k < in->nouts; k++)
            any |= in->outs[k]->active;
        if (any)
            call_rev(v, in, m);
        else
            restore(v, in);
        return;
    }
    if (in->dst->active) {
        em_line(e, "{");
        e->indent++;
        take(v, in->dst, "twinc_t", m);
        if (in->op == OP_BUILTIN && builtin_table[in->builtin].kind == BK_SELECT) {
            /* routed, never multiplied by zero */
            const Opnd *x = &in->args[0], *y = &in->args[1];
            em_line(e, "const %s twinc_c = %s;", v->I->vl, select_cond(v, in));
            if (opnd_active(x))
                badd(v, x->v, "twinc_t", and_mask(v, m, "twinc_c"));
            if (opnd_active(y))
                badd(v, y->v, "twinc_t", and_mask(v, m, "~twinc_c"));
            em_line(e, "(void)twinc_c;");
        } else {
            const Opnd *ops[2];
            const char *p[2];
            int n = vpartials(v, in, ops, p);
            for (int k = 0; k < n; k++)
                if (p[k])
                    badd(v, ops[k]->v, vterm(v, in, p[k], "twinc_t"), m);
        }
        em_line(e, "(void)twinc_t;");
        e->indent--;
        em_line(e, "}");
    }
    restore(v, in);
}

static void block_rev(VE *v, const Block *b, const char *m)
{
    Emit *e = v->e;
    for (int i = b->n - 1; i >= 0; i--) {
        const Stmt *s = b->v[i];
        em_srcline(e, s->loc);
        if (s->kind == ST_INS) {
            ins_rev(v, &s->ins, m);
            continue;
        }
        bool vary = s->cond.kind == O_VAR && s->cond.v->varying;
        if (!vary) {
            em_line(e, "if (twinc_br%d) {", s->id);
            e->indent++;
            block_rev(v, &s->then, m);
            e->indent--;
            if (s->els.n) {
                em_line(e, "} else {");
                e->indent++;
                block_rev(v, &s->els, m);
                e->indent--;
            }
            em_line(e, "}");
            continue;
        }
        int id = v->nmask++;
        em_line(e, "{");
        e->indent++;
        if (s->els.n) {
            em_line(e, "const %s twinc_me%d = %s;", v->I->vl, id,
                    and_mask(v, m, arena_printf(A, "~twinc_br%d", s->id)));
            em_line(e, "(void)twinc_me%d;", id);
            block_rev(v, &s->els, arena_printf(A, "twinc_me%d", id));
        }
        em_line(e, "const %s twinc_mt%d = %s;", v->I->vl, id, and_mask(v, m, arena_printf(A, "twinc_br%d", s->id)));
        em_line(e, "(void)twinc_mt%d;", id);
        block_rev(v, &s->then, arena_printf(A, "twinc_mt%d", id));
        e->indent--;
        em_line(e, "}");
    }
}

static void decl_slots(VE *v, const Block *b)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        if (s->kind == ST_IF) {
            bool vary = s->cond.kind == O_VAR && s->cond.v->varying;
            if (vary)
                em_line(v->e, "%s twinc_br%d = {0};", v->I->vl, s->id);
            else
                em_line(v->e, "int twinc_br%d = 0;", s->id);
            decl_slots(v, &s->then);
            decl_slots(v, &s->els);
            continue;
        }
        const Ins *in = &s->ins;
        int slot = in->slot;
        if (in->save_dst)
            em_line(v->e, "%s twinc_s%d = {0};", vtype(v, in->dst), slot++);
        for (int k = 0; k < in->nouts; k++)
            if (in->save_outs[k])
                em_line(v->e, "%s twinc_s%d = {0};", vtype(v, in->outs[k]), slot++);
    }
}

/* ---- block bodies ---- */

static const char *signature(VE *v, Func *f, int which)
{
    static const char *const sfx[] = {"", "_d", "_b"};
    const Isa *I = v->I;
    Buf b = {0};
    buf_printf(&b, "static inline %s %s %s%s%s(", I->attr, f->ret == TY_VOID ? "void" : I->vd, f->name, I->sfx,
               sfx[which]);
    int k = 0;
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (k++)
            buf_puts(&b, ", ");
        if (p->kind == V_OUT) {
            buf_printf(&b, "%s *%s__p", I->vd, p->name);
            if (which == 1)
                buf_printf(&b, ", %s *%s__dp", I->vd, p->name);
            if (which == 2)
                buf_printf(&b, ", %s %s__bs", I->vd, p->name);
            continue;
        }
        buf_printf(&b, "%s %s", vtype(v, p), p->name);
        bool act = p->ty == TY_DOUBLE && !p->passive;
        if (act && which == 1)
            buf_printf(&b, ", %s %s__d", I->vd, p->name);
        if (act && which == 2)
            buf_printf(&b, ", %s *%s__bp", I->vd, p->name);
    }
    if (f->ret != TY_VOID) {
        if (which == 1)
            buf_printf(&b, "%s%s *ret__dp", k++ ? ", " : "", I->vd);
        if (which == 2)
            buf_printf(&b, "%s%s ret__bs", k++ ? ", " : "", I->vd);
    }
    if (!k)
        buf_puts(&b, "void");
    buf_puts(&b, ")");
    const char *r = arena_strdup(A, b.s);
    buf_free(&b);
    return r;
}

static void decl_locals(VE *v, int which)
{
    Func *f = v->e->f;
    for (int i = 0; i < f->vars.n; i++) {
        Var *x = f->vars.v[i];
        if (x->kind != V_PARAM)
            em_line(v->e, "%s %s = {0};", vtype(v, x), x->name);
        if (!x->active)
            continue;
        if (which == 1 && x->kind != V_PARAM)
            em_line(v->e, "%s %s__d = {0};", v->I->vd, x->name);
        if (which == 2)
            em_line(v->e, "%s %s__b = {0};", v->I->vd, x->name);
    }
}

static void body(VE *v, int which)
{
    Emit *e = v->e;
    Func *f = e->f;
    em_line(e, "%s", signature(v, f, which));
    em_line(e, "{");
    e->indent++;
    em_void_params(e);
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (which == 1 && p->kind == V_PARAM && p->ty == TY_DOUBLE && !p->passive && !p->active)
            em_line(e, "(void)%s__d;", p->name);
    }
    decl_locals(v, which);
    if (which == 2)
        decl_slots(v, &f->body);
    block_fwd(v, &f->body, NULL, which);
    em_twinline(e);
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind != V_OUT)
            continue;
        em_line(e, "*%s__p = %s;", p->name, vop(v, &(Opnd){.kind = O_VAR, .ty = p->ty, .v = p}));
        if (which == 1)
            em_line(e, "*%s__dp = %s;", p->name, p->active ? dname(v, p, "__d") : zero(v));
    }
    const char *ret = f->retvar ? vop(v, &(Opnd){.kind = O_VAR, .ty = TY_DOUBLE, .v = f->retvar}) : NULL;
    if (which == 1 && f->retvar)
        em_line(e, "*ret__dp = %s;", f->retvar->active ? dname(v, f->retvar, "__d") : zero(v));
    if (which == 2) {
        if (f->retvar)
            em_line(e, "const %s twinc_value = %s;", v->I->vd, ret);
        for (int i = 0; i < f->params.n; i++) {
            Var *p = f->params.v[i];
            if (p->kind == V_OUT)
                em_line(e, p->active ? "%s__b += %s__bs;" : "(void)%s__bs;", p->name, p->name);
        }
        if (f->retvar)
            em_line(e, f->retvar->active ? "%s__b += ret__bs;" : "(void)ret__bs;", f->retvar->name);
        block_rev(v, &f->body, NULL);
        em_twinline(e);
        for (int i = 0; i < f->params.n; i++) {
            Var *p = f->params.v[i];
            if (p->kind != V_PARAM || p->ty != TY_DOUBLE || p->passive)
                continue;
            em_line(e, p->active ? "*%s__bp += %s__b;" : "(void)%s__bp;", p->name, p->name);
        }
        ret = f->retvar ? "twinc_value" : NULL;
    }
    if (ret)
        em_line(e, "return %s;", ret);
    e->indent--;
    em_line(e, "}");
}

/* ---- drivers and dispatch ---- */

static const char *const twin_name[] = {"primal", "tangent", "adjoint"};

/* The argument names of a typed parameter list: the last identifier of each. */
static const char *typed_args(VE *v, Func *f, int which)
{
    Buf p = {0}, b = {0};
    em_typed_params(f, which, &p);
    const char *s = p.s;
    while (*s) {
        const char *end = strchr(s, ',');
        if (!end)
            end = s + strlen(s);
        const char *q = end;
        while (q > s && !is_ident(q[-1]))
            q--;
        const char *w = q;
        while (w > s && is_ident(w[-1]))
            w--;
        buf_printf(&b, "%s%.*s", b.len ? ", " : "", (int)(q - w), w);
        s = *end ? end + 1 : end;
    }
    const char *r = arena_strdup(A, b.s);
    buf_free(&p);
    buf_free(&b);
    return r;
}

static bool act_in(const Var *p) { return p->kind == V_PARAM && p->ty == TY_DOUBLE && !p->passive; }

static void driver(VE *v, int which)
{
    Emit *e = v->e;
    Func *f = e->f;
    const Isa *I = v->I;
    Buf sig = {0};
    em_typed_params(f, which, &sig);
    em_line(e, "static %s size_t %s%s_%s(%s)", I->attr, f->name, I->drv, twin_name[which], sig.s);
    buf_free(&sig);
    em_line(e, "{");
    e->indent++;
    em_line(e, "const size_t twinc_nb = twinc_n - twinc_n %% %d;", I->w);
    em_line(e, "(void)twinc_ws;");
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind == V_PARAM && !p->varying)
            em_line(e, "(void)%s_ls; /* uniform: lane stride 0 */", p->name);
    }
    em_line(e, "for (size_t twinc_i = 0; twinc_i < twinc_nb; twinc_i += %d) {", I->w);
    e->indent++;
    em_line(e, "const ptrdiff_t twinc_j = (ptrdiff_t)twinc_i;");
#define AT(x) arena_printf(A, "%s + twinc_j * %s_ls, %s_ls", x, x, x)
#define LOAD0(x) arena_printf(A, "(%s ? %sload(%s) : %s)", x, I->p, AT(x), zero(v))
    Buf call = {0};
    buf_printf(&call, "%s%s%s(", f->name, I->sfx, which == 0 ? "" : which == 1 ? "_d" : "_b");
    int k = 0;
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (k++)
            buf_puts(&call, ", ");
        if (p->kind == V_OUT) {
            em_line(e, "%s twinc_o%d = {0}, twinc_od%d = {0};", I->vd, i, i);
            buf_printf(&call, "&twinc_o%d", i);
            if (which == 1)
                buf_printf(&call, ", &twinc_od%d", i);
            if (which == 2)
                buf_printf(&call, ", %s", LOAD0(arena_printf(A, "%s_b", p->name)));
            continue;
        }
        if (p->varying)
            buf_printf(&call, "%sload(%s)", I->p, AT(p->name));
        else
            buf_printf(&call, "%s[0]", p->name);
        if (act_in(p) && which == 1)
            buf_printf(&call, ", %s", LOAD0(arena_printf(A, "%s_d", p->name)));
        if (act_in(p) && which == 2) {
            em_line(e, "%s twinc_b%d = {0};", I->vd, i);
            buf_printf(&call, ", &twinc_b%d", i);
        }
    }
    const char *r = f->retvar ? f->retvar->name : NULL;
    if (r && which == 1) {
        em_line(e, "%s twinc_rd = {0};", I->vd);
        buf_printf(&call, "%s&twinc_rd", k++ ? ", " : "");
    }
    if (r && which == 2)
        buf_printf(&call, "%s%s", k++ ? ", " : "", LOAD0(arena_printf(A, "%s_b", r)));
    buf_puts(&call, ")");
    if (r)
        em_line(e, "const %s twinc_r = %s;", I->vd, call.s);
    else
        em_line(e, "%s;", call.s);
    buf_free(&call);
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind == V_OUT) {
            em_line(e, "if (%s)", p->name);
            em_line(e, "    %sstore(%s, twinc_o%d);", I->p, AT(p->name), i);
            if (which == 1) {
                em_line(e, "if (%s_d)", p->name);
                em_line(e, "    %sstore(%s, twinc_od%d);", I->p, AT(arena_printf(A, "%s_d", p->name)), i);
            }
            em_line(e, "(void)twinc_od%d;", i);
        } else if (act_in(p) && which == 2) {
            em_line(e, "if (%s_b)", p->name);
            em_line(e, "    %saddto(%s, twinc_b%d);", I->p, AT(arena_printf(A, "%s_b", p->name)), i);
        }
    }
    if (r) {
        em_line(e, "if (%s)", r);
        em_line(e, "    %sstore(%s, twinc_r);", I->p, AT(r));
        if (which == 1) {
            em_line(e, "if (%s_d)", r);
            em_line(e, "    %sstore(%s, twinc_rd);", I->p, AT(arena_printf(A, "%s_d", r)));
        }
    }
#undef AT
#undef LOAD0
    e->indent--;
    em_line(e, "}");
    em_line(e, "return twinc_nb;");
    e->indent--;
    em_line(e, "}");
}

/* Called by emit_unit after the per-lane bodies. */
void emit_simd(Emit *e)
{
    Unit *u = e->u;
    bool any = false;
    for (int i = 0; i < u->funcs.n; i++)
        any |= simd_ok(u->funcs.v[i]);
    if (!any)
        return;
    em_blank(e);
    em_line(e, "/* ---- SIMD lane blocks (twinc_simd.h; kernels the vectorizer handles) ---- */");
    em_line(e, "#if TWINC_SIMD");
    for (int k = 0; k < NISAS; k++) {
        VE v = {.e = e, .I = &isas[k]};
        for (int i = 0; i < u->funcs.n; i++) {
            e->f = u->funcs.v[i];
            if (!simd_ok(e->f))
                continue;
            for (int w = 0; w < 3; w++)
                em_line(e, "%s;", signature(&v, e->f, w));
        }
        for (int i = 0; i < u->funcs.n; i++) {
            e->f = u->funcs.v[i];
            if (!simd_ok(e->f))
                continue;
            for (int w = 0; w < 3; w++) {
                em_blank(e);
                v.nmask = 0;
                body(&v, w);
            }
            for (int w = 0; w < 3; w++) {
                em_blank(e);
                driver(&v, w);
            }
        }
    }
    em_line(e, "#endif /* TWINC_SIMD */");
    for (int i = 0; i < u->funcs.n; i++) {
        e->f = u->funcs.v[i];
        if (!simd_ok(e->f))
            continue;
        VE v = {.e = e, .I = &isas[0]};
        for (int w = 0; w < 3; w++) {
            Buf sig = {0};
            em_typed_params(e->f, w, &sig);
            em_blank(e);
            em_line(e, "/* lanes [0, result) done by the best SIMD path, the rest by the lane loop */");
            em_line(e, "static size_t %s__simd_%s(%s)", e->f->name, twin_name[w], sig.s);
            buf_free(&sig);
            em_line(e, "{");
            e->indent++;
            const char *args = typed_args(&v, e->f, w);
            em_line(e, "#if TWINC_SIMD");
            em_line(e, "switch (twinc_simd_isa()) {");
            for (int k = 0; k < NISAS; k++) {
                em_line(e, "case %s:", isas[k].w == 8 ? "TWINC_ISA_AVX512" : "TWINC_ISA_AVX2");
                em_line(e, "    return %s%s_%s(%s);", e->f->name, isas[k].drv, twin_name[w], args);
            }
            em_line(e, "default:");
            em_line(e, "    break;");
            em_line(e, "}");
            em_line(e, "#endif");
            /* every parameter is used on some path */
            const char *s = args;
            while (*s) {
                const char *end = strchr(s, ',');
                int len = end ? (int)(end - s) : (int)strlen(s);
                em_line(e, "(void)%.*s;", len, s);
                s = end ? end + 2 : s + len;
            }
            em_line(e, "return 0;");
            e->indent--;
            em_line(e, "}");
        }
    }
}

/* Where a batched twin's lane loop starts: after the SIMD blocks, if any. */
const char *simd_start(Emit *e, int which)
{
    if (!simd_ok(e->f))
        return "0";
    VE v = {.e = e, .I = &isas[0]};
    return arena_printf(e->u->arena, "(ptrdiff_t)%s__simd_%s(%s)", e->f->name, twin_name[which],
                        typed_args(&v, e->f, which));
}
