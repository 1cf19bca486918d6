"""Recording NumPy code into a twinc graph.

A :class:`Tracer` stands for an array whose values are not known while a
function is being recorded: it has a shape and a dtype, and every NumPy
operation on it (through ``__array_ufunc__`` / ``__array_function__``, the
operators, indexing and methods) appends a node to the recording's graph
(``twinc._twinc.Graph``) instead of computing.  Kernel calls on tracers become
kernel nodes (the C extension hands them to :func:`_trace_kernel`).

Views are kept the way NumPy keeps them: a tracer made by slicing, transposing,
broadcasting or reshaping is a (root node, offset, strides) triple over the
root's elements, so chains of views cost nothing, and the graph compiler reads
them in place.  Writing into a tracer (``x[i] = v``) records a new version of
it; a view taken before the write is stale and refuses to be used (NumPy would
show it the new values, a recording cannot).

Nothing here computes: what can only be decided from values (``bool(x)``,
``float(x)``, data-dependent shapes) raises an error that says what to write
instead.  This module holds no state besides the recording a tracer belongs to.
"""

import math
import operator
import warnings

import numpy as np

from . import _twinc

__all__ = ["Tracer", "TracerConversionError", "UnsupportedError", "TwincWarning", "Tape",
           "ncdf", "npdf", "SUPPORTED"]

OPS = _twinc.OPS
_F8 = np.dtype(np.float64)
_B1 = np.dtype(np.bool_)
_I8 = np.dtype(np.int64)

# Constants recorded from outside the function (closures, globals, np.random
# calls inside it) larger than this get a warning: they are frozen into the graph.
BIG_CONSTANT = 10000


class TracerConversionError(TypeError):
    """A traced value was asked for a concrete Python value while recording."""


class UnsupportedError(TypeError):
    """A NumPy function or feature twinc cannot record."""


class TwincWarning(UserWarning):
    """Something that records but probably does not do what was meant."""


_WHERE_HINT = ("the value is not known while the function is recorded, and a graph replays "
               "the same operations for every input, so a Python branch on it would be "
               "frozen. Select per element with np.where(condition, a, b) instead")


def _contig(shape):
    st, s = [], 1
    for n in reversed(shape):
        st.append(s)
        s *= n
    return tuple(reversed(st))


def _size(shape):
    return math.prod(shape)


def _canon_dtype(dt):
    dt = np.dtype(dt)
    if dt.kind == "f":
        return _F8
    if dt.kind == "b":
        return _B1
    if dt.kind in "iu":
        return _I8
    raise UnsupportedError(f"dtype {dt} cannot be recorded (float, int and bool can)")


class Tape:
    """One recording: the graph under construction and its bookkeeping."""

    def __init__(self):
        self.graph = _twinc.Graph()
        self.closed = False
        self._scalars = {}
        self.inputs = []

    def check(self):
        if self.closed:
            raise RuntimeError("this traced value belongs to a recording that has finished; "
                               "traced values cannot be used outside the function (or "
                               "`with twinc.record()` block) that recorded them")

    def input(self, shape, dtype, differentiable):
        self.check()
        node = self.graph.input(tuple(shape), bool(differentiable))
        t = Tracer._make(self, node, tuple(shape), _canon_dtype(dtype))
        t._flags |= Tracer.INPUT
        self.inputs.append(t)
        return t

    def scalar(self, v):
        v = float(v)
        key = (v, math.copysign(1.0, v)) if v == v else ("nan",)
        node = self._scalars.get(key)
        if node is None:
            node = self._scalars[key] = self.graph.scalar(v)
        return node

    def const(self, a):
        a = np.asarray(a)
        if a.ndim == 0:
            return self.scalar(a.item() if a.dtype.kind != "b" else float(a))
        _canon_dtype(a.dtype)
        if a.size >= BIG_CONSTANT:
            warnings.warn(
                f"a {a.size}-element array (shape {a.shape}) from outside the recorded function "
                "is frozen into the graph as a constant; if it is random numbers or data that "
                "changes between calls, pass it as an argument instead", TwincWarning,
                stacklevel=4)
        return self.graph.const(a.astype(np.float64, copy=False))

    def filled(self, shape, value, dtype):
        """An array of one value (no constant data: a broadcast view, materialised)."""
        node = self.graph.view(self.scalar(value), tuple(shape), 0, (0,) * len(shape))
        return Tracer._make(self, node, tuple(shape), _canon_dtype(dtype))


