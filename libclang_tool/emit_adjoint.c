/*
 * emit_adjoint.c — the per-lane adjoint (reverse mode).
 *
 * Forward sweep: the primal, plus, where tbr.c asked for it, the old value of
 * a variable saved in a slot just before it is overwritten, and every branch
 * outcome recorded.  Reverse sweep: the statements in reverse order, branches
 * replayed from their recorded outcome, each instruction's adjoint rule
 *     t = dst__b; dst__b = 0;  a__b += (d op/d a) t;  b__b += (d op/d b) t;
 * and then the saved value of dst restored, so that the instructions before it
 * see the operands they saw in the forward sweep.  Adjoints of the inputs are
 * finally ADDED to the caller's accumulators.  A call to another kernel runs
 * that kernel's own per-lane adjoint with the arguments it had.
 */
#include "twinc_gen.h"

void em_primal_ins(Emit *e, const Ins *in);
void em_store_outputs(Emit *e, const char *suffix_var, const char *suffix_ptr);

static bool tape(Emit *e) { return e->f->uses_tape; }

/* Save the old value of v before it is overwritten: a slot, or the tape. */
static void save(Emit *e, const Var *v, int slot)
{
    if (!tape(e))
        em_line(e, "twinc_s%d = %s;", slot, v->name);
    else if (ty_is_int(v->ty))
        em_line(e, "twinc_pushi(tp, (long long)%s);", v->name);
    else
        em_line(e, "twinc_push(tp, %s);", v->name);
}

static void load_saved(Emit *e, const Var *v, int slot)
{
    if (!tape(e))
        em_line(e, "%s = twinc_s%d;", v->name, slot);
    else if (ty_is_int(v->ty))
        em_line(e, "%s = (%s)twinc_popi(tp);", v->name, ty_c(v->ty));
    else
        em_line(e, "%s = twinc_pop(tp);", v->name);
}

/* the slot of an fmin/fmax outcome: after the instruction's save slots */
static int sel_slot(const Ins *in)
{
    int k = in->slot + (in->save_dst ? 1 : 0);
    for (int i = 0; i < in->nouts; i++)
        k += in->save_outs[i];
    return k;
}

static const char *sel_cond(Emit *e, const Ins *in)
{
    return em_subst(e, builtin_table[in->builtin].partial[0], in);
}

static void forward(Emit *e, const Block *b)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        em_srcline(e, s->loc);
        if (s->kind == ST_LOOP) {
            /* count the iterations; the count goes on the tape after the loop */
            em_line(e, "{");
            e->indent++;
            em_line(e, "long long twinc_n%d = 0;", s->id);
            em_line(e, "for (;;) {");
            e->indent++;
            forward(e, &s->head);
            em_line(e, "if (!%s)", em_opnd(e, &s->cond));
            em_line(e, "    break;");
            forward(e, &s->body);
            em_line(e, "twinc_n%d++;", s->id);
            e->indent--;
            em_line(e, "}");
            em_line(e, "twinc_pushi(tp, twinc_n%d);", s->id);
            e->indent--;
            em_line(e, "}");
            continue;
        }
        if (s->kind == ST_IF) {
            em_line(e, "twinc_br%d = (%s) != 0;", s->id, em_opnd(e, &s->cond));
            em_line(e, "if (twinc_br%d) {", s->id);
            e->indent++;
            forward(e, &s->then);
            e->indent--;
            if (s->els.n) {
                em_line(e, "} else {");
                e->indent++;
                forward(e, &s->els);
                e->indent--;
            }
            em_line(e, "}");
            /* pushed after the branch, so that it is popped before it */
            if (tape(e))
                em_line(e, "twinc_pushb(tp, twinc_br%d);", s->id);
            continue;
        }
        const Ins *in = &s->ins;
        int slot = in->slot;
        if (in->save_dst)
            save(e, in->dst, slot++);
        for (int k = 0; k < in->nouts; k++)
            if (in->save_outs[k])
                save(e, in->outs[k], slot++);
        em_primal_ins(e, in);
        if (in->sel_byte && tape(e))
            em_line(e, "twinc_pushb(tp, %s);", sel_cond(e, in));
        else if (in->sel_byte)
            em_line(e, "twinc_c%d = %s;", sel_slot(in), sel_cond(e, in));
    }
}

/* Undo the saves of an instruction, in reverse order of saving. */
static void restore(Emit *e, const Ins *in)
{
    int nsaved = (in->save_dst ? 1 : 0);
    for (int k = 0; k < in->nouts; k++)
        nsaved += in->save_outs[k];
    int slot = in->slot + nsaved;
    for (int k = in->nouts - 1; k >= 0; k--)
        if (in->save_outs[k])
            load_saved(e, in->outs[k], --slot);
    if (in->save_dst)
        load_saved(e, in->dst, --slot);
    if (in->invert) /* in->dst = t, t = dst + c */
        em_line(e, in->invert_by >= 0 ? "%s -= %lld;" : "%s += %lld;", in->dst->name,
                in->invert_by >= 0 ? in->invert_by : -in->invert_by);
}

