/*
 * varying.c — which values differ per lane (varying) and which every lane
 * shares (uniform).
 *
 * Parameters are varying unless named in uniform(...), in which case the twin
 * requires lane stride 0 for them.  A value is varying if an operand is, or if
 * it is assigned under a branch whose condition is varying (control
 * dependence: `if (S > K) x = 1; else x = 2;` makes x varying).  Constants are
 * uniform.  Iterated to a fixed point, since a condition may become varying
 * only after a later assignment to it is seen.
 *
 * The batched twins use this to keep uniform work scalar and to turn varying
 * branches into per-lane selection; --dump-ir shows the result.
 */
#include "twinc_gen.h"

typedef struct Ctx {
    bool changed;
} Ctx;

static void visit(void *vctx, Stmt *s, bool under_varying)
{
    Ctx *c = vctx;
    Ins *in = &s->ins;
    bool v = under_varying;
    if (in->op == OP_CALL || in->op == OP_BUILTIN) {
        for (int k = 0; k < in->nargs; k++)
            v |= in->args[k].kind == O_VAR && in->args[k].v->varying;
    } else {
        v |= in->a.kind == O_VAR && in->a.v->varying;
        v |= in->b.kind == O_VAR && in->b.v->varying;
    }
    if (!v)
        return;
    if (in->dst && !in->dst->varying) {
        in->dst->varying = true;
        c->changed = true;
    }
    for (int k = 0; k < in->nouts; k++)
        if (!in->outs[k]->varying) {
            in->outs[k]->varying = true;
            c->changed = true;
        }
}

void varying_unit(Unit *u)
{
    for (int i = 0; i < u->funcs.n; i++) {
        Func *f = u->funcs.v[i];
        if (!f->lowered)
            continue;
        for (int k = 0; k < f->vars.n; k++) {
            Var *v = f->vars.v[k];
            v->varying = v->kind == V_PARAM && !v->uniform;
        }
        Ctx c = {true};
        while (c.changed) {
            c.changed = false;
            ir_walk(&f->body, visit, &c);
        }
    }
}
