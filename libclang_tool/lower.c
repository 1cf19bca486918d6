/*
 * lower.c — libclang cursors to IR, checking the accepted subset on the way.
 *
 * Input: the parsed translation unit, the raw tokens of the main file and the
 * #pragma aad directives found by pragma.c.  Output: one Func per annotated
 * definition, its body flattened into three-address instructions inside
 * structured if/else blocks.
 *
 * What lowering decides, so that no later phase has to:
 *  - Every C expression becomes instructions writing fresh temporaries; the
 *    type of every value is the C type clang gives the expression, and every
 *    implicit or explicit conversion is an explicit OP_CONV.
 *  - `&&`, `||` and `?:` become if/else on a temporary, so evaluation stays
 *    short-circuit (an integer division on the right of && is never run when
 *    the left is false) and so per-lane branches are visible to every emitter.
 *  - `return` inside a branch sets the result and a "done" flag; what follows
 *    runs under `if (!done)`.  The body therefore has one exit, which is what
 *    the reverse sweep wants.
 *  - An active instruction never writes one of its own operands (x = x * y is
 *    t = x * y; x = t), so the reverse sweep can read operands and result.
 *  - `double *` parameters are outputs: the body sees `*o` (or `o[0]`) as a
 *    variable; each must be assigned on every path before a return and never
 *    read before it is assigned (definite assignment, checked here).
 *
 * Anything outside the subset is a located error naming the construct and the
 * function.  The operator of a binary expression is read from the raw tokens
 * just after its left operand (clang 14's C API has no operator-kind query);
 * an operator that is not there in the file came from a macro and is refused.
 */
#include <clang-c/Index.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "twinc_gen.h"

typedef struct Binding {
    CXCursor decl;
    Var *var;
} Binding;

typedef struct Loop {
    struct Loop *parent;
    Var *brk, *cont;  /* flags, created on first break / continue */
} Loop;

typedef struct L {
    Unit *u;
    Func *f;
    Arena *a;
    CXTranslationUnit tu;
    const Tok *toks;
    unsigned ntoks;
    Block *cur;       /* where instructions go */
    int depth;        /* nesting of if blocks */
    Var *done;        /* early-return flag, created on first need */
    struct Loop *loop;/* innermost enclosing loop */
    bool jumped;      /* a return/break/continue was lowered since last looked at */
    bool terminated;  /* the current path has returned, broken or continued */
    int nreturns;     /* returns lowered so far */
    bool *assigned;   /* definite assignment of outputs (index: param position) */
    int nassigned;
    Binding *binds;
    int nbinds, capbinds;
    bool failed;
} L;

/* ---- small helpers ---- */

static SrcLoc loc_of(L *l, CXSourceLocation cl)
{
    CXFile file;
    unsigned line, col;
    clang_getExpansionLocation(cl, &file, &line, &col, NULL);
    const char *name = l->u->file;
    if (file && !clang_Location_isFromMainFile(cl)) {
        CXString s = clang_getFileName(file);
        name = arena_strdup(l->a, clang_getCString(s));
        clang_disposeString(s);
    }
    return (SrcLoc){name, (int)line, (int)col};
}

static SrcLoc cloc(L *l, CXCursor c) { return loc_of(l, clang_getCursorLocation(c)); }

static unsigned off_start(CXCursor c)
{
    unsigned o;
    clang_getExpansionLocation(clang_getRangeStart(clang_getCursorExtent(c)), NULL, NULL, NULL, &o);
    return o;
}

static unsigned off_end(CXCursor c)
{
    unsigned o;
    clang_getExpansionLocation(clang_getRangeEnd(clang_getCursorExtent(c)), NULL, NULL, NULL, &o);
    return o;
}

static const char *cursor_spelling(L *l, CXCursor c)
{
    CXString s = clang_getCursorSpelling(c);
    const char *r = arena_strdup(l->a, clang_getCString(s));
    clang_disposeString(s);
    return r;
}

static const char *kind_spelling(L *l, CXCursor c)
{
    CXString s = clang_getCursorKindSpelling(clang_getCursorKind(c));
    const char *r = arena_strdup(l->a, clang_getCString(s));
    clang_disposeString(s);
    return r;
}

static const char *type_spelling(L *l, CXType t)
{
    CXString s = clang_getTypeSpelling(t);
    const char *r = arena_strdup(l->a, clang_getCString(s));
    clang_disposeString(s);
    return r;
}

#define ERR(l, loc, ...)                                                                         \
    do {                                                                                         \
        diag_error((l)->u->diag, (loc), __VA_ARGS__);                                            \
        (l)->failed = true;                                                                      \
    } while (0)

typedef struct Kids {
    CXCursor v[64];
    int n;
} Kids;

static enum CXChildVisitResult collect(CXCursor c, CXCursor parent, CXClientData data)
{
    (void)parent;
    Kids *k = data;
    if (k->n < 64)
        k->v[k->n++] = c;
    return CXChildVisit_Continue;
}

static Kids kids(CXCursor c)
{
    Kids k;
    k.n = 0;
    clang_visitChildren(c, collect, &k);
    return k;
}

/* Expression children only (skip TypeRef and friends). */
static Kids expr_kids(CXCursor c)
{
    Kids all = kids(c), k;
    k.n = 0;
    for (int i = 0; i < all.n; i++)
        if (clang_isExpression(clang_getCursorKind(all.v[i])))
            k.v[k.n++] = all.v[i];
    return k;
}

