/*
 * graphobj.c — twinc._twinc.Graph: the Python face of runtime/twinc_graph.h.
 *
 * The Python layer (twinc/_trace.py) records a function into a Graph by
 * calling one method per NumPy operation (node ids are ints), compiles it
 * once, then replays it: forward(inputs) or gradient(inputs, seeds).
 *
 * Replays convert each input to contiguous float64 only when it is not
 * already (a Python float goes through a stack slot, no array), allocate the
 * outputs, and run the compiled graph.  When the work is large enough to be
 * worth it the GIL is released; other Python threads may then run, and could
 * write into an input array while the replay reads it.  The replay
 * fingerprints its inputs before and after and raises InputMutatedError if
 * they changed (Graph.check_inputs = False skips this).  While the GIL is
 * held no Python code can touch the inputs.
 *
 * MIT licence — see LICENSE.
 */
#include "pyt.h"

#define MAXDIM TWINC_GRAPH_MAXDIM
/* Replays smaller than this (elements of inputs, outputs and buffers) keep
 * the GIL: releasing it costs more than it gives. */
#define RELEASE_GIL_ELEMS 32768

typedef struct Graph {
    PyObject_HEAD
    twinc_graph *g;
    PyObject *keep;   /* kernels the graph calls (keeps their library loaded) */
    int compiled;
    int check_inputs;
    PyArray_Descr *f8;
} Graph;

static int graph_traverse(Graph *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->keep);
    return 0;
}

static int graph_clear(Graph *self)
{
    Py_CLEAR(self->keep);
    return 0;
}

