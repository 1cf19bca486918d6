"""Record once, replay natively: twinc.function, value_and_grad, grad, record.

A :class:`Function` wraps a Python function written with NumPy.  The first
call with a new signature (argument shapes and dtypes, static arguments, which
arguments are differentiated) records the function on traced arrays, compiles
the graph in C, and caches it; every call replays the compiled graph on the
new values, with no Python between the operations.  Replays of one graph from
several threads run in parallel (the GIL is released for large ones).

Arguments that are arrays or numbers are graph inputs.  Anything else (None,
strings, callables, ...) is a static argument: part of the cache key, passed
to the function as is.  ``static_argnums`` makes numeric arguments static too
(e.g. a number of time steps).  Random numbers are never recorded: draw them
outside and pass them in (a large constant captured from outside the function
is frozen into the graph, and twinc warns about it).
"""

import functools
import inspect
import operator

import numpy as np

from ._trace import _B1, _F8, Tape, Tracer, _as_tracer

__all__ = ["Function", "function", "value_and_grad", "grad", "record"]

def _signature(a):
    """Cache key part of one argument (None: a static argument)."""
    t = type(a)
    if t is np.ndarray:
        return (a.shape, a.dtype.char)
    if t is float:
        return "f"
    if t is int:
        return "i"
    if t is bool:
        return "b"
    if isinstance(a, np.generic):
        return ((), a.dtype.char)
    return None


def _to_array(a, i):
    if isinstance(a, Tracer):
        return a
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"argument {i}: {type(a).__name__} with dtype {arr.dtype} is not an array of "
                        "numbers; mark it static (static_argnums) if it is a parameter")
    return arr


def _normalize_argnums(argnums):
    if argnums is None:
        return (), False
    if isinstance(argnums, (tuple, list)):
        return tuple(operator.index(i) for i in argnums), True
    return (operator.index(argnums),), False


class _Compiled:
    """One recording of a Function, compiled: the graph and how to call it."""

    __slots__ = ("graph", "in_pos", "out_kind", "out_struct", "diff_pos", "nout")

    def forward(self, args):
        outs = self.graph.forward([args[i] for i in self.in_pos])
        return self.pack(outs)

    def pack(self, outs):
        if self.out_kind is not None:
            outs = tuple(_cast(o, k) for o, k in zip(outs, self.out_kind))
        if self.out_struct is None:
            return outs[0]
        return self.out_struct(outs)


def _cast(v, kind):
    if kind is None:
        return v
    r = np.asarray(v).astype(kind)
    return r[()] if r.ndim == 0 else r


