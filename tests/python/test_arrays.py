"""Kernels with array parameters (const double a[n] inputs, double v[n]
in/out arrays) called on NumPy arrays: the last axis holds the elements, the
axes before it are lanes and broadcast like scalars; lengths are checked lane
by lane; in/out arrays come back as outputs and get gradients."""

import numpy as np
import pytest

from conftest import assert_rho, fd_grad


@pytest.fixture(scope="module")
def arrays(corpus):
    return corpus("arrays")


def dot_ref(n, a, b):
    a, b = np.asarray(a)[..., :n], np.asarray(b)[..., :n]
    return np.sum(a * b * (1.0 + 0.5 * a), axis=-1)


def test_array_inputs_per_lane_and_shared(arrays, rng):
    a = rng.uniform(0.5, 1.5, (4, 5))
    b = rng.uniform(0.5, 1.5, 5)                       # one array for every lane
    np.testing.assert_allclose(arrays.dot(5, a, b), dot_ref(5, a, b), rtol=1e-14)
    v, g = arrays.dot.value_and_grad(5, a, b)
    assert g["a"].shape == a.shape and g["b"].shape == b.shape
    np.testing.assert_allclose(g["a"], b * (1.0 + a), rtol=1e-14)
    np.testing.assert_allclose(g["b"], np.sum(a * (1.0 + 0.5 * a), axis=0), rtol=1e-13)


def test_lengths_may_differ_per_lane_within_the_array(arrays, rng):
    a, b = rng.uniform(0.5, 1.5, (3, 6)), rng.uniform(0.5, 1.5, (3, 6))
    n = np.array([6, 2, 4])
    want = [dot_ref(k, a[i], b[i]) for i, k in enumerate(n)]
    np.testing.assert_allclose(arrays.dot(n, a, b), want, rtol=1e-14)
    with pytest.raises(ValueError, match=r"array 'a' \(length n\) needs 7 elements in lane 1, but only 6"):
        arrays.dot(np.array([6, 7, 1]), a, b)


def test_strided_arrays_are_read_in_place(arrays, rng):
    a = rng.uniform(0.5, 1.5, (8, 10))[::2, ::3]       # element stride 3, lane stride 20
    b = rng.uniform(0.5, 1.5, (4, 8))[:, ::-2]
    np.testing.assert_allclose(arrays.dot(4, a, b), dot_ref(4, a, b), rtol=1e-14)


def test_length_expressions(arrays, rng):
    c = rng.uniform(0.5, 1.5, (2, 4))                   # c[n + 1] with n = 3
    x = np.array([0.7, 1.2])
    ref = lambda x, c: np.array([np.polyval(ci[::-1], xi) for xi, ci in zip(np.broadcast_to(x, (2,)), c)])
    np.testing.assert_allclose(arrays.horner(x, 3, c), ref(x, c), rtol=1e-14)
    v, g = arrays.horner.value_and_grad(x, 3, c)
    assert_rho(g["x"], fd_grad(lambda x: arrays.horner(x, 3, c), [x], 0), 1e-8)
    assert_rho(g["c"], fd_grad(lambda c: arrays.horner(x, 3, c), [c], 0), 1e-8)
    with pytest.raises(ValueError, match="needs 5 elements"):
        arrays.horner(x, 4, c)


def test_inout_arrays_are_returned_and_differentiated(arrays, rng):
    v0 = rng.uniform(0.5, 1.5, 4)
    x = np.array([0.9, 1.1, 1.3])                       # three lanes share the initial values
    final = arrays.inout_prefix(x, 4, v0)
    assert final.shape == (3, 4)
    assert np.array_equal(v0, v0.copy())                # the argument is never written
    ref = []
    for xi in x:
        v = v0.copy()
        for i in range(1, 4):
            v[i] = v[i] * xi + np.sin(v[i - 1])
        v[0] *= xi
        ref.append(v)
    np.testing.assert_allclose(final, ref, rtol=1e-14)
    seed = rng.uniform(-1, 1, (3, 4))
    _, g = arrays.inout_prefix.value_and_grad(x, 4, v0, seed={"v": seed})
    f = lambda x, v: np.sum(arrays.inout_prefix(x, 4, v) * seed)
    assert g["v"].shape == v0.shape
    assert_rho(g["x"], fd_grad(f, [x, v0], 0), 1e-8, "x")
    assert_rho(g["v"], fd_grad(f, [x, v0], 1), 1e-8, "v")


def test_inout_with_a_return_value_and_two_inout_arrays(arrays, rng):
    v0 = rng.uniform(0.5, 1.5, (2, 3))
    (s, vf), g = arrays.inout_with_return.value_and_grad(0.4, 3, v0)   # seeds the return value
    assert s.shape == (2,) and vf.shape == (2, 3)
    assert_rho(g["v"], fd_grad(lambda v: arrays.inout_with_return(0.4, 3, v)[0], [v0], 0), 1e-8)
    u0, w0 = rng.uniform(0.5, 1.5, 3), rng.uniform(0.5, 1.5, 3)
    u, w = arrays.inout_two(3, u0, w0)
    np.testing.assert_allclose(u, u0 * w0, rtol=1e-15)
    np.testing.assert_allclose(w, u0 + w0 * 0.5, rtol=1e-15)
    with pytest.raises(ValueError, match="several outputs"):
        arrays.inout_two.value_and_grad(3, u0, w0)
    _, g = arrays.inout_two.value_and_grad(3, u0, w0, seed={"u": 1.0, "v": 2.0})
    np.testing.assert_allclose(g["u"], w0 + 2.0, rtol=1e-15)
    np.testing.assert_allclose(g["v"], u0 + 1.0, rtol=1e-15)


def test_array_errors(arrays, twinc):
    with pytest.raises(ValueError, match="is an array"):
        arrays.dot(1, 0.5, [0.5])
    with pytest.raises(ValueError, match=r"parameter 'b' has lane shape \(3,\)"):
        arrays.dot(2, np.ones((2, 2)), np.ones((3, 2)))
    with pytest.raises(twinc.UnsupportedError, match="in/out array parameter 'v'"):
        twinc.function(lambda x: arrays.inout_prefix(x, 2, np.ones(2)))(0.5)
