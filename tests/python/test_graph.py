"""Recording and replaying whole functions: the API (twinc.function,
value_and_grad, grad, record), kernel-only and mixed graphs against finite
differences, the Monte Carlo Asian pricer of the issue, and every error a
user can run into while recording."""

import math
import warnings

import numpy as np
import pytest

from conftest import assert_rho, fd_grad


# ---- the Monte Carlo Asian pricer: NumPy around a kernel ----

def asian_numpy(S0, sigma, r, K, T, Z):
    n = Z.shape[1]
    dt = T / n
    inc = (r - 0.5 * sigma * sigma) * dt + sigma * np.sqrt(dt) * Z
    S = S0 * np.exp(np.cumsum(inc, axis=1))
    return np.mean(np.maximum(S.mean(axis=1) - K, 0.0)) * np.exp(-r * T)


def make_asian(mc):
    def asian(S0, sigma, r, K, T, Z):
        n = Z.shape[1]
        inc = mc.gbm_log_step(r, 0.0, sigma, T / n, Z)       # the kernel, on (paths, steps) lanes
        S = S0 * np.exp(np.cumsum(inc, axis=1))
        payoff = np.maximum(S.mean(axis=1) - K, 0.0)
        return np.mean(payoff) * np.exp(-r * T)
    return asian


def test_mc_asian_value_and_greeks_match_finite_differences(twinc, mc, rng):
    Z = rng.standard_normal((2000, 24))
    args = [100.0, 0.25, 0.03, 100.0, 1.0, Z]
    asian = make_asian(mc)
    price = twinc.function(asian)
    assert math.isclose(price(*args), asian_numpy(*args), rel_tol=1e-12)
    v, g = twinc.value_and_grad(price, argnums=(0, 1, 2, 3, 4))(*args)
    assert math.isclose(v, asian_numpy(*args), rel_tol=1e-12)
    for i, name in enumerate(["S0", "sigma", "r", "K", "T"]):
        assert_rho(g[i], fd_grad(asian_numpy, args, i), 1e-6, name)
    # new normals, new parameters: a replay, equal to recording afresh
    Z2 = rng.standard_normal((2000, 24))
    args2 = [95.0, 0.3, 0.01, 100.0, 2.0, Z2]
    v2, g2 = twinc.value_and_grad(price, argnums=(0, 1, 2, 3, 4))(*args2)
    v3, g3 = twinc.value_and_grad(asian, argnums=(0, 1, 2, 3, 4))(*args2)
    assert v2 == v3 and g2 == g3
    assert math.isclose(v2, asian_numpy(*args2), rel_tol=1e-12)


def test_kernel_only_graph(twinc, samples, rng):
    S, sigma = rng.uniform(80, 120, 6), rng.uniform(0.1, 0.4, 6)
    f = twinc.function(lambda S, sigma, T: samples.sabr_call(S, 100.0, T, sigma, 0.7, -0.3, 0.4, 0.98))
    v, g = twinc.value_and_grad(f, argnums=(0, 1, 2))(S, sigma, 1.5)
    np.testing.assert_array_equal(v, samples.sabr_call(S, 100.0, 1.5, sigma, 0.7, -0.3, 0.4, 0.98))
    _, kg = samples.sabr_call.value_and_grad(S, 100.0, 1.5, sigma, 0.7, -0.3, 0.4, 0.98)
    np.testing.assert_allclose(g[0], kg["F"], rtol=1e-14)
    np.testing.assert_allclose(g[1], kg["alpha"], rtol=1e-14)
    assert math.isclose(g[2], kg["T"], rel_tol=1e-13)