static void graph_dealloc(Graph *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    graph_clear(self);
    Py_CLEAR(self->f8);
    twinc_graph_destroy(self->g);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *graph_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if ((args && PyTuple_GET_SIZE(args)) || (kwargs && PyDict_Size(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "Graph() takes no arguments");
        return NULL;
    }
    Graph *self = (Graph *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->g = twinc_graph_create();
    self->keep = PyList_New(0);
    self->check_inputs = 1;
    self->f8 = PyArray_DescrFromType(NPY_DOUBLE);
    if (!self->g || !self->keep) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

/* A builder result: the node id, or ValueError with the runtime's message. */
static PyObject *node_result(Graph *self, int id)
{
    if (id < 0) {
        PyErr_SetString(PyExc_ValueError, twinc_graph_error(self->g));
        return NULL;
    }
    return PyLong_FromLong(id);
}

static int parse_shape(PyObject *obj, int *nd, int64_t *shape, const char *what)
{
    PyObject *seq = PySequence_Fast(obj, what);
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAXDIM) {
        PyErr_Format(PyExc_ValueError, "%s: %zd dimensions (at most %d)", what, n, MAXDIM);
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        shape[i] = v;
    }
    *nd = (int)n;
    Py_DECREF(seq);
    return 0;
}

static PyObject *tuple_of_shape(int nd, const int64_t *shape)
{
    PyObject *t = PyTuple_New(nd);
    if (!t)
        return NULL;
    for (int i = 0; i < nd; i++) {
        PyObject *v = PyLong_FromLongLong(shape[i]);
        if (!v) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

/* ---- recording ---- */

static PyObject *g_input(Graph *self, PyObject *args)
{
    PyObject *shp;
    int diff = 0;
    int nd;
    int64_t shape[MAXDIM];
    if (!PyArg_ParseTuple(args, "O|p:input", &shp, &diff) || parse_shape(shp, &nd, shape, "input shape") < 0)
        return NULL;
    return node_result(self, twinc_graph_input(self->g, nd, shape, diff));
}

static PyObject *g_const(Graph *self, PyObject *obj)
{
    PyArrayObject *a = pyt_as_double(obj, "constant", NPY_ARRAY_IN_ARRAY);
    if (!a)
        return NULL;
    int64_t shape[MAXDIM];
    for (int i = 0; i < PyArray_NDIM(a); i++)
        shape[i] = PyArray_DIM(a, i);
    PyObject *r = node_result(self, twinc_graph_const(self->g, PyArray_NDIM(a), shape, PyArray_DATA(a)));
    Py_DECREF(a);
    return r;
}

static PyObject *g_scalar(Graph *self, PyObject *obj)
{
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred())
        return NULL;
    return node_result(self, twinc_graph_scalar(self->g, v));
}

static PyObject *g_unary(Graph *self, PyObject *args)
{
    int op, a;
    if (!PyArg_ParseTuple(args, "ii:unary", &op, &a))
        return NULL;
    return node_result(self, twinc_graph_unary(self->g, (twinc_gop)op, a));
}

static PyObject *g_binary(Graph *self, PyObject *args)
{
    int op, a, b;
    if (!PyArg_ParseTuple(args, "iii:binary", &op, &a, &b))
        return NULL;
    return node_result(self, twinc_graph_binary(self->g, (twinc_gop)op, a, b));
}

static PyObject *g_where(Graph *self, PyObject *args)
{
    int c, a, b;
    if (!PyArg_ParseTuple(args, "iii:where", &c, &a, &b))
        return NULL;
    return node_result(self, twinc_graph_where(self->g, c, a, b));
}

static PyObject *g_view(Graph *self, PyObject *args)
{
    int a, nd, nd2;
    long long off;
    PyObject *shp, *str;
    int64_t shape[MAXDIM], strides[MAXDIM];
    if (!PyArg_ParseTuple(args, "iOLO:view", &a, &shp, &off, &str) ||
        parse_shape(shp, &nd, shape, "view shape") < 0 || parse_shape(str, &nd2, strides, "view strides") < 0)
        return NULL;
    if (nd != nd2) {
        PyErr_SetString(PyExc_ValueError, "view: shape and strides differ in length");
        return NULL;
    }
    return node_result(self, twinc_graph_view(self->g, a, nd, shape, off, strides));
}

static PyArrayObject *as_index(PyObject *obj)
{
    return (PyArrayObject *)PyArray_FROMANY(obj, NPY_INT64, 0, 0, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
}

static PyObject *g_take(Graph *self, PyObject *args)
{
    int a;
    PyObject *idx;
    if (!PyArg_ParseTuple(args, "iO:take", &a, &idx))
        return NULL;
    PyArrayObject *ia = as_index(idx);
    if (!ia)
        return NULL;
    int64_t shape[MAXDIM];
    for (int i = 0; i < PyArray_NDIM(ia); i++)
        shape[i] = PyArray_DIM(ia, i);
    PyObject *r = node_result(self, twinc_graph_take(self->g, a, PyArray_NDIM(ia), shape, PyArray_DATA(ia)));
    Py_DECREF(ia);
    return r;
}

static PyObject *g_set(Graph *self, PyObject *args)
{
    int a, v, nd, nd2;
    long long off;
    PyObject *shp, *str;
    int64_t shape[MAXDIM], strides[MAXDIM];
    if (!PyArg_ParseTuple(args, "iiOLO:set", &a, &v, &shp, &off, &str) ||
        parse_shape(shp, &nd, shape, "region shape") < 0 || parse_shape(str, &nd2, strides, "region strides") < 0)
        return NULL;
    if (nd != nd2) {
        PyErr_SetString(PyExc_ValueError, "set: shape and strides differ in length");
        return NULL;
    }
    return node_result(self, twinc_graph_set(self->g, a, v, nd, shape, off, strides, NULL));
}

static PyObject *g_set_index(Graph *self, PyObject *args)
{
    int a, v;
    PyObject *idx;
    if (!PyArg_ParseTuple(args, "iiO:set_index", &a, &v, &idx))
        return NULL;
    PyArrayObject *ia = as_index(idx);
    if (!ia)
        return NULL;
    int64_t shape[MAXDIM];
    for (int i = 0; i < PyArray_NDIM(ia); i++)
        shape[i] = PyArray_DIM(ia, i);
    PyObject *r = node_result(self, twinc_graph_set(self->g, a, v, PyArray_NDIM(ia), shape, 0, NULL, PyArray_DATA(ia)));
    Py_DECREF(ia);
    return r;
}

static PyObject *g_reduce(Graph *self, PyObject *args)
{
    int op, a, axis;
    if (!PyArg_ParseTuple(args, "iii:reduce", &op, &a, &axis))
        return NULL;
    return node_result(self, twinc_graph_reduce(self->g, (twinc_gop)op, a, axis));
}

static PyObject *g_scan(Graph *self, PyObject *args)
{
    int op, a, axis;
    if (!PyArg_ParseTuple(args, "iii:scan", &op, &a, &axis))
        return NULL;
    return node_result(self, twinc_graph_scan(self->g, (twinc_gop)op, a, axis));
}

static PyObject *g_matmul(Graph *self, PyObject *args)
{
    int a, b;
    if (!PyArg_ParseTuple(args, "ii:matmul", &a, &b))
        return NULL;
    return node_result(self, twinc_graph_matmul(self->g, a, b));
}

static PyObject *g_concat(Graph *self, PyObject *args)
{
    PyObject *parts;
    int axis;
    if (!PyArg_ParseTuple(args, "Oi:concat", &parts, &axis))
        return NULL;
    PyObject *seq = PySequence_Fast(parts, "concat: a sequence of node ids");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int *ids = PyMem_Calloc((size_t)n + 1, sizeof *ids);
    PyObject *r = NULL;
    if (!ids) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        ids[i] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (ids[i] == -1 && PyErr_Occurred())
            goto done;
    }
    r = node_result(self, twinc_graph_concat(self->g, (int)n, ids, axis));
done:
    PyMem_Free(ids);
    Py_DECREF(seq);
    return r;
}

static PyObject *g_interp(Graph *self, PyObject *args)
{
    int x, xp, fp;
    if (!PyArg_ParseTuple(args, "iii:interp", &x, &xp, &fp))
        return NULL;
    return node_result(self, twinc_graph_interp(self->g, x, xp, fp));
}

/* kernel(k, args) -> tuple of output node ids: the return value first, then
 * the out-parameters (the order Kernel.__call__ returns them in). */
static PyObject *g_kernel(Graph *self, PyObject *args)
{
    State *st = pyt_state_of((PyObject *)self);
    PyObject *kobj, *ids;
    if (!PyArg_ParseTuple(args, "OO:kernel", &kobj, &ids))
        return NULL;
    const twinc_kernel *k = pyt_kernel_record(st, kobj);
    if (!k)
        return NULL;
    PyObject *seq = PySequence_Fast(ids, "kernel: a sequence of node ids");
    if (!seq)
        return NULL;
    int nin = 0, nout = 0, ret = -1;
    for (int p = 0; p < k->nparams; p++) {
        if (k->params[p].role == TWINC_ROLE_IN)
            nin++;
        else {
            if (k->params[p].role == TWINC_ROLE_RET)
                ret = nout;
            nout++;
        }
    }
    PyObject *r = NULL;
    int *in = PyMem_Calloc((size_t)nin + 1, sizeof *in), *outs = PyMem_Calloc((size_t)nout + 1, sizeof *outs);
    if (!in || !outs) {
        PyErr_NoMemory();
        goto done;
    }
    if (PySequence_Fast_GET_SIZE(seq) != nin) {
        PyErr_Format(PyExc_TypeError, "kernel %s takes %d inputs, got %zd", k->name, nin, PySequence_Fast_GET_SIZE(seq));
        goto done;
    }
    for (int i = 0; i < nin; i++) {
        in[i] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (in[i] == -1 && PyErr_Occurred())
            goto done;
    }
    if (twinc_graph_kernel(self->g, k, in, outs) < 0) {
        PyErr_SetString(PyExc_ValueError, twinc_graph_error(self->g));
        goto done;
    }
    if (PyList_Append(self->keep, kobj) < 0)
        goto done;
    r = PyTuple_New(nout);
    if (!r)
        goto done;
    for (int o = 0, pos = 0; o < nout; o++) {
        int slot = ret >= 0 ? (o == ret ? 0 : pos + 1) : o;
        if (o != ret)
            pos++;
        PyObject *v = PyLong_FromLong(outs[o]);
        if (!v) {
            Py_CLEAR(r);
            goto done;
        }
        PyTuple_SET_ITEM(r, slot, v);
    }
done:
    PyMem_Free(in);
    PyMem_Free(outs);
    Py_DECREF(seq);
    return r;
}

static PyObject *g_shape(Graph *self, PyObject *arg)
{
    long id = PyLong_AsLong(arg);
    if (id == -1 && PyErr_Occurred())
        return NULL;
    const int64_t *shape = twinc_graph_shape(self->g, (int)id);
    if (!shape) {
        PyErr_Format(PyExc_ValueError, "no node %ld", id);
        return NULL;
    }
    return tuple_of_shape(twinc_graph_ndim(self->g, (int)id), shape);
}

/* ---- compile ---- */

static PyObject *g_compile(Graph *self, PyObject *args)
{
    PyObject *outs, *seeded = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:compile", &outs, &seeded))
        return NULL;
    PyObject *so = PySequence_Fast(outs, "compile: a sequence of output node ids");
    PyObject *ss = seeded == Py_None ? NULL : PySequence_Fast(seeded, "compile: a sequence of flags");
    PyObject *r = NULL;
    int *ids = NULL;
    unsigned char *flags = NULL;
    if (!so || (seeded != Py_None && !ss))
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(so);
    if (ss && PySequence_Fast_GET_SIZE(ss) != n) {
        PyErr_SetString(PyExc_ValueError, "compile: one seed flag per output");
        goto done;
    }
    ids = PyMem_Calloc((size_t)n + 1, sizeof *ids);
    flags = PyMem_Calloc((size_t)n + 1, 1);
    if (!ids || !flags) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        ids[j] = (int)PyLong_AsLong(PySequence_Fast_GET_ITEM(so, j));
        if (ids[j] == -1 && PyErr_Occurred())
            goto done;
        if (ss) {
            int t = PyObject_IsTrue(PySequence_Fast_GET_ITEM(ss, j));
            if (t < 0)
                goto done;
            flags[j] = (unsigned char)t;
        }
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = twinc_graph_compile(self->g, (int)n, ids, flags);
    Py_END_ALLOW_THREADS
    if (rc != TWINC_OK) {
        pyt_raise_status(pyt_state_of((PyObject *)self), rc, twinc_graph_error(self->g));
        goto done;
    }
    self->compiled = 1;
    r = Py_None;
    Py_INCREF(r);
done:
    Py_XDECREF(so);
    Py_XDECREF(ss);
    PyMem_Free(ids);
    PyMem_Free(flags);
    return r;
}

/* ---- replay ---- */

typedef struct Replay {
    int nin, nout, ndiff;
    PyObject **hold;          /* per input: the array we read (or NULL) */
    const double **in;
    double *slots;            /* per input/seed: a Python float's value */
    PyArrayObject **out;
    double **outp;
    PyArrayObject **grad;     /* per input (differentiable ones only) */
    double **gradp;
    PyArrayObject **seed;
    twinc_arg *seeds;
    uint64_t *fp;
} Replay;

static void replay_free(Replay *r)
{
    for (int i = 0; r->hold && i < r->nin; i++)
        Py_XDECREF(r->hold[i]);
    for (int j = 0; r->out && j < r->nout; j++)
        Py_XDECREF(r->out[j]);
    for (int j = 0; r->seed && j < r->nout; j++)
        Py_XDECREF(r->seed[j]);
    for (int i = 0; r->grad && i < r->nin; i++)
        Py_XDECREF(r->grad[i]);
    PyMem_Free(r->hold);
    PyMem_Free(r->in);
    PyMem_Free(r->slots);
    PyMem_Free(r->out);
    PyMem_Free(r->outp);
    PyMem_Free(r->grad);
    PyMem_Free(r->gradp);
    PyMem_Free(r->seed);
    PyMem_Free(r->seeds);
    PyMem_Free(r->fp);
}

static int same_shape(PyArrayObject *a, int nd, const int64_t *shape)
{
    if (PyArray_NDIM(a) != nd)
        return 0;
    for (int i = 0; i < nd; i++)
        if (PyArray_DIM(a, i) != shape[i])
            return 0;
    return 1;
}

static PyObject *shape_repr(int nd, const int64_t *shape)
{
    PyObject *t = tuple_of_shape(nd, shape);
    PyObject *s = t ? PyObject_Repr(t) : NULL;
    Py_XDECREF(t);
    return s;
}

/* Input i: a contiguous float64 pointer of the recorded shape. */
static int bind_input(Graph *self, Replay *r, int i, PyObject *obj)
{
    int node = twinc_graph_input_node(self->g, i);
    int nd = twinc_graph_ndim(self->g, node);
    const int64_t *shape = twinc_graph_shape(self->g, node);
    if (nd == 0 && PyFloat_CheckExact(obj)) {
        r->slots[i] = PyFloat_AS_DOUBLE(obj);
        r->in[i] = &r->slots[i];
        return 0;
    }
    PyArrayObject *a;
    if (PyArray_CheckExact(obj) && PyArray_TYPE((PyArrayObject *)obj) == NPY_DOUBLE &&
        PyArray_ISCARRAY_RO((PyArrayObject *)obj) && PyArray_ISNOTSWAPPED((PyArrayObject *)obj)) {
        a = (PyArrayObject *)obj;
        Py_INCREF(a);
    } else {
        char what[64];
        snprintf(what, sizeof what, "input %d", i);
        if (!(a = pyt_as_double(obj, what, NPY_ARRAY_IN_ARRAY)))
            return -1;
    }
    r->hold[i] = (PyObject *)a;
    if (!same_shape(a, nd, shape)) {
        int64_t as[MAXDIM];
        for (int d = 0; d < PyArray_NDIM(a); d++)
            as[d] = PyArray_DIM(a, d);
        PyObject *got = shape_repr(PyArray_NDIM(a), as), *want = shape_repr(nd, shape);
        if (got && want)
            PyErr_Format(PyExc_ValueError, "input %d has shape %U; the graph was recorded for shape %U", i, got, want);
        Py_XDECREF(got);
        Py_XDECREF(want);
        return -1;
    }
    r->in[i] = PyArray_DATA(a);
    return 0;
}

/* Touch a large fresh array's pages on this thread: the replay's workers
 * would otherwise fault them in concurrently, which costs far more (the
 * kernel serialises the faults and then shoots down TLBs across CPUs). */
static void prefault(PyArrayObject *a)
{
    if (PyArray_NBYTES(a) >= (1 << 16))
        memset(PyArray_DATA(a), 0, (size_t)PyArray_NBYTES(a));
}

/* Does the interpreter have a thread state besides the caller's? (GIL held) */
static int other_python_threads(void)
{
    PyThreadState *me = PyThreadState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(me)); t;
         t = PyThreadState_Next(t))
        if (t != me)
            return 1;
    return 0;
}

static PyObject *replay(Graph *self, PyObject *const *args, Py_ssize_t nargs, int grad)
{
    State *st = pyt_state_of((PyObject *)self);
    if (!self->compiled) {
        PyErr_SetString(PyExc_RuntimeError, "the graph is not compiled");
        return NULL;
    }
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, grad ? "gradient(inputs, seeds=None)" : "forward(inputs)");
        return NULL;
    }
    twinc_graph *g = self->g;
    Replay r = {0};
    PyObject *result = NULL, *seq = NULL;
    r.nin = twinc_graph_ninputs(g);
    r.nout = twinc_graph_noutputs(g);
    r.hold = PyMem_Calloc((size_t)r.nin + 1, sizeof *r.hold);
    r.in = PyMem_Calloc((size_t)r.nin + 1, sizeof *r.in);
    r.slots = PyMem_Calloc((size_t)(r.nin + r.nout) + 1, sizeof *r.slots);
    r.out = PyMem_Calloc((size_t)r.nout + 1, sizeof *r.out);
    r.outp = PyMem_Calloc((size_t)r.nout + 1, sizeof *r.outp);
    r.grad = PyMem_Calloc((size_t)r.nin + 1, sizeof *r.grad);
    r.gradp = PyMem_Calloc((size_t)r.nin + 1, sizeof *r.gradp);
    r.seed = PyMem_Calloc((size_t)r.nout + 1, sizeof *r.seed);
    r.seeds = PyMem_Calloc((size_t)r.nout + 1, sizeof *r.seeds);
    r.fp = PyMem_Calloc((size_t)r.nin + 1, sizeof *r.fp);
    if (!r.hold || !r.in || !r.slots || !r.out || !r.outp || !r.grad || !r.gradp || !r.seed || !r.seeds || !r.fp) {
        PyErr_NoMemory();
        goto done;
    }
    seq = PySequence_Fast(args[0], "the inputs: a sequence of arrays");
    if (!seq)
        goto done;
    if (PySequence_Fast_GET_SIZE(seq) != r.nin) {
        PyErr_Format(PyExc_TypeError, "the graph takes %d input%s, got %zd", r.nin, r.nin == 1 ? "" : "s",
                     PySequence_Fast_GET_SIZE(seq));
        goto done;
    }
    size_t work = 0;
    for (int i = 0; i < r.nin; i++) {
        if (bind_input(self, &r, i, PySequence_Fast_GET_ITEM(seq, i)) < 0)
            goto done;
    }
    for (int j = 0; j < r.nout; j++) {
        int node = twinc_graph_output_node(g, j);
        int nd = twinc_graph_ndim(g, node);
        const int64_t *shape = twinc_graph_shape(g, node);
        if (nd == 0) {
            r.outp[j] = &r.slots[r.nin + j];
            continue;
        }
        npy_intp dims[MAXDIM];
        for (int d = 0; d < nd; d++)
            dims[d] = shape[d];
        if (!(r.out[j] = (PyArrayObject *)PyArray_SimpleNew(nd, dims, NPY_DOUBLE)))
            goto done;
        r.outp[j] = PyArray_DATA(r.out[j]);
        prefault(r.out[j]);
        work += (size_t)PyArray_SIZE(r.out[j]);
    }
    static const double one = 1.0;
    if (grad) {
        PyObject *sseq = NULL;
        if (nargs == 2 && args[1] != Py_None) {
            sseq = PySequence_Fast(args[1], "seeds: a sequence (one per output) of values or None");
            if (!sseq)
                goto done;
            if (PySequence_Fast_GET_SIZE(sseq) != r.nout) {
                PyErr_Format(PyExc_TypeError, "seeds: one per output (%d), got %zd", r.nout, PySequence_Fast_GET_SIZE(sseq));
                Py_DECREF(sseq);
                goto done;
            }
        }
        for (int j = 0; j < r.nout; j++) {
            PyObject *s = sseq ? PySequence_Fast_GET_ITEM(sseq, j) : Py_None;
            if (s == Py_None) {
                r.seeds[j] = (twinc_arg){(void *)(uintptr_t)&one, 0, 0};
                continue;
            }
            char what[64];
            snprintf(what, sizeof what, "seed of output %d", j);
            if (!(r.seed[j] = pyt_as_double(s, what, NPY_ARRAY_IN_ARRAY))) {
                Py_XDECREF(sseq);
                goto done;
            }
            int node = twinc_graph_output_node(g, j);
            if (PyArray_SIZE(r.seed[j]) == 1) {
                r.seeds[j] = (twinc_arg){PyArray_DATA(r.seed[j]), 0, 0};
            } else if (same_shape(r.seed[j], twinc_graph_ndim(g, node), twinc_graph_shape(g, node))) {
                r.seeds[j] = (twinc_arg){PyArray_DATA(r.seed[j]), 1, 0};
            } else {
                PyErr_Format(PyExc_ValueError, "seed of output %d: one value or the output's shape", j);
                Py_XDECREF(sseq);
                goto done;
            }
        }
        Py_XDECREF(sseq);
        for (int i = 0; i < r.nin; i++) {
            if (!twinc_graph_input_differentiable(g, i))
                continue;
            int node = twinc_graph_input_node(g, i);
            int nd = twinc_graph_ndim(g, node);
            const int64_t *shape = twinc_graph_shape(g, node);
            npy_intp dims[MAXDIM];
            for (int d = 0; d < nd; d++)
                dims[d] = shape[d];
            if (!(r.grad[i] = (PyArrayObject *)PyArray_SimpleNew(nd, dims, NPY_DOUBLE)))
                goto done;
            r.gradp[i] = PyArray_DATA(r.grad[i]); /* written by this thread (a copy) */
            r.ndiff++;
        }
    }

    twinc_graph_stats gs;
    twinc_graph_get_stats(g, &gs);
    for (int i = 0; i < r.nin; i++)
        if (r.hold[i])
            work += (size_t)PyArray_SIZE((PyArrayObject *)r.hold[i]);
    work += (grad ? gs.arena_gradient : gs.arena_forward) / 8;
    int release = work >= RELEASE_GIL_ELEMS;
    /* Only Python code can write into the inputs meanwhile, and only from a
     * thread that exists now (a new one is started by an existing one): with
     * no other thread state in the interpreter there is nothing to check. */
    int check = release && self->check_inputs && other_python_threads();
    char err[1024] = "";
    int rc;
    int mutated = -1;
    PyThreadState *ts = NULL;
    if (release)
        ts = PyEval_SaveThread();
    if (check)
        for (int i = 0; i < r.nin; i++)
            if (r.hold[i])
                r.fp[i] = pyt_fingerprint(r.in[i], (size_t)PyArray_NBYTES((PyArrayObject *)r.hold[i]));
    if (grad)
        rc = twinc_graph_gradient(g, r.in, r.outp, r.seeds, r.gradp, err, sizeof err);
    else
        rc = twinc_graph_forward(g, r.in, r.outp, err, sizeof err);
    if (check)
        for (int i = 0; i < r.nin && mutated < 0; i++)
            if (r.hold[i] && r.fp[i] != pyt_fingerprint(r.in[i], (size_t)PyArray_NBYTES((PyArrayObject *)r.hold[i])))
                mutated = i;
    if (release)
        PyEval_RestoreThread(ts);
    if (rc != TWINC_OK) {
        pyt_raise_status(st, rc, err);
        goto done;
    }
    if (mutated >= 0) {
        PyErr_Format(st->MutatedError,
                     "input %d was modified (by another thread) while the replay read it; the results "
                     "would mix old and new values, so none are returned",
                     mutated);
        goto done;
    }

    PyObject *outs = PyTuple_New(r.nout);
    if (!outs)
        goto done;
    for (int j = 0; j < r.nout; j++) {
        PyObject *v;
        if (r.out[j]) {
            v = (PyObject *)r.out[j];
            r.out[j] = NULL;
        } else {
            v = PyArray_Scalar(r.outp[j], self->f8, NULL);
        }
        if (!v) {
            Py_DECREF(outs);
            goto done;
        }
        PyTuple_SET_ITEM(outs, j, v);
    }
    if (!grad) {
        result = outs;
        goto done;
    }
    PyObject *grads = PyTuple_New(r.ndiff);
    if (!grads) {
        Py_DECREF(outs);
        goto done;
    }
    for (int i = 0, k = 0; i < r.nin; i++) {
        if (!r.grad[i])
            continue;
        PyObject *gv = PyArray_Return(r.grad[i]);
        r.grad[i] = NULL;
        if (!gv) {
            Py_DECREF(outs);
            Py_DECREF(grads);
            goto done;
        }
        PyTuple_SET_ITEM(grads, k++, gv);
    }
    result = PyTuple_Pack(2, outs, grads);
    Py_DECREF(outs);
    Py_DECREF(grads);
