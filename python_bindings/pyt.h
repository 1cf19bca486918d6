/*
 * pyt.h — shared declarations of the twinc extension module (twinc._twinc).
 *
 * Three files, one module:
 *   module.c   multi-phase init, module state, load(), ncdf(), the hooks the
 *              Python layer registers (its traced-array type), exceptions;
 *   kernel.c   Library (an opened twin library) and Kernel (one registry
 *              entry: callable on NumPy arrays, value_and_grad);
 *   graph.c    Graph, the Python face of runtime/twinc_graph.h: recording
 *              calls, compile, forward and gradient replays (GIL released).
 *
 * Every type is a heap type created with PyType_FromModuleAndSpec, so its
 * methods reach the module state through their own type; nothing is global.
 *
 * MIT licence — see LICENSE.
 */
#ifndef TWINC_PYT_H
#define TWINC_PYT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define PY_ARRAY_UNIQUE_SYMBOL twinc_ARRAY_API
#ifndef PYT_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "twinc.h"
#include "twinc_graph.h"

typedef struct State {
    PyTypeObject *Library;
    PyTypeObject *Kernel;
    PyTypeObject *Graph;
    PyObject *Error;        /* twinc.TwincError (RuntimeError) */
    PyObject *LoadError;    /* twinc.LoadError (TwincError): a library twinc cannot use */
    PyObject *MutatedError; /* twinc.InputMutatedError (TwincError) */
    PyObject *tracer_type;  /* the Python layer's traced-array class, or NULL */
    PyObject *trace_kernel; /* its hook: trace_kernel(kernel, args) -> outputs */
} State;

extern PyModuleDef pyt_moduledef;

static inline State *pyt_state(PyObject *module) { return (State *)PyModule_GetState(module); }
static inline State *pyt_state_of(PyObject *self)
{
    return (State *)PyType_GetModuleState(Py_TYPE(self));
}

/* kernel.c */
extern PyType_Spec pyt_library_spec;
extern PyType_Spec pyt_kernel_spec;
PyObject *pyt_load(PyObject *module, PyObject *path);
/* The kernel record behind a Kernel object (NULL with TypeError if obj is not one). */
const twinc_kernel *pyt_kernel_record(State *st, PyObject *obj);

/* graph.c */
extern PyType_Spec pyt_graph_spec;
int pyt_add_op_table(PyObject *module);

/* Raise the exception that fits a twinc_status, with msg. */
PyObject *pyt_raise_status(State *st, int status, const char *msg);

/* A float64 array from any array-like, converting only when it loses nothing
 * (NumPy's safe casting): TypeError naming `what` otherwise.  flags as for
 * PyArray_FromAny (0: any layout). */
PyArrayObject *pyt_as_double(PyObject *obj, const char *what, int flags);

/* 64-bit fingerprint of a buffer (detects writes by other threads). */
uint64_t pyt_fingerprint(const void *p, size_t bytes);

#endif
