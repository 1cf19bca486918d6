/*
 * emit_tangent.c — the per-lane tangent (forward mode): every active value v
 * gets v__d, its derivative along the direction given for the inputs.  Each
 * instruction is followed by its tangent rule,
 *     dst = op(a, b);   dst__d = (d op/d a) a__d + (d op/d b) b__d
 * with inactive inputs' terms dropped and partials taken from the same rules
 * the adjoint uses (em_partials), so the two twins cannot disagree.
 */
#include "twinc_gen.h"

void em_primal_ins(Emit *e, const Ins *in);
void em_store_outputs(Emit *e, const char *suffix_var, const char *suffix_ptr);

static const char *dvar(Emit *e, const Opnd *o)
{
    return arena_printf(e->u->arena, "%s__d", o->v->name);
}

static void call(Emit *e, const Ins *in)
{
    Arena *a = e->u->arena;
    Buf b = {0};
    bool any_dummy = false;
    buf_printf(&b, "%s__lane_d(", in->callee->name);
    int ki = 0, ko = 0;
    for (int i = 0; i < in->callee->params.n; i++) {
        Var *p = in->callee->params.v[i];
        if (i)
            buf_puts(&b, ", ");
        if (p->kind == V_OUT) {
            Var *o = in->outs[ko++];
            buf_printf(&b, "&%s, ", o->name);
            if (o->active)
                buf_printf(&b, "&%s__d", o->name);
            else {
                buf_puts(&b, "&twinc_dummy");
                any_dummy = true;
            }
            continue;
        }
        const Opnd *arg = &in->args[ki++];
        buf_puts(&b, em_opnd(e, arg));
        if (p->ty == TY_DOUBLE && !p->passive)
            buf_printf(&b, ", %s", opnd_active(arg) ? dvar(e, arg) : "0.0");
    }
    if (in->callee->ret != TY_VOID) {
        if (in->dst && in->dst->active)
            buf_printf(&b, "%s&%s__d", ki + ko ? ", " : "", in->dst->name);
        else {
            buf_printf(&b, "%s&twinc_dummy", ki + ko ? ", " : "");
            any_dummy = true;
        }
    }
    buf_puts(&b, ")");
    if (any_dummy) {
        em_line(e, "{");
        e->indent++;
        em_line(e, "double twinc_dummy = 0.0;");
    }
    if (in->dst)
        em_line(e, "%s = %s;", in->dst->name, b.s);
    else
        em_line(e, "%s;", b.s);
    if (any_dummy) {
        e->indent--;
        em_line(e, "}");
    }
    buf_free(&b);
    (void)a;
}

static void ins(Emit *e, const Ins *in)
{
    if (in->op == OP_CALL) {
        call(e, in);
        return;
    }
    em_primal_ins(e, in);
    if (!in->dst->active)
        return;
    Arena *a = e->u->arena;
    if (in->op == OP_LOAD) { /* d a[i] = (da)[i] */
        em_line(e, "%s__d = %s;", in->dst->name,
                in->a.v->active ? em_elem(e, in->a.v, em_opnd(e, &in->b), 1) : "0.0");
        return;
    }
    if (in->op == OP_STORE) {
        em_line(e, "%s = %s;", em_elem(e, in->dst, em_opnd(e, &in->a), 1),
                opnd_active(&in->b) ? dvar(e, &in->b) : "0.0");
        return;
    }
    if (in->op == OP_BUILTIN && builtin_table[in->builtin].kind == BK_SELECT) {
        /* r = cond ? a : b  =>  r__d = cond ? a__d : b__d */
        const Opnd *x = &in->args[0], *y = &in->args[1];
        em_line(e, "%s__d = %s ? %s : %s;", in->dst->name, em_subst(e, builtin_table[in->builtin].partial[0], in),
                opnd_active(x) ? dvar(e, x) : "0.0", opnd_active(y) ? dvar(e, y) : "0.0");
        return;
    }
    const Opnd *ops[2];
    const char *p[2];
    int n = em_partials(e, in, ops, p);
    const char *sum = NULL;
    for (int k = 0; k < n; k++) {
        if (!p[k])
            continue;
        const char *term = em_term(e, in, p[k], dvar(e, ops[k]));
        sum = sum ? arena_printf(a, "%s + %s", sum, term) : term;
    }
    em_line(e, "%s__d = %s;", in->dst->name, sum ? sum : "0.0");
}

static void block(Emit *e, const Block *b)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        em_srcline(e, s->loc);
        if (s->kind == ST_INS) {
            ins(e, &s->ins);
            continue;
        }
        if (s->kind == ST_LOOP) {
            em_line(e, "for (;;) {");
            e->indent++;
            block(e, &s->head);
            em_line(e, "if (!%s)", em_opnd(e, &s->cond));
            em_line(e, "    break;");
            block(e, &s->body);
            e->indent--;
            em_line(e, "}");
            continue;
        }
        em_line(e, "if (%s) {", em_opnd(e, &s->cond));
        e->indent++;
        block(e, &s->then);
        e->indent--;
        if (s->els.n) {
            em_line(e, "} else {");
            e->indent++;
            block(e, &s->els);
            e->indent--;
        }
        em_line(e, "}");
    }
}

void emit_lane_tangent(Emit *e)
{
    Func *f = e->f;
    em_line(e, "%s", em_lane_signature(e, f, 1));
    em_line(e, "{");
    e->indent++;
    em_void_params(e);
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind == V_PARAM && p->ty == TY_DOUBLE && !p->passive && !p->active) {
            em_line(e, "(void)%s__d;", p->name);
            if (p->is_array)
                em_line(e, "(void)%s__des;", p->name);
        }
    }
    em_decl_locals(e, "__d", NULL);
    /* an active input without a direction parameter (passive) cannot occur:
     * activity starts from the non-passive inputs */
    block(e, &f->body);
    em_twinline(e);
    em_store_outputs(e, "", "__p");
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind == V_OUT)
            em_line(e, "*%s__dp = %s;", p->name, p->active ? arena_printf(e->u->arena, "%s__d", p->name) : "0.0");
    }
    if (f->retvar) {
        em_line(e, "*ret__dp = %s;", f->retvar->active ? arena_printf(e->u->arena, "%s__d", f->retvar->name) : "0.0");
        em_line(e, "return %s;", f->retvar->name);
    }
    e->indent--;
    em_line(e, "}");
}