static void reverse_call(Emit *e, const Ins *in)
{
    Arena *a = e->u->arena;
    Func *g = in->callee;
    em_line(e, "{");
    e->indent++;
    /* an argument that is not active still needs somewhere to put its adjoint */
    bool dummy = false;
    for (int i = 0, ki = 0; i < g->params.n; i++) {
        Var *p = g->params.v[i];
        if (p->kind == V_OUT)
            continue;
        const Opnd *arg = &in->args[ki++];
        dummy |= p->ty == TY_DOUBLE && !p->passive && !opnd_active(arg);
    }
    if (dummy)
        em_line(e, "double twinc_dummy = 0.0;");
    bool ret_seed = in->dst && in->dst->active;
    if (ret_seed)
        em_line(e, "const double twinc_t = %s__b;", in->dst->name), em_line(e, "%s__b = 0.0;", in->dst->name);
    for (int k = 0; k < in->nouts; k++) {
        Var *o = in->outs[k];
        em_line(e, "double twinc_o%d = 0.0;", k);
        if (o->active)
            em_line(e, "const double twinc_t%d = %s__b;", k, o->name), em_line(e, "%s__b = 0.0;", o->name);
    }
    /* the callee's adjoint recomputes from the arguments as they were */
    restore(e, in);
    Buf b = {0};
    buf_printf(&b, "(void)%s__lane_b(", g->name);
    int ki = 0, ko = 0;
    for (int i = 0; i < g->params.n; i++) {
        Var *p = g->params.v[i];
        if (i)
            buf_puts(&b, ", ");
        if (p->kind == V_OUT) {
            Var *o = in->outs[ko];
            buf_printf(&b, "&twinc_o%d, %s", ko, o->active ? arena_printf(a, "twinc_t%d", ko) : "0.0");
            ko++;
            continue;
        }
        const Opnd *arg = &in->args[ki++];
        buf_puts(&b, em_opnd(e, arg));
        if (p->ty == TY_DOUBLE && !p->passive)
            buf_printf(&b, ", %s", opnd_active(arg) ? arena_printf(a, "&%s__b", arg->v->name) : "&twinc_dummy");
    }
    if (g->ret != TY_VOID)
        buf_printf(&b, "%s%s", ki + ko ? ", " : "", ret_seed ? "twinc_t" : "0.0");
    if (g->uses_tape)
        buf_printf(&b, "%stp", ki + ko || g->ret != TY_VOID ? ", " : "");
    buf_puts(&b, ");");
    em_line(e, "%s", b.s);
    buf_free(&b);
    e->indent--;
    em_line(e, "}");
}

static void reverse_ins(Emit *e, const Ins *in)
{
    if (in->op == OP_CALL) {
        bool any = in->dst && in->dst->active;
        for (int k = 0; k < in->nouts; k++)
            any |= in->outs[k]->active;
        if (any)
            reverse_call(e, in);
        else
            restore(e, in);
        return;
    }
    if (in->op == OP_STORE) {
        /* a[i] = v:  v__b += a__b[i]; a__b[i] = 0 */
        if (in->dst->active) {
            const char *el = em_elem(e, in->dst, em_opnd(e, &in->a), 2);
            if (opnd_active(&in->b))
                em_line(e, "%s__b += %s;", in->b.v->name, el);
            em_line(e, "%s = 0.0;", el);
        }
        return;
    }
    if (in->op == OP_LOAD && in->dst->active) {
        /* t = a[i]:  a__b[i] += t__b; t__b = 0 */
        if (in->a.v->active)
            em_line(e, "%s += %s__b;", em_elem(e, in->a.v, em_opnd(e, &in->b), 2), in->dst->name);
        em_line(e, "%s__b = 0.0;", in->dst->name);
        restore(e, in);
        return;
    }
    if (in->dst->active) {
        const char *d = in->dst->name;
        Arena *a = e->u->arena;
        em_line(e, "{");
        e->indent++;
        em_line(e, "const double twinc_t = %s__b;", d);
        em_line(e, "%s__b = 0.0;", d);
        if (in->op == OP_BUILTIN && builtin_table[in->builtin].kind == BK_SELECT) {
            /* routed, never multiplied by zero */
            const Opnd *x = &in->args[0], *y = &in->args[1];
            const char *c = tape(e) ? "twinc_popb(tp)" : arena_printf(a, "twinc_c%d", sel_slot(in));
            if (opnd_active(x) && opnd_active(y))
                em_line(e, "if (%s) %s__b += twinc_t; else %s__b += twinc_t;", c, x->v->name, y->v->name);
            else if (opnd_active(x))
                em_line(e, "if (%s) %s__b += twinc_t;", c, x->v->name);
            else if (opnd_active(y))
                em_line(e, "if (!%s) %s__b += twinc_t;", c, y->v->name);
            else
                em_line(e, "(void)twinc_t;");
        } else {
            const Opnd *ops[2];
            const char *p[2];
            int n = em_partials(e, in, ops, p), used = 0;
            for (int k = 0; k < n; k++)
                if (p[k]) {
                    em_line(e, "%s__b += %s;", ops[k]->v->name, em_term(e, in, p[k], "twinc_t"));
                    used++;
                }
            if (!used)
                em_line(e, "(void)twinc_t;");
        }
        e->indent--;
        em_line(e, "}");
        (void)a;
    }
    restore(e, in);
}

