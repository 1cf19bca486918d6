"""Every recordable NumPy operation: the replayed value against NumPy itself,
the replayed gradient (of the sum of the result) against finite differences
of the NumPy function, and replays with new inputs against a fresh recording.

Each case is (name, function, input makers).  Inputs are drawn away from the
places where an operation is not differentiable (ties, kinks, 0 for abs and
sqrt), so the finite differences are meaningful."""

import math

import numpy as np
import pytest

from conftest import assert_rho, fd_grad


def U(*shape, lo=0.5, hi=1.5):
    return lambda rng: rng.uniform(lo, hi, size=shape)


def S(*shape):  # signed, away from 0
    def make(rng):
        x = rng.uniform(0.2, 1.5, size=shape)
        return x * rng.choice([-1.0, 1.0], size=shape)
    return make


def ncdf_np(x):
    from math import erfc, sqrt
    return np.vectorize(lambda v: 0.5 * erfc(-v / sqrt(2.0)))(x)


def _ncdf(x):
    import twinc
    return twinc.ncdf(x) if isinstance(x, twinc.Tracer) else ncdf_np(x)


def _setitem_basic(x, v):
    y = x.copy()
    y[1:3, ::2] = v * 2.0
    y[0] = y[0] * 3.0
    return y


def _setitem_adv(x, v):
    y = x * 1.0
    y[[0, 2], [1, 3]] = v[:2]
    return y


def _setitem_mask(x, v):
    y = np.copy(x)
    y[x > 1.0] = v[0]
    return y


def _zeros_fill(x):
    y = np.zeros_like(x)
    for i in range(x.shape[1]):
        y[:, i] = x[:, i] * (i + 1.0)
    return y


