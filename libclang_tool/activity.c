/*
 * activity.c — which variables carry derivatives.
 *
 * A variable is *varied* if its value depends differentiably on an active
 * input (a double parameter not named in passive(...)), and *useful* if an
 * output (the return value or a double * output) depends differentiably on
 * it.  Active = varied and useful and of type double.  Only active variables
 * get tangents and adjoints; every other instruction is primal only.
 *
 * The analysis is flow-insensitive (one fact per variable, iterated to a fixed
 * point), so it can over-approximate but never loses a dependency: a variable
 * assigned once from an active value and once from a constant is active, and
 * the constant assignment zeroes its derivative.  Integer values and
 * comparisons carry no derivative; a branch on an active value changes which
 * instructions run, not what they differentiate.
 *
 * Arrays are one fact each: storing an active value into any element makes the
 * array active, and loading from an active array gives an active value.
 *
 * A call passes derivatives through the callee's active parameters only; an
 * argument that carries a derivative into a parameter the callee declared
 * passive would silently lose it, so that is an error.
 */
#include <string.h>

#include "twinc_gen.h"

/* Is operand k (an index into the instruction's inputs) a differentiable
 * input of the instruction?  For calls, k indexes the callee's inputs. */
static bool diff_input(const Ins *in, const Opnd *o, int k)
{
    if (!in->dst && in->op != OP_CALL)
        return false;
    if (o->kind != O_VAR || o->v->ty != TY_DOUBLE)
        return false;
    switch (in->op) {
    case OP_COPY: case OP_CONV: case OP_NEG: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
        return in->dst->ty == TY_DOUBLE;
    case OP_BUILTIN:
    case OP_LOAD:  /* the array, not the index (an integer) */
    case OP_STORE: /* the value stored */
        return true;
    case OP_CALL: {
        int seen = 0;
        for (int i = 0; i < in->callee->params.n; i++) {
            Var *p = in->callee->params.v[i];
            if (p->kind == V_OUT)
                continue;
            if (seen++ == k)
                return p->ty == TY_DOUBLE && !p->passive;
        }
        return false;
    }
    default:
        return false;
    }
}

/* The instruction's inputs, as an array (a, b) or the call/builtin args. */
static int inputs(const Ins *in, const Opnd **v)
{
    if (in->op == OP_CALL || in->op == OP_BUILTIN) {
        *v = in->args;
        return in->nargs;
    }
    *v = &in->a;
    return in->b.kind == O_NONE ? 1 : 2;
}

typedef struct Ctx {
    bool changed;
    Unit *u;
} Ctx;

static bool set(bool *flag)
{
    if (*flag)
        return false;
    *flag = true;
    return true;
}

static void forward(void *vctx, Stmt *s, bool under_varying)
{
    (void)under_varying;
    Ctx *c = vctx;
    Ins *in = &s->ins;
    const Opnd *ops;
    int n = inputs(in, &ops);
    bool varied = false;
    for (int k = 0; k < n; k++)
        if (diff_input(in, &ops[k], k) && ops[k].v->varied)
            varied = true;
    if (!varied)
        return;
    if (in->dst && in->dst->ty == TY_DOUBLE)
        c->changed |= set(&in->dst->varied);
    for (int k = 0; k < in->nouts; k++)
        c->changed |= set(&in->outs[k]->varied);
}

static void backward(void *vctx, Stmt *s, bool under_varying)
{
    (void)under_varying;
    Ctx *c = vctx;
    Ins *in = &s->ins;
    bool useful = in->dst && in->dst->useful;
    for (int k = 0; k < in->nouts; k++)
        useful |= in->outs[k]->useful;
    if (!useful)
        return;
    const Opnd *ops;
    int n = inputs(in, &ops);
    for (int k = 0; k < n; k++)
        if (diff_input(in, &ops[k], k))
            c->changed |= set(&ops[k].v->useful);
}

static void check_calls(void *vctx, Stmt *s, bool under_varying)
{
    (void)under_varying;
    Ctx *c = vctx;
    Ins *in = &s->ins;
    if (in->op != OP_CALL)
        return;
    bool useful = in->dst && in->dst->useful;
    for (int k = 0; k < in->nouts; k++)
        useful |= in->outs[k]->useful;
    int k = 0;
    for (int i = 0; i < in->callee->params.n; i++) {
        Var *p = in->callee->params.v[i];
        if (p->kind == V_OUT)
            continue;
        const Opnd *o = &in->args[k++];
        if (useful && p->passive && o->kind == O_VAR && o->v->varied && o->v->ty == TY_DOUBLE)
            diag_error(c->u->diag, s->loc,
                       "argument '%s' carries a derivative into parameter '%s' of '%s', which is "
                       "declared passive; the derivative would be lost", o->v->user_name, p->name,
                       in->callee->name);
    }
}

void activity_unit(Unit *u)
{
    for (int i = 0; i < u->funcs.n; i++) {
        Func *f = u->funcs.v[i];
        if (!f->lowered)
            continue;
        for (int k = 0; k < f->vars.n; k++) {
            Var *v = f->vars.v[k];
            v->varied = v->kind == V_PARAM && v->ty == TY_DOUBLE && !v->passive;
            v->useful = (v->kind == V_OUT || v->kind == V_RET || (v->is_array && v->inout)) && v->ty == TY_DOUBLE;
        }
        Ctx c = {true, u};
        while (c.changed) {
            c.changed = false;
            ir_walk(&f->body, forward, &c);
        }
        c.changed = true;
        while (c.changed) {
            c.changed = false;
            ir_walk(&f->body, backward, &c);
        }
        for (int k = 0; k < f->vars.n; k++) {
            Var *v = f->vars.v[k];
            v->active = v->varied && v->useful && v->ty == TY_DOUBLE;
        }
        ir_walk(&f->body, check_calls, &c);
    }
}
