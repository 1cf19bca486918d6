"""Kernels with array parameters (const double a[n]) inside recorded graphs:
the argument's last axis holds the elements, the axes before it are lanes
that broadcast with the other arguments; values equal the direct call, and
gradients (with respect to scalars, per-lane arrays and shared arrays, also
through NumPy code around the call) match central finite differences of an
independent NumPy reference with rho <= 1e-6 (conftest.assert_rho)."""

import numpy as np
import pytest

from conftest import assert_rho, fd_grad


@pytest.fixture(scope="module")
def arrays(corpus):
    return corpus("arrays")


def dot_ref(a, b):
    """arrays.dot(n, a, b) with n = the last axis."""
    return np.sum(a * b * (1.0 + 0.5 * a), axis=-1)


def asian_ref(S0, K, r, sigma, T, z):
    """samples asian_call on z of shape (paths, nsteps), in NumPy."""
    n = z.shape[-1]
    dt = T / n
    S = S0 * np.exp(np.cumsum((r - 0.5 * sigma * sigma) * dt + sigma * np.sqrt(dt) * z, axis=-1))
    return np.exp(-r * T) * np.maximum(S.mean(axis=-1) - K, 0.0)


def test_asian_call_on_paths_records_and_matches_the_direct_call(twinc, samples, rng):
    z = rng.standard_normal((400, 24))

    def price(S0, K, r, sigma, T, z):
        return np.mean(samples.asian_call(S0, K, r, sigma, T, 24, z))
    f = twinc.function(price)
    args = (100.0, 95.0, 0.03, 0.25, 1.5, z)
    v = f(*args)
    assert v == pytest.approx(price(*args), rel=1e-14)
    assert v == pytest.approx(np.mean(asian_ref(*args)), rel=1e-12)
    z2 = rng.standard_normal((400, 24))                    # replay with new normals
    assert f(100.0, 95.0, 0.03, 0.25, 1.5, z2) == pytest.approx(price(100.0, 95.0, 0.03, 0.25, 1.5, z2), rel=1e-14)
    val, grads = twinc.value_and_grad(f, argnums=(0, 1, 2, 3, 4))(*args)
    assert val == pytest.approx(v, rel=1e-15)
    ref = lambda *a: np.mean(asian_ref(*a))
    for i, gi in enumerate(grads):
        assert_rho(gi, fd_grad(ref, args, i), what=f"d/d arg {i}")


def test_active_arrays_per_lane_and_shared_through_numpy_code(twinc, arrays, rng):
    a = rng.uniform(0.5, 1.5, (6, 5))          # per lane: 6 lanes of 5 elements
    b = rng.uniform(0.5, 1.5, 5)               # one array for every lane
    w = rng.uniform(0.5, 1.5, 6)

    def model(a, b, w):
        d = arrays.dot(5, np.exp(0.3 * a), b * b)      # arrays computed by NumPy code
        return np.sum(w * np.log1p(d))

    def ref(a, b, w):
        return np.sum(w * np.log1p(dot_ref(np.exp(0.3 * a), b * b)))
    f = twinc.function(model)
    assert f(a, b, w) == pytest.approx(ref(a, b, w), rel=1e-13)
    v, (ga, gb, gw) = twinc.value_and_grad(f, argnums=(0, 1, 2))(a, b, w)
    assert ga.shape == a.shape and gb.shape == b.shape
    assert_rho(ga, fd_grad(ref, (a, b, w), 0), what="per-lane array")
    assert_rho(gb, fd_grad(ref, (a, b, w), 1), what="shared array")
    assert_rho(gw, fd_grad(ref, (a, b, w), 2), what="weights")


def test_array_arguments_may_be_strided_views_and_broadcast_lanes(twinc, arrays, rng):
    A = rng.uniform(0.5, 1.5, (4, 3, 8))
    b = rng.uniform(0.5, 1.5, (3, 4))          # lanes (3,), broadcast against A's (4, 3)

    def model(A, b):
        return arrays.dot(4, A[:, :, ::2], b)          # element stride 2, read in place

    f = twinc.function(model)
    want = dot_ref(A[:, :, ::2], b)
    np.testing.assert_allclose(f(A, b), want, rtol=1e-14)
    v, (gA, gb) = twinc.value_and_grad(f, argnums=(0, 1))(A, b)
    ref = lambda A, b: dot_ref(A[:, :, ::2], b)
    assert_rho(gA, fd_grad(ref, (A, b), 0), what="strided view")
    assert_rho(gb, fd_grad(ref, (A, b), 1), what="array broadcast over lanes")
    assert np.all(gA[:, :, 1::2] == 0.0)


def test_length_expressions_and_integer_arguments_recorded(twinc, arrays, rng):
    c = rng.uniform(-1.0, 1.0, (5, 4))         # c[n + 1] with n = 3
    x = rng.uniform(0.5, 1.5, 5)
    f = twinc.function(lambda x, c: arrays.horner(x, 3, c))
    ref = lambda x, c: np.array([np.polyval(ci[::-1], xi) for xi, ci in zip(x, c)])
    np.testing.assert_allclose(f(x, c), ref(x, c), rtol=1e-13)
    v, (gx, gc) = twinc.value_and_grad(f, argnums=(0, 1))(x, c)
    assert_rho(gx, fd_grad(ref, (x, c), 0), what="x")
    assert_rho(gc, fd_grad(ref, (x, c), 1), what="coefficients")


def test_array_errors_in_graphs(twinc, arrays):
    # too few elements for the length the integer argument asks for, at replay
    f = twinc.function(lambda n, a: arrays.dot(n, a, a))
    assert f(3, np.ones((2, 3))) == pytest.approx(4.5)
    with pytest.raises(ValueError, match=r"array 'a' \(length n\) needs 4 elements in lane 0, but only 3"):
        f(4, np.ones((2, 3)))
    # a scalar where an array is expected, and lanes that do not broadcast
    with pytest.raises(ValueError, match=r"parameter 'a' is an array \(length n\) and needs at least one dimension"):
        twinc.function(lambda x: arrays.dot(1, x * 1.0, np.ones(1)))(0.5)
    with pytest.raises(ValueError, match=r"parameter 'b' of lane shape \(3,\) does not broadcast with shape \(2,\)"):
        twinc.function(lambda a, b: arrays.dot(2, a, b))(np.ones((2, 2)), np.ones((3, 2)))
    # in/out arrays are not recorded yet: a clear error naming the parameter
    with pytest.raises(twinc.UnsupportedError, match="in/out array parameter 'v'"):
        twinc.function(lambda x: arrays.inout_prefix(x, 2, np.ones(2)))(0.5)
