/*
 * graph.c — the graph runtime declared in twinc_graph.h: recording, the
 * compiler (activity, fusion, scheduling, row tiling, buffer planning) and the
 * executor (forward and reverse replay on a pool of threads), plus
 * twinc_kernel_run_nd, the n-d lane loop around a twin that both the executor
 * and the Python binding call.
 *
 * The file reads top to bottom as the pipeline:
 *
 *   recording      nodes in creation order (which is a topological order);
 *                  every builder call checks shapes and fails with a NumPy-
 *                  style message instead of recording a bad node.
 *   compile        live       what the outputs need;
 *                  active     what depends on a differentiable input;
 *                  useful     what a seeded output depends on (the reverse
 *                             replay touches only active ∧ useful values);
 *                  aliases    views that are reshapes of contiguous data share
 *                             their base's buffer (and adjoint);
 *                  virtual    strided views read only by elementwise passes
 *                             and kernel calls are never materialised: the
 *                             reader walks the base through composed strides;
 *                  fusion     elementwise nodes of one shape join a group,
 *                             executed as one pass over blocks of BLK
 *                             elements; a member is written to memory only if
 *                             something outside the group reads it;
 *                  schedule   groups and the remaining nodes become steps in
 *                             a topological order;
 *                  seeds      a kernel whose differentiated outputs are seeded
 *                             graph outputs read by nothing else runs its
 *                             adjoint twin in the forward replay (one call);
 *                  regions    consecutive steps that all work row by row along
 *                             a shared leading dimension run tile by tile;
 *                             values only the region reads live in per-thread
 *                             tiles, never in full (find_regions);
 *                  plan       every other buffer (values, adjoints, per-step
 *                             scratch) gets an offset in one arena from its
 *                             lifetime on the replay's timeline: forward step
 *                             s at time s, its reverse at 2S-1-s.
 *   execute        contexts   a replay borrows an arena from the graph's pool;
 *                  forward    steps in order, each split over the worker
 *                             threads (parallel_for);
 *                  reverse    adjoints zeroed when their lifetime starts,
 *                             outputs seeded, steps in reverse order.  A fused
 *                             group recomputes its intermediates block by
 *                             block and sweeps them backwards in registers; a
 *                             region recomputes a tile, then sweeps it back.
 *
 * Determinism: work is split by size only (parts_for), and parts that would
 * add into the same adjoint element use private copies added in part order,
 * so a replay gives the same bits alone, in parallel or next to others.
 *
 * Derivative rules of the elementwise operations live in one function,
 * ew_partial(), next to their forward definitions in ew_forward() (ORDER
 * TWINC_GOPS).  Transcendental functions go through libmvec when the process
 * has it (vmath_init).
 *
 * MIT licence — see LICENSE.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "twinc_graph.h"

#define MAXDIM TWINC_GRAPH_MAXDIM
#define BLK 256          /* elements per block of a fused pass */
#define ALIGN 64         /* arena alignment of every buffer */

/* ---- small helpers ---- */

static void set_err(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *buf, size_t len, const char *fmt, ...)
{
    if (!buf || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* "(2, 3)" in NumPy's notation, "()" for a scalar, "(5,)" for one dimension. */
static const char *fmt_shape(char *buf, size_t len, int nd, const int64_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, len - k, "(");
    for (int i = 0; i < nd && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < len)
        snprintf(buf + k, len - k, nd == 1 ? ",)" : ")");
    return buf;
}

static int64_t shape_size(int nd, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    return n;
}

static void contig_strides(int nd, const int64_t *shape, int64_t *st)
{
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        st[i] = s;
        s *= shape[i];
    }
}

/* Broadcast shape of a and b into out; 0 if they do not broadcast. */
static int broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                            int64_t *out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1)
            return 0;
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return 1;
}

/* Strides (in elements) of a contiguous array of shape (na, a) read as if
 * broadcast to (n, out): 0 along broadcast dimensions. */
static void broadcast_strides(int na, const int64_t *a, int n, const int64_t *out, int64_t *st)
{
    int64_t cs[MAXDIM];
    contig_strides(na, a, cs);
    for (int i = 0; i < n; i++) {
        int j = i - (n - na);
        st[i] = (j < 0 || a[j] == 1) ? 0 : cs[j];
    }
    (void)out;
}

static size_t round_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* ---- the operation table ---- */

enum { K_O, K_E1, K_E2, K_E3, K_M, K_R, K_S };
#define GOP_KIND_O K_O
#define GOP_KIND_E1 K_E1
#define GOP_KIND_E2 K_E2
#define GOP_KIND_E3 K_E3
#define GOP_KIND_M K_M
#define GOP_KIND_R K_R
#define GOP_KIND_S K_S

static const struct {
    const char *name;
    int arity;
    int kind;
} gops[TWINC_GOP_COUNT] = {
#define GOP_ROW(NAME, name, arity, kind) {name, arity, GOP_KIND_##kind},
    TWINC_GOPS(GOP_ROW)
#undef GOP_ROW
};

const char *twinc_gop_name(twinc_gop op)
{
    return (unsigned)op < TWINC_GOP_COUNT ? gops[op].name : "(bad operation)";
}

int twinc_gop_arity(twinc_gop op) { return (unsigned)op < TWINC_GOP_COUNT ? gops[op].arity : 0; }

static int is_elementwise(twinc_gop op)
{
    int k = gops[op].kind;
    return k == K_E1 || k == K_E2 || k == K_E3 || k == K_M;
}

/* ---- nodes and the graph ---- */

typedef struct Map {
    int64_t offset;
    int64_t strides[MAXDIM];
    int64_t *index;          /* flat indices (TAKE, SET with an index), owned */
    int nd;                  /* SET: the region's shape */
    int64_t shape[MAXDIM];
    int64_t size;
} Map;

typedef struct Node {
    twinc_gop op;
    int nin;
    int *in;                 /* inputs (node ids); points to inl when nin <= 3 */
    int inl[3];
    int nd;
    int64_t shape[MAXDIM];
    int64_t size;
    int axis;                /* REDUCE, SCAN, CONCAT */
    int index;               /* INPUT: input number; KOUT: registry parameter */
    int diff;                /* INPUT: differentiable */
    double *data;            /* CONST, owned */
    Map *map;                /* VIEW, TAKE, SET, owned */
    const twinc_kernel *kernel; /* KERNEL */
    int *kouts;              /* KERNEL: one node per output parameter (registry order) */
    int nkout;

    /* compile */
    unsigned char live, active, useful, adj; /* adj = active && useful */
    unsigned char virt;      /* a strided view read in place by its consumers */
    unsigned char mat;       /* has a buffer of its own (forward) */
    int canon;               /* the node whose buffer this one is (aliases), else itself */
    int step;                /* step that computes it (-1: leaves, virtual views) */
    int slot;                /* member index within its group step */
    int last_fwd;            /* last forward step that reads its buffer */
    int out_index;           /* first output it is bound to, else -1 */
    int seed_out;            /* KOUT whose seed goes straight into its kernel's adjoint: that output */
    int rid;                 /* region of the step that computes it, -1 */
    int64_t trow;            /* in a region: doubles per row */
    int64_t tf, tr, ta;      /* tile offsets per row: forward value (-1: global), recomputed
                              * value, adjoint (-1: global) */
} Node;

enum { SK_GROUP, SK_NODE };

/* Where a step reads an operand: node `value`'s buffer (canonical), from
 * `offset` with `strides` over the step's iteration dimensions. */
typedef struct Operand {
    int node;                /* the operand as recorded (maybe a virtual view) */
    int value;               /* canonical node owning the buffer */
    int64_t offset;
    int64_t strides[MAXDIM];
} Operand;

typedef struct Step {
    int kind;
    int node;                /* SK_NODE */
    int nmem;                /* SK_GROUP: members in topological order */
    int *mem;
    int next;                /* operands outside the group (SK_GROUP, KERNEL) */
    Operand *ext;
    int *src;                /* SK_GROUP: per member 3 sources: >= 0 ext, < 0 -(member+1) */
    int nd;                  /* iteration space after merging dimensions */
    int64_t shape[MAXDIM];
    int64_t cstrides[MAXDIM]; /* the group's own (contiguous) layout in it */
    int64_t items;           /* SK_GROUP: elements */
    int rev;                 /* runs in the reverse replay */
    int fused;               /* kernel: its adjoint runs in the forward replay (seeds known) */
    int region;              /* row-tiled region it belongs to, -1 */
    size_t scratch_fwd, scratch_rev; /* bytes */
} Step;

/* Where a value or adjoint lives during one kind of replay. */
enum { L_NONE, L_ARENA, L_INPUT, L_CONST, L_OUTPUT, L_GRAD, L_TILE };
typedef struct Loc {
    int kind;
    int64_t idx;             /* arena offset in bytes, or input/output number */
} Loc;

typedef struct Plan {
    Loc *val;                /* per node (canonical nodes only are meaningful) */
    Loc *adj;                /* per node (gradient plan) */
    size_t *scratch_fwd;     /* per step: arena offset of its forward scratch */
    size_t *scratch_rev;     /* per step */
    int *zero_at_len;        /* reverse: adjoints to zero before reverse time t */
    int **zero_at;
    size_t arena;
} Plan;

/* A row-tiled region: consecutive steps a..b whose every value is computed
 * row by row along a leading dimension of P rows shared by all of them.  The
 * region runs tile by tile (a few rows through all its steps while they are
 * in cache); values only the region reads never exist in full, and its
 * reverse recomputes a tile's values before sweeping its adjoints. */
typedef struct Region {
    int a, b;
    int64_t P, tile;         /* rows, rows per tile */
    int64_t fwd_row, rev_row; /* tile doubles per row: forward; reverse (values + adjoints) */
    int64_t rev_vals;        /* the reverse's recomputed values per row (adjoints follow) */
    int rev;                 /* has a reverse */
    int npriv;
    int *priv;               /* owners whose adjoints take private copies per part */
    int64_t privsize;        /* doubles of one part's private copies */
    int64_t *privoff;
} Region;

typedef struct Ctx {
    struct Ctx *next;
    char *arena_f, *arena_g;
    size_t bytes_f, bytes_g;
    double *regs;            /* per thread: the fused passes' registers */
    twinc_scratch ws;        /* kernel workspace of the calling thread */
    double *priv;            /* private accumulators of parallel parts */
    size_t npriv;
    char *tiles;             /* per thread: tile scratch of the regions */
    twinc_scratch *tws;      /* per thread: kernel workspace inside regions */
} Ctx;

struct twinc_graph {
    Node *nodes;
    int nnodes, capnodes;
    int ninputs;
    int *inputs;             /* node id per input number */
    int compiled;
    char err[512];

    int nout;
    int *outputs;
    unsigned char *seeded;

    int nsteps;
    Step *steps;
    int nfused;
    int nrev;
    size_t nregs;            /* doubles of registers a context needs */
    Plan pf, pg;             /* forward plan, gradient plan */
    int *out_copy;           /* per output: copy from its value at the end (1) or bound (0) */
    int nregions;
    Region *regions;
    size_t tile_bytes;       /* per thread, the largest region's tile */
    int ntiled;              /* steps inside regions */

    pthread_mutex_t lock;
    Ctx *free_ctx;
};

static int pool_threads(void);
static void gerr(twinc_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gerr(twinc_graph *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
}

twinc_graph *twinc_graph_create(void)
{
    twinc_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    if (pthread_mutex_init(&g->lock, NULL) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

static void plan_free(Plan *p, int nsteps)
{
    free(p->val);
    free(p->adj);
    free(p->scratch_fwd);
    free(p->scratch_rev);
    if (p->zero_at)
        for (int t = 0; t < 2 * nsteps + 1; t++)
            free(p->zero_at[t]);
    free(p->zero_at);
    free(p->zero_at_len);
    memset(p, 0, sizeof *p);
}

static void ctx_free(Ctx *c)
{
    if (!c)
        return;
    free(c->arena_f);
    free(c->arena_g);
    free(c->regs);
    free(c->priv);
    free(c->tiles);
    if (c->tws) {
        for (int t = 0; t < pool_threads(); t++)
            twinc_scratch_free(&c->tws[t]);
        free(c->tws);
    }
    twinc_scratch_free(&c->ws);
    free(c);
}

void twinc_graph_destroy(twinc_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = &g->nodes[i];
        if (n->in != n->inl)
            free(n->in);
        free(n->data);
        if (n->map)
            free(n->map->index);
        free(n->map);
        free(n->kouts);
    }
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->seeded);
    for (int s = 0; s < g->nsteps; s++) {
        free(g->steps[s].mem);
        free(g->steps[s].ext);
        free(g->steps[s].src);
    }
    free(g->steps);
    plan_free(&g->pf, g->nsteps);
    plan_free(&g->pg, g->nsteps);
    free(g->out_copy);
    for (int r = 0; r < g->nregions; r++) {
        free(g->regions[r].priv);
        free(g->regions[r].privoff);
    }
    free(g->regions);
    while (g->free_ctx) {
        Ctx *c = g->free_ctx;
        g->free_ctx = c->next;
        ctx_free(c);
    }
    pthread_mutex_destroy(&g->lock);
    free(g);
}

const char *twinc_graph_error(const twinc_graph *g) { return g ? g->err : "no graph"; }

int twinc_graph_node_count(const twinc_graph *g) { return g ? g->nnodes : 0; }

int twinc_graph_ndim(const twinc_graph *g, int id)
{
    return (g && id >= 0 && id < g->nnodes) ? g->nodes[id].nd : -1;
}

const int64_t *twinc_graph_shape(const twinc_graph *g, int id)
{
    return (g && id >= 0 && id < g->nnodes) ? g->nodes[id].shape : NULL;
}

/* ---- recording ---- */

static int check_open(twinc_graph *g)
{
    if (!g)
        return 0;
    if (g->compiled) {
        gerr(g, "the graph is compiled; it cannot record more operations");
        return 0;
    }
    return 1;
}

static int check_id(twinc_graph *g, int id, const char *what)
{
    if (id < 0 || id >= g->nnodes) {
        gerr(g, "%s: no node %d in this graph", what, id);
        return 0;
    }
    if (g->nodes[id].op == TWINC_GOP_KERNEL) {
        gerr(g, "%s: node %d is a kernel call, not a value; use one of its outputs", what, id);
        return 0;
    }
    return 1;
}

static int check_shape(twinc_graph *g, int nd, const int64_t *shape, const char *what)
{
    if (nd < 0 || nd > MAXDIM) {
        gerr(g, "%s: %d dimensions (at most %d)", what, nd, MAXDIM);
        return 0;
    }
    int64_t size = 1;
    for (int i = 0; i < nd; i++) {
        if (shape[i] < 0) {
            gerr(g, "%s: negative dimension %lld", what, (long long)shape[i]);
            return 0;
        }
        if (shape[i] && size > INT64_MAX / 8 / shape[i]) {
            gerr(g, "%s: array too large", what);
            return 0;
        }
        size *= shape[i];
    }
    return 1;
}

/* Append a node; its id, or -1 (out of memory). */
static int add_node(twinc_graph *g, twinc_gop op, int nin, const int *in, int nd,
                    const int64_t *shape)
{
    if (g->nnodes == g->capnodes) {
        int cap = g->capnodes ? 2 * g->capnodes : 64;
        Node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) {
            gerr(g, "out of memory");
            return -1;
        }
        g->nodes = nn;
        g->capnodes = cap;
    }
    Node *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->nin = nin;
    n->in = n->inl;
    if (nin > 3) {
        n->in = malloc((size_t)nin * sizeof *n->in);
        if (!n->in) {
            gerr(g, "out of memory");
            return -1;
        }
    }
    for (int i = 0; i < nin; i++)
        n->in[i] = in[i];
    n->nd = nd;
    for (int i = 0; i < nd; i++)
        n->shape[i] = shape[i];
    n->size = shape_size(nd, shape);
    n->canon = g->nnodes;
    n->step = -1;
    n->out_index = -1;
    n->seed_out = -1;
    n->rid = -1;
    n->tf = n->tr = n->ta = -1;
    return g->nnodes++;
}

int twinc_graph_input(twinc_graph *g, int nd, const int64_t *shape, int differentiable)
{
    if (!check_open(g) || !check_shape(g, nd, shape, "input"))
        return -1;
    int *ni = realloc(g->inputs, (size_t)(g->ninputs + 1) * sizeof *ni);
    if (!ni) {
        gerr(g, "out of memory");
        return -1;
    }
    g->inputs = ni;
    int id = add_node(g, TWINC_GOP_INPUT, 0, NULL, nd, shape);
    if (id < 0)
        return -1;
    g->nodes[id].index = g->ninputs;
    g->nodes[id].diff = differentiable != 0;
    g->inputs[g->ninputs++] = id;
    return id;
}

int twinc_graph_const(twinc_graph *g, int nd, const int64_t *shape, const double *data)
{
    if (!check_open(g) || !check_shape(g, nd, shape, "constant"))
        return -1;
    int64_t size = shape_size(nd, shape);
    if (size && !data) {
        gerr(g, "constant: no data");
        return -1;
    }
    double *copy = malloc((size_t)(size ? size : 1) * sizeof *copy);
    if (!copy) {
        gerr(g, "out of memory");
        return -1;
    }
    if (size)
        memcpy(copy, data, (size_t)size * sizeof *copy);
    int id = add_node(g, TWINC_GOP_CONST, 0, NULL, nd, shape);
    if (id < 0) {
        free(copy);
        return -1;
    }
    g->nodes[id].data = copy;
    return id;
}

int twinc_graph_scalar(twinc_graph *g, double value) { return twinc_graph_const(g, 0, NULL, &value); }

int twinc_graph_unary(twinc_graph *g, twinc_gop op, int a)
{
    if (!check_open(g))
        return -1;
    if ((unsigned)op >= TWINC_GOP_COUNT || !is_elementwise(op) || gops[op].arity != 1) {
        gerr(g, "%s is not an elementwise unary operation", twinc_gop_name(op));
        return -1;
    }
    if (!check_id(g, a, gops[op].name))
        return -1;
    Node *na = &g->nodes[a];
    int64_t shape[MAXDIM];
    memcpy(shape, na->shape, (size_t)na->nd * sizeof *shape);
    return add_node(g, op, 1, &a, na->nd, shape);
}

int twinc_graph_binary(twinc_graph *g, twinc_gop op, int a, int b)
{
    if (!check_open(g))
        return -1;
    if ((unsigned)op >= TWINC_GOP_COUNT || !is_elementwise(op) || gops[op].arity != 2) {
        gerr(g, "%s is not an elementwise binary operation", twinc_gop_name(op));
        return -1;
    }
    if (!check_id(g, a, gops[op].name) || !check_id(g, b, gops[op].name))
        return -1;
    const Node *na = &g->nodes[a], *nb = &g->nodes[b];
    int nd;
    int64_t shape[MAXDIM];
    if (!broadcast_shapes(na->nd, na->shape, nb->nd, nb->shape, &nd, shape)) {
        char s1[256], s2[256];
        gerr(g, "%s: operands could not be broadcast together with shapes %s %s", gops[op].name,
             fmt_shape(s1, sizeof s1, na->nd, na->shape), fmt_shape(s2, sizeof s2, nb->nd, nb->shape));
        return -1;
    }
    int in[2] = {a, b};
    return add_node(g, op, 2, in, nd, shape);
}

int twinc_graph_where(twinc_graph *g, int c, int a, int b)
{
    if (!check_open(g))
        return -1;
    if (!check_id(g, c, "where") || !check_id(g, a, "where") || !check_id(g, b, "where"))
        return -1;
    const Node *nc = &g->nodes[c], *na = &g->nodes[a], *nb = &g->nodes[b];
    int nd1, nd;
    int64_t s1[MAXDIM], shape[MAXDIM];
    if (!broadcast_shapes(nc->nd, nc->shape, na->nd, na->shape, &nd1, s1) ||
        !broadcast_shapes(nd1, s1, nb->nd, nb->shape, &nd, shape)) {
        char b1[256], b2[256], b3[256];
        gerr(g, "where: operands could not be broadcast together with shapes %s %s %s",
             fmt_shape(b1, sizeof b1, nc->nd, nc->shape), fmt_shape(b2, sizeof b2, na->nd, na->shape),
             fmt_shape(b3, sizeof b3, nb->nd, nb->shape));
        return -1;
    }
    int in[3] = {c, a, b};
    return add_node(g, TWINC_GOP_WHERE, 3, in, nd, shape);
}

/* Does the strided region (nd, shape, offset, strides) stay inside [0, size)? */
static int region_inside(int nd, const int64_t *shape, int64_t offset, const int64_t *strides,
                         int64_t size)
{
    int64_t lo = offset, hi = offset;
    for (int i = 0; i < nd; i++) {
        if (shape[i] == 0)
            return 1; /* addresses nothing */
        int64_t ext = strides[i] * (shape[i] - 1);
        if (ext < 0)
            lo += ext;
        else
            hi += ext;
    }
    return lo >= 0 && hi < size;
}

static Map *new_map(twinc_graph *g)
{
    Map *m = calloc(1, sizeof *m);
    if (!m)
        gerr(g, "out of memory");
    return m;
}

int twinc_graph_view(twinc_graph *g, int a, int nd, const int64_t *shape, int64_t offset,
                     const int64_t *strides)
{
    if (!check_open(g) || !check_id(g, a, "view") || !check_shape(g, nd, shape, "view"))
        return -1;
    const Node *na = &g->nodes[a];
    if (!region_inside(nd, shape, offset, strides, na->size)) {
        char b1[256], b2[256];
        gerr(g, "view: a view of shape %s at offset %lld reaches outside its base of shape %s",
             fmt_shape(b1, sizeof b1, nd, shape), (long long)offset, fmt_shape(b2, sizeof b2, na->nd, na->shape));
        return -1;
    }
    Map *m = new_map(g);
    if (!m)
        return -1;
    m->offset = offset;
    for (int i = 0; i < nd; i++)
        m->strides[i] = strides[i];
    int id = add_node(g, TWINC_GOP_VIEW, 1, &a, nd, shape);
    if (id < 0) {
        free(m);
        return -1;
    }
    g->nodes[id].map = m;
    return id;
}

int twinc_graph_take(twinc_graph *g, int a, int nd, const int64_t *shape, const int64_t *index)
{
    if (!check_open(g) || !check_id(g, a, "take") || !check_shape(g, nd, shape, "take"))
        return -1;
    const Node *na = &g->nodes[a];
    int64_t size = shape_size(nd, shape);
    for (int64_t i = 0; i < size; i++)
        if (index[i] < 0 || index[i] >= na->size) {
            gerr(g, "take: index %lld is out of bounds for a base of size %lld", (long long)index[i],
                 (long long)na->size);
            return -1;
        }
    Map *m = new_map(g);
    if (!m)
        return -1;
    m->index = malloc((size_t)(size ? size : 1) * sizeof *m->index);
    if (!m->index) {
        free(m);
        gerr(g, "out of memory");
        return -1;
    }
    memcpy(m->index, index, (size_t)size * sizeof *index);
    int id = add_node(g, TWINC_GOP_TAKE, 1, &a, nd, shape);
    if (id < 0) {
        free(m->index);
        free(m);
        return -1;
    }
    g->nodes[id].map = m;
    return id;
}

