"""Replays from several threads: identical results, the GIL released during
native work, and an input written by another thread during a replay caught."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import SANITIZE


def pricer(mc):
    def f(S0, sigma, Z):
        inc = mc.gbm_log_step(0.02, 0.0, sigma, 1.0 / Z.shape[1], Z)
        S = S0 * np.exp(np.cumsum(inc, axis=1))
        return np.mean(np.maximum(S.mean(axis=1) - 100.0, 0.0))
    return f


@pytest.mark.parametrize("paths", [16, 4000])          # GIL kept / GIL released
def test_concurrent_replays_match_serial_ones(twinc, mc, rng, paths):
    vg = twinc.value_and_grad(pricer(mc), argnums=(0, 1))
    jobs = [(100.0 + i, 0.2 + 0.01 * i, rng.standard_normal((paths, 12))) for i in range(24)]
    serial = [vg(*j) for j in jobs]
    with ThreadPoolExecutor(max_workers=8) as ex:
        for _ in range(3):
            par = list(ex.map(lambda j: vg(*j), jobs))
            for (v1, g1), (v2, g2) in zip(serial, par):
                assert v1 == v2 and g1 == g2


def test_concurrent_kernel_calls(samples, rng):
    S = rng.uniform(80, 120, size=(8, 50000))
    want = [samples.bs_call.value_and_grad(s, 100.0, 0.01, 0.0, 0.2, 1.0) for s in S]
    with ThreadPoolExecutor(max_workers=4) as ex:
        got = list(ex.map(lambda s: samples.bs_call.value_and_grad(s, 100.0, 0.01, 0.0, 0.2, 1.0), S))
    for (v1, g1), (v2, g2) in zip(want, got):
        np.testing.assert_array_equal(v1, v2)
        for k in g1:
            np.testing.assert_array_equal(g1[k], g2[k])


def test_the_gil_is_released_during_large_replays(twinc, mc, rng):
    Z = rng.standard_normal((20000, 100))
    vg = twinc.value_and_grad(pricer(mc), argnums=(0, 1))
    vg(100.0, 0.2, Z)
    done = threading.Event()
    ticks = [0]

    def count():
        while not done.is_set():
            ticks[0] += 1
    t = threading.Thread(target=count)
    t.start()
    try:
        t0 = time.perf_counter()
        before = ticks[0]
        vg(100.0, 0.2, Z)
        elapsed = time.perf_counter() - t0
        during = ticks[0] - before
    finally:
        done.set()
        t.join()
    # with the GIL held the counter would advance at most one switch interval's worth
    assert elapsed > 0.01 and during > 1000, (elapsed, during)


@pytest.mark.skipif(SANITIZE, reason="timing-dependent; slow under sanitizers")
def test_an_input_written_during_a_replay_is_an_error(twinc, mc, rng):
    Z = rng.standard_normal((20000, 100))
    f = twinc.function(pricer(mc))
    f(100.0, 0.2, Z)
    stop = threading.Event()

    def scribble():
        while not stop.is_set():
            Z[0, 0] += 1.0
    t = threading.Thread(target=scribble)
    t.start()
    try:
        with pytest.raises(twinc.InputMutatedError, match="input 2 was modified"):
            for _ in range(50):
                f(100.0, 0.2, Z)
    finally:
        stop.set()
        t.join()
    # and the check can be turned off (the caller takes the risk)
    g = twinc.function(pricer(mc), check_inputs=False)
    g(100.0, 0.2, Z)


def test_replays_work_in_a_forked_child(twinc, mc, rng):
    import os
    Z = rng.standard_normal((20000, 50))
    f = twinc.function(pricer(mc))
    want = f(100.0, 0.2, Z)
    pid = os.fork()
    if pid == 0:                      # the child: no worker threads, same results
        try:
            os._exit(0 if f(100.0, 0.2, Z) == want else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
