"""Benchmark of the Python binding: value + gradient by replaying a recorded
graph, against NumPy computing the value alone and PyTorch autograd computing
value + gradient, on the same models, in one run.

  MC Asian    100k paths x 252 steps, a twinc kernel for the log-step of every
              (path, step) lane, NumPy for the path, the average, the payoff;
              gradient with respect to S0, sigma, r, K, T.
  BS          1M options, the sample kernel bs_call; gradient with respect to
              every per-option input (S, K, sigma, T) and the shared rate.
  small       a 3-input graph of a few operations: the cost of one replay.

  BS (NumPy)  the same Black-Scholes written as NumPy code (what the PyTorch
              version is), recorded and replayed: the graph executor's own
              fused passes instead of the kernel's adjoint twin.

Every timing is the median of several runs after a warm-up (the first call
records and compiles); each model's variants run interleaved, round by round,
so that load from other processes falls on all of them alike.  PyTorch
(Debian's python3-torch) and SciPy are used if installed; PyTorch runs with as
many threads as twinc.

    PYTHONPATH=build/python python3 python_bindings/bench.py [--build build] [--quick]
"""

import argparse
import math
import os
import sys
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # PyTorch's OpenMP threads must not spin
twinc = None


def medians(fns, repeat):
    """Median wall time of each function, run interleaved round by round."""
    for fn in fns:
        fn()
    ts = [[] for _ in fns]
    for _ in range(repeat):
        for fn, t in zip(fns, ts):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [sorted(t)[len(t) // 2] for t in ts]


def fmt(t):
    return f"{t * 1e3:9.2f} ms" if t >= 1e-3 else f"{t * 1e6:9.2f} us"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--quick", action="store_true", help="smaller problems (a smoke test)")
    opt = ap.parse_args()
    # the built package, not the sources next to this script
    sys.path.insert(0, os.path.join(os.path.abspath(opt.build), "python"))
    if sys.path[1] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[1]
    global twinc
    import twinc as _t
    twinc = _t
    mc = twinc.load(os.path.join(opt.build, "python", "libmc_kernels.so"))
    samples = twinc.load(os.path.join(opt.build, "samples", "libsamples.so"))
    try:
        import torch
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(twinc.config()["threads"])
    except ImportError:
        torch = None
    try:
        from scipy.special import ndtr
    except ImportError:
        ndtr = twinc.ncdf    # a vectorised C normal CDF: what SciPy's ndtr would be
    rng = np.random.default_rng(2024)
    paths, steps = (10000, 252) if opt.quick else (100000, 252)
    nopt = 100000 if opt.quick else 1000000
    repeat = 7 if not opt.quick else 3
    rows = []

    # ---- MC Asian ----
    S0, sigma, r, K, T = 100.0, 0.25, 0.03, 100.0, 1.0
    Z = rng.standard_normal((paths, steps))

    def asian(S0, sigma, r, K, T, Z):
        n = Z.shape[1]
        inc = mc.gbm_log_step(r, 0.0, sigma, T / n, Z)
        S = S0 * np.exp(np.cumsum(inc, axis=1))
        return np.mean(np.maximum(S.mean(axis=1) - K, 0.0)) * np.exp(-r * T)

    def asian_numpy(S0, sigma, r, K, T, Z):
        dt = T / Z.shape[1]
        inc = (r - 0.5 * sigma * sigma) * dt + sigma * math.sqrt(dt) * Z
        S = S0 * np.exp(np.cumsum(inc, axis=1))
        return np.mean(np.maximum(S.mean(axis=1) - K, 0.0)) * math.exp(-r * T)

    price = twinc.function(asian)
    vg = twinc.value_and_grad(price, argnums=(0, 1, 2, 3, 4))
    args = (S0, sigma, r, K, T, Z)
    v_np = asian_numpy(*args)
    v_tw, g_tw = vg(*args)
    assert abs(v_tw - v_np) <= 1e-10 * abs(v_np), (v_tw, v_np)
    st = price.stats(*args, argnums=(0, 1, 2, 3, 4))
    fns = [lambda: asian_numpy(*args), lambda: price(*args), lambda: vg(*args)]
    if torch is not None:
        Zt = torch.from_numpy(Z)

        def asian_torch():
            p = [torch.tensor(x, requires_grad=True) for x in (S0, sigma, r, K, T)]
            s0, sg, rr, kk, tt = p
            dt = tt / Zt.shape[1]
            inc = (rr - 0.5 * sg * sg) * dt + sg * torch.sqrt(dt) * Zt
            S = s0 * torch.exp(torch.cumsum(inc, dim=1))
            v = torch.mean(torch.clamp(S.mean(dim=1) - kk, min=0.0)) * torch.exp(-rr * tt)
            v.backward()
            return v.item(), [x.grad.item() for x in p]
        vt, gt = asian_torch()
        assert abs(vt - v_tw) <= 1e-10 * abs(vt)
        assert all(abs(a - b) <= 1e-8 * (1 + abs(a)) for a, b in zip(gt, g_tw)), (gt, g_tw)
        fns.append(asian_torch)
    t_np, t_fw, t_vg, t_torch = (medians(fns, repeat) + [None])[:4]
    rows.append(("MC Asian %dk x %d" % (paths // 1000, steps), t_np, t_fw, t_vg, t_torch))
    print(f"MC Asian, {paths} paths x {steps} steps: price {v_tw:.6f}; dV/dS0 {g_tw[0]:.6f} "
          f"dV/dsigma {g_tw[1]:.6f} dV/dr {g_tw[2]:.6f} dV/dK {g_tw[3]:.6f} dV/dT {g_tw[4]:.6f}")
    print(f"  graph: {st['nodes']} nodes, {st['steps']} passes ({st['fused']} ops fused), "
          f"{st['reverse_steps']} reverse passes, buffers {st['arena_gradient'] / 2**20:.0f} MiB")
    del Z

    # ---- Black-Scholes on many options ----
    S = rng.uniform(80, 120, nopt)
    Kx = rng.uniform(80, 120, nopt)
    vol = rng.uniform(0.1, 0.5, nopt)
    Tx = rng.uniform(0.25, 2.0, nopt)

    def bs(S, K, sigma, T, r):
        return samples.bs_call(S, K, r, 0.01, sigma, T)

    def bs_numpy(S, K, sigma, T, r):
        sd = sigma * np.sqrt(T)
        d1 = (np.log(S / K) + (r - 0.01 + 0.5 * sigma * sigma) * T) / sd
        return S * np.exp(-0.01 * T) * ndtr(d1) - K * np.exp(-r * T) * ndtr(d1 - sd)

    def bs_numpy_traced(S, K, sigma, T, r):
        sd = sigma * np.sqrt(T)
        d1 = (np.log(S / K) + (r - 0.01 + 0.5 * sigma * sigma) * T) / sd
        return S * np.exp(-0.01 * T) * twinc.ncdf(d1) - K * np.exp(-r * T) * twinc.ncdf(d1 - sd)

    bsf = twinc.function(bs)
    bvg = twinc.value_and_grad(bsf, argnums=(0, 1, 2, 3, 4))
    bargs = (S, Kx, vol, Tx, 0.03)
    v_tw, g_tw = bvg(*bargs)
    np.testing.assert_allclose(v_tw, bs_numpy(*bargs), rtol=1e-9, atol=1e-9)
    bsn = twinc.function(bs_numpy_traced)
    bnvg = twinc.value_and_grad(bsn, argnums=(0, 1, 2, 3, 4))
    v_n, g_n = bnvg(*bargs)
    np.testing.assert_allclose(v_n, v_tw, rtol=1e-9, atol=1e-9)
    for a, b in zip(g_n, g_tw):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    fns = [lambda: bs_numpy(*bargs), lambda: bsf(*bargs), lambda: bvg(*bargs),
           lambda: bsn(*bargs), lambda: bnvg(*bargs),
           lambda: samples.bs_call.value_and_grad(S, Kx, 0.03, 0.01, vol, Tx)]
    if torch is not None:
        St, Kt, vt_, Tt = (torch.from_numpy(a) for a in (S, Kx, vol, Tx))

        def bs_torch():
            s, k, sg, tt = (a.clone().requires_grad_() for a in (St, Kt, vt_, Tt))
            r = torch.tensor(0.03, requires_grad=True)
            sd = sg * torch.sqrt(tt)
            d1 = (torch.log(s / k) + (r - 0.01 + 0.5 * sg * sg) * tt) / sd
            v = s * torch.exp(-0.01 * tt) * torch.special.ndtr(d1) - k * torch.exp(-r * tt) * torch.special.ndtr(d1 - sd)
            v.sum().backward()
            return v, s.grad, r.grad
        vt, sg_, rg_ = bs_torch()
        np.testing.assert_allclose(g_tw[0], sg_.numpy(), rtol=1e-8, atol=1e-10)
        assert abs(g_tw[4] - rg_.item()) <= 1e-6 * abs(g_tw[4])
        fns.append(bs_torch)
    t_np, t_fw, t_vg, t_nfw, t_nvg, t_k, t_torch = (medians(fns, repeat) + [None])[:7]
    rows.append(("BS %dk options" % (nopt // 1000), t_np, t_fw, t_vg, t_torch))
    rows.append(("BS %dk (NumPy code)" % (nopt // 1000), t_np, t_nfw, t_nvg, t_torch))
    print(f"BS, {nopt} options: the kernel's value_and_grad called directly: {fmt(t_k)}")

    # ---- a small graph ----
    small = twinc.function(lambda x, y, z: np.sum(np.exp(-x * y) * z + np.sqrt(x)))
    svg = twinc.value_and_grad(small, argnums=(0, 1))
    x3 = np.array([0.1, 0.2, 0.3])
    n = 20000 if opt.quick else 50000
    small(x3, 0.5, x3)
    svg(x3, 0.5, x3)
    t_small = median(timeit_loop(lambda: small(x3, 0.5, x3), n) for _ in range(5))
    t_svg = median(timeit_loop(lambda: svg(x3, 0.5, x3), n) for _ in range(5))
    t_snp = median(timeit_loop(lambda: np.sum(np.exp(-x3 * 0.5) * x3 + np.sqrt(x3)), n) for _ in range(5))

    cfg = twinc.config()
    print(f"\ntwinc: {cfg['threads']} threads, {cfg['vector_math']}; "
          f"PyTorch {torch.__version__ + ', %d threads' % torch.get_num_threads() if torch else 'not installed'}; "
          f"NumPy {np.__version__}; median of {repeat} runs")
    print(f"{'model':22s} {'NumPy value':>12s} {'replay value':>13s} {'replay v+g':>12s} "
          f"{'torch v+g':>12s} {'v+g vs NumPy value':>19s} {'torch / replay v+g':>19s}")
    for name, tnp, tfw, tvg, tt in rows:
        print(f"{name:22s} {fmt(tnp):>12s} {fmt(tfw):>13s} {fmt(tvg):>12s} "
              f"{fmt(tt) if tt else 'n/a':>12s} {tnp / tvg:18.2f}x {(tt / tvg if tt else float('nan')):18.2f}x")
    print(f"{'small graph (3 inputs)':22s} {fmt(t_snp):>12s} {fmt(t_small):>13s} {fmt(t_svg):>12s}"
          f"   per call")
    return 0


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def timeit_loop(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


if __name__ == "__main__":
    sys.exit(main())
