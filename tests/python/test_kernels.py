"""Kernels called from Python: loading, calling on NumPy arrays (broadcasting,
strides, dtypes, keywords), value_and_grad against closed forms and finite
differences, and every error a user can make."""

import gc
import math

import numpy as np
import pytest

from conftest import assert_rho, fd_grad, lib_path

N = np.vectorize(lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0)))


def bs_ref(S, K, r, q, sigma, T):
    sd = sigma * np.sqrt(T)
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / sd
    return S * np.exp(-q * T) * N(d1) - K * np.exp(-r * T) * N(d1 - sd)


def bs_delta_vega(S, K, r, q, sigma, T):
    sd = sigma * np.sqrt(T)
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / sd
    pdf = np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    return np.exp(-q * T) * N(d1), S * np.exp(-q * T) * pdf * np.sqrt(T)


# ---- loading ----

def test_load_lists_kernels_as_attributes(samples):
    expected = {"bs_call", "bs_put", "sabr_vol", "black76_call", "sabr_call", "asian_call",
                "barrier_up_out_call", "heston_call", "garch_nll", "bond_price", "american_put_crr"}
    assert set(samples) == expected
    assert len(samples) == len(expected) and "bs_call" in samples and "nope" not in samples
    assert samples.bs_call is samples["bs_call"] is samples.kernels["bs_call"]
    assert "bs_call" in dir(samples) and "bs_call" in repr(samples)
    assert samples.path.endswith("libsamples.so")


def test_missing_kernel_names_the_available_ones(samples):
    with pytest.raises(AttributeError, match=r"no kernel 'bs_cal'.*bs_call, bs_put"):
        samples.bs_cal
    with pytest.raises(KeyError):
        samples["bs_cal"]


def test_kernel_describes_itself(samples):
    k = samples.bs_call
    assert k.name == "bs_call" and k.file.endswith("bs.c") and k.line > 0
    assert k.inputs == ("S", "K", "r", "q", "sigma", "T")
    assert k.outputs == ("return",)
    assert k.params[0] == {"name": "S", "type": "double", "role": "in", "active": True,
                           "uniform": False, "length": None}
    assert "bs_call(S, K, r, q, sigma, T)" in repr(k) and "bs_call(S, K, r, q, sigma, T)" in k.__doc__
    assert k.library is samples


def test_library_without_registry_is_a_load_error(twinc):
    with pytest.raises(twinc.LoadError, match="no twinc registry"):
        twinc.load(lib_path("tests", "libnoreg.so"))


def test_library_of_another_abi_is_a_load_error(twinc):
    with pytest.raises(twinc.LoadError, match="ABI version 99"):
        twinc.load(lib_path("tests", "libbadabi.so"))


def test_duplicate_kernel_names_are_a_load_error(twinc):
    with pytest.raises(twinc.LoadError, match="defined twice"):
        twinc.load(lib_path("tests", "libduptwin.so"))


def test_missing_file_is_file_not_found(twinc, tmp_path):
    with pytest.raises(FileNotFoundError):
        twinc.load(str(tmp_path / "nope.so"))
    with pytest.raises(twinc.LoadError):
        twinc.load("libdefinitely_not_there_twinc.so")
    with pytest.raises(TypeError):
        twinc.load(42)


def test_not_a_shared_object_is_a_load_error(twinc, tmp_path):
    p = tmp_path / "fake.so"
    p.write_text("not an ELF file")
    with pytest.raises(twinc.LoadError):
        twinc.load(str(p))


def test_kernels_keep_their_library_loaded(twinc):
    k = twinc.load(lib_path("samples", "libsamples.so")).bs_put
    gc.collect()
    assert math.isclose(k(100.0, 100.0, 0.0, 0.0, 0.2, 1.0),
                        float(bs_ref(100.0, 100.0, 0.0, 0.0, 0.2, 1.0)) - 100.0 + 100.0, rel_tol=1e-12)


def test_library_and_kernel_cannot_be_instantiated(twinc):
    with pytest.raises(TypeError):
        twinc.Library()
    with pytest.raises(TypeError):
        twinc.Kernel()


# ---- calling ----

def test_scalar_call_returns_a_numpy_scalar(samples):
    v = samples.bs_call(100.0, 95.0, 0.03, 0.01, 0.25, 0.5)
    assert isinstance(v, np.float64)
    assert math.isclose(v, bs_ref(100.0, 95.0, 0.03, 0.01, 0.25, 0.5), rel_tol=1e-13)


