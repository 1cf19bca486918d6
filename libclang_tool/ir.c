/*
 * ir.c — building and printing the IR.
 *
 * The IR of a function is a tree of blocks (structured control flow: only
 * if/else for now; loops arrive as their own statement kind) whose leaves are
 * three-address instructions `dst = op a, b` on typed variables.  Every
 * expression the user wrote has been flattened into temporaries by lower.c, so
 * each emitter handles one elementary operation at a time and each analysis is
 * a walk over instructions.  `twinc gen --dump-ir=PASS` prints this form.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twinc_gen.h"

/* ORDER TY */
static const char *const ty_c_name[] = {"void", "double", "int", "long", "unsigned", "unsigned long"};
static const char *const ty_abi[] = {"0", "TWINC_T_DOUBLE", "TWINC_T_INT", "TWINC_T_LONG",
                                     "TWINC_T_UINT", "TWINC_T_ULONG"};
const char *ty_c(Ty t) { return ty_c_name[t]; }
const char *ty_abi_name(Ty t) { return ty_abi[t]; }

/* ORDER OP */
static const struct {
    const char *name, *c;
} op_info[] = {
#define X(id, name, c) {name, c},
    TWINC_OPS(X)
#undef X
};
const char *op_name(Op op) { return op_info[op].name; }
const char *op_c(Op op) { return op_info[op].c; }

Var *ir_new_var(Func *f, Arena *a, const char *name, Ty ty, VarKind kind)
{
    Var *v = arena_alloc(a, sizeof *v);
    v->id = f->vars.n;
    v->user_name = name;
    v->ty = ty;
    v->kind = kind;
    v->param_index = -1;
    /* unique C name: the user's if free, else name__N */
    const char *cand = name;
    for (int k = 2;; k++) {
        bool clash = false;
        for (int i = 0; i < f->vars.n && !clash; i++)
            clash = !strcmp(((Var *)f->vars.v[i])->name, cand);
        if (!clash)
            break;
        cand = arena_printf(a, "%s__%d", name, k);
    }
    v->name = cand;
    vec_push(a, &f->vars, v);
    return v;
}

