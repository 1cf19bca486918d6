/*
 * kernel.c — Library and Kernel: generated kernels called on NumPy arrays.
 *
 * A Library is an opened twin library (twinc_lib_open); its kernels are its
 * attributes.  A Kernel is one registry entry.  Calling it binds the
 * arguments to the registry's input parameters (positionally, then by
 * keyword), turns each into an array of the parameter's C type — in place
 * when it already is one (any strides that are whole elements, read-only is
 * fine), converted when that loses nothing, a TypeError otherwise —
 * broadcasts them NumPy-style into the lane shape, and runs the twin over
 * every lane with twinc_kernel_run_nd (GIL released).  A dimension an
 * argument is broadcast along gets lane stride 0, so the twin reads one
 * value for all lanes; in the adjoint, the gradient of such an argument has
 * stride 0 too, and the twin sums it over those lanes: gradients come back
 * with the shape of the argument, as the gradient of the sum of the seeded
 * output.
 *
 * Array parameters (twinc_param.length != NULL) take the argument's trailing
 * dimension as elements (es = that dimension's stride) and the rest as lanes;
 * every lane's length is checked against the elements given.
 *
 * When an argument is a traced value (the Python layer's Tracer), the call
 * is handed to the Python layer, which records it into its graph instead.
 *
 * MIT licence — see LICENSE.
 */
#include "pyt.h"

#define MAXDIM TWINC_GRAPH_MAXDIM

/* ---- Library ---- */

typedef struct Library {
    PyObject_HEAD
    twinc_lib *lib;
    PyObject *path;    /* str */
    PyObject *kernels; /* dict name -> Kernel, in registry order */
} Library;

typedef struct Kernel {
    PyObject_HEAD
    PyObject *library; /* keeps the shared object loaded */
    const twinc_kernel *k;
    int nin, nout;
    int *in_param;     /* registry index of each input */
    int *out_param;    /* registry index of each output, the return value first */
    PyObject *in_names;  /* tuple of str */
    PyObject *out_names; /* tuple of str ("return" for the return value) */
} Kernel;

static int library_traverse(Library *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->kernels);
    return 0;
}

static int library_clear(Library *self)
{
    Py_CLEAR(self->kernels);
    return 0;
}

static void library_dealloc(Library *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    library_clear(self);
    Py_CLEAR(self->path);
    twinc_lib_close(self->lib);
    self->lib = NULL;
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *new_kernel(State *st, PyObject *library, const twinc_kernel *k);

PyObject *pyt_load(PyObject *module, PyObject *path)
{
    State *st = pyt_state(module);
    PyObject *bytes = NULL, *str = NULL;
    Library *self = NULL;
    if (!PyUnicode_FSConverter(path, &bytes))
        return NULL;
    if (!PyUnicode_FSDecoder(path, &str))
        goto error;
    const char *cpath = PyBytes_AS_STRING(bytes);
    FILE *f = fopen(cpath, "rb");
    if (!f && strchr(cpath, '/')) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, str);
        goto error;
    }
    if (f)
        fclose(f);
    char err[1024];
    twinc_lib *lib;
    Py_BEGIN_ALLOW_THREADS
    lib = twinc_lib_open(cpath, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (!lib) {
        PyErr_Format(st->LoadError, "cannot use %R: %s", str, err);
        goto error;
    }
    self = PyObject_GC_New(Library, st->Library);
    if (!self) {
        twinc_lib_close(lib);
        goto error;
    }
    self->lib = lib;
    self->path = str;
    str = NULL;
    self->kernels = PyDict_New();
    PyObject_GC_Track(self);
    if (!self->kernels)
        goto error;
    for (int i = 0; i < twinc_lib_count(lib); i++) {
        const twinc_kernel *k = twinc_lib_kernel(lib, i);
        PyObject *kobj = new_kernel(st, (PyObject *)self, k);
        if (!kobj)
            goto error;
        int rc = PyDict_SetItemString(self->kernels, k->name, kobj);
        Py_DECREF(kobj);
        if (rc < 0)
            goto error;
    }
    Py_DECREF(bytes);
    return (PyObject *)self;
error:
    Py_XDECREF(bytes);
    Py_XDECREF(str);
    Py_XDECREF(self);
    return NULL;
}

static PyObject *library_getattro(Library *self, PyObject *name)
{
    PyObject *r = PyObject_GenericGetAttr((PyObject *)self, name);
    if (r || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return r;
    if (self->kernels) {
        PyObject *k = PyDict_GetItemWithError(self->kernels, name);
        if (k) {
            PyErr_Clear();
            Py_INCREF(k);
            return k;
        }
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
    }
    PyErr_Clear();
    PyObject *sep = PyUnicode_FromString(", ");
    PyObject *keys = self->kernels ? PyDict_Keys(self->kernels) : NULL;
    PyObject *joined = (sep && keys) ? PyUnicode_Join(sep, keys) : NULL;
    if (joined)
        PyErr_Format(PyExc_AttributeError, "library %R has no kernel %R (its kernels: %U)", self->path,
                     name, joined);
    Py_XDECREF(sep);
    Py_XDECREF(keys);
    Py_XDECREF(joined);
    return NULL;
}

static PyObject *library_getitem(Library *self, PyObject *name)
{
    PyObject *k = PyDict_GetItemWithError(self->kernels, name);
    if (!k) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_KeyError, "library %R has no kernel %R", self->path, name);
        return NULL;
    }
    Py_INCREF(k);
    return k;
}

static Py_ssize_t library_len(Library *self) { return PyDict_Size(self->kernels); }

static PyObject *library_iter(Library *self) { return PyObject_GetIter(self->kernels); }

static int library_contains(Library *self, PyObject *name) { return PyDict_Contains(self->kernels, name); }

static PyObject *library_repr(Library *self)
{
    PyObject *sep = PyUnicode_FromString(", ");
    PyObject *keys = PyDict_Keys(self->kernels);
    PyObject *joined = (sep && keys) ? PyUnicode_Join(sep, keys) : NULL;
    PyObject *r = joined ? PyUnicode_FromFormat("<twinc library %R: %U>", self->path, joined) : NULL;
    Py_XDECREF(sep);
    Py_XDECREF(keys);
    Py_XDECREF(joined);
    return r;
}

