"""Shared fixtures and helpers of the Python binding's tests.

The libraries come from the build directory in $TWINC_BUILD (make python-tests
sets it and builds them): the samples, the runtime's hand-written fixtures,
the gradient corpus, and build/python/libmc_kernels.so.

Gradients are compared with central finite differences of the plain NumPy
function (independent of twinc's forward pass) with the README's metric,
rho = |a - b| / max(1, |a| + |b|).
"""

import os

import numpy as np
import pytest

BUILD = os.environ.get("TWINC_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
SANITIZE = bool(os.environ.get("TWINC_SANITIZE"))


def lib_path(*parts):
    p = os.path.join(BUILD, *parts)
    if not os.path.exists(p):
        pytest.skip(f"{p} is not built (run make python-tests)")
    return p


@pytest.fixture(scope="session")
def twinc():
    import twinc as t
    return t


@pytest.fixture(scope="session")
def samples(twinc):
    return twinc.load(lib_path("samples", "libsamples.so"))


@pytest.fixture(scope="session")
def mc(twinc):
    return twinc.load(lib_path("python", "libmc_kernels.so"))


@pytest.fixture(scope="session")
def hand(twinc):
    return twinc.load(lib_path("tests", "libhandtwin.so"))


@pytest.fixture(scope="session")
def corpus(twinc):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = twinc.load(lib_path("corpus", f"lib{name}.so"))
        return cache[name]
    return get


def rho(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.abs(a - b) / np.maximum(1.0, np.abs(a) + np.abs(b))


def assert_rho(a, b, tol=1e-6, what=""):
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    assert a.shape == b.shape, (what, a.shape, b.shape)
    r = rho(a, b)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), (what, a, b)
    assert r.max(initial=0.0) <= tol, f"{what}: max rho {r.max()} > {tol}\nAD {a}\nFD {b}"


def fd_grad(f, args, i, rel=1e-6):
    """Central differences of sum(f(*args)) with respect to args[i]."""
    x = np.array(args[i], dtype=float)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xi = x[idx]
        h = rel * max(1.0, abs(xi))
        xp, xm = x.copy(), x.copy()
        xp[idx] = xi + h
        xm[idx] = xi - h
        a = list(args)
        a[i] = xp
        fp = np.sum(f(*a))
        a[i] = xm
        fm = np.sum(f(*a))
        g[idx] = (fp - fm) / (xp[idx] - xm[idx])
    return g


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
