#!/usr/bin/env python3
"""risk_report.py — `make demo`'s risk report, from Python.

The kernels are the sample library's plain C functions with `#pragma aad`
(samples/{bs,paths,tree,garch}.c), built through twinc into
build/samples/libsamples.so and loaded with `twinc.load`.  Each call below is
one call of a batched twin over many lanes; `value_and_grad` runs the adjoint
twin: the value and every sensitivity in one sweep.

  1. GARCH(1,1) on ten years of daily returns (samples/market_data.py, seeded):
     maximum likelihood on the first nine years with adjoint gradients
     (SciPy L-BFGS-B), then a one-year walk-forward backtest: every day of the
     last year the model is refitted on the trailing nine years and forecasts
     the next day's variance — 252 fits, run as 252 lanes of one batched
     adjoint call per quasi-Newton iteration (samples/garch_fit.py).  Timed.
  2. An option book marked with the fitted volatility: European calls and
     puts (Black–Scholes), an American put (binomial tree), an Asian call, an
     up-and-out barrier call and a Heston call (Monte Carlo, common random
     numbers).  Every Greek of every position on thousands of scenarios.
     The European positions once more as NumPy code around the kernels,
     recorded into a twinc graph (twinc.function) and replayed natively for
     value and gradient; it must equal the direct calls.
  3. Every Greek is compared with central finite differences of the same
     kernel (stated tolerance below); a mismatch makes the exit status 1.
     Gamma is not generated (twinc writes first-order twins): it is the
     central difference of the adjoint delta, and those deltas are checked.
  4. Timings: adjoint vs bump-and-revalue (the same kernels, central
     differences), vs NumPy, and vs PyTorch autograd when `import torch` works.

Writes report.txt and PNG pictures into --out (default demo-output/).
RISK_REPORT_DEBUG=1 prints every lane that fails the FD check, with its inputs.
MIT licence — see LICENSE.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

import garch_fit
import market_data

# ---- the finite-difference check ----------------------------------------
# For every input x and every lane (a scenario; for Monte Carlo, one path of
# one scenario — the estimator's Greek is the mean of its paths'): central
# difference of the same kernel with step h = H_REL * max(|x|, 1), compared
# with the adjoint by
#     rho = |ad - fd| / max(1, |ad| + |fd|) <= FD_TOL
# (the metric of `twinc check`).  Where that fails, for those lanes only:
#   'step'   the step was too coarse for the curvature or too fine for the
#            size: the central difference at h/10, h/100 or 10h agrees;
#   'kink'   the +-h interval straddles a kink or jump of the payoff
#            (max(., 0), the exercise decision, the knock-out): the one-sided
#            differences disagree and the adjoint (the derivative of the
#            branch the code took) matches one of them;
#   'ill'    double-precision differences do not settle: the central
#            differences at 10h, h, h/10 and h/100 spread wider than FD_TOL
#            (a Heston path whose variance comes close to 0, where sqrt(v)
#            makes the path's value ill-conditioned: rounding noise of
#            ~1e-14 in the value swamps any step).  There the product's
#            `extended` function — the kernel's recursion written once more
#            in NumPy's 80-bit long double — gives central differences at
#            steps 1e-9 and 1e-10 max(|x|, 1), and the adjoint must match one
#            within FD_TOL.  Allowed on at most ILL_MAX of the lanes.
# Anything else is a mismatch, and the exit status is 1.
FD_TOL = 1e-6
H_REL = {"smooth": 1e-6, "path": 1e-7}
ILL_MAX = 1e-3
STEP_SCALES = (0.1, 0.01, 10.0)
GAMMA_STEP = 0.02


def rel_err(a, b):
    return np.abs(a - b) / np.maximum(1.0, np.abs(a) + np.abs(b))


class FdTally:
    def __init__(self):
        self.rows = []          # (label, input, checked, step, kink, ill, failed, worst)
        self.failed = 0

    def add(self, label, name, checked, failed, worst, refined=0, kinks=0, ill=0):
        self.rows.append((label, name, checked, refined, kinks, ill, failed, worst))
        self.failed += failed


def fd_check(tally, label, f, args, grads, names, h_rel, f0=None, sub=None, extended=None):
    """Checks grads[name] against central FD of f (flat lane values) at args.

    args: the kernel's keyword arguments, those in `names` arrays of the lane
    shape; grads: the adjoint's gradient per lane.  sub(args, idx) restricts
    args to the flat lanes idx (the second look at failing lanes computes
    only those); extended(**args) evaluates the same function in long double
    (where double-precision differences cannot settle)."""
    f0 = np.asarray(f(args) if f0 is None else f0).ravel()
    for name in names:
        x = np.asarray(args[name], float)
        ad = np.asarray(grads[name], float).ravel()
        h = h_rel * np.maximum(np.abs(x), 1.0)
        up = np.asarray(f(dict(args, **{name: x + h}))).ravel()
        dn = np.asarray(f(dict(args, **{name: x - h}))).ravel()
        h = h.ravel()
        c = (up - dn) / (2 * h)
        err = rel_err(ad, c)
        idx = np.flatnonzero(err > FD_TOL)
        refined = kinks = ill = failed = 0
        worst = float(err.max(initial=0.0)) if not idx.size else float(np.delete(err, idx).max(initial=0.0))
        if idx.size:
            a_sub = sub(args, idx) if sub else {k: (v.ravel()[idx] if k in names else v) for k, v in args.items()}
            xs, hs, adi = x.ravel()[idx], h[idx], ad[idx]
            cs = [c[idx]]
            e_best = err[idx]
            for scale in STEP_SCALES:
                hh = scale * hs
                c2 = (np.asarray(f(dict(a_sub, **{name: xs + hh}))).ravel()
                      - np.asarray(f(dict(a_sub, **{name: xs - hh}))).ravel()) / (2 * hh)
                cs.append(c2)
                e_best = np.minimum(e_best, rel_err(adi, c2))
            ok_step = e_best <= FD_TOL
            fwd, bwd = (up[idx] - f0[idx]) / hs, (f0[idx] - dn[idx]) / hs
            one_sided = np.minimum(rel_err(adi, fwd), rel_err(adi, bwd))
            ok_kink = ~ok_step & (one_sided <= FD_TOL) & (rel_err(fwd, bwd) > 10 * FD_TOL)
            cs = np.array(cs)
            scale_ = np.maximum(1.0, np.abs(adi) + np.abs(cs[0]))
            unsettled = ~ok_step & ~ok_kink & ((cs.max(axis=0) - cs.min(axis=0)) / scale_ > FD_TOL)
            ok_ill = np.zeros_like(ok_step)
            if unsettled.any() and extended is not None:
                j = np.flatnonzero(unsettled)
                a_ill = sub(a_sub, j) if sub else {k: (v[j] if k in names else v) for k, v in a_sub.items()}
                x_ill = a_ill[name]
                e_ld = np.full(j.size, np.inf)
                for h_ld in (1e-9, 1e-10):
                    hh = h_ld * np.maximum(np.abs(x_ill), 1.0)
                    up_ld = extended(**dict(a_ill, **{name: np.longdouble(x_ill) + hh}))
                    dn_ld = extended(**dict(a_ill, **{name: np.longdouble(x_ill) - hh}))
                    c_ld = np.asarray((up_ld - dn_ld) / (2 * np.longdouble(hh)), dtype=float)
                    e_ld = np.minimum(e_ld, rel_err(adi[j], c_ld))
                ok_ill[j] = e_ld <= FD_TOL
                e_best[j] = np.where(ok_ill[j], e_ld, e_best[j])
            refined, kinks, ill = int(ok_step.sum()), int(ok_kink.sum()), int(ok_ill.sum())
            bad = ~(ok_step | ok_kink | ok_ill)
            failed = int(bad.sum())
            if failed and os.environ.get("RISK_REPORT_DEBUG"):
                for j in np.flatnonzero(bad)[:8]:
                    sys.stderr.write(f"{label} d/d{name} lane {idx[j]}: adjoint {adi[j]!r}, central at "
                                     f"h, {STEP_SCALES}: {cs[:, j].tolist()}, one-sided {fwd[j]!r} {bwd[j]!r}; "
                                     f"at {[(k, float(np.ravel(v)[idx[j]])) for k, v in args.items() if k in names]}\n")
            if ill > ILL_MAX * err.size:
                failed += ill
            shown = np.where(ok_kink, one_sided, e_best)
            worst = max(worst, float(shown.max()))
        tally.add(label, name, err.size, failed, worst, refined, kinks, ill)


# ---- products --------------------------------------------------------------

class Product:
    """One kernel with its scenario inputs.  `params` holds the active inputs,
    one value per scenario; `fixed` the passive ones (step counts, normals).
    With `paths`, every scenario is a Monte Carlo estimate over the rows of
    the normals: lanes (scenario, path), seed 1/paths, so the adjoint's
    accumulators (summed over the path axis) are the estimate's Greeks."""

    def __init__(self, label, kernel, active, fixed, paths=None, kind="smooth", extended=None):
        self.label, self.kernel, self.active = label, kernel, active
        self.fixed, self.paths, self.kind, self.extended = fixed, paths, kind, extended

    def _args(self, p):
        a = dict(self.fixed)
        for k in self.active:
            x = np.asarray(p[k], float)
            a[k] = x[:, None] if self.paths else x
        return a

    def lane_args(self, p):
        """The kernel's arguments with one full array per active input, of the
        lane shape (scenario, path): per-lane gradients, for the FD check."""
        a = dict(self.fixed)
        for k in self.active:
            x = np.asarray(p[k], float)
            a[k] = np.repeat(x[:, None], self.paths, axis=1) if self.paths else x
        return a

    def check(self, tally, p, grads=None, names=None, f0=None):
        """Every Greek of every lane against finite differences."""
        a = self.lane_args(p)
        if grads is None or self.paths:
            f0, grads = self.kernel.value_and_grad(**a)
        fd_check(tally, self.label, lambda kw: self.kernel(**kw), a, grads,
                 names or self.active, H_REL[self.kind], f0, self._sub, self.extended)

    def _sub(self, a, idx):
        """The lanes idx (flat) of lane_args: per-lane inputs picked, the
        normals' rows of their paths."""
        b = {}
        for k, v in a.items():
            if k in self.active:
                b[k] = np.asarray(v).ravel()[idx]
            elif self.paths and isinstance(v, np.ndarray) and v.ndim == 2:
                b[k] = v[idx % self.paths]
            else:
                b[k] = v
        return b

    def price(self, p):
        v = self.kernel(**self._args(p))
        return v.mean(axis=1) if self.paths else v

    def adjoint(self, p):
        if self.paths:
            v, g = self.kernel.value_and_grad(**self._args(p), seed=1.0 / self.paths)
            return v.mean(axis=1), {k: g[k][:, 0] for k in self.active}
        return self.kernel.value_and_grad(**self._args(p))