Stmt *ir_new_stmt(Arena *a, StKind kind, SrcLoc loc)
{
    Stmt *s = arena_alloc(a, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    s->id = -1;
    s->ins.slot = -1;
    return s;
}

void ir_append(Arena *a, Block *b, Stmt *s)
{
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        Stmt **v = arena_alloc(a, sizeof(Stmt *) * (size_t)cap);
        if (b->n)
            memcpy(v, b->v, sizeof(Stmt *) * (size_t)b->n);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = s;
}

Func *unit_find(const Unit *u, const char *name)
{
    for (int i = 0; i < u->funcs.n; i++) {
        Func *f = u->funcs.v[i];
        if (!strcmp(f->name, name))
            return f;
    }
    return NULL;
}

Opnd opnd_var(Var *v) { return (Opnd){.kind = O_VAR, .ty = v->ty, .v = v}; }
Opnd opnd_double(double d) { return (Opnd){.kind = O_CONST, .ty = TY_DOUBLE, .d = d}; }
Opnd opnd_int(long long i, Ty ty) { return (Opnd){.kind = O_CONST, .ty = ty, .i = i}; }

const char *fmt_double(Arena *a, double d)
{
    if (isinf(d))
        return d > 0 ? "HUGE_VAL" : "(-HUGE_VAL)";
    if (isnan(d))
        return "NAN";
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* make sure C reads it as a double, not an int */
    if (!strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
    if (d < 0 || (d == 0 && signbit(d))) {
        char *s = arena_printf(a, "(%s)", buf);
        return s;
    }
    return arena_strdup(a, buf);
}

const char *opnd_c(Arena *a, const Opnd *o)
{
    switch (o->kind) {
    case O_VAR:
        return o->v->name;
    case O_CONST:
        if (o->ty == TY_DOUBLE)
            return fmt_double(a, o->d);
        switch (o->ty) {
        case TY_UINT:
            return arena_printf(a, "%lluu", (unsigned long long)o->i);
        case TY_LONG:
            return o->i < 0 ? arena_printf(a, "(%lldL)", o->i) : arena_printf(a, "%lldL", o->i);
        case TY_ULONG:
            return arena_printf(a, "%lluUL", (unsigned long long)o->i);
        default:
            return o->i < 0 ? arena_printf(a, "(%lld)", o->i) : arena_printf(a, "%lld", o->i);
        }
    case O_NONE:
        break;
    }
    return "?";
}

/* ---- walking ---- */

static void walk(Block *b, InsVisitor fn, void *ctx, bool under_varying)
{
    for (int i = 0; i < b->n; i++) {
        Stmt *s = b->v[i];
        if (s->kind == ST_INS) {
            fn(ctx, s, under_varying);
        } else if (s->kind == ST_LOOP) {
            /* a varying trip count makes everything in the loop varying */
            bool vary = under_varying || (s->cond.kind == O_VAR && s->cond.v->varying);
            walk(&s->head, fn, ctx, vary);
            walk(&s->body, fn, ctx, vary);
        } else {
            bool vary = under_varying || (s->cond.kind == O_VAR && s->cond.v->varying);
            walk(&s->then, fn, ctx, vary);
            walk(&s->els, fn, ctx, vary);
        }
    }
}

void ir_walk(Block *b, InsVisitor fn, void *ctx) { walk(b, fn, ctx, false); }

/* ---- dumping ---- */

static void dump_var_attrs(FILE *out, const Var *v)
{
    fprintf(out, "%s", ty_c(v->ty));
    if (v->is_array) {
        fputs("[", out);
        for (int i = 0; i < v->len.n; i++)
            fprintf(out, "%s%s", i ? " " : "", (const char *)v->len.v[i]);
        fputs(v->inout ? "] inout" : "]", out);
    }
    if (v->is_const)
        fputs(" const", out);
    if (v->passive)
        fputs(" passive", out);
    if (v->uniform)
        fputs(" uniform-declared", out);
    if (v->active)
        fputs(" active", out);
    fputs(v->varying ? " varying" : " uniform", out);
    if (v->needed)
        fputs(" needed", out);
}

static void dump_opnd(Arena *a, FILE *out, const Opnd *o)
{
    fputs(opnd_c(a, o), out);
}

static void dump_block(Arena *a, FILE *out, const Block *b, int depth)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i];
        fprintf(out, "%*s", 2 * depth, "");
        if (s->kind == ST_LOOP) {
            fprintf(out, "loop {                # %d:%d\n", s->loc.line, s->loc.col);
            dump_block(a, out, &s->head, depth + 1);
            fprintf(out, "%*s  exit unless ", 2 * depth, "");
            dump_opnd(a, out, &s->cond);
            fputs("\n", out);
            dump_block(a, out, &s->body, depth + 1);
            fprintf(out, "%*s}\n", 2 * depth, "");
            continue;
        }
        if (s->kind == ST_IF) {
            fputs("if ", out);
            dump_opnd(a, out, &s->cond);
            fprintf(out, " {                # %d:%d\n", s->loc.line, s->loc.col);
            dump_block(a, out, &s->then, depth + 1);
            if (s->els.n) {
                fprintf(out, "%*s} else {\n", 2 * depth, "");
                dump_block(a, out, &s->els, depth + 1);
            }
            fprintf(out, "%*s}\n", 2 * depth, "");
            continue;
        }
        const Ins *in = &s->ins;
        if (in->dst && in->op != OP_STORE)
            fprintf(out, "%s%s = ", in->save_dst ? "save " : "", in->dst->name);
        fputs(op_name(in->op), out);
        if (in->op == OP_LOAD || in->op == OP_STORE) {
            fprintf(out, " %s[",
                    in->op == OP_LOAD ? in->a.v->name : in->dst->name);
            dump_opnd(a, out, in->op == OP_LOAD ? &in->b : &in->a);
            fputs("]", out);
            if (in->op == OP_STORE) {
                fputs(", ", out);
                dump_opnd(a, out, &in->b);
            }
            fprintf(out, "                # %d:%d\n", s->loc.line, s->loc.col);
            continue;
        }
        if (in->op == OP_CONV)
            fprintf(out, ".%s", ty_c(in->dst->ty));
        if (in->op == OP_BUILTIN || in->op == OP_CALL) {
            fprintf(out, " %s(", in->op == OP_CALL ? in->callee->name : builtin_table[in->builtin].name);
            for (int k = 0; k < in->nargs; k++) {
                fputs(k ? ", " : "", out);
                dump_opnd(a, out, &in->args[k]);
            }
            for (int k = 0; k < in->nouts; k++)
                fprintf(out, ", %s&%s", in->save_outs && in->save_outs[k] ? "save " : "", in->outs[k]->name);
            fputs(")", out);
        } else {
            fputs(" ", out);
            dump_opnd(a, out, &in->a);
            if (in->b.kind != O_NONE) {
                fputs(", ", out);
                dump_opnd(a, out, &in->b);
            }
        }
        fprintf(out, "                # %d:%d\n", s->loc.line, s->loc.col);
    }
}

void ir_dump(const Unit *u, FILE *out, const char *after)
{
    fprintf(out, "; twinc IR of %s after %s\n", u->file, after);
    for (int i = 0; i < u->funcs.n; i++) {
        const Func *f = u->funcs.v[i];
        if (!f->lowered)
            continue;
        fprintf(out, "\nfunc %s(", f->name);
        for (int k = 0; k < f->params.n; k++) {
            const Var *v = f->params.v[k];
            fprintf(out, "%s%s%s: ", k ? ", " : "", v->kind == V_OUT ? "out " : "", v->name);
            dump_var_attrs(out, v);
        }
        fprintf(out, ") -> %s\n", ty_c(f->ret));
        for (int k = 0; k < f->vars.n; k++) {
            const Var *v = f->vars.v[k];
            if (v->kind == V_PARAM || v->kind == V_OUT)
                continue;
            fprintf(out, "  var %s: ", v->name);
            dump_var_attrs(out, v);
            fputs("\n", out);
        }
        dump_block(u->arena, out, &f->body, 1);
    }
}