def test_mixed_graph_kernels_feed_numpy_and_back(twinc, samples, rng):
    def f(F, K, vols):
        vol = samples.sabr_vol(F, K, 1.0, vols, 0.5, -0.2, 0.3)       # kernel
        smile = vol - vol.mean() + np.sqrt(np.abs(K - F) / F) * 0.01      # NumPy
        return samples.black76_call(F, K, 1.0, smile + 0.2, 0.97)        # kernel again

    def f_np(F, K, vols):
        vol = samples.sabr_vol(F, K, 1.0, vols, 0.5, -0.2, 0.3)
        smile = vol - vol.mean() + np.sqrt(np.abs(K - F) / F) * 0.01
        return samples.black76_call(F, K, 1.0, smile + 0.2, 0.97)

    args = [100.0, rng.uniform(80, 120, 7), rng.uniform(0.15, 0.3, 7)]
    v, g = twinc.value_and_grad(f, argnums=(0, 1, 2))(*args)
    np.testing.assert_allclose(v, f_np(*args), rtol=1e-13)
    for i in range(3):
        assert_rho(g[i], fd_grad(f_np, args, i), 1e-6, f"arg{i}")


def test_kernel_with_several_outputs_and_int_parameters_in_a_graph(twinc, hand):
    f = twinc.function(lambda x, y, k: hand.hand_ok(x, y, k)[0] * hand.hand_ok(x, y, k)[1])
    x, y, k = np.array([0.5, 1.2]), np.array([1.0, 0.3]), np.array([2, 3])
    ref = lambda x, y: (x * y + np.sin(x) * k) * (x * x * np.exp(-y))
    np.testing.assert_allclose(f(x, y, k), ref(x, y), rtol=1e-14)
    _, (gx, gy) = twinc.value_and_grad(f, argnums=(0, 1))(x, y, k)
    assert_rho(gx, fd_grad(ref, [x, y], 0), 1e-7)
    assert_rho(gy, fd_grad(ref, [x, y], 1), 1e-7)
    with pytest.raises(TypeError, match=r"parameter 'k' is a C int; got a traced float64"):
        twinc.function(lambda x: hand.hand_ok(x, x, x))(x)


def test_uniform_kernel_parameters_in_a_graph(twinc, hand):
    f = twinc.function(lambda x, T: hand.hand_uniform(x, 0.1, T, 3, 0.5).sum())
    v, (gx, gT) = twinc.value_and_grad(f, argnums=(0, 1))(np.array([1.0, 2.0]), 2.0)
    assert math.isclose(v, 1.0 + 9 * math.exp(-0.2), rel_tol=1e-14)
    assert math.isclose(gT, -3 * 0.1 * 3 * math.exp(-0.2), rel_tol=1e-13)
    with pytest.raises(ValueError, match="parameter 'T' is uniform"):
        twinc.function(lambda x, T: hand.hand_uniform(x, 0.1, T, 3, 0.5))(np.ones(2), np.ones(2))


# ---- the API ----

def test_function_records_once_per_signature(twinc):
    calls = []

    @twinc.function
    def f(x, y):
        calls.append(1)
        return x * y
    for _ in range(3):
        f(np.ones(3), 2.0)
    assert len(calls) == 1
    f(np.ones(4), 2.0)
    f(np.ones(4, dtype=np.float32), 2.0)
    assert len(calls) == 3
    assert f(y=3.0, x=np.ones(2))[0] == 3.0
    f.clear_cache()
    f(np.ones(3), 2.0)
    assert len(calls) == 5
    assert f.__name__ == "f" and "twinc.function" in repr(f)


def test_static_arguments(twinc):
    @twinc.function(static_argnums=1)
    def f(x, n):
        return np.sum(x[:n] ** 2)
    assert f(np.arange(5.0), 2) == 1.0 and f(np.arange(5.0), 3) == 5.0

    @twinc.function
    def g(x, mode):
        return x * 2 if mode == "double" else x * 3
    assert g(1.0, "double") == 2.0 and g(1.0, "triple") == 3.0
    with pytest.raises(TypeError, match="not hashable"):
        g(1.0, {"a": 1})