/* Visit every flat index of a strided region (row-major order). */
static void region_walk(int nd, const int64_t *shape, int64_t offset, const int64_t *strides,
                        void (*fn)(void *, int64_t, int64_t), void *arg)
{
    int64_t size = shape_size(nd, shape);
    int64_t idx[MAXDIM] = {0};
    int64_t pos = offset;
    for (int64_t k = 0; k < size; k++) {
        fn(arg, k, pos);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) {
                pos += strides[d];
                break;
            }
            pos -= strides[d] * (shape[d] - 1);
            idx[d] = 0;
        }
    }
}

typedef struct SeenArg {
    unsigned char *bits;
    int dup;
} SeenArg;

static void seen_fn(void *arg, int64_t k, int64_t pos)
{
    (void)k;
    SeenArg *s = arg;
    if (s->bits[pos >> 3] & (1u << (pos & 7)))
        s->dup = 1;
    s->bits[pos >> 3] |= (unsigned char)(1u << (pos & 7));
}

int twinc_graph_set(twinc_graph *g, int a, int v, int nd, const int64_t *shape, int64_t offset,
                    const int64_t *strides, const int64_t *index)
{
    if (!check_open(g) || !check_id(g, a, "set") || !check_id(g, v, "set") ||
        !check_shape(g, nd, shape, "set"))
        return -1;
    const Node *na = &g->nodes[a], *nv = &g->nodes[v];
    int64_t size = shape_size(nd, shape);
    char b1[256], b2[256];
    if (!index && !region_inside(nd, shape, offset, strides, na->size)) {
        gerr(g, "set: a region of shape %s at offset %lld reaches outside the array of shape %s",
             fmt_shape(b1, sizeof b1, nd, shape), (long long)offset, fmt_shape(b2, sizeof b2, na->nd, na->shape));
        return -1;
    }
    int bnd;
    int64_t bshape[MAXDIM];
    if (!broadcast_shapes(nv->nd, nv->shape, nd, shape, &bnd, bshape) || bnd != nd ||
        shape_size(bnd, bshape) != size) {
        gerr(g, "set: could not broadcast a value of shape %s into a region of shape %s",
             fmt_shape(b1, sizeof b1, nv->nd, nv->shape), fmt_shape(b2, sizeof b2, nd, shape));
        return -1;
    }
    /* every element of a at most once: a region written twice would make the
     * result depend on the order of writes (and its adjoint ill-defined) */
    SeenArg seen = {calloc((size_t)(na->size / 8 + 1), 1), 0};
    if (!seen.bits) {
        gerr(g, "out of memory");
        return -1;
    }
    if (index) {
        for (int64_t i = 0; i < size; i++) {
            if (index[i] < 0 || index[i] >= na->size) {
                free(seen.bits);
                gerr(g, "set: index %lld is out of bounds for an array of size %lld",
                     (long long)index[i], (long long)na->size);
                return -1;
            }
            seen_fn(&seen, i, index[i]);
        }
    } else {
        region_walk(nd, shape, offset, strides, seen_fn, &seen);
    }
    free(seen.bits);
    if (seen.dup) {
        gerr(g, "set: the region addresses an element more than once (repeated indices or a "
                "broadcast view); write each element once");
        return -1;
    }
    Map *m = new_map(g);
    if (!m)
        return -1;
    m->nd = nd;
    memcpy(m->shape, shape, (size_t)nd * sizeof *shape);
    m->size = size;
    m->offset = offset;
    if (index) {
        m->index = malloc((size_t)(size ? size : 1) * sizeof *m->index);
        if (!m->index) {
            free(m);
            gerr(g, "out of memory");
            return -1;
        }
        memcpy(m->index, index, (size_t)size * sizeof *index);
    } else {
        for (int i = 0; i < nd; i++)
            m->strides[i] = strides[i];
    }
    int in[2] = {a, v};
    int64_t ashape[MAXDIM];
    memcpy(ashape, na->shape, (size_t)na->nd * sizeof *ashape);
    int id = add_node(g, TWINC_GOP_SET, 2, in, na->nd, ashape);
    if (id < 0) {
        free(m->index);
        free(m);
        return -1;
    }
    g->nodes[id].map = m;
    return id;
}

static int check_axis(twinc_graph *g, const Node *n, int axis, const char *what)
{
    if (axis < 0 || axis >= n->nd) {
        char b[256];
        gerr(g, "%s: axis %d is out of bounds for an array of shape %s", what, axis,
             fmt_shape(b, sizeof b, n->nd, n->shape));
        return 0;
    }
    return 1;
}

int twinc_graph_reduce(twinc_graph *g, twinc_gop op, int a, int axis)
{
    if (!check_open(g))
        return -1;
    if ((unsigned)op >= TWINC_GOP_COUNT || gops[op].kind != K_R) {
        gerr(g, "%s is not a reduction", twinc_gop_name(op));
        return -1;
    }
    if (!check_id(g, a, gops[op].name) || !check_axis(g, &g->nodes[a], axis, gops[op].name))
        return -1;
    const Node *na = &g->nodes[a];
    if ((op == TWINC_GOP_MAX || op == TWINC_GOP_MIN) && na->shape[axis] == 0) {
        gerr(g, "%s: zero-size array to reduction operation %s which has no identity",
             gops[op].name, op == TWINC_GOP_MAX ? "maximum" : "minimum");
        return -1;
    }
    int64_t shape[MAXDIM];
    int nd = 0;
    for (int i = 0; i < na->nd; i++)
        if (i != axis)
            shape[nd++] = na->shape[i];
    int id = add_node(g, op, 1, &a, nd, shape);
    if (id >= 0)
        g->nodes[id].axis = axis;
    return id;
}

int twinc_graph_scan(twinc_graph *g, twinc_gop op, int a, int axis)
{
    if (!check_open(g))
        return -1;
    if ((unsigned)op >= TWINC_GOP_COUNT || gops[op].kind != K_S) {
        gerr(g, "%s is not a scan", twinc_gop_name(op));
        return -1;
    }
    if (!check_id(g, a, gops[op].name) || !check_axis(g, &g->nodes[a], axis, gops[op].name))
        return -1;
    const Node *na = &g->nodes[a];
    int64_t shape[MAXDIM];
    memcpy(shape, na->shape, (size_t)na->nd * sizeof *shape);
    int id = add_node(g, op, 1, &a, na->nd, shape);
    if (id >= 0)
        g->nodes[id].axis = axis;
    return id;
}

int twinc_graph_matmul(twinc_graph *g, int a, int b)
{
    if (!check_open(g) || !check_id(g, a, "matmul") || !check_id(g, b, "matmul"))
        return -1;
    const Node *na = &g->nodes[a], *nb = &g->nodes[b];
    char b1[256], b2[256];
    int ok = na->nd >= 2 && na->nd == nb->nd && na->shape[na->nd - 1] == nb->shape[nb->nd - 2];
    for (int i = 0; ok && i < na->nd - 2; i++)
        ok = na->shape[i] == nb->shape[i];
    if (!ok) {
        gerr(g, "matmul: shapes %s and %s do not align", fmt_shape(b1, sizeof b1, na->nd, na->shape),
             fmt_shape(b2, sizeof b2, nb->nd, nb->shape));
        return -1;
    }
    int64_t shape[MAXDIM];
    memcpy(shape, na->shape, (size_t)na->nd * sizeof *shape);
    shape[na->nd - 1] = nb->shape[nb->nd - 1];
    int in[2] = {a, b};
    return add_node(g, TWINC_GOP_MATMUL, 2, in, na->nd, shape);
}

int twinc_graph_concat(twinc_graph *g, int n, const int *parts, int axis)
{
    if (!check_open(g))
        return -1;
    if (n < 1 || !parts) {
        gerr(g, "concatenate: need at least one array to concatenate");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (!check_id(g, parts[i], "concatenate"))
            return -1;
    const Node *n0 = &g->nodes[parts[0]];
    if (!check_axis(g, n0, axis, "concatenate"))
        return -1;
    int64_t shape[MAXDIM];
    memcpy(shape, n0->shape, (size_t)n0->nd * sizeof *shape);
    shape[axis] = 0;
    for (int i = 0; i < n; i++) {
        const Node *ni = &g->nodes[parts[i]];
        int ok = ni->nd == n0->nd;
        for (int d = 0; ok && d < n0->nd; d++)
            ok = d == axis || ni->shape[d] == n0->shape[d];
        if (!ok) {
            char b1[256], b2[256];
            gerr(g, "concatenate: all the input array dimensions except for the concatenation axis "
                    "must match exactly: shapes %s and %s (axis %d)",
                 fmt_shape(b1, sizeof b1, n0->nd, n0->shape), fmt_shape(b2, sizeof b2, ni->nd, ni->shape), axis);
            return -1;
        }
        shape[axis] += ni->shape[axis];
    }
    int id = add_node(g, TWINC_GOP_CONCAT, n, parts, n0->nd, shape);
    if (id >= 0)
        g->nodes[id].axis = axis;
    return id;
}

int twinc_graph_interp(twinc_graph *g, int x, int xp, int fp)
{
    if (!check_open(g) || !check_id(g, x, "interp") || !check_id(g, xp, "interp") ||
        !check_id(g, fp, "interp"))
        return -1;
    const Node *nx = &g->nodes[x], *nxp = &g->nodes[xp], *nfp = &g->nodes[fp];
    if (nxp->nd != 1 || nfp->nd != 1 || nxp->shape[0] != nfp->shape[0] || nxp->shape[0] < 1) {
        char b1[256], b2[256];
        gerr(g, "interp: xp and fp must be 1-d of the same nonzero length (got %s and %s)",
             fmt_shape(b1, sizeof b1, nxp->nd, nxp->shape), fmt_shape(b2, sizeof b2, nfp->nd, nfp->shape));
        return -1;
    }
    int in[3] = {x, xp, fp};
    int64_t shape[MAXDIM];
    memcpy(shape, nx->shape, (size_t)nx->nd * sizeof *shape);
    return add_node(g, TWINC_GOP_INTERP, 3, in, nx->nd, shape);
}

static int is_int_type(twinc_type t)
{
    return t == TWINC_T_INT || t == TWINC_T_LONG || t == TWINC_T_UINT || t == TWINC_T_ULONG;
}

int twinc_graph_kernel(twinc_graph *g, const twinc_kernel *k, const int *args, int *outs)
{
    if (!check_open(g))
        return -1;
    if (!k || !k->name || k->nparams < 0 || (k->nparams && !k->params) || !k->primal ||
        !k->adjoint) {
        gerr(g, "kernel: not a usable kernel record");
        return -1;
    }
    int nin = 0, nko = 0;
    for (int p = 0; p < k->nparams; p++) {
        const twinc_param *pp = &k->params[p];
        if (pp->length && (pp->role != TWINC_ROLE_IN || pp->type != TWINC_T_DOUBLE)) {
            gerr(g, "kernel %s: parameter '%s' is an in/out or integer array; only input arrays "
                    "(const double %s[%s]) can be recorded into graphs yet", k->name, pp->name,
                 pp->name, pp->length);
            return -1;
        }
        if (pp->role == TWINC_ROLE_IN)
            nin++;
        else
            nko++;
    }
    int nd = 0;
    int64_t shape[MAXDIM];
    const char *first = NULL;
    int i = 0;
    for (int p = 0; p < k->nparams; p++) {
        const twinc_param *pp = &k->params[p];
        if (pp->role != TWINC_ROLE_IN)
            continue;
        if (!check_id(g, args[i], k->name))
            return -1;
        const Node *na = &g->nodes[args[i]];
        if ((pp->flags & TWINC_PARAM_UNIFORM) && na->size != 1) {
            char b[256];
            gerr(g, "kernel %s: parameter '%s' is uniform (one value for every lane) but got shape %s",
                 k->name, pp->name, fmt_shape(b, sizeof b, na->nd, na->shape));
            return -1;
        }
        /* an array's last axis holds its elements, the axes before it are lanes */
        int lnd = pp->length ? na->nd - 1 : na->nd;
        if (pp->length && lnd < 0) {
            gerr(g, "kernel %s: parameter '%s' is an array (length %s) and needs at least one "
                    "dimension (its last axis holds the elements); got a scalar",
                 k->name, pp->name, pp->length);
            return -1;
        }
        int64_t ns[MAXDIM];
        int nnd;
        if (!broadcast_shapes(nd, shape, lnd, na->shape, &nnd, ns)) {
            char b1[256], b2[256];
            gerr(g, "kernel %s: parameter '%s' of %sshape %s does not broadcast with shape %s of the "
                    "parameters before it (from '%s')",
                 k->name, pp->name, pp->length ? "lane " : "", fmt_shape(b1, sizeof b1, lnd, na->shape),
                 fmt_shape(b2, sizeof b2, nd, shape), first ? first : "?");
            return -1;
        }
        if (nnd >= MAXDIM && pp->length) {
            gerr(g, "kernel %s: too many lane dimensions for array parameter '%s'", k->name, pp->name);
            return -1;
        }
        if (lnd > 0 && !first)
            first = pp->name;
        nd = nnd;
        memcpy(shape, ns, (size_t)nd * sizeof *shape);
        i++;
    }
    int *kouts = malloc((size_t)(nko ? nko : 1) * sizeof *kouts);
    if (!kouts) {
        gerr(g, "out of memory");
        return -1;
    }
    int id = add_node(g, TWINC_GOP_KERNEL, nin, args, nd, shape);
    if (id < 0) {
        free(kouts);
        return -1;
    }
    g->nodes[id].kernel = k;
    g->nodes[id].kouts = kouts;
    g->nodes[id].nkout = 0;
    for (int p = 0; p < k->nparams; p++) {
        if (k->params[p].role == TWINC_ROLE_IN)
            continue;
        int o = add_node(g, TWINC_GOP_KOUT, 1, &id, nd, shape);
        if (o < 0)
            return -1; /* the kernel node stays, unused: harmless */
        g->nodes[o].index = p;
        Node *kn = &g->nodes[id];
        kn->kouts[kn->nkout++] = o;
        outs[kn->nkout - 1] = o;
    }
    return id;
}

/* ---- compilation ---- */

/* Does the operation's adjoint flow into input k? */
static int flows(const twinc_graph *g, const Node *n, int k)
{
    switch (gops[n->op].kind) {
    case K_E1:
    case K_E2:
    case K_R:
    case K_S:
        return 1;
    case K_E3:
        return k > 0; /* where: not into the condition */
    case K_M:
        return 0;
    default:
        break;
    }
    switch (n->op) {
    case TWINC_GOP_VIEW:
    case TWINC_GOP_TAKE:
    case TWINC_GOP_SET:
    case TWINC_GOP_MATMUL:
    case TWINC_GOP_CONCAT:
    case TWINC_GOP_INTERP:
    case TWINC_GOP_KOUT:
        return 1;
    case TWINC_GOP_KERNEL: {
        const twinc_kernel *kr = n->kernel;
        int i = 0;
        for (int p = 0; p < kr->nparams; p++) {
            if (kr->params[p].role != TWINC_ROLE_IN)
                continue;
            if (i++ == k)
                return (kr->params[p].flags & TWINC_PARAM_ACTIVE) && kr->params[p].type == TWINC_T_DOUBLE;
        }
        return 0;
    }
    default:
        (void)g;
        return 0;
    }
}

/* A view that is a reshape of contiguous data: it can share its base's buffer. */
static int is_identity_view(const twinc_graph *g, const Node *n)
{
    const Map *m = n->map;
    if (n->op != TWINC_GOP_VIEW || m->index || m->offset != 0 || n->size != g->nodes[n->in[0]].size)
        return 0;
    int64_t cs[MAXDIM];
    contig_strides(n->nd, n->shape, cs);
    for (int i = 0; i < n->nd; i++)
        if (n->shape[i] > 1 && m->strides[i] != cs[i])
            return 0;
    return 1;
}

/* Merge dimensions: drop those of extent 1, join neighbours that every
 * stride array walks alike.  Leaves at least one dimension. */
static void coalesce(int *nd, int64_t *shape, int narr, int64_t (*st)[MAXDIM])
{
    int n = 0;
    for (int i = 0; i < *nd; i++) {
        if (shape[i] == 1)
            continue;
        shape[n] = shape[i];
        for (int a = 0; a < narr; a++)
            st[a][n] = st[a][i];
        n++;
    }
    if (n == 0) {
        shape[0] = 1;
        for (int a = 0; a < narr; a++)
            st[a][0] = 0;
        *nd = 1;
        return;
    }
    int m = 0;
    for (int i = 1; i < n; i++) {
        int ok = 1;
        for (int a = 0; a < narr && ok; a++)
            ok = st[a][m] == st[a][i] * shape[i];
        if (ok) {
            shape[m] *= shape[i];
            for (int a = 0; a < narr; a++)
                st[a][m] = st[a][i];
        } else {
            m++;
            shape[m] = shape[i];
            for (int a = 0; a < narr; a++)
                st[a][m] = st[a][i];
        }
    }
    *nd = m + 1;
}

/* Work arrays of one compilation. */
typedef struct Comp {
    twinc_graph *g;
    int N;
    int *ncons, **cons;      /* live consumers per node */
    unsigned char *is_out;
    int *group;              /* group number per node, -1 */
    int ngroups, *gfirst, *gsize;
    int *stamp, epoch;       /* dependency search */
    int *dfs;
} Comp;

/* Does node x depend on a member of group gr (through any path)?  Nodes
 * created before the group's first member cannot. */
static int depends_on_group(Comp *c, int x, int gr)
{
    int top = 0, first = c->gfirst[gr];
    c->epoch++;
    c->dfs[top++] = x;
    while (top) {
        int v = c->dfs[--top];
        if (v < first || c->stamp[v] == c->epoch)
            continue;
        c->stamp[v] = c->epoch;
        if (c->group[v] == gr)
            return 1;
        const Node *n = &c->g->nodes[v];
        for (int k = 0; k < n->nin; k++)
            if (top < c->N)
                c->dfs[top++] = n->in[k];
    }
    return 0;
}

#define MAXMEMBERS 128

static void group_nodes(Comp *c)
{
    twinc_graph *g = c->g;
    for (int i = 0; i < c->N; i++) {
        Node *n = &g->nodes[i];
        c->group[i] = -1;
        if (!n->live || !is_elementwise(n->op))
            continue;
        int chosen = -1;
        for (int k = 0; k < n->nin && chosen < 0; k++) {
            int p = n->in[k];
            int gr = c->group[p];
            if (gr < 0 || c->gsize[gr] >= MAXMEMBERS)
                continue;
            const Node *np = &g->nodes[p];
            if (np->nd != n->nd || memcmp(np->shape, n->shape, (size_t)n->nd * sizeof *n->shape))
                continue;
            int safe = 1;
            for (int q = 0; q < n->nin && safe; q++)
                if (c->group[n->in[q]] != gr && depends_on_group(c, n->in[q], gr))
                    safe = 0;
            if (safe)
                chosen = gr;
        }
        /* no producer's group fits: an independent chain of the same shape
         * recorded nearby (e.g. the two sides of a binary operation) */
        for (int gr = c->ngroups - 1; chosen < 0 && gr >= 0 && gr >= c->ngroups - 8; gr--) {
            const Node *nf = &g->nodes[c->gfirst[gr]];
            if (c->gsize[gr] >= MAXMEMBERS || nf->nd != n->nd ||
                memcmp(nf->shape, n->shape, (size_t)n->nd * sizeof *n->shape))
                continue;
            int safe = 1;
            for (int q = 0; q < n->nin && safe; q++)
                if (c->group[n->in[q]] != gr && depends_on_group(c, n->in[q], gr))
                    safe = 0;
            if (safe)
                chosen = gr;
        }
        if (chosen < 0) {
            chosen = c->ngroups++;
            c->gfirst[chosen] = i;
            c->gsize[chosen] = 0;
        }
        c->group[i] = chosen;
        c->gsize[chosen]++;
    }
}

/* Binary min-heap of step numbers keyed by their first node id. */
typedef struct Heap {
    int *a, n;
    const int *key;
} Heap;

static void heap_push(Heap *h, int v)
{
    int i = h->n++;
    h->a[i] = v;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (h->key[h->a[p]] <= h->key[h->a[i]])
            break;
        int t = h->a[p];
        h->a[p] = h->a[i];
        h->a[i] = t;
        i = p;
    }
}

static int heap_pop(Heap *h)
{
    int top = h->a[0];
    h->a[0] = h->a[--h->n];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->key[h->a[l]] < h->key[h->a[m]])
            m = l;
        if (r < h->n && h->key[h->a[r]] < h->key[h->a[m]])
            m = r;
        if (m == i)
            break;
        int t = h->a[m];
        h->a[m] = h->a[i];
        h->a[i] = t;
        i = m;
    }
    return top;
}

/* The node whose buffer an operand reads: the base of a virtual view, the
 * canonical node of an alias. */
static int owner(const twinc_graph *g, int x)
{
    const Node *n = &g->nodes[x];
    return n->virt ? g->nodes[n->in[0]].canon : n->canon;
}

/* Operand x read over the iteration shape (nd, shape): offset and strides
 * into its owner's buffer. */
static void make_operand(const twinc_graph *g, int x, int nd, const int64_t *shape, Operand *op)
{
    const Node *n = &g->nodes[x];
    op->node = x;
    op->value = owner(g, x);
    if (n->virt) {
        op->offset = n->map->offset;
        for (int i = 0; i < nd; i++) {
            int j = i - (nd - n->nd);
            op->strides[i] = (j < 0 || n->shape[j] == 1) ? 0 : n->map->strides[j];
        }
    } else {
        op->offset = 0;
        broadcast_strides(n->nd, n->shape, nd, shape, op->strides);
    }
}

static int elsize(twinc_type t)
{
    return (t == TWINC_T_INT || t == TWINC_T_UINT) ? 4 : 8;
}