static void reverse(Emit *e, const Block *b)
{
    for (int i = b->n - 1; i >= 0; i--) {
        const Stmt *s = b->v[i];
        em_srcline(e, s->loc);
        /* cheap values this statement reads, recomputed rather than popped */
        for (int k = 0; k < i; k++)
            if (b->v[k]->kind == ST_INS && b->v[k]->ins.recompute && b->v[k]->ins.recompute_at == i)
                em_primal_ins(e, &b->v[k]->ins);
        if (s->kind == ST_INS) {
            reverse_ins(e, &s->ins);
            continue;
        }
        if (s->kind == ST_LOOP) {
            /* the head ran n + 1 times, the body n times, interleaved */
            em_line(e, "{");
            e->indent++;
            em_line(e, "long long twinc_n%d = twinc_popi(tp);", s->id);
            reverse(e, &s->head);
            em_line(e, "for (; twinc_n%d > 0; twinc_n%d--) {", s->id, s->id);
            e->indent++;
            reverse(e, &s->body);
            reverse(e, &s->head);
            e->indent--;
            em_line(e, "}");
            e->indent--;
            em_line(e, "}");
            continue;
        }
        if (tape(e))
            em_line(e, "if (twinc_popb(tp)) {");
        else
            em_line(e, "if (twinc_br%d) {", s->id);
        e->indent++;
        reverse(e, &s->then);
        e->indent--;
        if (s->els.n) {
            em_line(e, "} else {");
            e->indent++;
            reverse(e, &s->els);
            e->indent--;
        }
        em_line(e, "}");
    }
}

/* Declare save slots with the type of what they hold, and branch slots. */
static void decl_slots(Emit *e, const Block *b)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        if (s->kind == ST_LOOP) {
            decl_slots(e, &s->head);
            decl_slots(e, &s->body);
            continue;
        }
        if (s->kind == ST_IF) {
            em_line(e, "int twinc_br%d = 0;", s->id);
            decl_slots(e, &s->then);
            decl_slots(e, &s->els);
            continue;
        }
        const Ins *in = &s->ins;
        int slot = in->slot;
        if (tape(e))
            continue;
        if (in->save_dst)
            em_line(e, "%s twinc_s%d = 0;", ty_c(in->dst->ty), slot++);
        for (int k = 0; k < in->nouts; k++)
            if (in->save_outs[k])
                em_line(e, "double twinc_s%d = 0;", slot++);
        if (in->sel_byte)
            em_line(e, "int twinc_c%d = 0;", slot);
    }
}

void emit_lane_adjoint(Emit *e)
{
    Func *f = e->f;
    em_line(e, "%s", em_lane_signature(e, f, 2));
    em_line(e, "{");
    e->indent++;
    em_void_params(e);
    em_decl_locals(e, NULL, "__b");
    decl_slots(e, &f->body);
    em_line(e, "/* forward sweep */");
    forward(e, &f->body);
    em_twinline(e);
    em_store_outputs(e, "", "__p");
    if (f->retvar)
        em_line(e, "const double twinc_value = %s;", f->retvar->name);
    em_line(e, "/* reverse sweep: seeds of the outputs */");
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind == V_OUT)
            em_line(e, p->active ? "%s__b += %s__bs;" : "(void)%s__bs;", p->name, p->name);
    }
    if (f->retvar) {
        if (f->retvar->active)
            em_line(e, "%s__b += ret__bs;", f->retvar->name);
        else
            em_line(e, "(void)ret__bs;");
    }
    reverse(e, &f->body);
    em_twinline(e);
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind != V_PARAM || p->ty != TY_DOUBLE || p->passive)
            continue;
        if (p->is_array) { /* accumulated in place through the pointer */
            if (!p->active)
                em_line(e, "(void)%s__bp;", p->name), em_line(e, "(void)%s__bes;", p->name);
            continue;
        }
        if (p->active)
            em_line(e, "*%s__bp += %s__b;", p->name, p->name);
        else
            em_line(e, "(void)%s__bp;", p->name);
    }
    if (f->retvar)
        em_line(e, "return twinc_value;");
    e->indent--;
    em_line(e, "}");
}