static PyObject *library_dir(Library *self, PyObject *unused)
{
    (void)unused;
    PyObject *names = PyDict_Keys(self->kernels);
    if (!names)
        return NULL;
    const char *extra[] = {"kernels", "path", NULL};
    for (int i = 0; extra[i]; i++) {
        PyObject *s = PyUnicode_FromString(extra[i]);
        if (!s || PyList_Append(names, s) < 0) {
            Py_XDECREF(s);
            Py_DECREF(names);
            return NULL;
        }
        Py_DECREF(s);
    }
    return names;
}

static PyObject *library_get_kernels(Library *self, void *c)
{
    (void)c;
    return PyDict_Copy(self->kernels);
}

static PyObject *library_get_path(Library *self, void *c)
{
    (void)c;
    Py_INCREF(self->path);
    return self->path;
}

static PyMethodDef library_methods[] = {
    {"__dir__", (PyCFunction)library_dir, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef library_getset[] = {
    {"kernels", (getter)library_get_kernels, NULL, "dict of the library's kernels by name", NULL},
    {"path", (getter)library_get_path, NULL, "the path it was loaded from", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot library_slots[] = {
    {Py_tp_dealloc, library_dealloc},
    {Py_tp_traverse, library_traverse},
    {Py_tp_clear, library_clear},
    {Py_tp_getattro, library_getattro},
    {Py_tp_repr, library_repr},
    {Py_tp_iter, library_iter},
    {Py_mp_subscript, library_getitem},
    {Py_mp_length, library_len},
    {Py_sq_contains, library_contains},
    {Py_tp_methods, library_methods},
    {Py_tp_getset, library_getset},
    {Py_tp_doc, (void *)"A shared library of twinc kernels (see twinc.load); kernels are attributes."},
    {0, NULL},
};

PyType_Spec pyt_library_spec = {
    .name = "twinc._twinc.Library",
    .basicsize = sizeof(Library),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = library_slots,
};

/* ---- Kernel ---- */

static const char *type_name(twinc_type t)
{
    switch (t) {
    case TWINC_T_DOUBLE: return "double";
    case TWINC_T_INT: return "int";
    case TWINC_T_LONG: return "long";
    case TWINC_T_UINT: return "unsigned";
    case TWINC_T_ULONG: return "unsigned long";
    default: return "?";
    }
}

static int npy_type_of(twinc_type t)
{
    switch (t) {
    case TWINC_T_INT: return NPY_INT;
    case TWINC_T_LONG: return NPY_LONG;
    case TWINC_T_UINT: return NPY_UINT;
    case TWINC_T_ULONG: return NPY_ULONG;
    default: return NPY_DOUBLE;
    }
}

static PyObject *new_kernel(State *st, PyObject *library, const twinc_kernel *k)
{
    Kernel *self = PyObject_GC_New(Kernel, st->Kernel);
    if (!self)
        return NULL;
    self->library = library;
    Py_INCREF(library);
    self->k = k;
    self->nin = self->nout = 0;
    self->in_param = self->out_param = NULL;
    self->in_names = self->out_names = NULL;
    PyObject_GC_Track(self);
    for (int p = 0; p < k->nparams; p++) {
        if (k->params[p].role == TWINC_ROLE_IN || k->params[p].role == TWINC_ROLE_INOUT)
            self->nin++;
        if (k->params[p].role != TWINC_ROLE_IN)
            self->nout++;
    }
    self->in_param = PyMem_Calloc((size_t)self->nin + 1, sizeof(int));
    self->out_param = PyMem_Calloc((size_t)self->nout + 1, sizeof(int));
    self->in_names = PyTuple_New(self->nin);
    self->out_names = PyTuple_New(self->nout);
    if (!self->in_param || !self->out_param || !self->in_names || !self->out_names) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    int i = 0, o = 0;
    for (int p = 0; p < k->nparams; p++)
        if (k->params[p].role == TWINC_ROLE_RET)
            self->out_param[o++] = p;
    for (int p = 0; p < k->nparams; p++) {
        const twinc_param *pp = &k->params[p];
        PyObject *name = PyUnicode_FromString(pp->name ? pp->name : "?");
        if (!name) {
            Py_DECREF(self);
            return NULL;
        }
        if (pp->role == TWINC_ROLE_IN || pp->role == TWINC_ROLE_INOUT) {
            self->in_param[i] = p;
            PyTuple_SET_ITEM(self->in_names, i++, name);
            if (pp->role == TWINC_ROLE_INOUT)
                self->out_param[o++] = p;
        } else if (pp->role == TWINC_ROLE_OUT) {
            self->out_param[o++] = p;
            Py_DECREF(name);
        } else {
            Py_DECREF(name);
        }
    }
    for (o = 0; o < self->nout; o++) {
        PyObject *name = PyUnicode_FromString(k->params[self->out_param[o]].name);
        if (!name) {
            Py_DECREF(self);
            return NULL;
        }
        PyTuple_SET_ITEM(self->out_names, o, name);
    }
    return (PyObject *)self;
}

static int kernel_traverse(Kernel *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->library);
    return 0;
}

static int kernel_clear(Kernel *self)
{
    Py_CLEAR(self->library);
    return 0;
}

static void kernel_dealloc(Kernel *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    kernel_clear(self);
    Py_CLEAR(self->in_names);
    Py_CLEAR(self->out_names);
    PyMem_Free(self->in_param);
    PyMem_Free(self->out_param);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

const twinc_kernel *pyt_kernel_record(State *st, PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, st->Kernel)) {
        PyErr_Format(PyExc_TypeError, "expected a twinc kernel, got %R", (PyObject *)Py_TYPE(obj));
        return NULL;
    }
    return ((Kernel *)obj)->k;
}

/* "bs_call(S, K, r, q, sigma, T)" */
static PyObject *signature_str(Kernel *self)
{
    PyObject *sep = PyUnicode_FromString(", ");
    PyObject *joined = sep ? PyUnicode_Join(sep, self->in_names) : NULL;
    PyObject *r = joined ? PyUnicode_FromFormat("%s(%U)", self->k->name, joined) : NULL;
    Py_XDECREF(sep);
    Py_XDECREF(joined);
    return r;
}

/* Bind positional and keyword arguments to the inputs, in registry order.
 * bound[i] are borrowed references. */
static int bind_args(Kernel *self, PyObject *args, PyObject *kwargs, PyObject **bound)
{
    Py_ssize_t na = args ? PyTuple_GET_SIZE(args) : 0;
    for (int i = 0; i < self->nin; i++)
        bound[i] = NULL;
    if (na > self->nin) {
        PyObject *sig = signature_str(self);
        if (sig)
            PyErr_Format(PyExc_TypeError, "%U takes %d argument%s but %zd were given", sig, self->nin,
                         self->nin == 1 ? "" : "s", na);
        Py_XDECREF(sig);
        return -1;
    }
    for (Py_ssize_t i = 0; i < na; i++)
        bound[i] = PyTuple_GET_ITEM(args, i);
    if (kwargs) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(kwargs, &pos, &key, &value)) {
            int found = -1;
            for (int i = 0; i < self->nin; i++) {
                int eq = PyObject_RichCompareBool(key, PyTuple_GET_ITEM(self->in_names, i), Py_EQ);
                if (eq < 0)
                    return -1;
                if (eq) {
                    found = i;
                    break;
                }
            }
            if (found < 0) {
                PyObject *sig = signature_str(self);
                if (sig)
                    PyErr_Format(PyExc_TypeError, "%U got an unexpected keyword argument %R", sig, key);
                Py_XDECREF(sig);
                return -1;
            }
            if (bound[found]) {
                PyObject *sig = signature_str(self);
                if (sig)
                    PyErr_Format(PyExc_TypeError, "%U got multiple values for argument %R", sig, key);
                Py_XDECREF(sig);
                return -1;
            }
            bound[found] = value;
        }
    }
    for (int i = 0; i < self->nin; i++)
        if (!bound[i]) {
            PyObject *sig = signature_str(self);
            if (sig)
                PyErr_Format(PyExc_TypeError, "%U missing argument %R", sig,
                             PyTuple_GET_ITEM(self->in_names, i));
            Py_XDECREF(sig);
            return -1;
        }
    return 0;
}

