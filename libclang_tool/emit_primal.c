/*
 * emit_primal.c — the per-lane primal: the user's function, re-emitted from
 * the IR.  It must give bit-identical results to the user's own function
 * (every temporary is a double or an integer of the C type clang gave the
 * expression, and C rounds each operation), and it is what the adjoint's
 * forward sweep and the registry's batched primal run.
 */
#include "twinc_gen.h"

/* The call of a callee's per-lane primal: outputs go straight to locals. */
static const char *call_expr(Emit *e, const Ins *in, const char *suffix)
{
    Arena *a = e->u->arena;
    Buf b = {0};
    buf_printf(&b, "%s%s(", in->callee->name, suffix);
    int ki = 0, ko = 0;
    for (int i = 0; i < in->callee->params.n; i++) {
        Var *p = in->callee->params.v[i];
        if (i)
            buf_puts(&b, ", ");
        if (p->kind == V_OUT)
            buf_printf(&b, "&%s", in->outs[ko++]->name);
        else
            buf_puts(&b, em_opnd(e, &in->args[ki++]));
    }
    buf_puts(&b, ")");
    const char *r = arena_strdup(a, b.s);
    buf_free(&b);
    return r;
}

void em_primal_ins(Emit *e, const Ins *in)
{
    if (in->op == OP_STORE) {
        em_line(e, "%s = %s;", em_elem(e, in->dst, em_opnd(e, &in->a), 0), em_opnd(e, &in->b));
        return;
    }
    if (in->op == OP_CALL) {
        if (in->dst)
            em_line(e, "%s = %s;", in->dst->name, call_expr(e, in, "__lane"));
        else
            em_line(e, "%s;", call_expr(e, in, "__lane"));
        return;
    }
    em_line(e, "%s = %s;", in->dst->name, em_value_expr(e, in));
}

static void block(Emit *e, const Block *b)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        em_srcline(e, s->loc);
        if (s->kind == ST_INS) {
            em_primal_ins(e, &s->ins);
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

/* Store the output locals through their pointers. */
void em_store_outputs(Emit *e, const char *suffix_var, const char *suffix_ptr)
{
    for (int i = 0; i < e->f->params.n; i++) {
        Var *p = e->f->params.v[i];
        if (p->kind == V_OUT)
            em_line(e, "*%s%s = %s%s;", p->name, suffix_ptr, p->name, suffix_var);
    }
}

void emit_lane_primal(Emit *e)
{
    Func *f = e->f;
    em_line(e, "%s", em_lane_signature(e, f, 0));
    em_line(e, "{");
    e->indent++;
    em_void_params(e);
    em_decl_locals(e, NULL, NULL);
    block(e, &f->body);
    em_twinline(e);
    em_store_outputs(e, "", "__p");
    if (f->retvar)
        em_line(e, "return %s;", f->retvar->name);
    e->indent--;
    em_line(e, "}");
}
