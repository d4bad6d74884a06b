"""dormsig's numba L-BFGS-B against R's ``optim(method = "L-BFGS-B")`` and scipy.

References: tests/data/de/lbfgsb_r_*.csv, made by tests/data/de/lbfgsb_make_r_paths.R (R 4.2, base R)
and tests/data/de/lbfgsb_make_r_genes.R (the CTC genes). Each holds every objective evaluation R's
optim made (iterates and line-search trials, in order) and optim's result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numba import njit
from scipy.optimize import minimize

from dormsig.de._lbfgsb import lbfgsb

DATA = Path(__file__).parent / "data" / "de"


@njit(cache=True)
def _rosen(x, args):
    n = x.size
    f = 0.0
    g = np.zeros(n)
    for i in range(n - 1):
        a = x[i + 1] - x[i] ** 2
        b = 1.0 - x[i]
        f += 100.0 * a * a + b * b
        g[i] += -400.0 * a * x[i] - 2.0 * b
        g[i + 1] += 200.0 * a
    return f, g


@njit(cache=True)
def _quad_value(x, a, b):
    return 0.5 * (x @ (a @ x)) + b @ x


@njit(cache=True)
def _quad_fd(x, args):
    """Quadratic with R optim's numerical gradient: central differences, step 1e-3 shortened at a bound."""
    a, b, lo, hi = args
    n = x.size
    g = np.empty(n)
    pt = x.copy()
    for i in range(n):
        eps = 1e-3
        epsused = eps
        up = x[i] + eps
        if up > hi[i]:
            up = hi[i]
            epsused = up - x[i]
        pt[i] = up
        v1 = _quad_value(pt, a, b)
        dn = x[i] - eps
        if dn < lo[i]:
            dn = lo[i]
            eps = x[i] - dn
        pt[i] = dn
        v2 = _quad_value(pt, a, b)
        pt[i] = x[i]
        g[i] = (v1 - v2) / (epsused + eps)
    return _quad_value(x, a, b), g


_A = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
_B = np.array([-8.0, 3.0, -1.0])

CASES = {
    # case: (objective, args, start, lower, upper), as in lbfgsb_make_r_paths.R
    "rosen_bounds": (_rosen, (0.0,), [-1.2, 1, -0.5, 0.8], [-2, -2, 0.3, -2], [2, 0.5, 2, 2]),
    "rosen10": (_rosen, (0.0,), [-1.2, 1] * 5, [-5] * 10, [5] * 10),
    "quad_fd": (_quad_fd, None, [0, 0, 0], [-1, -1, 0.6], [3, 1, 3]),
}


def _run(case: str, maxit: int = 100):
    fg, args, x0, lo, hi = CASES[case]
    x0, lo, hi = (np.asarray(v, dtype=np.float64) for v in (x0, lo, hi))
    if args is None:
        args = (_A, _B, lo, hi)
    hist = np.full((1000, x0.size + 1), np.nan)
    x, f, status, it, nfg = lbfgsb(fg, args, x0, lo, hi, 5, 1e7, 0.0, maxit, hist)
    return x, f, status, it, nfg, hist[:nfg]


def _r_path(name: str) -> tuple[np.ndarray, pd.Series]:
    r = pd.read_csv(DATA / f"lbfgsb_r_{name}.csv")
    cols = [c for c in r.columns if c.startswith("x")] + ["f"]
    return r.loc[r["kind"] == "eval", cols].to_numpy(), r.loc[r["kind"] == "result"].iloc[0]


@pytest.mark.parametrize("case", list(CASES))
def test_path_is_r_optim_path(case: str) -> None:
    x, f, status, _, nfg, hist = _run(case)
    path, res = _r_path(case)
    # every evaluation (iterates and line-search trials) where R's optim made it, in R's order
    assert nfg == len(path) == res["counts"]
    # to 1e-8 for 35 evaluations; then rounding (R sums the objective in another order) grows on the
    # ill-conditioned 10-d Rosenbrock, by ~10x per 10 evaluations, with the same steps taken
    np.testing.assert_allclose(hist[:35], path[:35], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(hist, path, rtol=1e-4, atol=1e-4)
    p = x.size
    np.testing.assert_allclose(x, res.iloc[1:1 + p].astype(float), rtol=1e-6, atol=1e-8)
    assert f == pytest.approx(float(res["f"]), rel=1e-8, abs=1e-12)
    assert status == res["convergence"] == 0


@pytest.mark.parametrize("case", list(CASES))
def test_same_minimum_as_scipy(case: str) -> None:
    fg, args, x0, lo, hi = CASES[case]
    x0, lo, hi = (np.asarray(v, dtype=np.float64) for v in (x0, lo, hi))
    if args is None:
        args = (_A, _B, lo, hi)
    x, f, *_ = _run(case)
    ref = minimize(lambda v: fg(v, args), x0, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi, strict=True)),
                   options={"maxcor": 5, "ftol": 1e-12, "gtol": 1e-10, "maxiter": 1000})
    assert f == pytest.approx(ref.fun, rel=1e-6, abs=1e-8)
    np.testing.assert_allclose(x, ref.x, atol=2e-3)


def test_maxit_counts_as_r_optim() -> None:
    """R's optim driver stops when its iteration count exceeds maxit: maxit + 1 iterations, code 1."""
    *_, status, it, _, _ = _run("rosen10", maxit=3)
    assert (status, it) == (1, 4)


def test_active_bounds_at_solution() -> None:
    x, *_ = _run("rosen_bounds")
    assert x[1] == 0.5 and x[2] == 0.3  # exactly at the bounds, as R