def test_broadcasting_gives_the_lane_shape(samples, rng):
    S = rng.uniform(80, 120, size=7)
    K = rng.uniform(80, 120, size=(3, 1))
    sigma = rng.uniform(0.1, 0.4, size=(3, 7))
    v = samples.bs_call(S, K, 0.03, 0.01, sigma, 1.0)
    assert v.shape == (3, 7) and v.dtype == np.float64
    np.testing.assert_allclose(v, bs_ref(S, K, 0.03, 0.01, sigma, 1.0), rtol=1e-13)


def test_keyword_arguments_by_parameter_name(samples):
    a = samples.bs_call(100.0, 100.0, 0.03, 0.01, 0.2, 1.0)
    b = samples.bs_call(T=1.0, sigma=0.2, q=0.01, r=0.03, K=100.0, S=100.0)
    c = samples.bs_call(100.0, 100.0, 0.03, sigma=0.2, T=1.0, q=0.01)
    assert a == b == c


def test_strided_read_only_and_transposed_inputs(samples, rng):
    base = rng.uniform(80, 120, size=(6, 8))
    S = base[::2, ::-3]                 # negative, non-unit strides
    Kt = rng.uniform(90, 110, size=(3, 3)).T
    ro = np.array(0.2)
    ro.setflags(write=False)
    v = samples.bs_call(S, Kt, 0.01, 0.0, ro, 2.0)
    np.testing.assert_allclose(v, bs_ref(S, Kt, 0.01, 0.0, 0.2, 2.0), rtol=1e-13)
    assert not S.flags.c_contiguous and not Kt.flags.c_contiguous


def test_fields_of_record_arrays_are_copied_not_misread(samples):
    rec = np.zeros(4, dtype=[("S", "f8"), ("tag", "i4")])   # itemsize 12: strides not whole doubles
    rec["S"] = [90.0, 95.0, 100.0, 105.0]
    v = samples.bs_call(rec["S"], 100.0, 0.0, 0.0, 0.2, 1.0)
    np.testing.assert_allclose(v, bs_ref(rec["S"].copy(), 100.0, 0.0, 0.0, 0.2, 1.0), rtol=1e-13)


def test_lossless_dtypes_are_converted(samples):
    ref = samples.bs_call(100.0, 100.0, 0.0, 0.0, 0.25, 1.0)
    assert samples.bs_call(np.int32(100), 100, np.float32(0.0), False, np.float32(0.25), [1]) == ref
    big = np.array([100.0], dtype=">f8")                     # other byte order
    assert samples.bs_call(big, 100.0, 0.0, 0.0, 0.25, 1.0)[0] == ref


def test_lossy_dtypes_are_a_type_error(samples, hand):
    with pytest.raises(TypeError, match=r"bs_call: parameter 'S'.*complex128"):
        samples.bs_call(np.array([100 + 1j]), 100.0, 0.0, 0.0, 0.2, 1.0)
    with pytest.raises(TypeError, match="parameter 'K'"):
        samples.bs_call(100.0, "100", 0.0, 0.0, 0.2, 1.0)
    with pytest.raises(TypeError, match=r"parameter 'k' is a C int.*float64"):
        hand.hand_ok(1.0, 2.0, 1.5)
    with pytest.raises(OverflowError, match="parameter 'k'"):
        hand.hand_ok(1.0, 2.0, np.int64(2 ** 40))


def test_integer_parameters_accept_integers_of_any_width(hand):
    ret, out = hand.hand_ok(np.array([0.5, 1.0]), 2.0, np.array([3, -2], dtype=np.int64))
    np.testing.assert_allclose(ret, [0.5 * 2 + math.sin(0.5) * 3, 1.0 * 2 - math.sin(1.0) * 2], rtol=1e-14)
    np.testing.assert_allclose(out, np.array([0.25, 1.0]) * math.exp(-2.0), rtol=1e-14)
    assert hand.hand_ok(1.0, 1.0, True)[0] == hand.hand_ok(1.0, 1.0, 1)[0]