# ---- progress --------------------------------------------------------------

class Progress:
    """One line per step; on a terminal, redrawn in place with the elapsed time."""

    def __init__(self, total):
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.tty = sys.stderr.isatty()

    def step(self, what):
        self.done += 1
        line = f"[{self.done:2d}/{self.total}] {time.perf_counter() - self.t0:6.1f} s  {what}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self):
        if self.tty:
            sys.stderr.write("\n")


def best_time(fn, reps=3):
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def heston_extended(S0, v0, kappa, theta, xi, rho, r, K, T, nsteps, z1, z2):
    """samples/paths.c heston_call, one path per row of z1/z2, in long double:
    the reference for the lanes where double-precision differences cannot
    settle.  Same recursion, same operation order."""
    L = np.longdouble
    S0, v0, kappa, theta, xi, rho, r, K, T = (np.asarray(a, dtype=L) for a in (S0, v0, kappa, theta, xi, rho, r, K, T))
    dt = T / nsteps
    sdt = np.sqrt(dt)
    rho_c = np.sqrt(L(1) - rho * rho)
    x = np.log(S0)
    v = v0 + L(0) * S0
    for i in range(nsteps):
        vp = np.maximum(v, L(0))
        sv = np.sqrt(vp)
        w1 = np.asarray(z1[..., i], dtype=L)
        w2 = rho * w1 + rho_c * np.asarray(z2[..., i], dtype=L)
        x = x + (r - L(0.5) * vp) * dt + sv * sdt * w1
        v = v + kappa * (theta - vp) * dt + xi * sv * sdt * w2
    return np.exp(-r * T) * np.maximum(np.exp(x) - K, L(0))


# ---- NumPy and PyTorch references for the timing table -----------------------

def numpy_bs_call(S, K, r, q, sigma, T):
    from scipy.special import ndtr
    sd = sigma * np.sqrt(T)
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / sd
    return S * np.exp(-q * T) * ndtr(d1) - K * np.exp(-r * T) * ndtr(d1 - sd)