def test_functions_compose_and_nest(twinc):
    inner = twinc.function(lambda x: np.exp(x) * 2.0)
    outer = twinc.function(lambda x: inner(x).sum() + inner(x * 2).sum())
    x = np.array([0.1, 0.2])
    assert math.isclose(outer(x), np.sum(2 * np.exp(x)) + np.sum(2 * np.exp(2 * x)), rel_tol=1e-14)
    g = twinc.grad(outer)(x)
    np.testing.assert_allclose(g, 2 * np.exp(x) + 4 * np.exp(2 * x), rtol=1e-14)


def test_value_and_grad_forms(twinc):
    f = lambda x, y, z: np.sum(x * y) + z ** 2
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    v, gx = twinc.value_and_grad(f)(x, y, 3.0)
    assert v == 20.0 and np.array_equal(gx, y)
    v, (gy, gz) = twinc.value_and_grad(f, argnums=(1, 2))(x, y, 3.0)
    assert np.array_equal(gy, x) and gz == 6.0
    (gz,) = twinc.grad(f, argnums=(-1,))(x, y, 3.0)
    assert gz == 6.0
    assert twinc.grad(f, argnums=2)(x, y, 2) == 4.0          # an int argument is promoted
    aux = lambda x: (np.sum(x * x), x * 3)
    (v, a), g = twinc.value_and_grad(aux, has_aux=True)(x)
    assert v == 5.0 and np.array_equal(a, x * 3) and np.array_equal(g, 2 * x)
    g, a = twinc.grad(aux, has_aux=True)(x)
    assert np.array_equal(g, 2 * x)


def test_random_normals_are_inputs_not_differentiated(twinc, rng):
    f = twinc.function(lambda s, z: np.mean(np.exp(s * z)))
    z = rng.standard_normal(100)
    v, g = twinc.value_and_grad(f, argnums=0)(0.3, z)
    assert math.isclose(g, np.mean(z * np.exp(0.3 * z)), rel_tol=1e-13)
    assert f.stats(0.3, z, argnums=0)["reverse_steps"] >= 1


def test_large_constants_are_reported(twinc, rng):
    Z = rng.standard_normal(20000)
    f = twinc.function(lambda s: np.mean(np.exp(s * Z)))          # Z captured: frozen into the graph
    with pytest.warns(twinc.TwincWarning, match="pass it as an argument"):
        f(0.1)


def test_record_context(twinc, samples, rng):
    S0, z = np.array([100.0, 90.0]), rng.standard_normal(2)
    with twinc.record() as rec:
        S = rec.input(S0)
        Z = rec.input(z, differentiable=False)
        vol = rec.input(0.2)
        price = samples.bs_call(S * np.exp(0.01 * Z), 100.0, 0.0, 0.0, vol, 1.0)
        rec.output(price.sum(), price)
    total, each = rec.replay(S0, z, 0.2)
    np.testing.assert_allclose(each, samples.bs_call(S0 * np.exp(0.01 * z), 100.0, 0.0, 0.0, 0.2, 1.0))
    (total2, _), (gS, gvol) = rec.value_and_grad(S0 * 1.1, z, 0.25)
    _, kg = samples.bs_call.value_and_grad(S0 * 1.1 * np.exp(0.01 * z), 100.0, 0.0, 0.0, 0.25, 1.0)
    np.testing.assert_allclose(gS, kg["S"] * np.exp(0.01 * z), rtol=1e-13)
    assert math.isclose(gvol, kg["sigma"], rel_tol=1e-13)
    _, (gS2, _) = rec.value_and_grad(S0 * 1.1, z, 0.25, seed=2.0)
    np.testing.assert_allclose(gS2, 2 * gS, rtol=1e-15)
    assert rec.stats()["nodes"] > 5
    with pytest.raises(RuntimeError, match="finished"):
        S + 1.0