CASES = [
    # elementwise, unary
    ("negative", lambda x: -x, [U(3, 4)]),
    ("positive", lambda x: +x, [U(3)]),
    ("square", np.square, [S(5)]),
    ("sqrt", np.sqrt, [U(5)]),
    ("exp", np.exp, [S(5)]),
    ("log", np.log, [U(5)]),
    ("log1p", np.log1p, [U(5)]),
    ("expm1", np.expm1, [S(5)]),
    ("abs", np.abs, [S(6)]),
    ("fabs", np.fabs, [S(6)]),
    ("tanh", np.tanh, [S(5)]),
    ("sin", np.sin, [S(5)]),
    ("cos", np.cos, [S(5)]),
    ("reciprocal", np.reciprocal, [U(4)]),
    ("exp2", np.exp2, [S(4)]),
    ("log2", np.log2, [U(4)]),
    ("log10", np.log10, [U(4)]),
    ("ncdf", _ncdf, [S(5)]),
    # elementwise, binary, with broadcasting and constants
    ("add", lambda x, y: x + y, [U(3, 4), U(4)]),
    ("subtract", lambda x, y: x - y, [U(3, 1), U(1, 4)]),
    ("rsub", lambda x: 2.0 - x, [U(3)]),
    ("multiply", lambda x, y: x * y, [U(3, 4), U(3, 4)]),
    ("divide", lambda x, y: x / y, [U(3, 4), U(4)]),
    ("rdivide", lambda x: 1.5 / x, [U(3)]),
    ("power", lambda x, y: x ** y, [U(5), U(5)]),
    ("power_const", lambda x: x ** 2.5 + x ** 2 + 3.0 ** x, [U(5)]),
    ("maximum", np.maximum, [S(6), S(6)]),
    ("minimum", np.minimum, [S(6), S(6)]),
    ("fmax", np.fmax, [S(6), S(6)]),
    ("fmin", np.fmin, [S(6), S(6)]),
    ("maximum_const", lambda x: np.maximum(x - 1.0, 0.0), [U(8, lo=0.0, hi=2.0)]),
    # masks, where, clip
    ("compare_where", lambda x, y: np.where(x < y, x * y, np.where(x >= 1.0, x, -y)), [U(8), U(8)]),
    ("logical", lambda x, y: np.where((x > 0.8) & ~(y < 0.9) | np.logical_xor(x > 1.2, y > 1.2), x, y),
     [U(12), U(12)]),
    ("equal_mask_arith", lambda x: x * (x > 1.0) + (x <= 1.0) * 2.0, [U(8)]),
    ("clip", lambda x: np.clip(x, 0.8, 1.2), [U(10)]),
    ("clip_one_side", lambda x: x.clip(min=1.0), [U(10)]),
    # reductions
    ("sum", np.sum, [U(3, 4)]),
    ("sum_axis0", lambda x: np.sum(x, axis=0), [U(3, 4)]),
    ("sum_axis1_keepdims", lambda x: x.sum(axis=1, keepdims=True) * x, [U(3, 4)]),
    ("sum_axes", lambda x: np.sum(x, axis=(0, 2)), [U(2, 3, 4)]),
    ("mean", lambda x: np.mean(x, axis=-1), [U(3, 4)]),
    ("prod", lambda x: np.prod(x, axis=1), [U(3, 4)]),
    ("prod_with_zero", lambda x: np.prod(x * (x > 0.7), axis=0), [U(4, 3)]),
    ("max", lambda x: np.max(x, axis=1), [U(3, 5)]),
    ("min", lambda x: x.min(), [U(3, 5)]),
    ("amax_axis0", lambda x: np.amax(x, axis=0), [U(4, 3)]),
    ("var_std", lambda x: np.var(x, axis=0) + np.std(x, ddof=1), [U(5, 3)]),
    ("average_weights", lambda x: np.average(x, axis=1, weights=np.array([1.0, 2.0, 3.0])), [U(4, 3)]),
    ("ufunc_reduce", lambda x: np.add.reduce(x, axis=1) + np.maximum.reduce(x, axis=0).sum(), [U(3, 4)]),
    # scans and differences
    ("cumsum", lambda x: np.cumsum(x, axis=1), [U(3, 5)]),
    ("cumsum_axis0", lambda x: np.cumsum(x, axis=0), [U(4, 3)]),
    ("cumsum_flat", np.cumsum, [U(2, 3)]),
    ("cumprod", lambda x: np.cumprod(x, axis=1), [U(3, 5)]),
    ("cumprod_zero", lambda x: np.cumprod(x * (x > 0.7), axis=0), [U(6, 2)]),
    ("accumulate", lambda x: np.multiply.accumulate(x), [U(5)]),
    ("diff", lambda x: np.diff(x), [U(3, 6)]),
    ("diff_n2_axis0", lambda x: np.diff(x, n=2, axis=0), [U(5, 3)]),
    ("diff_prepend", lambda x: np.diff(x, prepend=0.5), [U(5)]),
    # linear algebra
    ("dot_1d", np.dot, [U(5), U(5)]),
    ("dot_2d_1d", lambda a, b: a.dot(b), [U(3, 4), U(4)]),
    ("matmul", lambda a, b: a @ b, [U(3, 4), U(4, 2)]),
    ("matmul_batched", np.matmul, [U(2, 3, 4), U(4, 5)]),
    ("matmul_vec", lambda a, b: b @ a, [U(4, 3), U(4)]),
    ("outer", np.outer, [U(3), U(4)]),
    # shapes (views)
    ("reshape", lambda x: np.reshape(x, (4, 3)) * np.arange(3.0), [U(3, 4)]),
    ("reshape_method", lambda x: x.reshape(2, -1).T.reshape(-1) * np.arange(12.0), [U(3, 4)]),
    ("transpose", lambda x: np.transpose(x) * np.arange(3.0), [U(3, 4)]),
    ("transpose_axes", lambda x: x.transpose(2, 0, 1) * np.arange(4.0), [U(3, 4, 2)]),
    ("moveaxis_swapaxes", lambda x: np.moveaxis(x, 0, -1) + np.swapaxes(x, 0, 2).transpose(1, 2, 0),
     [U(2, 3, 2)]),
    ("broadcast_to", lambda x: np.broadcast_to(x, (3, 4)) * np.arange(12.0).reshape(3, 4), [U(4)]),
    ("expand_squeeze", lambda x: np.squeeze(np.expand_dims(x, (0, 2))) * 2.0 + x[None, :, None][0, :, 0],
     [U(4)]),
    ("stack", lambda x, y: np.stack([x, y, x * y], axis=1), [U(4), U(4)]),
    ("concatenate", lambda x, y: np.concatenate([x, y * 2.0, np.ones((1, 3))], axis=0), [U(2, 3), U(4, 3)]),
    ("concatenate_axis1", lambda x, y: np.concatenate((x, y), axis=1), [U(2, 3), U(2, 2)]),
    ("hstack_vstack", lambda x, y: np.vstack([x, y]).sum() + np.hstack([x, y]), [U(3), U(3)]),
    ("flip_ravel", lambda x: np.flip(x, axis=1).ravel() * np.arange(6.0), [U(2, 3)]),
    ("iterate_rows", lambda x: sum(row * (i + 1.0) for i, row in enumerate(x)), [U(3, 4)]),
    # indexing
    ("slices", lambda x: x[1:, ::2] * x[:-1, 1::2], [U(3, 4)]),
    ("negative_step", lambda x: x[::-1] * np.arange(5.0), [U(5)]),
    ("int_index", lambda x: x[1] * x[:, -1].sum() + x[2, 3], [U(3, 4)]),
    ("ellipsis_newaxis", lambda x: x[..., 0][:, None] * x[0, ...], [U(3, 4)]),
    ("advanced", lambda x: x[[2, 0, 2]] + x[:, [1, 1]].sum(), [U(4, 2)]),
    ("advanced_2", lambda x: x[np.array([[0, 1], [2, 2]]), np.array([1, 0])], [U(3, 2)]),
    ("const_bool_mask", lambda x: x[np.array([True, False, True, True])], [U(4)]),
    ("take", lambda x: np.take(x, [3, 0], axis=1), [U(2, 4)]),
    ("setitem_basic", _setitem_basic, [U(3, 4), U(2)]),
    ("setitem_advanced", _setitem_adv, [U(3, 4), U(3)]),
    ("setitem_mask", _setitem_mask, [U(3, 4), U(1)]),
    ("zeros_like_fill", _zeros_fill, [U(3, 4)]),
    # interpolation
    ("interp_x", lambda x: np.interp(x, np.array([0.0, 0.7, 1.0, 1.6]), np.array([1.0, 2.0, 0.5, 3.0])),
     [U(6, lo=-0.2, hi=1.9)]),
    ("interp_fp", lambda fp: np.interp(np.array([0.1, 0.75, 1.3, 2.0, -1.0]), np.array([0.0, 0.5, 1.0, 1.5]), fp),
     [U(4)]),
    ("interp_xp_left_right", lambda xp: np.interp(np.array([0.3, 0.9, 1.4]), np.cumsum(xp), np.array([1.0, 4.0, 2.0]),
                                                  left=-1.0, right=7.0), [U(3, lo=0.3, hi=0.6)]),
]