/* Build the steps: fuse, order, lay out.  Returns 0 when out of memory. */
static int build_steps(Comp *c)
{
    twinc_graph *g = c->g;
    int N = c->N;
    group_nodes(c);

    /* step of every node: groups first numbered by their first member, then
     * the others; the order is fixed below */
    int nsteps = c->ngroups;
    for (int i = 0; i < N; i++) {
        Node *n = &g->nodes[i];
        if (!n->live || c->group[i] >= 0)
            continue;
        if (n->op == TWINC_GOP_INPUT || n->op == TWINC_GOP_CONST || n->op == TWINC_GOP_KOUT ||
            n->canon != i || n->virt)
            continue;
        nsteps++;
    }
    Step *steps = calloc((size_t)(nsteps ? nsteps : 1), sizeof *steps);
    int *key = malloc((size_t)(nsteps ? nsteps : 1) * sizeof *key);
    int *tmpstep = malloc((size_t)N * sizeof *tmpstep);
    if (!steps || !key || !tmpstep) {
        free(steps);
        free(key);
        free(tmpstep);
        return 0;
    }
    for (int gr = 0; gr < c->ngroups; gr++) {
        steps[gr].kind = SK_GROUP;
        steps[gr].mem = malloc((size_t)c->gsize[gr] * sizeof(int));
        steps[gr].src = malloc((size_t)c->gsize[gr] * 3 * sizeof(int));
        steps[gr].ext = malloc((size_t)c->gsize[gr] * 3 * sizeof(Operand));
        key[gr] = c->gfirst[gr];
        if (!steps[gr].mem || !steps[gr].src || !steps[gr].ext)
            goto oom;
    }
    int ns = c->ngroups;
    for (int i = 0; i < N; i++) {
        Node *n = &g->nodes[i];
        tmpstep[i] = -1;
        if (!n->live)
            continue;
        if (c->group[i] >= 0) {
            Step *st = &steps[c->group[i]];
            n->slot = st->nmem;
            st->mem[st->nmem++] = i;
            tmpstep[i] = c->group[i];
            continue;
        }
        if (n->op == TWINC_GOP_INPUT || n->op == TWINC_GOP_CONST || n->canon != i || n->virt)
            continue;
        if (n->op == TWINC_GOP_KOUT) {
            tmpstep[i] = tmpstep[n->in[0]];
            continue;
        }
        steps[ns].kind = SK_NODE;
        steps[ns].node = i;
        key[ns] = i;
        tmpstep[i] = ns++;
    }

    /* dependencies between steps, then Kahn's algorithm in creation order */
    int *indeg = calloc((size_t)(nsteps ? nsteps : 1), sizeof *indeg);
    int *order = malloc((size_t)(nsteps ? nsteps : 1) * sizeof *order);
    int ndeps = 0, capdeps = 0;
    int *edge_from = NULL, *edge_to = NULL;
    Heap h = {malloc((size_t)(nsteps ? nsteps : 1) * sizeof(int)), 0, key};
    if (!indeg || !order || !h.a)
        goto oom2;
    for (int i = 0; i < N; i++) {
        Node *n = &g->nodes[i];
        if (tmpstep[i] < 0 || n->op == TWINC_GOP_KOUT)
            continue;
        for (int k = 0; k < n->nin; k++) {
            int p = owner(g, n->in[k]);
            int ps = tmpstep[p];
            if (ps < 0 || ps == tmpstep[i])
                continue;
            if (ndeps == capdeps) {
                capdeps = capdeps ? 2 * capdeps : 256;
                int *nf = realloc(edge_from, (size_t)capdeps * sizeof *nf);
                if (!nf)
                    goto oom2;
                edge_from = nf;
                int *nt = realloc(edge_to, (size_t)capdeps * sizeof *nt);
                if (!nt)
                    goto oom2;
                edge_to = nt;
            }
            edge_from[ndeps] = ps;
            edge_to[ndeps] = tmpstep[i];
            ndeps++;
            indeg[tmpstep[i]]++;
        }
    }
    /* adjacency in CSR form */
    int *adjstart = calloc((size_t)nsteps + 1, sizeof *adjstart);
    int *adjl = malloc((size_t)(ndeps ? ndeps : 1) * sizeof *adjl);
    if (!adjstart || !adjl) {
        free(adjstart);
        free(adjl);
        goto oom2;
    }
    for (int e = 0; e < ndeps; e++)
        adjstart[edge_from[e] + 1]++;
    for (int s = 0; s < nsteps; s++)
        adjstart[s + 1] += adjstart[s];
    {
        int *fill = calloc((size_t)(nsteps ? nsteps : 1), sizeof *fill);
        if (!fill) {
            free(adjstart);
            free(adjl);
            goto oom2;
        }
        for (int e = 0; e < ndeps; e++)
            adjl[adjstart[edge_from[e]] + fill[edge_from[e]]++] = edge_to[e];
        free(fill);
    }
    for (int s = 0; s < nsteps; s++)
        if (indeg[s] == 0)
            heap_push(&h, s);
    int no = 0;
    while (h.n) {
        int s = heap_pop(&h);
        order[no++] = s;
        for (int e = adjstart[s]; e < adjstart[s + 1]; e++)
            if (--indeg[adjl[e]] == 0)
                heap_push(&h, adjl[e]);
    }
    free(adjstart);
    free(adjl);
    /* no <  nsteps would be a cycle, which the fusion rule excludes */
    {
        int *rank = malloc((size_t)(nsteps ? nsteps : 1) * sizeof *rank);
        Step *sorted = malloc((size_t)(nsteps ? nsteps : 1) * sizeof *sorted);
        if (!rank || !sorted || no != nsteps) {
            free(rank);
            free(sorted);
            goto oom2;
        }
        for (int r = 0; r < nsteps; r++) {
            rank[order[r]] = r;
            sorted[r] = steps[order[r]];
        }
        for (int i = 0; i < N; i++)
            g->nodes[i].step = tmpstep[i] >= 0 ? rank[tmpstep[i]] : -1;
        free(steps);
        steps = sorted;
        free(rank);
    }
    free(indeg);
    free(order);
    free(h.a);
    free(edge_from);
    free(edge_to);
    free(key);
    free(tmpstep);
    g->steps = steps;
    g->nsteps = nsteps;
    return 1;

oom2:
    free(indeg);
    free(order);
    free(h.a);
    free(edge_from);
    free(edge_to);
oom:
    for (int s = 0; s < nsteps; s++) {
        free(steps[s].mem);
        free(steps[s].src);
        free(steps[s].ext);
    }
    free(steps);
    free(key);
    free(tmpstep);
    return 0;
}

/* Sources and operands of a group; its iteration space. */
static void layout_group(twinc_graph *g, Step *st)
{
    const Node *n0 = &g->nodes[st->mem[0]];
    int nd = n0->nd;
    int64_t shape[MAXDIM];
    memcpy(shape, n0->shape, (size_t)nd * sizeof *shape);
    st->next = 0;
    for (int m = 0; m < st->nmem; m++) {
        const Node *n = &g->nodes[st->mem[m]];
        for (int k = 0; k < 3; k++) {
            if (k >= n->nin) {
                st->src[3 * m + k] = 0;
                continue;
            }
            int x = n->in[k];
            const Node *nx = &g->nodes[x];
            if (nx->step == n->step && is_elementwise(nx->op) && nx->live) {
                st->src[3 * m + k] = -(nx->slot + 1);
                continue;
            }
            int e;
            for (e = 0; e < st->next; e++)
                if (st->ext[e].node == x)
                    break;
            if (e == st->next)
                make_operand(g, x, nd, shape, &st->ext[st->next++]);
            st->src[3 * m + k] = e;
        }
    }
    /* merge dimensions over every operand and the group's own layout */
    int narr = st->next + 1;
    int64_t (*sts)[MAXDIM] = malloc((size_t)narr * sizeof *sts);
    if (sts) {
        for (int e = 0; e < st->next; e++)
            memcpy(sts[e], st->ext[e].strides, sizeof sts[e]);
        contig_strides(nd, shape, sts[st->next]);
        int cnd = nd;
        int64_t cshape[MAXDIM];
        memcpy(cshape, shape, sizeof cshape);
        coalesce(&cnd, cshape, narr, sts);
        st->nd = cnd;
        memcpy(st->shape, cshape, sizeof cshape);
        for (int e = 0; e < st->next; e++)
            memcpy(st->ext[e].strides, sts[e], sizeof sts[e]);
        memcpy(st->cstrides, sts[st->next], sizeof st->cstrides);
        free(sts);
    } else {
        /* no memory to merge: keep the shape as is (correct, slower) */
        st->nd = nd ? nd : 1;
        if (nd == 0)
            st->shape[0] = 1;
        else
            memcpy(st->shape, shape, sizeof st->shape);
        contig_strides(nd, shape, st->cstrides);
        if (nd == 0)
            st->cstrides[0] = 0;
    }
    st->items = n0->size; /* elements */
}

/* ---- buffer planning ---- */

typedef struct Item {
    size_t bytes;
    int t0, t1;
    size_t off;
} Item;

static int item_cmp(const void *a, const void *b)
{
    const Item *x = *(const Item *const *)a, *y = *(const Item *const *)b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x->t0 - y->t0;
}