/* Hand the call to the Python layer if an argument is traced.  Returns 1
 * (result in *out, or NULL with an exception), 0 if no argument is traced. */
static int maybe_trace(State *st, Kernel *self, PyObject **bound, PyObject **out, const char *what)
{
    if (!st->tracer_type)
        return 0;
    int traced = 0;
    for (int i = 0; i < self->nin && !traced; i++)
        traced = PyObject_TypeCheck(bound[i], (PyTypeObject *)st->tracer_type);
    if (!traced)
        return 0;
    if (what) {
        PyErr_Format(PyExc_TypeError,
                     "%s.%s() on traced values: inside a recorded function, call the kernel itself "
                     "and differentiate the whole function with twinc.value_and_grad / twinc.grad",
                     self->k->name, what);
        *out = NULL;
        return 1;
    }
    PyObject *tuple = PyTuple_New(self->nin);
    if (!tuple) {
        *out = NULL;
        return 1;
    }
    for (int i = 0; i < self->nin; i++) {
        Py_INCREF(bound[i]);
        PyTuple_SET_ITEM(tuple, i, bound[i]);
    }
    *out = PyObject_CallFunctionObjArgs(st->trace_kernel, (PyObject *)self, tuple, NULL);
    Py_DECREF(tuple);
    return 1;
}