class Tracer:
    """An array being recorded (see the module documentation)."""

    __slots__ = ("_tape", "_root", "_rshape", "_offset", "_strides", "_node", "shape", "dtype",
                 "_src", "_ver", "_flags")
    __array_priority__ = 1000.0
    INPUT = 1

    @classmethod
    def _make(cls, tape, node, shape, dtype):
        t = object.__new__(cls)
        t._tape = tape
        t._root = node
        t._rshape = shape
        t._offset = 0
        t._strides = _contig(shape)
        t._node = node
        t.shape = shape
        t.dtype = dtype
        t._src = None
        t._ver = 0
        t._flags = 0
        return t

    def _view(self, shape, offset, strides):
        """A view of the same root (NumPy's view semantics)."""
        self._live()
        t = object.__new__(Tracer)
        t._tape = self._tape
        t._root = self._root
        t._rshape = self._rshape
        t._offset = offset
        t._strides = tuple(strides)
        t._node = None
        t.shape = tuple(shape)
        t.dtype = self.dtype
        src = self._src if self._src is not None else self
        t._src = src
        t._ver = src._ver
        t._flags = 0
        if (shape == self._rshape and offset == 0 and
                all(s == c or n == 1 for s, c, n in zip(t._strides, _contig(shape), shape))):
            t._node = self._root
        return t

    def _live(self):
        if self._src is not None and self._src._ver != self._ver:
            raise RuntimeError(
                "this traced array is a view of an array that was written to after the view "
                "was taken (x[...] = ...); NumPy would show the view the new values, a "
                "recording cannot: take the view again after the write")

    def _id(self):
        """The graph node holding this array's values."""
        self._live()
        self._tape.check()
        if self._node is None:
            self._node = self._tape.graph.view(self._root, self.shape, self._offset, self._strides)
        return self._node

    def _contiguous(self):
        """Offset and strides if this array is row-major over its root, else None."""
        cs = _contig(self.shape)
        if all(s == c or n == 1 for s, c, n in zip(self._strides, cs, self.shape)):
            return self._offset
        return None

    # ---- NumPy protocol ----

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        impl = _FUNCTIONS.get(func)
        if impl is None:
            raise UnsupportedError(
                f"{_qualname(func)} is not supported on traced values: twinc cannot record it "
                f"into a graph (twinc.SUPPORTED lists what it can record)")
        return impl(*args, **kwargs)

    def __array__(self, dtype=None):
        raise TracerConversionError(
            "converting a traced value to a NumPy array (np.asarray, np.array, storing it into a "
            "NumPy array, or a NumPy function twinc does not record) would freeze its value at "
            "recording time. Keep it traced: use NumPy operations on it, build arrays with "
            "np.stack / np.concatenate, or start from a traced one (np.zeros_like(x))")

    # ---- what needs a value ----

    def __bool__(self):
        raise TracerConversionError(f"bool() of a traced value (an `if`, `while`, `and`, `or` "
                                    f"or `not` on it): {_WHERE_HINT}")

    def __float__(self):
        raise TracerConversionError(
            f"float() of a traced value: {_WHERE_HINT}. (Storing it into a NumPy array does "
            "this too: create that array from a traced one, e.g. np.zeros_like(x))")

    def __int__(self):
        raise TracerConversionError(f"int() of a traced value: {_WHERE_HINT}")

    def __index__(self):
        raise TracerConversionError(
            "using a traced value as an index, a size or a count: shapes must be known while "
            "recording. If it is a function argument that sets a size, make it static "
            "(twinc.function(f, static_argnums=...)); to select values use np.where")

    def __complex__(self):
        raise TracerConversionError(f"complex() of a traced value: {_WHERE_HINT}")

    def item(self, *args):
        raise TracerConversionError(f".item() of a traced value: {_WHERE_HINT}")

    def tolist(self):
        raise TracerConversionError(f".tolist() of a traced value: {_WHERE_HINT}")

    # ---- array attributes ----

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return _size(self.shape)

    @property
    def T(self):
        return transpose(self)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        return f"Tracer(shape={self.shape}, dtype={self.dtype})"

    # ---- operators (all through the ufuncs) ----

    def __add__(self, o): return np.add(self, o)
    def __radd__(self, o): return np.add(o, self)
    def __sub__(self, o): return np.subtract(self, o)
    def __rsub__(self, o): return np.subtract(o, self)
    def __mul__(self, o): return np.multiply(self, o)
    def __rmul__(self, o): return np.multiply(o, self)
    def __truediv__(self, o): return np.true_divide(self, o)
    def __rtruediv__(self, o): return np.true_divide(o, self)
    def __pow__(self, o): return np.power(self, o)
    def __rpow__(self, o): return np.power(o, self)
    def __matmul__(self, o): return np.matmul(self, o)
    def __rmatmul__(self, o): return np.matmul(o, self)
    def __neg__(self): return np.negative(self)
    def __pos__(self): return np.positive(self)
    def __abs__(self): return np.absolute(self)
    def __lt__(self, o): return np.less(self, o)
    def __le__(self, o): return np.less_equal(self, o)
    def __gt__(self, o): return np.greater(self, o)
    def __ge__(self, o): return np.greater_equal(self, o)
    def __eq__(self, o): return np.equal(self, o)
    def __ne__(self, o): return np.not_equal(self, o)
    def __and__(self, o): return np.bitwise_and(self, o)
    def __rand__(self, o): return np.bitwise_and(o, self)
    def __or__(self, o): return np.bitwise_or(self, o)
    def __ror__(self, o): return np.bitwise_or(o, self)
    def __xor__(self, o): return np.bitwise_xor(self, o)
    def __rxor__(self, o): return np.bitwise_xor(o, self)
    def __invert__(self): return np.invert(self)
    __hash__ = None

    def __floordiv__(self, o): return np.floor_divide(self, o)
    def __rfloordiv__(self, o): return np.floor_divide(o, self)
    def __mod__(self, o): return np.remainder(self, o)
    def __rmod__(self, o): return np.remainder(o, self)

    # ---- methods ----

    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _sum(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _mean(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _prod(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def max(self, axis=None, out=None, keepdims=False, **kw):
        return _max(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def min(self, axis=None, out=None, keepdims=False, **kw):
        return _min(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def any(self, axis=None, out=None, keepdims=False, **kw):
        return _any(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def all(self, axis=None, out=None, keepdims=False, **kw):
        return _all(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _var(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _std(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)

    def cumsum(self, axis=None, dtype=None, out=None):
        return _cumsum(self, axis=axis, dtype=dtype, out=out)

    def cumprod(self, axis=None, dtype=None, out=None):
        return _cumprod(self, axis=axis, dtype=dtype, out=out)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return reshape(self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return transpose(self, axes or None)

    def swapaxes(self, a, b):
        return swapaxes(self, a, b)

    def squeeze(self, axis=None):
        return squeeze(self, axis)

    def ravel(self, order="C"):
        return reshape(self, (-1,), order=order)

    def flatten(self, order="C"):
        return reshape(self, (-1,), order=order)

    def dot(self, b, out=None):
        return dot(self, b, out=out)

    def clip(self, min=None, max=None, out=None, **kw):
        return clip(self, min, max, out=out, **kw)

    def copy(self, order="C"):
        return copy(self)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        dt = np.dtype(dtype)
        if dt.kind == "f":
            r = self._same(self._id(), _F8)
        elif dt.kind == "b":
            r = np.not_equal(self, 0)
        elif dt.kind in "iu":
            if self.dtype.kind in "iu":
                return self._same(self._id(), _I8)
            if self.dtype.kind == "b":
                return self._same(self._id(), _I8)
            # truncation toward zero, as NumPy casts
            g = self._tape.graph
            node = g.binary(OPS["multiply"], g.unary(OPS["sign"], self._id()),
                            g.unary(OPS["floor"], g.unary(OPS["absolute"], self._id())))
            return Tracer._make(self._tape, node, self.shape, _I8)
        else:
            raise UnsupportedError(f"astype({dt}): only float, int and bool can be recorded")
        return r

    def _same(self, node, dtype):
        return Tracer._make(self._tape, node, self.shape, dtype)

    # ---- indexing ----

    def __getitem__(self, key):
        return _getitem(self, key)

    def __setitem__(self, key, value):
        _setitem(self, key, value)


# ---- operands ----

def _tape_of(values):
    tape = None
    for v in values:
        if isinstance(v, Tracer):
            v._tape.check()
            if tape is None:
                tape = v._tape
            elif v._tape is not tape:
                raise ValueError("traced values from two different recordings cannot be combined")
        elif isinstance(v, (list, tuple)):
            t = _tape_of(v)
            if t is not None:
                if tape is not None and t is not tape:
                    raise ValueError("traced values from two different recordings cannot be combined")
                tape = t
    if tape is None:
        raise TypeError("internal: no traced value among the operands")
    tape.check()
    return tape


def _dtype_of(v):
    if isinstance(v, Tracer):
        return v.dtype
    if isinstance(v, (bool, np.bool_)):
        return _B1
    if isinstance(v, (int, np.integer)):
        return _I8
    if isinstance(v, (float, np.floating)):
        return _F8
    return _canon_dtype(np.asarray(v).dtype)


def _operand(tape, v):
    """Node id of a tracer or a constant."""
    if isinstance(v, Tracer):
        if v._tape is not tape:
            raise ValueError("traced values from two different recordings cannot be combined")
        return v._id()
    if isinstance(v, (bool, int, float, np.generic)):
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and abs(int(v)) > 2 ** 53:
            raise UnsupportedError(f"the integer {v} is not exactly representable as float64, "
                                   "which recordings compute in")
        if isinstance(v, np.generic):
            _canon_dtype(v.dtype)
        return tape.scalar(float(v))
    if isinstance(v, (list, tuple)) and any(isinstance(x, Tracer) for x in _flat(v)):
        return stack(v)._id()
    a = np.asarray(v)
    _canon_dtype(a.dtype)
    return tape.const(a)


def _flat(v):
    for x in v:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _as_tracer(tape, v):
    if isinstance(v, Tracer):
        return v
    node = _operand(tape, v)
    return Tracer._make(tape, node, tuple(tape.graph.shape(node)), _dtype_of(v))


def _qualname(func):
    mod = getattr(func, "__module__", None) or "numpy"
    if mod.startswith("numpy.core") or mod == "numpy":
        mod = "numpy"
    return f"{mod}.{getattr(func, '__name__', repr(func))}"


# ---- ufuncs ----

_DT_CACHE = {}


def _result_dtype(ufunc, inputs):
    key = [ufunc]
    dummies = []
    for v in inputs:
        if isinstance(v, Tracer):
            key.append(v.dtype)
            dummies.append(np.zeros(1, v.dtype))
        elif type(v) in (bool, int, float):
            key.append(type(v))
            dummies.append(type(v)(0))
        else:
            dt = _dtype_of(v)
            key.append(dt)
            dummies.append(np.zeros(1, dt))
    key = tuple(key)
    dt = _DT_CACHE.get(key)
    if dt is None:
        with np.errstate(all="ignore"):
            r = ufunc(*dummies)
        if isinstance(r, tuple):
            raise UnsupportedError(f"numpy.{ufunc.__name__} has several outputs; not supported")
        dt = _DT_CACHE[key] = _canon_dtype(r.dtype)
    return dt


# ufunc name -> graph operation (elementwise)
_UNARY = {"negative": "negative", "square": "square", "sqrt": "sqrt", "exp": "exp", "log": "log",
          "log1p": "log1p", "expm1": "expm1", "absolute": "absolute", "fabs": "absolute",
          "tanh": "tanh", "sin": "sin", "cos": "cos", "sign": "sign", "floor": "floor",
          "ceil": "ceil", "logical_not": "logical_not", "ndtr": "ncdf", "erf": "erf"}
_BINARY = {"add": "add", "subtract": "subtract", "multiply": "multiply", "true_divide": "divide",
           "divide": "divide", "power": "power", "float_power": "power", "maximum": "maximum",
           "minimum": "minimum", "fmax": "fmax", "fmin": "fmin", "less": "less",
           "less_equal": "less_equal", "greater": "greater", "greater_equal": "greater_equal",
           "equal": "equal", "not_equal": "not_equal", "logical_and": "logical_and",
           "logical_or": "logical_or", "logical_xor": "logical_xor"}
_NONDIFF = {"sign", "floor", "ceil", "logical_not"}


def _ufunc(ufunc, method, inputs, kwargs):
    name = ufunc.__name__
    out = kwargs.pop("out", None)
    if out is not None and any(o is not None for o in (out if isinstance(out, tuple) else (out,))):
        raise UnsupportedError(
            f"numpy.{name}(..., out=...) on a traced value: a recording cannot write into an "
            "existing array; use the returned value")
    where = kwargs.pop("where", True)
    if where is not True:
        raise UnsupportedError(f"numpy.{name}(..., where=...) is not supported on traced values; "
                               "use np.where(condition, numpy.%s(...), other)" % name)
    dtype = kwargs.pop("dtype", None)
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise UnsupportedError(f"numpy.{name}(..., dtype={dtype}): recordings compute in float64")
    kwargs.pop("casting", None)
    kwargs.pop("order", None)
    kwargs.pop("subok", None)
    if method == "__call__":
        if kwargs:
            raise UnsupportedError(f"numpy.{name} with arguments {sorted(kwargs)} is not supported "
                                   "on traced values")
        return _ufunc_call(ufunc, name, inputs)
    if method == "reduce":
        (x,) = inputs
        red = {"add": _sum, "multiply": _prod, "maximum": _max, "minimum": _min, "fmax": _max,
               "fmin": _min, "logical_and": _all, "logical_or": _any}.get(name)
        if red is not None:
            return red(x, axis=kwargs.pop("axis", 0), keepdims=kwargs.pop("keepdims", False),
                       **kwargs)
    if method == "accumulate":
        (x,) = inputs
        acc = {"add": _cumsum, "multiply": _cumprod}.get(name)
        if acc is not None:
            return acc(x, axis=kwargs.pop("axis", 0))
    raise UnsupportedError(f"numpy.{name}.{method} is not supported on traced values")


def _ufunc_call(ufunc, name, inputs):
    tape = _tape_of(inputs)
    g = tape.graph
    if name == "matmul":
        return matmul(*inputs)
    dt = _result_dtype(ufunc, inputs)
    if name == "positive":
        return _as_tracer(tape, inputs[0]).copy()
    if name == "reciprocal":
        return _wrap(tape, g.binary(OPS["divide"], tape.scalar(1.0), _operand(tape, inputs[0])), dt)
    if name in ("exp2",):
        return _wrap(tape, g.binary(OPS["power"], tape.scalar(2.0), _operand(tape, inputs[0])), dt)
    if name in ("log2", "log10"):
        c = 1.0 / math.log(2.0 if name == "log2" else 10.0)
        return _wrap(tape, g.binary(OPS["multiply"], g.unary(OPS["log"], _operand(tape, inputs[0])),
                                    tape.scalar(c)), dt)
    if name in ("isnan", "isfinite", "isinf"):
        a = _operand(tape, inputs[0])
        if name == "isnan":
            node = g.binary(OPS["not_equal"], a, a)
        elif name == "isfinite":
            node = g.binary(OPS["equal"], g.binary(OPS["subtract"], a, a), tape.scalar(0.0))
        else:  # inf - inf is nan, nan is not infinite: |a| == inf
            node = g.binary(OPS["equal"], g.unary(OPS["absolute"], a), tape.scalar(math.inf))
        return _wrap(tape, node, _B1)
    if name in ("bitwise_and", "bitwise_or", "bitwise_xor", "invert"):
        if any(_dtype_of(v) != _B1 for v in inputs):
            raise UnsupportedError(f"numpy.{name} on integers is not supported on traced values "
                                   "(on booleans it is the logical operation)")
        name = {"bitwise_and": "logical_and", "bitwise_or": "logical_or",
                "bitwise_xor": "logical_xor", "invert": "logical_not"}[name]
    if dt == _B1 and name in ("add", "multiply", "maximum", "minimum"):
        # NumPy: on booleans + is or, * is and
        name = {"add": "logical_or", "multiply": "logical_and", "maximum": "logical_or",
                "minimum": "logical_and"}[name]
    if name in _UNARY and len(inputs) == 1:
        return _wrap(tape, g.unary(OPS[_UNARY[name]], _operand(tape, inputs[0])), dt)
    if name in _BINARY and len(inputs) == 2:
        return _wrap(tape, g.binary(OPS[_BINARY[name]], _operand(tape, inputs[0]),
                                    _operand(tape, inputs[1])), dt)
    raise UnsupportedError(f"numpy.{name} (a ufunc) is not supported on traced values; "
                           "twinc.SUPPORTED lists what can be recorded")


def _wrap(tape, node, dtype):
    return Tracer._make(tape, node, tuple(tape.graph.shape(node)), dtype)


def ncdf(x):
    """The standard normal CDF, elementwise; recorded on traced values."""
    if isinstance(x, Tracer):
        return _wrap(x._tape, x._tape.graph.unary(OPS["ncdf"], x._id()), _F8)
    return _twinc.ncdf(x)


def npdf(x):
    """The standard normal density, elementwise; recorded on traced values."""
    if isinstance(x, Tracer):
        return _wrap(x._tape, x._tape.graph.unary(OPS["npdf"], x._id()), _F8)
    return _twinc.npdf(x)


# ---- __array_function__ implementations ----

_FUNCTIONS = {}


def _implements(*funcs):
    def deco(impl):
        for f in funcs:
            _FUNCTIONS[f] = impl
        return impl
    return deco


def _norm_axes(axis, ndim, what):
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise np.AxisError(a, ndim)
        a %= ndim
        if a in out:
            raise ValueError(f"{what}: duplicate value in 'axis'")
        out.append(a)
    return tuple(sorted(out))


def _reduce(x, opname, axis, keepdims, dtype_out, what):
    tape = _tape_of([x])
    x = _as_tracer(tape, x)
    g = tape.graph
    axes = _norm_axes(axis, x.ndim, what)
    if not axes:
        r = x.copy()
        r.dtype = dtype_out
        return r
    if len(axes) == x.ndim and x.ndim > 1:
        node = g.reduce(OPS[opname], reshape(x, (-1,))._id(), 0)
        shape = ()
    else:
        node = x._id()
        for a in reversed(axes):
            node = g.reduce(OPS[opname], node, a)
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    r = Tracer._make(tape, node, shape, dtype_out)
    if keepdims:
        r = reshape(r, tuple(1 if i in axes else n for i, n in enumerate(x.shape)))
    return r


def _sumdtype(x, dtype):
    if dtype is not None:
        return _canon_dtype(dtype)
    d = _dtype_of(x)
    return _I8 if d == _B1 else d


def _check_red_kw(what, out, kw):
    if out is not None:
        raise UnsupportedError(f"numpy.{what}(..., out=...) on a traced value")
    for k, v in kw.items():
        if v is np._NoValue:
            continue
        if k == "where" and v is True:
            continue
        raise UnsupportedError(f"numpy.{what}(..., {k}=...) is not supported on traced values")


@_implements(np.sum)
def _sum(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _check_red_kw("sum", out, kw)
    return _reduce(a, "sum", axis, keepdims, _sumdtype(a, dtype), "sum")


@_implements(np.prod)
def _prod(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _check_red_kw("prod", out, kw)
    return _reduce(a, "prod", axis, keepdims, _sumdtype(a, dtype), "prod")


@_implements(np.max, np.amax)
def _max(a, axis=None, out=None, keepdims=False, **kw):
    _check_red_kw("max", out, kw)
    return _reduce(a, "max", axis, keepdims, _dtype_of(a), "max")


@_implements(np.min, np.amin)
def _min(a, axis=None, out=None, keepdims=False, **kw):
    _check_red_kw("min", out, kw)
    return _reduce(a, "min", axis, keepdims, _dtype_of(a), "min")


@_implements(np.any)
def _any(a, axis=None, out=None, keepdims=False, **kw):
    _check_red_kw("any", out, kw)
    return _reduce(np.not_equal(a, 0), "max", axis, keepdims, _B1, "any")


@_implements(np.all)
def _all(a, axis=None, out=None, keepdims=False, **kw):
    _check_red_kw("all", out, kw)
    return _reduce(np.not_equal(a, 0), "min", axis, keepdims, _B1, "all")


@_implements(np.mean)
def _mean(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _check_red_kw("mean", out, kw)
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    axes = _norm_axes(axis, a.ndim, "mean")
    n = _size([a.shape[i] for i in axes])
    s = _reduce(a, "sum", axes, keepdims, _F8, "mean")
    return s * (1.0 / n) if n else s * math.nan


@_implements(np.var)
def _var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    _check_red_kw("var", out, kw)
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    axes = _norm_axes(axis, a.ndim, "var")
    n = _size([a.shape[i] for i in axes])
    d = a - _mean(a, axes, keepdims=True)
    return _reduce(d * d, "sum", axes, keepdims, _F8, "var") * (1.0 / max(n - ddof, 0) if n - ddof > 0 else math.inf)


@_implements(np.std)
def _std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    return np.sqrt(_var(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, **kw))


@_implements(np.average)
def _average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    if returned:
        raise UnsupportedError("numpy.average(..., returned=True) on traced values")
    if weights is None:
        return _mean(a, axis=axis, keepdims=keepdims)
    tape = _tape_of([a, weights])
    a, w = _as_tracer(tape, a), _as_tracer(tape, weights)
    if w.shape != a.shape:
        if axis is None or w.ndim != 1:
            raise ValueError("average: weights of a different shape need an axis and 1-d weights")
        ax = _norm_axes(axis, a.ndim, "average")[0]
        w = reshape(w, tuple(w.shape[0] if i == ax else 1 for i in range(a.ndim)))
        w = broadcast_to(w, a.shape)
    return _sum(a * w, axis=axis, keepdims=keepdims) / _sum(w, axis=axis, keepdims=keepdims)


def _scan(a, opname, axis, dtype, what):
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    if axis is None:
        a = reshape(a, (-1,))
        axis = 0
    (axis,) = _norm_axes(axis, a.ndim, what)
    return Tracer._make(tape, tape.graph.scan(OPS[opname], a._id(), axis), a.shape,
                        _sumdtype(a, dtype))


@_implements(np.cumsum)
def _cumsum(a, axis=None, dtype=None, out=None):
    _check_red_kw("cumsum", out, {})
    return _scan(a, "cumsum", axis, dtype, "cumsum")


@_implements(np.cumprod)
def _cumprod(a, axis=None, dtype=None, out=None):
    _check_red_kw("cumprod", out, {})
    return _scan(a, "cumprod", axis, dtype, "cumprod")


@_implements(np.diff)
def _diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    tape = _tape_of([a, prepend, append])
    a = _as_tracer(tape, a)
    if a.ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    (axis,) = _norm_axes(axis, a.ndim, "diff")
    parts = []
    for extra in (prepend,):
        if extra is not np._NoValue:
            e = _as_tracer(tape, extra)
            if e.ndim == 0:
                e = broadcast_to(e, tuple(1 if i == axis else s for i, s in enumerate(a.shape)))
            parts.append(e)
    parts.append(a)
    if append is not np._NoValue:
        e = _as_tracer(tape, append)
        if e.ndim == 0:
            e = broadcast_to(e, tuple(1 if i == axis else s for i, s in enumerate(a.shape)))
        parts.append(e)
    if len(parts) > 1:
        a = concatenate(parts, axis=axis)
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n}")
    for _ in range(n):
        hi = tuple(slice(1, None) if i == axis else slice(None) for i in range(a.ndim))
        lo = tuple(slice(None, -1) if i == axis else slice(None) for i in range(a.ndim))
        a = np.subtract(a[hi], a[lo]) if a.dtype != _B1 else np.not_equal(a[hi], a[lo])
    return a


# ---- shape manipulation (views) ----

@_implements(np.reshape)
def reshape(a, newshape, order="C"):
    if order not in ("C", None):
        raise UnsupportedError("reshape(order='F') is not supported on traced values")
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    if isinstance(newshape, (int, np.integer)):
        newshape = (newshape,)
    newshape = [operator.index(n) for n in newshape]
    if newshape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in newshape:
        known = _size([n for n in newshape if n != -1])
        if known == 0 or a.size % known:
            raise ValueError(f"cannot reshape array of size {a.size} into shape {tuple(newshape)}")
        newshape[newshape.index(-1)] = a.size // known
    newshape = tuple(newshape)
    if _size(newshape) != a.size:
        raise ValueError(f"cannot reshape array of size {a.size} into shape {newshape}")
    off = a._contiguous()
    if off is None:  # not row-major over its root: materialise first
        node = a._id()
        a = Tracer._make(tape, node, a.shape, a.dtype)
        off = 0
    return a._view(newshape, off, _contig(newshape))


@_implements(np.ravel)
def ravel(a, order="C"):
    return reshape(a, (-1,), order=order)


@_implements(np.transpose)
def transpose(a, axes=None):
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    if axes is None:
        axes = tuple(reversed(range(a.ndim)))
    axes = [operator.index(x) % a.ndim if a.ndim else x for x in axes]
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError("axes don't match array")
    return a._view(tuple(a.shape[i] for i in axes), a._offset, tuple(a._strides[i] for i in axes))


@_implements(np.moveaxis)
def moveaxis(a, source, destination):
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    source = [source] if not isinstance(source, (tuple, list)) else list(source)
    destination = [destination] if not isinstance(destination, (tuple, list)) else list(destination)
    if len(source) != len(destination):
        raise ValueError("`source` and `destination` arguments must have the same number of elements")
    source = [operator.index(s) % a.ndim for s in source]
    destination = [operator.index(d) % a.ndim for d in destination]
    order = [n for n in range(a.ndim) if n not in source]
    for dest, src_ in sorted(zip(destination, source)):
        order.insert(dest, src_)
    return transpose(a, order)


@_implements(np.swapaxes)
def swapaxes(a, axis1, axis2):
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    order = list(range(a.ndim))
    i, j = axis1 % a.ndim, axis2 % a.ndim
    order[i], order[j] = order[j], order[i]
    return transpose(a, order)


@_implements(np.squeeze)
def squeeze(a, axis=None):
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    if axis is None:
        axes = [i for i, n in enumerate(a.shape) if n == 1]
    else:
        axes = list(_norm_axes(axis, a.ndim, "squeeze"))
        for i in axes:
            if a.shape[i] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    keep = [i for i in range(a.ndim) if i not in axes]
    return a._view(tuple(a.shape[i] for i in keep), a._offset, tuple(a._strides[i] for i in keep))


@_implements(np.expand_dims)
def expand_dims(a, axis):
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = a.ndim + len(axes)
    axes = _norm_axes(axes, nd, "expand_dims")
    shape, strides, it = [], [], iter(zip(a.shape, a._strides))
    for i in range(nd):
        if i in axes:
            shape.append(1)
            strides.append(0)
        else:
            n, s = next(it)
            shape.append(n)
            strides.append(s)
    return a._view(tuple(shape), a._offset, tuple(strides))


@_implements(np.broadcast_to)
def broadcast_to(a, shape, subok=False):
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if len(shape) < a.ndim:
        raise ValueError("input operand has more dimensions than allowed by the axis remapping")
    lead = len(shape) - a.ndim
    strides = [0] * lead
    for n, s, target in zip(a.shape, a._strides, shape[lead:]):
        if n == target:
            strides.append(s if n != 1 else 0)
        elif n == 1:
            strides.append(0)
        else:
            raise ValueError(f"operands could not be broadcast together with remapped shapes "
                             f"[original->remapped]: {a.shape} and requested shape {shape}")
    return a._view(shape, a._offset, tuple(strides))


@_implements(np.broadcast_arrays)
def broadcast_arrays(*args, subok=False):
    tape = _tape_of(args)
    shape = np.broadcast_shapes(*[np.shape(x) if not isinstance(x, Tracer) else x.shape for x in args])
    return [broadcast_to(_as_tracer(tape, x), shape) for x in args]


@_implements(np.atleast_1d)
def atleast_1d(*arys):
    res = [reshape(a, (1,)) if np.ndim(a) == 0 else a for a in arys]
    return res[0] if len(res) == 1 else res


@_implements(np.atleast_2d)
def atleast_2d(*arys):
    res = []
    for a in arys:
        nd = a.ndim if isinstance(a, Tracer) else np.ndim(a)
        res.append(reshape(a, (1, 1)) if nd == 0 else expand_dims(a, 0) if nd == 1 else a)
    return res[0] if len(res) == 1 else res


@_implements(np.flip)
def flip(m, axis=None):
    tape = _tape_of([m])
    m = _as_tracer(tape, m)
    axes = _norm_axes(axis, m.ndim, "flip")
    off = m._offset
    strides = list(m._strides)
    for i in axes:
        if m.shape[i] > 0:
            off += (m.shape[i] - 1) * strides[i]
        strides[i] = -strides[i]
    return m._view(m.shape, off, tuple(strides))


@_implements(np.concatenate)
def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    if out is not None:
        raise UnsupportedError("numpy.concatenate(..., out=...) on traced values")
    arrays = list(arrays)
    tape = _tape_of(arrays)
    ts = [_as_tracer(tape, a) for a in arrays]
    if axis is None:
        ts = [reshape(t, (-1,)) for t in ts]
        axis = 0
    if any(t.ndim == 0 for t in ts):
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    (axis,) = _norm_axes(axis, ts[0].ndim, "concatenate")
    dt = np.result_type(*[t.dtype for t in ts]) if dtype is None else dtype
    node = tape.graph.concat([t._id() for t in ts], axis)
    return _wrap(tape, node, _canon_dtype(dt))


@_implements(np.stack)
def stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    arrays = list(arrays)
    tape = _tape_of(arrays)
    ts = [_as_tracer(tape, a) for a in arrays]
    shapes = {t.shape for t in ts}
    if len(shapes) != 1:
        raise ValueError("all input arrays must have the same shape")
    nd = ts[0].ndim + 1
    (axis,) = _norm_axes(axis, nd, "stack")
    return concatenate([expand_dims(t, axis) for t in ts], axis=axis, out=out, dtype=dtype)


@_implements(np.hstack)
def hstack(tup, dtype=None, casting="same_kind"):
    arrs = atleast_1d(*tup)
    arrs = arrs if isinstance(arrs, list) else [arrs]
    axis = 0 if (arrs[0].ndim if isinstance(arrs[0], Tracer) else np.ndim(arrs[0])) == 1 else 1
    return concatenate(arrs, axis=axis, dtype=dtype)


@_implements(np.vstack)
def vstack(tup, dtype=None, casting="same_kind"):
    arrs = atleast_2d(*tup)
    arrs = arrs if isinstance(arrs, list) else [arrs]
    return concatenate(arrs, axis=0, dtype=dtype)


@_implements(np.column_stack)
def column_stack(tup):
    cols = []
    for a in tup:
        nd = a.ndim if isinstance(a, Tracer) else np.ndim(a)
        cols.append(expand_dims(a, 1) if nd == 1 else a)
    return concatenate(cols, axis=1)


@_implements(np.where)
def where(condition, x=np._NoValue, y=np._NoValue):
    if x is np._NoValue or y is np._NoValue:
        raise UnsupportedError(
            "numpy.where(condition) with one argument returns indices, whose number depends on "
            "the values (a data-dependent shape); use the three-argument np.where(condition, a, b)")
    tape = _tape_of([condition, x, y])
    dt = _canon_dtype(np.result_type(_dtype_of(x), _dtype_of(y)))
    node = tape.graph.where(_operand(tape, condition), _operand(tape, x), _operand(tape, y))
    return _wrap(tape, node, dt)


@_implements(np.clip)
def clip(a, a_min=None, a_max=None, out=None, **kw):
    if out is not None:
        raise UnsupportedError("numpy.clip(..., out=...) on traced values")
    if a_min is None and a_max is None:
        raise ValueError("One of max or min must be given")
    r = a
    if a_min is not None:
        r = np.maximum(r, a_min)
    if a_max is not None:
        r = np.minimum(r, a_max)
    return r


@_implements(np.interp)
def interp(x, xp, fp, left=None, right=None, period=None):
    if period is not None:
        raise UnsupportedError("numpy.interp(..., period=...) on traced values")
    tape = _tape_of([x, xp, fp])
    tx, txp, tfp = (_as_tracer(tape, v) for v in (x, xp, fp))
    if txp.ndim != 1 or tfp.ndim != 1:
        raise ValueError("xp and fp must be 1-d sequences")
    if txp.shape != tfp.shape:
        raise ValueError("fp and xp are not of the same length.")
    if txp.shape[0] == 0:
        raise ValueError("array of sample points is empty")
    r = _wrap(tape, tape.graph.interp(tx._id(), txp._id(), tfp._id()), _F8)
    if left is not None:
        r = where(np.less(tx, txp[0]), left, r)
    if right is not None:
        r = where(np.greater(tx, txp[-1]), right, r)
    return r


@_implements(np.dot)
def dot(a, b, out=None):
    if out is not None:
        raise UnsupportedError("numpy.dot(..., out=...) on traced values")
    na, nb = np.ndim(a) if not isinstance(a, Tracer) else a.ndim, np.ndim(b) if not isinstance(b, Tracer) else b.ndim
    if na == 0 or nb == 0:
        return np.multiply(a, b)
    if nb == 1:
        return _sum(np.multiply(a, b), axis=-1)
    if na <= 2 and nb == 2:
        return matmul(a, b)
    raise UnsupportedError("numpy.dot of arrays with more than two dimensions is not supported on "
                           "traced values; use np.matmul or np.einsum-free reshapes")


@_implements(np.vdot)
def vdot(a, b):
    return _sum(np.multiply(ravel(a), ravel(b)))


@_implements(np.inner)
def inner(a, b):
    na = a.ndim if isinstance(a, Tracer) else np.ndim(a)
    nb = b.ndim if isinstance(b, Tracer) else np.ndim(b)
    if na <= 1 and nb <= 1:
        return dot(a, b)
    raise UnsupportedError("numpy.inner of arrays with more than one dimension on traced values")


@_implements(np.outer)
def outer(a, b, out=None):
    if out is not None:
        raise UnsupportedError("numpy.outer(..., out=...) on traced values")
    tape = _tape_of([a, b])
    a, b = ravel(_as_tracer(tape, a)), ravel(_as_tracer(tape, b))
    return np.multiply(expand_dims(a, 1), expand_dims(b, 0))


def matmul(a, b):
    tape = _tape_of([a, b])
    a, b = _as_tracer(tape, a), _as_tracer(tape, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    a2 = expand_dims(a, 0) if a.ndim == 1 else a
    b2 = expand_dims(b, 1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: Input operand 1 has a mismatch in its core dimension 0, with "
                         f"gufunc signature (n?,k),(k,m?)->(n?,m?) (size {b2.shape[-2]} is "
                         f"different from {a2.shape[-1]})")
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    a3 = broadcast_to(a2, batch + a2.shape[-2:])
    b3 = broadcast_to(b2, batch + b2.shape[-2:])
    if not batch:
        a3, b3 = expand_dims(a3, 0), expand_dims(b3, 0)
    node = tape.graph.matmul(a3._id(), b3._id())
    dt = _canon_dtype(np.result_type(a.dtype, b.dtype))
    r = _wrap(tape, node, dt)
    shape = batch + a2.shape[-2:-1] + b2.shape[-1:]
    if a.ndim == 1:
        shape = shape[:-2] + shape[-1:]
    if b.ndim == 1:
        shape = shape[:-1]
    return reshape(r, shape)


@_implements(np.zeros_like, np.empty_like)
def zeros_like(a, dtype=None, order="K", subok=True, shape=None):
    return full_like(a, 0, dtype=dtype, shape=shape)


@_implements(np.ones_like)
def ones_like(a, dtype=None, order="K", subok=True, shape=None):
    return full_like(a, 1, dtype=dtype, shape=shape)


@_implements(np.full_like)
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None):
    tape = _tape_of([a, fill_value])
    a = _as_tracer(tape, a)
    shape = a.shape if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))
    dt = _canon_dtype(dtype if dtype is not None else a.dtype)
    if isinstance(fill_value, Tracer):
        return broadcast_to(fill_value, shape).copy()
    return tape.filled(shape, float(np.asarray(fill_value, dtype=dt)), dt)


@_implements(np.copy)
def copy(a, order="K", subok=False):
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    return Tracer._make(tape, a._id(), a.shape, a.dtype)


@_implements(np.take)
def take(a, indices, axis=None, out=None, mode="raise"):
    if out is not None or mode != "raise":
        raise UnsupportedError("numpy.take(..., out=/mode=) on traced values")
    tape = _tape_of([a])
    a = _as_tracer(tape, a)
    if axis is None:
        return ravel(a)[indices]
    (axis,) = _norm_axes(axis, a.ndim, "take")
    return a[(slice(None),) * axis + (np.asarray(indices),)]


@_implements(np.shape)
def _shape(a):
    return a.shape


@_implements(np.ndim)
def _ndim(a):
    return a.ndim


@_implements(np.size)
def _size_f(a, axis=None):
    return a.size if axis is None else a.shape[axis]


# ---- indexing ----

def _is_basic(k):
    return (k is None or k is Ellipsis or isinstance(k, slice) or
            (isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))))


def _getitem(t, key):
    t._tape.check()
    key = key if isinstance(key, tuple) else (key,)
    for k in key:
        if isinstance(k, Tracer):
            if k.dtype == _B1:
                raise UnsupportedError(
                    "indexing with a traced boolean mask (x[mask]) gives a result whose shape "
                    "depends on the values; use np.where(mask, x, 0) (or a masked sum: "
                    "np.sum(np.where(mask, x, 0)))")
            raise UnsupportedError("indexing with traced integer indices (a data-dependent "
                                   "gather) is not supported; index with constants")
    if all(_is_basic(k) for k in key):
        shape, off, strides = _basic_view(t.shape, t._offset, t._strides, key)
        return t._view(shape, off, strides)
    # advanced indexing: the flat positions, computed by NumPy itself
    table = np.arange(t.size, dtype=np.int64).reshape(t.shape)[key]
    node = t._tape.graph.take(t._id(), table)
    return Tracer._make(t._tape, node, table.shape, t.dtype)


def _basic_view(shape, off, strides, key):
    nd = len(shape)
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > nd:
        raise IndexError(f"too many indices for array: array is {nd}-dimensional, but {used} "
                         f"were indexed")
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    full = []
    for k in key:
        if k is Ellipsis:
            full.extend([slice(None)] * (nd - used))
        else:
            full.append(k)
    if Ellipsis not in key:
        full.extend([slice(None)] * (nd - used))
    nshape, nstrides, d = [], [], 0
    for k in full:
        if k is None:
            nshape.append(1)
            nstrides.append(0)
        elif isinstance(k, slice):
            start, stop, step = k.indices(shape[d])
            n = len(range(start, stop, step))
            if n:
                off += start * strides[d]
            nshape.append(n)
            nstrides.append(strides[d] * step)
            d += 1
        else:
            i = operator.index(k)
            if not -shape[d] <= i < shape[d]:
                raise IndexError(f"index {i} is out of bounds for axis {d} with size {shape[d]}")
            off += (i % shape[d]) * strides[d]
            d += 1
    return tuple(nshape), off, tuple(nstrides)


def _setitem(t, key, value):
    tape = t._tape
    tape.check()
    if t._src is not None:
        raise UnsupportedError(
            "writing into a view of a traced array (a slice, transpose or reshape of it) is "
            "not supported: write into the array itself, e.g. x[1:, 0] = v instead of "
            "x[1:][:, 0] = v")
    if t._flags & Tracer.INPUT:
        raise UnsupportedError(
            "writing into an argument of a recorded function would modify the caller's array, "
            "which a replay does not do; copy it first (x = x.copy()) and write into the copy")
    vdt = _dtype_of(value)
    if t.dtype != _F8 and vdt == _F8:
        raise TypeError(f"writing float values into a traced {t.dtype} array would truncate them")
    g = tape.graph
    key_t = key if isinstance(key, tuple) else (key,)
    if len(key_t) == 1 and isinstance(key_t[0], Tracer):
        mask = key_t[0]
        if mask.dtype != _B1:
            raise UnsupportedError("writing through traced integer indices is not supported")
        node = g.where(mask._id(), _operand(tape, value), t._id())
        if tuple(g.shape(node)) != t.shape:
            raise ValueError(f"boolean mask of shape {mask.shape} does not match the array's "
                             f"shape {t.shape}")
    elif any(isinstance(k, Tracer) for k in key_t):
        raise UnsupportedError("writing through traced indices is not supported; use np.where")
    elif all(_is_basic(k) for k in key_t):
        shape, off, strides = _basic_view(t.shape, 0, _contig(t.shape), key_t)
        node = g.set(t._id(), _operand(tape, value), shape, off, strides)
    else:
        table = np.arange(t.size, dtype=np.int64).reshape(t.shape)[key]
        node = g.set_index(t._id(), _operand(tape, value), table)
    t._root = t._node = node
    t._rshape = t.shape
    t._offset = 0
    t._strides = _contig(t.shape)
    t._ver += 1


# ---- kernels ----

def _trace_kernel(kernel, args):
    """Record a kernel call whose arguments include traced values."""
    tape = _tape_of(args)
    for p in kernel.params:
        if p["role"] == "inout":
            raise UnsupportedError(
                f"{kernel.name}: in/out array parameter '{p['name']}'; recording kernels with in/out "
                "arrays into a graph is not supported yet (input arrays are: const double "
                f"a[n]; call {kernel.name} on NumPy arrays outside the recorded function)")
    ids = []
    params = [p for p in kernel.params if p["role"] == "in"]
    for p, a in zip(params, args):
        if p["type"] != "double":
            dt = _dtype_of(a)
            if dt == _F8 and not (isinstance(a, float) and a.is_integer()):
                raise TypeError(f"{kernel.name}: parameter '{p['name']}' is a C {p['type']}; got "
                                f"{'a traced ' if isinstance(a, Tracer) else ''}float64 values "
                                "(pass integers)")
        ids.append(_operand(tape, a))
    outs = tape.graph.kernel(kernel, ids)
    ts = tuple(_wrap(tape, o, _F8) for o in outs)
    return ts[0] if len(ts) == 1 else ts


_twinc._set_tracer(Tracer, _trace_kernel)


def _supported():
    names = sorted({f"numpy.{u}" for u in list(_UNARY) + list(_BINARY)} |
                   {"numpy.positive", "numpy.reciprocal", "numpy.exp2", "numpy.log2",
                    "numpy.log10", "numpy.isnan", "numpy.isfinite", "numpy.isinf",
                    "numpy.matmul", "numpy.bitwise_and (bool)", "numpy.bitwise_or (bool)",
                    "numpy.bitwise_xor (bool)", "numpy.invert (bool)", "numpy.add.reduce",
                    "numpy.multiply.reduce", "numpy.maximum.reduce", "numpy.minimum.reduce",
                    "numpy.add.accumulate", "numpy.multiply.accumulate", "twinc.ncdf",
                    "twinc.npdf", "scipy.special.ndtr", "indexing (basic and constant "
                    "advanced)", "assignment x[index] = v / x[mask] = v"} |
                   {_qualname(f) for f in _FUNCTIONS})
    return tuple(names)


SUPPORTED = _supported()