static int off_cmp(const void *a, const void *b)
{
    const Item *x = *(const Item *const *)a, *y = *(const Item *const *)b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Greedy by size: each item, largest first, goes at the lowest offset where
 * it overlaps no placed item that is alive at the same time. */
static int place_items(Item *items, int n, size_t *total)
{
    Item **by = malloc((size_t)(n ? n : 1) * sizeof *by);
    Item **placed = malloc((size_t)(n ? n : 1) * sizeof *placed);
    Item **over = malloc((size_t)(n ? n : 1) * sizeof *over);
    if (!by || !placed || !over) {
        free(by);
        free(placed);
        free(over);
        return 0;
    }
    for (int i = 0; i < n; i++)
        by[i] = &items[i];
    qsort(by, (size_t)n, sizeof *by, item_cmp);
    int np = 0;
    size_t end = 0;
    for (int i = 0; i < n; i++) {
        Item *it = by[i];
        int no = 0;
        for (int j = 0; j < np; j++)
            if (placed[j]->t0 <= it->t1 && it->t0 <= placed[j]->t1)
                over[no++] = placed[j];
        qsort(over, (size_t)no, sizeof *over, off_cmp);
        size_t off = 0;
        for (int j = 0; j < no; j++) {
            if (over[j]->off >= off + it->bytes)
                break;
            if (over[j]->off + over[j]->bytes > off)
                off = over[j]->off + over[j]->bytes;
        }
        it->off = off;
        placed[np++] = it;
        if (off + it->bytes > end)
            end = off + it->bytes;
    }
    free(by);
    free(placed);
    free(over);
    *total = end;
    return 1;
}

/* Scratch bytes of a step (forward and reverse). */
static void step_scratch(const twinc_graph *g, Step *st)
{
    st->scratch_fwd = st->scratch_rev = 0;
    if (st->kind != SK_NODE)
        return;
    const Node *n = &g->nodes[st->node];
    /* reductions and scans: per thread, one row of what follows the axis */
    int64_t inner = 1;
    if (gops[n->op].kind == K_R)
        for (int i = n->axis; i < n->nd; i++)
            inner *= n->shape[i];
    else if (gops[n->op].kind == K_S)
        for (int i = n->axis + 1; i < n->nd; i++)
            inner *= n->shape[i];
    size_t threads = (size_t)pool_threads();
    switch (n->op) {
    case TWINC_GOP_MAX:
    case TWINC_GOP_MIN:
    case TWINC_GOP_CUMSUM:
    case TWINC_GOP_CUMPROD:
        st->scratch_rev = threads * (size_t)inner * 8;
        break;
    case TWINC_GOP_PROD:
        st->scratch_rev = threads * (size_t)inner * 16;
        break;
    case TWINC_GOP_SET:
        st->scratch_fwd = n->map->index ? (size_t)n->map->size * 8 : 0;
        st->scratch_rev = (size_t)n->map->size * 16;
        break;
    case TWINC_GOP_KERNEL: {
        size_t b = 0;
        for (int e = 0; e < st->next; e++) {
            const twinc_param *pp = NULL;
            int i = 0;
            for (int p = 0; p < n->kernel->nparams; p++)
                if (n->kernel->params[p].role == TWINC_ROLE_IN && i++ == e)
                    pp = &n->kernel->params[p];
            if (pp && is_int_type(pp->type)) {
                const Node *a = &g->nodes[st->ext[e].node];
                b += round_up((size_t)(a->size == 1 ? 1 : n->size) * 8);
            }
        }
        st->scratch_fwd = st->scratch_rev = b;
        break;
    }
    default:
        break;
    }
}

static int plan_build(twinc_graph *g, Plan *p, int grad, int *vstart, int *vend, int *vrend,
                      int *astart, int *aend)
{
    int N = g->nnodes, S = g->nsteps;
    p->val = calloc((size_t)N, sizeof *p->val);
    p->adj = calloc((size_t)N, sizeof *p->adj);
    p->scratch_fwd = calloc((size_t)(S ? S : 1), sizeof(size_t));
    p->scratch_rev = calloc((size_t)(S ? S : 1), sizeof(size_t));
    p->zero_at_len = calloc((size_t)(2 * S + 1), sizeof(int));
    p->zero_at = calloc((size_t)(2 * S + 1), sizeof(int *));
    Item *items = malloc((size_t)(2 * N + 2 * S + 1) * sizeof *items);
    int *who = malloc((size_t)(2 * N + 2 * S + 1) * sizeof *who);
    if (!p->val || !p->adj || !p->scratch_fwd || !p->scratch_rev || !p->zero_at_len ||
        !p->zero_at || !items || !who) {
        free(items);
        free(who);
        return 0;
    }
    int ni = 0;
    for (int v = 0; v < N; v++) {
        Node *n = &g->nodes[v];
        if (!n->live || n->canon != v)
            continue;
        if (n->tf >= 0) {
            p->val[v] = (Loc){L_TILE, 0}; /* only inside its region's tiles */
        } else if (n->op == TWINC_GOP_INPUT) {
            p->val[v] = (Loc){L_INPUT, n->index};
        } else if (n->op == TWINC_GOP_CONST) {
            p->val[v] = (Loc){L_CONST, v};
        } else if (n->out_index >= 0) {
            p->val[v] = (Loc){L_OUTPUT, n->out_index};
        } else if (n->mat) {
            int end = grad ? (vend[v] > vrend[v] ? vend[v] : vrend[v]) : vend[v];
            if (end < vstart[v])
                end = vstart[v];
            items[ni] = (Item){round_up((size_t)(n->size ? n->size : 1) * 8), vstart[v], end, 0};
            who[ni++] = v;
            p->val[v] = (Loc){L_ARENA, 0};
        }
        if (grad && n->ta >= 0) {
            p->adj[v] = (Loc){L_TILE, 0};
        } else if (grad && n->adj && !n->virt && n->seed_out < 0 && (n->op == TWINC_GOP_INPUT || n->mat)) {
            items[ni] = (Item){round_up((size_t)(n->size ? n->size : 1) * 8), astart[v], aend[v], 0};
            who[ni++] = N + v;
            p->adj[v] = (Loc){L_ARENA, 0};
        }
    }
    for (int s = 0; s < S; s++) {
        const Step *st = &g->steps[s];
        int tf = st->region >= 0 ? g->regions[st->region].a : s;
        int tr = 2 * S - 1 - (st->region >= 0 ? g->regions[st->region].b : s);
        if (st->scratch_fwd) {
            items[ni] = (Item){round_up(st->scratch_fwd), tf, tf, 0};
            who[ni++] = 2 * N + s;
        }
        if (grad && st->scratch_rev && (st->rev || (st->region >= 0 && g->regions[st->region].rev))) {
            items[ni] = (Item){round_up(st->scratch_rev), tr, tr, 0};
            who[ni++] = 2 * N + S + s;
        }
    }
    if (!place_items(items, ni, &p->arena)) {
        free(items);
        free(who);
        return 0;
    }
    for (int i = 0; i < ni; i++) {
        int w = who[i];
        if (w < N)
            p->val[w].idx = (int64_t)items[i].off;
        else if (w < 2 * N)
            p->adj[w - N].idx = (int64_t)items[i].off;
        else if (w < 2 * N + S)
            p->scratch_fwd[w - 2 * N] = items[i].off;
        else
            p->scratch_rev[w - 2 * N - S] = items[i].off;
    }
    free(items);
    free(who);
    if (grad) {
        for (int v = 0; v < N; v++)
            if (p->adj[v].kind == L_ARENA)
                p->zero_at_len[astart[v]]++;
        for (int t = 0; t <= 2 * S; t++) {
            p->zero_at[t] = malloc((size_t)(p->zero_at_len[t] ? p->zero_at_len[t] : 1) * sizeof(int));
            if (!p->zero_at[t])
                return 0;
            p->zero_at_len[t] = 0;
        }
        for (int v = 0; v < N; v++)
            if (p->adj[v].kind == L_ARENA)
                p->zero_at[astart[v]][p->zero_at_len[astart[v]]++] = v;
    }
    return 1;
}

/* The nodes a step reads (forward) and, in the reverse replay, the forward
 * values and adjoints it reads or accumulates into.  fn(arg, node, what). */
enum { RD_FWD, RD_REV_VAL, RD_REV_ADJ_IN, RD_REV_ADJ_OUT, RD_FWD_ADJ_IN };
static void step_uses(const twinc_graph *g, const Step *st, void (*fn)(void *, int, int), void *arg)
{
    if (st->kind == SK_GROUP) {
        for (int e = 0; e < st->next; e++) {
            fn(arg, st->ext[e].node, RD_FWD);
            if (st->rev) {
                fn(arg, st->ext[e].node, RD_REV_VAL);
                if (g->nodes[st->ext[e].node].adj)
                    fn(arg, st->ext[e].node, RD_REV_ADJ_IN);
            }
        }
        if (st->rev)
            for (int m = 0; m < st->nmem; m++)
                if (g->nodes[st->mem[m]].adj && g->nodes[st->mem[m]].mat)
                    fn(arg, st->mem[m], RD_REV_ADJ_OUT);
        return;
    }
    const Node *n = &g->nodes[st->node];
    for (int k = 0; k < n->nin; k++) {
        fn(arg, n->in[k], RD_FWD);
        if (st->fused && g->nodes[n->in[k]].adj && flows(g, n, k))
            fn(arg, n->in[k], RD_FWD_ADJ_IN);
    }
    if (!st->rev)
        return;
    int need_in = 0, need_self = 0;
    switch (n->op) {
    case TWINC_GOP_MAX:
    case TWINC_GOP_MIN:
    case TWINC_GOP_PROD:
    case TWINC_GOP_CUMPROD:
        need_in = need_self = 1;
        break;
    case TWINC_GOP_MATMUL:
    case TWINC_GOP_INTERP:
    case TWINC_GOP_KERNEL:
        need_in = 1;
        break;
    default:
        break;
    }
    for (int k = 0; k < n->nin; k++) {
        if (need_in)
            fn(arg, n->in[k], RD_REV_VAL);
        if (g->nodes[n->in[k]].adj && flows(g, n, k))
            fn(arg, n->in[k], RD_REV_ADJ_IN);
    }
    if (need_self)
        fn(arg, st->node, RD_REV_VAL);
    if (n->op == TWINC_GOP_KERNEL) {
        for (int o = 0; o < n->nkout; o++)
            if (g->nodes[n->kouts[o]].adj)
                fn(arg, n->kouts[o], RD_REV_ADJ_OUT);
    } else if (n->adj) {
        fn(arg, st->node, RD_REV_ADJ_OUT);
    }
}

typedef struct LifeArg {
    twinc_graph *g;
    int s, S;
    int *vend, *vrend, *astart, *aend;
    int trev;                /* the time of the step's reverse, if not 2S-1-s (regions) */
} LifeArg;

static void life_fn(void *arg, int x, int what)
{
    LifeArg *a = arg;
    int v = owner(a->g, x);
    int tr = a->trev >= 0 ? a->trev : 2 * a->S - 1 - a->s;
    switch (what) {
    case RD_FWD:
        if (a->s > a->vend[v])
            a->vend[v] = a->s;
        break;
    case RD_REV_VAL:
        if (tr > a->vrend[v])
            a->vrend[v] = tr;
        break;
    case RD_REV_ADJ_IN:
        if (tr < a->astart[v])
            a->astart[v] = tr;
        break;
    case RD_FWD_ADJ_IN:
        if (a->s < a->astart[v])
            a->astart[v] = a->s;
        break;
    case RD_REV_ADJ_OUT:
        if (tr > a->aend[v])
            a->aend[v] = tr;
        if (tr < a->astart[v])
            a->astart[v] = tr;
        break;
    default:
        break;
    }
}


/* ---- row-tiled regions ---- */

#define TILE_DOUBLES 24576            /* tile scratch per thread: 192 KiB */
#define PRIV_OWNER_MAX 65536          /* largest adjoint copied per part */

/* The shape a step iterates over, if it can run a range of leading rows at a
 * time: elementwise groups, reductions and scans along a later axis, kernels
 * without integer or array parameters. */
static int step_rows(const twinc_graph *g, const Step *st, int *nd, const int64_t **shape)
{
    if (st->kind == SK_GROUP) {
        const Node *n = &g->nodes[st->mem[0]];
        *nd = n->nd;
        *shape = n->shape;
        return n->nd >= 1;
    }
    const Node *n = &g->nodes[st->node];
    switch (gops[n->op].kind) {
    case K_R:
        *nd = g->nodes[n->in[0]].nd;
        *shape = g->nodes[n->in[0]].shape;
        return n->axis >= 1;
    case K_S:
        *nd = n->nd;
        *shape = n->shape;
        return n->axis >= 1;
    default:
        break;
    }
    if (n->op != TWINC_GOP_KERNEL || st->fused || n->nd < 1)
        return 0;
    for (int p = 0; p < n->kernel->nparams; p++) {
        const twinc_param *pp = &n->kernel->params[p];
        if (pp->length || (pp->role == TWINC_ROLE_IN && pp->type != TWINC_T_DOUBLE))
            return 0;
    }
    *nd = n->nd;
    *shape = n->shape;
    return 1;
}

/* The nodes a step reads. */
static int step_operands(const twinc_graph *g, const Step *st, const int **ops, int *tmp)
{
    if (st->kind == SK_GROUP) {
        for (int e = 0; e < st->next; e++)
            tmp[e] = st->ext[e].node;
        *ops = tmp;
        return st->next;
    }
    const Node *n = &g->nodes[st->node];
    *ops = n->in;
    return n->nin;
}

/* Can step s (iterating over nd dims with P leading rows) join the region
 * that starts at step a?  An operand computed inside the region must be row
 * aligned (its row p is the step's row p); an adjoint the step adds into
 * must be row aligned too, or broadcast along the rows and small enough to
 * be copied per part (*npriv owners collected in priv). */
static int rows_compatible(const twinc_graph *g, int s, int a, int nd, int64_t P, int *priv, int *npriv)
{
    const Step *st = &g->steps[s];
    int tmp[3 * MAXMEMBERS];
    const int *ops;
    int nops = step_operands(g, st, &ops, tmp);
    for (int i = 0; i < nops; i++) {
        const Node *nx = &g->nodes[ops[i]];
        int v = owner(g, ops[i]);
        const Node *nv = &g->nodes[v];
        int aligned = !nx->virt && nx->nd == nd && nx->shape[0] == P;
        if (nv->step >= a && nv->step < s) {
            if (!aligned)
                return 0;
            continue;
        }
        if (!nx->adj)
            continue;
        int bcast = nx->nd < nd || (nx->shape[0] == 1 && P > 1);
        if (!bcast) {
            if (!aligned)
                return 0;
            continue;
        }
        if (nv->size > PRIV_OWNER_MAX || nv->op == TWINC_GOP_KOUT)
            return 0;
        int k;
        for (k = 0; k < *npriv && priv[k] != v; k++)
            ;
        if (k == *npriv) {
            if (*npriv >= 64)
                return 0;
            priv[(*npriv)++] = v;
        }
    }
    return 1;
}

/* Region [a, b]: which of its values only it reads (those never exist in
 * full), the tile layout, the private adjoints.  Returns 0 (region dropped)
 * if nothing would stay in tiles. */
static int region_finish(Comp *c, int a, int b, int64_t P, const int *priv, int npriv)
{
    twinc_graph *g = c->g;
    Node *nodes = g->nodes;
    int r = g->nregions;
    int64_t fwd = 0, rev = 0, adj = 0;
    int nlocal = 0;
    for (int v = 0; v < c->N; v++) {
        Node *n = &nodes[v];
        if (!n->live || n->canon != v || !n->mat || n->step < a || n->step > b)
            continue;
        int local = !c->is_out[v] && n->out_index < 0;
        for (int i = 0; i < c->N && local; i++)
            if (i != v && nodes[i].live && nodes[i].canon == v)
                local = 0; /* aliased: read under another shape */
        for (int q = 0; q < c->ncons[v] && local; q++) {
            const Node *cn = &nodes[c->cons[v][q]];
            if (cn->virt || cn->step < a || cn->step > b)
                local = 0;
        }
        n->trow = n->size / P;
        n->tr = rev;
        rev += n->trow;
        if (local) {
            n->tf = fwd;
            fwd += n->trow;
            nlocal++;
            if (n->adj) {
                n->ta = adj;
                adj += n->trow;
            }
        }
    }
    if (nlocal == 0) {
        for (int v = 0; v < c->N; v++)
            if (nodes[v].step >= a && nodes[v].step <= b)
                nodes[v].tf = nodes[v].tr = nodes[v].ta = -1;
        return 0;
    }
    Region *nr = realloc(g->regions, (size_t)(r + 1) * sizeof *nr);
    if (!nr)
        return 0;
    g->regions = nr;
    Region *R = &g->regions[r];
    memset(R, 0, sizeof *R);
    R->a = a;
    R->b = b;
    R->P = P;
    R->fwd_row = fwd;
    R->rev_row = rev + adj;
    R->rev_vals = rev;
    for (int v = 0; v < c->N; v++) {
        Node *n = &nodes[v];
        if (n->step >= a && n->step <= b && n->tr >= 0) {
            n->rid = r;
            if (n->ta >= 0)
                n->ta += rev; /* adjoints follow the recomputed values */
        }
    }
    int64_t row = R->fwd_row > R->rev_row ? R->fwd_row : R->rev_row;
    R->tile = row > 0 ? TILE_DOUBLES / row : P;
    if (R->tile < 1)
        R->tile = 1;
    if (R->tile > P)
        R->tile = P;
    R->priv = malloc((size_t)(npriv ? npriv : 1) * sizeof *R->priv);
    R->privoff = malloc((size_t)(npriv ? npriv : 1) * sizeof *R->privoff);
    if (!R->priv || !R->privoff) {
        free(R->priv);
        free(R->privoff);
        return 0;
    }
    R->npriv = npriv;
    for (int k = 0; k < npriv; k++) {
        R->priv[k] = priv[k];
        R->privoff[k] = R->privsize;
        R->privsize += nodes[priv[k]].size;
    }
    for (int s = a; s <= b; s++) {
        g->steps[s].region = r;
        if (g->steps[s].rev)
            R->rev = 1;
        g->ntiled++;
    }
    size_t bytes = (size_t)(R->tile * row) * sizeof(double);
    if (bytes > g->tile_bytes)
        g->tile_bytes = bytes;
    g->nregions++;
    return 1;
}

static void find_regions(Comp *c)
{
    twinc_graph *g = c->g;
    int a = -1, nd0 = 0, npriv = 0;
    int64_t P = 0;
    int priv[64];
    for (int s = 0; s <= g->nsteps; s++) {
        int nd = 0;
        const int64_t *sh = NULL;
        int ok = s < g->nsteps && step_rows(g, &g->steps[s], &nd, &sh) && sh[0] >= 2;
        if (a >= 0 && ok && sh[0] == P) {
            int save = npriv;
            if (rows_compatible(g, s, a, nd, P, priv, &npriv))
                continue;
            npriv = save;
        }
        if (a >= 0 && s - 1 > a)
            region_finish(c, a, s - 1, P, priv, npriv);
        a = -1;
        npriv = 0;
        if (ok && rows_compatible(g, s, s, nd, sh[0], priv, &npriv)) {
            a = s;
            P = sh[0];
            nd0 = nd;
        } else {
            npriv = 0;
        }
    }
    (void)nd0;
}

int twinc_graph_compile(twinc_graph *g, int nout, const int *outputs, const unsigned char *seeded)
{
    if (!g)
        return TWINC_EINVAL;
    if (g->compiled) {
        gerr(g, "the graph is already compiled");
        return TWINC_EINVAL;
    }
    if (nout < 0 || (nout && !outputs)) {
        gerr(g, "compile: bad output list");
        return TWINC_EINVAL;
    }
    for (int j = 0; j < nout; j++)
        if (!check_id(g, outputs[j], "compile"))
            return TWINC_EINVAL;
    int N = g->nnodes;
    Comp c = {0};
    c.g = g;
    c.N = N;
    g->outputs = malloc((size_t)(nout ? nout : 1) * sizeof *g->outputs);
    g->seeded = calloc((size_t)(nout ? nout : 1), 1);
    g->out_copy = calloc((size_t)(nout ? nout : 1), sizeof *g->out_copy);
    c.is_out = calloc((size_t)(N ? N : 1), 1);
    c.group = malloc((size_t)(N ? N : 1) * sizeof *c.group);
    c.gfirst = malloc((size_t)(N ? N : 1) * sizeof *c.gfirst);
    c.gsize = malloc((size_t)(N ? N : 1) * sizeof *c.gsize);
    c.stamp = calloc((size_t)(N ? N : 1), sizeof *c.stamp);
    c.dfs = malloc((size_t)(N ? N : 1) * sizeof *c.dfs);
    c.ncons = calloc((size_t)(N ? N : 1), sizeof *c.ncons);
    int *vstart = malloc((size_t)(N ? N : 1) * sizeof(int));
    int *vend = malloc((size_t)(N ? N : 1) * sizeof(int));
    int *vrend = malloc((size_t)(N ? N : 1) * sizeof(int));
    int *astart = malloc((size_t)(N ? N : 1) * sizeof(int));
    int *aend = malloc((size_t)(N ? N : 1) * sizeof(int));
    int *allcons = NULL;
    int status = TWINC_ENOMEM;
    if (!g->outputs || !g->seeded || !g->out_copy || !c.is_out || !c.group || !c.gfirst ||
        !c.gsize || !c.stamp || !c.dfs || !c.ncons || !vstart || !vend || !vrend || !astart || !aend)
        goto done;
    g->nout = nout;
    for (int j = 0; j < nout; j++) {
        g->outputs[j] = outputs[j];
        g->seeded[j] = seeded ? seeded[j] != 0 : 0;
        c.is_out[outputs[j]] = 1;
    }
    Node *nodes = g->nodes;

    /* live: what the outputs need (all outputs of a live kernel call get a
     * buffer, wanted or not) */
    for (int j = 0; j < nout; j++)
        nodes[outputs[j]].live = 1;
    for (int i = N - 1; i >= 0; i--)
        if (nodes[i].live)
            for (int k = 0; k < nodes[i].nin; k++)
                nodes[nodes[i].in[k]].live = 1;
    for (int i = 0; i < N; i++)
        if (nodes[i].live && nodes[i].op == TWINC_GOP_KERNEL)
            for (int o = 0; o < nodes[i].nkout; o++)
                nodes[nodes[i].kouts[o]].live = 1;

    /* active: depends on a differentiable input through differentiable steps */
    for (int i = 0; i < N; i++) {
        Node *n = &nodes[i];
        if (n->op == TWINC_GOP_INPUT) {
            n->active = (unsigned char)n->diff;
        } else if (n->op == TWINC_GOP_KOUT) {
            const Node *k = &nodes[n->in[0]];
            n->active = k->active && (k->kernel->params[n->index].flags & TWINC_PARAM_ACTIVE) &&
                        k->kernel->params[n->index].type == TWINC_T_DOUBLE;
        } else {
            for (int k = 0; k < n->nin; k++)
                if (nodes[n->in[k]].active && flows(g, n, k))
                    n->active = 1;
        }
    }
    /* useful: a seeded output depends on it */
    for (int j = 0; j < nout; j++)
        if (g->seeded[j])
            nodes[outputs[j]].useful = 1;
    for (int i = N - 1; i >= 0; i--) {
        Node *n = &nodes[i];
        if (!n->live || !n->useful || !n->active)
            continue;
        for (int k = 0; k < n->nin; k++)
            if (flows(g, n, k))
                nodes[n->in[k]].useful = 1;
    }
    for (int i = 0; i < N; i++)
        nodes[i].adj = nodes[i].live && nodes[i].active && nodes[i].useful;

    /* aliases: reshapes of contiguous data share their base's buffer */
    for (int i = 0; i < N; i++) {
        nodes[i].canon = i;
        if (nodes[i].live && is_identity_view(g, &nodes[i]))
            nodes[i].canon = nodes[nodes[i].in[0]].canon;
    }

    /* consumers */
    int ncons_total = 0;
    for (int i = 0; i < N; i++)
        if (nodes[i].live)
            for (int k = 0; k < nodes[i].nin; k++) {
                c.ncons[nodes[i].in[k]]++;
                ncons_total++;
            }
    allcons = malloc((size_t)(ncons_total ? ncons_total : 1) * sizeof *allcons);
    c.cons = malloc((size_t)(N ? N : 1) * sizeof *c.cons);
    if (!allcons || !c.cons)
        goto done;
    {
        int pos = 0;
        for (int i = 0; i < N; i++) {
            c.cons[i] = allcons + pos;
            pos += c.ncons[i];
            c.ncons[i] = 0;
        }
        for (int i = 0; i < N; i++)
            if (nodes[i].live)
                for (int k = 0; k < nodes[i].nin; k++) {
                    int p = nodes[i].in[k];
                    c.cons[p][c.ncons[p]++] = i;
                }
    }

    /* virtual views: strided views only elementwise passes and kernel calls read */
    for (int i = 0; i < N; i++) {
        Node *n = &nodes[i];
        n->virt = 0;
        if (!n->live || n->op != TWINC_GOP_VIEW || n->canon != i || c.is_out[i])
            continue;
        int ok = c.ncons[i] > 0;
        for (int q = 0; q < c.ncons[i] && ok; q++) {
            twinc_gop cop = nodes[c.cons[i][q]].op;
            ok = is_elementwise(cop) || cop == TWINC_GOP_KERNEL;
        }
        n->virt = (unsigned char)ok;
    }

    if (!build_steps(&c))
        goto done;
    int S = g->nsteps;

    /* materialised: read outside its group, or an output */
    for (int i = 0; i < N; i++) {
        Node *n = &nodes[i];
        n->mat = 0;
        if (!n->live || n->step < 0 || n->canon != i || n->op == TWINC_GOP_KERNEL)
            continue;
        if (!is_elementwise(n->op)) {
            n->mat = 1;
            continue;
        }
        int outside = c.is_out[i];
        for (int q = 0; q < c.ncons[i] && !outside; q++)
            outside = nodes[c.cons[i][q]].step != n->step || !is_elementwise(nodes[c.cons[i][q]].op);
        n->mat = (unsigned char)outside;
    }
    /* aliases of unmaterialised group members: make the member materialised */
    for (int i = 0; i < N; i++)
        if (nodes[i].live && nodes[i].canon != i)
            nodes[nodes[i].canon].mat = nodes[nodes[i].canon].step >= 0 ? 1 : 0;

    /* layouts, reverse participation, scratch */
    for (int s = 0; s < S; s++) {
        Step *st = &g->steps[s];
        if (st->kind == SK_GROUP) {
            layout_group(g, st);
            for (int m = 0; m < st->nmem; m++)
                if (nodes[st->mem[m]].adj)
                    st->rev = 1;
        } else {
            Node *n = &nodes[st->node];
            st->rev = n->adj;
            if (n->op == TWINC_GOP_KERNEL) {
                st->ext = malloc((size_t)(n->nin ? n->nin : 1) * sizeof *st->ext);
                if (!st->ext)
                    goto done;
                st->next = n->nin;
                for (int k = 0, p = 0; k < n->nin; k++, p++) {
                    while (n->kernel->params[p].role != TWINC_ROLE_IN)
                        p++;
                    /* an array over (lanes..., elements): the last stride is the element stride */
                    int64_t ash[MAXDIM];
                    const Node *an = &nodes[n->in[k]];
                    int arr = n->kernel->params[p].length != NULL;
                    memcpy(ash, n->shape, (size_t)n->nd * sizeof *ash);
                    if (arr)
                        ash[n->nd] = an->shape[an->nd - 1];
                    make_operand(g, n->in[k], n->nd + arr, ash, &st->ext[k]);
                }
                st->rev = 0;
                for (int o = 0; o < n->nkout; o++)
                    if (nodes[n->kouts[o]].adj)
                        st->rev = 1;
            }
        }
        step_scratch(g, st);
        if (st->rev)
            g->nrev++;
    }

    /* outputs: bound to the caller's buffer where the value is computed by a
     * step, copied at the end otherwise */
    for (int j = 0; j < nout; j++) {
        int v = owner(g, outputs[j]);
        Node *n = &nodes[v];
        if (n->step >= 0 && n->mat && n->out_index < 0 && n->op != TWINC_GOP_INPUT &&
            n->op != TWINC_GOP_CONST) {
            n->out_index = j;
            g->out_copy[j] = 0;
        } else {
            g->out_copy[j] = 1;
        }
    }

    /* kernels whose adjoint can run in the forward replay: every output it
     * differentiates is a seeded output of the graph and nothing else reads
     * it, so its seed is known before the replay starts (a portfolio of
     * prices and their Greeks): one adjoint call instead of primal + adjoint */
    for (int s = 0; s < S; s++) {
        Step *st = &g->steps[s];
        if (st->kind != SK_NODE || nodes[st->node].op != TWINC_GOP_KERNEL || !st->rev)
            continue;
        const Node *kn = &nodes[st->node];
        int ok = 1;
        for (int o = 0; o < kn->nkout && ok; o++) {
            int ko = kn->kouts[o];
            if (!nodes[ko].adj)
                continue;
            int seen = 0;
            for (int j = 0; j < nout; j++)
                if (outputs[j] == ko)
                    seen += g->seeded[j] ? 1 : 2;
            ok = seen == 1 && c.ncons[ko] == 0;
        }
        if (!ok)
            continue;
        st->fused = 1;
        st->rev = 0;
        g->nrev--;
        for (int o = 0; o < kn->nkout; o++) {
            int ko = kn->kouts[o];
            if (nodes[ko].adj)
                for (int j = 0; j < nout; j++)
                    if (outputs[j] == ko)
                        nodes[ko].seed_out = j;
        }
    }

    for (int s = 0; s < S; s++)
        g->steps[s].region = -1;
    find_regions(&c);

    /* lifetimes */
    for (int i = 0; i < N; i++) {
        vstart[i] = nodes[i].step;
        vend[i] = nodes[i].step;
        vrend[i] = -1;
        astart[i] = 2 * S;
        aend[i] = 2 * S; /* input adjoints are copied out at the very end */
    }
    for (int i = 0; i < N; i++)
        if (nodes[i].op != TWINC_GOP_INPUT)
            aend[i] = -1;
    for (int s = 0; s < S; s++) {
        const Step *st = &g->steps[s];
        const Region *R = st->region >= 0 ? &g->regions[st->region] : NULL;
        /* a region runs forward at its first step's time and backward (all
         * its steps, recomputing) at its last step's reverse time */
        LifeArg la = {g, s, S, vend, vrend, astart, aend, R ? 2 * S - 1 - R->b : -1};
        step_uses(g, st, life_fn, &la);
        if (R && R->rev) {
            int tmp[3 * MAXMEMBERS];
            const int *ops;
            int nops = step_operands(g, st, &ops, tmp);
            for (int i = 0; i < nops; i++)
                life_fn(&la, ops[i], RD_REV_VAL);
        }
    }
    for (int i = 0; i < N; i++)
        if (nodes[i].rid >= 0 && vstart[i] > g->regions[nodes[i].rid].a)
            vstart[i] = g->regions[nodes[i].rid].a;
    for (int j = 0; j < nout; j++) {
        int v = owner(g, outputs[j]);
        if (g->out_copy[j] && S > 0 && vend[v] < S - 1)
            vend[v] = S - 1;
        if (g->seeded[j] && nodes[outputs[j]].adj && astart[v] > S)
            astart[v] = S;
    }
    for (int i = 0; i < N; i++) {
        if (astart[i] > aend[i])
            aend[i] = astart[i];
        if (vstart[i] < 0)
            vstart[i] = 0;
    }

    if (!plan_build(g, &g->pf, 0, vstart, vend, vrend, astart, aend) ||
        !plan_build(g, &g->pg, 1, vstart, vend, vrend, astart, aend))
        goto done;

    size_t nregs = 0;
    for (int s = 0; s < S; s++) {
        Step *st = &g->steps[s];
        if (st->kind == SK_GROUP) {
            size_t r = (size_t)(2 * st->nmem + st->next + 2) * BLK;
            if (r > nregs)
                nregs = r;
            g->nfused += st->nmem;
        }
    }
    g->nregs = nregs;
    g->compiled = 1;
    status = TWINC_OK;

done:
    if (status == TWINC_ENOMEM)
        gerr(g, "compile: out of memory");
    free(c.is_out);
    free(c.group);
    free(c.gfirst);
    free(c.gsize);
    free(c.stamp);
    free(c.dfs);
    free(c.ncons);
    free(c.cons);
    free(allcons);
    free(vstart);
    free(vend);
    free(vrend);
    free(astart);
    free(aend);
    return status;
}

int twinc_graph_ninputs(const twinc_graph *g) { return g ? g->ninputs : 0; }

int twinc_graph_input_node(const twinc_graph *g, int i)
{
    return (g && i >= 0 && i < g->ninputs) ? g->inputs[i] : -1;
}

int twinc_graph_input_differentiable(const twinc_graph *g, int i)
{
    return (g && i >= 0 && i < g->ninputs) ? g->nodes[g->inputs[i]].diff : 0;
}

int twinc_graph_noutputs(const twinc_graph *g) { return g ? g->nout : 0; }

int twinc_graph_output_node(const twinc_graph *g, int j)
{
    return (g && j >= 0 && j < g->nout) ? g->outputs[j] : -1;
}

void twinc_graph_get_stats(const twinc_graph *g, twinc_graph_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!g)
        return;
    st->nodes = g->nnodes;
    for (int i = 0; i < g->nnodes; i++)
        st->live += g->nodes[i].live;
    st->steps = g->nsteps;
    st->fused = g->nfused;
    st->reverse_steps = g->nrev;
    st->tiled = g->ntiled;
    st->arena_forward = g->pf.arena;
    st->arena_gradient = g->pg.arena;
}

/* ---- worker threads ----
 *
 * One pool per process, started on first use: TWINC_NUM_THREADS threads, or
 * one per online CPU, counting the caller.  parallel_for(np, fn, arg) runs
 * fn(arg, part, tid) for every part 0..np-1 on the caller and the workers and
 * returns when all are done; tid (0 = the caller) indexes per-thread scratch.
 * One job at a time: a caller that finds the pool busy (another replay, or a
 * nested call) runs its parts itself, in order.  Work is always split the
 * same way for a given size (parts_for), never by how many threads happen to
 * be free, so a replay gives the same bits whether it ran in parallel, alone
 * or next to others.  After fork() the child runs everything on the caller. */

typedef void (*part_fn)(void *arg, int64_t part, int tid);

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    int nthreads;          /* including the caller */
    int busy, active;
    unsigned long gen;
    part_fn fn;
    void *arg;
    int64_t nparts;
    atomic_llong next, left;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 1, 0, 0, 0,
          NULL, NULL, 0, 0, 0};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

#define PARTS_PER_THREAD 4

static void run_parts(part_fn fn, void *arg, int64_t np, int tid)
{
    int64_t p;
    while ((p = atomic_fetch_add(&pool.next, 1)) < np) {
        fn(arg, p, tid);
        atomic_fetch_sub(&pool.left, 1);
    }
}

static void *pool_worker(void *p)
{
    int tid = (int)(intptr_t)p;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.gen == seen)
            pthread_cond_wait(&pool.wake, &pool.mu);
        seen = pool.gen;
        if (!pool.busy)
            continue;
        part_fn fn = pool.fn;
        void *arg = pool.arg;
        int64_t np = pool.nparts;
        pool.active++;
        pthread_mutex_unlock(&pool.mu);
        run_parts(fn, arg, np, tid);
        pthread_mutex_lock(&pool.mu);
        if (--pool.active == 0)
            pthread_cond_broadcast(&pool.done);
    }
    return NULL;
}

static void pool_child(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.nthreads = 1;
    pool.busy = pool.active = 0;
}

static void vmath_init(void);

static void pool_start(void)
{
    vmath_init();
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("TWINC_NUM_THREADS");
    if (env && *env)
        n = strtol(env, NULL, 10);
    if (n < 1)
        n = 1;
    if (n > 64)
        n = 64;
    pool.nthreads = 1;
    if (n == 1)
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* workers take no signals */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (long i = 1; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, pool_worker, (void *)(intptr_t)i) != 0)
            break;
        pool.nthreads++;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_atfork(NULL, NULL, pool_child);
}

static int pool_threads(void)
{
    pthread_once(&pool_once, pool_start);
    return pool.nthreads;
}

int twinc_graph_threads(void) { return pool_threads(); }

static void parallel_for(int64_t np, part_fn fn, void *arg)
{
    if (np <= 1 || pool_threads() <= 1)
        goto serial;
    pthread_mutex_lock(&pool.mu);
    if (pool.busy) {
        pthread_mutex_unlock(&pool.mu);
        goto serial;
    }
    while (pool.active > 0) /* stragglers of the previous job */
        pthread_cond_wait(&pool.done, &pool.mu);
    pool.busy = 1;
    pool.fn = fn;
    pool.arg = arg;
    pool.nparts = np;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.left, np);
    pool.gen++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    run_parts(fn, arg, np, 0);
    pthread_mutex_lock(&pool.mu);
    while (atomic_load(&pool.left) > 0 || pool.active > 0)
        pthread_cond_wait(&pool.done, &pool.mu);
    pool.busy = 0;
    pthread_mutex_unlock(&pool.mu);
    return;
serial:
    for (int64_t p = 0; p < np; p++)
        fn(arg, p, 0);
}

/* How many parts `work` units split into, at least min_work each: depends on
 * the size and the pool's size only. */
static int64_t parts_for(int64_t work, int64_t min_work)
{
    int64_t np = (int64_t)pool_threads() * PARTS_PER_THREAD;
    if (pool_threads() == 1)
        return 1;
    if (work / min_work < np)
        np = work / min_work;
    return np < 1 ? 1 : np;
}

/* ---- vector math ----
 *
 * The transcendental functions of the elementwise passes go through glibc's
 * libmvec (AVX-512 or AVX2 variants, chosen at run time; at most 4 ulp) when
 * the library is linked in and the CPU has the instructions, else through
 * libm one element at a time.  A tail shorter than a vector is padded, so an
 * element gets the same bits wherever it falls in a block. */

typedef enum { VF_EXP, VF_LOG, VF_LOG1P, VF_EXPM1, VF_TANH, VF_SIN, VF_COS, VF_ERF, VF_ERFC, VF_COUNT } vfun;
typedef void (*vmap_fn)(int64_t n, double *d, const double *a);
typedef void (*vmap2_fn)(int64_t n, double *d, const double *a, const double *b);