def test_argument_errors_name_the_signature(samples):
    k = samples.bs_call
    with pytest.raises(TypeError, match=r"bs_call\(S, K, r, q, sigma, T\) takes 6 arguments but 7"):
        k(1, 2, 3, 4, 5, 6, 7)
    with pytest.raises(TypeError, match="missing argument 'T'"):
        k(1.0, 1.0, 0.0, 0.0, 0.2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'vol'"):
        k(1.0, 1.0, 0.0, 0.0, vol=0.2, T=1.0)
    with pytest.raises(TypeError, match="multiple values for argument 'S'"):
        k(1.0, 1.0, 0.0, 0.0, 0.2, 1.0, S=2.0)


def test_shape_mismatch_names_the_parameter_and_both_shapes(samples):
    with pytest.raises(ValueError, match=r"parameter 'K' has shape \(3,\).*shape \(4,\) \(from 'S'\)"):
        samples.bs_call(np.ones(4), np.ones(3), 0.0, 0.0, 0.2, 1.0)


def test_uniform_parameter_needs_one_value(hand):
    x = np.array([1.0, 2.0])
    v = hand.hand_uniform(x, 0.1, 2.0, 3, 0.5)
    np.testing.assert_allclose(v, 0.5 + 3 * x * math.exp(-0.2), rtol=1e-14)
    with pytest.raises(ValueError, match=r"parameter 'T' is uniform.*\(2,\)"):
        hand.hand_uniform(x, 0.1, np.array([2.0, 3.0]), 3, 0.5)


def test_empty_lanes(samples):
    v = samples.bs_call(np.zeros((0, 3)), 100.0, 0.0, 0.0, 0.2, 1.0)
    assert v.shape == (0, 3)
    value, g = samples.bs_call.value_and_grad(np.zeros(0), 100.0, 0.0, 0.0, 0.2, 1.0)
    assert value.shape == (0,) and g["S"].shape == (0,) and g["K"] == 0.0


# ---- value_and_grad ----

def test_value_and_grad_matches_the_closed_form(samples, rng):
    S = rng.uniform(80, 120, size=5)
    sigma = rng.uniform(0.1, 0.4, size=5)
    v, g = samples.bs_call.value_and_grad(S, 100.0, 0.03, 0.01, sigma, 1.5)
    delta, vega = bs_delta_vega(S, 100.0, 0.03, 0.01, sigma, 1.5)
    np.testing.assert_allclose(v, bs_ref(S, 100.0, 0.03, 0.01, sigma, 1.5), rtol=1e-13)
    np.testing.assert_allclose(g["S"], delta, rtol=1e-12)
    np.testing.assert_allclose(g["sigma"], vega, rtol=1e-12)
    assert list(g) == ["S", "K", "r", "q", "sigma", "T"]


def test_gradients_have_the_shape_of_their_argument(samples, rng):
    """Shared (broadcast) arguments get the gradient of the sum over lanes."""
    S = rng.uniform(80, 120, size=(4, 1))
    K = rng.uniform(90, 110, size=3)
    v, g = samples.bs_call.value_and_grad(S, K, 0.03, [0.01], 0.2, 1.0)
    assert v.shape == (4, 3)
    assert g["S"].shape == (4, 1) and g["K"].shape == (3,) and g["q"].shape == (1,)
    assert isinstance(g["r"], np.float64)
    f = lambda *a: bs_ref(*a)
    args = [S, K, 0.03, np.array([0.01]), 0.2, 1.0]
    for i, name in enumerate(["S", "K", "r", "q", "sigma", "T"]):
        assert_rho(g[name], fd_grad(f, args, i), 1e-6, name)


def test_wrt_and_seed(samples):
    S = np.array([90.0, 110.0])
    v, g = samples.bs_call.value_and_grad(S, 100.0, 0.0, 0.0, 0.2, 1.0, wrt="S", seed=np.array([2.0, -1.0]))
    delta, _ = bs_delta_vega(S, 100.0, 0.0, 0.0, 0.2, 1.0)
    assert list(g) == ["S"]
    np.testing.assert_allclose(g["S"], delta * [2.0, -1.0], rtol=1e-12)
    with pytest.raises(ValueError, match="no input 'vol'"):
        samples.bs_call.value_and_grad(S, 100.0, 0.0, 0.0, 0.2, 1.0, wrt=("S", "vol"))
    with pytest.raises(ValueError, match=r"seed of 'return' has shape \(3,\)"):
        samples.bs_call.value_and_grad(S, 100.0, 0.0, 0.0, 0.2, 1.0, seed=np.ones(3))


def test_several_outputs(hand, corpus):
    x, y = np.array([0.5, 1.5]), np.array([2.0, 0.25])
    (ret, out), g = hand.hand_ok.value_and_grad(x, y, 2)            # seeds the return value
    np.testing.assert_allclose(g["x"], y + np.cos(x) * 2, rtol=1e-14)
    _, g = hand.hand_ok.value_and_grad(x, y, 2, seed={"out": 1.0})  # only *out
    np.testing.assert_allclose(g["y"], -x * x * np.exp(-y), rtol=1e-14)
    assert set(g) == {"x", "y"}                                       # k is an int
    with pytest.raises(ValueError, match="not differentiable"):
        hand.hand_ok.value_and_grad(x, y, 2, wrt="k")
    sd = corpus("outputs").sum_diff
    s, d = sd(3.0, 2.0)
    assert (s, d) == (3.0 * 2.0 + 2.0, 3.0 / 2.0 - 3.0)
    with pytest.raises(ValueError, match="several outputs"):
        sd.value_and_grad(3.0, 2.0)
    _, g = sd.value_and_grad(3.0, 2.0, seed={"s": 1.0, "d": 1.0})
    assert math.isclose(g["x"], 2.0 + 1 / 2.0 - 1.0) and math.isclose(g["y"], 3.0 + 1 - 3.0 / 4.0)


def test_workspace_kernels(hand):
    x = np.linspace(0.5, 1.5, 11)
    v, g = hand.hand_uniform.value_and_grad(x, 0.1, 2.0, 3, 0.5)
    e = 3 * np.exp(-0.2)
    np.testing.assert_allclose(g["x"], e, rtol=1e-14)
    np.testing.assert_allclose(g["T"], np.sum(-x * 0.1 * e), rtol=1e-13)
    assert "c" not in g                                               # passive


def test_corpus_kernels_against_finite_differences(corpus, rng):
    for lib, name in (("pricing", None), ("builtins", None), ("branches", None), ("calls", None)):
        L = corpus(lib)
        for kname in L:
            k = L[kname]
            if any(p["role"] not in ("in", "return") or p["length"] for p in k.params):
                continue
            args = []
            for p in k.params:
                if p["role"] != "in":
                    continue
                if p["type"] == "double":
                    args.append(rng.uniform(0.6, 1.4, size=3) if not p["uniform"] else 0.9)
                else:
                    args.append(1 if p["uniform"] else np.array([1, 2, 1]))
            v, g = k.value_and_grad(*args)
            for i, p in enumerate(p for p in k.params if p["role"] == "in"):
                if p["name"] in g:
                    assert_rho(g[p["name"]], fd_grad(lambda *a: k(*a), args, i), 2e-6, f"{kname}.{p['name']}")


def test_value_and_grad_on_traced_values_is_refused(samples, twinc):
    @twinc.function
    def f(S):
        return samples.bs_call.value_and_grad(S, 100.0, 0.0, 0.0, 0.2, 1.0)
    with pytest.raises(TypeError, match="twinc.value_and_grad"):
        f(np.ones(2))


def test_ncdf_npdf_on_arrays(twinc):
    x = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(twinc.ncdf(x), N(x), rtol=1e-14)
    np.testing.assert_allclose(twinc.npdf(x), np.exp(-x * x / 2) / math.sqrt(2 * math.pi), rtol=1e-15)
    assert isinstance(twinc.ncdf(0.0), np.float64)


def test_large_calls_split_over_threads_sum_shared_gradients_exactly(samples, rng):
    n = 300000
    S, vol = rng.uniform(80, 120, n), rng.uniform(0.1, 0.4, n)
    v1, g1 = samples.bs_call.value_and_grad(S, 100.0, 0.02, 0.0, vol, 1.0)
    v2, g2 = samples.bs_call.value_and_grad(S, np.full(n, 100.0), 0.02, 0.0, vol, np.ones(n))
    np.testing.assert_array_equal(v1, v2)
    assert math.isclose(g1["K"], np.sum(g2["K"]), rel_tol=1e-12)
    assert math.isclose(g1["T"], np.sum(g2["T"]), rel_tol=1e-12)
    v3, g3 = samples.bs_call.value_and_grad(S, 100.0, 0.02, 0.0, vol, 1.0)
    assert g3["K"] == g1["K"] and g3["r"] == g1["r"]          # the same bits, every time


def test_buffer_protocol_and_array_interface_inputs(samples):
    import array

    class Interface:                       # anything exposing __array_interface__
        def __init__(self, a):
            self.__array_interface__ = a.__array_interface__
            self.keep = a
    S = np.array([90.0, 100.0, 110.0])
    want = samples.bs_call(S, 100.0, 0.0, 0.0, 0.2, 1.0)
    for obj in (array.array("d", S), memoryview(S), Interface(S), list(S)):
        np.testing.assert_array_equal(samples.bs_call(obj, 100.0, 0.0, 0.0, 0.2, 1.0), want)
