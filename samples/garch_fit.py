"""garch_fit.py — GARCH(1,1) by maximum likelihood with adjoint gradients,
and a walk-forward volatility backtest, on the `garch_nll` kernel
(samples/garch.c, through the twinc Python binding).

    h_1 = mean(ret^2),  h_{t+1} = omega + alpha ret_t^2 + beta h_t,
    nll = 1/2 sum_t [log(2 pi) + log h_t + ret_t^2 / h_t]

`garch_nll.value_and_grad` runs the adjoint twin: the value and the three
partial derivatives in one sweep over the series.

The optimiser works on x = (omega / v, alpha, beta), v = mean(ret^2), and on
nll / n, so that the three coordinates and the gradient are of order one
(omega itself is ~1e-6).

fit()           one series: SciPy's L-BFGS-B (bounds 0 <= alpha, beta <= 1)
                fed by the adjoint gradient.
walk_forward()  refits the model on every trailing window of a backtest
                period at once: each window is one lane of one batched
                adjoint call (the windows are strided views of the series,
                never copied), and all lanes take quasi-Newton steps in
                lockstep with one shared Hessian (FD of the adjoint gradient
                at the warm start).  Then each lane's variance filter is run
                to the window's end: the one-day-ahead forecast.
"""
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

X_LOWER = np.array([1e-8, 0.0, 0.0])
X_UPPER = np.array([1.0, 1.0, 1.0])


def to_params(x, v):
    """Scaled coordinates -> (omega, alpha, beta)."""
    x = np.asarray(x, dtype=float)
    return x[..., 0] * v, x[..., 1], x[..., 2]


def objective(kernel, x, ret, v=None):
    """nll / n and its gradient in scaled coordinates, lane by lane.

    x: (..., 3); ret: (..., n) — one series per lane (broadcast)."""
    ret = np.asarray(ret, dtype=float)
    n = ret.shape[-1]
    if v is None:
        v = np.mean(ret * ret, axis=-1)
    om, al, be = to_params(x, v)
    val, g = kernel.value_and_grad(om, al, be, n, ret)
    grad = np.stack([np.broadcast_to(g["omega"], np.shape(val)) * v,
                     np.broadcast_to(g["alpha"], np.shape(val)),
                     np.broadcast_to(g["beta"], np.shape(val))], axis=-1)
    return val / n, grad / n


def fit(kernel, ret, x0=(0.05, 0.05, 0.90)):
    """Maximum likelihood on one series; returns a dict with the fit."""
    from scipy.optimize import minimize

    ret = np.ascontiguousarray(ret, dtype=float)
    v = float(np.mean(ret * ret))
    calls = [0]

    def fg(x):
        calls[0] += 1
        f, g = objective(kernel, x, ret, v)
        return float(f), np.asarray(g, dtype=float)

    t0 = time.perf_counter()
    res = minimize(fg, np.asarray(x0, float), jac=True, method="L-BFGS-B",
                   bounds=list(zip(X_LOWER, X_UPPER)),
                   options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500})
    seconds = time.perf_counter() - t0
    om, al, be = to_params(res.x, v)
    return {"x": res.x, "v": v, "omega": float(om), "alpha": float(al), "beta": float(be),
            "nll": float(res.fun) * len(ret), "grad": res.jac, "evals": calls[0],
            "iterations": res.nit, "seconds": seconds, "success": bool(res.success),
            "message": str(res.message)}


def hessian(kernel, x, ret, v, rel=1e-4):
    """Hessian of nll / n in scaled coordinates: central differences of the
    adjoint gradient (6 lanes of one batched call)."""
    x = np.asarray(x, float)
    h = rel * np.maximum(np.abs(x), 1e-2)
    pts = np.repeat(x[None, :], 6, axis=0)
    for i in range(3):
        pts[2 * i, i] += h[i]
        pts[2 * i + 1, i] -= h[i]
    _, g = objective(kernel, pts, ret, v)
    H = np.empty((3, 3))
    for i in range(3):
        H[:, i] = (g[2 * i] - g[2 * i + 1]) / (2 * h[i])
    return 0.5 * (H + H.T)