def numpy_asian(S0, K, r, sigma, T, z):
    n = z.shape[-1]
    dt = T / n
    inc = (r - 0.5 * sigma * sigma)[:, None, None] * dt[:, None, None] \
        + (sigma * np.sqrt(dt))[:, None, None] * z[None, :, :]
    avg = (S0[:, None] * np.exp(np.cumsum(inc, axis=2)).mean(axis=2))
    return (np.exp(-r * T)[:, None] * np.maximum(avg - K[:, None], 0.0)).mean(axis=1)


def numpy_tree(S, K, r, sigma, T, N):
    dt = T / N
    sdt = sigma * np.sqrt(dt)
    u = np.exp(sdt)
    d = 1.0 / u
    p = (np.exp(r * dt) - d) / (u - d)
    disc = np.exp(-r * dt)
    j = np.arange(N + 1)
    v = np.maximum(K[:, None] - S[:, None] * np.exp((2 * j[None, :] - N) * sdt[:, None]), 0.0)
    for i in range(N - 1, -1, -1):
        jj = j[: i + 1]
        pay = K[:, None] - S[:, None] * np.exp((2 * jj[None, :] - i) * sdt[:, None])
        v = np.maximum(pay, (disc * p)[:, None] * v[:, 1: i + 2] + (disc * (1 - p))[:, None] * v[:, : i + 1])
    return v[:, 0]


def torch_timings(S, K, r, q, sigma, T, asian_in):
    """Value + all Greeks by PyTorch autograd, or None when torch is absent."""
    try:
        import torch
    except Exception as e:  # noqa: BLE001 — any import failure means: no column
        return None, f"PyTorch not available ({type(e).__name__}: {e}); column skipped"
    torch.set_num_threads(2)

    def bs():
        xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (S, K, r, q, sigma, T)]
        s, k, rr, qq, sg, t = xs
        sd = sg * torch.sqrt(t)
        d1 = (torch.log(s / k) + (rr - qq + 0.5 * sg * sg) * t) / sd
        nc = lambda x: 0.5 * torch.erfc(-x / math.sqrt(2.0))  # noqa: E731
        v = s * torch.exp(-qq * t) * nc(d1) - k * torch.exp(-rr * t) * nc(d1 - sd)
        v.sum().backward()
        return [x.grad for x in xs]

    S0, Ka, ra, sga, Ta, z = asian_in

    def asian():
        xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (S0, Ka, ra, sga, Ta)]
        s0, k, rr, sg, t = xs
        zt = torch.tensor(z)
        n = z.shape[-1]
        dt = t / n
        inc = ((rr - 0.5 * sg * sg) * dt)[:, None, None] + (sg * torch.sqrt(dt))[:, None, None] * zt[None]
        avg = s0[:, None] * torch.exp(torch.cumsum(inc, dim=2)).mean(dim=2)
        v = (torch.exp(-rr * t)[:, None] * torch.clamp(avg - k[:, None], min=0.0)).mean(dim=1)
        v.sum().backward()
        return [x.grad for x in xs]

    return {"bs": best_time(bs), "asian": best_time(asian, 2)}, f"PyTorch {torch.__version__}, 2 threads"


def graph_book(twinc, lib, book, term_vol, r, q, spots, vols, direct, tally):
    """The Black–Scholes positions as one recorded graph; checks it against
    the direct kernel calls (value, delta, vol-shift sensitivity) to 1e-12."""
    legs = {}
    for label, kernel, kind, qty, terms in book:
        if kind == "bs":
            c = legs.setdefault("call" if label.startswith("call") else "put", ([], [], [], []))
            for lst, val in zip(c, (terms["K"], terms["T"], term_vol(terms["T"]), qty)):
                lst.append(val)
    (cK, cT, cs, cq), (pK, pT, ps, pq) = (tuple(np.array(a) for a in legs[k]) for k in ("call", "put"))

    @twinc.function
    def bs_book(S, volm):
        calls = lib.bs_call(S[:, None], cK, r, q, volm[:, None] * cs, cT)
        puts = lib.bs_put(S[:, None], pK, r, q, volm[:, None] * ps, pT)
        return (calls * cq).sum(axis=1) + (puts * pq).sum(axis=1)

    vg = twinc.value_and_grad(bs_book, argnums=(0, 1))
    v, (dS, dvol) = vg(spots, vols)                       # records, compiles, replays
    t = best_time(lambda: vg(spots, vols))
    worst = 0.0
    for name, a, b in (("value", v, direct[0]), ("delta", dS, direct[1]), ("vol", dvol, direct[2])):
        e = rel_err(np.asarray(a), b)
        worst = max(worst, float(e.max()))
        tally.add("European book as a twinc graph vs direct calls", name, e.size, int((e > 1e-12).sum()),
                  float(e.max()))
    return (f"the European positions as NumPy code around the kernels, recorded once into a twinc graph "
            f"(twinc.function):\n   value, delta and vol-shift sensitivity of the book in all {len(spots)} "
            f"scenarios in {t * 1e3:.2f} ms per replay; equal to the direct calls to {worst:.1e}")