static PyObject *shape_str(int nd, const npy_intp *dims)
{
    PyObject *t = PyTuple_New(nd);
    if (!t)
        return NULL;
    for (int i = 0; i < nd; i++) {
        PyObject *v = PyLong_FromSsize_t(dims[i]);
        if (!v) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    PyObject *s = PyObject_Repr(t);
    Py_DECREF(t);
    return s;
}

/* Integer arguments: any bool/int array whose values fit the C type. */
static PyArrayObject *convert_int(Kernel *self, const twinc_param *pp, PyArrayObject *a)
{
    int want = npy_type_of(pp->type);
    char kind = PyArray_DESCR(a)->kind;
    if (kind != 'b' && kind != 'i' && kind != 'u') {
        PyErr_Format(PyExc_TypeError,
                     "%s: parameter '%s' is a C %s; got %R values (pass integers, e.g. "
                     ".astype(int))",
                     self->k->name, pp->name, type_name(pp->type), (PyObject *)PyArray_DESCR(a));
        return NULL;
    }
    PyArray_Descr *wd = PyArray_DescrFromType(want);
    if (PyArray_EquivTypes(PyArray_DESCR(a), wd) && PyArray_ISALIGNED(a)) {
        Py_DECREF(wd);
        Py_INCREF(a);
        return a;
    }
    if (PyArray_CanCastTo(PyArray_DESCR(a), wd)) {
        return (PyArrayObject *)PyArray_FromArray(a, wd, NPY_ARRAY_ALIGNED);
    }
    Py_DECREF(wd);
    /* not safe by dtype: check the values (e.g. int64 3 for a C int) */
    int wide = kind == 'u' ? NPY_ULONGLONG : NPY_LONGLONG;
    PyArrayObject *w = (PyArrayObject *)PyArray_FromArray(a, PyArray_DescrFromType(wide),
                                                          NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!w)
        return NULL;
    npy_intp n = PyArray_SIZE(w);
    long double lo, hi;
    switch (pp->type) {
    case TWINC_T_INT: lo = INT_MIN; hi = INT_MAX; break;
    case TWINC_T_UINT: lo = 0; hi = UINT_MAX; break;
    case TWINC_T_LONG: lo = LONG_MIN; hi = LONG_MAX; break;
    default: lo = 0; hi = ULONG_MAX; break;
    }
    for (npy_intp i = 0; i < n; i++) {
        long double v = wide == NPY_ULONGLONG ? (long double)((unsigned long long *)PyArray_DATA(w))[i]
                                              : (long double)((long long *)PyArray_DATA(w))[i];
        if (v < lo || v > hi) {
            PyErr_Format(PyExc_OverflowError, "%s: parameter '%s' is a C %s; the value %s is out of range",
                         self->k->name, pp->name, type_name(pp->type),
                         wide == NPY_ULONGLONG ? "(unsigned)" : "(signed)");
            Py_DECREF(w);
            return NULL;
        }
    }
    PyArrayObject *r = (PyArrayObject *)PyArray_FromArray(w, PyArray_DescrFromType(want),
                                                          NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    Py_DECREF(w);
    return r;
}

/* Argument i as an array of its parameter's type, strides in whole elements. */
static PyArrayObject *convert_arg(Kernel *self, int i, PyObject *obj)
{
    const twinc_param *pp = &self->k->params[self->in_param[i]];
    PyArrayObject *r;
    if (pp->type == TWINC_T_DOUBLE) {
        char what[256];
        snprintf(what, sizeof what, "%s: parameter '%s'", self->k->name, pp->name);
        r = pyt_as_double(obj, what, 0);
    } else {
        PyArrayObject *a = (PyArrayObject *)PyArray_FROM_OF(obj, 0);
        if (!a)
            return NULL;
        r = convert_int(self, pp, a);
        Py_DECREF(a);
    }
    if (!r)
        return NULL;
    int es = (int)PyArray_ITEMSIZE(r);
    for (int d = 0; d < PyArray_NDIM(r); d++)
        if (PyArray_STRIDE(r, d) % es != 0) {
            /* strides that are not whole elements (a field of a record array):
             * the twin's lane strides cannot express them, copy */
            PyArrayObject *c = (PyArrayObject *)PyArray_NewCopy(r, NPY_CORDER);
            Py_DECREF(r);
            return c;
        }
    return r;
}

/* Strides (elements) of array a read over lane shape (nd, dims); its last
 * `core` dimensions are an array parameter's elements, not lanes. */
static void lane_strides(PyArrayObject *a, int nd, ptrdiff_t *st, int core)
{
    int an = PyArray_NDIM(a) - core;
    npy_intp es = PyArray_ITEMSIZE(a);
    for (int d = 0; d < nd; d++) {
        int j = d - (nd - an);
        st[d] = (j < 0 || PyArray_DIM(a, j) == 1) ? 0 : (ptrdiff_t)(PyArray_STRIDE(a, j) / es);
    }
}

static int broadcast_into(int *nd, npy_intp *dims, PyArrayObject *a, int core)
{
    int an = PyArray_NDIM(a) - core;
    int n = *nd > an ? *nd : an;
    npy_intp out[MAXDIM];
    for (int d = 0; d < n; d++) {
        npy_intp x = d < n - *nd ? 1 : dims[d - (n - *nd)];
        npy_intp y = d < n - an ? 1 : PyArray_DIM(a, d - (n - an));
        if (x != y && x != 1 && y != 1)
            return 0;
        out[d] = x == 1 ? y : x;
    }
    *nd = n;
    memcpy(dims, out, (size_t)n * sizeof *dims);
    return 1;
}

enum { EV_PRIMAL, EV_GRAD };

/* Options of value_and_grad. */
typedef struct GradOpts {
    PyObject *wrt;  /* None, a name or a sequence of names */
    PyObject *seed; /* None, a value, or a dict name -> value */
} GradOpts;

static int out_index_of(Kernel *self, PyObject *name)
{
    for (int o = 0; o < self->nout; o++) {
        int eq = PyObject_RichCompareBool(name, PyTuple_GET_ITEM(self->out_names, o), Py_EQ);
        if (eq < 0)
            return -2;
        if (eq)
            return o;
    }
    return -1;
}

static int in_index_of(Kernel *self, PyObject *name)
{
    for (int i = 0; i < self->nin; i++) {
        int eq = PyObject_RichCompareBool(name, PyTuple_GET_ITEM(self->in_names, i), Py_EQ);
        if (eq < 0)
            return -2;
        if (eq)
            return i;
    }
    return -1;
}

static int param_differentiable(const twinc_param *pp)
{
    return pp->type == TWINC_T_DOUBLE && (pp->flags & TWINC_PARAM_ACTIVE);
}

/* b summed over the dimensions a was broadcast along, shaped like a. */
static PyObject *sum_to_shape(PyArrayObject *b, PyArrayObject *a)
{
    int bn = PyArray_NDIM(b), an = PyArray_NDIM(a), k = bn - an;
    PyObject *axes = PyList_New(0), *r = NULL, *args = NULL, *kw = NULL, *fn = NULL, *t = NULL;
    if (!axes)
        return NULL;
    for (int d = 0; d < bn; d++) {
        int j = d - k;
        if (j < 0 || (PyArray_DIM(a, j) == 1 && PyArray_DIM(b, d) != 1)) {
            PyObject *v = PyLong_FromLong(d);
            if (!v || PyList_Append(axes, v) < 0) {
                Py_XDECREF(v);
                goto done;
            }
            Py_DECREF(v);
        }
    }
    if (PyList_GET_SIZE(axes) == 0) {
        Py_INCREF(b);
        r = (PyObject *)b;
        goto done;
    }
    if (!(t = PyList_AsTuple(axes)) || !(fn = PyObject_GetAttrString((PyObject *)b, "sum")) ||
        !(args = PyTuple_New(0)) || !(kw = Py_BuildValue("{s:O,s:O}", "axis", t, "keepdims", Py_True)))
        goto done;
    PyObject *sum = PyObject_Call(fn, args, kw);
    if (!sum)
        goto done;
    PyArray_Dims shape = {PyArray_DIMS(a), an};
    r = PyArray_Newshape((PyArrayObject *)sum, &shape, NPY_CORDER);
    Py_DECREF(sum);
done:
    Py_XDECREF(axes);
    Py_XDECREF(t);
    Py_XDECREF(fn);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    return r;
}

static int input_index_of_param(Kernel *self, int p)
{
    for (int i = 0; i < self->nin; i++)
        if (self->in_param[i] == p)
            return i;
    return -1;
}

/* Strides in elements of a C-contiguous array. */
static void contig_elems(int nd, const npy_intp *dims, ptrdiff_t *st)
{
    ptrdiff_t s = 1;
    for (int d = nd - 1; d >= 0; d--) {
        st[d] = s;
        s *= dims[d];
    }
}

static PyObject *kernel_eval(Kernel *self, PyObject **bound, int mode, const GradOpts *opts)
{
    State *st = pyt_state_of((PyObject *)self);
    const twinc_kernel *k = self->k;
    int np = k->nparams, nin = self->nin, nout = self->nout;
    PyArrayObject **in = PyMem_Calloc((size_t)nin + 1, sizeof *in);
    int *core = PyMem_Calloc((size_t)nin + 1, sizeof *core);
    PyArrayObject **out = PyMem_Calloc((size_t)nout + 1, sizeof *out);
    PyArrayObject **grad = PyMem_Calloc((size_t)nin + 1, sizeof *grad);
    PyArrayObject **seed = PyMem_Calloc((size_t)nout + 1, sizeof *seed);
    PyArrayObject **dbuf = PyMem_Calloc((size_t)nout + 1, sizeof *dbuf);
    twinc_ndarg *val = PyMem_Calloc((size_t)np + 1, sizeof *val);
    twinc_ndarg *dual = PyMem_Calloc((size_t)np + 1, sizeof *dual);
    ptrdiff_t(*strides)[MAXDIM] = PyMem_Calloc(2 * (size_t)np + 1, sizeof *strides);
    unsigned char *want = PyMem_Calloc((size_t)nin + 1, 1);
    PyObject *result = NULL;
    static const double one = 1.0;
    static const ptrdiff_t zeros[MAXDIM];
    if (!in || !core || !out || !grad || !seed || !dbuf || !val || !dual || !strides || !want) {
        PyErr_NoMemory();
        goto done;
    }

    /* arguments; their lane dimensions broadcast into the lane shape (an
     * array parameter's last axis holds its elements) */
    int nd = 0;
    npy_intp dims[MAXDIM];
    int from = -1;
    for (int i = 0; i < nin; i++) {
        const twinc_param *pp = &k->params[self->in_param[i]];
        core[i] = pp->length ? 1 : 0;
        if (!(in[i] = convert_arg(self, i, bound[i])))
            goto done;
        if (core[i] && PyArray_NDIM(in[i]) < 1) {
            PyErr_Format(PyExc_ValueError,
                         "%s: parameter '%s' is an array (length %s): pass an array whose last axis "
                         "holds its elements (the axes before it are lanes)",
                         k->name, pp->name, pp->length);
            goto done;
        }
        if (PyArray_NDIM(in[i]) - core[i] > MAXDIM) {
            PyErr_Format(PyExc_ValueError, "%s: parameter '%s' has too many dimensions", k->name, pp->name);
            goto done;
        }
        npy_intp lanes = 1;
        for (int d = 0; d < PyArray_NDIM(in[i]) - core[i]; d++)
            lanes *= PyArray_DIM(in[i], d);
        if ((pp->flags & TWINC_PARAM_UNIFORM) && lanes != 1) {
            PyObject *s = shape_str(PyArray_NDIM(in[i]), PyArray_DIMS(in[i]));
            if (s)
                PyErr_Format(PyExc_ValueError,
                             "%s: parameter '%s' is uniform (one value for every lane); got shape %U",
                             k->name, pp->name, s);
            Py_XDECREF(s);
            goto done;
        }
        if (!broadcast_into(&nd, dims, in[i], core[i])) {
            PyObject *s1 = shape_str(PyArray_NDIM(in[i]) - core[i], PyArray_DIMS(in[i]));
            PyObject *s2 = shape_str(nd, dims);
            if (s1 && s2)
                PyErr_Format(PyExc_ValueError,
                             "%s: parameter '%s' has %sshape %U, which does not broadcast with shape %U "
                             "(from '%s')",
                             k->name, pp->name, core[i] ? "lane " : "", s1, s2,
                             from >= 0 ? k->params[self->in_param[from]].name : "?");
            Py_XDECREF(s1);
            Py_XDECREF(s2);
            goto done;
        }
        if (PyArray_NDIM(in[i]) - core[i] > 0 &&
            (from < 0 || PyArray_NDIM(in[i]) - core[i] >= PyArray_NDIM(in[from]) - core[from]))
            from = i;
    }
    for (int i = 0; i < nin; i++) {
        int p = self->in_param[i];
        if (k->params[p].role == TWINC_ROLE_INOUT)
            continue; /* its values live in its output array */
        lane_strides(in[i], nd, strides[p], core[i]);
        int an = PyArray_NDIM(in[i]);
        val[p] = (twinc_ndarg){PyArray_DATA(in[i]), strides[p],
                               core[i] ? (ptrdiff_t)(PyArray_STRIDE(in[i], an - 1) / PyArray_ITEMSIZE(in[i])) : 0,
                               core[i] ? (ptrdiff_t)PyArray_DIM(in[i], an - 1) : 0};
    }
    ptrdiff_t cst[MAXDIM];
    contig_elems(nd, dims, cst);
    for (int o = 0; o < nout; o++) {
        int p = self->out_param[o];
        if (k->params[p].role != TWINC_ROLE_INOUT) {
            if (!(out[o] = (PyArrayObject *)PyArray_SimpleNew(nd, dims, NPY_DOUBLE)))
                goto done;
            memset(PyArray_DATA(out[o]), 0, (size_t)PyArray_NBYTES(out[o])); /* see grad below */
            val[p] = (twinc_ndarg){PyArray_DATA(out[o]), cst, 0, 0};
            continue;
        }
        /* an in/out array: its initial values copied into a fresh array per lane */
        int i = input_index_of_param(self, p);
        npy_intp odims[MAXDIM + 1];
        memcpy(odims, dims, (size_t)nd * sizeof *dims);
        npy_intp L = PyArray_DIM(in[i], PyArray_NDIM(in[i]) - 1);
        odims[nd] = L;
        if (!(out[o] = (PyArrayObject *)PyArray_SimpleNew(nd + 1, odims, NPY_DOUBLE)) ||
            PyArray_CopyInto(out[o], in[i]) < 0)
            goto done;
        lane_strides(out[o], nd, strides[p], 1);
        val[p] = (twinc_ndarg){PyArray_DATA(out[o]), strides[p], 1, (ptrdiff_t)L};
    }

    if (mode == EV_GRAD) {
        /* which gradients */
        if (!opts->wrt || opts->wrt == Py_None) {
            for (int i = 0; i < nin; i++)
                want[i] = (unsigned char)param_differentiable(&k->params[self->in_param[i]]);
        } else {
            PyObject *seq = PyUnicode_Check(opts->wrt) ? PyTuple_Pack(1, opts->wrt)
                                                       : PySequence_Fast(opts->wrt, "wrt: a name or a sequence of names");
            if (!seq)
                goto done;
            for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(seq); j++) {
                PyObject *name = PySequence_Fast_GET_ITEM(seq, j);
                int i = in_index_of(self, name);
                if (i == -1) {
                    PyErr_Format(PyExc_ValueError, "%s has no input %R (inputs: %R)", k->name, name, self->in_names);
                } else if (i >= 0 && !param_differentiable(&k->params[self->in_param[i]])) {
                    PyErr_Format(PyExc_ValueError, "%s: input %R is not differentiable (%s)", k->name, name,
                                 k->params[self->in_param[i]].type != TWINC_T_DOUBLE ? "an integer" : "passive");
                    i = -2;
                }
                if (i < 0) {
                    Py_DECREF(seq);
                    goto done;
                }
                want[i] = 1;
            }
            Py_DECREF(seq);
        }
        for (int i = 0; i < nin; i++) {
            int p = self->in_param[i];
            if (!want[i] || k->params[p].role == TWINC_ROLE_INOUT)
                continue;
            if (!(grad[i] = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(in[i]), PyArray_DIMS(in[i]), NPY_DOUBLE)))
                goto done;
            /* zeroed here: fresh pages are faulted in by this thread, not by
             * every worker of the call at once */
            memset(PyArray_DATA(grad[i]), 0, (size_t)PyArray_NBYTES(grad[i]));
            lane_strides(grad[i], nd, strides[np + p], core[i]);
            dual[p] = (twinc_ndarg){PyArray_DATA(grad[i]), strides[np + p], core[i] ? 1 : 0, val[p].len};
        }
        /* seeds: the return value (or the only output) unless told otherwise */
        int has_ret = nout > 0 && k->params[self->out_param[0]].role == TWINC_ROLE_RET;
        int deflt = (nout == 1 || has_ret) ? 0 : -1;
        PyObject *sd = opts->seed;
        if (sd && sd != Py_None && PyDict_Check(sd)) {
            deflt = -2; /* only what the dict names */
            PyObject *key, *value;
            Py_ssize_t pos = 0;
            while (PyDict_Next(sd, &pos, &key, &value)) {
                int o = out_index_of(self, key);
                if (o == -1)
                    PyErr_Format(PyExc_ValueError, "%s has no output %R (outputs: %R)", k->name, key, self->out_names);
                if (o < 0)
                    goto done;
                char what[256];
                snprintf(what, sizeof what, "%s: seed of output '%s'", k->name, k->params[self->out_param[o]].name);
                if (!(seed[o] = pyt_as_double(value, what, 0)))
                    goto done;
            }
        } else if (deflt == -1) {
            PyErr_Format(PyExc_ValueError,
                         "%s has several outputs %R and no return value: say which to "
                         "differentiate with seed={name: value}",
                         k->name, self->out_names);
            goto done;
        } else if (sd && sd != Py_None) {
            char what[256];
            snprintf(what, sizeof what, "%s: seed", k->name);
            if (!(seed[deflt] = pyt_as_double(sd, what, 0)))
                goto done;
        }
        for (int o = 0; o < nout; o++) {
            int p = self->out_param[o];
            const twinc_param *pp = &k->params[p];
            if (pp->role == TWINC_ROLE_INOUT) {
                /* seed of the final values in, adjoint of the initial values out */
                int ond = PyArray_NDIM(out[o]);
                if (!(dbuf[o] = (PyArrayObject *)PyArray_ZEROS(ond, PyArray_DIMS(out[o]), NPY_DOUBLE, 0)))
                    goto done;
                if (seed[o]) {
                    if (PyArray_CopyInto(dbuf[o], seed[o]) < 0) {
                        PyErr_Clear();
                        PyObject *s1 = shape_str(PyArray_NDIM(seed[o]), PyArray_DIMS(seed[o]));
                        PyObject *s2 = shape_str(ond, PyArray_DIMS(out[o]));
                        if (s1 && s2)
                            PyErr_Format(PyExc_ValueError, "%s: the seed of '%s' has shape %U; it must broadcast to %U",
                                         k->name, pp->name, s1, s2);
                        Py_XDECREF(s1);
                        Py_XDECREF(s2);
                        goto done;
                    }
                } else if (o == deflt) {
                    double *b = PyArray_DATA(dbuf[o]);
                    for (npy_intp e = 0; e < PyArray_SIZE(dbuf[o]); e++)
                        b[e] = 1.0;
                }
                dual[p] = (twinc_ndarg){PyArray_DATA(dbuf[o]), strides[p], 1, val[p].len};
                continue;
            }
            if (!seed[o]) {
                if (o == deflt)
                    dual[p] = (twinc_ndarg){(void *)(uintptr_t)&one, zeros, 0, 0};
                continue;
            }
            int snd = nd;
            npy_intp sdims[MAXDIM];
            memcpy(sdims, dims, sizeof sdims);
            if (!broadcast_into(&snd, sdims, seed[o], 0) || snd != nd ||
                memcmp(sdims, dims, (size_t)nd * sizeof *dims) != 0) {
                PyObject *s1 = shape_str(PyArray_NDIM(seed[o]), PyArray_DIMS(seed[o]));
                PyObject *s2 = shape_str(nd, dims);
                if (s1 && s2)
                    PyErr_Format(PyExc_ValueError, "%s: the seed of '%s' has shape %U; it must broadcast to the lane shape %U",
                                 k->name, pp->name, s1, s2);
                Py_XDECREF(s1);
                Py_XDECREF(s2);
                goto done;
            }
            int es = (int)PyArray_ITEMSIZE(seed[o]);
            for (int d = 0; d < PyArray_NDIM(seed[o]); d++)
                if (PyArray_STRIDE(seed[o], d) % es) {
                    PyArrayObject *c = (PyArrayObject *)PyArray_NewCopy(seed[o], NPY_CORDER);
                    Py_SETREF(seed[o], c);
                    if (!c)
                        goto done;
                    break;
                }
            lane_strides(seed[o], nd, strides[np + p], 0);
            dual[p] = (twinc_ndarg){PyArray_DATA(seed[o]), strides[np + p], 0, 0};
        }
    }

    char err[1024] = "";
    int64_t shape64[MAXDIM];
    for (int d = 0; d < nd; d++)
        shape64[d] = dims[d];
    int rc;
    twinc_scratch ws = {NULL, 0};
    Py_BEGIN_ALLOW_THREADS
    rc = twinc_kernel_run_nd(k, mode == EV_GRAD ? TWINC_TWIN_ADJOINT : TWINC_TWIN_PRIMAL, nd, shape64,
                             val, mode == EV_GRAD ? dual : NULL, &ws, err, sizeof err);
    twinc_scratch_free(&ws);
    Py_END_ALLOW_THREADS
    if (rc != TWINC_OK) {
        pyt_raise_status(st, rc, err);
        goto done;
    }

    /* value: one array, or a tuple (return value first) */
    PyObject *value;
    if (nout == 1) {
        Py_INCREF(out[0]);
        value = PyArray_Return(out[0]);
    } else {
        value = PyTuple_New(nout);
        if (!value)
            goto done;
        for (int o = 0; o < nout; o++) {
            Py_INCREF(out[o]);
            PyTuple_SET_ITEM(value, o, PyArray_Return(out[o]));
        }
    }
    if (mode == EV_PRIMAL) {
        result = value;
        goto done;
    }
    PyObject *grads = PyDict_New();
    if (!grads) {
        Py_DECREF(value);
        goto done;
    }
    for (int i = 0; i < nin; i++) {
        int p = self->in_param[i];
        PyObject *gv = NULL;
        if (grad[i]) {
            Py_INCREF(grad[i]);
            gv = PyArray_Return(grad[i]);
        } else if (want[i] && k->params[p].role == TWINC_ROLE_INOUT) {
            int o;
            for (o = 0; o < nout && self->out_param[o] != p; o++)
                ;
            gv = sum_to_shape(dbuf[o], in[i]);
        } else {
            continue;
        }
        if (!gv || PyDict_SetItem(grads, PyTuple_GET_ITEM(self->in_names, i), gv) < 0) {
            Py_XDECREF(gv);
            Py_DECREF(grads);
            Py_DECREF(value);
            goto done;
        }
        Py_DECREF(gv);
    }
    result = PyTuple_Pack(2, value, grads);
    Py_DECREF(value);
    Py_DECREF(grads);

done:
    for (int i = 0; in && i < nin; i++) {
        Py_XDECREF(in[i]);
        Py_XDECREF(grad ? grad[i] : NULL);
    }
    for (int o = 0; out && o < nout; o++) {
        Py_XDECREF(out[o]);
        Py_XDECREF(seed ? seed[o] : NULL);
        Py_XDECREF(dbuf ? dbuf[o] : NULL);
    }
    PyMem_Free(in);
    PyMem_Free(core);
    PyMem_Free(out);
    PyMem_Free(grad);
    PyMem_Free(seed);
    PyMem_Free(dbuf);
    PyMem_Free(val);
    PyMem_Free(dual);
    PyMem_Free(strides);
    PyMem_Free(want);
    return result;
}

