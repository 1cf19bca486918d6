"""The numerical parts of samples/risk_report.py: seeded data, the GARCH fit
and walk-forward refits, the finite-difference check (that it fails on a
wrong gradient), the long-double Heston reference, and a small end-to-end
run of the report."""
import os

import numpy as np
import pytest

import garch_fit
import market_data
import risk_report


def test_market_data_is_deterministic():
    a, b = market_data.generate(), market_data.generate()
    assert len(a["returns"]) == 10 * market_data.DAYS_PER_YEAR
    assert np.array_equal(a["returns"], b["returns"])
    assert not np.array_equal(a["returns"], market_data.generate(seed=1)["returns"])
    assert abs(a["returns"].mean()) < 1e-15
    assert np.allclose(np.diff(np.log(a["closes"])), a["returns"])


@pytest.fixture(scope="module")
def fitted(lib):
    ret = market_data.generate()["returns"]
    n_in = len(ret) - market_data.DAYS_PER_YEAR
    return ret, n_in, garch_fit.fit(lib.garch_nll, ret[:n_in])


def test_garch_fit_recovers_the_generating_parameters(fitted):
    _, _, fit = fitted
    assert fit["success"]
    p = market_data.TRUE_PARAMS
    assert abs(fit["alpha"] - p["alpha"]) < 0.01
    assert abs(fit["beta"] - p["beta"]) < 0.01
    assert abs(fit["omega"] / p["omega"] - 1) < 0.1
    assert np.max(np.abs(fit["grad"])) < 1e-6      # at a stationary point (scaled nll / n)


def test_garch_objective_gradient_matches_fd(lib, fitted):
    ret, n_in, fit = fitted
    x = np.array([0.05, 0.05, 0.9])
    f, g = garch_fit.objective(lib.garch_nll, x, ret[:n_in])
    for i in range(3):
        h = np.zeros(3)
        h[i] = 1e-6
        fd = (garch_fit.objective(lib.garch_nll, x + h, ret[:n_in])[0]
              - garch_fit.objective(lib.garch_nll, x - h, ret[:n_in])[0]) / 2e-6
        assert abs(g[i] - fd) <= 1e-6 * max(1.0, abs(fd))


def test_filter_and_closed_form_forecast_agree(fitted):
    ret, n_in, fit = fitted
    h = garch_fit.filter_variance(fit["omega"], fit["alpha"], fit["beta"], ret[:n_in + 1])
    wins = ret[None, :n_in]
    end = garch_fit.variance_at_end(fit["x"][None, :], wins, np.mean(wins * wins, axis=1))
    assert end[0] == pytest.approx(h[-1], rel=1e-10)


def test_walk_forward_equals_separate_fits(lib, fitted):
    ret, n_in, fit = fitted
    H = garch_fit.hessian(lib.garch_nll, fit["x"], ret[:n_in], fit["v"])
    fc, x, iters = garch_fit.walk_forward(lib.garch_nll, ret, n_in, len(ret), n_in, fit["x"], H)
    assert fc.shape == (market_data.DAYS_PER_YEAR,) and iters < 30
    assert np.allclose(x[0], fit["x"], atol=1e-6)
    for day in (100, len(ret) - n_in - 1):
        lo = n_in + day - n_in
        alone = garch_fit.fit(lib.garch_nll, ret[lo:lo + n_in])
        assert np.allclose(x[day], alone["x"], atol=1e-5)
        h = garch_fit.filter_variance(*garch_fit.to_params(alone["x"], alone["v"]), ret[lo:lo + n_in + 1])
        assert fc[day] == pytest.approx(h[-1], rel=1e-4)


def _bs_product(lib, n=50):
    p = {"S": np.linspace(60, 140, n), "K": np.full(n, 100.0), "r": np.full(n, 0.03),
         "q": np.full(n, 0.01), "sigma": np.full(n, 0.2), "T": np.full(n, 1.0)}
    return risk_report.Product("bs_call", lib.bs_call, tuple(p), {}), p


def test_fd_check_passes_the_adjoint(lib):
    prod, p = _bs_product(lib)
    tally = risk_report.FdTally()
    prod.check(tally, p)
    assert tally.failed == 0 and len(tally.rows) == 6


def test_fd_check_fails_a_wrong_gradient(lib):
    prod, p = _bs_product(lib)
    v, g = prod.adjoint(p)
    g = dict(g)
    g["sigma"] = g["sigma"] * (1 + 1e-4)           # a vega 0.01% off
    tally = risk_report.FdTally()
    prod.check(tally, p, grads=g, f0=v)
    failed = {row[1]: row[6] for row in tally.rows}
    assert failed["sigma"] == 50 and failed["S"] == 0