@pytest.mark.parametrize("name,f,makers", CASES, ids=[c[0] for c in CASES])
def test_op_value_and_gradient(twinc, name, f, makers, rng):
    args = [m(rng) for m in makers]
    argnums = tuple(range(len(args)))
    # the value, against NumPy
    F = twinc.function(f)
    want = f(*args)
    got = F(*args)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15, err_msg=name)
    # the gradient of the sum, against finite differences of NumPy's function
    vg = twinc.value_and_grad(f, argnums=argnums)
    v, g = vg(*args)
    np.testing.assert_allclose(v, want, rtol=1e-13, atol=1e-15)
    for i in argnums:
        assert g[i].shape == np.shape(args[i])
        assert_rho(g[i], fd_grad(f, args, i), 2e-6, f"{name} d/darg{i}")
    # a replay with new inputs equals a fresh recording
    args2 = [m(rng) for m in makers]
    v2, g2 = vg(*args2)
    v3, g3 = twinc.value_and_grad(twinc.function(f), argnums=argnums)(*args2)
    np.testing.assert_array_equal(v2, v3)
    for a, b in zip(g2, g3):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(F(*args2), f(*args2), rtol=1e-13, atol=1e-15)


def test_mask_outputs_are_boolean(twinc, rng):
    f = twinc.function(lambda x, y: (x < y, np.any(x > 1.2), (x > 1.0).sum()))
    x, y = rng.uniform(0.5, 1.5, 8), rng.uniform(0.5, 1.5, 8)
    m, a, c = f(x, y)
    assert m.dtype == np.bool_ and np.array_equal(m, x < y)
    assert isinstance(a, np.bool_) and a == np.any(x > 1.2)
    assert c.dtype == np.int64 and c == (x > 1.0).sum()


def test_boolean_arithmetic_follows_numpy(twinc):
    f = twinc.function(lambda x: ((x > 1.0) + (x > 2.0), (x > 1.0) * (x < 3.0)))
    x = np.array([0.5, 1.5, 2.5, 3.5])
    a, b = f(x)
    np.testing.assert_array_equal(a, (x > 1.0) + (x > 2.0))
    np.testing.assert_array_equal(b, (x > 1.0) * (x < 3.0))


def test_scipy_ndtr_on_traced_values(twinc, rng):
    special = pytest.importorskip("scipy.special")
    x = rng.uniform(-2, 2, 5)
    v, g = twinc.value_and_grad(lambda x: special.ndtr(x))(x)
    np.testing.assert_allclose(v, special.ndtr(x), rtol=1e-14)
    np.testing.assert_allclose(g, np.exp(-x * x / 2) / math.sqrt(2 * math.pi), rtol=1e-13)


def test_fusion_makes_one_pass_of_an_elementwise_chain(twinc, rng):
    f = twinc.function(lambda x, y: np.exp(-x * y) * np.sqrt(x) + np.log(y) - x ** 2)
    st = f.stats(rng.uniform(0.5, 1, 1000), rng.uniform(0.5, 1, 1000))
    assert st["steps"] == 1 and st["fused"] >= 7


def test_views_are_read_in_place(twinc, rng):
    """Slices feeding elementwise code are not materialised: one pass, no buffers."""
    f = twinc.function(lambda S: S[:, 1:] / S[:, :-1] - 1.0)
    st = f.stats(rng.uniform(0.5, 1, (100, 50)))
    assert st["steps"] == 1 and st["arena_forward"] == 0