class Function:
    """A NumPy function recorded once per signature and replayed natively.

    Use as ``@twinc.function`` or ``twinc.function(f, static_argnums=...)``.
    ``f(*args)`` returns the value; ``twinc.value_and_grad(f, argnums)`` and
    ``twinc.grad`` differentiate it.  ``f.stats(*args)`` describes the
    compiled graph, ``f.clear_cache()`` forgets the recordings.
    """

    def __init__(self, fun, static_argnums=(), check_inputs=True):
        if not callable(fun):
            raise TypeError("twinc.function: expected a callable")
        self.fun = fun
        self.static_argnums = frozenset(operator.index(i) for i in (
            static_argnums if isinstance(static_argnums, (tuple, list, set, frozenset))
            else (static_argnums,)))
        self.check_inputs = check_inputs
        self._cache = {}
        try:
            self._sig = inspect.signature(fun)
        except (TypeError, ValueError):
            self._sig = None
        functools.update_wrapper(self, fun)

    def __repr__(self):
        return f"<twinc.function {getattr(self.fun, '__qualname__', self.fun)!r}>"

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)

    def _bind(self, args, kwargs):
        if not kwargs:
            return args
        if self._sig is None:
            raise TypeError("keyword arguments need a function with an inspectable signature")
        b = self._sig.bind(*args, **kwargs)
        b.apply_defaults()
        if any(p.kind in (p.VAR_KEYWORD, p.KEYWORD_ONLY) for p in self._sig.parameters.values()):
            raise TypeError("twinc.function: keyword-only and **kwargs parameters are not supported")
        return b.args

    def _key(self, args, diff):
        key = []
        for i, a in enumerate(args):
            static = i in self.static_argnums
            s = None if static else _signature(a)
            if s is None and not static and (isinstance(a, (list, tuple)) or hasattr(a, "__array__")
                                             or hasattr(a, "__array_interface__")):
                arr = np.asarray(a)
                if arr.dtype.kind in "fiub":
                    s = (arr.shape, arr.dtype.char)
            if s is None:
                try:
                    hash(a)
                except TypeError:
                    raise TypeError(f"argument {i} ({type(a).__name__}) is neither an array nor a "
                                    "number, and is not hashable, so it cannot be a static argument "
                                    "either") from None
                s = ("static", type(a), a)
            key.append(s)
        key.append(diff)
        return tuple(key)

    def _entry(self, args, diff=()):
        key = self._key(args, diff)
        e = self._cache.get(key)
        if e is None:
            e = self._cache[key] = self._record(args, diff, key)
        return e

    def _record(self, args, diff, key):
        tape = Tape()
        targs, in_pos, diff_pos = [], [], []
        try:
            for i, a in enumerate(args):
                k = key[i]
                if isinstance(k, tuple) and k and k[0] == "static":
                    if i in diff:
                        raise TypeError(f"argument {i} is static (not an array or a number); it "
                                        "cannot be differentiated")
                    targs.append(a)
                    continue
                arr = np.asarray(a)
                d = i in diff
                if d and arr.dtype.kind != "f" and not isinstance(a, int):
                    raise TypeError(f"argument {i} has dtype {arr.dtype}; differentiating needs "
                                    "float inputs (pass it as float)")
                targs.append(tape.input(arr.shape, _F8 if d else arr.dtype, d))
                in_pos.append(i)
                if d:
                    diff_pos.append(i)
            result = self.fun(*targs)
        finally:
            tape.closed = True
        tape.closed = False
        try:
            if isinstance(result, (tuple, list)):
                outs = list(result)
                struct = type(result) if type(result) in (tuple, list) else tuple
            else:
                outs = [result]
                struct = None
            touts = [_as_tracer(tape, o) if not isinstance(o, Tracer) else o for o in outs]
            if diff:
                if not touts or touts[0].dtype != _F8:
                    raise TypeError("the differentiated output (the function's value, or the "
                                    "first of its outputs with has_aux) must be float; got "
                                    f"{touts[0].dtype if touts else 'nothing'}")
            ids = [t._id() for t in touts]
            kinds = [None if t.dtype == _F8 else (np.bool_ if t.dtype == _B1 else np.int64) for t in touts]
            tape.graph.compile(ids, [bool(diff) and j == 0 for j in range(len(ids))])
        finally:
            tape.closed = True
        tape.graph.check_inputs = self.check_inputs
        c = _Compiled()
        c.graph = tape.graph
        c.in_pos = tuple(in_pos)
        c.out_kind = None if all(k is None for k in kinds) else tuple(kinds)
        c.out_struct = struct
        c.diff_pos = tuple(diff_pos)
        c.nout = len(ids)
        return c

    def __call__(self, *args, **kwargs):
        if kwargs:
            args = self._bind(args, kwargs)
        for a in args:
            if isinstance(a, Tracer):   # called inside another recording: inline
                return self.fun(*args)
        return self._entry(args).forward(args)

    def compiled(self, *args, argnums=None, **kwargs):
        """The compiled graph (twinc._twinc.Graph) for these arguments."""
        args = self._bind(args, kwargs)
        return self._entry(args, _normalize_argnums(argnums)[0]).graph

    def stats(self, *args, argnums=None, **kwargs):
        """Nodes, fused passes and buffer sizes of the graph for these arguments."""
        return self.compiled(*args, argnums=argnums, **kwargs).stats()

    def clear_cache(self):
        self._cache.clear()


def function(fun=None, *, static_argnums=(), check_inputs=True):
    """Decorator: record `fun` once per signature and replay it natively.

    check_inputs: for replays that release the GIL, verify that no other thread
    wrote into an input while the replay read it (InputMutatedError).
    """
    if fun is None:
        return lambda f: Function(f, static_argnums=static_argnums, check_inputs=check_inputs)
    return Function(fun, static_argnums=static_argnums, check_inputs=check_inputs)