def test_fd_check_fails_a_wrong_monte_carlo_path_gradient(lib):
    z = np.random.default_rng(3).standard_normal((32, 12))
    p = {"S0": np.array([90.0, 110.0]), "K": np.full(2, 100.0), "r": np.full(2, 0.03),
         "sigma": np.full(2, 0.2), "T": np.full(2, 1.0)}
    prod = risk_report.Product("asian", lib.asian_call, tuple(p), {"nsteps": 12, "z": z}, paths=32, kind="path")
    a = prod.lane_args(p)
    f0, g = lib.asian_call.value_and_grad(**a)
    g = dict(g)
    g["S0"] = g["S0"].copy()
    g["S0"][1, 5] += 1e-3 * max(abs(g["S0"][1, 5]), 1.0)   # one path of one scenario
    tally = risk_report.FdTally()
    risk_report.fd_check(tally, "asian", lambda kw: lib.asian_call(**kw), a, g, ("S0",), 1e-7, f0, prod._sub)
    assert tally.failed == 1


def test_monte_carlo_greeks_are_means_of_path_greeks(lib):
    z = np.random.default_rng(4).standard_normal((64, 12))
    p = {"S0": np.array([95.0, 105.0]), "K": np.full(2, 100.0), "r": np.full(2, 0.03),
         "sigma": np.full(2, 0.25), "T": np.full(2, 1.0)}
    prod = risk_report.Product("asian", lib.asian_call, tuple(p), {"nsteps": 12, "z": z}, paths=64, kind="path")
    v, g = prod.adjoint(p)
    lv, lg = lib.asian_call.value_and_grad(**prod.lane_args(p))
    assert np.allclose(v, lv.mean(axis=1), rtol=1e-14)
    for k in p:
        assert np.allclose(g[k], lg[k].mean(axis=1), rtol=1e-12, atol=1e-15)


def test_smoothed_barrier_delta_is_the_price_delta():
    """barrier_bb's pathwise delta is that of the MC price (the plain knock-out's is not)."""
    import twinc
    from conftest import BUILD
    xlib = twinc.load(os.path.join(BUILD, "samples", "libdemo.so"))
    z = np.random.default_rng(6).standard_normal((4096, 52))
    a = dict(K=100.0, B=125.0, r=0.03, sigma=0.2, T=1.0, nsteps=52, z=z)
    k = xlib.barrier_up_out_call_bb
    _, g = k.value_and_grad(S0=np.full((1, 1), 100.0), seed=1.0 / 4096, **a)
    fd = (k(S0=100.1, **a).mean() - k(S0=99.9, **a).mean()) / 0.2
    assert abs(g["S0"][0, 0] - fd) < 1e-3
    # the discretely monitored knock-out: pathwise delta far from the price's
    import twinc as _t
    lib = _t.load(os.path.join(BUILD, "samples", "libsamples.so"))
    k = lib.barrier_up_out_call
    _, g = k.value_and_grad(S0=np.full((1, 1), 100.0), seed=1.0 / 4096, **a)
    fd = (k(S0=101.0, **a).mean() - k(S0=99.0, **a).mean()) / 2.0
    assert g["S0"][0, 0] - fd > 0.1


def test_heston_extended_matches_the_kernel(lib):
    rng = np.random.default_rng(5)
    z1, z2 = rng.standard_normal((16, 20)), rng.standard_normal((16, 20))
    args = dict(S0=100.0, v0=0.04, kappa=1.5, theta=0.04, xi=0.5, rho=-0.7, r=0.03, K=100.0, T=1.0,
                nsteps=20, z1=z1, z2=z2)
    v = lib.heston_call(**args)
    ld = risk_report.heston_extended(**args)
    assert np.allclose(v, np.asarray(ld, float), rtol=1e-12, atol=1e-12)


def test_report_end_to_end_small(tmp_path):
    from conftest import BUILD
    rc = risk_report.main(["--lib", os.path.join(BUILD, "samples", "libsamples.so"),
                           "--extra-lib", os.path.join(BUILD, "samples", "libdemo.so"), "--paths", "64", "--spots", "9", "--grid", "5x3", "--tree-steps", "20",
                           "--no-timing", "--out", str(tmp_path)])
    assert rc == 0
    text = (tmp_path / "report.txt").read_text()
    assert "every Greek agrees with finite differences" in text
    assert "backtest time" in text
    for png in ("delta_gamma.png", "book.png", "garch_volatility.png"):
        assert os.path.getsize(tmp_path / png) > 10000


def test_timing_skips_pytorch_when_it_cannot_be_imported(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)       # `import torch` raises ImportError
    x = np.ones(4)
    times, note = risk_report.torch_timings(x, x, x, x, x, x, (x, x, x, x, x, np.zeros((2, 3))))
    assert times is None and "column skipped" in note
