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
from scipy.optimize import minimize

from dormsig.de._lbfgsb import NB_GENE, QUAD_FD, ROSENBROCK, _objective, lbfgsb, nb_gene_parts

DATA = Path(__file__).parent / "data" / "de"


_A = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
_B = np.array([-8.0, 3.0, -1.0])
_NONE = np.zeros((0, 0)), np.zeros(0)

CASES = {
    # case: (objective, start, lower, upper), as in lbfgsb_make_r_paths.R
    "rosen_bounds": (ROSENBROCK, [-1.2, 1, -0.5, 0.8], [-2, -2, 0.3, -2], [2, 0.5, 2, 2]),
    "rosen10": (ROSENBROCK, [-1.2, 1] * 5, [-5] * 10, [5] * 10),
    "quad_fd": (QUAD_FD, [0, 0, 0], [-1, -1, 0.6], [3, 1, 3]),
}


def _problem(case: str):
    kind, x0, lo, hi = CASES[case]
    x0, lo, hi = (np.asarray(v, dtype=np.float64) for v in (x0, lo, hi))
    data = (_A, _B, lo, hi, np.array([1e-3])) if kind == QUAD_FD else (_NONE[0], _NONE[1], _NONE[1], _NONE[1], _NONE[1])
    return kind, data, x0, lo, hi


def _run(case: str, maxit: int = 100):
    kind, data, x0, lo, hi = _problem(case)
    hist = np.full((1000, x0.size + 1), np.nan)
    x, f, status, it, nfg = lbfgsb(kind, *data, x0, lo, hi, 5, 1e7, 0.0, maxit, hist)
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
    assert f == pytest.approx(float(res["f"]), rel=1e-8, abs=1e-10)
    assert status == res["convergence"] == 0


@pytest.mark.parametrize("case", list(CASES))
def test_same_minimum_as_scipy(case: str) -> None:
    kind, data, x0, lo, hi = _problem(case)
    x, f, *_ = _run(case)
    ref = minimize(lambda v: _objective(kind, v, *data), x0, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi, strict=True)),
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


GENES = ["AAAS", "A4GALT", "AAK1", "CXCR4", "NOTCH1"]


def _gene_inputs():
    des = pd.read_csv(DATA / "lbfgsb_ctc_design.csv")
    nf = des["nf"].to_numpy(np.float64)
    x = np.ascontiguousarray(des[[c for c in des.columns if c.startswith("x")]].to_numpy(np.float64))
    return nf, x, pd.read_csv(DATA / "lbfgsb_ctc_genes.csv").set_index("gene")


@pytest.mark.parametrize("gene", GENES)
def test_ctc_gene_follows_r_optim(gene: str) -> None:
    """R DESeq2's optim refit of CTC genes with divergent IRLS (lbfgsb_make_r_genes.R, same inputs).

    The objective differs from R's in the last bits (R's dnbinom, pow and long-double sums), and the
    finite-difference gradient (step 1e-3) turns 1e-14 relative differences of the objective into
    ~1e-9 of the gradient, so the paths are R's to ~1e-8 for the first evaluations and then drift
    along the flat directions; the objective at the stop agrees to 1e-6 and the group coefficient
    (reported as log2 fold change) to 0.05.
    """
    nf, x, genes = _gene_inputs()
    row = genes.loc[gene]
    y = row.filter(like="y_").to_numpy(np.float64)
    start = np.clip(row.filter(like="start_").to_numpy(np.float64), -30, 30)
    alpha = float(row["alpha"])
    parts = nb_gene_parts(y, alpha)
    sc = np.array([alpha, 1e-6, 30.0, 1e-3])
    p = x.shape[1]
    hist = np.full((500, p + 1), np.nan)
    b, f, status, _, nfg = lbfgsb(NB_GENE, x, y, nf, parts, sc, start, np.full(p, -30.0), np.full(p, 30.0),
                                  5, 1e7, 0.0, 100, hist)
    path, res = _r_path(f"gene_{gene}")
    np.testing.assert_allclose(hist[:3], path[:3], rtol=1e-8, atol=1e-7)
    assert status == res["convergence"] == 0
    assert f == pytest.approx(float(res["f"]), rel=1e-6)
    assert b[-1] == pytest.approx(float(res[f"x{p}"]), abs=0.05)


@pytest.mark.parametrize("gene", GENES)
def test_ctc_gene_same_minimum_as_scipy(gene: str) -> None:
    """Near the minimum scipy's L-BFGS-B finds with a tight tolerance: R's rule (factr 1e7) stops
    within ~2e-6 (relative) of it along the flat directions, where R's optim stops too."""
    nf, x, genes = _gene_inputs()
    row = genes.loc[gene]
    y = row.filter(like="y_").to_numpy(np.float64)
    start = np.clip(row.filter(like="start_").to_numpy(np.float64), -30, 30)
    alpha = float(row["alpha"])
    parts = nb_gene_parts(y, alpha)
    sc = np.array([alpha, 1e-6, 30.0, 1e-3])
    p = x.shape[1]
    lo, hi = np.full(p, -30.0), np.full(p, 30.0)
    _, f, *_ = lbfgsb(NB_GENE, x, y, nf, parts, sc, start, lo, hi, 5, 1e7, 0.0, 100, np.zeros((0, p + 1)))
    ref = minimize(lambda v: _objective(NB_GENE, v, x, y, nf, parts, sc), start, jac=True, method="L-BFGS-B",
                   bounds=list(zip(lo, hi, strict=True)), options={"maxcor": 5, "ftol": 1e-13, "gtol": 0.0,
                                                                     "maxiter": 1000})
    assert ref.fun - 1e-8 <= f <= ref.fun * (1 + 1e-5)


def test_nb_objective_and_gradient_bit_equal_to_r() -> None:
    """DESeq2's optim objective and R optim's finite-difference gradient at 600 points of 150 CTC genes
    (r_optim_objective/: make_cases.py, make_objective.R; hex floats, so both sides see the same
    doubles), some with a coordinate at or within 1e-3 of the +-30 bound: every value and every
    gradient coordinate equal to R's, bit for bit (with lgamma constants, exp(eta log 2) and double
    sums: 77 of 600 values and 6 of 7,800 gradient coordinates)."""
    from dormsig.de._r_kernels import optim_value_and_fd_grad

    d = DATA / "r_optim_objective"
    cases = pd.read_csv(d / "cases.csv.gz")
    ref = pd.read_csv(d / "objective.csv.gz")
    x = np.ascontiguousarray(pd.read_csv(d / "design.csv").map(float.fromhex).to_numpy())
    nf = pd.read_csv(d / "nf.csv")["nf"].map(float.fromhex).to_numpy()

    def hx(s: str) -> np.ndarray:
        return np.array([float.fromhex(v) for v in s.split(";")])

    n_val = n_grad = 0
    for i in range(len(cases)):
        y, b, alpha = hx(cases["k"][i]), hx(cases["p"][i]), float.fromhex(cases["alpha"][i])
        f, g = _objective(NB_GENE, b, x, y, nf, nb_gene_parts(y, alpha), np.array([alpha, 1e-6, 30.0, 1e-3]))
        f2, g2 = optim_value_and_fd_grad(b, y, x, nf, alpha, np.zeros_like(y), 1e-6, 0.0, 30.0, 1e-3)
        assert f2 == f and (g2 == g).all()
        n_val += f == float.fromhex(ref["value"][i])
        n_grad += (g == hx(ref["grad"][i])).all()
    assert n_val == n_grad == len(cases) == 600
