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
#include <string.h>

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
    case OP_BUILTIN: {
        /* only what the partials read: exp needs its result, log its
         * argument; fmin/fmax record the winner as a byte and need neither */
        const Builtin *bt = &builtin_table[in->builtin];
        if (bt->kind == BK_SELECT) {
            in->sel_byte = true;
            break;
        }
        for (int k = 0; k < in->nargs; k++) {
            char pat[3] = {'%', (char)('0' + k), 0};
            for (int q = 0; q < 2; q++)
                if (bt->partial[q] && strstr(bt->partial[q], pat))
                    need(&in->args[k]);
        }
        for (int q = 0; q < 2; q++)
            if (bt->partial[q] && strstr(bt->partial[q], "%r"))
                in->dst->needed = true;
        break;
    }
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

static bool invertible(Stmt *prev, Ins *in);

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
            !in->first_def && !in->recompute) {
            if (i > 0 && invertible(b->v[i - 1], in))
                in->invert = true;
            else
                in->save_dst = true, sl->n++;
        }
        if (in->sel_byte)
            sl->n++;
        for (int k = 0; k < in->nouts; k++)
            if (in->outs[k]->needed && (in->outs[k]->nassign > 1 || in->in_loop)) {
                in->save_outs[k] = true;
                sl->n++;
            }
    }
}

/* j = t right after t = j + c (or j - c, c + j), all of one integer type: the
 * old j is the new one minus c, so the reverse sweep restores it by
 * arithmetic instead of a push (loop counters: i++, j -= 2). */
static bool invertible(Stmt *prev, Ins *in)
{
    Var *j = in->dst;
    if (in->op != OP_COPY || !ty_is_int(j->ty) || in->a.kind != O_VAR || prev->kind != ST_INS)
        return false;
    Ins *d = &prev->ins;
    Var *t = in->a.v;
    if (d->dst != t || t->ty != j->ty || (d->op != OP_ADD && d->op != OP_SUB))
        return false;
    long long c;
    if (d->a.kind == O_VAR && d->a.v == j && d->b.kind == O_CONST && ty_is_int(d->b.ty))
        c = d->b.i;
    else if (d->op == OP_ADD && d->b.kind == O_VAR && d->b.v == j && d->a.kind == O_CONST && ty_is_int(d->a.ty))
        c = d->a.i;
    else
        return false;
    if (c < -(1LL << 40) || c > (1LL << 40))
        return false;
    in->invert_by = d->op == OP_ADD ? c : -c;
    return true;
}

/* ---- recomputation instead of saving ----
 *
 * A variable assigned once, inside a loop, by a cheap operation (integer or
 * double arithmetic, a conversion, a copy: no load, call or builtin), whose
 * every read is later in the same block, need not be pushed each iteration:
 * the reverse sweep recomputes it just before it reverses the last statement
 * that reads it, provided its operands still hold the values they had at the
 * definition there — each operand is restored anyway (needed), never changes
 * (assigned once, outside loops), or is itself recomputed from the same
 * block.  Index arithmetic from a loop counter costs no tape at all once the
 * counter is restored by invertible() above. */

static int reads_opnd(const Opnd *o, const Var *v) { return o->kind == O_VAR && o->v == v; }

static int reads_block(const Block *b, int from, const Var *v);
static int reads_stmt(const Stmt *s, const Var *v)
{
    if (s->kind == ST_IF)
        return reads_opnd(&s->cond, v) + reads_block(&s->then, 0, v) + reads_block(&s->els, 0, v);
    if (s->kind == ST_LOOP)
        return reads_opnd(&s->cond, v) + reads_block(&s->head, 0, v) + reads_block(&s->body, 0, v);
    const Ins *in = &s->ins;
    int n = reads_opnd(&in->a, v) + reads_opnd(&in->b, v);
    for (int k = 0; k < in->nargs; k++)
        n += reads_opnd(&in->args[k], v);
    return n;
}
static int reads_block(const Block *b, int from, const Var *v)
{
    int n = 0;
    for (int i = from; i < b->n; i++)
        n += reads_stmt(b->v[i], v);
    return n;
}

static bool assigns_block(const Block *b, int from, int to, const Var *v);
static bool assigns_stmt(const Stmt *s, const Var *v)
{
    if (s->kind == ST_IF)
        return assigns_block(&s->then, 0, s->then.n - 1, v) || assigns_block(&s->els, 0, s->els.n - 1, v);
    if (s->kind == ST_LOOP)
        return assigns_block(&s->head, 0, s->head.n - 1, v) || assigns_block(&s->body, 0, s->body.n - 1, v);
    if (s->ins.dst == v && s->ins.op != OP_STORE)
        return true;
    for (int k = 0; k < s->ins.nouts; k++)
        if (s->ins.outs[k] == v)
            return true;
    return false;
}
static bool assigns_block(const Block *b, int from, int to, const Var *v)
{
    for (int i = from; i <= to && i < b->n; i++)
        if (assigns_stmt(b->v[i], v))
            return true;
    return false;
}

static bool cheap(Op op)
{
    return op != OP_LOAD && op != OP_STORE && op != OP_CALL && op != OP_BUILTIN;
}

typedef struct Rc {
    Func *f;
    bool *assigned_in_loop; /* by var id */
    bool changed;
} Rc;

static int nreads_total(Func *f, const Var *v) { return reads_block(&f->body, 0, v); }

