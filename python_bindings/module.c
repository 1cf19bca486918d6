/*
 * module.c — twinc._twinc: module state, exceptions, load(), ncdf()/npdf()
 * on arrays, and the registration of the Python layer's traced-array type.
 *
 * Multi-phase initialisation (PEP 489): the exec slot creates the heap types
 * and exceptions into the module state; subinterpreters and reloads each get
 * their own.  The Python package (twinc/__init__.py) imports this module and
 * calls _set_tracer() once, so that Kernel.__call__ can tell a traced
 * argument from an array without importing Python code.
 *
 * MIT licence — see LICENSE.
 */
#define PYT_IMPORT_ARRAY
#include "pyt.h"

PyObject *pyt_raise_status(State *st, int status, const char *msg)
{
    PyObject *type;
    switch (status) {
    case TWINC_ENOMEM: type = PyExc_MemoryError; break;
    case TWINC_EINVAL:
    case TWINC_EUNIFORM: type = PyExc_ValueError; break;
    default: type = st ? st->Error : PyExc_RuntimeError; break;
    }
    PyErr_SetString(type, msg && *msg ? msg : twinc_strerror(status));
    return NULL;
}

PyArrayObject *pyt_as_double(PyObject *obj, const char *what, int flags)
{
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_OF(obj, 0);
    if (!a)
        return NULL;
    PyArray_Descr *want = PyArray_DescrFromType(NPY_DOUBLE);
    if (!PyArray_CanCastTo(PyArray_DESCR(a), want)) {
        PyErr_Format(PyExc_TypeError, "%s: cannot convert %R values to float64 without losing "
                     "information; convert them explicitly (e.g. .astype(float))",
                     what, (PyObject *)PyArray_DESCR(a));
        Py_DECREF(want);
        Py_DECREF(a);
        return NULL;
    }
    /* steals the reference to want */
    PyArrayObject *r = (PyArrayObject *)PyArray_FromArray(a, want, flags | NPY_ARRAY_ALIGNED);
    Py_DECREF(a);
    return r;
}

uint64_t pyt_fingerprint(const void *p, size_t bytes)
{
    const unsigned char *b = p;
    uint64_t s = 0, x = 0;
    size_t n = bytes / 8;
    for (size_t i = 0; i < n; i++) {
        uint64_t w;
        memcpy(&w, b + 8 * i, 8);
        s += w;
        x ^= w * 0x9E3779B97F4A7C15ull;
    }
    for (size_t i = 8 * n; i < bytes; i++)
        s += (uint64_t)b[i] << (8 * (i % 8));
    return s ^ (x << 1 | x >> 63);
}

/* ---- module functions ---- */

static PyObject *mod_load(PyObject *module, PyObject *path) { return pyt_load(module, path); }

/* ncdf(x) / npdf(x) on arrays: the kernels' own normal CDF and density. */
static PyObject *apply_unary(PyObject *x, int which)
{
    PyArrayObject *a = pyt_as_double(x, which ? "npdf" : "ncdf", NPY_ARRAY_IN_ARRAY);
    if (!a)
        return NULL;
    PyArrayObject *r = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(a), PyArray_DIMS(a), NPY_DOUBLE);
    if (!r) {
        Py_DECREF(a);
        return NULL;
    }
    const double *in = PyArray_DATA(a);
    double *out = PyArray_DATA(r);
    npy_intp n = PyArray_SIZE(a);
    Py_BEGIN_ALLOW_THREADS
    if (which)
        for (npy_intp i = 0; i < n; i++)
            out[i] = twinc_npdf(in[i]);
    else
        for (npy_intp i = 0; i < n; i++)
            out[i] = twinc_ncdf(in[i]);
    Py_END_ALLOW_THREADS
    Py_DECREF(a);
    return PyArray_Return(r);
}

static PyObject *mod_ncdf(PyObject *module, PyObject *x)
{
    (void)module;
    return apply_unary(x, 0);
}

static PyObject *mod_npdf(PyObject *module, PyObject *x)
{
    (void)module;
    return apply_unary(x, 1);
}

static PyObject *mod_set_tracer(PyObject *module, PyObject *args)
{
    PyObject *type, *hook;
    if (!PyArg_ParseTuple(args, "OO:_set_tracer", &type, &hook))
        return NULL;
    if (!PyType_Check(type) || !PyCallable_Check(hook)) {
        PyErr_SetString(PyExc_TypeError, "_set_tracer(type, callable)");
        return NULL;
    }
    State *st = pyt_state(module);
    Py_INCREF(type);
    Py_INCREF(hook);
    Py_XSETREF(st->tracer_type, type);
    Py_XSETREF(st->trace_kernel, hook);
    Py_RETURN_NONE;
}