static PyObject *kernel_call(Kernel *self, PyObject *args, PyObject *kwargs)
{
    State *st = pyt_state_of((PyObject *)self);
    PyObject *stack[64], **bound = self->nin <= 64 ? stack : PyMem_Calloc((size_t)self->nin, sizeof *bound);
    PyObject *r = NULL;
    if (!bound)
        return PyErr_NoMemory();
    if (bind_args(self, args, kwargs, bound) == 0 && !maybe_trace(st, self, bound, &r, NULL))
        r = kernel_eval(self, bound, EV_PRIMAL, NULL);
    if (bound != stack)
        PyMem_Free(bound);
    return r;
}

/* value_and_grad(*args, wrt=None, seed=None, **kwargs): `wrt` and `seed` are
 * options unless the kernel has inputs of those names. */
static PyObject *kernel_value_and_grad(Kernel *self, PyObject *args, PyObject *kwargs)
{
    State *st = pyt_state_of((PyObject *)self);
    GradOpts opts = {NULL, NULL};
    PyObject *kw = NULL, *r = NULL;
    PyObject *stack[64], **bound = self->nin <= 64 ? stack : PyMem_Calloc((size_t)self->nin, sizeof *bound);
    if (!bound)
        return PyErr_NoMemory();
    if (kwargs) {
        if (!(kw = PyDict_Copy(kwargs)))
            goto done;
        const char *names[2] = {"wrt", "seed"};
        PyObject **slots[2] = {&opts.wrt, &opts.seed};
        for (int j = 0; j < 2; j++) {
            PyObject *key = PyUnicode_FromString(names[j]);
            if (!key)
                goto done;
            int isparam = in_index_of(self, key);
            PyObject *v = isparam == -1 ? PyDict_GetItemWithError(kw, key) : NULL;
            if (v) {
                Py_INCREF(v);
                *slots[j] = v;
                if (PyDict_DelItem(kw, key) < 0) {
                    Py_DECREF(key);
                    goto done;
                }
            }
            Py_DECREF(key);
            if (PyErr_Occurred())
                goto done;
        }
    }
    if (bind_args(self, args, kw, bound) == 0 && !maybe_trace(st, self, bound, &r, "value_and_grad"))
        r = kernel_eval(self, bound, EV_GRAD, &opts);
done:
    Py_XDECREF(kw);
    Py_XDECREF(opts.wrt);
    Py_XDECREF(opts.seed);
    if (bound != stack)
        PyMem_Free(bound);
    return r;
}