def test_graph_level_api(twinc):
    g = twinc.Graph()
    x = g.input((3,), True)
    y = g.binary(twinc._twinc.OPS["multiply"], x, g.scalar(2.0))
    s = g.reduce(twinc._twinc.OPS["sum"], g.unary(twinc._twinc.OPS["exp"], y), 0)
    assert g.shape(s) == () and g.shape(y) == (3,)
    g.compile([s, y], [True, False])
    assert g.compiled and g.ninputs == 1 and g.noutputs == 2
    (v, yy), (gx,) = g.gradient([np.zeros(3)])
    assert v == 3.0 and np.array_equal(yy, np.zeros(3)) and np.array_equal(gx, [2.0, 2.0, 2.0])
    with pytest.raises(TypeError, match="takes 1 input, got 2"):
        g.forward([np.zeros(3), 1.0])
    with pytest.raises(ValueError, match=r"input 0 has shape \(4,\); the graph was recorded for shape \(3,\)"):
        g.forward([np.zeros(4)])
    with pytest.raises(TypeError, match="complex"):
        g.forward([np.zeros(3, dtype=complex)])
    with pytest.raises(ValueError, match="compiled"):
        g.scalar(1.0)
    with pytest.raises(ValueError, match="already compiled"):
        g.compile([s])
    h = twinc.Graph()
    with pytest.raises(RuntimeError, match="not compiled"):
        h.forward([])
    with pytest.raises(ValueError, match=r"could not be broadcast together with shapes \(3,\) \(4,\)"):
        h.binary(0 + twinc._twinc.OPS["add"], h.input((3,)), h.input((4,)))
    with pytest.raises(ValueError, match="no node 99"):
        h.unary(twinc._twinc.OPS["exp"], 99)


# ---- errors while recording ----

def test_python_branch_on_a_traced_value_names_np_where(twinc):
    def f(x):
        if x > 0:
            return x
        return -x
    with pytest.raises(twinc.TracerConversionError, match=r"np\.where"):
        twinc.function(f)(1.0)
    for conv in (bool, float, int, complex, lambda t: t.item(), lambda t: t.tolist(), math.exp):
        with pytest.raises(twinc.TracerConversionError, match=r"np\.where"):
            twinc.function(lambda x: conv(x))(np.ones(2))


def test_traced_sizes_need_static_arguments(twinc):
    with pytest.raises(twinc.TracerConversionError, match="static_argnums"):
        twinc.function(lambda x, n: x[:n])(np.ones(5), 3)
    with pytest.raises(TypeError):
        twinc.function(lambda x, n: np.ones(n) * x)(1.0, 3)      # NumPy's own message


def test_freezing_a_traced_value_into_numpy_is_refused(twinc):
    with pytest.raises(twinc.TracerConversionError, match="freeze"):
        twinc.function(lambda x: np.asarray(x))(np.ones(2))

    def fill(x):
        out = np.zeros(3)
        out[:2] = x
        return out
    with pytest.raises(twinc.TracerConversionError, match="zeros_like"):
        twinc.function(fill)(np.ones(2))

    def fill_one(x):
        out = np.zeros(3)
        out[0] = x[0]      # NumPy sees a sequence-like object and raises its own ValueError
        return out
    with pytest.raises((ValueError, TypeError)):
        twinc.function(fill_one)(np.ones(2))