/* The token that starts at or after `offset` (binary search). */
static const Tok *tok_at(L *l, unsigned offset)
{
    unsigned lo = 0, hi = l->ntoks;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (l->toks[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return &l->toks[lo];
}

/* ---- types ---- */

static bool c_ty(CXType t, Ty *out)
{
    t = clang_getCanonicalType(t);
    switch (t.kind) {
    case CXType_Double: *out = TY_DOUBLE; return true;
    case CXType_Int: *out = TY_INT; return true;
    case CXType_Long:
    case CXType_LongLong: *out = TY_LONG; return true;
    case CXType_UInt: *out = TY_UINT; return true;
    case CXType_ULong:
    case CXType_ULongLong: *out = TY_ULONG; return true;
    case CXType_Void: *out = TY_VOID; return true;
    default: return false;
    }
}

static Ty expr_ty(L *l, CXCursor c)
{
    Ty t = TY_DOUBLE;
    CXType ct = clang_getCursorType(c);
    if (!c_ty(ct, &t)) {
        enum CXTypeKind ck = clang_getCanonicalType(ct).kind;
        const char *why = ck == CXType_Float ? " (float is not supported yet: use double)"
                          : ck == CXType_VariableArray || ck == CXType_ConstantArray || ck == CXType_Pointer ||
                                  ck == CXType_IncompleteArray
                              ? " (an array may only be indexed, a[i]: it may not escape as a pointer)"
                              : "";
        ERR(l, cloc(l, c), "expression of type '%s' is not supported in #pragma aad function '%s'%s",
            type_spelling(l, ct), l->f->name, why);
        return TY_DOUBLE;
    }
    return t;
}

/* ---- variables ---- */

static void bind(L *l, CXCursor decl, Var *v)
{
    if (l->nbinds == l->capbinds) {
        int cap = l->capbinds ? 2 * l->capbinds : 16;
        Binding *b = arena_alloc(l->a, sizeof *b * (size_t)cap);
        if (l->nbinds)
            memcpy(b, l->binds, sizeof *b * (size_t)l->nbinds);
        l->binds = b;
        l->capbinds = cap;
    }
    l->binds[l->nbinds++] = (Binding){decl, v};
}

static Var *lookup(L *l, CXCursor decl)
{
    for (int i = l->nbinds - 1; i >= 0; i--)
        if (clang_equalCursors(l->binds[i].decl, decl))
            return l->binds[i].var;
    return NULL;
}

static Var *new_temp(L *l, Ty ty)
{
    Var *v = ir_new_var(l->f, l->a, arena_printf(l->a, "t%d", l->f->vars.n), ty, V_TEMP);
    return v;
}

/* ---- emission into the current block ---- */

static Ins *emit(L *l, Op op, Var *dst, Opnd a, Opnd b, SrcLoc loc)
{
    Stmt *s = ir_new_stmt(l->a, ST_INS, loc);
    s->ins.op = op;
    s->ins.dst = dst;
    s->ins.a = a;
    s->ins.b = b;
    s->ins.in_loop = l->loop != NULL;
    ir_append(l->a, l->cur, s);
    if (dst && op != OP_STORE)
        dst->nassign++;
    return &s->ins;
}

static Opnd none(void) { return (Opnd){.kind = O_NONE}; }

static bool is_const(const Opnd *o) { return o->kind == O_CONST; }

/* Convert an operand to type `to` (constants fold). */
static Opnd convert(L *l, Opnd o, Ty to, SrcLoc loc)
{
    if (o.kind == O_NONE || o.ty == to || to == TY_VOID)
        return o;
    if (is_const(&o)) {
        if (to == TY_DOUBLE)
            return opnd_double(o.ty == TY_DOUBLE ? o.d
                               : (o.ty == TY_UINT || o.ty == TY_ULONG) ? (double)(unsigned long long)o.i
                                                                        : (double)o.i);
        long long v;
        if (o.ty == TY_DOUBLE)
            v = (long long)o.d;
        else
            v = o.i;
        switch (to) {
        case TY_INT: v = (int)v; break;
        case TY_UINT: v = (unsigned)v; break;
        default: break;
        }
        return opnd_int(v, to);
    }
    Var *t = new_temp(l, to);
    emit(l, OP_CONV, t, o, none(), loc);
    return opnd_var(t);
}

/* ---- outputs and definite assignment ---- */

static void mark_assigned(L *l, Var *v)
{
    if (v->kind == V_OUT)
        l->assigned[v->param_index] = true;
}

static void check_outputs_assigned(L *l, SrcLoc loc, const char *where)
{
    for (int i = 0; i < l->f->params.n; i++) {
        Var *v = l->f->params.v[i];
        if (v->kind == V_OUT && !l->assigned[v->param_index])
            ERR(l, loc, "output '*%s' of function '%s' is not assigned on every path %s", v->name,
                l->f->name, where);
    }
}

/* The variable an lvalue expression names: a local/param, or *o / o[0]. */
static Var *lvalue(L *l, CXCursor e, bool for_read);

static Var *out_param_of(L *l, CXCursor e)
{
    while (clang_getCursorKind(e) == CXCursor_UnexposedExpr || clang_getCursorKind(e) == CXCursor_ParenExpr) {
        Kids k = expr_kids(e);
        if (k.n != 1)
            return NULL;
        e = k.v[0];
    }
    if (clang_getCursorKind(e) != CXCursor_DeclRefExpr)
        return NULL;
    Var *v = lookup(l, clang_getCursorReferenced(e));
    return v && v->kind == V_OUT ? v : NULL;
}

static bool unary_op(L *l, CXCursor e, char *op, bool *prefix);

static Var *lvalue(L *l, CXCursor e, bool for_read)
{
    SrcLoc loc = cloc(l, e);
    enum CXCursorKind k = clang_getCursorKind(e);
    if (k == CXCursor_ParenExpr || k == CXCursor_UnexposedExpr) {
        Kids ks = expr_kids(e);
        if (ks.n == 1)
            return lvalue(l, ks.v[0], for_read);
    }
    Var *v = NULL;
    if (k == CXCursor_ArraySubscriptExpr) {
        Kids ks = expr_kids(e);
        Var *base = NULL;
        for (CXCursor x = ks.n == 2 ? ks.v[0] : e; ks.n == 2;) {
            Kids inner = expr_kids(x);
            if (clang_getCursorKind(x) == CXCursor_DeclRefExpr) {
                base = lookup(l, clang_getCursorReferenced(x));
                break;
            }
            /* a[i][j]: look through to a */
            if (inner.n != 1 && !(clang_getCursorKind(x) == CXCursor_ArraySubscriptExpr && inner.n == 2))
                break;
            x = inner.v[0];
        }
        if (base && base->poisoned)
            return base;
    }
    if (k == CXCursor_DeclRefExpr) {
        v = lookup(l, clang_getCursorReferenced(e));
        if (v && v->poisoned)
            return v;
        if (!v) {
            ERR(l, loc, "assignment to '%s', which is not a local or parameter of '%s' (globals are not supported)",
                cursor_spelling(l, e), l->f->name);
            return NULL;
        }
        if (v->kind == V_OUT) {
            ERR(l, loc, "output pointer '%s' of '%s' may only be used as '*%s' or '%s[0]'", v->name,
                l->f->name, v->name, v->name);
            return NULL;
        }
    } else if (k == CXCursor_UnaryOperator) {
        char op[4];
        bool prefix;
        Kids ks = expr_kids(e);
        if (unary_op(l, e, op, &prefix) && !strcmp(op, "*") && ks.n == 1)
            v = out_param_of(l, ks.v[0]);
        if (!v) {
            ERR(l, loc, "unsupported pointer dereference in '%s' (only '*o' for a 'double *o' output)",
                l->f->name);
            return NULL;
        }
    } else if (k == CXCursor_ArraySubscriptExpr) {
        Kids ks = expr_kids(e);
        if (ks.n == 2)
            v = out_param_of(l, ks.v[0]);
        CXEvalResult r = ks.n == 2 ? clang_Cursor_Evaluate(ks.v[1]) : NULL;
        bool zero = r && clang_EvalResult_getKind(r) == CXEval_Int && clang_EvalResult_getAsLongLong(r) == 0;
        if (r)
            clang_EvalResult_dispose(r);
        if (!v || !zero) {
            ERR(l, loc, "array subscript of a 'double *' output in '%s': only o[0] is accepted (write "
                "'double o[n]' for an array the function fills)", l->f->name);
            return NULL;
        }
    } else {
        ERR(l, loc, "unsupported assignment target (%s) in '%s'", kind_spelling(l, e), l->f->name);
        return NULL;
    }
    if (v->kind == V_OUT && for_read && !l->assigned[v->param_index])
        ERR(l, loc, "output '*%s' is read before it is assigned in '%s'", v->name, l->f->name);
    return v;
}

/* ---- operators from tokens ---- */

static const char *const binops[] = {"+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "&&", "||",
                                     "&", "|", "^", "<<", ">>", "=", "+=", "-=", "*=", "/=", "%=", "&=",
                                     "|=", "^=", "<<=", ">>=", ","};

/* Read the operator of a binary expression from the file's tokens: the token
 * just after the left operand, which must lie before the right operand. */
static bool binary_op(L *l, CXCursor e, CXCursor lhs, CXCursor rhs, char *op)
{
    const Tok *t = tok_at(l, off_end(lhs));
    bool ok = t->kind == CXToken_Punctuation && t->offset >= off_start(e) && t->end <= off_start(rhs) &&
              off_start(lhs) >= off_start(e) && off_end(rhs) <= off_end(e) && off_start(lhs) < off_end(lhs);
    if (ok) {
        ok = false;
        for (size_t i = 0; i < sizeof binops / sizeof *binops && !ok; i++)
            ok = !strcmp(t->text, binops[i]);
    }
    if (!ok) {
        ERR(l, cloc(l, e), "operator comes from a macro expansion in '%s'; write the operator in the "
            "source (or make the macro a #pragma aad function)", l->f->name);
        return false;
    }
    strcpy(op, t->text);
    return true;
}

static bool unary_op(L *l, CXCursor e, char *op, bool *prefix)
{
    Kids ks = expr_kids(e);
    if (ks.n != 1)
        return false;
    unsigned s = off_start(e), en = off_end(e), cs = off_start(ks.v[0]), ce = off_end(ks.v[0]);
    const Tok *t = NULL;
    if (cs > s) {
        t = tok_at(l, s);
        *prefix = true;
        if (t->end > cs)
            t = NULL;
    } else if (ce < en) {
        t = tok_at(l, ce);
        *prefix = false;
        if (t->end > en)
            t = NULL;
    }
    if (!t || t->kind != CXToken_Punctuation || strlen(t->text) > 2) {
        ERR(l, cloc(l, e), "operator comes from a macro expansion in '%s'; write the operator in the source",
            l->f->name);
        return false;
    }
    strcpy(op, t->text);
    return true;
}


static Opnd lower_expr(L *l, CXCursor e);

/* ---- arrays ---- */

/* The tokens between the first '[' and its ']' in [from, to): an array's
 * length as written.  Qualifiers inside the brackets (static, const) are
 * dropped.  Every identifier must name an integer parameter of the function
 * (declared before, as C requires); anything else is an error. */
static bool array_len(L *l, unsigned from, unsigned to, SrcLoc loc, const char *name, PtrVec *out)
{
    const Tok *t = tok_at(l, from);
    while (t->offset < to && *t->text && strcmp(t->text, "["))
        t++;
    if (t->offset >= to || strcmp(t->text, "["))
        return false;
    int depth = 0;
    for (t++; t->offset < to && *t->text; t++) {
        if (!strcmp(t->text, "[") || !strcmp(t->text, "("))
            depth++;
        if ((!strcmp(t->text, "]") && depth-- == 0))
            break;
        if (!strcmp(t->text, ")"))
            depth--;
        if (!strcmp(t->text, "static") || !strcmp(t->text, "const") || !strcmp(t->text, "restrict"))
            continue;
        if (t->kind == CXToken_Identifier) {
            Var *p = NULL;
            for (int i = 0; i < l->f->params.n && !p; i++) {
                Var *q = l->f->params.v[i];
                if (!strcmp(q->user_name, t->text) && q->kind == V_PARAM && !q->is_array && ty_is_int(q->ty))
                    p = q;
            }
            if (!p) {
                ERR(l, loc, "the length of array '%s' in '%s' uses '%s', which is not an integer parameter",
                    name, l->f->name, t->text);
                return true;
            }
        } else if (t->kind != CXToken_Literal && t->kind != CXToken_Punctuation) {
            ERR(l, loc, "unsupported length of array '%s' in '%s'", name, l->f->name);
            return true;
        }
        vec_push(l->a, out, (void *)t->text);
    }
    if (!out->n)
        ERR(l, loc, "array '%s' of '%s' needs a length: write '%s[n]' with n an integer parameter", name,
            l->f->name, name);
    return true;
}

/* e is a[i] with a an array variable: lower i, return the array. */
static Var *array_ref(L *l, CXCursor e, Opnd *idx)
{
    while (clang_getCursorKind(e) == CXCursor_ParenExpr) {
        Kids k = expr_kids(e);
        if (k.n != 1)
            return NULL;
        e = k.v[0];
    }
    if (clang_getCursorKind(e) != CXCursor_ArraySubscriptExpr)
        return NULL;
    Kids ks = expr_kids(e);
    if (ks.n != 2)
        return NULL;
    CXCursor base = ks.v[0];
    for (;;) {
        enum CXCursorKind bk = clang_getCursorKind(base);
        Kids inner = expr_kids(base);
        if ((bk == CXCursor_UnexposedExpr || bk == CXCursor_ParenExpr) && inner.n == 1)
            base = inner.v[0];
        else
            break;
    }
    if (clang_getCursorKind(base) != CXCursor_DeclRefExpr)
        return NULL;
    Var *v = lookup(l, clang_getCursorReferenced(base));
    if (!v || !v->is_array)
        return NULL;
    if (!v->poisoned)
        *idx = convert(l, lower_expr(l, ks.v[1]), TY_LONG, cloc(l, e));
    return v;
}

static Opnd load(L *l, Var *arr, Opnd idx, SrcLoc loc)
{
    Var *t = new_temp(l, TY_DOUBLE);
    emit(l, OP_LOAD, t, opnd_var(arr), idx, loc);
    return opnd_var(t);
}

static void store(L *l, Var *arr, Opnd idx, Opnd val, SrcLoc loc)
{
    if (!arr->inout && arr->kind == V_PARAM) {
        ERR(l, loc, "assignment to an element of input array '%s' in '%s' (declare it 'double %s[...]' to "
            "make it in/out)", arr->name, l->f->name, arr->name);
        return;
    }
    emit(l, OP_STORE, arr, idx, convert(l, val, TY_DOUBLE, loc), loc);
}

/* ---- expressions ---- */

static Opnd lower_expr(L *l, CXCursor e);
static void lower_stmt(L *l, CXCursor s);
static void lower_func(L *l, CXCursor fn, Pragma *p);

static Op arith_op(const char *op)
{
    static const struct {
        const char *s;
        Op op;
    } m[] = {{"+", OP_ADD}, {"-", OP_SUB}, {"*", OP_MUL}, {"/", OP_DIV}, {"%", OP_MOD},
             {"<", OP_LT},  {"<=", OP_LE}, {">", OP_GT},  {">=", OP_GE}, {"==", OP_EQ},
             {"!=", OP_NE}, {"&", OP_BAND}, {"|", OP_BOR}, {"^", OP_BXOR}, {"<<", OP_SHL},
             {">>", OP_SHR}};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (!strcmp(m[i].s, op))
            return m[i].op;
    return OP_COUNT;
}

/* dst = a OP b with a fresh temporary of type ty. */
static Opnd binary(L *l, Op op, Opnd a, Opnd b, Ty ty, SrcLoc loc)
{
    if (ty == TY_DOUBLE && op != OP_ADD && op != OP_SUB && op != OP_MUL && op != OP_DIV && !op_is_compare(op)) {
        ERR(l, loc, "operator '%s' is not defined on double in '%s'", op_c(op), l->f->name);
        return opnd_double(0);
    }
    Var *t = new_temp(l, ty);
    emit(l, op, t, a, b, loc);
    return opnd_var(t);
}

/* Assign `val` to variable v (value already of v's type). */
static void assign(L *l, Var *v, Opnd val, SrcLoc loc)
{
    if (v->is_const && v->nassign > 0)
        ERR(l, loc, "assignment to const '%s' in '%s'", v->name, l->f->name);
    /* keep active instructions from writing their own operands: the value is
     * always in a temporary or a constant by now, so this is a copy */
    emit(l, OP_COPY, v, val, none(), loc);
    mark_assigned(l, v);
}

/* Lower `c` to an integer truth value (0/1 not required: != 0 is true). */
static Opnd lower_cond(L *l, CXCursor c)
{
    Opnd o = lower_expr(l, c);
    if (o.ty == TY_DOUBLE) {
        Var *t = new_temp(l, TY_INT);
        emit(l, OP_NE, t, o, opnd_double(0), cloc(l, c));
        return opnd_var(t);
    }
    return o;
}

/* a && b  ->  t = (a != 0); if (t) t = (b != 0);      a || b  ->  ... if (!t) ... */
static Opnd lower_logical(L *l, CXCursor e, CXCursor lhs, CXCursor rhs, bool is_and)
{
    SrcLoc loc = cloc(l, e);
    Opnd a = lower_cond(l, lhs);
    Var *t = new_temp(l, TY_INT);
    emit(l, OP_NE, t, a, opnd_int(0, a.ty), loc);
    Opnd cond = opnd_var(t);
    if (!is_and) {
        Var *n = new_temp(l, TY_INT);
        emit(l, OP_NOT, n, opnd_var(t), none(), loc);
        cond = opnd_var(n);
    }
    Stmt *s = ir_new_stmt(l->a, ST_IF, loc);
    s->cond = cond;
    Block *saved = l->cur;
    l->cur = &s->then;
    Opnd b = lower_cond(l, rhs);
    emit(l, OP_NE, t, b, opnd_int(0, b.ty), loc);
    l->cur = saved;
    ir_append(l->a, l->cur, s);
    return opnd_var(t);
}

static Opnd lower_ternary(L *l, CXCursor e)
{
    Kids k = expr_kids(e);
    SrcLoc loc = cloc(l, e);
    if (k.n != 3) {
        ERR(l, loc, "unsupported conditional expression in '%s'", l->f->name);
        return opnd_double(0);
    }
    Ty ty = expr_ty(l, e);
    Opnd c = lower_cond(l, k.v[0]);
    Var *t = new_temp(l, ty);
    Stmt *s = ir_new_stmt(l->a, ST_IF, loc);
    s->cond = c;
    Block *saved = l->cur;
    l->cur = &s->then;
    Opnd a = convert(l, lower_expr(l, k.v[1]), ty, loc);
    emit(l, OP_COPY, t, a, none(), loc);
    l->cur = &s->els;
    Opnd b = convert(l, lower_expr(l, k.v[2]), ty, loc);
    emit(l, OP_COPY, t, b, none(), loc);
    l->cur = saved;
    ir_append(l->a, l->cur, s);
    return opnd_var(t);
}

static bool from_system_or_twinc(CXCursor decl)
{
    CXSourceLocation loc = clang_getCursorLocation(decl);
    if (clang_Location_isInSystemHeader(loc))
        return true;
    CXFile f;
    clang_getExpansionLocation(loc, &f, NULL, NULL, NULL);
    if (!f)
        return true; /* implicit builtin declaration */
    CXString s = clang_getFileName(f);
    const char *name = clang_getCString(s);
    size_t n = strlen(name);
    bool r = n >= 7 && !strcmp(name + n - 7, "twinc.h");
    clang_disposeString(s);
    return r;
}

static Opnd lower_call(L *l, CXCursor e)
{
    SrcLoc loc = cloc(l, e);
    CXCursor decl = clang_getCursorReferenced(e);
    if (clang_Cursor_isNull(decl) || clang_getCursorKind(decl) != CXCursor_FunctionDecl) {
        ERR(l, loc, "indirect call (through a function pointer) in '%s' is not supported", l->f->name);
        return opnd_double(0);
    }
    const char *name = cursor_spelling(l, decl);
    int nargs = clang_Cursor_getNumArguments(e);
    Func *callee = unit_find(l->u, name);
    int bi = builtin_lookup(name);
    if (!callee && bi >= 0 && from_system_or_twinc(decl)) {
        const Builtin *b = &builtin_table[bi];
        if (nargs != b->arity) {
            ERR(l, loc, "'%s' takes %d argument(s)", name, b->arity);
            return opnd_double(0);
        }
        Opnd *args = arena_alloc(l->a, sizeof *args * (size_t)nargs);
        for (int i = 0; i < nargs; i++)
            args[i] = convert(l, lower_expr(l, clang_Cursor_getArgument(e, (unsigned)i)), TY_DOUBLE, loc);
        Var *t = new_temp(l, TY_DOUBLE);
        Ins *in = emit(l, OP_BUILTIN, t, none(), none(), loc);
        in->builtin = bi;
        in->args = args;
        in->nargs = nargs;
        return opnd_var(t);
    }
    if (!callee) {
        ERR(l, loc, "call to '%s', which is neither a #pragma aad function of this file nor a supported "
            "math builtin, in '%s'", name, l->f->name);
        return opnd_double(0);
    }
    if (callee == l->f || callee->lowering) {
        ERR(l, loc, "recursive call to '%s' in '%s' is not supported", name, l->f->name);
        return opnd_double(0);
    }
    if (!callee->attempted) {
        /* defined later in the file (the caller saw a prototype): lower it now */
        L sub = {.u = l->u, .f = callee, .a = l->a, .tu = l->tu, .toks = l->toks, .ntoks = l->ntoks};
        lower_func(&sub, *(CXCursor *)callee->cursor_data, callee->pragma);
    }
    if (!callee->lowered) {
        ERR(l, loc, "call to '%s', whose own errors are reported above, in '%s'", name, l->f->name);
        return opnd_double(0);
    }
    if (nargs != callee->params.n) {
        ERR(l, loc, "call to '%s' with %d arguments; it takes %d", name, nargs, callee->params.n);
        return opnd_double(0);
    }
    int nin = 0, nout = 0;
    for (int i = 0; i < nargs; i++)
        ((Var *)callee->params.v[i])->kind == V_OUT ? nout++ : nin++;
    Opnd *args = arena_alloc(l->a, sizeof *args * (size_t)(nin ? nin : 1));
    Var **outs = arena_alloc(l->a, sizeof *outs * (size_t)(nout ? nout : 1));
    nin = nout = 0;
    for (int i = 0; i < nargs; i++) {
        Var *p = callee->params.v[i];
        CXCursor arg = clang_Cursor_getArgument(e, (unsigned)i);
        if (p->is_array) {
            ERR(l, cloc(l, arg), "passing array '%s' to #pragma aad function '%s' is not supported yet (in '%s')",
                p->name, name, l->f->name);
            return opnd_double(0);
        }
        if (p->kind != V_OUT) {
            args[nin++] = convert(l, lower_expr(l, arg), p->ty, loc);
            continue;
        }
        /* an output argument: &local, or an output pointer passed on */
        Var *v = out_param_of(l, arg);
        if (!v) {
            CXCursor x = arg;
            while (clang_getCursorKind(x) == CXCursor_UnexposedExpr || clang_getCursorKind(x) == CXCursor_ParenExpr) {
                Kids ks = expr_kids(x);
                if (ks.n != 1)
                    break;
                x = ks.v[0];
            }
            char op[4];
            bool prefix;
            Kids ks = expr_kids(x);
            if (clang_getCursorKind(x) == CXCursor_UnaryOperator && unary_op(l, x, op, &prefix) &&
                !strcmp(op, "&") && ks.n == 1)
                v = lvalue(l, ks.v[0], false);
        }
        if (!v || v->ty != TY_DOUBLE) {
            ERR(l, cloc(l, arg), "output argument %d of '%s' must be '&x' for a local double x, or an "
                "output pointer of '%s'", i + 1, name, l->f->name);
            return opnd_double(0);
        }
        outs[nout++] = v;
    }
    Var *t = callee->ret == TY_VOID ? NULL : new_temp(l, callee->ret);
    Ins *in = emit(l, OP_CALL, t, none(), none(), loc);
    in->callee = callee;
    in->args = args;
    in->nargs = nin;
    in->outs = outs;
    in->nouts = nout;
    in->save_outs = arena_alloc(l->a, sizeof(bool) * (size_t)(nout ? nout : 1));
    for (int i = 0; i < nout; i++) {
        outs[i]->nassign++;
        mark_assigned(l, outs[i]);
    }
    return t ? opnd_var(t) : none();
}

static Opnd lower_assign(L *l, CXCursor e, const char *op, CXCursor lhs, CXCursor rhs)
{
    SrcLoc loc = cloc(l, e);
    Opnd idx = none();
    Var *arr = array_ref(l, lhs, &idx);
    if (arr) {
        if (arr->poisoned)
            return opnd_double(0);
        Opnd val = lower_expr(l, rhs);
        if (strcmp(op, "=")) {
            char bop[4];
            size_t n = strlen(op);
            memcpy(bop, op, n - 1);
            bop[n - 1] = '\0';
            Op o = arith_op(bop);
            if (o == OP_COUNT)
                return val;
            Opnd cur = load(l, arr, idx, loc);
            val = binary(l, o, cur, convert(l, val, TY_DOUBLE, loc), TY_DOUBLE, loc);
        }
        val = convert(l, val, TY_DOUBLE, loc);
        store(l, arr, idx, val, loc);
        return val;
    }
    if (!strcmp(op, "=")) {
        Opnd val = lower_expr(l, rhs);
        Var *v = lvalue(l, lhs, false);
        if (!v)
            return val;
        val = convert(l, val, v->ty, loc);
        assign(l, v, val, loc);
        return opnd_var(v);
    }
    /* compound: x op= e  ==  x = (T)((C)x op e), C = type of the right side */
    char bop[4];
    size_t n = strlen(op);
    memcpy(bop, op, n - 1);
    bop[n - 1] = '\0';
    Op o = arith_op(bop);
    Opnd r = lower_expr(l, rhs);
    Var *v = lvalue(l, lhs, true);
    if (!v || o == OP_COUNT)
        return r;
    Ty comp = (o == OP_SHL || o == OP_SHR) ? v->ty : r.ty;
    Opnd x = convert(l, opnd_var(v), comp, loc);
    Opnd res = binary(l, o, x, r, comp, loc);
    assign(l, v, convert(l, res, v->ty, loc), loc);
    return opnd_var(v);
}

static Opnd lower_incdec(L *l, CXCursor e, CXCursor sub, bool inc, bool prefix)
{
    SrcLoc loc = cloc(l, e);
    Opnd idx = none();
    Var *arr = array_ref(l, sub, &idx);
    if (arr) {
        if (arr->poisoned)
            return opnd_double(0);
        Opnd old = load(l, arr, idx, loc);
        Opnd res = binary(l, inc ? OP_ADD : OP_SUB, old, opnd_double(1), TY_DOUBLE, loc);
        store(l, arr, idx, res, loc);
        return prefix ? res : old;
    }
    Var *v = lvalue(l, sub, true);
    if (!v)
        return opnd_double(0);
    Opnd old = opnd_var(v);
    if (!prefix) {
        Var *keep = new_temp(l, v->ty);
        emit(l, OP_COPY, keep, opnd_var(v), none(), loc);
        old = opnd_var(keep);
    }
    Opnd one = v->ty == TY_DOUBLE ? opnd_double(1) : opnd_int(1, v->ty);
    Opnd res = binary(l, inc ? OP_ADD : OP_SUB, opnd_var(v), one, v->ty, loc);
    assign(l, v, res, loc);
    return prefix ? opnd_var(v) : old;
}

/* An expression whose value is not used: i++ needs no copy of the old i. */
static void lower_discarded(L *l, CXCursor e)
{
    char op[4];
    bool prefix;
    Kids ks = expr_kids(e);
    if (clang_getCursorKind(e) == CXCursor_UnaryOperator && ks.n == 1 && unary_op(l, e, op, &prefix) &&
        (!strcmp(op, "++") || !strcmp(op, "--"))) {
        lower_incdec(l, e, ks.v[0], op[0] == '+', true);
        return;
    }
    lower_expr(l, e);
}

static Opnd lower_expr(L *l, CXCursor e)
{
    SrcLoc loc = cloc(l, e);
    enum CXCursorKind k = clang_getCursorKind(e);
    Kids ks = expr_kids(e);
    switch (k) {
    case CXCursor_ParenExpr:
    case CXCursor_UnexposedExpr:
        if (ks.n == 1) {
            Ty ty = expr_ty(l, e);
            return convert(l, lower_expr(l, ks.v[0]), ty, loc);
        }
        break;
    case CXCursor_CStyleCastExpr:
        if (ks.n == 1) {
            Ty ty = expr_ty(l, e);
            if (ty == TY_VOID) { /* (void)x */
                lower_expr(l, ks.v[0]);
                return none();
            }
            return convert(l, lower_expr(l, ks.v[0]), ty, loc);
        }
        break;
    case CXCursor_IntegerLiteral:
    case CXCursor_CharacterLiteral: {
        Ty ty = expr_ty(l, e);
        CXEvalResult r = clang_Cursor_Evaluate(e);
        long long v = r ? (clang_EvalResult_isUnsignedInt(r) ? (long long)clang_EvalResult_getAsUnsigned(r)
                                                             : clang_EvalResult_getAsLongLong(r)) : 0;
        if (r)
            clang_EvalResult_dispose(r);
        return opnd_int(v, ty);
    }
    case CXCursor_FloatingLiteral: {
        /* a float literal (1.5f) is accepted as the double it converts to */
        CXEvalResult r = clang_Cursor_Evaluate(e);
        double v = r ? clang_EvalResult_getAsDouble(r) : 0;
        if (r)
            clang_EvalResult_dispose(r);
        return opnd_double(v);
    }
    case CXCursor_DeclRefExpr: {
        CXCursor d = clang_getCursorReferenced(e);
        Var *v = lookup(l, d);
        if (v) {
            if (v->poisoned)
                return opnd_double(0);
            if (v->is_array) {
                ERR(l, loc, "array '%s' used without an index in '%s' (passing whole arrays is not supported "
                    "yet)", v->name, l->f->name);
                return opnd_double(0);
            }
            if (v->kind == V_OUT) {
                ERR(l, loc, "output pointer '%s' of '%s' may only be used as '*%s' or '%s[0]'", v->name,
                    l->f->name, v->name, v->name);
                return opnd_double(0);
            }
            return opnd_var(v);
        }
        enum CXCursorKind dk = clang_getCursorKind(d);
        if (dk == CXCursor_EnumConstantDecl)
            return opnd_int(clang_getEnumConstantDeclValue(d), expr_ty(l, e));
        if (dk == CXCursor_VarDecl && clang_isConstQualifiedType(clang_getCursorType(d))) {
            CXEvalResult r = clang_Cursor_Evaluate(e);
            if (r) {
                Opnd o = none();
                Ty ty = expr_ty(l, e);
                if (clang_EvalResult_getKind(r) == CXEval_Float)
                    o = opnd_double(clang_EvalResult_getAsDouble(r));
                else if (clang_EvalResult_getKind(r) == CXEval_Int)
                    o = opnd_int(clang_EvalResult_getAsLongLong(r), ty);
                clang_EvalResult_dispose(r);
                if (o.kind != O_NONE)
                    return convert(l, o, ty, loc);
            }
        }
        ERR(l, loc, "use of '%s', which is not a parameter, a local or a constant, in '%s' "
            "(global variables are not supported)", cursor_spelling(l, e), l->f->name);
        return opnd_double(0);
    }
    case CXCursor_BinaryOperator:
    case CXCursor_CompoundAssignOperator: {
        if (ks.n != 2)
            break;
        char op[4];
        if (!binary_op(l, e, ks.v[0], ks.v[1], op))
            return opnd_double(0);
        if (!strcmp(op, "&&") || !strcmp(op, "||"))
            return lower_logical(l, e, ks.v[0], ks.v[1], op[0] == '&');
        if (op[strlen(op) - 1] == '=' && strcmp(op, "==") && strcmp(op, "!=") && strcmp(op, "<=") &&
            strcmp(op, ">="))
            return lower_assign(l, e, op, ks.v[0], ks.v[1]);
        if (!strcmp(op, ",")) {
            ERR(l, loc, "comma operator in '%s' is not supported", l->f->name);
            return opnd_double(0);
        }
        Opnd a = lower_expr(l, ks.v[0]);
        Opnd b = lower_expr(l, ks.v[1]);
        Op o = arith_op(op);
        Ty ty = expr_ty(l, e);
        if (o == OP_SHL || o == OP_SHR)
            ;
        else if (a.ty != b.ty) /* clang made the operands agree already; be safe */
            b = convert(l, b, a.ty, loc);
        return binary(l, o, a, b, ty, loc);
    }
    case CXCursor_UnaryOperator: {
        char op[4];
        bool prefix;
        if (ks.n != 1 || !unary_op(l, e, op, &prefix))
            return opnd_double(0);
        if (!strcmp(op, "++") || !strcmp(op, "--"))
            return lower_incdec(l, e, ks.v[0], op[0] == '+', prefix);
        if (!strcmp(op, "*")) {
            Var *v = lvalue(l, e, true);
            return v ? opnd_var(v) : opnd_double(0);
        }
        if (!strcmp(op, "&")) {
            ERR(l, loc, "address-of '&' in '%s' is only supported for an output argument of a #pragma aad call",
                l->f->name);
            return opnd_double(0);
        }
        Ty ty = expr_ty(l, e);
        Opnd a = lower_expr(l, ks.v[0]);
        if (!strcmp(op, "+"))
            return convert(l, a, ty, loc);
        Op o = !strcmp(op, "-") ? OP_NEG : !strcmp(op, "!") ? OP_NOT : !strcmp(op, "~") ? OP_BNOT : OP_COUNT;
        if (o == OP_COUNT || (o == OP_BNOT && a.ty == TY_DOUBLE)) {
            ERR(l, loc, "unary operator '%s' is not supported in '%s'", op, l->f->name);
            return opnd_double(0);
        }
        if (is_const(&a) && o == OP_NEG)
            return a.ty == TY_DOUBLE ? opnd_double(-a.d) : opnd_int(-a.i, a.ty);
        Var *t = new_temp(l, ty);
        emit(l, o, t, a, none(), loc);
        return opnd_var(t);
    }
    case CXCursor_ConditionalOperator:
        return lower_ternary(l, e);
    case CXCursor_CallExpr:
        return lower_call(l, e);
    case CXCursor_ArraySubscriptExpr: {
        Opnd idx = none();
        Var *arr = array_ref(l, e, &idx);
        if (arr)
            return arr->poisoned ? opnd_double(0) : load(l, arr, idx, loc);
        Var *v = lvalue(l, e, true);
        return v ? opnd_var(v) : opnd_double(0);
    }
    default:
        break;
    }
    const char *what = kind_spelling(l, e);
    if (k == CXCursor_ArraySubscriptExpr)
        what = "array subscript";
    else if (k == CXCursor_MemberRefExpr)
        what = "struct member access";
    else if (k == CXCursor_StringLiteral)
        what = "string literal";
    else if (k == CXCursor_InitListExpr)
        what = "initializer list";
    ERR(l, loc, "unsupported expression (%s) in #pragma aad function '%s'", what, l->f->name);
    return opnd_double(0);
}

/* ---- statements ---- */

static void lower_decl(L *l, CXCursor d)
{
    SrcLoc loc = cloc(l, d);
    const char *name = cursor_spelling(l, d);
    CXType ct = clang_getCursorType(d);
    if (clang_getCursorKind(d) != CXCursor_VarDecl) {
        ERR(l, loc, "unsupported declaration (%s) in '%s'", kind_spelling(l, d), l->f->name);
        return;
    }
    Ty ty = TY_DOUBLE;
    const char *bad = NULL;
    if (clang_Cursor_getStorageClass(d) == CX_SC_Static)
        bad = arena_printf(l->a, "static local '%s' in '%s' is not supported (twins keep no state between calls)",
                           name, l->f->name);
    else if (clang_getCanonicalType(ct).kind == CXType_ConstantArray ||
             clang_getCanonicalType(ct).kind == CXType_VariableArray) {
        CXType et = clang_getCanonicalType(clang_getArrayElementType(clang_getCanonicalType(ct)));
        Kids ks = expr_kids(d);
        bool has_init = false;
        for (int i = 0; i < ks.n; i++)
            has_init |= clang_getCursorKind(ks.v[i]) == CXCursor_InitListExpr;
        if (et.kind != CXType_Double)
            bad = arena_printf(l->a, "local array '%s' in '%s' must hold double (one dimension)", name, l->f->name);
        else if (has_init)
            bad = arena_printf(l->a, "initializer of local array '%s' in '%s' is not supported; assign the "
                               "elements in a loop", name, l->f->name);
        else {
            Var *v = ir_new_var(l->f, l->a, name, TY_DOUBLE, V_LOCAL);
            v->is_array = true;
            v->loc = loc;
            if (clang_getCanonicalType(ct).kind == CXType_ConstantArray)
                vec_push(l->a, &v->len, arena_printf(l->a, "%lld", clang_getArraySize(clang_getCanonicalType(ct))));
            else
                array_len(l, off_start(d), off_end(d), loc, name, &v->len);
            bind(l, d, v);
            return;
        }
    } else if (clang_getCanonicalType(ct).kind == CXType_Pointer &&
               clang_getCanonicalType(clang_getPointeeType(clang_getCanonicalType(ct))).kind == CXType_Double)
        bad = arena_printf(l->a, "local pointer '%s' in '%s': an array may not escape into a pointer "
                           "(aliases are not tracked); index the array itself", name, l->f->name);
    else if (!c_ty(ct, &ty) || ty == TY_VOID)
        bad = arena_printf(l->a, "local '%s' of type '%s' is not supported in '%s' (double and integer scalars "
                           "only)", name, type_spelling(l, ct), l->f->name);
    if (bad) {
        /* reported once; later uses of the variable stay quiet */
        ERR(l, loc, "%s", bad);
        Var *v = ir_new_var(l->f, l->a, name, TY_DOUBLE, V_LOCAL);
        v->poisoned = true;
        bind(l, d, v);
        return;
    }
    Kids ks = expr_kids(d);
    Opnd init = none();
    if (ks.n >= 1)
        init = convert(l, lower_expr(l, ks.v[ks.n - 1]), ty, loc);
    Var *v = ir_new_var(l->f, l->a, name, ty, V_LOCAL);
    v->loc = loc;
    v->is_const = clang_isConstQualifiedType(ct);
    bind(l, d, v);
    if (init.kind != O_NONE) {
        assign(l, v, init, loc);
        /* outside loops a declaration runs at most once per call */
        l->cur->v[l->cur->n - 1]->ins.first_def = l->loop == NULL;
    }
}

static void lower_block_items(L *l, Kids *ks, int from);

/* 1 when the rest of a block must be skipped: returned, or broken out of /
 * continued in the innermost loop.  Flags that do not exist yet cannot be
 * set, so they are left out.  NULL if there is no flag at all. */
static Var *stop_flag(L *l, SrcLoc loc, bool with_cont)
{
    Var *flags[3] = {l->done, l->loop ? l->loop->brk : NULL, with_cont && l->loop ? l->loop->cont : NULL};
    Var *acc = NULL;
    for (int i = 0; i < 3; i++) {
        if (!flags[i])
            continue;
        if (!acc) {
            acc = flags[i];
            continue;
        }
        Var *t = new_temp(l, TY_INT);
        emit(l, OP_BOR, t, opnd_var(acc), opnd_var(flags[i]), loc);
        acc = t;
    }
    return acc;
}

/* if (!stop) { ...rest... } */
static Block *new_guard(L *l, SrcLoc loc)
{
    Var *stop = stop_flag(l, loc, true);
    Var *n = new_temp(l, TY_INT);
    emit(l, OP_NOT, n, stop ? opnd_var(stop) : opnd_int(0, TY_INT), none(), loc);
    Stmt *s = ir_new_stmt(l->a, ST_IF, loc);
    s->cond = opnd_var(n);
    ir_append(l->a, l->cur, s);
    return &s->then;
}

static void lower_block_items(L *l, Kids *ks, int from)
{
    for (int i = from; i < ks->n && !l->terminated; i++) {
        bool before = l->jumped;
        l->jumped = false;
        lower_stmt(l, ks->v[i]);
        bool inner_jump = l->jumped && !l->terminated;
        l->jumped |= before;
        if (inner_jump && i + 1 < ks->n) {
            /* a return/break/continue happened on some path: guard the rest */
            Block *saved = l->cur;
            l->cur = new_guard(l, cloc(l, ks->v[i + 1]));
            l->depth++;
            lower_block_items(l, ks, i + 1);
            l->depth--;
            l->cur = saved;
            return;
        }
    }
}

static Var *flag_var(L *l, Var **slot, const char *name)
{
    if (!*slot)
        *slot = ir_new_var(l->f, l->a, name, TY_INT, V_FLAG);
    return *slot;
}

static void lower_jump(L *l, CXCursor s, bool is_break)
{
    SrcLoc loc = cloc(l, s);
    if (!l->loop) {
        ERR(l, loc, "'%s' outside a loop in '%s'", is_break ? "break" : "continue", l->f->name);
        return;
    }
    Var *f = is_break ? flag_var(l, &l->loop->brk, "brk") : flag_var(l, &l->loop->cont, "cont");
    emit(l, OP_COPY, f, opnd_int(1, TY_INT), none(), loc);
    l->jumped = true;
    l->terminated = true;
}

/* for/while/do: find init, cond, inc by their position relative to the
 * semicolons between the parentheses (libclang omits absent parts). */
static void lower_loop(L *l, CXCursor s, enum CXCursorKind kind)
{
    SrcLoc loc = cloc(l, s);
    Kids all = kids(s);
    CXCursor init = clang_getNullCursor(), cond = clang_getNullCursor(), inc = clang_getNullCursor(),
             body = clang_getNullCursor();
    if (kind == CXCursor_ForStmt) {
        const Tok *t = tok_at(l, off_start(s));
        unsigned semi[2] = {0, 0}, close = 0;
        int depth = 0, ns = 0;
        for (; t->offset < off_end(s) && *t->text; t++) {
            if (!strcmp(t->text, "("))
                depth++;
            else if (!strcmp(t->text, ")") && --depth == 0) {
                close = t->offset;
                break;
            } else if (!strcmp(t->text, ";") && depth == 1 && ns < 2)
                semi[ns++] = t->offset;
        }
        if (ns != 2 || !close) {
            ERR(l, loc, "cannot read the header of this 'for' loop in '%s' (written through a macro?)", l->f->name);
            return;
        }
        for (int i = 0; i < all.n; i++) {
            unsigned o = off_start(all.v[i]);
            if (o < semi[0])
                init = all.v[i];
            else if (o < semi[1])
                cond = all.v[i];
            else if (o < close)
                inc = all.v[i];
            else
                body = all.v[i];
        }
    } else if (all.n == 2) {
        cond = kind == CXCursor_WhileStmt ? all.v[0] : all.v[1];
        body = kind == CXCursor_WhileStmt ? all.v[1] : all.v[0];
    } else {
        ERR(l, loc, "unsupported form of loop in '%s'", l->f->name);
        return;
    }
    int before_init = l->cur->n;
    if (!clang_Cursor_isNull(init))
        lower_stmt(l, init);

    bool is_do = kind == CXCursor_DoStmt;
    Loop lp = {.parent = l->loop};
    Stmt *st = ir_new_stmt(l->a, ST_LOOP, loc);
    /* the variable the header initialises names the loop (checkpoint(k = K)) */
    if (l->cur->n > before_init && l->cur->v[l->cur->n - 1]->kind == ST_INS) {
        Var *c = l->cur->v[l->cur->n - 1]->ins.dst;
        if (c && (c->kind == V_LOCAL) && !c->is_array)
            st->counter = c;
    }
    Block *outer = l->cur;
    bool *before = arena_alloc(l->a, sizeof(bool) * (size_t)(l->nassigned + 1));
    memcpy(before, l->assigned, sizeof(bool) * (size_t)l->nassigned);
    Var *first = is_do ? new_temp(l, TY_INT) : NULL;
    int returns_before = l->nreturns;
    bool jumped_before = l->jumped;

    /* the body (its flags come into being as break/continue are seen) */
    l->loop = &lp;
    l->depth++;
    Block body_block = {0};
    l->cur = &body_block;
    l->jumped = false;
    if (!clang_Cursor_isNull(body))
        lower_stmt(l, body);
    l->terminated = false;
    bool returned_inside = l->nreturns != returns_before;
    /* the increment runs unless we broke out or returned */
    if (!clang_Cursor_isNull(inc)) {
        Var *stop = stop_flag(l, cloc(l, inc), false);
        if (stop) {
            Var *n = new_temp(l, TY_INT);
            emit(l, OP_NOT, n, opnd_var(stop), none(), cloc(l, inc));
            Stmt *g = ir_new_stmt(l->a, ST_IF, cloc(l, inc));
            g->cond = opnd_var(n);
            ir_append(l->a, l->cur, g);
            l->cur = &g->then;
        }
        lower_discarded(l, inc);
    }
    /* assemble the body: reset continue, clear the do-while first flag */
    l->cur = &st->body;
    if (lp.cont)
        emit(l, OP_COPY, lp.cont, opnd_int(0, TY_INT), none(), loc);
    if (first)
        emit(l, OP_COPY, first, opnd_int(0, TY_INT), none(), loc);
    for (int i = 0; i < body_block.n; i++)
        ir_append(l->a, &st->body, body_block.v[i]);

    /* the head: t = !stop && (first || cond) */
    l->cur = &st->head;
    Var *t = new_temp(l, TY_INT);
    Var *stop = stop_flag(l, loc, false);
    Block *where = l->cur;
    if (stop) {
        emit(l, OP_COPY, t, opnd_int(0, TY_INT), none(), loc);
        Var *n = new_temp(l, TY_INT);
        emit(l, OP_NOT, n, opnd_var(stop), none(), loc);
        Stmt *g = ir_new_stmt(l->a, ST_IF, loc);
        g->cond = opnd_var(n);
        ir_append(l->a, l->cur, g);
        where = &g->then;
    }
    l->cur = where;
    if (first) {
        emit(l, OP_COPY, t, opnd_int(1, TY_INT), none(), loc);
        Var *nf = new_temp(l, TY_INT);
        emit(l, OP_NOT, nf, opnd_var(first), none(), loc);
        Stmt *g = ir_new_stmt(l->a, ST_IF, loc);
        g->cond = opnd_var(nf);
        ir_append(l->a, l->cur, g);
        l->cur = &g->then;
    }
    if (clang_Cursor_isNull(cond)) {
        emit(l, OP_COPY, t, opnd_int(1, TY_INT), none(), loc);
    } else {
        Opnd c = lower_cond(l, cond);
        emit(l, OP_NE, t, c, opnd_int(0, c.ty), loc);
    }
    st->cond = opnd_var(t);
    l->depth--;
    l->loop = lp.parent;

    /* before the loop: reset its flags, then the loop */
    l->cur = outer;
    if (lp.brk)
        emit(l, OP_COPY, lp.brk, opnd_int(0, TY_INT), none(), loc);
    if (first)
        emit(l, OP_COPY, first, opnd_int(1, TY_INT), none(), loc);
    ir_append(l->a, l->cur, st);
    l->f->uses_tape = true;
    /* the body may not run: outputs assigned inside are not definitely assigned */
    memcpy(l->assigned, before, sizeof(bool) * (size_t)l->nassigned);
    l->terminated = false;
    l->jumped = jumped_before || returned_inside;
}

static void lower_if(L *l, CXCursor s)
{
    SrcLoc loc = cloc(l, s);
    Kids all = kids(s);
    /* children: condition, then, [else]; a C++ init-statement would come first */
    if (all.n < 2 || all.n > 3 || !clang_isExpression(clang_getCursorKind(all.v[0]))) {
        ERR(l, loc, "unsupported form of 'if' in '%s'", l->f->name);
        return;
    }
    Opnd c = lower_cond(l, all.v[0]);
    Stmt *st = ir_new_stmt(l->a, ST_IF, loc);
    st->cond = c;
    ir_append(l->a, l->cur, st);
    Block *saved = l->cur;
    bool *before = arena_alloc(l->a, sizeof(bool) * (size_t)(l->nassigned + 1));
    memcpy(before, l->assigned, sizeof(bool) * (size_t)l->nassigned);
    l->depth++;
    l->cur = &st->then;
    lower_stmt(l, all.v[1]);
    bool term_then = l->terminated;
    bool *after_then = arena_alloc(l->a, sizeof(bool) * (size_t)(l->nassigned + 1));
    memcpy(after_then, l->assigned, sizeof(bool) * (size_t)l->nassigned);
    memcpy(l->assigned, before, sizeof(bool) * (size_t)l->nassigned);
    l->terminated = false;
    if (all.n == 3) {
        l->cur = &st->els;
        lower_stmt(l, all.v[2]);
    }
    bool term_else = l->terminated;
    for (int i = 0; i < l->nassigned; i++) {
        if (term_then)
            ; /* keep the else state */
        else if (term_else)
            l->assigned[i] = after_then[i];
        else
            l->assigned[i] = l->assigned[i] && after_then[i];
    }
    l->terminated = term_then && term_else;
    l->depth--;
    l->cur = saved;
}

static void lower_return(L *l, CXCursor s)
{
    SrcLoc loc = cloc(l, s);
    Kids ks = expr_kids(s);
    if (ks.n == 1) {
        Opnd v = lower_expr(l, ks.v[0]);
        if (l->f->retvar) {
            v = convert(l, v, l->f->ret, loc);
            emit(l, OP_COPY, l->f->retvar, v, none(), loc);
        }
    }
    check_outputs_assigned(l, loc, "before this return");
    if (l->depth > 0 || l->loop) {
        if (!l->done) {
            l->done = ir_new_var(l->f, l->a, "done", TY_INT, V_FLAG);
        }
        emit(l, OP_COPY, l->done, opnd_int(1, TY_INT), none(), loc);
    }
    l->jumped = true;
    l->terminated = true;
    l->nreturns++;
}

static void lower_stmt(L *l, CXCursor s)
{
    SrcLoc loc = cloc(l, s);
    enum CXCursorKind k = clang_getCursorKind(s);
    switch (k) {
    case CXCursor_CompoundStmt: {
        Kids ks = kids(s);
        if (ks.n >= 64) {
            ERR(l, loc, "block with 64 or more statements in '%s': split it into smaller blocks", l->f->name);
            return;
        }
        lower_block_items(l, &ks, 0);
        return;
    }
    case CXCursor_DeclStmt: {
        Kids ks = kids(s);
        for (int i = 0; i < ks.n; i++)
            lower_decl(l, ks.v[i]);
        return;
    }
    case CXCursor_IfStmt:
        lower_if(l, s);
        return;
    case CXCursor_ReturnStmt:
        lower_return(l, s);
        return;
    case CXCursor_NullStmt:
        return;
    case CXCursor_ForStmt:
    case CXCursor_WhileStmt:
    case CXCursor_DoStmt:
        lower_loop(l, s, k);
        return;
    case CXCursor_SwitchStmt:
        ERR(l, loc, "'switch' in '%s' is not supported; use if/else", l->f->name);
        return;
    case CXCursor_GotoStmt:
    case CXCursor_IndirectGotoStmt:
        ERR(l, loc, "'goto' in '%s' is not supported", l->f->name);
        return;
    case CXCursor_LabelStmt: {
        /* the goto is the error; the labelled statement is lowered as usual */
        Kids ks = kids(s);
        if (ks.n == 1)
            lower_stmt(l, ks.v[0]);
        return;
    }
    case CXCursor_BreakStmt:
    case CXCursor_ContinueStmt:
        lower_jump(l, s, k == CXCursor_BreakStmt);
        return;
    case CXCursor_AsmStmt:
    case CXCursor_MSAsmStmt:
        ERR(l, loc, "inline assembly in '%s' is not supported", l->f->name);
        return;
    default:
        if (clang_isExpression(k)) {
            lower_discarded(l, s);
            return;
        }
        ERR(l, loc, "unsupported statement (%s) in '%s'", kind_spelling(l, s), l->f->name);
    }
}

/* ---- functions ---- */


/* check(name = number): validate against parameter v and append
 * "name=number" to f->check_at, the point `twinc check` starts from. */
static void add_check_value(L *l, Func *f, const PragmaClause *c, int k, const Var *v)
{
    if (k >= c->vals.n)
        return; /* the clause did not parse: pragma.c said so */
    const char *text = c->vals.v[k];
    char *end;
    errno = 0;
    if (ty_is_int(v->ty)) {
        long long x = strtoll(text, &end, 0);
        if (*end || errno == ERANGE || (v->ty == TY_INT && (x < INT_MIN || x > INT_MAX)) ||
            ((v->ty == TY_UINT || v->ty == TY_ULONG) && x < 0)) {
            ERR(l, c->loc, "check(%s = %s): '%s' of '%s' is %s; give an integer in its range",
                v->user_name, text, v->user_name, f->name, ty_c(v->ty));
            return;
        }
    } else {
        double x = strtod(text, &end);
        if (*end || !isfinite(x)) {
            ERR(l, c->loc, "check(%s = %s): give a finite decimal number for '%s'", v->user_name, text,
                v->user_name);
            return;
        }
    }
    f->check_at = f->check_at ? arena_printf(l->a, "%s,%s=%s", f->check_at, v->user_name, text)
                              : arena_printf(l->a, "%s=%s", v->user_name, text);
}

/* ---- checkpoint(k = K): the for loop over k keeps a snapshot of its state
 * every K iterations instead of a tape of all of them (emit_adjoint.c) ---- */

static void find_loops(Block *b, const char *name, Stmt *inside, PtrVec *out, Arena *a, Stmt **outer)
{
    for (int i = 0; i < b->n; i++) {
        Stmt *s = b->v[i];
        if (s->kind == ST_IF) {
            find_loops(&s->then, name, inside, out, a, outer);
            find_loops(&s->els, name, inside, out, a, outer);
        } else if (s->kind == ST_LOOP) {
            if (s->counter && !strcmp(s->counter->user_name, name) && out->n < 64) {
                outer[out->n] = inside;
                vec_push(a, out, s);
            }
            find_loops(&s->head, name, s->ckpt ? s : inside, out, a, outer);
            find_loops(&s->body, name, s->ckpt ? s : inside, out, a, outer);
        }
    }
}

/* an array store or a nested checkpointed loop inside: located, or NULL */
static const Stmt *ckpt_blocker(const Block *b, bool *nested)
{
    for (int i = 0; i < b->n; i++) {
        const Stmt *s = b->v[i], *r;
        if (s->kind == ST_IF && ((r = ckpt_blocker(&s->then, nested)) || (r = ckpt_blocker(&s->els, nested))))
            return r;
        if (s->kind == ST_LOOP) {
            if (s->ckpt) {
                *nested = true;
                return s;
            }
            if ((r = ckpt_blocker(&s->head, nested)) || (r = ckpt_blocker(&s->body, nested)))
                return r;
        }
        if (s->kind == ST_INS && s->ins.op == OP_STORE)
            return s;
    }
    return NULL;
}

static void bind_checkpoints(L *l, Func *f, Pragma *p)
{
    for (int i = 0; p && i < p->clauses.n; i++) {
        PragmaClause *c = p->clauses.v[i];
        if (strcmp(c->name, "checkpoint"))
            continue;
        for (int k = 0; k < c->args.n && k < c->vals.n; k++) {
            const char *name = c->args.v[k], *text = c->vals.v[k];
            char *end;
            errno = 0;
            long long K = strtoll(text, &end, 0);
            if (*end || errno == ERANGE || K < 1 || K > (1LL << 40)) {
                ERR(l, c->loc, "checkpoint(%s = %s): give a whole number of iterations >= 1 between snapshots",
                    name, text);
                continue;
            }
            PtrVec loops = {0};
            Stmt *outer[64] = {0};
            find_loops(&f->body, name, NULL, &loops, l->a, outer);
            if (loops.n == 0) {
                ERR(l, c->loc, "checkpoint(%s = %s): no 'for' loop of '%s' initialises '%s' in its header", name,
                    text, f->name, name);
                continue;
            }
            if (loops.n > 1) {
                ERR(l, c->loc, "checkpoint(%s = %s): more than one 'for' loop of '%s' initialises '%s'; give "
                    "the loop to checkpoint a counter of its own", name, text, f->name, name);
                continue;
            }
            Stmt *s = loops.v[0];
            bool nested = false;
            const Stmt *b = ckpt_blocker(&s->head, &nested);
            if (!b)
                b = ckpt_blocker(&s->body, &nested);
            if (b || outer[0]) {
                ERR(l, b ? b->loc : s->loc,
                    nested || outer[0] ? "checkpoint(%s = %s): checkpointed loops of '%s' cannot be nested"
                                       : "checkpoint(%s = %s): the loop of '%s' stores into an array; a "
                                         "checkpointed loop may only read arrays (its snapshots hold scalars)",
                    name, text, f->name);
                continue;
            }
            s->ckpt = K;
        }
    }
}

static void lower_func(L *l, CXCursor fn, Pragma *p)
{
    Func *f = l->f;
    f->attempted = true;
    f->lowering = true;
    CXType ft = clang_getCursorType(fn);
    if (clang_isFunctionTypeVariadic(ft))
        ERR(l, f->loc, "variadic function '%s' cannot be #pragma aad", f->name);
    if (!c_ty(clang_getResultType(ft), &f->ret) || ty_is_int(f->ret))
        ERR(l, f->loc, "#pragma aad function '%s' must return double or void, not '%s'", f->name,
            type_spelling(l, clang_getResultType(ft)));
    int np = clang_Cursor_getNumArguments(fn);
    l->nassigned = np;
    l->assigned = arena_alloc(l->a, sizeof(bool) * (size_t)(np + 1));
    for (int i = 0; i < np; i++) {
        CXCursor pc = clang_Cursor_getArgument(fn, (unsigned)i);
        const char *name = cursor_spelling(l, pc);
        SrcLoc ploc = cloc(l, pc);
        CXType pt = clang_getCanonicalType(clang_getCursorType(pc));
        if (!*name) {
            ERR(l, ploc, "parameter %d of '%s' has no name", i + 1, f->name);
            name = arena_printf(l->a, "arg%d", i);
        }
        Ty ty = TY_DOUBLE;
        VarKind kind = V_PARAM;
        PtrVec len = {0};
        bool is_array = false;
        bool inout = false;
        if (pt.kind == CXType_ConstantArray || pt.kind == CXType_VariableArray ||
            pt.kind == CXType_IncompleteArray || pt.kind == CXType_DependentSizedArray) {
            /* double x[n]: libclang gives the type as written, not the pointer */
            CXType et = clang_getArrayElementType(clang_getCursorType(pc));
            if (clang_getCanonicalType(et).kind != CXType_Double) {
                ERR(l, ploc, "array parameter '%s' of '%s' must hold double (one dimension)", name, f->name);
            } else if (pt.kind == CXType_ConstantArray) {
                is_array = true;
                vec_push(l->a, &len, arena_printf(l->a, "%lld", clang_getArraySize(pt)));
            } else {
                is_array = array_len(l, off_start(pc), off_end(pc), ploc, name, &len);
                if (!is_array || !len.n)
                    ERR(l, ploc, "array parameter '%s' of '%s' needs a length: write '%s[n]' with n an integer "
                        "parameter before it", name, f->name, name);
            }
            inout = !clang_isConstQualifiedType(et);
            if (inout && is_array)
                for (int c = 0; p && c < p->clauses.n; c++)
                    for (int a = 0; a < ((PragmaClause *)p->clauses.v[c])->args.n; a++)
                        if (strcmp(((PragmaClause *)p->clauses.v[c])->name, "check") &&
                            !strcmp(((PragmaClause *)p->clauses.v[c])->args.v[a], name))
                            ERR(l, ploc, "in/out array '%s' of '%s' cannot be passive or uniform", name, f->name);
        } else if (pt.kind == CXType_Pointer) {
            CXType pointee = clang_getPointeeType(pt);
            bool dbl = clang_getCanonicalType(pointee).kind == CXType_Double;
            bool cst = clang_isConstQualifiedType(pointee);
            if (dbl)
                is_array = array_len(l, off_start(pc), off_end(pc), ploc, name, &len);
            if (dbl && !is_array && !cst)
                kind = V_OUT;
            else if (dbl && !is_array)
                ERR(l, ploc, "input array '%s' of '%s' needs its length: write 'const double %s[n]' with n an "
                    "integer parameter before it", name, f->name, name);
            else if (dbl)
                ;
            else
                ERR(l, ploc, "parameter '%s' of '%s' has unsupported type '%s' (double, integer, or double * "
                    "output)", name, f->name, type_spelling(l, clang_getCursorType(pc)));
        } else if (!c_ty(pt, &ty) || ty == TY_VOID) {
            ERR(l, ploc, "parameter '%s' of '%s' has unsupported type '%s'%s", name, f->name,
                type_spelling(l, clang_getCursorType(pc)),
                pt.kind == CXType_Float ? " (float is not supported yet: use double)" : "");
        }
        Var *v = ir_new_var(f, l->a, name, ty, kind);
        v->param_index = i;
        v->is_array = is_array;
        v->len = len;
        v->inout = is_array && (inout || (pt.kind == CXType_Pointer &&
                                          !clang_isConstQualifiedType(clang_getPointeeType(pt))));
        v->loc = ploc;
        v->is_const = kind == V_PARAM && clang_isConstQualifiedType(clang_getCursorType(pc));
        if (kind == V_PARAM)
            v->nassign = 1;
        vec_push(l->a, &f->params, v);
        bind(l, pc, v);
    }
    /* clauses name parameters */
    for (int i = 0; i < p->clauses.n; i++) {
        PragmaClause *c = p->clauses.v[i];
        for (int k = 0; k < c->args.n; k++) {
            Var *v = NULL;
            for (int j = 0; j < f->params.n; j++)
                if (!strcmp(((Var *)f->params.v[j])->user_name, c->args.v[k]))
                    v = f->params.v[j];
            if (!strcmp(c->name, "checkpoint"))
                continue;
            if (!v || v->kind != V_PARAM) {
                ERR(l, c->loc, "'%s' in clause '%s' is not an input parameter of '%s'", (char *)c->args.v[k],
                    c->name, f->name);
                continue;
            }
            if (!strcmp(c->name, "checkpoint"))
                continue; /* names a loop counter, bound after the body */
            if (!strcmp(c->name, "check"))
                add_check_value(l, f, c, k, v);
            else if (!strcmp(c->name, "passive"))
                v->passive = true;
            else
                v->uniform = true;
        }
    }
    if (f->ret != TY_VOID)
        f->retvar = ir_new_var(f, l->a, "ret", f->ret, V_RET);
    /* the body */
    Kids ks = kids(fn);
    CXCursor body = clang_getNullCursor();
    for (int i = 0; i < ks.n; i++)
        if (clang_getCursorKind(ks.v[i]) == CXCursor_CompoundStmt)
            body = ks.v[i];
    l->cur = &f->body;
    /* a broken signature makes every use of its parameters an error: stop */
    if (!clang_Cursor_isNull(body) && !l->failed)
        lower_stmt(l, body);
    if (!l->terminated && !l->failed) {
        SrcLoc end = loc_of(l, clang_getRangeEnd(clang_getCursorExtent(fn)));
        end.col = end.col > 1 ? end.col - 1 : end.col;
        if (f->ret != TY_VOID)
            ERR(l, end, "control reaches the end of non-void function '%s' without a return", f->name);
        else
            check_outputs_assigned(l, end, "at the end of the function");
    }
    if (!l->failed)
        bind_checkpoints(l, f, p);
    f->lowering = false;
    f->lowered = !l->failed;
}

typedef struct TopDecls {
    Arena *a;
    PtrVec v; /* CXCursor* */
} TopDecls;

static enum CXChildVisitResult collect_top(CXCursor c, CXCursor parent, CXClientData data)
{
    (void)parent;
    TopDecls *t = data;
    if (!clang_Location_isFromMainFile(clang_getCursorLocation(c)) ||
        clang_isPreprocessing(clang_getCursorKind(c)))
        return CXChildVisit_Continue;
    CXCursor *copy = arena_alloc(t->a, sizeof *copy);
    *copy = c;
    vec_push(t->a, &t->v, copy);
    return CXChildVisit_Continue;
}

void lower_unit(Unit *u, CXTranslationUnit tu, const Tok *toks, unsigned ntoks, PtrVec *pragmas)
{
    TopDecls top = {u->arena, {0}};
    clang_visitChildren(clang_getTranslationUnitCursor(tu), collect_top, &top);
    /* bind: the first top-level cursor that starts after the pragma's line */
    CXCursor *bound = arena_alloc(u->arena, sizeof *bound * (size_t)(pragmas->n + 1));
    for (int i = 0; i < pragmas->n; i++) {
        Pragma *p = pragmas->v[i];
        CXCursor *next = NULL;
        for (int k = 0; k < top.v.n && !next; k++) {
            CXCursor *c = top.v.v[k];
            if (off_start(*c) >= p->end_offset)
                next = c;
        }
        if (i + 1 < pragmas->n && next && off_start(*next) > ((Pragma *)pragmas->v[i + 1])->offset) {
            diag_error(u->diag, p->loc, "'#pragma aad' is followed by another '#pragma aad' instead of a "
                       "function definition");
            next = NULL;
            bound[i] = clang_getNullCursor();
            continue;
        }
        if (!next || clang_getCursorKind(*next) != CXCursor_FunctionDecl || !clang_isCursorDefinition(*next)) {
            const char *what = "the end of the file";
            if (next) {
                CXString ks = clang_getCursorKindSpelling(clang_getCursorKind(*next));
                enum CXCursorKind nk = clang_getCursorKind(*next);
                what = nk == CXCursor_FunctionDecl ? "a function declaration without a body"
                       : nk == CXCursor_VarDecl    ? "a variable declaration"
                       : nk == CXCursor_TypedefDecl ? "a typedef"
                       : nk == CXCursor_StructDecl ? "a struct declaration"
                                                    : arena_printf(u->arena, "a %s", clang_getCString(ks));
                clang_disposeString(ks);
            }
            diag_error(u->diag, p->loc, "'#pragma aad' must be followed by a function definition, but is "
                       "followed by %s", what);
            bound[i] = clang_getNullCursor();
            continue;
        }
        bound[i] = *next;
        p->bound = true;
    }
    /* create every Func first, so calls can find functions defined later */
    for (int i = 0; i < pragmas->n; i++) {
        if (clang_Cursor_isNull(bound[i]))
            continue;
        Func *f = arena_alloc(u->arena, sizeof *f);
        CXString s = clang_getCursorSpelling(bound[i]);
        f->name = arena_strdup(u->arena, clang_getCString(s));
        clang_disposeString(s);
        CXFile file;
        unsigned line, col;
        clang_getExpansionLocation(clang_getCursorLocation(bound[i]), &file, &line, &col, NULL);
        f->loc = (SrcLoc){u->file, (int)line, (int)col};
        f->pragma_loc = ((Pragma *)pragmas->v[i])->loc;
        f->external = clang_getCursorLinkage(bound[i]) == CXLinkage_External;
        f->index = u->funcs.n;
        CXCursor *c = arena_alloc(u->arena, sizeof *c);
        *c = bound[i];
        f->cursor_data = c;
        f->pragma = pragmas->v[i];
        if (unit_find(u, f->name)) {
            diag_error(u->diag, f->pragma_loc, "function '%s' has '#pragma aad' twice", f->name);
            continue;
        }
        vec_push(u->arena, &u->funcs, f);
    }
    /* lower callees before callers: a call lowers its callee on demand */
    for (int i = 0; i < u->funcs.n; i++) {
        Func *f = u->funcs.v[i];
        if (f->attempted)
            continue;
        L l = {.u = u, .f = f, .a = u->arena, .tu = tu, .toks = toks, .ntoks = ntoks};
        lower_func(&l, *(CXCursor *)f->cursor_data, f->pragma);
    }
}