static PyObject *kernel_repr(Kernel *self)
{
    PyObject *sig = signature_str(self);
    PyObject *r = sig ? PyUnicode_FromFormat("<twinc kernel %U from %s:%d>", sig,
                                             self->k->file ? self->k->file : "?", self->k->line)
                      : NULL;
    Py_XDECREF(sig);
    return r;
}

static PyObject *kernel_get_name(Kernel *self, void *c)
{
    (void)c;
    return PyUnicode_FromString(self->k->name);
}

static PyObject *kernel_get_file(Kernel *self, void *c)
{
    (void)c;
    return PyUnicode_FromString(self->k->file ? self->k->file : "");
}

static PyObject *kernel_get_line(Kernel *self, void *c)
{
    (void)c;
    return PyLong_FromLong(self->k->line);
}

static PyObject *kernel_get_inputs(Kernel *self, void *c)
{
    (void)c;
    Py_INCREF(self->in_names);
    return self->in_names;
}

static PyObject *kernel_get_outputs(Kernel *self, void *c)
{
    (void)c;
    Py_INCREF(self->out_names);
    return self->out_names;
}

static PyObject *kernel_get_library(Kernel *self, void *c)
{
    (void)c;
    Py_INCREF(self->library);
    return self->library;
}

static PyObject *kernel_get_params(Kernel *self, void *c)
{
    (void)c;
    const twinc_kernel *k = self->k;
    PyObject *t = PyTuple_New(k->nparams);
    if (!t)
        return NULL;
    for (int p = 0; p < k->nparams; p++) {
        const twinc_param *pp = &k->params[p];
        const char *role = pp->role == TWINC_ROLE_IN      ? "in"
                           : pp->role == TWINC_ROLE_OUT   ? "out"
                           : pp->role == TWINC_ROLE_INOUT ? "inout"
                                                          : "return";
        PyObject *d = Py_BuildValue("{s:s,s:s,s:s,s:O,s:O,s:z}", "name", pp->name, "type", type_name(pp->type),
                                    "role", role, "active", (pp->flags & TWINC_PARAM_ACTIVE) ? Py_True : Py_False,
                                    "uniform", (pp->flags & TWINC_PARAM_UNIFORM) ? Py_True : Py_False,
                                    "length", pp->length);
        if (!d) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, p, d);
    }
    return t;
}

