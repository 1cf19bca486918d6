/*
 * emit_ws.c — the tape an adjoint call records, sized before the call.
 *
 * A kernel whose adjoint records on a tape gets, next to its twins,
 *
 *   static size_t f__ws_lane(<f's integer parameters>)
 *       the bytes one lane pushes: the adjoint's forward sweep with every
 *       double computation and every array access taken out — only the
 *       integer *skeleton* that decides control flow (loop counters, index
 *       and bound arithmetic) runs, and each push adds its size;
 *   size_t f_workspace(n, <integer parameters with lane strides>)
 *       the maximum over lanes (the tape is reused lane after lane), once
 *       when every integer argument is shared; declared in the header with
 *       f_WORKSPACE_KIND, and the registry's `workspace` entry.
 *
 * An integer variable belongs to the skeleton if every assignment to it is
 * integer arithmetic of skeleton values and constants, under conditions of
 * the skeleton (a greatest fixpoint: `j = j + 1` under `j <= i` qualifies).
 * A branch on anything else is counted as the larger of its two sides.  A
 * loop whose condition is not in the skeleton has a data-dependent trip
 * count: the kernel's size is then an estimate (TWINC_WS_ESTIMATE) — jump
 * flags (break, return) are taken as never set, and a loop still outside the
 * skeleton is counted once — and the twin grows its tape if it needs more.
 * Otherwise the size is a bound (TWINC_WS_BOUND): exact for the forward
 * sweep, plus the largest tape of a called kernel's reverse sweep.
 */
#include <string.h>

#include "twinc_gen.h"

typedef struct Ws {
    Emit *e;
    bool *comp;       /* by var id: part of the skeleton */
    bool force_flags; /* V_FLAG variables are constant 0 */
    bool changed;
    bool estimate;
} Ws;

static bool opnd_comp(Ws *w, const Opnd *o)
{
    if (o->kind == O_NONE)
        return true;
    if (o->kind == O_CONST)
        return ty_is_int(o->ty);
    return !o->v->is_array && ty_is_int(o->v->ty) && w->comp[o->v->id];
}

static bool ins_comp(Ws *w, const Ins *in)
{
    switch (in->op) {
    case OP_LOAD:
    case OP_STORE:
    case OP_CALL:
    case OP_BUILTIN:
        return false;
    default:
        return opnd_comp(w, &in->a) && opnd_comp(w, &in->b);
    }
}

static void kill(Ws *w, Var *v)
{
    if (w->comp[v->id] && !(w->force_flags && v->kind == V_FLAG)) {
        w->comp[v->id] = false;
        w->changed = true;
    }
}

static void fix_block(Ws *w, const Block *b, bool ctl)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        if (s->kind == ST_IF) {
            bool c = ctl && opnd_comp(w, &s->cond);
            fix_block(w, &s->then, c);
            fix_block(w, &s->els, c);
            continue;
        }
        if (s->kind == ST_LOOP) {
            bool c = ctl && opnd_comp(w, &s->cond);
            fix_block(w, &s->head, c);
            fix_block(w, &s->body, c);
            continue;
        }
        const Ins *in = &s->ins;
        for (int k = 0; k < in->nouts; k++)
            kill(w, in->outs[k]);
        if (in->dst && in->op != OP_STORE && (!ctl || !ins_comp(w, in)))
            kill(w, in->dst);
    }
}

static bool loops_comp(Ws *w, const Block *b)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        if (s->kind == ST_IF && (!loops_comp(w, &s->then) || !loops_comp(w, &s->els)))
            return false;
        if (s->kind == ST_LOOP && (!opnd_comp(w, &s->cond) || !loops_comp(w, &s->head) || !loops_comp(w, &s->body)))
            return false;
        if (s->kind == ST_INS && s->ins.op == OP_CALL && s->ins.callee->uses_tape)
            for (int k = 0; k < s->ins.nargs; k++)
                if (ty_is_int(s->ins.args[k].ty) && !opnd_comp(w, &s->ins.args[k]))
                    return false;
    }
    return true;
}

static void analyse(Ws *w, Func *f, bool force)
{
    int maxid = 0;
    for (int i = 0; i < f->vars.n; i++)
        if (((Var *)f->vars.v[i])->id >= maxid)
            maxid = ((Var *)f->vars.v[i])->id + 1;
    w->comp = arena_alloc(w->e->u->arena, (size_t)maxid + 1);
    for (int i = 0; i < f->vars.n; i++) {
        Var *v = f->vars.v[i];
        w->comp[v->id] = ty_is_int(v->ty) && !v->is_array;
    }
    w->force_flags = force;
    do {
        w->changed = false;
        fix_block(w, &f->body, true);
    } while (w->changed);
}

