/*
 * twinc_gen.h — the generator's one internal header, and its map.
 *
 * The generator turns the #pragma aad functions of one C translation unit into
 * twins.  Its phases, one file each, in the order the driver (gen.c) runs them:
 *
 *   pragma.c        find every `#pragma aad [clauses]`, bind it to the function
 *                   definition that follows
 *   lower.c         libclang cursors -> IR (three-address instructions inside
 *                   structured if/else), checking the accepted subset as it goes
 *   activity.c      which variables carry derivatives from active inputs to outputs
 *   varying.c       which variables differ per lane and which are uniform
 *   tbr.c           to-be-recorded: which overwrites the reverse sweep must undo
 *   emit_*.c        per-lane primal, tangent and adjoint bodies, batched twins,
 *                   generic thunks, registry and header
 *
 * Support: arena.c (memory, strings, output buffers), diag.c (compiler-style
 * errors), ir.c (construction and --dump-ir), builtins.c (the derivative table).
 * Everything the generator allocates for one translation unit lives in one
 * Arena, freed in one go.
 */
#ifndef TWINC_GEN_H
#define TWINC_GEN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "builtins.h"

#define TWINC_VERSION "0.1.0"

/* ---- arena.c ---- */

typedef struct Arena Arena;
Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size); /* zeroed */
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable text buffer that counts the lines written (for #line). */
typedef struct Buf {
    char *s;
    size_t len, cap;
    int line; /* number of '\n' written so far */
} Buf;
void buf_puts(Buf *b, const char *s);
void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(Buf *b);

/* A growable array of pointers. */
typedef struct PtrVec {
    void **v;
    int n, cap;
} PtrVec;
void vec_push(Arena *a, PtrVec *vec, void *p);

/* ---- diag.c ---- */

typedef struct SrcLoc {
    const char *file;
    int line, col;
} SrcLoc;

typedef struct Diag Diag;
Diag *diag_new(FILE *out);
void diag_free(Diag *d);
void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int diag_count(const Diag *d);
/* Errors reported with a location are also kept for callers (plugins). */
typedef void (*DiagSink)(void *ctx, SrcLoc loc, int is_error, const char *msg);
void diag_set_sink(Diag *d, DiagSink sink, void *ctx);

/* ---- ir.c : the IR ---- */

/* ORDER TY: ty_c_name[] and ty_abi[] in ir.c */
typedef enum Ty { TY_VOID, TY_DOUBLE, TY_INT, TY_LONG, TY_UINT, TY_ULONG } Ty;
const char *ty_c(Ty t);
const char *ty_abi_name(Ty t); /* "TWINC_T_DOUBLE", ... */
static inline bool ty_is_int(Ty t) { return t >= TY_INT; }

typedef enum VarKind {
    V_PARAM,  /* scalar input parameter */
    V_OUT,    /* double * output parameter, seen as a variable in the body */
    V_RET,    /* the return value */
    V_LOCAL,  /* a user's local */
    V_TEMP,   /* introduced by lowering */
    V_FLAG    /* control: "already returned" */
} VarKind;

typedef struct Var {
    int id;
    const char *name; /* unique within the function, a valid C identifier */
    const char *user_name;
    Ty ty;
    VarKind kind;
    int param_index;  /* C parameter position for V_PARAM / V_OUT, else -1 */
    bool is_const;
    bool passive;     /* V_PARAM named in passive(...) */
    bool uniform;     /* V_PARAM named in uniform(...) */
    bool poisoned;    /* its declaration was an error: later uses stay quiet */
    bool is_array;    /* const double x[n] (input), double v[n] (in/out), local double a[n] */
    bool inout;       /* a non-const array parameter */
    PtrVec len;       /* array length as tokens (const char *); identifiers are int params */
    SrcLoc loc;
    /* analyses */
    int nassign;      /* static assignment sites (parameters count one) */
    bool varied, useful, active; /* activity.c */
    bool varying;     /* varying.c */
    bool needed;      /* tbr.c: value read by the reverse sweep */
} Var;

typedef enum OpndKind { O_NONE, O_VAR, O_CONST } OpndKind;
typedef struct Opnd {
    OpndKind kind;
    Ty ty;
    Var *v;
    double d;        /* TY_DOUBLE constant */
    long long i;     /* integer constant */
} Opnd;

/* ORDER OP: op_info[] in ir.c */
#define TWINC_OPS(X)                                                           \
    X(COPY, "copy", "")                                                        \
    X(CONV, "conv", "")                                                        \
    X(NEG, "neg", "-")                                                         \
    X(NOT, "not", "!")                                                         \
    X(BNOT, "bnot", "~")                                                       \
    X(ADD, "add", "+")                                                         \
    X(SUB, "sub", "-")                                                         \
    X(MUL, "mul", "*")                                                         \
    X(DIV, "div", "/")                                                         \
    X(MOD, "mod", "%")                                                         \
    X(BAND, "band", "&")                                                       \
    X(BOR, "bor", "|")                                                         \
    X(BXOR, "bxor", "^")                                                       \
    X(SHL, "shl", "<<")                                                        \
    X(SHR, "shr", ">>")                                                        \
    X(LT, "lt", "<")                                                           \
    X(LE, "le", "<=")                                                          \
    X(GT, "gt", ">")                                                           \
    X(GE, "ge", ">=")                                                          \
    X(EQ, "eq", "==")                                                          \
    X(NE, "ne", "!=")                                                          \
    X(LOAD, "load", "")      /* dst = a[b] */                                 \
    X(STORE, "store", "")    /* dst[a] = b; dst is the array */                \
    X(BUILTIN, "builtin", "")                                                  \
    X(CALL, "call", "")

typedef enum Op {
#define X(id, name, c) OP_##id,
    TWINC_OPS(X)
#undef X
    OP_COUNT
} Op;
const char *op_name(Op op);
const char *op_c(Op op);
static inline bool op_is_compare(Op op) { return op >= OP_LT && op <= OP_NE; }

typedef enum BuiltinKind { BK_SMOOTH, BK_SINGULAR, BK_SELECT } BuiltinKind;
typedef enum BuiltinId {
#define X(id, name, alias, arity, kind, value, pa, pb) B_##id,
    TWINC_BUILTINS(X)
#undef X
    B_COUNT
} BuiltinId;
typedef struct Builtin {
    const char *name, *alias;
    int arity;
    BuiltinKind kind;
    const char *value;
    const char *partial[2];
} Builtin;
extern const Builtin builtin_table[B_COUNT];
int builtin_lookup(const char *name); /* -1 if none */

struct Func;

typedef struct Ins {
    Op op;
    Var *dst;          /* NULL only for a void call */
    Opnd a, b;         /* unary/binary operands; builtins use args */
    int builtin;       /* BuiltinId for OP_BUILTIN */
    struct Func *callee;
    Opnd *args;        /* OP_BUILTIN, OP_CALL: one per (callee input) argument */
    int nargs;
    Var **outs;        /* OP_CALL: the caller's variables receiving callee outputs */
    int nouts;
    bool in_loop;      /* executes once per iteration of some loop */
    bool first_def;    /* a declaration's initializer outside any loop: the
                          variable had no earlier value to preserve */
    /* tbr.c: save the destination(s) before overwriting them */
    bool save_dst;
    bool *save_outs;
    int slot;          /* first save slot number */
    bool sel_byte;     /* fmin/fmax: record which argument won (a byte), not the arguments */
    bool recompute;    /* cheap, block-local: recomputed in the reverse sweep, never saved */
    int recompute_at;  /* ... just before reversing statement [recompute_at] of its block */
    bool invert;       /* j = t after t = j + c: restored as j -= c, never saved */
    long long invert_by;
} Ins;

/* ST_LOOP means   for (;;) { head; if (!cond) break; body; }   — every C loop
 * lowers to it; break/continue/return inside become flags. */
typedef enum StKind { ST_INS, ST_IF, ST_LOOP } StKind;

typedef struct Block {
    struct Stmt **v;
    int n, cap;
} Block;

typedef struct Stmt {
    StKind kind;
    SrcLoc loc;
    Ins ins;           /* ST_INS */
    Opnd cond;         /* ST_IF: integer operand, taken when != 0 */
    Block then, els;   /* ST_IF */
    Block head, body;  /* ST_LOOP (cond is the loop condition) */
    int id;            /* ST_IF: branch-outcome slot; ST_LOOP: loop number */
    struct Var *counter; /* ST_LOOP: the variable a `for` header initialises, or NULL */
    long long ckpt;    /* ST_LOOP: checkpoint(counter = K): snapshot every K iterations; 0 = none */
    PtrVec ckpt_vars;  /* ST_LOOP with ckpt: Var*, the state a snapshot holds */
} Stmt;

typedef struct Func {
    const char *name;
    SrcLoc loc;        /* of the function name */
    SrcLoc pragma_loc;
    Ty ret;
    bool external;     /* external linkage: the registry may call the user's own */
    PtrVec params;     /* Var*, V_PARAM and V_OUT in C order */
    PtrVec vars;       /* every Var, params first */
    Var *retvar;       /* NULL for void */
    Block body;
    int nslots;        /* save slots and branch slots, numbered together */
    bool uses_tape;    /* has loops or calls a kernel that does: saves go on a tape */
    int nbranches;
    int index;         /* position among the unit's kernels */
    bool lowered;      /* false if lowering reported errors */
    bool lowering;     /* recursion guard */
    bool attempted;    /* lowering has been run */
    struct Pragma *pragma;
    const char *check_at; /* check(...) as "name=value,...", or NULL */
    void *cursor_data; /* lower.c private */
} Func;

typedef struct Unit {
    Arena *arena;
    Diag *diag;
    const char *file;  /* the main source file as given */
    PtrVec funcs;      /* Func*, in source order */
} Unit;

Var *ir_new_var(Func *f, Arena *a, const char *name, Ty ty, VarKind kind);
Stmt *ir_new_stmt(Arena *a, StKind kind, SrcLoc loc);
void ir_append(Arena *a, Block *b, Stmt *s);
Func *unit_find(const Unit *u, const char *name);
void ir_dump(const Unit *u, FILE *out, const char *after);
/* Visit every instruction of a block, in order, depth first. */
typedef void (*InsVisitor)(void *ctx, Stmt *s, bool under_varying);
void ir_walk(Block *b, InsVisitor fn, void *ctx);
static inline bool opnd_is_var(const Opnd *o) { return o->kind == O_VAR; }
static inline bool opnd_active(const Opnd *o) { return o->kind == O_VAR && o->v->active; }
Opnd opnd_var(Var *v);
Opnd opnd_double(double d);
Opnd opnd_int(long long i, Ty ty);
/* Shortest decimal that reads back to exactly the same double. */
const char *fmt_double(Arena *a, double d);
const char *opnd_c(Arena *a, const Opnd *o);

/* ---- pragma.c ---- */

typedef struct PragmaClause {
    const char *name;    /* "passive", "uniform", "check" */
    PtrVec args;         /* const char *: parameter names */
    PtrVec vals;         /* check: const char *, the number for each name */
    SrcLoc loc;
} PragmaClause;

typedef struct Pragma {
    SrcLoc loc;
    unsigned offset;     /* file offset of the '#' */
    unsigned end_offset; /* file offset just past the pragma line */
    PtrVec clauses;      /* PragmaClause* */
    bool bound;
} Pragma;

typedef struct Tok {
    int kind;            /* CXTokenKind */
    const char *text;
    unsigned offset, end, line, col;
} Tok;

/* ---- gen.c : the driver and its entry point (also used by the plugins) ---- */

typedef struct GenOptions {
    const char *input;        /* C file */
    const char *out_c;        /* twin C file; NULL = derive from input */
    const char *out_h;        /* header; NULL = derive from out_c */
    const char *const *cflags;
    int ncflags;
    const char *dump_ir;      /* NULL, or the pass after which to dump */
    FILE *dump_out;
    FILE *err_out;            /* where diagnostics go (stderr) */
    DiagSink sink;            /* optional: also receive each diagnostic */
    void *sink_ctx;
} GenOptions;

/* Returns 0 on success (outputs written), 1 on user errors (nothing written),
 * 2 on internal/IO errors. */
int twinc_generate(const GenOptions *opt);
bool twinc_is_pass(const char *name); /* a --dump-ir pass name */
/* The front half (parse .. tbr) as a session, for tests and plugins. */
typedef struct GenSession GenSession;
GenSession *gen_open(const GenOptions *opt, int *rc);
Unit *gen_unit(GenSession *s);
void gen_close(GenSession *s);

/* Phases, in driver order; each reports through u->diag. */
struct CXTranslationUnitImpl;
/* Raw tokens of the main file (arena), with a sentinel at [count]. */
Tok *file_tokens(Unit *u, struct CXTranslationUnitImpl *tu, unsigned *count);
void pragma_scan(Unit *u, struct CXTranslationUnitImpl *tu, const Tok *t, unsigned ntoks, PtrVec *pragmas);
void lower_unit(Unit *u, struct CXTranslationUnitImpl *tu, const Tok *t, unsigned ntoks, PtrVec *pragmas);
void activity_unit(Unit *u);
void varying_unit(Unit *u);
void tbr_unit(Unit *u);
void emit_unit(Unit *u, const char *c_path, const char *h_path, Buf *c, Buf *h);

/* emit.c: shared emitter helpers */
typedef struct Emit {
    Unit *u;
    Func *f;
    Buf *b;
    const char *twin_path; /* for #line back to the twin file */
    int indent;
    int last_line;         /* last user line a #line pointed at, 0 = none */
} Emit;
void em_line(Emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void em_blank(Emit *e);
void em_srcline(Emit *e, SrcLoc loc);   /* #line to the user's source */
void em_twinline(Emit *e);              /* #line back to the twin file */
const char *em_opnd(Emit *e, const Opnd *o);
const char *em_subst(Emit *e, const char *pattern, const Ins *ins);
const char *em_value_expr(Emit *e, const Ins *ins); /* C expression for a non-call op */
void em_decl_locals(Emit *e, const char *suffix_d, const char *suffix_b);
const char *em_lane_signature(Emit *e, Func *f, int which); /* 0 primal, 1 tangent, 2 adjoint */
void em_void_params(Emit *e);
const char *em_len(Emit *e, const Var *v, int ctx);
const char *em_elem(Emit *e, const Var *v, const char *idx, int which);
int em_partials(Emit *e, const Ins *in, const Opnd **ops, const char **p);
const char *em_times(Emit *e, const char *p, const char *x);
/* p * x, or 0 when x == 0 for rules whose partial may be infinite */
const char *em_term(Emit *e, const Ins *in, const char *p, const char *x);
void emit_lane_primal(Emit *e);
void emit_lane_tangent(Emit *e);
void emit_lane_adjoint(Emit *e);
void emit_lane_prototypes(Emit *e);
void emit_batched(Emit *e);
void emit_registry(Emit *e);
void emit_header(Unit *u, Buf *h, const char *h_path);
/* emit_registry.c: the typed twin's parameter list */
void em_typed_params(Func *f, int which, Buf *b);
/* emit_simd.c: SIMD lane blocks and their dispatch */
bool simd_ok(Func *f);
void emit_simd(Emit *e);
const char *simd_start(Emit *e, int which);
/* emit_ws.c: sizing the tape before the call */
int ws_kind(Emit *e, Func *f); /* 1 bound, 2 estimate (TWINC_WS_*) */
void emit_ws_lane(Emit *e);
void emit_ws(Emit *e);
void ws_signature(Emit *e, Func *f, Buf *b);

#endif /* TWINC_GEN_H */
