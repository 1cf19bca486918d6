/*
 * tbr.c — to be recorded: what the adjoint's forward sweep must save.
 *
 * The reverse sweep evaluates partial derivatives with the values operands
 * had when the forward sweep ran.  A variable is *needed* if some active
 * instruction's partials read it: both factors of a product, the divisor and
 * quotient of a division, the arguments and result of a builtin, and every
 * argument of a call (the callee's adjoint recomputes its own forward sweep).
 * Sums, differences, negation and copies have constant partials and need
 * nothing.
 *
 * A needed variable that is assigned at more than one place (a parameter
 * counts as assigned on entry) may be overwritten after it was read, so every
 * assignment to it saves the old value in the forward sweep and restores it
 * once the reverse sweep has passed that assignment (Tapenade's push/pop; in
 * loop-free code each assignment runs at most once, so a save is one local
 * slot, and inside a loop every execution overwrites the previous iteration's
 * value, so a needed variable assigned in a loop is pushed on a tape each time;
 * a declaration's initializer outside loops saves nothing, as there was
 * no earlier value).  Branch outcomes are recorded per if.  Variables assigned once are
 * never saved: recomputation is free, so we save only what is overwritten.
 */
#include "twinc_gen.h"

static void need(Opnd *o)
{
    if (o->kind == O_VAR)
        o->v->needed = true;
}

static void mark(void *ctx, Stmt *s, bool under_varying)
{
    (void)ctx;
    (void)under_varying;
    Ins *in = &s->ins;
    bool active = (in->dst && in->dst->active);
    for (int k = 0; k < in->nouts; k++)
        active |= in->outs[k]->active;
    if (!active)
        return;
    switch (in->op) {
    case OP_MUL:
        need(&in->a);
        need(&in->b);
        break;
    case OP_DIV:
        need(&in->b);
        in->dst->needed = true;
        break;
    case OP_BUILTIN:
        for (int k = 0; k < in->nargs; k++)
            need(&in->args[k]);
        in->dst->needed = true;
        break;
    case OP_CALL:
        for (int k = 0; k < in->nargs; k++)
            need(&in->args[k]);
        break;
    case OP_LOAD: /* the reverse sweep adds into a__b[index] */
        need(&in->b);
        break;
    case OP_STORE: /* ... and reads and clears dst__b[index] */
        need(&in->a);
        break;
    default:
        break;
    }
}

typedef struct Slots {
    int n;
} Slots;

static void number(Block *b, Slots *sl)
{
    for (int i = 0; i < b->n; i++) {
        Stmt *s = b->v[i];
        if (s->kind == ST_IF) {
            s->id = sl->n++;
            number(&s->then, sl);
            number(&s->els, sl);
            continue;
        }
        if (s->kind == ST_LOOP) {
            s->id = sl->n++;
            number(&s->head, sl);
            number(&s->body, sl);
            continue;
        }
        Ins *in = &s->ins;
        in->slot = sl->n;
        /* arrays are never saved: what the reverse sweep needs of them was
         * loaded into a temporary, and that temporary is saved */
        if (in->dst && in->op != OP_STORE && in->dst->needed && (in->dst->nassign > 1 || in->in_loop) &&
            !in->first_def) {
            in->save_dst = true;
            sl->n++;
        }
        for (int k = 0; k < in->nouts; k++)
            if (in->outs[k]->needed && (in->outs[k]->nassign > 1 || in->in_loop)) {
                in->save_outs[k] = true;
                sl->n++;
            }
    }
}

static bool calls_tape_user(Block *b)
{
    for (int i = 0; i < b->n; i++) {
        Stmt *s = b->v[i];
        if (s->kind == ST_IF && (calls_tape_user(&s->then) || calls_tape_user(&s->els)))
            return true;
        if (s->kind == ST_LOOP)
            return true;
        if (s->kind == ST_INS && s->ins.op == OP_CALL && s->ins.callee->uses_tape)
            return true;
    }
    return false;
}

void tbr_unit(Unit *u)
{
    /* a kernel that calls a kernel with loops records on the same tape */
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < u->funcs.n; i++) {
            Func *f = u->funcs.v[i];
            if (f->lowered && !f->uses_tape && calls_tape_user(&f->body))
                changed = f->uses_tape = true;
        }
    }
    for (int i = 0; i < u->funcs.n; i++) {
        Func *f = u->funcs.v[i];
        if (!f->lowered)
            continue;
        ir_walk(&f->body, mark, NULL);
        Slots sl = {0};
        number(&f->body, &sl);
        f->nslots = sl.n;
    }
}