@pytest.mark.parametrize("f,name", [
    (lambda x: np.sort(x), "numpy.sort"),
    (lambda x: np.argmax(x), "numpy.argmax"),
    (lambda x: np.linalg.norm(x), "numpy.linalg.norm"),
    (lambda x: np.arctan(x), "numpy.arctan"),
    (lambda x: np.round(x), "numpy.round"),
    (lambda x: np.add.outer(x, x), "numpy.add.outer"),
    (lambda x: x // 2.0, "numpy.floor_divide"),
    (lambda x: np.where(x > 0), "numpy.where(condition) with one argument"),
])
def test_unsupported_numpy_functions_are_named(twinc, f, name):
    with pytest.raises(twinc.UnsupportedError, match=name.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        twinc.function(f)(np.ones(3))


def test_out_and_where_arguments_are_refused(twinc):
    with pytest.raises(twinc.UnsupportedError, match="out="):
        twinc.function(lambda x: np.exp(x, out=np.empty(2)))(np.ones(2))
    with pytest.raises(twinc.UnsupportedError, match="where="):
        twinc.function(lambda x: np.exp(x, where=np.array([True, False])))(np.ones(2))

    def inplace(x):
        a = np.ones(2)
        a += x
        return a
    with pytest.raises(twinc.UnsupportedError, match="out="):
        twinc.function(inplace)(np.ones(2))


def test_data_dependent_indexing_is_refused(twinc):
    with pytest.raises(twinc.UnsupportedError, match=r"np\.where\(mask, x, 0\)"):
        twinc.function(lambda x: x[x > 0].sum())(np.ones(3))
    with pytest.raises(twinc.UnsupportedError, match="traced integer indices"):
        twinc.function(lambda x, i: x[i])(np.ones(3), np.array([0, 1]))


def test_writes_that_cannot_be_recorded_safely(twinc):
    def into_view(x):
        y = x.copy()
        y[1:][0] = 5.0
        return y
    with pytest.raises(twinc.UnsupportedError, match="view"):
        twinc.function(into_view)(np.ones(3))

    def into_argument(x):
        x[0] = 1.0
        return x
    with pytest.raises(twinc.UnsupportedError, match="caller's array"):
        twinc.function(into_argument)(np.ones(3))

    def stale(x):
        y = x.copy()
        head = y[:2]
        y[0] = 7.0
        return head * 2
    with pytest.raises(RuntimeError, match="take the view again"):
        twinc.function(stale)(np.ones(3))

    def twice(x):
        y = x.copy()
        y[[0, 0]] = x[:2]
        return y
    with pytest.raises(ValueError, match="more than once"):
        twinc.function(twice)(np.ones(3))

    def truncating(x):
        m = x > 0
        m[0] = 2.5
        return m
    with pytest.raises(TypeError, match="truncate"):
        twinc.function(truncating)(np.ones(3))


def test_shape_errors_read_like_numpy(twinc):
    with pytest.raises(ValueError, match=r"shapes \(3,\) \(4,\)"):
        twinc.function(lambda x, y: x + y)(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"cannot reshape array of size 6 into shape \(4,\)"):
        twinc.function(lambda x: x.reshape(4))(np.ones(6))
    with pytest.raises(IndexError, match="out of bounds"):
        twinc.function(lambda x: x[5])(np.ones(3))
    with pytest.raises(np.AxisError):
        twinc.function(lambda x: x.sum(axis=2))(np.ones((2, 2)))
    with pytest.raises(ValueError, match="matmul"):
        twinc.function(lambda a, b: a @ b)(np.ones((2, 3)), np.ones((2, 3)))


def test_tracers_do_not_outlive_their_recording(twinc):
    kept = []
    twinc.function(lambda x: kept.append(x) or x * 2)(np.ones(2))
    with pytest.raises(RuntimeError, match="recording that has finished"):
        kept[0] + 1.0
    with pytest.raises(RuntimeError, match="finished"):
        twinc.function(lambda y: y + kept[0])(np.ones(2))


def test_values_of_two_recordings_do_not_mix(twinc):
    with twinc.record() as a:
        x = a.input(np.ones(2))
        with twinc.record() as b:
            y = b.input(np.ones(2))
            with pytest.raises(ValueError, match="two different recordings"):
                x + y


def test_differentiating_what_cannot_be(twinc):
    with pytest.raises(TypeError, match="float inputs"):
        twinc.grad(lambda x: x * 2.0)(np.array([1, 2]))
    with pytest.raises(TypeError, match="must be float"):
        twinc.grad(lambda x: x > 1.0)(np.ones(2))
    with pytest.raises(TypeError, match="several outputs"):
        twinc.value_and_grad(lambda x: (x, x))(np.ones(2))
    with pytest.raises(ValueError, match="out of range"):
        twinc.grad(lambda x: x, argnums=3)(np.ones(2))
    with pytest.raises(TypeError, match="static"):
        twinc.grad(lambda x, s: x, argnums=1)(np.ones(2), "s")
    with pytest.raises(TypeError, match="nested"):
        twinc.function(lambda x: twinc.grad(lambda y: y.sum())(x))(np.ones(2))


def test_no_warning_for_small_constants(twinc):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twinc.function(lambda x: x * np.arange(100.0))(np.ones(100))


# ---- the compiler's fusions ----

def test_seeded_kernel_outputs_run_one_adjoint(twinc, samples, rng):
    """A kernel whose output is a seeded graph output: one adjoint call, no reverse pass."""
    S0 = rng.uniform(80, 120, 5000)
    with twinc.record() as rec:
        S = rec.input(S0)
        vol = rec.input(0.2)
        rec.output(samples.bs_call(S, 100.0, 0.01, 0.0, vol, 1.0))
    seed = rng.uniform(-1, 1, 5000)
    v, (gS, gvol) = rec.value_and_grad(S0, 0.25, seed=seed)
    kv, kg = samples.bs_call.value_and_grad(S0, 100.0, 0.01, 0.0, 0.25, 1.0, seed=seed)
    np.testing.assert_array_equal(v, kv)
    np.testing.assert_allclose(gS, kg["S"], rtol=1e-15)
    assert math.isclose(gvol, kg["sigma"], rel_tol=1e-12)
    assert rec.stats()["reverse_steps"] == 0
    np.testing.assert_array_equal(rec.replay(S0, 0.25), kv)


def test_row_tiled_regions_against_finite_differences(twinc, mc, rng):
    """Kernel -> cumsum -> elementwise with row and column broadcasts -> max, prod and
    cumprod along rows: run tile by tile (several tiles, several threads)."""
    P, T = 1200, 16
    Z = rng.standard_normal((P, T))

    def body(step, s, w, b):
        x = step * w + b
        c = np.cumsum(x, axis=1)
        m = np.max(c, axis=1) + np.prod(1.0 + 0.1 * x, axis=1) + np.cumprod(1.0 + 0.05 * c, axis=1).sum(axis=1)
        return np.sum(np.sqrt(np.abs(m) + 1.0) * s)

    def f(s, w, b, Z):
        return body(mc.gbm_log_step(0.01, 0.0, s, 0.1, Z), s, w, b)

    def f_np(s, w, b, Z):
        return body((0.01 - 0.5 * s * s) * 0.1 + s * np.sqrt(0.1) * Z, s, w, b)

    args = [0.3, rng.uniform(0.5, 1.5, T), rng.uniform(-0.1, 0.1, (P, 1)), Z]
    F = twinc.function(f)
    st = F.stats(*args, argnums=(0, 1, 2))
    assert st["tiled"] >= 4 and st["arena_gradient"] < P * T * 8, st
    assert math.isclose(F(*args), f_np(*args), rel_tol=1e-12)
    v, g = twinc.value_and_grad(F, argnums=(0, 1, 2))(*args)
    assert math.isclose(v, f_np(*args), rel_tol=1e-12)
    assert_rho(g[0], fd_grad(f_np, args, 0), 1e-6, "s")
    assert_rho(g[1], fd_grad(f_np, args, 1), 1e-6, "w")
    idx = rng.choice(P, 40, replace=False)        # b: a sample of its rows

    def f_rows(rows):
        b = args[2].copy()
        b[idx] = rows
        return f_np(args[0], args[1], b, Z)
    assert_rho(g[2][idx], fd_grad(f_rows, [args[2][idx]], 0), 1e-6, "b")
    # the same bits every time, and from several threads at once
    from concurrent.futures import ThreadPoolExecutor
    vg = twinc.value_and_grad(F, argnums=(0, 1, 2))
    with ThreadPoolExecutor(4) as ex:
        for v2, g2 in ex.map(lambda _: vg(*args), range(8)):
            assert v2 == v and all(np.array_equal(a, b) for a, b in zip(g2, g))