/* Integer parameters, in order, as "int N, long m" (or "void"). */
static const char *int_params(Emit *e, Func *f, int form)
{
    Buf b = {0};
    int k = 0;
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind != V_PARAM || p->is_array || !ty_is_int(p->ty))
            continue;
        if (form == 0)
            buf_printf(&b, "%s%s %s", k ? ", " : "", ty_c(p->ty), p->name);
        else
            buf_printf(&b, ", const %s *%s, ptrdiff_t %s_ls", ty_c(p->ty), p->name, p->name);
        k++;
    }
    const char *r = arena_strdup(e->u->arena, b.s ? b.s : (form == 0 ? "void" : ""));
    buf_free(&b);
    return r;
}

static void skel_block(Ws *w, const Block *b);

static void count_branch(Ws *w, const Stmt *s)
{
    Emit *e = w->e;
    em_line(e, "twinc_b += 1;");
    if (opnd_comp(w, &s->cond)) {
        em_line(e, "if (%s) {", em_opnd(e, &s->cond));
        e->indent++;
        skel_block(w, &s->then);
        e->indent--;
        em_line(e, "} else {");
        e->indent++;
        skel_block(w, &s->els);
        e->indent--;
        em_line(e, "}");
        return;
    }
    /* a data-dependent branch: the larger side */
    int id = s->id;
    em_line(e, "{");
    e->indent++;
    em_line(e, "const size_t twinc_v%d = twinc_v, twinc_b%d = twinc_b;", id, id);
    skel_block(w, &s->then);
    em_line(e, "const size_t twinc_tv%d = twinc_v - twinc_v%d, twinc_tb%d = twinc_b - twinc_b%d;", id, id, id, id);
    em_line(e, "twinc_v = twinc_v%d;", id);
    em_line(e, "twinc_b = twinc_b%d;", id);
    skel_block(w, &s->els);
    em_line(e, "if (twinc_v < twinc_v%d + twinc_tv%d)", id, id);
    em_line(e, "    twinc_v = twinc_v%d + twinc_tv%d;", id, id);
    em_line(e, "if (twinc_b < twinc_b%d + twinc_tb%d)", id, id);
    em_line(e, "    twinc_b = twinc_b%d + twinc_tb%d;", id, id);
    e->indent--;
    em_line(e, "}");
}

static void skel_ins(Ws *w, const Ins *in)
{
    Emit *e = w->e;
    int pushes = in->save_dst ? 1 : 0;
    for (int k = 0; k < in->nouts; k++)
        pushes += in->save_outs[k];
    if (pushes)
        em_line(e, "twinc_v += %d;", pushes);
    if (in->sel_byte)
        em_line(e, "twinc_b += 1;");
    if (in->op == OP_CALL && in->callee->uses_tape) {
        /* the callee records its own tape when the reverse sweep reaches it */
        Buf b = {0};
        buf_printf(&b, "%s__ws_lane(", in->callee->name);
        int k = 0, ki = 0;
        bool ok = true;
        for (int i = 0; i < in->callee->params.n; i++) {
            Var *p = in->callee->params.v[i];
            if (p->kind == V_OUT)
                continue;
            const Opnd *a = &in->args[ki++];
            if (p->is_array || !ty_is_int(p->ty))
                continue;
            ok &= opnd_comp(w, a);
            buf_printf(&b, "%s%s", k++ ? ", " : "", em_opnd(e, a));
        }
        buf_puts(&b, ")");
        if (ok) {
            em_line(e, "{");
            em_line(e, "    const size_t twinc_c = %s;", b.s);
            em_line(e, "    if (twinc_c > twinc_x)");
            em_line(e, "        twinc_x = twinc_c;");
            em_line(e, "}");
        } else {
            w->estimate = true;
        }
        buf_free(&b);
        return;
    }
    if (!in->dst || in->op == OP_STORE || !ty_is_int(in->dst->ty) || in->dst->is_array || !w->comp[in->dst->id])
        return;
    if (w->force_flags && in->dst->kind == V_FLAG)
        return;
    if ((in->op == OP_DIV || in->op == OP_MOD) && w->estimate) /* may run where the user's code would not */
        em_line(e, "%s = %s ? %s : 0;", in->dst->name, em_opnd(e, &in->b), em_value_expr(e, in));
    else
        em_line(e, "%s = %s;", in->dst->name, em_value_expr(e, in));
}

static void skel_block(Ws *w, const Block *b)
{
    Emit *e = w->e;
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        if (s->kind == ST_INS) {
            skel_ins(w, &s->ins);
        } else if (s->kind == ST_IF) {
            count_branch(w, s);
        } else if (opnd_comp(w, &s->cond)) {
            em_line(e, "for (;;) {");
            e->indent++;
            skel_block(w, &s->head);
            em_line(e, "if (!%s)", em_opnd(e, &s->cond));
            em_line(e, "    break;");
            skel_block(w, &s->body);
            e->indent--;
            em_line(e, "}");
            em_line(e, "twinc_v += 1; /* the trip count */");
        } else {
            em_line(e, "/* a loop with a data-dependent trip count, counted once */");
            em_line(e, "{");
            e->indent++;
            skel_block(w, &s->head);
            skel_block(w, &s->body);
            e->indent--;
            em_line(e, "}");
            em_line(e, "twinc_v += 1;");
        }
    }
}