#define SCALAR_MAP(NAME, IDX)                                                                   \
    static void smap_##NAME(int64_t n, double *d, const double *a)                             \
    {                                                                                           \
        for (int64_t i = 0; i < n; i++)                                                         \
            d[i] = NAME(a[i]);                                                                  \
    }
SCALAR_MAP(exp, VF_EXP)
SCALAR_MAP(log, VF_LOG)
SCALAR_MAP(log1p, VF_LOG1P)
SCALAR_MAP(expm1, VF_EXPM1)
SCALAR_MAP(tanh, VF_TANH)
SCALAR_MAP(sin, VF_SIN)
SCALAR_MAP(cos, VF_COS)
SCALAR_MAP(erf, VF_ERF)
SCALAR_MAP(erfc, VF_ERFC)

static void smap_pow(int64_t n, double *d, const double *a, const double *b)
{
    for (int64_t i = 0; i < n; i++)
        d[i] = pow(a[i], b[i]);
}

static vmap_fn vmap[VF_COUNT] = {smap_exp, smap_log, smap_log1p, smap_expm1, smap_tanh,
                                 smap_sin, smap_cos, smap_erf, smap_erfc};
static vmap2_fn vpow = smap_pow;
static int vmath_level; /* 0 libm, 1 AVX2 libmvec, 2 AVX-512 libmvec */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define VF_LIST(X) X(exp) X(log) X(log1p) X(expm1) X(tanh) X(sin) X(cos) X(erf) X(erfc)