# ---- the report --------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default="build/samples/libsamples.so")
    ap.add_argument("--extra-lib", default="build/samples/libdemo.so",
                    help="the report's own kernels (samples/barrier_bb.c)")
    ap.add_argument("--out", default="demo-output")
    ap.add_argument("--paths", type=int, default=2048, help="Monte Carlo paths per scenario")
    ap.add_argument("--spots", type=int, default=61, help="points of the spot ladder")
    ap.add_argument("--grid", default="61x41", help="spot x vol scenarios of the book")
    ap.add_argument("--tree-steps", type=int, default=200)
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args(argv)

    import twinc
    lib = twinc.load(args.lib)
    xlib = twinc.load(args.extra_lib)
    os.makedirs(args.out, exist_ok=True)
    out = []

    def say(s=""):
        out.append(s)

    prog = Progress(9)
    tally = FdTally()
    say("twinc risk report — kernels from %s (%s)" % (args.lib, ", ".join(
        f"{k}={v}" for k, v in twinc.config().items())))
    say()

    # ---- 1. GARCH ---------------------------------------------------------
    prog.step("GARCH(1,1): maximum likelihood on 9 years of daily returns")
    data = market_data.generate()
    ret = data["returns"]
    n_all = len(ret)
    n_in = n_all - market_data.DAYS_PER_YEAR
    k_garch = lib.garch_nll
    fit = garch_fit.fit(k_garch, ret[:n_in])
    # the gradient at the fit and at the start, against central FD of the kernel
    for label, (om, al, be) in (("start", garch_fit.to_params(np.array([0.05, 0.05, 0.9]), fit["v"])),
                                ("optimum", (fit["omega"], fit["alpha"], fit["beta"]))):
        p0 = {"omega": np.array([om]), "alpha": np.array([al]), "beta": np.array([be])}
        gp = Product(f"garch_nll at {label}", k_garch, ("omega", "alpha", "beta"),
                     {"n": n_in, "ret": ret[:n_in]})
        v, g = gp.adjoint(p0)
        # the likelihood is ~1e4: the step is relative to each parameter (omega ~1e-6)
        for name in gp.active:
            x = p0[name]
            h = 1e-6 * np.abs(x)
            c = (gp.price(dict(p0, **{name: x + h})) - gp.price(dict(p0, **{name: x - h}))) / (2 * h)
            e = float(rel_err(g[name], c)[0])
            e_scaled = float(abs(g[name][0] - c[0]) * abs(x[0]) / max(1.0, abs(v[0])))
            ok = e <= FD_TOL or e_scaled <= FD_TOL
            tally.add(gp.label, name, 1, 0 if ok else 1, min(e, e_scaled))
    H = garch_fit.hessian(k_garch, fit["x"], ret[:n_in], fit["v"])

    prog.step("GARCH(1,1): one-year walk-forward backtest (252 refits)")
    times = []
    for rep in range(5):
        t = time.perf_counter()
        fc_var, fc_x, iters = garch_fit.walk_forward(k_garch, ret, n_in, n_all, n_in, fit["x"], H)
        times.append(time.perf_counter() - t)
    bt_first, bt_median = times[0], float(np.median(times))
    # pure Python: one window's likelihood and a fit with FD gradients
    t = time.perf_counter()
    garch_fit.python_nll(fit["omega"], fit["alpha"], fit["beta"], list(ret[:n_in]))
    py_nll = time.perf_counter() - t
    py_fit_est = py_nll * (fit["evals"] * 7) * 252      # same evaluations, FD gradient: 1 + 2*3 each

    # benchmarks: EWMA (RiskMetrics 0.94), 21-day historical, GARCH without refits
    bt = slice(n_in, n_all)
    r2 = ret * ret
    ewma = np.empty(n_all)
    ewma[0] = r2[:21].mean()
    for t_ in range(1, n_all):
        ewma[t_] = 0.94 * ewma[t_ - 1] + 0.06 * r2[t_ - 1]
    hist = np.array([r2[t_ - 21:t_].mean() for t_ in range(n_in, n_all)])
    fixed_h = garch_fit.filter_variance(fit["omega"], fit["alpha"], fit["beta"], ret)
    fit_h = fixed_h[:n_in]

    def qlike(h):
        return float(np.mean(np.log(h) + r2[bt] / h))

    def mse(h):
        return float(np.mean((r2[bt] - h) ** 2))

    true_var = data["sigma"][bt] ** 2
    fcs = {"GARCH walk-forward (daily refit)": fc_var, "GARCH, in-sample fit, no refits": fixed_h[bt],
           "EWMA lambda = 0.94": ewma[bt], "21-day historical": hist}
    say("1. GARCH(1,1) volatility model (samples/garch.c: garch_nll, adjoint gradients)")
    say(f"   data: {n_all} daily returns ({n_all // 252} years), seeded ({data['seed']}); "
        f"GARCH with Student-t({data['params']['df']:.0f}) shocks and two volatility bursts")
    say(f"   fit on days 1..{n_in}: omega = {fit['omega']:.4e}, alpha = {fit['alpha']:.4f}, "
        f"beta = {fit['beta']:.4f} (generated with {data['params']['omega']:.1e}, "
        f"{data['params']['alpha']}, {data['params']['beta']})")
    say(f"   L-BFGS-B: {fit['iterations']} iterations, {fit['evals']} adjoint calls (value + 3 partials), "
        f"{fit['seconds'] * 1e3:.1f} ms; {fit['message']}")
    say(f"   long-run volatility {math.sqrt(fit['omega'] / (1 - fit['alpha'] - fit['beta']) * 252):.1%} "
        f"a year, persistence alpha + beta = {fit['alpha'] + fit['beta']:.4f}")
    say(f"   backtest, days {n_in + 1}..{n_all}: each day refitted on the trailing {n_in} days "
        f"(252 lanes, {iters} BFGS iterations in lockstep, {iters} batched adjoint calls)")
    say(f"   backtest time: {bt_first * 1e3:.1f} ms the first run, {bt_median * 1e3:.1f} ms median of 5 "
        f"(< 100 ms: {'yes' if bt_first < 0.1 else 'NO'})")
    say(f"   the same 252 fits in interpreted Python with FD gradients: ~{py_fit_est:.0f} s "
        f"(one likelihood {py_nll * 1e3:.2f} ms x {fit['evals']} evaluations x 7 for FD x 252; estimate)")
    # the lockstep refits against separate L-BFGS-B fits of two windows
    sep_err = 0.0
    for day in (len(fc_x) // 2, len(fc_x) - 1):
        lo = day          # window of day n_in + day: ret[day : day + n_in]
        alone = garch_fit.fit(k_garch, ret[lo:lo + n_in])
        sep_err = max(sep_err, float(np.max(np.abs(alone["x"] - fc_x[day]))))
    say(f"   check: the lockstep refits of days {n_in + len(fc_x) // 2 + 1} and {n_all} against separate "
        f"L-BFGS-B fits: max |difference| {sep_err:.1e} (scaled parameters)")
    last = garch_fit.to_params(fc_x[-1], np.mean(ret[n_all - 1 - n_in:n_all - 1] ** 2))
    say(f"   last refit: omega = {last[0]:.4e}, alpha = {last[1]:.4f}, beta = {last[2]:.4f}")
    say("   one-day-ahead variance forecasts over the backtest year (lower is better):")
    say(f"     {'forecast':34s} {'QLIKE':>9s} {'MSE vs r^2':>11s} {'RMSE vs true vol':>17s}")
    for name, h in fcs.items():
        rm = math.sqrt(np.mean((np.sqrt(h) - np.sqrt(true_var)) ** 2)) * math.sqrt(252)
        say(f"     {name:34s} {qlike(h):9.4f} {mse(h):11.3e} {rm:16.2%}")
    say()

    # the book is marked with the GARCH forecast of the next year
    om, al, be = last
    h_next = om + al * ret[-1] ** 2 + be * float(fc_var[-1])
    longrun = om / (1 - al - be)
    per = al + be

    def term_vol(T):
        """GARCH forecast of the average variance over T years, annualised."""
        m = max(1, int(round(T * 252)))
        k = np.arange(m)
        return math.sqrt(np.mean(longrun + per ** k * (h_next - longrun)) * 252)

    # ---- 2. the option book ---------------------------------------------
    S0 = float(data["closes"][-1])
    r, q = 0.03, 0.0
    nsp = args.spots
    ladder = S0 * np.linspace(0.7, 1.3, nsp)
    gs, gv = (int(x) for x in args.grid.split("x"))
    spot_shock = np.linspace(0.8, 1.2, gs)
    vol_shock = np.linspace(0.6, 1.8, gv)
    rng = np.random.Generator(np.random.PCG64(7))
    P = args.paths
    z52 = rng.standard_normal((P, 52))
    z1 = rng.standard_normal((P, 50))
    z2 = rng.standard_normal((P, 50))
    NT = args.tree_steps
    v0 = h_next * 252
    heston_fixed = {"kappa": -math.log(per) * 252, "theta": longrun * 252, "xi": 0.5, "rho": -0.7}

    # position: (label, kernel, kind, quantity, contract terms)
    book = [
        ("call K=100 6m", lib.bs_call, "bs", 10.0, {"K": 100.0, "T": 0.5}),
        ("call K=110 1y", lib.bs_call, "bs", -15.0, {"K": 110.0, "T": 1.0}),
        ("put K=90 1y", lib.bs_put, "bs", 20.0, {"K": 90.0, "T": 1.0}),
        ("put K=95 3m", lib.bs_put, "bs", -5.0, {"K": 95.0, "T": 0.25}),
        ("American put K=100 1y", lib.american_put_crr, "tree", 10.0, {"K": 100.0, "T": 1.0}),
        ("Asian call K=100 1y", lib.asian_call, "asian", 10.0, {"K": 100.0, "T": 1.0}),
        ("up-and-out call K=100 B=125 1y", lib.barrier_up_out_call, "barrier", -10.0,
         {"K": 100.0, "B": 125.0, "T": 1.0}),
        ("up-and-out call B=125 cont. (BB)", xlib.barrier_up_out_call_bb, "barrier", 0.0,
         {"K": 100.0, "B": 125.0, "T": 1.0}),
        ("Heston call K=105 1y", lib.heston_call, "heston", 5.0, {"K": 105.0, "T": 1.0}),
    ]

    def make(kernel, kind, terms, spots, vols):
        """(Product, params) for scenarios (spot, vol multiplier)."""
        ns = len(spots)
        full = lambda x: np.full(ns, float(x))  # noqa: E731
        T = terms["T"]
        sig = term_vol(T) * vols
        if kind == "bs":
            return (Product(kernel.name if hasattr(kernel, "name") else "bs", kernel,
                            ("S", "K", "r", "q", "sigma", "T"), {}),
                    {"S": spots, "K": full(terms["K"]), "r": full(r), "q": full(q), "sigma": sig, "T": full(T)})
        if kind == "tree":
            return (Product("american_put_crr", kernel, ("S", "K", "r", "sigma", "T"), {"N": NT}, kind="path"),
                    {"S": spots, "K": full(terms["K"]), "r": full(r), "sigma": sig, "T": full(T)})
        if kind == "asian":
            return (Product("asian_call", kernel, ("S0", "K", "r", "sigma", "T"), {"nsteps": 52, "z": z52},
                            paths=P, kind="path"),
                    {"S0": spots, "K": full(terms["K"]), "r": full(r), "sigma": sig, "T": full(T)})
        if kind == "barrier":
            return (Product("barrier_up_out_call", kernel, ("S0", "K", "B", "r", "sigma", "T"),
                            {"nsteps": 52, "z": z52}, paths=P, kind="path"),
                    {"S0": spots, "K": full(terms["K"]), "B": full(terms["B"]), "r": full(r), "sigma": sig,
                     "T": full(T)})
        if kind == "heston":
            vm = vols ** 2
            return (Product("heston_call", kernel, ("S0", "v0", "kappa", "theta", "xi", "rho", "r", "K", "T"),
                            {"nsteps": 50, "z1": z1, "z2": z2}, paths=P, kind="path", extended=heston_extended),
                    {"S0": spots, "v0": v0 * vm, "kappa": full(heston_fixed["kappa"]),
                     "theta": heston_fixed["theta"] * vm, "xi": full(heston_fixed["xi"]),
                     "rho": full(heston_fixed["rho"]), "r": full(r), "K": full(terms["K"]), "T": full(T)})
        raise ValueError(kind)

    # 2a. European and American positions on the spot x vol grid
    prog.step(f"book: European and American positions on {gs * gv} scenarios, every Greek + FD check")
    SS, VV = np.meshgrid(S0 * spot_shock, vol_shock, indexing="ij")
    grid_spots, grid_vols = SS.ravel(), VV.ravel()
    grid_value = np.zeros(gs * gv)
    grid_delta = np.zeros(gs * gv)
    bs_direct = [np.zeros(gs * gv) for _ in range(3)]     # value, delta, d/d(vol multiplier)
    n_greeks = 0
    t_grid = time.perf_counter()
    for label, kernel, kind, qty, terms in book:
        if kind not in ("bs", "tree"):
            continue
        prod, p = make(kernel, kind, terms, grid_spots, grid_vols)
        prod.label = label + " (grid)"
        v, g = prod.adjoint(p)
        grid_value += qty * v
        grid_delta += qty * g[prod.active[0]]
        if kind == "bs":
            bs_direct[0] += qty * v
            bs_direct[1] += qty * g["S"]
            bs_direct[2] += qty * g["sigma"] * term_vol(terms["T"])     # d/d(vol multiplier)
        n_greeks += len(prod.active) * v.size
        prod.check(tally, p, g)
    t_grid = time.perf_counter() - t_grid

    # 2a'. the European positions once more, as NumPy code around the kernels
    # recorded into one twinc graph (twinc.function): value, delta and the
    # sensitivity to a relative vol shift of the whole book per scenario, in
    # one native replay; must equal the sums of the direct calls above.
    graph_note = graph_book(twinc, lib, book, term_vol, r, q, grid_spots, grid_vols, bs_direct, tally)

    # 2b. every position on the spot ladder: Greeks, delta and gamma
    ladder_res = {}
    base_rows = []
    grid_base = 0.0          # the grid's positions at the base scenario
    barrier_fd = {}
    mc_time = 0.0
    for label, kernel, kind, qty, terms in book:
        if kind in ("asian", "barrier", "heston") and label.startswith("Asian"):
            prog.step(f"Monte Carlo: Asian, barrier, Heston on {nsp} spots x {P} paths, every Greek + FD check")
        elif kind == "bs" and label.startswith("call K=100"):
            prog.step(f"ladder: European and American positions on {nsp} spots, delta and gamma")
        t = time.perf_counter()
        prod, p = make(kernel, kind, terms, ladder, np.ones(nsp))
        prod.label = label
        v, g = prod.adjoint(p)
        n_greeks += len(prod.active) * v.size
        prod.check(tally, p, g)
        # gamma: central difference of the adjoint delta, step 1e-4 of spot for
        # Black–Scholes, GAMMA_STEP (2%) for the tree and the Monte Carlo: their
        # deltas are piecewise (exercise decisions switch at the tree's nodes,
        # ~1% apart; each path's payoff kink), so a smaller step shows noise
        sname = prod.active[0]
        eps = (1e-4 if kind == "bs" else GAMMA_STEP) * ladder
        pu, pd = dict(p, **{sname: ladder + eps}), dict(p, **{sname: ladder - eps})
        vu, gu = prod.adjoint(pu)
        vd, gd = prod.adjoint(pd)
        gamma = (gu[sname] - gd[sname]) / (2 * eps)
        # the deltas gamma is made of, checked against FD of prices
        prod.label = label + " (delta at S+h)"
        prod.check(tally, pu, gu, names=(sname,), f0=vu)
        prod.label = label + " (delta at S-h)"
        prod.check(tally, pd, gd, names=(sname,), f0=vd)
        prod.label = label
        if kind == "bs":
            # and, for Black–Scholes, against the closed-form gamma
            sd = p["sigma"] * np.sqrt(p["T"])
            d1 = (np.log(ladder / p["K"]) + (r - q + 0.5 * p["sigma"] ** 2) * p["T"]) / sd
            cf = np.exp(-q * p["T"]) * np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) / (ladder * sd)
            e = rel_err(gamma, cf)
            tally.add(label + " (gamma vs closed form)", "gamma", e.size, int((e > 1e-6).sum()),
                      float(e.max()))
        if kind == "barrier":
            # what pathwise derivatives of a knock-out indicator cannot see
            # (the price's jumps as paths cross B), and the smoothed estimator that can
            m = nsp // 2
            pm = {k_: np.asarray(p[k_])[m:m + 1] for k_ in prod.active}
            hb = (0.001 if "cont." in label else 0.01) * ladder[m]
            barrier_fd[label] = float((prod.price(dict(pm, S0=pm["S0"] + hb))[0]
                                - prod.price(dict(pm, S0=pm["S0"] - hb))[0]) / (2 * hb))
        if kind in ("asian", "barrier", "heston"):
            mc_time += time.perf_counter() - t
        ladder_res[label] = {"value": v, "delta": g[sname], "gamma": gamma, "qty": qty}
        mid = nsp // 2
        base_rows.append((label, qty, float(v[mid]), {k: float(g[k][mid]) for k in prod.active},
                          float(gamma[mid]), prod))
        if kind in ("bs", "tree"):
            grid_base += qty * float(v[mid])

    say(f"2. Option book on spot {S0:.2f} (the last close), r = {r:.0%}, marked with the GARCH forecast:")
    say(f"   volatility {term_vol(0.25):.1%} (3m), {term_vol(0.5):.1%} (6m), {term_vol(1.0):.1%} (1y); Heston "
        f"v0 = {v0:.4f}, theta = {heston_fixed['theta']:.4f}, kappa = {heston_fixed['kappa']:.2f}, "
        f"xi = 0.5, rho = -0.7")
    say(f"   Monte Carlo: {P} paths per scenario, the same normals in every scenario (common random numbers);")
    say("   the Greeks are pathwise: derivatives of each path's payoff with the normals fixed.  The")
    say("   discretely monitored barrier's are those of the surviving paths only: dV/dB is 0 and delta")
    b1 = next(r_ for r_ in base_rows if r_[0].startswith("up-and-out call K=100"))
    b2 = next(r_ for r_ in base_rows if r_[0].startswith("up-and-out call B=125 cont"))
    say(f"   {b1[3]['S0']:.4f} misses the knock-out term (a 1% S central difference of the same MC price: "
        f"{barrier_fd[b1[0]]:.4f}).")
    say("   samples/barrier_bb.c weights each path by its Brownian-bridge survival probability instead")
    say(f"   (continuous monitoring; quantity 0 in the book): its delta {b2[3]['S0']:.4f} is the MC price's "
        f"(0.1% S central difference: {barrier_fd[b2[0]]:.4f}), dV/dB {b2[3]['B']:+.4f}.")
    say("   Greeks per unit at the base scenario (gamma: twinc generates first-order twins; here it is the")
    say(f"   central difference of the adjoint delta, step 1e-4 S for Black–Scholes, {GAMMA_STEP:g} S for the")
    say("   tree and Monte Carlo; those deltas at S +- h are FD-checked like the others):")
    say(f"   {'position':32s} {'qty':>5s} {'value':>9s} {'delta':>8s} {'gamma':>8s}  other sensitivities")
    for label, qty, v, g, gm, prod in base_rows:
        sname = prod.active[0]
        other = "  ".join(f"d/d{k} {g[k]:+.4g}" for k in prod.active[1:])
        say(f"   {label:32s} {qty:5.0f} {v:9.4f} {g[sname]:8.4f} {gm:8.5f}  {other}")
    book_v = sum(qty * v for _, qty, v, *_ in base_rows)
    book_d = sum(qty * g[prod.active[0]] for _, qty, v, g, gm, prod in base_rows)
    book_g = sum(qty * gm for _, qty, v, g, gm, prod in base_rows)
    say(f"   {'book':32s} {'':5s} {book_v:9.3f} {book_d:8.3f} {book_g:8.4f}")
    say(f"   scenarios: {gs * gv} (spot {spot_shock[0]:.0%}..{spot_shock[-1]:.0%} x vol "
        f"{vol_shock[0]:.0%}..{vol_shock[-1]:.0%}) for the European and American positions, "
        f"{nsp} spots ({ladder[0]:.0f}..{ladder[-1]:.0f}) for all eight;")
    say("   " + graph_note)
    pnl_all = grid_value - grid_base
    w_, b_ = int(np.argmin(pnl_all)), int(np.argmax(pnl_all))
    say(f"   European + American positions over the grid: P&L from {pnl_all[w_]:+.2f} (spot {grid_spots[w_]:.1f}, "
        f"vol x{grid_vols[w_]:.2f}) to {pnl_all[b_]:+.2f} (spot {grid_spots[b_]:.1f}, vol x{grid_vols[b_]:.2f})")
    say(f"   {n_greeks} first-order Greeks in all (grid part: {t_grid:.2f} s, Monte Carlo part: {mc_time:.2f} s, "
        f"both with their FD checks)")
    say()

    # ---- 3. the FD check ------------------------------------------------
    prog.step("finite-difference check summary")
    say("3. Every Greek against central finite differences of the same kernel")
    say(f"   step h = {H_REL['smooth']:g} max(|x|, 1) (Black–Scholes), {H_REL['path']:g} max(|x|, 1) "
        "(tree, Monte Carlo); GARCH h = 1e-6 |x|;")
    say(f"   agreement: |ad - fd| / max(1, |ad| + |fd|) <= {FD_TOL:g} (GARCH: or that error times |x| / |nll|);")
    say("   Monte Carlo: every path of every scenario (the estimator's Greek is the mean over its paths).")
    say("   'step': agreement at h/10, h/100 or 10h (h too coarse for the curvature, or too fine);")
    say("   'kink': +-h straddles a kink or jump of the payoff (the one-sided differences disagree)")
    say("   and the adjoint matches one of them; 'ill': double-precision differences do not settle (at")
    say("   10h, h, h/10, h/100 they spread wider than the tolerance: a Heston path whose variance comes")
    say("   close to 0, where sqrt(v) makes the value ill-conditioned), and central differences of the")
    say("   same recursion in 80-bit long double (step 1e-9 or 1e-10 max(|x|, 1)) match the adjoint;")
    say(f"   allowed on <= {ILL_MAX:g} of the lanes.")
    say(f"   {'kernel (lanes: scenarios, or paths x scenarios)':46s} {'input':>6s} {'checked':>8s} {'step':>5s} "
        f"{'kink':>5s} {'ill':>6s} {'failed':>6s} {'worst':>9s}")
    for prodl, name, checked, refined, kinks, unres, failed, worst in tally.rows:
        say(f"   {prodl:46s} {name:>6s} {checked:8d} {refined:5d} {kinks:5d} {unres:6d} {failed:6d} {worst:9.2e}")
    total = sum(r_[2] for r_ in tally.rows)
    say(f"   {total} comparisons: {sum(r_[3] for r_ in tally.rows)} at another step, {sum(r_[4] for r_ in tally.rows)} "
        f"at kinks, {sum(r_[5] for r_ in tally.rows)} ill-conditioned, {tally.failed} failed: "
        + ("every Greek agrees with finite differences" if tally.failed == 0 else "MISMATCH"))
    say()

    # ---- 4. timings -----------------------------------------------------
    if not args.no_timing:
        prog.step("timing: adjoint vs bump-and-revalue, NumPy, PyTorch")
        say("4. Time for the value and every first-order Greek (best of 3, ms)")
        rows = []
        for label, kernel, kind, qty, terms in book:
            if label not in ("call K=100 6m", "American put K=100 1y", "Asian call K=100 1y",
                             "up-and-out call K=100 B=125 1y", "Heston call K=105 1y"):
                continue
            if kind == "bs":
                spots, vols = np.tile(grid_spots, 40), np.tile(grid_vols, 40)
            else:
                spots, vols = ladder, np.ones(nsp)
            prod, p = make(kernel, kind, terms, spots, vols)
            k = len(prod.active)
            reps = 3 if kind != "heston" else 2
            t_pr = best_time(lambda: prod.price(p), reps)
            t_ad = best_time(lambda: prod.adjoint(p), reps)

            def bump():
                prod.price(p)
                for name in prod.active:
                    x = p[name]
                    prod.price(dict(p, **{name: x * (1 + 1e-6)}))
                    prod.price(dict(p, **{name: x * (1 - 1e-6)}))
            t_bump = best_time(bump, 1 if kind == "heston" else 2)
            npy = None
            if kind == "bs":
                args6 = [p[n] for n in prod.active]
                npy = best_time(lambda: [numpy_bs_call(*args6) for _ in range(2 * k + 1)], 2)
            elif kind == "asian":
                a5 = [p[n] for n in prod.active]
                npy = best_time(lambda: numpy_asian(*a5, z52), 1) * (2 * k + 1)
            elif kind == "tree":
                a5 = [p[n] for n in prod.active]
                npy = best_time(lambda: numpy_tree(*a5, NT), 1) * (2 * k + 1)
            lanes = len(spots) * (P if prod.paths else 1)
            rows.append((label, kind, lanes, k, t_pr, t_ad, t_bump, npy, p, prod))
        # GARCH: the gradient of the 252 backtest windows' likelihoods
        wins = np.lib.stride_tricks.sliding_window_view(ret, n_in)[:252]
        xg = np.repeat(fit["x"][None, :], 252, axis=0)
        vw = np.mean(wins * wins, axis=1)
        pg = dict(zip(("omega", "alpha", "beta"), garch_fit.to_params(xg, vw)))
        gprod = Product("garch_nll", k_garch, ("omega", "alpha", "beta"), {"n": n_in, "ret": wins})
        t_pr = best_time(lambda: gprod.price(pg))
        t_ad = best_time(lambda: gprod.adjoint(pg))

        def gbump():
            gprod.price(pg)
            for name in gprod.active:
                gprod.price(dict(pg, **{name: pg[name] * (1 + 1e-6)}))
                gprod.price(dict(pg, **{name: pg[name] * (1 - 1e-6)}))
        t_b = best_time(gbump, 2)
        npy = py_nll * 252 * 7
        rows.append(("GARCH likelihood, 252 windows", "garch", 252 * n_in, 3, t_pr, t_ad, t_b, npy, None, None))

        bsrow = next(rw for rw in rows if rw[1] == "bs")
        asrow = next(rw for rw in rows if rw[1] == "asian")
        tt, tnote = torch_timings(*[bsrow[8][n] for n in bsrow[9].active],
                                  ([asrow[8][n] for n in asrow[9].active] + [z52]))
        say(f"   {'kernel':32s} {'lanes':>9s} {'Greeks':>6s} {'primal':>8s} {'adjoint':>8s} {'adj/pr':>6s} "
            f"{'bump&reval':>10s} {'speed-up':>8s} {'NumPy bump':>10s} {'PyTorch':>8s}")
        for label, kind, lanes, k, t_pr, t_ad, t_bump, npy, _, _ in rows:
            tcol = "n/a"
            if tt is not None and kind in ("bs", "asian"):
                tcol = f"{tt[kind] * 1e3:8.2f}"
            ncol = "n/a" if npy is None else f"{npy * 1e3:10.1f}" + ("*" if kind in ("asian", "tree", "garch") else "")
            say(f"   {label:32s} {lanes:9d} {k:6d} {t_pr * 1e3:8.2f} {t_ad * 1e3:8.2f} {t_ad / t_pr:6.2f} "
                f"{t_bump * 1e3:10.2f} {t_bump / t_ad:7.1f}x {ncol:>10s} {tcol:>8s}")
        say("   bump&reval: central differences with the same twinc primal (2 x Greeks + 1 calls);")
        say("   speed-up = bump&reval / adjoint.  NumPy bump: the same model written in NumPy, 2k+1 revaluations")
        say("   (* = one revaluation measured, times 2k+1; GARCH: interpreted Python loop, one window x 252 x 7).")
        say(f"   PyTorch autograd (Black–Scholes and Asian rows): {tnote}.")
        say()

    # ---- pictures ---------------------------------------------------------
    pictures = []
    if not args.no_plots:
        prog.step("pictures")
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(2, 1, figsize=(9, 8), sharex=True)
        for label, res in ladder_res.items():
            ax[0].plot(ladder, res["delta"], label=label)
            ax[1].plot(ladder, res["gamma"], label=label)
        ax[0].set_ylabel("delta (adjoint)")
        ax[1].set_ylabel(f"gamma (FD of adjoint delta, step {GAMMA_STEP:g} S; BS 1e-4 S)")
        ax[1].set_xlabel("spot")
        ax[0].legend(fontsize=7, ncol=2)
        ax[0].set_title("Delta and gamma per unit across spot")
        for a in ax:
            a.grid(alpha=0.3)
            a.axvline(S0, color="k", lw=0.5)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "delta_gamma.png"), dpi=110)
        plt.close(fig)
        pictures.append("delta_gamma.png")

        fig, ax = plt.subplots(1, 2, figsize=(11, 4.5))
        bd = sum(res["qty"] * res["delta"] for res in ladder_res.values())
        bg = sum(res["qty"] * res["gamma"] for res in ladder_res.values())
        ax[0].plot(ladder, bd, label="book delta")
        ax0b = ax[0].twinx()
        ax0b.plot(ladder, bg, color="C1", label="book gamma")
        ax[0].set_xlabel("spot")
        ax[0].set_ylabel("book delta")
        ax0b.set_ylabel("book gamma", color="C1")
        ax[0].set_title("Book delta and gamma across spot")
        ax[0].grid(alpha=0.3)
        pnl = (grid_value - grid_base).reshape(gs, gv).T
        from matplotlib.colors import TwoSlopeNorm
        im = ax[1].imshow(pnl, origin="lower", aspect="auto", cmap="RdYlGn",
                          norm=TwoSlopeNorm(0.0, min(pnl.min(), -1e-9), max(pnl.max(), 1e-9)),
                          extent=[SS[0, 0], SS[-1, 0], vol_shock[0], vol_shock[-1]])
        fig.colorbar(im, ax=ax[1], label="P&L against the base scenario")
        ax[1].set_xlabel("spot")
        ax[1].set_ylabel("volatility multiplier")
        ax[1].set_title(f"European + American positions: P&L, {gs * gv} scenarios")
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "book.png"), dpi=110)
        plt.close(fig)
        pictures.append("book.png")

        ann = math.sqrt(252)
        days = np.arange(n_all)
        fig, ax = plt.subplots(2, 1, figsize=(10, 7.5))
        ax[0].plot(days[:n_in] / 252, data["sigma"][:n_in] * ann, lw=2.5, color="0.75", label="true (simulated)")
        ax[0].plot(days[:n_in] / 252, np.sqrt(fit_h) * ann, lw=0.7, color="C0", label="fitted GARCH(1,1)")
        ax[0].set_ylabel("volatility, annualised")
        ax[0].set_xlabel("years")
        ax[0].set_title("In sample: fitted vs true conditional volatility")
        ax[0].legend()
        d_bt = days[bt] - n_in
        realised = np.array([np.sqrt(r2[max(n_in, t_ - 10):t_ + 11].mean()) for t_ in range(n_in, n_all)]) * ann
        ax[1].plot(d_bt, np.abs(ret[bt]) * ann, ".", ms=2, color="0.7", label="|return| (realised, one day)")
        ax[1].plot(d_bt, realised, color="k", lw=1, label="realised, 21-day centred")
        ax[1].plot(d_bt, data["sigma"][bt] * ann, color="0.5", lw=0.8, ls="--", label="true")
        ax[1].plot(d_bt, np.sqrt(fc_var) * ann, lw=1.2, label="GARCH forecast (walk-forward)")
        ax[1].plot(d_bt, np.sqrt(ewma[bt]) * ann, lw=0.8, label="EWMA 0.94")
        ax[1].set_ylim(0, np.percentile(np.abs(ret[bt]) * ann, 99))
        ax[1].set_xlabel("backtest day")
        ax[1].set_ylabel("volatility, annualised")
        ax[1].set_title("Backtest year: one-day-ahead forecast vs realised")
        ax[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "garch_volatility.png"), dpi=110)
        plt.close(fig)
        pictures.append("garch_volatility.png")

    prog.step("report written")
    prog.finish()
    say("Files: report.txt" + "".join(", " + p_ for p_ in pictures) + f" in {args.out}/")
    text = "\n".join(out) + "\n"
    with open(os.path.join(args.out, "report.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    if tally.failed:
        sys.stderr.write(f"risk_report: {tally.failed} Greeks disagree with finite differences\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