def value_and_grad(fun, argnums=0, has_aux=False):
    """f -> g with g(*args) = (value, gradient) of f with respect to args[argnums].

    As in JAX: argnums an int gives one gradient, a tuple gives a tuple of them;
    with has_aux, f returns (value, aux) and g returns ((value, aux), gradient).
    Unlike JAX the value need not be a scalar: the gradient is that of its sum
    (for independent lanes, e.g. one option per element, the per-lane
    derivatives).  Arguments not in argnums are inputs that are not
    differentiated (e.g. random normals).
    """
    F = fun if isinstance(fun, Function) else Function(fun)
    nums, many = _normalize_argnums(argnums)
    if not nums:
        raise ValueError("value_and_grad: argnums must name at least one argument")

    def vg(*args, **kwargs):
        args = F._bind(args, kwargs)
        for a in args:
            if isinstance(a, Tracer):
                raise TypeError("twinc.value_and_grad inside a recording (nested differentiation) "
                                "is not supported")
        for i in nums:
            if not -len(args) <= i < len(args):
                raise ValueError(f"argnums {i} is out of range for {len(args)} arguments")
        diff = tuple(sorted(i % len(args) for i in nums))
        e = F._entry(args, diff)
        outs, grads = e.graph.gradient([args[i] for i in e.in_pos])
        value = e.pack(outs)
        if has_aux:
            if e.out_struct is None or e.nout != 2:
                raise TypeError("has_aux=True: the function must return (value, aux)")
        elif e.out_struct is not None:
            raise TypeError("value_and_grad: the function returns several outputs; return one "
                            "value, or (value, aux) with has_aux=True")
        by_pos = dict(zip(e.diff_pos, grads))
        g = tuple(by_pos[i % len(args)] for i in nums)
        if not many:
            g = g[0]
        return (tuple(value) if has_aux else value), g

    functools.update_wrapper(vg, getattr(F, "fun", F))
    vg.function = F
    return vg


def grad(fun, argnums=0, has_aux=False):
    """f -> the gradient of f with respect to args[argnums] (see value_and_grad)."""
    vg = value_and_grad(fun, argnums=argnums, has_aux=has_aux)

    def g(*args, **kwargs):
        value, gr = vg(*args, **kwargs)
        return (gr, value[1]) if has_aux else gr

    functools.update_wrapper(g, getattr(vg, "__wrapped__", fun))
    g.function = vg.function
    return g


class record:
    """Record explicitly::

        with twinc.record() as rec:
            S = rec.input(S0)                         # differentiable (float)
            Z = rec.input(normals, differentiable=False)
            rec.output(price(S, Z))                   # the first output is differentiated
        value = rec.replay(S0_new, normals)
        value, (dS,) = rec.value_and_grad(S0_new, normals)

    Inputs are replayed in the order they were declared.
    """

    def __init__(self, check_inputs=True):
        self.tape = Tape()
        self.check_inputs = check_inputs
        self._outputs = []
        self._compiled = False
        self._diff = []
        self._kinds = []
        self._inside = False

    def __enter__(self):
        self._inside = True
        return self

    def __exit__(self, *exc):
        self._inside = False
        self.tape.closed = True
        return False

    def input(self, value, differentiable=None):
        """A traced input shaped like `value` (an array, a number or a shape tuple)."""
        if not self._inside:
            raise RuntimeError("record.input() outside the `with` block")
        if isinstance(value, tuple) and all(isinstance(n, int) for n in value):
            shape, dt = value, _F8
        else:
            a = np.asarray(value)
            shape, dt = a.shape, a.dtype
        if differentiable is None:
            differentiable = np.dtype(dt).kind == "f"
        if differentiable and np.dtype(dt).kind != "f":
            raise TypeError(f"a differentiable input must be float, got {dt}")
        t = self.tape.input(shape, _F8 if differentiable else dt, differentiable)
        self._diff.append(bool(differentiable))
        return t

    def output(self, *values):
        """Declare outputs (the first one ever declared is the one differentiated)."""
        if not self._inside:
            raise RuntimeError("record.output() outside the `with` block")
        for v in values:
            t = _as_tracer(self.tape, v) if not isinstance(v, Tracer) else v
            self._outputs.append(t._id())
            self._kinds.append(None if t.dtype == _F8 else (np.bool_ if t.dtype == _B1 else np.int64))
        return values[0] if len(values) == 1 else values

    @property
    def graph(self):
        if not self._compiled:
            if self._inside:
                raise RuntimeError("the recording is still open; replay after the `with` block")
            if not self._outputs:
                raise RuntimeError("nothing recorded: declare outputs with rec.output(...)")
            self.tape.graph.compile(self._outputs, [j == 0 for j in range(len(self._outputs))])
            self.tape.graph.check_inputs = self.check_inputs
            self._compiled = True
        return self.tape.graph

    def _pack(self, outs):
        outs = tuple(_cast(o, k) for o, k in zip(outs, self._kinds))
        return outs[0] if len(outs) == 1 else outs

    def replay(self, *inputs):
        """The outputs for new input values."""
        return self._pack(self.graph.forward(inputs))

    def value_and_grad(self, *inputs, seed=None):
        """(outputs, gradients): gradients of the first output (times seed) with respect
        to each differentiable input, in declaration order."""
        seeds = None if seed is None else [seed] + [None] * (len(self._outputs) - 1)
        outs, grads = self.graph.gradient(inputs, seeds)
        return self._pack(outs), grads

    def stats(self):
        return self.graph.stats()
