"""The error paths of issue 5 that happen inside recordings and replays (the
direct kernel calls' own are in test_kernels.py, mutation by another thread
in test_threads.py): each is a Python exception whose message names what is
wrong, never a crash or a silently wrong number."""

import numpy as np
import pytest


def test_shape_mismatch_in_a_recorded_kernel_call_names_the_parameter_and_both_shapes(twinc, samples):
    f = twinc.function(lambda S, K: samples.bs_call(S, K, 0.03, 0.01, 0.2, 1.0))
    with pytest.raises(ValueError, match=r"kernel bs_call: parameter 'K' of shape \(4,\) does not broadcast "
                                         r"with shape \(3,\) of the parameters before it \(from 'S'\)"):
        f(np.ones(3), np.ones(4))


def test_replay_with_another_shape_records_again_but_a_recording_does_not_accept_it(twinc, samples):
    f = twinc.function(lambda S: samples.bs_call(S, 100.0, 0.03, 0.01, 0.2, 1.0))
    assert f(np.full(3, 100.0)).shape == (3,)
    assert f(np.full(4, 100.0)).shape == (4,)          # a new signature: a new recording
    with twinc.record() as rec:
        S = rec.input(np.full(3, 100.0))
        rec.output(samples.bs_call(S, 100.0, 0.03, 0.01, 0.2, 1.0))
    with pytest.raises(ValueError, match=r"input 0 has shape \(4,\); the graph was recorded for shape \(3,\)"):
        rec.replay(np.full(4, 100.0))


def test_wrong_argument_names_and_counts_of_a_recorded_kernel_call(twinc, samples):
    x = np.full(2, 100.0)
    with pytest.raises(TypeError, match=r"bs_call\(S, K, r, q, sigma, T\) missing argument 'T'"):
        twinc.function(lambda S: samples.bs_call(S, 1.0, 0.03, 0.01, 0.2))(x)
    with pytest.raises(TypeError, match="unexpected keyword argument 'vol'"):
        twinc.function(lambda S: samples.bs_call(S, 1.0, 0.03, 0.01, T=1.0, vol=0.2))(x)
    with pytest.raises(TypeError, match="takes 6 arguments but 7 were given"):
        twinc.function(lambda S: samples.bs_call(S, 1.0, 0.03, 0.01, 0.2, 1.0, 2.0))(x)
    with pytest.raises(TypeError, match="multiple values for argument 'S'"):
        twinc.function(lambda S: samples.bs_call(S, 1.0, 0.03, 0.01, 0.2, 1.0, S=S))(x)


def test_dtypes_convert_when_lossless_and_are_refused_otherwise(twinc, samples):
    f = twinc.function(lambda S: samples.bs_call(S, 100.0, 0.03, 0.01, 0.2, 1.0))
    want = samples.bs_call(np.array([90.0, 110.0]), 100.0, 0.03, 0.01, 0.2, 1.0)
    np.testing.assert_array_equal(f(np.array([90.0, 110.0], dtype=np.float32)), want)
    np.testing.assert_array_equal(f(np.array([90, 110], dtype=np.int16)), want)
    with pytest.raises(TypeError, match="complex128"):
        f(np.array([90.0, 110.0], dtype=np.complex128))
    with pytest.raises(TypeError, match="<U"):
        f(np.array(["90", "110"]))


def test_a_library_without_a_registry_is_a_load_error(twinc, tmp_path):
    import ctypes.util
    libm = ctypes.util.find_library("m")
    assert libm
    with pytest.raises(twinc.LoadError, match="no twinc registry"):
        twinc.load(libm)


def test_the_registry_check_point_is_visible(samples, mc):
    assert samples.bs_call.check_at == "S=100,K=105,r=0.03,q=0.01,sigma=0.2,T=1"
    assert mc.gbm_log_step.check_at is None