#pragma GCC push_options
#pragma GCC target("avx512f")
#define DECL8(f) extern __m512d _ZGVeN8v_##f(__m512d) __attribute__((weak));
VF_LIST(DECL8)
extern __m512d _ZGVeN8vv_pow(__m512d, __m512d) __attribute__((weak));
#define MAP8(f)                                                                                 \
    static void map8_##f(int64_t n, double *d, const double *a)                                 \
    {                                                                                           \
        int64_t i = 0;                                                                          \
        for (; i + 8 <= n; i += 8)                                                              \
            _mm512_storeu_pd(d + i, _ZGVeN8v_##f(_mm512_loadu_pd(a + i)));                      \
        if (i < n) {                                                                            \
            double t[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                             \
            memcpy(t, a + i, (size_t)(n - i) * sizeof *t);                                      \
            _mm512_storeu_pd(t, _ZGVeN8v_##f(_mm512_loadu_pd(t)));                              \
            memcpy(d + i, t, (size_t)(n - i) * sizeof *t);                                      \
        }                                                                                       \
    }
VF_LIST(MAP8)
static void map8_pow(int64_t n, double *d, const double *a, const double *b)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm512_storeu_pd(d + i, _ZGVeN8vv_pow(_mm512_loadu_pd(a + i), _mm512_loadu_pd(b + i)));
    if (i < n) {
        double t[8] = {1, 1, 1, 1, 1, 1, 1, 1}, u[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        memcpy(t, a + i, (size_t)(n - i) * sizeof *t);
        memcpy(u, b + i, (size_t)(n - i) * sizeof *u);
        _mm512_storeu_pd(t, _ZGVeN8vv_pow(_mm512_loadu_pd(t), _mm512_loadu_pd(u)));
        memcpy(d + i, t, (size_t)(n - i) * sizeof *t);
    }
}
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define DECL4(f) extern __m256d _ZGVdN4v_##f(__m256d) __attribute__((weak));
VF_LIST(DECL4)
extern __m256d _ZGVdN4vv_pow(__m256d, __m256d) __attribute__((weak));
#define MAP4(f)                                                                                 \
    static void map4_##f(int64_t n, double *d, const double *a)                                 \
    {                                                                                           \
        int64_t i = 0;                                                                          \
        for (; i + 4 <= n; i += 4)                                                              \
            _mm256_storeu_pd(d + i, _ZGVdN4v_##f(_mm256_loadu_pd(a + i)));                      \
        if (i < n) {                                                                            \
            double t[4] = {0, 0, 0, 0};                                                         \
            memcpy(t, a + i, (size_t)(n - i) * sizeof *t);                                      \
            _mm256_storeu_pd(t, _ZGVdN4v_##f(_mm256_loadu_pd(t)));                              \
            memcpy(d + i, t, (size_t)(n - i) * sizeof *t);                                      \
        }                                                                                       \
    }
VF_LIST(MAP4)
static void map4_pow(int64_t n, double *d, const double *a, const double *b)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(d + i, _ZGVdN4vv_pow(_mm256_loadu_pd(a + i), _mm256_loadu_pd(b + i)));
    if (i < n) {
        double t[4] = {1, 1, 1, 1}, u[4] = {1, 1, 1, 1};
        memcpy(t, a + i, (size_t)(n - i) * sizeof *t);
        memcpy(u, b + i, (size_t)(n - i) * sizeof *u);
        _mm256_storeu_pd(t, _ZGVdN4vv_pow(_mm256_loadu_pd(t), _mm256_loadu_pd(u)));
        memcpy(d + i, t, (size_t)(n - i) * sizeof *t);
    }
}
#pragma GCC pop_options

static void vmath_init(void)
{
    const char *env = getenv("TWINC_VMATH");
    int allow = env && *env ? atoi(env) : 2;
    __builtin_cpu_init();
#define HAVE8(f) &&_ZGVeN8v_##f
#define HAVE4(f) &&_ZGVdN4v_##f
    if (allow >= 2 && __builtin_cpu_supports("avx512f") VF_LIST(HAVE8) && _ZGVeN8vv_pow) {
        vmap_fn m[VF_COUNT] = {map8_exp, map8_log, map8_log1p, map8_expm1, map8_tanh,
                               map8_sin, map8_cos, map8_erf, map8_erfc};
        memcpy(vmap, m, sizeof m);
        vpow = map8_pow;
        vmath_level = 2;
    } else if (allow >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
               VF_LIST(HAVE4) && _ZGVdN4vv_pow) {
        vmap_fn m[VF_COUNT] = {map4_exp, map4_log, map4_log1p, map4_expm1, map4_tanh,
                               map4_sin, map4_cos, map4_erf, map4_erfc};
        memcpy(vmap, m, sizeof m);
        vpow = map4_pow;
        vmath_level = 1;
    }
}
#else
static void vmath_init(void) {}
#endif

int twinc_graph_vector_math(void)
{
    pool_threads();
    return vmath_level;
}

/* ---- elementwise operations: forward values and partial derivatives ---- */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define VCLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VCLONES
#endif

/* d[i] = op(a[i], b[i], c[i]) over n elements.  ORDER TWINC_GOPS. */
VCLONES static void ew_forward(twinc_gop op, int64_t n, double *restrict d, const double *restrict a,
                       const double *restrict b, const double *restrict c)
{
    int64_t i;
    switch (op) {
    case TWINC_GOP_NEG: for (i = 0; i < n; i++) d[i] = -a[i]; break;
    case TWINC_GOP_SQUARE: for (i = 0; i < n; i++) d[i] = a[i] * a[i]; break;
    case TWINC_GOP_SQRT: for (i = 0; i < n; i++) d[i] = sqrt(a[i]); break;
    case TWINC_GOP_EXP: vmap[VF_EXP](n, d, a); break;
    case TWINC_GOP_LOG: vmap[VF_LOG](n, d, a); break;
    case TWINC_GOP_LOG1P: vmap[VF_LOG1P](n, d, a); break;
    case TWINC_GOP_EXPM1: vmap[VF_EXPM1](n, d, a); break;
    case TWINC_GOP_ABS: for (i = 0; i < n; i++) d[i] = fabs(a[i]); break;
    case TWINC_GOP_TANH: vmap[VF_TANH](n, d, a); break;
    case TWINC_GOP_SIN: vmap[VF_SIN](n, d, a); break;
    case TWINC_GOP_COS: vmap[VF_COS](n, d, a); break;
    /* N(a) = erfc(-a / sqrt 2) / 2, n(a) = exp(-a^2 / 2) / sqrt(2 pi), as twinc.h */
    case TWINC_GOP_NCDF:
        for (i = 0; i < n; i++) d[i] = -a[i] * 0.70710678118654752440;
        vmap[VF_ERFC](n, d, d);
        for (i = 0; i < n; i++) d[i] *= 0.5;
        break;
    case TWINC_GOP_NPDF:
        for (i = 0; i < n; i++) d[i] = -0.5 * a[i] * a[i];
        vmap[VF_EXP](n, d, d);
        for (i = 0; i < n; i++) d[i] *= 0.39894228040143267794;
        break;
    case TWINC_GOP_ERF: vmap[VF_ERF](n, d, a); break;
    case TWINC_GOP_ADD: for (i = 0; i < n; i++) d[i] = a[i] + b[i]; break;
    case TWINC_GOP_SUB: for (i = 0; i < n; i++) d[i] = a[i] - b[i]; break;
    case TWINC_GOP_MUL: for (i = 0; i < n; i++) d[i] = a[i] * b[i]; break;
    case TWINC_GOP_DIV: for (i = 0; i < n; i++) d[i] = a[i] / b[i]; break;
    case TWINC_GOP_POW: vpow(n, d, a, b); break;
    /* NumPy: maximum/minimum propagate NaN, fmax/fmin ignore it */
    case TWINC_GOP_MAXIMUM: for (i = 0; i < n; i++) d[i] = (a[i] >= b[i] || a[i] != a[i]) ? a[i] : b[i]; break;
    case TWINC_GOP_MINIMUM: for (i = 0; i < n; i++) d[i] = (a[i] <= b[i] || a[i] != a[i]) ? a[i] : b[i]; break;
    case TWINC_GOP_FMAX: for (i = 0; i < n; i++) d[i] = fmax(a[i], b[i]); break;
    case TWINC_GOP_FMIN: for (i = 0; i < n; i++) d[i] = fmin(a[i], b[i]); break;
    case TWINC_GOP_WHERE: for (i = 0; i < n; i++) d[i] = a[i] != 0.0 ? b[i] : c[i]; break;
    case TWINC_GOP_LT: for (i = 0; i < n; i++) d[i] = a[i] < b[i]; break;
    case TWINC_GOP_LE: for (i = 0; i < n; i++) d[i] = a[i] <= b[i]; break;
    case TWINC_GOP_GT: for (i = 0; i < n; i++) d[i] = a[i] > b[i]; break;
    case TWINC_GOP_GE: for (i = 0; i < n; i++) d[i] = a[i] >= b[i]; break;
    case TWINC_GOP_EQ: for (i = 0; i < n; i++) d[i] = a[i] == b[i]; break;
    case TWINC_GOP_NE: for (i = 0; i < n; i++) d[i] = a[i] != b[i]; break;
    case TWINC_GOP_AND: for (i = 0; i < n; i++) d[i] = (a[i] != 0.0) & (b[i] != 0.0); break;
    case TWINC_GOP_OR: for (i = 0; i < n; i++) d[i] = (a[i] != 0.0) | (b[i] != 0.0); break;
    case TWINC_GOP_XOR: for (i = 0; i < n; i++) d[i] = (a[i] != 0.0) ^ (b[i] != 0.0); break;
    case TWINC_GOP_NOT: for (i = 0; i < n; i++) d[i] = a[i] == 0.0; break;
    case TWINC_GOP_SIGN:
        for (i = 0; i < n; i++)
            d[i] = a[i] > 0.0 ? 1.0 : a[i] < 0.0 ? -1.0 : a[i] == 0.0 ? 0.0 : a[i];
        break;
    case TWINC_GOP_FLOOR: for (i = 0; i < n; i++) d[i] = floor(a[i]); break;
    case TWINC_GOP_CEIL: for (i = 0; i < n; i++) d[i] = ceil(a[i]); break;
    default: break; /* not elementwise: unreachable */
    }
}

/* t[i] = dz/d(input k) * g[i], z = op(a, b, c) (z given), or t[i] += that
 * when acc (the adjoint accumulated in place: one pass, no temporary).  The
 * rules, one per line, ORDER TWINC_GOPS.  t must not alias the inputs; w is
 * BLK doubles of scratch for the rules that call vector math (n <= BLK). */
#define PUT(expr)                                                                               \
    do {                                                                                        \
        if (acc)                                                                                \
            for (i = 0; i < n; i++) t[i] += (expr);                                             \
        else                                                                                    \
            for (i = 0; i < n; i++) t[i] = (expr);                                              \
    } while (0)
VCLONES static void ew_partial(twinc_gop op, int k, int acc, int64_t n, double *restrict t,
                               const double *restrict g, const double *restrict z,
                               const double *restrict a, const double *restrict b,
                               const double *restrict c, double *restrict w)
{
    int64_t i;
    (void)c;
    switch (op) {
    /* d(-a) = -da */
    case TWINC_GOP_NEG: PUT(-g[i]); break;
    /* d(a^2) = 2a da */
    case TWINC_GOP_SQUARE: PUT(2.0 * a[i] * g[i]); break;
    /* d sqrt(a) = da / (2 sqrt(a)) */
    case TWINC_GOP_SQRT: PUT(0.5 * g[i] / z[i]); break;
    /* d exp(a) = exp(a) da */
    case TWINC_GOP_EXP: PUT(z[i] * g[i]); break;
    /* d log(a) = da / a */
    case TWINC_GOP_LOG: PUT(g[i] / a[i]); break;
    /* d log1p(a) = da / (1 + a) */
    case TWINC_GOP_LOG1P: PUT(g[i] / (1.0 + a[i])); break;
    /* d expm1(a) = exp(a) da */
    case TWINC_GOP_EXPM1: PUT((z[i] + 1.0) * g[i]); break;
    /* d|a| = sign(a) da, with |a|' = 1 at 0 (the twins' convention) */
    case TWINC_GOP_ABS: PUT(a[i] < 0.0 ? -g[i] : g[i]); break;
    /* d tanh(a) = (1 - tanh^2 a) da */
    case TWINC_GOP_TANH: PUT((1.0 - z[i] * z[i]) * g[i]); break;
    /* d sin(a) = cos(a) da, d cos(a) = -sin(a) da */
    case TWINC_GOP_SIN:
        vmap[VF_COS](n, w, a);
        PUT(w[i] * g[i]);
        break;
    case TWINC_GOP_COS:
        vmap[VF_SIN](n, w, a);
        PUT(-w[i] * g[i]);
        break;
    /* d N(a) = n(a) da;  d n(a) = -a n(a) da;  d erf(a) = 2/sqrt(pi) exp(-a^2) da */
    case TWINC_GOP_NCDF:
        for (i = 0; i < n; i++) w[i] = -0.5 * a[i] * a[i];
        vmap[VF_EXP](n, w, w);
        PUT(w[i] * (0.39894228040143267794 * g[i]));
        break;
    case TWINC_GOP_NPDF: PUT(-a[i] * z[i] * g[i]); break;
    case TWINC_GOP_ERF:
        for (i = 0; i < n; i++) w[i] = -a[i] * a[i];
        vmap[VF_EXP](n, w, w);
        PUT(w[i] * (1.12837916709551257390 * g[i]));
        break;
    /* d(a + b) = da + db;  d(a - b) = da - db */
    case TWINC_GOP_ADD: PUT(g[i]); break;
    case TWINC_GOP_SUB:
        if (k == 0) PUT(g[i]);
        else PUT(-g[i]);
        break;
    /* d(a b) = b da + a db */
    case TWINC_GOP_MUL:
        if (k == 0) PUT(b[i] * g[i]);
        else PUT(a[i] * g[i]);
        break;
    /* d(a / b) = da / b - (a / b) db / b */
    case TWINC_GOP_DIV:
        if (k == 0) PUT(g[i] / b[i]);
        else PUT(-z[i] * g[i] / b[i]);
        break;
    /* d(a^b) = b a^(b-1) da + a^b log(a) db; 0 where b == 0 (resp. a == 0) */
    case TWINC_GOP_POW:
        if (k == 0) {
            for (i = 0; i < n; i++) w[i] = b[i] - 1.0;
            vpow(n, w, a, w);
            PUT(b[i] == 0.0 ? 0.0 : b[i] * w[i] * g[i]);
        } else {
            vmap[VF_LOG](n, w, a);
            PUT(a[i] == 0.0 ? 0.0 : z[i] * w[i] * g[i]);
        }
        break;
    /* selections route the adjoint to one argument, ties to the second */
    case TWINC_GOP_MAXIMUM: PUT((k == 0) == (a[i] > b[i] || a[i] != a[i]) ? g[i] : 0.0); break;
    case TWINC_GOP_MINIMUM: PUT((k == 0) == (a[i] < b[i] || a[i] != a[i]) ? g[i] : 0.0); break;
    case TWINC_GOP_FMAX: PUT((k == 0) == (a[i] > b[i] || b[i] != b[i]) ? g[i] : 0.0); break;
    case TWINC_GOP_FMIN: PUT((k == 0) == (a[i] < b[i] || b[i] != b[i]) ? g[i] : 0.0); break;
    /* where(c, a, b): the adjoint goes to the selected side */
    case TWINC_GOP_WHERE:
        if (k == 1) PUT(a[i] != 0.0 ? g[i] : 0.0);
        else PUT(a[i] != 0.0 ? 0.0 : g[i]);
        break;
    default: PUT(0.0); break; /* masks: no derivative */
    }
}
#undef PUT

/* ---- execution ---- */

typedef struct Exec {
    twinc_graph *g;
    const Plan *p;
    char *arena;
    const double *const *inputs;
    double *const *outputs;
    Ctx *ctx;
    char *err;
    size_t errlen;
    int grad;                /* the forward half of a gradient replay */
    const twinc_arg *seeds;
    /* running one tile of a region: */
    int rid;                 /* the region, or -1 */
    int rmode;               /* 0 forward (tiles hold its local values), 1 reverse (all its values) */
    int tid;                 /* the thread, for per-thread scratch */
    char *tile;              /* this thread's tile scratch */
    int64_t p0;              /* the tile's first row */
    double *privbase;        /* this part's private adjoint copies, or NULL */
} Exec;

static double *loc_ptr(const Exec *x, Loc l)
{
    switch (l.kind) {
    case L_ARENA: return (double *)(x->arena + l.idx);
    case L_INPUT: return (double *)(uintptr_t)x->inputs[l.idx];
    case L_CONST: return x->g->nodes[l.idx].data;
    case L_OUTPUT: return x->outputs[l.idx];
    default: return NULL;
    }
}

/* Row p of a tile-local value with `row` doubles per row, at tile offset
 * `off` (doubles per row before it): tile + off * tile_rows + (p - p0) * row.
 * The base returned is that of row 0, so that the steps' global indexing
 * lands in the tile for the tile's rows (computed in integers: the base
 * itself points outside the tile). */
static double *tile_ptr(const Exec *x, int64_t off, int64_t row)
{
    const Region *R = &x->g->regions[x->rid];
    uintptr_t b = (uintptr_t)x->tile + (uintptr_t)(off * R->tile) * sizeof(double);
    return (double *)(b - (uintptr_t)(x->p0 * row) * sizeof(double));
}

static double *vptr(const Exec *x, int node)
{
    int v = owner(x->g, node);
    if (x->rid >= 0) {
        const Node *n = &x->g->nodes[v];
        int64_t off = x->rmode ? n->tr : n->tf;
        if (n->rid == x->rid && off >= 0)
            return tile_ptr(x, off, n->trow);
    }
    return loc_ptr(x, x->p->val[v]);
}

static double *aptr(const Exec *x, int node)
{
    int v = owner(x->g, node);
    if (x->rid >= 0) {
        const Node *n = &x->g->nodes[v];
        if (n->rid == x->rid && n->ta >= 0)
            return tile_ptr(x, n->ta, n->trow);
        const Region *R = &x->g->regions[x->rid];
        if (x->privbase)
            for (int k = 0; k < R->npriv; k++)
                if (R->priv[k] == v)
                    return x->privbase + R->privoff[k];
    }
    return loc_ptr(x, x->p->adj[v]);
}

static void zero(double *p, int64_t n)
{
    if (p && n > 0)
        memset(p, 0, (size_t)n * sizeof *p);
}

/* One fused pass over the elements e0..e1 (row-major) of a group, in blocks
 * of at most BLK within a row: forward, or (reverse) recompute each block in
 * registers and sweep its adjoints backwards. */
static void group_run(const Exec *x, const Step *st, int reverse, int64_t e0, int64_t e1, double *regs,
                      double *const *aover, const int64_t (*astr)[MAXDIM])
{
    const Node *nodes = x->g->nodes;
    int nd = st->nd, nm = st->nmem, ne = st->next;
    int64_t inner = st->shape[nd - 1];
    double *vreg = regs, *ereg = vreg + (size_t)nm * BLK, *areg = ereg + (size_t)ne * BLK;
    double *tmp = areg + (size_t)nm * BLK;
    const double *ebase[3 * MAXMEMBERS], *eptr[3 * MAXMEMBERS], *ecache[3 * MAXMEMBERS];
    double *eadj[3 * MAXMEMBERS];
    int64_t eoff[3 * MAXMEMBERS], aoff[3 * MAXMEMBERS], ainner[3 * MAXMEMBERS];
    double *obase[MAXMEMBERS], *oadj[MAXMEMBERS];
    const double *mp[MAXMEMBERS];

    for (int e = 0; e < ne; e++) {
        const Operand *op = &st->ext[e];
        ebase[e] = vptr(x, op->node) + op->offset;
        eadj[e] = (reverse && nodes[op->node].adj) ? aptr(x, op->node) + op->offset : NULL;
        ainner[e] = op->strides[nd - 1];
        if (eadj[e] && aover && aover[e]) {
            eadj[e] = aover[e];
            ainner[e] = astr[e][nd - 1];
        }
        ecache[e] = NULL;
    }
    for (int m = 0; m < nm; m++) {
        const Node *n = &nodes[st->mem[m]];
        obase[m] = (!reverse && n->mat) ? vptr(x, st->mem[m]) : NULL;
        oadj[m] = (reverse && n->mat && n->adj) ? aptr(x, st->mem[m]) : NULL;
    }
    for (int64_t el = e0, len; el < e1; el += len) {
        int64_t row = el / inner, j0 = el % inner;
        len = inner - j0 < BLK ? inner - j0 : BLK;
        if (len > e1 - el)
            len = e1 - el;
        int64_t coff = j0 * st->cstrides[nd - 1];
        for (int e = 0; e < ne; e++) {
            eoff[e] = j0 * st->ext[e].strides[nd - 1];
            aoff[e] = j0 * ainner[e];
        }
        for (int d = nd - 2; d >= 0; d--) {
            int64_t id = row % st->shape[d];
            row /= st->shape[d];
            coff += id * st->cstrides[d];
            for (int e = 0; e < ne; e++) {
                eoff[e] += id * st->ext[e].strides[d];
                aoff[e] += id * (aover && aover[e] ? astr[e][d] : st->ext[e].strides[d]);
            }
        }
        for (int e = 0; e < ne; e++) {
            int64_t s = st->ext[e].strides[nd - 1];
            const double *p = ebase[e] + eoff[e];
            double *r = ereg + (size_t)e * BLK;
            if (s == 1) {
                eptr[e] = p;
            } else if (s == 0) {
                if (ecache[e] != p) {
                    double v = *p;
                    for (int i = 0; i < BLK; i++)
                        r[i] = v;
                    ecache[e] = p;
                }
                eptr[e] = r;
            } else {
                for (int64_t i = 0; i < len; i++)
                    r[i] = p[i * s];
                ecache[e] = NULL;
                eptr[e] = r;
            }
        }
        for (int m = 0; m < nm; m++) {
            const Node *n = &nodes[st->mem[m]];
            const double *src[3] = {NULL, NULL, NULL};
            for (int k = 0; k < n->nin; k++) {
                int sidx = st->src[3 * m + k];
                src[k] = sidx >= 0 ? eptr[sidx] : mp[-sidx - 1];
            }
            double *dst = obase[m] ? obase[m] + coff : vreg + (size_t)m * BLK;
            ew_forward(n->op, len, dst, src[0], src[1], src[2]);
            mp[m] = dst;
        }
        if (!reverse)
            continue;
        for (int m = 0; m < nm; m++) {
            if (!nodes[st->mem[m]].adj)
                continue;
            double *am = areg + (size_t)m * BLK;
            if (oadj[m])
                memcpy(am, oadj[m] + coff, (size_t)len * sizeof *am);
            else
                zero(am, len);
        }
        for (int m = nm - 1; m >= 0; m--) {
            const Node *n = &nodes[st->mem[m]];
            if (!n->adj)
                continue;
            const double *gm = areg + (size_t)m * BLK;
            const double *src[3] = {NULL, NULL, NULL};
            for (int k = 0; k < n->nin; k++) {
                int sidx = st->src[3 * m + k];
                src[k] = sidx >= 0 ? eptr[sidx] : mp[-sidx - 1];
            }
            for (int k = 0; k < n->nin; k++) {
                int sidx = st->src[3 * m + k];
                if (gops[n->op].kind == K_M || (n->op == TWINC_GOP_WHERE && k == 0))
                    continue;
                if (sidx < 0) {
                    int j = -sidx - 1;
                    if (!nodes[st->mem[j]].adj)
                        continue;
                    ew_partial(n->op, k, 1, len, areg + (size_t)j * BLK, gm, mp[m], src[0], src[1],
                               src[2], tmp + BLK);
                } else {
                    if (!eadj[sidx])
                        continue;
                    int64_t s = ainner[sidx];
                    double *p = eadj[sidx] + aoff[sidx];
                    if (s == 1) {
                        ew_partial(n->op, k, 1, len, p, gm, mp[m], src[0], src[1], src[2], tmp + BLK);
                        continue;
                    }
                    ew_partial(n->op, k, 0, len, tmp, gm, mp[m], src[0], src[1], src[2], tmp + BLK);
                    if (s == 0) {
                        double acc = 0.0;
                        for (int64_t i = 0; i < len; i++)
                            acc += tmp[i];
                        *p += acc;
                    } else {
                        for (int64_t i = 0; i < len; i++)
                            p[i * s] += tmp[i];
                    }
                }
            }
        }
    }
}

enum { SA_COPY, SA_ADD };

/* dst (strides ds) = or += src (strides ss) over shape. */
static void strided_apply(int mode, int nd, const int64_t *shape, double *dst, const int64_t *ds,
                          const double *src, const int64_t *ss)
{
    if (shape_size(nd, shape) == 0)
        return;
    int64_t sh[MAXDIM], st[2][MAXDIM];
    for (int i = 0; i < nd; i++) {
        sh[i] = shape[i];
        st[0][i] = ds[i];
        st[1][i] = ss[i];
    }
    int n = nd;
    coalesce(&n, sh, 2, st);
    int64_t inner = sh[n - 1], di = st[0][n - 1], si = st[1][n - 1];
    int64_t outer = 1;
    for (int i = 0; i < n - 1; i++)
        outer *= sh[i];
    int64_t idx[MAXDIM] = {0}, doff = 0, soff = 0;
    for (int64_t o = 0; o < outer; o++) {
        double *dp = dst + doff;
        const double *sp = src + soff;
        if (mode == SA_COPY) {
            if (di == 1 && si == 1)
                memcpy(dp, sp, (size_t)inner * sizeof *dp);
            else
                for (int64_t i = 0; i < inner; i++)
                    dp[i * di] = sp[i * si];
        } else if (di == 0) {
            double acc = 0.0;
            for (int64_t i = 0; i < inner; i++)
                acc += sp[i * si];
            dp[0] += acc;
        } else {
            for (int64_t i = 0; i < inner; i++)
                dp[i * di] += sp[i * si];
        }
        for (int k = n - 2; k >= 0; k--) {
            if (++idx[k] < sh[k]) {
                doff += st[0][k];
                soff += st[1][k];
                break;
            }
            doff -= st[0][k] * (sh[k] - 1);
            soff -= st[1][k] * (sh[k] - 1);
            idx[k] = 0;
        }
    }
}

/* Outer, axis and inner extents of a contiguous array around `axis`. */
static void split_axis(const Node *n, int axis, int64_t *O, int64_t *L, int64_t *I)
{
    *O = 1;
    *I = 1;
    for (int i = 0; i < axis; i++)
        *O *= n->shape[i];
    for (int i = axis + 1; i < n->nd; i++)
        *I *= n->shape[i];
    *L = n->shape[axis];
}

static double *scratch_of(const Exec *x, int s, int reverse)
{
    return (double *)(x->arena + (reverse ? x->p->scratch_rev[s] : x->p->scratch_fwd[s]));
}

/* Sum of n values with eight partial sums (vectorisable, and more accurate
 * than one running sum). */
static double sum_n(const double *a, int64_t n)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += a[i + k];
    double r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++)
        r += a[i];
    return r;
}

static void reduce_fwd(const Node *n, const Node *a, const double *in, double *out, int64_t o0, int64_t o1)
{
    int64_t O, L, I;
    split_axis(a, n->axis, &O, &L, &I);
    for (int64_t o = o0; o < o1; o++) {
        const double *ip = in + o * L * I;
        double *op = out + o * I;
        if (n->op == TWINC_GOP_SUM && I == 1) {
            op[0] = sum_n(ip, L);
            continue;
        }
        double init = n->op == TWINC_GOP_PROD ? 1.0 : 0.0;
        if (n->op == TWINC_GOP_MAX || n->op == TWINC_GOP_MIN)
            memcpy(op, ip, (size_t)I * sizeof *op);
        else
            for (int64_t i = 0; i < I; i++)
                op[i] = init;
        int64_t l0 = (n->op == TWINC_GOP_MAX || n->op == TWINC_GOP_MIN) ? 1 : 0;
        for (int64_t l = l0; l < L; l++) {
            const double *row = ip + l * I;
            switch (n->op) {
            case TWINC_GOP_SUM: for (int64_t i = 0; i < I; i++) op[i] += row[i]; break;
            case TWINC_GOP_PROD: for (int64_t i = 0; i < I; i++) op[i] *= row[i]; break;
            case TWINC_GOP_MAX:
                for (int64_t i = 0; i < I; i++)
                    if (row[i] > op[i] || row[i] != row[i])
                        op[i] = op[i] != op[i] ? op[i] : row[i];
                break;
            case TWINC_GOP_MIN:
                for (int64_t i = 0; i < I; i++)
                    if (row[i] < op[i] || row[i] != row[i])
                        op[i] = op[i] != op[i] ? op[i] : row[i];
                break;
            default: break;
            }
        }
    }
}

static void reduce_rev(const Node *n, const Node *a, const double *in, const double *out,
                       const double *gout, double *gin, double *scratch, int64_t o0, int64_t o1)
{
    int64_t O, L, I;
    split_axis(a, n->axis, &O, &L, &I);
    for (int64_t o = o0; o < o1; o++) {
        const double *ip = in ? in + o * L * I : NULL;
        double *gp = gin + o * L * I;
        const double *go = gout + o * I;
        switch (n->op) {
        /* d sum = sum of d */
        case TWINC_GOP_SUM:
            for (int64_t l = 0; l < L; l++)
                for (int64_t i = 0; i < I; i++)
                    gp[l * I + i] += go[i];
            break;
        /* max/min: the adjoint shared equally by the elements equal to the result */
        case TWINC_GOP_MAX:
        case TWINC_GOP_MIN: {
            const double *yo = out + o * I;
            double *cnt = scratch;
            zero(cnt, I);
            for (int64_t l = 0; l < L; l++)
                for (int64_t i = 0; i < I; i++)
                    cnt[i] += ip[l * I + i] == yo[i];
            for (int64_t l = 0; l < L; l++)
                for (int64_t i = 0; i < I; i++)
                    if (ip[l * I + i] == yo[i])
                        gp[l * I + i] += go[i] / cnt[i];
            break;
        }
        /* d prod = sum_l prod_{k != l} a_k da_l, without dividing by zeros */
        case TWINC_GOP_PROD: {
            double *nz = scratch, *pnz = scratch + I;
            for (int64_t i = 0; i < I; i++) {
                nz[i] = 0.0;
                pnz[i] = 1.0;
            }
            for (int64_t l = 0; l < L; l++)
                for (int64_t i = 0; i < I; i++) {
                    double v = ip[l * I + i];
                    if (v == 0.0)
                        nz[i] += 1.0;
                    else
                        pnz[i] *= v;
                }
            for (int64_t l = 0; l < L; l++)
                for (int64_t i = 0; i < I; i++) {
                    double v = ip[l * I + i], d;
                    if (nz[i] == 0.0)
                        d = pnz[i] / v;
                    else if (nz[i] == 1.0 && v == 0.0)
                        d = pnz[i];
                    else
                        d = 0.0;
                    gp[l * I + i] += d * go[i];
                }
            break;
        }
        default:
            break;
        }
    }
}

/* Rows o0..o1 of a scan along the axis of extent L (I elements after it).
 * With I == 1 each row is a dependent chain: eight rows advance together so
 * the additions overlap instead of waiting on each other. */
static void scan_fwd(const Node *n, const double *in, double *out, int64_t o0, int64_t o1)
{
    int64_t O, L, I;
    split_axis(n, n->axis, &O, &L, &I);
    int sum = n->op == TWINC_GOP_CUMSUM;
    if (L == 0)
        return;
    int64_t o = o0;
    if (I == 1) {
        for (; o + 8 <= o1; o += 8) {
            const double *ip = in + o * L;
            double *op = out + o * L;
            double acc[8];
            for (int k = 0; k < 8; k++)
                acc[k] = op[k * L] = ip[k * L];
            for (int64_t l = 1; l < L; l++)
                for (int k = 0; k < 8; k++) {
                    acc[k] = sum ? acc[k] + ip[k * L + l] : acc[k] * ip[k * L + l];
                    op[k * L + l] = acc[k];
                }
        }
    }
    for (; o < o1; o++) {
        const double *ip = in + o * L * I;
        double *op = out + o * L * I;
        memcpy(op, ip, (size_t)I * sizeof *op);
        for (int64_t l = 1; l < L; l++) {
            const double *prev = op + (l - 1) * I, *row = ip + l * I;
            double *cur = op + l * I;
            if (sum)
                for (int64_t i = 0; i < I; i++)
                    cur[i] = prev[i] + row[i];
            else
                for (int64_t i = 0; i < I; i++)
                    cur[i] = prev[i] * row[i];
        }
    }
}

/* cumsum: a_l gets the sum of the adjoints of y_l..y_{L-1}.
 * cumprod: with R_l = g_l + a_{l+1} R_{l+1}, a_l gets y_{l-1} R_l (y_{-1} = 1),
 * which never divides by a value that may be zero.  r: I doubles of scratch. */
static void scan_rev(const Node *n, const double *in, const double *out, const double *gout,
                     double *gin, double *r, int64_t o0, int64_t o1)
{
    int64_t O, L, I;
    split_axis(n, n->axis, &O, &L, &I);
    int sum = n->op == TWINC_GOP_CUMSUM;
    int64_t o = o0;
    if (I == 1 && L > 0) {
        for (; o + 8 <= o1; o += 8) {
            const double *go = gout + o * L;
            double *gi = gin + o * L;
            double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (sum) {
                for (int64_t l = L - 1; l >= 0; l--)
                    for (int k = 0; k < 8; k++) {
                        acc[k] += go[k * L + l];
                        gi[k * L + l] += acc[k];
                    }
            } else {
                const double *ip = in + o * L, *yp = out + o * L;
                for (int64_t l = L - 1; l >= 0; l--)
                    for (int k = 0; k < 8; k++) {
                        acc[k] = go[k * L + l] + (l + 1 < L ? ip[k * L + l + 1] * acc[k] : 0.0);
                        gi[k * L + l] += (l > 0 ? yp[k * L + l - 1] : 1.0) * acc[k];
                    }
            }
        }
    }
    for (; o < o1; o++) {
        const double *go = gout + o * L * I;
        double *gi = gin + o * L * I;
        zero(r, I);
        for (int64_t l = L - 1; l >= 0; l--) {
            if (sum) {
                for (int64_t i = 0; i < I; i++) {
                    r[i] += go[l * I + i];
                    gi[l * I + i] += r[i];
                }
            } else {
                const double *ip = in + o * L * I, *yp = out + o * L * I;
                for (int64_t i = 0; i < I; i++) {
                    r[i] = go[l * I + i] + (l + 1 < L ? ip[(l + 1) * I + i] * r[i] : 0.0);
                    gi[l * I + i] += (l > 0 ? yp[(l - 1) * I + i] : 1.0) * r[i];
                }
            }
        }
    }
}

static void matmul_dims(const Node *n, const Node *a, const Node *b, int64_t *B, int64_t *M,
                        int64_t *K, int64_t *Nn)
{
    *B = 1;
    for (int i = 0; i < n->nd - 2; i++)
        *B *= n->shape[i];
    *M = a->shape[a->nd - 2];
    *K = a->shape[a->nd - 1];
    *Nn = b->shape[b->nd - 1];
}

static void matmul_fwd(int64_t B, int64_t M, int64_t K, int64_t N, const double *a, const double *b,
                       double *c)
{
    for (int64_t t = 0; t < B; t++) {
        const double *ap = a + t * M * K, *bp = b + t * K * N;
        double *cp = c + t * M * N;
        zero(cp, M * N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < K; k++) {
                double aik = ap[i * K + k];
                const double *brow = bp + k * N;
                double *crow = cp + i * N;
                for (int64_t j = 0; j < N; j++)
                    crow[j] += aik * brow[j];
            }
    }
}

/* dA += dC B^T, dB += A^T dC */
static void matmul_rev(int64_t B, int64_t M, int64_t K, int64_t N, const double *a, const double *b,
                       const double *gc, double *ga, double *gb)
{
    for (int64_t t = 0; t < B; t++) {
        const double *ap = a + t * M * K, *bp = b + t * K * N, *gp = gc + t * M * N;
        if (ga) {
            double *gap = ga + t * M * K;
            for (int64_t i = 0; i < M; i++)
                for (int64_t k = 0; k < K; k++) {
                    double s = 0.0;
                    for (int64_t j = 0; j < N; j++)
                        s += gp[i * N + j] * bp[k * N + j];
                    gap[i * K + k] += s;
                }
        }
        if (gb) {
            double *gbp = gb + t * K * N;
            for (int64_t i = 0; i < M; i++)
                for (int64_t k = 0; k < K; k++) {
                    double aik = ap[i * K + k];
                    for (int64_t j = 0; j < N; j++)
                        gbp[k * N + j] += aik * gp[i * N + j];
                }
        }
    }
}

/* np.interp: j with xp[j] <= x < xp[j+1]; fp[0] left of xp[0], fp[n-1] from xp[n-1] on. */
static int64_t interp_seg(const double *xp, int64_t n, double x)
{
    if (!(x >= xp[0]))
        return -1;
    if (x >= xp[n - 1])
        return n - 1;
    int64_t lo = 0, hi = n - 1; /* xp[lo] <= x < xp[hi] */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (xp[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static void interp_fwd(int64_t nx, const double *x, int64_t n, const double *xp, const double *fp,
                       double *y)
{
    for (int64_t i = 0; i < nx; i++) {
        int64_t j = interp_seg(xp, n, x[i]);
        if (x[i] != x[i])
            y[i] = x[i];
        else if (j < 0)
            y[i] = fp[0];
        else if (j == n - 1)
            y[i] = fp[n - 1];
        else {
            double s = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
            y[i] = s * (x[i] - xp[j]) + fp[j];
        }
    }
}

/* y = fp_j + s (x - xp_j), s = (fp_{j+1} - fp_j) / (xp_{j+1} - xp_j), t = (x - xp_j) / h:
 * dy = s dx + (1 - t) dfp_j + t dfp_{j+1} + s (t - 1) dxp_j - s t dxp_{j+1} */
static void interp_rev(int64_t nx, const double *x, int64_t n, const double *xp, const double *fp,
                       const double *gy, double *gx, double *gxp, double *gfp)
{
    for (int64_t i = 0; i < nx; i++) {
        int64_t j = interp_seg(xp, n, x[i]);
        double g = gy[i];
        if (x[i] != x[i])
            continue;
        if (j < 0) {
            if (gfp)
                gfp[0] += g;
        } else if (j == n - 1) {
            if (gfp)
                gfp[n - 1] += g;
        } else {
            double h = xp[j + 1] - xp[j];
            double s = (fp[j + 1] - fp[j]) / h, t = (x[i] - xp[j]) / h;
            if (gx)
                gx[i] += s * g;
            if (gfp) {
                gfp[j] += (1.0 - t) * g;
                gfp[j + 1] += t * g;
            }
            if (gxp) {
                gxp[j] += s * (t - 1.0) * g;
                gxp[j + 1] -= s * t * g;
            }
        }
    }
}

/* Integer parameter values, converted from the graph's doubles with a check. */
static int to_int(const twinc_kernel *k, const twinc_param *pp, double v, void *dst, char *err,
                  size_t errlen)
{
    double lo, hi;
    switch (pp->type) {
    case TWINC_T_INT: lo = INT_MIN; hi = INT_MAX; break;
    case TWINC_T_UINT: lo = 0; hi = UINT_MAX; break;
    case TWINC_T_LONG: lo = -9223372036854775808.0; hi = 9223372036854775807.0; break;
    default: lo = 0; hi = 18446744073709551615.0; break;
    }
    if (!(v == trunc(v)) || v < lo || v > hi) {
        set_err(err, errlen, "kernel '%s': parameter '%s' takes integers of its C type; got %.17g",
                k->name, pp->name, v);
        return TWINC_EINVAL;
    }
    switch (pp->type) {
    case TWINC_T_INT: *(int *)dst = (int)v; break;
    case TWINC_T_UINT: *(unsigned *)dst = (unsigned)v; break;
    case TWINC_T_LONG: *(long *)dst = v >= 9223372036854775807.0 ? LONG_MAX : (long)v; break;
    default: *(unsigned long *)dst = v >= 18446744073709551615.0 ? ULONG_MAX : (unsigned long)v; break;
    }
    return TWINC_OK;
}

typedef struct IntConv {
    const twinc_kernel *k;
    const twinc_param *pp;
    const double *src;
    char *dst;
    int esz;
    int status;
    char *err;
    size_t errlen;
} IntConv;

static void int_conv_fn(void *arg, int64_t k, int64_t pos)
{
    IntConv *c = arg;
    if (c->status == TWINC_OK)
        c->status = to_int(c->k, c->pp, c->src[pos], c->dst + k * c->esz, c->err, c->errlen);
}

static const ptrdiff_t zero_strides[MAXDIM];

static int kernel_run_lanes(const twinc_kernel *k, twinc_twin twin, int nd, const int64_t *shape,
                            const twinc_ndarg *val, const twinc_ndarg *dual, int64_t lane0,
                            int64_t lane1, twinc_scratch *ws, char *errbuf, size_t errlen);

/* mode 0: the primal twin (forward); 1: the adjoint twin in the reverse
 * replay (values not wanted, seeds from the outputs' adjoints); 2: the
 * adjoint twin of a fused kernel in the forward replay (values wanted, seeds
 * given by the caller). */
static int kernel_step(const Exec *x, const Step *st, int s, int mode, int64_t lane0, int64_t lane1)
{
    const Node *n = &x->g->nodes[st->node];
    const twinc_kernel *k = n->kernel;
    int np = k->nparams;
    twinc_ndarg *val = calloc((size_t)(np ? np : 1), sizeof *val);
    twinc_ndarg *dual = calloc((size_t)(np ? np : 1), sizeof *dual);
    ptrdiff_t(*strides)[MAXDIM] = calloc((size_t)(np ? np : 1), sizeof *strides);
    ptrdiff_t cstr[MAXDIM];
    int64_t cs64[MAXDIM];
    if (!val || !dual || !strides) {
        free(val);
        free(dual);
        free(strides);
        set_err(x->err, x->errlen, "kernel '%s': out of memory", k->name);
        return TWINC_ENOMEM;
    }
    contig_strides(n->nd, n->shape, cs64);
    for (int i = 0; i < n->nd; i++)
        cstr[i] = (ptrdiff_t)cs64[i];
    char *scratch = (char *)scratch_of(x, s, mode == 1);
    int adjoint = mode != 0;
    int status = TWINC_OK;
    int e = 0, o = 0;
    for (int p = 0; p < np && status == TWINC_OK; p++) {
        const twinc_param *pp = &k->params[p];
        if (pp->role == TWINC_ROLE_IN) {
            const Operand *op = &st->ext[e++];
            const Node *an = &x->g->nodes[op->node];
            for (int i = 0; i < n->nd; i++)
                strides[p][i] = (ptrdiff_t)op->strides[i];
            ptrdiff_t es = 0, len = 0;
            if (pp->length) {
                es = (ptrdiff_t)op->strides[n->nd];
                len = (ptrdiff_t)an->shape[an->nd - 1];
            }
            if (pp->type == TWINC_T_DOUBLE) {
                val[p] = (twinc_ndarg){vptr(x, op->node) + op->offset, strides[p], es, len};
            } else {
                /* integers: converted into scratch, one value or one per lane */
                int esz = elsize(pp->type);
                IntConv c = {k, pp, vptr(x, op->node) + op->offset, scratch, esz, TWINC_OK, x->err,
                             x->errlen};
                if (an->size == 1) {
                    int_conv_fn(&c, 0, 0);
                    val[p] = (twinc_ndarg){scratch, zero_strides, 0, 0};
                    scratch += round_up(8);
                } else {
                    region_walk(n->nd, n->shape, 0, op->strides, int_conv_fn, &c);
                    for (int i = 0; i < n->nd; i++)
                        strides[p][i] = cstr[i];
                    val[p] = (twinc_ndarg){scratch, strides[p], 0, 0};
                    scratch += round_up((size_t)n->size * 8);
                }
                status = c.status;
            }
            if (adjoint && pp->type == TWINC_T_DOUBLE && (pp->flags & TWINC_PARAM_ACTIVE) && an->adj)
                dual[p] = (twinc_ndarg){aptr(x, op->node) + op->offset, strides[p], es, len};
        } else {
            const Node *kn = &x->g->nodes[n->kouts[o]];
            int ko = n->kouts[o++];
            if (mode != 1)
                val[p] = (twinc_ndarg){vptr(x, ko), cstr, 0, 0};
            if (!adjoint || !(pp->flags & TWINC_PARAM_ACTIVE))
                continue;
            if (mode == 1 && kn->adj) {
                dual[p] = (twinc_ndarg){aptr(x, ko), cstr, 0, 0};
            } else if (mode == 2 && kn->seed_out >= 0 && x->seeds && x->seeds[kn->seed_out].p) {
                const twinc_arg *sd = &x->seeds[kn->seed_out];
                dual[p] = (twinc_ndarg){sd->p, sd->ls ? cstr : zero_strides, 0, 0};
            }
        }
    }
    if (status == TWINC_OK && lane0 >= 0)
        status = kernel_run_lanes(k, adjoint ? TWINC_TWIN_ADJOINT : TWINC_TWIN_PRIMAL, n->nd, n->shape,
                                  val, adjoint ? dual : NULL, lane0, lane1, &x->ctx->tws[x->tid],
                                  x->err, x->errlen);
    else if (status == TWINC_OK)
        status = twinc_kernel_run_nd(k, adjoint ? TWINC_TWIN_ADJOINT : TWINC_TWIN_PRIMAL, n->nd,
                                     n->shape, val, adjoint ? dual : NULL, &x->ctx->ws, x->err,
                                     x->errlen);
    free(val);
    free(dual);
    free(strides);
    return status;
}

static void *arena_alloc(size_t bytes);

/* ---- steps in parallel ----
 *
 * A step splits into parts (parts_for: a function of its size and the pool's
 * size only).  Parts that would add into the same adjoint element — a
 * broadcast operand's adjoint, summed over the dimensions it is broadcast
 * along — add into private copies instead, which are then added into the
 * real adjoint part by part, in order: the same sums in the same order
 * whatever ran in parallel. */

#define MAX_PRIVATE ((int64_t)1 << 23) /* doubles of private copies per step */

static double *ctx_private(Ctx *c, int64_t n)
{
    if ((size_t)n > c->npriv) {
        free(c->priv);
        c->priv = NULL;
        c->npriv = 0;
        if (!(c->priv = arena_alloc((size_t)n * sizeof(double))))
            return NULL;
        c->npriv = (size_t)n;
    }
    zero(c->priv, n);
    return c->priv;
}

/* The elements a write pattern (strides over shape) touches: those of the
 * dimensions it walks.  cstr: strides into a compact copy of them (0 where
 * the pattern does not move); returns their number. */
static int64_t footprint(int nd, const int64_t *shape, const int64_t *st, int64_t *cstr)
{
    int64_t f = 1;
    for (int d = nd - 1; d >= 0; d--) {
        cstr[d] = (st[d] != 0 && shape[d] > 1) ? f : 0;
        if (cstr[d])
            f *= shape[d];
    }
    return f;
}

static int has_broadcast(int nd, const int64_t *shape, const int64_t *st)
{
    for (int d = 0; d < nd; d++)
        if (st[d] == 0 && shape[d] > 1)
            return 1;
    return 0;
}

/* target (strides st over shape) += private copy (compact strides cstr) */
static void add_private(int nd, const int64_t *shape, double *target, const int64_t *st,
                        const double *priv, const int64_t *cstr)
{
    int64_t fs[MAXDIM], ts[MAXDIM], ps[MAXDIM];
    int fn = 0;
    for (int d = 0; d < nd; d++)
        if (cstr[d]) {
            fs[fn] = shape[d];
            ts[fn] = st[d];
            ps[fn] = cstr[d];
            fn++;
        }
    strided_apply(SA_ADD, fn, fs, target, ts, priv, ps);
}

typedef struct GroupJob {
    const Exec *x;
    const Step *st;
    int reverse;
    int64_t per;             /* blocks per part */
    double *priv;            /* parts x F private doubles, or NULL */
    int64_t F;
    int64_t *poff;           /* per operand: offset in a part's copy, -1 if none */
    int64_t (*cstr)[MAXDIM];
} GroupJob;

static void group_part(void *arg, int64_t part, int tid)
{
    const GroupJob *j = arg;
    int64_t i0 = part * j->per, i1 = i0 + j->per;
    if (i1 > j->st->items)
        i1 = j->st->items;          /* elements */
    double *regs = j->x->ctx->regs + (size_t)tid * j->x->g->nregs;
    double *over[3 * MAXMEMBERS];
    if (j->priv)
        for (int e = 0; e < j->st->next; e++)
            over[e] = j->poff[e] >= 0 ? j->priv + part * j->F + j->poff[e] : NULL;
    group_run(j->x, j->st, j->reverse, i0, i1, regs, j->priv ? over : NULL,
              (const int64_t(*)[MAXDIM])j->cstr);
}

static int group_exec(const Exec *x, const Step *st, int reverse)
{
    if (!st->items)
        return TWINC_OK;
    int64_t np = parts_for(st->items, 16 * BLK);
    GroupJob j = {x, st, reverse, (st->items + np - 1) / np, NULL, 0, NULL, NULL};
    j.per = (j.per + BLK - 1) / BLK * BLK;
    np = (st->items + j.per - 1) / j.per;
    int64_t poff[3 * MAXMEMBERS];
    int64_t(*cstr)[MAXDIM] = NULL;
    if (reverse && np > 1) {
        cstr = malloc((size_t)st->next * sizeof *cstr);
        int64_t F = 0;
        for (int e = 0; e < st->next; e++) {
            poff[e] = -1;
            const Operand *op = &st->ext[e];
            if (!cstr || !x->g->nodes[op->node].adj || !has_broadcast(st->nd, st->shape, op->strides))
                continue;
            poff[e] = F;
            F += footprint(st->nd, st->shape, op->strides, cstr[e]);
        }
        if (F > 0) {
            if (!cstr || np * F > MAX_PRIVATE || !(j.priv = ctx_private(x->ctx, np * F))) {
                np = 1; /* too much to copy: one part, in place */
                j.per = st->items;
                j.priv = NULL;
            }
            j.F = F;
            j.poff = poff;
            j.cstr = cstr;
        }
    }
    parallel_for(np, group_part, &j);
    if (j.priv)
        for (int e = 0; e < st->next; e++) {
            if (poff[e] < 0)
                continue;
            const Operand *op = &st->ext[e];
            double *target = aptr(x, op->node) + op->offset;
            for (int64_t p = 0; p < np; p++)
                add_private(st->nd, st->shape, target, op->strides, j.priv + p * j.F + poff[e], cstr[e]);
        }
    free(cstr);
    return TWINC_OK;
}

/* Reductions and scans: parts are ranges of the rows before the axis. */
typedef struct RowJob {
    const Exec *x;
    const Node *n, *a;
    int reverse;
    int64_t per;
    const double *in, *out, *gout;
    double *wout, *gin, *scratch;
    size_t scratch_tid;      /* doubles of scratch per thread */
} RowJob;

static void row_part(void *arg, int64_t part, int tid)
{
    const RowJob *j = arg;
    int64_t O, L, I;
    split_axis(j->a, j->n->axis, &O, &L, &I);
    int64_t o0 = part * j->per, o1 = o0 + j->per < O ? o0 + j->per : O;
    double *scr = j->scratch ? j->scratch + (size_t)tid * j->scratch_tid : NULL;
    switch (gops[j->n->op].kind) {
    case K_R:
        if (j->reverse)
            reduce_rev(j->n, j->a, j->in, j->out, j->gout, j->gin, scr, o0, o1);
        else
            reduce_fwd(j->n, j->a, j->in, j->wout, o0, o1);
        break;
    default:
        if (j->reverse)
            scan_rev(j->n, j->in, j->out, j->gout, j->gin, scr, o0, o1);
        else
            scan_fwd(j->n, j->in, j->wout, o0, o1);
        break;
    }
}

static void rows_exec(RowJob *j)
{
    int64_t O, L, I;
    split_axis(j->a, j->n->axis, &O, &L, &I);
    int64_t np = O > 0 ? parts_for(O * (L * I > 0 ? L * I : 1), 16384) : 1;
    if (np > O)
        np = O > 0 ? O : 1;
    j->per = O > 0 ? (O + np - 1) / np : 0;
    np = j->per ? (O + j->per - 1) / j->per : 1;
    if (O > 0)
        parallel_for(np, row_part, j);
}

static int step_fwd(const Exec *x, int s)
{
    const Step *st = &x->g->steps[s];
    if (st->kind == SK_GROUP)
        return group_exec(x, st, 0);
    const Node *nodes = x->g->nodes;
    const Node *n = &nodes[st->node];
    const Node *a = n->nin ? &nodes[n->in[0]] : NULL;
    double *out = n->op == TWINC_GOP_KERNEL ? NULL : vptr(x, st->node);
    switch (n->op) {
    case TWINC_GOP_VIEW: {
        int64_t cs[MAXDIM];
        contig_strides(n->nd, n->shape, cs);
        strided_apply(SA_COPY, n->nd, n->shape, out, cs, vptr(x, n->in[0]) + n->map->offset,
                      n->map->strides);
        break;
    }
    case TWINC_GOP_TAKE: {
        const double *in = vptr(x, n->in[0]);
        for (int64_t i = 0; i < n->size; i++)
            out[i] = in[n->map->index[i]];
        break;
    }
    case TWINC_GOP_SET: {
        const double *in = vptr(x, n->in[0]), *v = vptr(x, n->in[1]);
        const Node *nv = &nodes[n->in[1]];
        const Map *m = n->map;
        if (out != in && n->size)
            memcpy(out, in, (size_t)n->size * sizeof *out);
        int64_t vst[MAXDIM];
        broadcast_strides(nv->nd, nv->shape, m->nd, m->shape, vst);
        if (m->index) {
            double *buf = scratch_of(x, s, 0);
            int64_t cs[MAXDIM];
            contig_strides(m->nd, m->shape, cs);
            strided_apply(SA_COPY, m->nd, m->shape, buf, cs, v, vst);
            for (int64_t i = 0; i < m->size; i++)
                out[m->index[i]] = buf[i];
        } else {
            strided_apply(SA_COPY, m->nd, m->shape, out + m->offset, m->strides, v, vst);
        }
        break;
    }
    case TWINC_GOP_SUM:
    case TWINC_GOP_PROD:
    case TWINC_GOP_MAX:
    case TWINC_GOP_MIN:
    case TWINC_GOP_CUMSUM:
    case TWINC_GOP_CUMPROD: {
        RowJob j = {x, n, a, 0, 0, vptr(x, n->in[0]), NULL, NULL, out, NULL, NULL, 0};
        rows_exec(&j);
        break;
    }
    case TWINC_GOP_MATMUL: {
        int64_t B, M, K, N;
        matmul_dims(n, a, &nodes[n->in[1]], &B, &M, &K, &N);
        matmul_fwd(B, M, K, N, vptr(x, n->in[0]), vptr(x, n->in[1]), out);
        break;
    }
    case TWINC_GOP_CONCAT: {
        int64_t O, L, I, pos = 0;
        split_axis(n, n->axis, &O, &L, &I);
        for (int k = 0; k < n->nin; k++) {
            const Node *pk = &nodes[n->in[k]];
            int64_t Lk = pk->shape[n->axis];
            const double *src = vptr(x, n->in[k]);
            for (int64_t o = 0; o < O && Lk * I > 0; o++)
                memcpy(out + (o * L + pos) * I, src + o * Lk * I, (size_t)(Lk * I) * sizeof *out);
            pos += Lk;
        }
        break;
    }
    case TWINC_GOP_INTERP:
        interp_fwd(n->size, vptr(x, n->in[0]), nodes[n->in[1]].size, vptr(x, n->in[1]),
                   vptr(x, n->in[2]), out);
        break;
    case TWINC_GOP_KERNEL:
        return kernel_step(x, st, s, x->grad && st->fused ? 2 : 0, -1, -1);
    default:
        break;
    }
    return TWINC_OK;
}

static int step_rev(const Exec *x, int s)
{
    const Step *st = &x->g->steps[s];
    if (st->kind == SK_GROUP)
        return group_exec(x, st, 1);
    const Node *nodes = x->g->nodes;
    const Node *n = &nodes[st->node];
    if (n->op == TWINC_GOP_KERNEL)
        return kernel_step(x, st, s, 1, -1, -1);
    const Node *a = &nodes[n->in[0]];
    const double *gout = aptr(x, st->node);
    double *gin = a->adj ? aptr(x, n->in[0]) : NULL;
    switch (n->op) {
    case TWINC_GOP_VIEW:
        if (gin) {
            int64_t cs[MAXDIM];
            contig_strides(n->nd, n->shape, cs);
            strided_apply(SA_ADD, n->nd, n->shape, gin + n->map->offset, n->map->strides, gout, cs);
        }
        break;
    case TWINC_GOP_TAKE:
        if (gin)
            for (int64_t i = 0; i < n->size; i++)
                gin[n->map->index[i]] += gout[i];
        break;
    case TWINC_GOP_SET: {
        const Map *m = n->map;
        const Node *nv = &nodes[n->in[1]];
        double *buf = scratch_of(x, s, 1);
        int64_t cs[MAXDIM], vst[MAXDIM];
        contig_strides(m->nd, m->shape, cs);
        broadcast_strides(nv->nd, nv->shape, m->nd, m->shape, vst);
        /* the region's adjoint, gathered */
        if (m->index)
            for (int64_t i = 0; i < m->size; i++)
                buf[i] = gout[m->index[i]];
        else
            strided_apply(SA_COPY, m->nd, m->shape, buf, cs, gout + m->offset, m->strides);
        if (nv->adj)
            strided_apply(SA_ADD, m->nd, m->shape, aptr(x, n->in[1]), vst, buf, cs);
        if (gin) {
            /* everything but the region: add all, then put the region's old adjoint back */
            double *save = buf + m->size;
            if (m->index)
                for (int64_t i = 0; i < m->size; i++)
                    save[i] = gin[m->index[i]];
            else
                strided_apply(SA_COPY, m->nd, m->shape, save, cs, gin + m->offset, m->strides);
            for (int64_t i = 0; i < n->size; i++)
                gin[i] += gout[i];
            if (m->index)
                for (int64_t i = 0; i < m->size; i++)
                    gin[m->index[i]] = save[i];
            else
                strided_apply(SA_COPY, m->nd, m->shape, gin + m->offset, m->strides, save, cs);
        }
        break;
    }
    case TWINC_GOP_SUM:
    case TWINC_GOP_PROD:
    case TWINC_GOP_MAX:
    case TWINC_GOP_MIN:
    case TWINC_GOP_CUMSUM:
    case TWINC_GOP_CUMPROD:
        if (gin) {
            int keep = n->op != TWINC_GOP_SUM && n->op != TWINC_GOP_CUMSUM;
            RowJob j = {x, n, a, 1, 0, keep ? vptr(x, n->in[0]) : NULL, keep ? vptr(x, st->node) : NULL,
                        gout, NULL, gin, scratch_of(x, s, 1), x->g->steps[s].scratch_rev / 8 / (size_t)pool_threads()};
            rows_exec(&j);
        }
        break;
    case TWINC_GOP_MATMUL: {
        int64_t B, M, K, N;
        const Node *b = &nodes[n->in[1]];
        matmul_dims(n, a, b, &B, &M, &K, &N);
        matmul_rev(B, M, K, N, vptr(x, n->in[0]), vptr(x, n->in[1]), gout, gin,
                   b->adj ? aptr(x, n->in[1]) : NULL);
        break;
    }
    case TWINC_GOP_CONCAT: {
        int64_t O, L, I, pos = 0;
        split_axis(n, n->axis, &O, &L, &I);
        for (int k = 0; k < n->nin; k++) {
            const Node *pk = &nodes[n->in[k]];
            int64_t Lk = pk->shape[n->axis];
            if (pk->adj) {
                double *g = aptr(x, n->in[k]);
                for (int64_t o = 0; o < O; o++)
                    for (int64_t i = 0; i < Lk * I; i++)
                        g[o * Lk * I + i] += gout[(o * L + pos) * I + i];
            }
            pos += Lk;
        }
        break;
    }
    case TWINC_GOP_INTERP: {
        const Node *nxp = &nodes[n->in[1]], *nfp = &nodes[n->in[2]];
        interp_rev(n->size, vptr(x, n->in[0]), nxp->size, vptr(x, n->in[1]), vptr(x, n->in[2]), gout,
                   gin, nxp->adj ? aptr(x, n->in[1]) : NULL, nfp->adj ? aptr(x, n->in[2]) : NULL);
        break;
    }
    default:
        break;
    }
    return TWINC_OK;
}

/* ---- regions, tile by tile ---- */

/* Rows p0..p1 of step s of the executing region (x->rid): forward, or the
 * reverse of the step (its values recomputed into the tile beforehand). */
static int step_tile(const Exec *x, int s, int64_t p0, int64_t p1, int reverse)
{
    const Step *st = &x->g->steps[s];
    const Region *R = &x->g->regions[x->rid];
    const Node *nodes = x->g->nodes;
    if (st->kind == SK_GROUP) {
        int64_t rows = nodes[st->mem[0]].size / R->P;
        group_run(x, st, reverse, p0 * rows, p1 * rows, x->ctx->regs + (size_t)x->tid * x->g->nregs,
                  NULL, NULL);
        return TWINC_OK;
    }
    const Node *n = &nodes[st->node];
    if (n->op == TWINC_GOP_KERNEL) {
        int64_t rows = n->size / R->P;
        return kernel_step(x, st, s, reverse, p0 * rows, p1 * rows);
    }
    const Node *a = &nodes[n->in[0]];
    int64_t O, L, I;
    split_axis(a, n->axis, &O, &L, &I);
    int64_t o0 = p0 * (O / R->P), o1 = p1 * (O / R->P);
    if (!reverse) {
        if (gops[n->op].kind == K_R)
            reduce_fwd(n, a, vptr(x, n->in[0]), vptr(x, st->node), o0, o1);
        else
            scan_fwd(n, vptr(x, n->in[0]), vptr(x, st->node), o0, o1);
        return TWINC_OK;
    }
    if (!a->adj)
        return TWINC_OK;
    double *scr = scratch_of(x, s, 1) + (size_t)x->tid * (st->scratch_rev / 8 / (size_t)pool_threads());
    int keep = n->op != TWINC_GOP_SUM && n->op != TWINC_GOP_CUMSUM;
    const double *in = keep ? vptr(x, n->in[0]) : NULL, *out = keep ? vptr(x, st->node) : NULL;
    if (gops[n->op].kind == K_R)
        reduce_rev(n, a, in, out, aptr(x, st->node), aptr(x, n->in[0]), scr, o0, o1);
    else
        scan_rev(n, in, out, aptr(x, st->node), aptr(x, n->in[0]), scr, o0, o1);
    return TWINC_OK;
}

typedef struct RegionJob {
    const Exec *x;
    int rid, reverse;
    int64_t ntiles, per;     /* tiles per part */
    double *priv;
    int *status;
    char *errs;              /* per part: its error message */
} RegionJob;

#define PART_ERR 512

static void region_part(void *arg, int64_t part, int tid)
{
    const RegionJob *j = arg;
    const Region *R = &j->x->g->regions[j->rid];
    Exec xc = *j->x;
    xc.rid = j->rid;
    xc.tid = tid;
    xc.tile = j->x->ctx->tiles + (size_t)tid * j->x->g->tile_bytes;
    xc.privbase = j->priv ? j->priv + part * R->privsize : NULL;
    xc.err = j->errs + part * PART_ERR;
    xc.errlen = PART_ERR;
    int64_t t0 = part * j->per, t1 = t0 + j->per < j->ntiles ? t0 + j->per : j->ntiles;
    for (int64_t t = t0; t < t1; t++) {
        int64_t p0 = t * R->tile, p1 = p0 + R->tile < R->P ? p0 + R->tile : R->P;
        int rc = TWINC_OK;
        xc.p0 = p0;
        xc.rmode = j->reverse;
        for (int s = R->a; s <= R->b && rc == TWINC_OK; s++)
            rc = step_tile(&xc, s, p0, p1, 0);
        if (j->reverse && rc == TWINC_OK) {
            zero((double *)xc.tile + R->rev_vals * R->tile, (R->rev_row - R->rev_vals) * R->tile);
            for (int s = R->b; s >= R->a && rc == TWINC_OK; s--)
                if (j->x->g->steps[s].rev)
                    rc = step_tile(&xc, s, p0, p1, 1);
        }
        if (rc != TWINC_OK) {
            j->status[part] = rc;
            return;
        }
    }
}

static int region_exec(const Exec *x, int rid, int reverse)
{
    const Region *R = &x->g->regions[rid];
    RegionJob j = {x, rid, reverse, (R->P + R->tile - 1) / R->tile, 0, NULL, NULL, NULL};
    int64_t np = parts_for(j.ntiles, 1);
    j.per = (j.ntiles + np - 1) / np;
    np = (j.ntiles + j.per - 1) / j.per;
    if (reverse && R->npriv && np > 1 && !(j.priv = ctx_private(x->ctx, np * R->privsize))) {
        np = 1;
        j.per = j.ntiles;
    }
    j.status = calloc((size_t)np, sizeof *j.status);
    j.errs = calloc((size_t)np, PART_ERR);
    int rc = TWINC_OK;
    if (!j.status || !j.errs) {
        set_err(x->err, x->errlen, "out of memory");
        rc = TWINC_ENOMEM;
        goto done;
    }
    parallel_for(np, region_part, &j);
    for (int64_t p = 0; p < np; p++)
        if (j.status[p] != TWINC_OK) {
            set_err(x->err, x->errlen, "%s", j.errs + p * PART_ERR);
            rc = j.status[p];
            goto done;
        }
    if (j.priv)
        for (int k = 0; k < R->npriv; k++) {
            double *target = aptr(x, R->priv[k]);
            int64_t size = x->g->nodes[R->priv[k]].size;
            for (int64_t p = 0; p < np; p++) {
                const double *src = j.priv + p * R->privsize + R->privoff[k];
                for (int64_t i = 0; i < size; i++)
                    target[i] += src[i];
            }
        }
done:
    free(j.status);
    free(j.errs);
    return rc;
}

/* ---- execution contexts ---- */

static void *arena_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, bytes ? bytes : ALIGN) != 0)
        return NULL;
    return p;
}

static Ctx *ctx_acquire(twinc_graph *g, int grad, char *err, size_t errlen)
{
    pthread_mutex_lock(&g->lock);
    Ctx *c = g->free_ctx;
    if (c)
        g->free_ctx = c->next;
    pthread_mutex_unlock(&g->lock);
    if (!c && !(c = calloc(1, sizeof *c)))
        goto oom;
    size_t need = grad ? g->pg.arena : g->pf.arena;
    char **ar = grad ? &c->arena_g : &c->arena_f;
    if (!*ar && !(*ar = arena_alloc(need)))
        goto oom;
    if (g->nregs && !c->regs && !(c->regs = arena_alloc((size_t)pool_threads() * g->nregs * sizeof(double))))
        goto oom;
    if (g->nregions && !c->tiles && !(c->tiles = arena_alloc((size_t)pool_threads() * g->tile_bytes)))
        goto oom;
    if (g->nregions && !c->tws && !(c->tws = calloc((size_t)pool_threads(), sizeof *c->tws)))
        goto oom;
    return c;
oom:
    set_err(err, errlen, "out of memory: this replay needs %zu bytes of buffers",
            (grad ? g->pg.arena : g->pf.arena) + g->nregs * sizeof(double));
    if (c) {
        pthread_mutex_lock(&g->lock);
        c->next = g->free_ctx;
        g->free_ctx = c;
        pthread_mutex_unlock(&g->lock);
    }
    return NULL;
}

static void ctx_release(twinc_graph *g, Ctx *c)
{
    pthread_mutex_lock(&g->lock);
    c->next = g->free_ctx;
    g->free_ctx = c;
    pthread_mutex_unlock(&g->lock);
}

void twinc_graph_trim(twinc_graph *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    Ctx *c = g->free_ctx;
    g->free_ctx = NULL;
    pthread_mutex_unlock(&g->lock);
    while (c) {
        Ctx *next = c->next;
        ctx_free(c);
        c = next;
    }
}

static int replay_check(twinc_graph *g, const double *const *inputs, double *const *outputs,
                        char *err, size_t errlen)
{
    if (!g || !g->compiled) {
        set_err(err, errlen, "the graph is not compiled");
        return TWINC_EINVAL;
    }
    if ((g->ninputs && !inputs) || (g->nout && !outputs)) {
        set_err(err, errlen, "replay: no input or output buffers");
        return TWINC_EINVAL;
    }
    for (int i = 0; i < g->ninputs; i++)
        if (!inputs[i] && g->nodes[g->inputs[i]].size) {
            set_err(err, errlen, "replay: input %d has no data", i);
            return TWINC_EINVAL;
        }
    for (int j = 0; j < g->nout; j++)
        if (!outputs[j] && g->nodes[g->outputs[j]].size) {
            set_err(err, errlen, "replay: output %d has no buffer", j);
            return TWINC_EINVAL;
        }
    return TWINC_OK;
}

static void zero_list(const Exec *x, int t);

static int run_forward(const Exec *x)
{
    twinc_graph *g = x->g;
    for (int s = 0; s < g->nsteps; s++) {
        if (x->grad)
            zero_list(x, s); /* adjoints fused kernels add into */
        const Step *st = &g->steps[s];
        int rc;
        if (st->region >= 0 && s != g->regions[st->region].a)
            continue; /* ran with its region */
        rc = st->region >= 0 ? region_exec(x, st->region, 0) : step_fwd(x, s);
        if (rc != TWINC_OK)
            return rc;
    }
    for (int j = 0; j < g->nout; j++) {
        int64_t size = g->nodes[g->outputs[j]].size;
        if (g->out_copy[j] && size) {
            const double *src = vptr(x, g->outputs[j]);
            if (src != x->outputs[j])
                memcpy(x->outputs[j], src, (size_t)size * sizeof(double));
        }
    }
    return TWINC_OK;
}

int twinc_graph_forward(twinc_graph *g, const double *const *inputs, double *const *outputs,
                        char *errbuf, size_t errlen)
{
    int rc = replay_check(g, inputs, outputs, errbuf, errlen);
    if (rc != TWINC_OK)
        return rc;
    Ctx *c = ctx_acquire(g, 0, errbuf, errlen);
    if (!c)
        return TWINC_ENOMEM;
    Exec x = {g, &g->pf, c->arena_f, inputs, outputs, c, errbuf, errlen, 0, NULL, -1, 0, 0, NULL, 0, NULL};
    rc = run_forward(&x);
    ctx_release(g, c);
    return rc;
}

static void zero_list(const Exec *x, int t)
{
    const Plan *p = x->p;
    for (int i = 0; i < p->zero_at_len[t]; i++) {
        int v = p->zero_at[t][i];
        zero(aptr(x, v), x->g->nodes[v].size);
    }
}

int twinc_graph_gradient(twinc_graph *g, const double *const *inputs, double *const *outputs,
                         const twinc_arg *seeds, double *const *grads, char *errbuf, size_t errlen)
{
    int rc = replay_check(g, inputs, outputs, errbuf, errlen);
    if (rc != TWINC_OK)
        return rc;
    Ctx *c = ctx_acquire(g, 1, errbuf, errlen);
    if (!c)
        return TWINC_ENOMEM;
    Exec x = {g, &g->pg, c->arena_g, inputs, outputs, c, errbuf, errlen, 1, seeds, -1, 0, 0, NULL, 0, NULL};
    rc = run_forward(&x);
    if (rc != TWINC_OK)
        goto out;
    int S = g->nsteps;
    zero_list(&x, S);
    for (int j = 0; j < g->nout && seeds; j++) {
        const Node *n = &g->nodes[g->outputs[j]];
        if (!g->seeded[j] || !n->adj || !seeds[j].p || n->seed_out >= 0)
            continue;
        double *a = aptr(&x, g->outputs[j]);
        const double *sp = seeds[j].p;
        if (seeds[j].ls == 0)
            for (int64_t i = 0; i < n->size; i++)
                a[i] += sp[0];
        else
            for (int64_t i = 0; i < n->size; i++)
                a[i] += sp[i];
    }
    for (int t = S; t < 2 * S; t++) {
        if (t > S)
            zero_list(&x, t);
        int s = 2 * S - 1 - t;
        const Step *st = &g->steps[s];
        if (st->region >= 0) {
            const Region *R = &g->regions[st->region];
            if (s == R->b && R->rev && (rc = region_exec(&x, st->region, 1)) != TWINC_OK)
                goto out;
            continue;
        }
        if (st->rev && (rc = step_rev(&x, s)) != TWINC_OK)
            goto out;
    }
    if (S > 0)
        zero_list(&x, 2 * S);
    for (int i = 0; i < g->ninputs && grads; i++) {
        const Node *n = &g->nodes[g->inputs[i]];
        if (!n->diff || !grads[i] || !n->size)
            continue;
        if (n->adj)
            memcpy(grads[i], aptr(&x, g->inputs[i]), (size_t)n->size * sizeof(double));
        else
            zero(grads[i], n->size);
    }
out:
    ctx_release(g, c);
    return rc;
}

/* ---- one kernel over an n-d lane space ---- */

void twinc_scratch_free(twinc_scratch *s)
{
    if (!s)
        return;
    free(s->base);
    s->base = NULL;
    s->bytes = 0;
}

static const char *twin_name(twinc_twin t)
{
    return t == TWINC_TWIN_PRIMAL ? "primal" : t == TWINC_TWIN_TANGENT ? "tangent" : "adjoint";
}

#define LACC 256 /* lanes per call when lanes share an adjoint accumulator */

/* One pointer argument of a kernel call over the merged lane dimensions. */
typedef struct KArg {
    int p, w;                /* registry parameter; 0 its value, 1 its dual */
    int esz;                 /* bytes per element */
    char *base;
    int64_t st[MAXDIM];      /* lane strides, elements */
    ptrdiff_t es, len;       /* arrays: element stride, elements available */
    int64_t poff;            /* private copy: offset in a part's block, -1 none */
    int discard;             /* a result nobody wants: lane slots of scratch, dropped */
    int64_t cst[MAXDIM];     /* compact lane strides into the copy */
    int64_t F;               /* lanes of the copy (its element stride) */
} KArg;

typedef struct KJob {
    const twinc_kernel *k;
    twinc_twin twin;
    int np, na;
    KArg *a;
    int nd;
    int64_t sh[MAXDIM];
    int64_t inner, lanes, per, lane0;
    double *priv;            /* parts x F doubles */
    int64_t F;
    twinc_scratch *ws;       /* per thread */
    twinc_arg *args;         /* per thread: 2 np */
    double *lacc;            /* per thread: na x LACC lane accumulators */
    int chained;             /* some adjoint accumulator is shared by the lanes of a call */
    int *status;             /* per part */
    int64_t *bad;            /* per part: lane, parameter, need, available of a length error */
} KJob;

static void kernel_part(void *arg, int64_t part, int tid)
{
    KJob *j = arg;
    const twinc_kernel *k = j->k;
    int np = j->np;
    twinc_arg *v = j->args + (size_t)tid * 2 * (size_t)np, *d = v + np;
    int64_t a = j->lane0 + part * j->per, b = a + j->per < j->lanes ? a + j->per : j->lanes;
    memset(v, 0, 2 * (size_t)np * sizeof *v);
    double *lacc = j->lacc ? j->lacc + (size_t)tid * (size_t)j->na * LACC : NULL;
    for (int64_t lane = a; lane < b;) {
        int64_t row = lane / j->inner, j0 = lane % j->inner;
        int64_t cnt = j->inner - j0 < b - lane ? j->inner - j0 : b - lane;
        if (lacc && cnt > LACC)
            cnt = LACC;
        int64_t idx[MAXDIM];
        for (int dd = j->nd - 2; dd >= 0; dd--) {
            idx[dd] = row % j->sh[dd];
            row /= j->sh[dd];
        }
        for (int i = 0; i < j->na; i++) {
            const KArg *ka = &j->a[i];
            twinc_arg *t = ka->w ? &d[ka->p] : &v[ka->p];
            const int64_t *st = ka->poff >= 0 ? ka->cst : ka->st;
            int64_t off = j0 * st[j->nd - 1];
            for (int dd = 0; dd < j->nd - 1; dd++)
                off += idx[dd] * st[dd];
            if (ka->poff >= 0) {
                t->p = j->priv + part * j->F + ka->poff + off;
                t->es = (ptrdiff_t)ka->F;
            } else {
                t->p = ka->base + off * ka->esz;
                t->es = ka->es;
            }
            t->ls = (ptrdiff_t)st[j->nd - 1];
        }
        /* arrays: every lane's length must fit the memory given */
        for (int i = 0; i < j->na; i++) {
            const KArg *ka = &j->a[i];
            const twinc_param *pp = &k->params[ka->p];
            if (ka->w || !pp->len)
                continue;
            for (int64_t l = 0; l < cnt; l++) {
                ptrdiff_t need = pp->len(v, (ptrdiff_t)l);
                if (need < 0 || need > ka->len) {
                    j->status[part] = TWINC_EINVAL;
                    j->bad[4 * part] = lane + l;
                    j->bad[4 * part + 1] = ka->p;
                    j->bad[4 * part + 2] = need;
                    j->bad[4 * part + 3] = ka->len;
                    return;
                }
            }
        }
        twinc_workspace w = {NULL, 0}, *wp = NULL;
        if (k->workspace) {
            twinc_scratch *ws = &j->ws[tid];
            size_t need = k->workspace((size_t)cnt, v);
            if (need > ws->bytes) {
                void *nb = realloc(ws->base, need);
                if (!nb) {
                    j->status[part] = TWINC_ENOMEM;
                    return;
                }
                ws->base = nb;
                ws->bytes = need;
            }
            w.base = ws->base;
            w.bytes = ws->bytes;
            wp = &w;
        }
        /* An accumulator every lane of the call adds into (lane stride 0)
         * makes the twin's lanes wait on each other through memory; give
         * each lane its own slot and sum them after the call instead. */
        double *target[2 * MAXMEMBERS];
        int nchain = 0;
        if (lacc)
            for (int i = 0; i < j->na && nchain < 2 * MAXMEMBERS; i++) {
                const KArg *ka = &j->a[i];
                twinc_arg *t = &d[ka->p];
                if (!ka->discard &&
                    (!ka->w || k->params[ka->p].role != TWINC_ROLE_IN || ka->len > 0 || t->ls != 0))
                    continue;
                target[nchain] = ka->discard ? NULL : t->p;
                t->p = lacc + (size_t)nchain * LACC;
                t->ls = 1;
                zero(t->p, cnt);
                nchain++;
            }
        int rc;
        switch (j->twin) {
        case TWINC_TWIN_PRIMAL: rc = k->primal((size_t)cnt, v, wp); break;
        case TWINC_TWIN_TANGENT: rc = k->tangent((size_t)cnt, v, d, wp); break;
        default: rc = k->adjoint((size_t)cnt, v, d, wp); break;
        }
        if (rc != TWINC_OK) {
            j->status[part] = rc;
            return;
        }
        for (int c = 0; c < nchain; c++)
            if (target[c])
                *target[c] += sum_n(lacc + (size_t)c * LACC, cnt);
        lane += cnt;
    }
}

/* Check the arguments of a call, merge its lane dimensions, and allocate
 * what the parts need.  nthreads: how many threads may run parts. */
static int kjob_init(KJob *j, const twinc_kernel *k, twinc_twin twin, int nd, const int64_t *shape,
                     const twinc_ndarg *val, const twinc_ndarg *dual, int nthreads, char *errbuf,
                     size_t errlen)
{
    memset(j, 0, sizeof *j);
    if (!k || !k->name || nd < 0 || nd > MAXDIM || (nd && !shape) || !val ||
        (twin != TWINC_TWIN_PRIMAL && !dual) || k->nparams < 0 || (k->nparams && !k->params)) {
        set_err(errbuf, errlen, "kernel call: bad arguments");
        return TWINC_EINVAL;
    }
    if ((twin == TWINC_TWIN_PRIMAL && !k->primal) || (twin == TWINC_TWIN_TANGENT && !k->tangent) ||
        (twin == TWINC_TWIN_ADJOINT && !k->adjoint)) {
        set_err(errbuf, errlen, "kernel '%s' has no %s twin", k->name, twin_name(twin));
        return TWINC_ENOENT;
    }
    int np = k->nparams;
    j->k = k;
    j->twin = twin;
    j->np = np;
    j->a = calloc((size_t)(2 * np + 1), sizeof *j->a);
    j->ws = calloc((size_t)nthreads, sizeof *j->ws);
    j->args = calloc((size_t)nthreads * (size_t)(2 * np + 1), sizeof *j->args);
    int64_t(*sts)[MAXDIM] = malloc((size_t)(2 * np + 1) * sizeof *sts);
    if (!j->a || !j->ws || !j->args || !sts) {
        free(sts);
        set_err(errbuf, errlen, "kernel '%s': out of memory", k->name);
        return TWINC_ENOMEM;
    }
    /* the pointer arguments, their strides merged over the lanes */
    for (int p = 0; p < np; p++)
        for (int w = 0; w < 2; w++) {
            const twinc_ndarg *src = w ? (dual ? &dual[p] : NULL) : &val[p];
            if (!src || !src->p)
                continue;
            KArg *ka = &j->a[j->na];
            ka->p = p;
            ka->w = w;
            ka->esz = (w || k->params[p].type == TWINC_T_DOUBLE) ? 8 : elsize(k->params[p].type);
            ka->base = src->p;
            ka->es = src->es;
            ka->len = src->len;
            ka->poff = -1;
            for (int i = 0; i < nd; i++)
                sts[j->na][i] = src->strides ? src->strides[i] : 0;
            j->na++;
        }
    /* Results nobody wants still get memory (some twins insist on a pointer):
     * scratch lane slots, dropped; seeds and directions nobody gives are 0. */
    static const double zero1[1] = {0.0};
    for (int p = 0; p < np && twin != TWINC_TWIN_PRIMAL; p++) {
        const twinc_param *pp = &k->params[p];
        if (pp->type != TWINC_T_DOUBLE || !(pp->flags & TWINC_PARAM_ACTIVE) || pp->length ||
            (dual[p].p) || pp->role == TWINC_ROLE_INOUT)
            continue;
        KArg *ka = &j->a[j->na];
        ka->p = p;
        ka->w = 1;
        ka->esz = 8;
        ka->poff = -1;
        int result = (twin == TWINC_TWIN_ADJOINT) == (pp->role == TWINC_ROLE_IN);
        ka->base = result ? NULL : (char *)(uintptr_t)zero1;
        ka->discard = result;
        for (int i = 0; i < nd; i++)
            sts[j->na][i] = 0;
        j->na++;
    }
    j->nd = nd;
    for (int i = 0; i < nd; i++)
        j->sh[i] = shape[i];
    coalesce(&j->nd, j->sh, j->na, sts);
    for (int i = 0; i < j->na; i++)
        memcpy(j->a[i].st, sts[i], sizeof j->a[i].st);
    free(sts);
    /* what must differ per lane, and what must not */
    for (int i = 0; i < j->na; i++) {
        const KArg *ka = &j->a[i];
        const twinc_param *pp = &k->params[ka->p];
        int bc = has_broadcast(j->nd, j->sh, ka->st);
        if (ka->discard || (ka->w && ka->base == (const char *)zero1))
            continue;
        if (!ka->w && (pp->flags & TWINC_PARAM_UNIFORM))
            for (int dd = 0; dd < j->nd; dd++)
                if (ka->st[dd] != 0 && j->sh[dd] > 1) {
                    set_err(errbuf, errlen,
                            "kernel '%s': parameter '%s' is uniform (one value for every lane) but "
                            "varies across lanes (%s)",
                            k->name, pp->name, twinc_strerror(TWINC_EUNIFORM));
                    return TWINC_EUNIFORM;
                }
        /* written lane by lane: output values; tangents of outputs; both duals
         * of in/out arrays (an adjoint's seed of an output is only read) */
        int perlane = pp->role != TWINC_ROLE_IN &&
                      (!ka->w || twin == TWINC_TWIN_TANGENT || pp->role == TWINC_ROLE_INOUT);
        if (perlane && bc) {
            set_err(errbuf, errlen, "kernel '%s': output '%s' needs its own memory in every lane (it is "
                    "given with lane stride 0)", k->name, pp->name);
            return TWINC_EINVAL;
        }
    }
    j->inner = j->sh[j->nd - 1];
    j->lanes = 1;
    for (int i = 0; i < j->nd; i++)
        j->lanes *= j->sh[i];
    for (int i = 0; i < j->na; i++)
        if (j->a[i].discard || (twin == TWINC_TWIN_ADJOINT && j->inner > 1 && j->a[i].w &&
                                k->params[j->a[i].p].role == TWINC_ROLE_IN && j->a[i].len <= 0 &&
                                j->a[i].st[j->nd - 1] == 0))
            j->chained = 1;
    {
        if (j->chained && !(j->lacc = malloc((size_t)nthreads * (size_t)j->na * LACC * sizeof(double))))
            j->chained = 0;
    }
    return TWINC_OK;
}

/* The first failing part's error, in errbuf. */
static int kjob_status(const KJob *j, int64_t nparts, char *errbuf, size_t errlen)
{
    const twinc_kernel *k = j->k;
    for (int64_t p = 0; p < nparts; p++) {
        if (j->status[p] == TWINC_OK)
            continue;
        if (j->bad[4 * p + 3] || j->bad[4 * p + 2]) {
            const twinc_param *pp = &k->params[j->bad[4 * p + 1]];
            set_err(errbuf, errlen,
                    "kernel '%s': array '%s' (length %s) needs %lld elements in lane %lld, but "
                    "only %lld were given",
                    k->name, pp->name, pp->length ? pp->length : "?", (long long)j->bad[4 * p + 2],
                    (long long)j->bad[4 * p], (long long)j->bad[4 * p + 3]);
        } else {
            set_err(errbuf, errlen, "kernel '%s' (%s:%d): the %s twin failed: %s", k->name,
                    k->file ? k->file : "?", k->line, twin_name(j->twin), twinc_strerror(j->status[p]));
        }
        return j->status[p];
    }
    return TWINC_OK;
}

static void kjob_free(KJob *j)
{
    free(j->ws);
    free(j->a);
    free(j->args);
    free(j->lacc);
    free(j->priv);
    free(j->status);
    free(j->bad);
}

/* Lanes lane0..lane1 (flat, row-major over the lane shape) on the calling
 * thread, with its workspace ws: a tile of a fused region. */
static int kernel_run_lanes(const twinc_kernel *k, twinc_twin twin, int nd, const int64_t *shape,
                            const twinc_ndarg *val, const twinc_ndarg *dual, int64_t lane0,
                            int64_t lane1, twinc_scratch *ws, char *errbuf, size_t errlen)
{
    KJob j;
    int status = kjob_init(&j, k, twin, nd, shape, val, dual, 1, errbuf, errlen);
    if (status == TWINC_OK && lane1 > lane0) {
        j.lane0 = lane0;
        j.per = lane1 - lane0;
        j.status = calloc(1, sizeof *j.status);
        j.bad = calloc(4, sizeof *j.bad);
        if (!j.status || !j.bad) {
            set_err(errbuf, errlen, "kernel '%s': out of memory", k->name);
            status = TWINC_ENOMEM;
        } else {
            j.ws[0] = *ws;
            kernel_part(&j, 0, 0);
            *ws = j.ws[0];
            status = kjob_status(&j, 1, errbuf, errlen);
        }
    }
    kjob_free(&j);
    return status;
}

int twinc_kernel_run_nd(const twinc_kernel *k, twinc_twin twin, int nd, const int64_t *shape,
                        const twinc_ndarg *val, const twinc_ndarg *dual, twinc_scratch *ws,
                        char *errbuf, size_t errlen)
{
    int nthreads = pool_threads();
    KJob j;
    int status = kjob_init(&j, k, twin, nd, shape, val, dual, nthreads, errbuf, errlen);
    if (status != TWINC_OK || j.lanes == 0)
        goto done;
    if (ws)
        j.ws[0] = *ws;
    int64_t nparts = parts_for(j.lanes, 1024);
    j.per = (j.lanes + nparts - 1) / nparts;
    nparts = (j.lanes + j.per - 1) / j.per;
    /* accumulators of broadcast inputs: a private copy per part */
    if (twin == TWINC_TWIN_ADJOINT && nparts > 1) {
        int64_t F = 0;
        for (int i = 0; i < j.na; i++) {
            KArg *ka = &j.a[i];
            if (!ka->w || ka->discard || k->params[ka->p].role != TWINC_ROLE_IN ||
                !has_broadcast(j.nd, j.sh, ka->st))
                continue;
            ka->F = footprint(j.nd, j.sh, ka->st, ka->cst);
            ka->poff = F;
            F += ka->F * (ka->len > 0 ? ka->len : 1);
        }
        if (F > 0) {
            if (nparts * F > MAX_PRIVATE || !(j.priv = calloc((size_t)(nparts * F), sizeof(double)))) {
                nparts = 1;
                j.per = j.lanes;
                for (int i = 0; i < j.na; i++)
                    j.a[i].poff = -1;
            }
            j.F = F;
        }
    }
    j.status = calloc((size_t)nparts, sizeof *j.status);
    j.bad = calloc((size_t)nparts * 4, sizeof *j.bad);
    if (!j.status || !j.bad) {
        status = TWINC_ENOMEM;
        set_err(errbuf, errlen, "kernel '%s': out of memory", k->name);
        goto done;
    }
    parallel_for(nparts, kernel_part, &j);
    if ((status = kjob_status(&j, nparts, errbuf, errlen)) != TWINC_OK)
        goto done;
    if (j.priv)
        for (int i = 0; i < j.na; i++) {
            const KArg *ka = &j.a[i];
            if (ka->poff < 0)
                continue;
            for (int64_t p = 0; p < nparts; p++)
                for (ptrdiff_t e = 0; e < (ka->len > 0 ? ka->len : 1); e++)
                    add_private(j.nd, j.sh, (double *)ka->base + e * ka->es, ka->st,
                                j.priv + p * j.F + ka->poff + e * ka->F, ka->cst);
        }
done:
    if (j.ws) {
        if (ws)
            *ws = j.ws[0];
        else
            twinc_scratch_free(&j.ws[0]);
        for (int t = 1; t < nthreads; t++)
            twinc_scratch_free(&j.ws[t]);
    }
    kjob_free(&j);
    return status;
}