done:
    Py_XDECREF(seq);
    replay_free(&r);
    return result;
}

static PyObject *g_forward(Graph *self, PyObject *const *args, Py_ssize_t nargs)
{
    return replay(self, args, nargs, 0);
}

static PyObject *g_gradient(Graph *self, PyObject *const *args, Py_ssize_t nargs)
{
    return replay(self, args, nargs, 1);
}

static PyObject *g_stats(Graph *self, PyObject *unused)
{
    (void)unused;
    twinc_graph_stats s;
    twinc_graph_get_stats(self->g, &s);
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i,s:n,s:n}", "nodes", s.nodes, "live", s.live, "steps",
                         s.steps, "fused", s.fused, "reverse_steps", s.reverse_steps, "tiled", s.tiled,
                         "arena_forward", (Py_ssize_t)s.arena_forward, "arena_gradient",
                         (Py_ssize_t)s.arena_gradient);
}

static PyObject *g_trim(Graph *self, PyObject *unused)
{
    (void)unused;
    Py_BEGIN_ALLOW_THREADS
    twinc_graph_trim(self->g);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *g_get_ninputs(Graph *self, void *c)
{
    (void)c;
    return PyLong_FromLong(twinc_graph_ninputs(self->g));
}

static PyObject *g_get_noutputs(Graph *self, void *c)
{
    (void)c;
    return PyLong_FromLong(twinc_graph_noutputs(self->g));
}

static PyObject *g_get_compiled(Graph *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->compiled);
}

