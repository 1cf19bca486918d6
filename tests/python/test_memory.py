"""Reference counts and memory stay flat over 10^5 calls: kernel calls,
value_and_grad, replays forward and reverse, and failing calls."""

import gc
import sys

import numpy as np

from conftest import SANITIZE

CALLS = 20000 if SANITIZE else 100000


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def steady(fn, calls=CALLS, slack_kb=2048):
    """fn() calls many times: memory after a warm-up must not grow."""
    for _ in range(1000):
        fn()
    gc.collect()
    before = rss_kb()
    for _ in range(calls):
        fn()
    gc.collect()
    grown = rss_kb() - before
    if not SANITIZE:  # ASan keeps freed memory in quarantine: RSS says nothing there
        assert grown < slack_kb, f"RSS grew by {grown} kB over {calls} calls"


def test_kernel_calls_do_not_leak(samples):
    S = np.linspace(80, 120, 16)
    refs = sys.getrefcount(S)
    steady(lambda: samples.bs_call(S, 100.0, 0.01, 0.0, 0.2, 1.0))
    steady(lambda: samples.bs_call.value_and_grad(S, 100.0, 0.01, 0.0, 0.2, 1.0, wrt=("S", "sigma")))
    assert sys.getrefcount(S) == refs


def test_failing_calls_do_not_leak(samples):
    S = np.linspace(80, 120, 16)
    refs = sys.getrefcount(S)

    def bad():
        try:
            samples.bs_call(S, np.ones(3), 0.01, 0.0, 0.2, 1.0)
        except ValueError:
            pass
    steady(bad, calls=CALLS // 5)
    assert sys.getrefcount(S) == refs


def test_replays_do_not_leak(twinc, mc):
    @twinc.function
    def f(S0, sigma, Z):
        x = mc.gbm_log_step(0.02, 0.0, sigma, 0.1, Z)
        return np.sum(np.exp(np.cumsum(x, axis=1)) * S0)
    vg = twinc.value_and_grad(f, argnums=(0, 1))
    Z = np.random.default_rng(1).standard_normal((4, 8))
    refs = sys.getrefcount(Z)
    steady(lambda: f(100.0, 0.2, Z))
    steady(lambda: vg(100.0, 0.2, Z))
    assert sys.getrefcount(Z) == refs


def test_large_replays_reuse_their_buffers(twinc):
    f = twinc.value_and_grad(lambda x: np.sum(np.cumsum(np.exp(x), axis=0) ** 2))
    x = np.linspace(0, 1, 200000)
    f(x)
    gc.collect()
    before = rss_kb()
    for _ in range(50):
        f(x)
    gc.collect()
    assert SANITIZE or rss_kb() - before < 8 * 1024


def test_recordings_are_freed(twinc):
    x = np.ones(1000)

    def record_one():
        twinc.function(lambda x: np.sum(x * 2.0))(x)
    steady(record_one, calls=CALLS // 20, slack_kb=4096)