def variance_at_end(x, windows, v):
    """The filter's variance one step past the end of each window
    (closed form of the linear recursion, all lanes at once):
        h_{n+1} = omega (1 - b^n)/(1 - b) + alpha sum_k b^k e_{n-1-k} + b^n h_1."""
    om, al, be = to_params(x, v)
    n = windows.shape[-1]
    k = np.arange(n)
    logb = np.log(np.maximum(be, 1e-300))[:, None]
    w = np.exp(logb * k[None, ::-1])          # b^(n-1-t) for t = 0 .. n-1
    e2w = np.einsum("ln,ln->l", w, windows * windows)
    bn = np.exp(logb[:, 0] * n)
    return om * (1.0 - bn) / (1.0 - be) + al * e2w + bn * v


def walk_forward(kernel, ret, start, stop, window, x0, H, tol=1e-6, max_iter=30):
    """Refit on ret[t - window : t] for every t in [start, stop) and forecast
    day t's variance.  Every lane starts at x0 with the inverse of H (the
    Hessian at x0) and takes BFGS steps, all lanes in lockstep: one batched
    adjoint call per iteration over the lanes still moving (a lane whose
    step was below tol in every coordinate is done).  Stops when none moves
    (1e-6 in the scaled coordinates leaves the forecasts within ~1e-7 of
    fully converged fits).
    Returns (forecast variance per day, fitted x per day, iterations)."""
    ret = np.ascontiguousarray(ret, dtype=float)
    wins = sliding_window_view(ret, window)[start - window: stop - window]   # (lanes, window) view
    v = np.mean(wins * wins, axis=1)
    lanes = len(wins)
    x = np.repeat(np.asarray(x0, float)[None, :], lanes, axis=0)
    Hi = np.repeat(np.linalg.inv(H)[None, :, :], lanes, axis=0)
    eye = np.eye(3)
    _, g = objective(kernel, x, wins, v)
    act = np.arange(lanes)              # lanes still moving
    it = 0
    for it in range(1, max_iter + 1):
        step = -np.einsum("lij,lj->li", Hi[act], g[act])
        x_new = np.clip(x[act] + step, X_LOWER, X_UPPER)
        s = x_new - x[act]
        x[act] = x_new
        moving = np.max(np.abs(s), axis=1) >= tol
        if not moving.any():
            break
        act, s = act[moving], s[moving]
        w = wins if act.size == lanes else wins[act]
        _, g_new = objective(kernel, x[act], w, v[act])
        y = g_new - g[act]
        g[act] = g_new
        # BFGS update of the inverse Hessian, lane by lane
        ys = np.einsum("li,li->l", y, s)
        ok = ys > 1e-300
        rho = np.where(ok, 1.0 / np.where(ok, ys, 1.0), 0.0)
        A = eye - rho[:, None, None] * np.einsum("li,lj->lij", s, y)
        Hn = np.einsum("lij,ljk,lmk->lim", A, Hi[act], A) + rho[:, None, None] * np.einsum("li,lj->lij", s, s)
        Hi[act] = np.where(ok[:, None, None], Hn, Hi[act])
    return variance_at_end(x, wins, v), x, it


def filter_variance(omega, alpha, beta, ret):
    """The model's conditional variance h_1 .. h_n (h_t uses ret up to t-1)."""
    from scipy.signal import lfilter
    ret = np.asarray(ret, float)
    e2 = ret * ret
    h1 = np.mean(e2)
    # h_{t+1} - beta h_t = omega + alpha e2_t, with h_1 given
    rhs = omega + alpha * e2[:-1]
    h, _ = lfilter([1.0], [1.0, -beta], rhs, zi=[beta * h1])
    return np.concatenate(([h1], h))


def python_nll(omega, alpha, beta, ret):
    """The likelihood in plain interpreted Python: the baseline of the timing."""
    import math
    n = len(ret)
    h = sum(r * r for r in ret) / n
    nll = 0.0
    for r in ret:
        e2 = r * r
        nll += 0.5 * (1.8378770664093454836 + math.log(h) + e2 / h)
        h = omega + alpha * e2 + beta * h
    return nll