/* TWINC_WS_BOUND or TWINC_WS_ESTIMATE, for a kernel that uses the tape */
int ws_kind(Emit *e, Func *f)
{
    Ws w = {.e = e};
    analyse(&w, f, false);
    return loops_comp(&w, &f->body) ? 1 : 2;
}

void emit_ws_lane(Emit *e)
{
    Func *f = e->f;
    if (!f->uses_tape)
        return;
    Ws w = {.e = e};
    analyse(&w, f, false);
    if (!loops_comp(&w, &f->body)) {
        w.estimate = true;
        analyse(&w, f, true);
    }
    em_line(e, "/* bytes of tape one lane of %s_adjoint records (%s) */", f->name,
             w.estimate ? "an estimate: some trip count depends on the data" : "a bound");
    em_line(e, "static size_t %s__ws_lane(%s)", f->name, int_params(e, f, 0));
    em_line(e, "{");
    e->indent++;
    em_line(e, "size_t twinc_v = 0, twinc_b = 0, twinc_x = 0;");
    for (int i = 0; i < f->vars.n; i++) {
        Var *v = f->vars.v[i];
        if (v->kind == V_PARAM) {
            if (ty_is_int(v->ty) && !v->is_array)
                em_line(e, "(void)%s;", v->name);
            continue;
        }
        if (w.comp[v->id]) { /* (forced jump flags stay 0) */
            em_line(e, "%s %s = 0;", ty_c(v->ty), v->name);
            em_line(e, "(void)%s;", v->name);
        }
    }
    skel_block(&w, &f->body);
    em_line(e, "return twinc_v * sizeof(twinc_slot) + twinc_b + twinc_x;");
    e->indent--;
    em_line(e, "}");
}

void ws_signature(Emit *e, Func *f, Buf *b)
{
    buf_printf(b, "size_t %s_workspace(size_t twinc_n%s)", f->name, int_params(e, f, 1));
}

/* f_workspace (typed) and f__ws (registry) */
void emit_ws(Emit *e)
{
    Func *f = e->f;
    if (!f->uses_tape)
        return;
    Buf sig = {0};
    ws_signature(e, f, &sig);
    em_line(e, "%s", sig.s);
    buf_free(&sig);
    em_line(e, "{");
    e->indent++;
    em_line(e, "size_t twinc_max = 0;");
    Buf shared = {0}, call = {0}, thunk = {0};
    buf_puts(&shared, "1");
    buf_printf(&call, "%s__ws_lane(", f->name);
    buf_printf(&thunk, "return %s_workspace(n", f->name);
    int k = 0;
    for (int i = 0; i < f->params.n; i++) {
        Var *p = f->params.v[i];
        if (p->kind != V_PARAM || p->is_array || !ty_is_int(p->ty))
            continue;
        em_line(e, "if (twinc_n && !%s)", p->name);
        em_line(e, "    return 0;");
        buf_printf(&shared, " && %s_ls == 0", p->name);
        buf_printf(&call, "%s%s[twinc_i * %s_ls]", k++ ? ", " : "", p->name, p->name);
        buf_printf(&thunk, ", (const %s *)val[%d].p, val[%d].ls", ty_c(p->ty), p->param_index, p->param_index);
    }
    buf_puts(&call, ")");
    em_line(e, "const size_t twinc_lanes = (%s) && twinc_n ? 1 : twinc_n;", shared.s);
    em_line(e, "for (ptrdiff_t twinc_i = 0; twinc_i < (ptrdiff_t)twinc_lanes; twinc_i++) {");
    em_line(e, "    const size_t twinc_s = %s;", call.s);
    em_line(e, "    if (twinc_s > twinc_max)");
    em_line(e, "        twinc_max = twinc_s;");
    em_line(e, "}");
    em_line(e, "/* and up to 7 bytes to align the caller's base */");
    em_line(e, "return twinc_max ? twinc_max + sizeof(twinc_slot) - 1 : 0;");
    e->indent--;
    em_line(e, "}");
    em_line(e, "static size_t %s__ws(size_t n, const twinc_arg *val)", f->name);
    em_line(e, "{");
    em_line(e, "    (void)val;");
    em_line(e, "    %s);", thunk.s);
    em_line(e, "}");
    buf_free(&shared);
    buf_free(&call);
    buf_free(&thunk);
}