/* candidates: dst assigned once, in a loop, by a cheap op, read only later in its block */
static bool candidate(Rc *rc, const Block *b, int i)
{
    const Stmt *s = b->v[i];
    if (s->kind != ST_INS)
        return false;
    const Ins *in = &s->ins;
    Var *x = in->dst;
    if (!in->in_loop || !x || !cheap(in->op) || x->is_array || x->nassign != 1 ||
        (x->kind != V_TEMP && x->kind != V_LOCAL))
        return false;
    if (reads_stmt(s, x))
        return false;
    return reads_block(b, i + 1, x) == nreads_total(rc->f, x);
}

static int def_index(const Block *b, const Var *v)
{
    for (int i = 0; i < b->n; i++)
        if (b->v[i]->kind == ST_INS && b->v[i]->ins.dst == v && b->v[i]->ins.op != OP_STORE)
            return i;
    return -1;
}

/* an operand whose value at the definition the reverse sweep can still see */
static bool operand_ok(Rc *rc, const Block *b, const Opnd *o)
{
    if (o->kind != O_VAR)
        return true;
    Var *y = o->v;
    if (y->is_array)
        return false;
    /* an integer (a loop counter) is restored once for every value derived
     * from it, and for free where invertible() applies */
    if (y->needed || !rc->assigned_in_loop[y->id] || ty_is_int(y->ty))
        return true;
    int k = def_index(b, y);
    return k >= 0 && candidate(rc, b, k);
}

static void rc_block(Rc *rc, Block *b)
{
    for (int i = 0; i < b->n; i++) {
        Stmt *s = b->v[i];
        if (s->kind == ST_IF) {
            rc_block(rc, &s->then);
            rc_block(rc, &s->els);
            continue;
        }
        if (s->kind == ST_LOOP) {
            rc_block(rc, &s->head);
            rc_block(rc, &s->body);
            continue;
        }
        Ins *in = &s->ins;
        if (in->recompute || !in->dst || !in->dst->needed || !candidate(rc, b, i))
            continue;
        if (!operand_ok(rc, b, &in->a) || !operand_ok(rc, b, &in->b))
            continue;
        in->recompute = true;
        need(&in->a);
        need(&in->b);
        rc->changed = true;
    }
}

static int last_read(const Block *b, int from, const Var *v)
{
    int q = -1;
    for (int i = from; i < b->n; i++)
        if (reads_stmt(b->v[i], v))
            q = i;
    return q;
}

/* where to recompute, and whether the operands are still right there */
static void place_block(Rc *rc, Block *b)
{
    for (int i = 0; i < b->n; i++) {
        Stmt *s = b->v[i];
        if (s->kind == ST_IF)
            place_block(rc, &s->then), place_block(rc, &s->els);
        else if (s->kind == ST_LOOP)
            place_block(rc, &s->head), place_block(rc, &s->body);
    }
    for (bool again = true; again;) {
        again = false;
        for (int i = b->n - 1; i >= 0; i--) {
            Stmt *s = b->v[i];
            if (s->kind != ST_INS || !s->ins.recompute)
                continue;
            Ins *in = &s->ins;
            int q = last_read(b, i + 1, in->dst);
            for (int k = i + 1; k < b->n; k++) {
                Stmt *t = b->v[k];
                if (t->kind == ST_INS && t->ins.recompute &&
                    (reads_opnd(&t->ins.a, in->dst) || reads_opnd(&t->ins.b, in->dst)) && t->ins.recompute_at > q)
                    q = t->ins.recompute_at;
            }
            in->recompute_at = q;
            const Opnd *ops[2] = {&in->a, &in->b};
            for (int k = 0; k < 2; k++) {
                if (ops[k]->kind != O_VAR)
                    continue;
                int d = def_index(b, ops[k]->v);
                bool rec = d >= 0 && d < i && b->v[d]->ins.recompute;
                if (!rec && assigns_block(b, i + 1, q, ops[k]->v)) {
                    in->recompute = false; /* saved after all */
                    again = true;
                }
            }
        }
    }
    (void)rc;
}

static void loop_assigns(Block *b, bool in_loop, bool *out)
{
    for (int i = 0; i < b->n; i++) {
        Stmt *s = b->v[i];
        if (s->kind == ST_IF) {
            loop_assigns(&s->then, in_loop, out);
            loop_assigns(&s->els, in_loop, out);
        } else if (s->kind == ST_LOOP) {
            loop_assigns(&s->head, true, out);
            loop_assigns(&s->body, true, out);
        } else if (in_loop) {
            if (s->ins.dst && s->ins.op != OP_STORE)
                out[s->ins.dst->id] = true;
            for (int k = 0; k < s->ins.nouts; k++)
                out[s->ins.outs[k]->id] = true;
        }
    }
}

static void recompute_func(Func *f, Arena *a)
{
    int maxid = 0;
    for (int i = 0; i < f->vars.n; i++)
        if (((Var *)f->vars.v[i])->id >= maxid)
            maxid = ((Var *)f->vars.v[i])->id + 1;
    Rc rc = {f, arena_alloc(a, (size_t)maxid + 1), true};
    loop_assigns(&f->body, false, rc.assigned_in_loop);
    while (rc.changed) {
        rc.changed = false;
        rc_block(&rc, &f->body);
    }
    place_block(&rc, &f->body);
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
        if (f->uses_tape)
            recompute_func(f, u->arena);
        Slots sl = {0};
        number(&f->body, &sl);
        f->nslots = sl.n;
    }
}