static PyObject *mod_config(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    int vm = twinc_graph_vector_math();
    return Py_BuildValue("{s:i,s:s,s:i}", "threads", twinc_graph_threads(), "vector_math",
                         vm == 2 ? "libmvec AVX-512" : vm == 1 ? "libmvec AVX2" : "libm",
                         "abi_version", TWINC_ABI_VERSION);
}

static PyMethodDef mod_methods[] = {
    {"config", mod_config, METH_NOARGS,
     "config() -> dict: worker threads (TWINC_NUM_THREADS) and the vector math in use (TWINC_VMATH)."},
    {"load", mod_load, METH_O,
     "load(path) -> Library\n\nOpen a shared library built from twinc twins; its kernels are "
     "attributes of the result."},
    {"ncdf", mod_ncdf, METH_O, "ncdf(x) -> array: the standard normal CDF, elementwise."},
    {"npdf", mod_npdf, METH_O, "npdf(x) -> array: the standard normal density, elementwise."},
    {"_set_tracer", mod_set_tracer, METH_VARARGS, "internal: register the traced-array type."},
    {NULL, NULL, 0, NULL},
};

/* ---- initialisation ---- */

static int add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot)
{
    PyObject *t = PyType_FromModuleAndSpec(module, spec, NULL);
    if (!t)
        return -1;
    *slot = (PyTypeObject *)t;
    const char *dot = strrchr(spec->name, '.');
    Py_INCREF(t);
    if (PyModule_AddObject(module, dot ? dot + 1 : spec->name, t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

static int add_exception(PyObject *module, const char *name, PyObject *base, const char *doc,
                         PyObject **slot)
{
    char full[128];
    snprintf(full, sizeof full, "twinc.%s", name);
    PyObject *e = PyErr_NewExceptionWithDoc(full, doc, base, NULL);
    if (!e)
        return -1;
    *slot = e;
    Py_INCREF(e);
    if (PyModule_AddObject(module, name, e) < 0) {
        Py_DECREF(e);
        return -1;
    }
    return 0;
}

static int mod_exec(PyObject *module)
{
    State *st = pyt_state(module);
    if (_import_array() < 0)
        return -1;
    if (add_exception(module, "TwincError", PyExc_RuntimeError, "An error reported by the twinc runtime.", &st->Error) < 0 ||
        add_exception(module, "LoadError", st->Error, "A shared library twinc cannot use (no registry, another ABI, ...).", &st->LoadError) < 0 ||
        add_exception(module, "InputMutatedError", st->Error,
                      "An input array was written by another thread while a replay read it.", &st->MutatedError) < 0)
        return -1;
    if (add_type(module, &pyt_library_spec, &st->Library) < 0 ||
        add_type(module, &pyt_kernel_spec, &st->Kernel) < 0 ||
        add_type(module, &pyt_graph_spec, &st->Graph) < 0)
        return -1;
    if (pyt_add_op_table(module) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "ABI_VERSION", TWINC_ABI_VERSION) < 0 ||
        PyModule_AddIntConstant(module, "MAXDIM", TWINC_GRAPH_MAXDIM) < 0)
        return -1;
    return 0;
}

static int mod_traverse(PyObject *module, visitproc visit, void *arg)
{
    State *st = pyt_state(module);
    Py_VISIT(st->Library);
    Py_VISIT(st->Kernel);
    Py_VISIT(st->Graph);
    Py_VISIT(st->Error);
    Py_VISIT(st->LoadError);
    Py_VISIT(st->MutatedError);
    Py_VISIT(st->tracer_type);
    Py_VISIT(st->trace_kernel);
    return 0;
}

static int mod_clear(PyObject *module)
{
    State *st = pyt_state(module);
    Py_CLEAR(st->Library);
    Py_CLEAR(st->Kernel);
    Py_CLEAR(st->Graph);
    Py_CLEAR(st->Error);
    Py_CLEAR(st->LoadError);
    Py_CLEAR(st->MutatedError);
    Py_CLEAR(st->tracer_type);
    Py_CLEAR(st->trace_kernel);
    return 0;
}

static void mod_free(void *module) { mod_clear((PyObject *)module); }

static PyModuleDef_Slot mod_slots[] = {
    {Py_mod_exec, (void *)mod_exec},
    {0, NULL},
};

PyModuleDef pyt_moduledef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "twinc._twinc",
    .m_doc = "Native core of twinc: generated kernels and the graph runtime.",
    .m_size = sizeof(State),
    .m_methods = mod_methods,
    .m_slots = mod_slots,
    .m_traverse = mod_traverse,
    .m_clear = mod_clear,
    .m_free = mod_free,
};

PyMODINIT_FUNC PyInit__twinc(void) { return PyModuleDef_Init(&pyt_moduledef); }