/* The registry's default gradient-check point (ABI 2): "name=value,...", or None. */
static PyObject *kernel_get_check_at(Kernel *self, void *c)
{
    (void)c;
    if (!self->k->check_at)
        Py_RETURN_NONE;
    return PyUnicode_FromString(self->k->check_at);
}

static PyObject *kernel_get_doc(Kernel *self, void *c)
{
    (void)c;
    PyObject *sig = signature_str(self);
    if (!sig)
        return NULL;
    PyObject *r = PyUnicode_FromFormat(
        "%U -> %R\n\ntwinc kernel from %s:%d.  Arguments broadcast like NumPy; the result has the "
        "broadcast shape.\nvalue_and_grad(...) returns (value, {input: gradient}) from the adjoint "
        "twin.",
        sig, self->out_names, self->k->file ? self->k->file : "?", self->k->line);
    Py_DECREF(sig);
    return r;
}

static PyMethodDef kernel_methods[] = {
    {"value_and_grad", (PyCFunction)(void (*)(void))kernel_value_and_grad, METH_VARARGS | METH_KEYWORDS,
     "value_and_grad(*args, wrt=None, seed=None, **kwargs) -> (value, {name: gradient})\n\n"
     "Run the adjoint twin: the value, and the gradient of sum(seed * output) with respect to each "
     "differentiable input (shaped like that input; shared inputs are summed over the lanes).  "
     "seed defaults to 1 for the return value; a dict {output: seed} selects outputs."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef kernel_getset[] = {
    {"name", (getter)kernel_get_name, NULL, "the kernel's name", NULL},
    {"file", (getter)kernel_get_file, NULL, "the source file of its #pragma aad function", NULL},
    {"line", (getter)kernel_get_line, NULL, "the line of its definition", NULL},
    {"inputs", (getter)kernel_get_inputs, NULL, "names of the input parameters, in order", NULL},
    {"outputs", (getter)kernel_get_outputs, NULL, "names of the outputs: 'return' first, then out-parameters", NULL},
    {"params", (getter)kernel_get_params, NULL, "the registry's parameter table", NULL},
    {"library", (getter)kernel_get_library, NULL, "the Library it belongs to", NULL},
    {"check_at", (getter)kernel_get_check_at, NULL,
     "the point `#pragma aad check(...)` gives for gradient checks, \"name=value,...\" (None: none)", NULL},
    {"__doc__", (getter)kernel_get_doc, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot kernel_slots[] = {
    {Py_tp_dealloc, kernel_dealloc},
    {Py_tp_traverse, kernel_traverse},
    {Py_tp_clear, kernel_clear},
    {Py_tp_call, kernel_call},
    {Py_tp_repr, kernel_repr},
    {Py_tp_methods, kernel_methods},
    {Py_tp_getset, kernel_getset},
    {0, NULL},
};

PyType_Spec pyt_kernel_spec = {
    .name = "twinc._twinc.Kernel",
    .basicsize = sizeof(Kernel),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = kernel_slots,
};
