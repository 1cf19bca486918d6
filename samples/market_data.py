"""market_data.py — the demo's market data, generated from fixed seeds.

No network and no data file: ten years of daily log returns of one equity
index are simulated from a GARCH(1,1) process with Student-t innovations
(fat tails, so the Gaussian likelihood the demo fits is a quasi-likelihood,
as with real data), plus one volatility shock in year 8 and a milder one in
the last year, so the backtest year has something to forecast.  The same seed
gives the same numbers on every machine (NumPy's PCG64 generator).

    data = generate()            # dict: returns, closes, sigma (the true
                                 # conditional daily volatility), params
"""
import numpy as np

DAYS_PER_YEAR = 252
SEED = 20240607

# the process that generates the data (daily units)
TRUE_PARAMS = {"omega": 2.0e-6, "alpha": 0.085, "beta": 0.895}
STUDENT_DF = 7.0


def generate(years=10, seed=SEED, s0=100.0):
    """Daily log returns, closes and true volatilities for `years` years."""
    n = years * DAYS_PER_YEAR
    rng = np.random.Generator(np.random.PCG64(seed))
    df = STUDENT_DF
    # unit-variance Student-t innovations
    eps = rng.standard_t(df, size=n) * np.sqrt((df - 2.0) / df)
    om, al, be = TRUE_PARAMS["omega"], TRUE_PARAMS["alpha"], TRUE_PARAMS["beta"]
    # deterministic shocks to the variance (multiplicative, decaying)
    shock = np.ones(n)
    for day, size, half_life in ((int(7.3 * DAYS_PER_YEAR), 3.0, 30.0),
                                 (int(9.45 * DAYS_PER_YEAR), 1.8, 20.0)):
        if day < n:
            k = np.arange(n - day)
            shock[day:] += (size - 1.0) * 0.5 ** (k / half_life)
    h = om / (1.0 - al - be)
    ret = np.empty(n)
    sigma = np.empty(n)
    for t in range(n):
        sigma[t] = np.sqrt(h * shock[t])
        ret[t] = sigma[t] * eps[t]
        h = om + al * (ret[t] / np.sqrt(shock[t])) ** 2 + be * h
    ret -= ret.mean()                      # the model is for demeaned returns
    closes = s0 * np.exp(np.concatenate(([0.0], np.cumsum(ret))))
    return {"returns": ret, "closes": closes, "sigma": sigma,
            "params": dict(TRUE_PARAMS, df=df), "seed": seed}