static PyObject *g_get_check(Graph *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->check_inputs);
}

static int g_set_check(Graph *self, PyObject *v, void *c)
{
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete check_inputs");
        return -1;
    }
    int t = PyObject_IsTrue(v);
    if (t < 0)
        return -1;
    self->check_inputs = t;
    return 0;
}

static PyMethodDef graph_methods[] = {
    {"input", (PyCFunction)g_input, METH_VARARGS, "input(shape, differentiable=False) -> node"},
    {"const", (PyCFunction)g_const, METH_O, "const(array) -> node (the data is copied)"},
    {"scalar", (PyCFunction)g_scalar, METH_O, "scalar(value) -> node"},
    {"unary", (PyCFunction)g_unary, METH_VARARGS, "unary(op, a) -> node"},
    {"binary", (PyCFunction)g_binary, METH_VARARGS, "binary(op, a, b) -> node (broadcasting)"},
    {"where", (PyCFunction)g_where, METH_VARARGS, "where(c, a, b) -> node"},
    {"view", (PyCFunction)g_view, METH_VARARGS, "view(a, shape, offset, strides) -> node"},
    {"take", (PyCFunction)g_take, METH_VARARGS, "take(a, flat_index_array) -> node"},
    {"set", (PyCFunction)g_set, METH_VARARGS, "set(a, v, shape, offset, strides) -> node"},
    {"set_index", (PyCFunction)g_set_index, METH_VARARGS, "set_index(a, v, flat_index_array) -> node"},
    {"reduce", (PyCFunction)g_reduce, METH_VARARGS, "reduce(op, a, axis) -> node"},
    {"scan", (PyCFunction)g_scan, METH_VARARGS, "scan(op, a, axis) -> node"},
    {"matmul", (PyCFunction)g_matmul, METH_VARARGS, "matmul(a, b) -> node"},
    {"concat", (PyCFunction)g_concat, METH_VARARGS, "concat(nodes, axis) -> node"},
    {"interp", (PyCFunction)g_interp, METH_VARARGS, "interp(x, xp, fp) -> node"},
    {"kernel", (PyCFunction)g_kernel, METH_VARARGS, "kernel(k, inputs) -> output nodes (return value first)"},
    {"shape", (PyCFunction)g_shape, METH_O, "shape(node) -> tuple"},
    {"compile", (PyCFunction)g_compile, METH_VARARGS, "compile(outputs, seeded=None)"},
    {"forward", (PyCFunction)(void (*)(void))g_forward, METH_FASTCALL, "forward(inputs) -> outputs"},
    {"gradient", (PyCFunction)(void (*)(void))g_gradient, METH_FASTCALL,
     "gradient(inputs, seeds=None) -> (outputs, gradients of the differentiable inputs)"},
    {"stats", (PyCFunction)g_stats, METH_NOARGS, "stats() -> dict"},
    {"trim", (PyCFunction)g_trim, METH_NOARGS, "free the pooled replay buffers"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef graph_getset[] = {
    {"ninputs", (getter)g_get_ninputs, NULL, NULL, NULL},
    {"noutputs", (getter)g_get_noutputs, NULL, NULL, NULL},
    {"compiled", (getter)g_get_compiled, NULL, NULL, NULL},
    {"check_inputs", (getter)g_get_check, (setter)g_set_check,
     "verify that no input changed during replays that release the GIL", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot graph_slots[] = {
    {Py_tp_new, graph_new},
    {Py_tp_dealloc, graph_dealloc},
    {Py_tp_traverse, graph_traverse},
    {Py_tp_clear, graph_clear},
    {Py_tp_methods, graph_methods},
    {Py_tp_getset, graph_getset},
    {Py_tp_doc, (void *)"Graph(): a recorded, compiled and replayable array computation (twinc_graph)."},
    {0, NULL},
};

PyType_Spec pyt_graph_spec = {
    .name = "twinc._twinc.Graph",
    .basicsize = sizeof(Graph),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = graph_slots,
};

int pyt_add_op_table(PyObject *module)
{
    PyObject *d = PyDict_New();
    if (!d)
        return -1;
    for (int op = 0; op < TWINC_GOP_COUNT; op++) {
        PyObject *v = PyLong_FromLong(op);
        if (!v || PyDict_SetItemString(d, twinc_gop_name((twinc_gop)op), v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return -1;
        }
        Py_DECREF(v);
    }
    if (PyModule_AddObject(module, "OPS", d) < 0) {
        Py_DECREF(d);
        return -1;
    }
    return 0;
}
