"""A vectorised PyDESeq2 ``Inference``: all genes at once, numba threads instead of joblib.

PyDESeq2's :class:`~pydeseq2.default_inference.DefaultInference` fits every gene in its
own Python call dispatched through a joblib process pool, which dominates its run time.
:class:`FastInference` computes the same quantities with gene-parallel numba kernels
(:mod:`dormsig.de._nb_kernels`) and batched numpy, in chunks of genes to bound memory.

Agreement with ``DefaultInference``:

- IRLS (LFCs, means, hat diagonals), the linear-model means, the Wald test, the rough and
  moments dispersions and the trend fit follow PyDESeq2's algorithm step for step, so they
  agree to floating-point accuracy.
- Genewise and MAP dispersions: PyDESeq2 runs L-BFGS-B in log-alpha with its default
  (loose) tolerances; here a projected Newton method solves the same one-dimensional
  problem to ``1e-10`` in log-alpha, so the estimates are the exact optimum PyDESeq2
  approximates (differences are within PyDESeq2's own optimiser tolerance).
- Genes where PyDESeq2 leaves its fast path (IRLS diverges or hits ``maxiter``; the
  dispersion optimiser does not converge) are handed to PyDESeq2's own per-gene routine,
  so they get exactly PyDESeq2's fallback (L-BFGS-B, then grid search). So are, by
  default, dispersion fits starting or ending in the flat region near ``min_disp``
  (see ``flat_start_fallback``); a start that L-BFGS-B would accept at once (projected
  gradient <= 1e-5, evaluated exactly as PyDESeq2 evaluates it) is kept as PyDESeq2 keeps it.
- The likelihood uses scipy's own ``gammaln``/``psi`` and numpy's summation order, so
  PyDESeq2's deviance-based IRLS stopping rule takes the same decisions even at alpha ~ 1e-8.
- apeGLM LFC shrinkage (:meth:`FastInference.lfc_shrink_nbinom_glm`) calls PyDESeq2's
  per-gene ``nbinomGLM`` in a plain loop (no process pool); it is not vectorised.

Example
-------
>>> from pydeseq2.dds import DeseqDataSet
>>> from pydeseq2.ds import DeseqStats
>>> dds = DeseqDataSet(counts=counts, metadata=meta, design="~cell + dex",
...                    inference=FastInference(threads=2))  # doctest: +SKIP
>>> dds.deseq2()  # doctest: +SKIP
>>> DeseqStats(dds, contrast=["dex", "trt", "untrt"], inference=FastInference()).summary()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numba
import numpy as np
import pandas as pd
from pydeseq2 import utils as pd_utils
from pydeseq2.default_inference import DefaultInference
from pydeseq2.inference import Inference
from scipy.linalg import lstsq, qr, solve_triangular
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from dormsig.de import _nb_kernels as K

__all__ = ["FastInference"]

_RIDGE = 1e-6  # PyDESeq2's ridge on X^T W X in IRLS
_FLAT_LOG_MARGIN = 2.0  # genes starting or ending within e^2 of min_disp are re-solved by PyDESeq2
_PGTOL = 1e-5  # scipy L-BFGS-B's default projected-gradient tolerance


class FastInference(Inference):
    """Gene-vectorised implementation of PyDESeq2's :class:`~pydeseq2.inference.Inference`.

    Parameters
    ----------
    threads
        Number of threads for the numba kernels and BLAS; ``None`` uses numba's default
        (all cores). Restored on exit from each call.
    chunk_size
        Number of genes processed at a time; bounds the temporary memory to a few
        ``chunk_size x n_samples`` float64 arrays.
    flat_start_fallback
        Dispersion fits that start or end within a factor e^2 of ``min_disp``, where the
        objective is flat to rounding error, are handed to PyDESeq2's per-gene L-BFGS-B
        (True, the default: reproduces PyDESeq2's outcome, about 30 ms per such gene, typically
        1-3 % of genes). False keeps the Newton optimum (faster; the exact minimiser, which
        PyDESeq2 often misses there: its result flips under 1e-15 perturbations of the input).
    """

    def __init__(self, threads: int | None = None, chunk_size: int = 5000, flat_start_fallback: bool = True) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"FastInference: threads must be >= 1 or None, got {threads}")
        if chunk_size < 1:
            raise ValueError(f"FastInference: chunk_size must be >= 1, got {chunk_size}")
        self.threads = threads
        self.chunk_size = int(chunk_size)
        self.flat_start_fallback = bool(flat_start_fallback)
        #: genes handed to PyDESeq2's per-gene routines so far, by method (diagnostics)
        self.n_fallback_: dict[str, int] = {"irls": 0, "alpha_mle": 0}

    # PyDESeq2 sets ``inference.n_cpus`` when the user passes ``n_cpus`` to DeseqDataSet.
    @property
    def n_cpus(self) -> int:  # noqa: D102
        return self._n_threads()

    @n_cpus.setter
    def n_cpus(self, n_cpus: int | None) -> None:
        self.threads = n_cpus

    def _n_threads(self) -> int:
        top = numba.config.NUMBA_NUM_THREADS
        return top if self.threads is None else max(1, min(int(self.threads), top))

    @contextmanager
    def _limits(self) -> Iterator[None]:
        """Limit numba and BLAS threads for the duration of one call."""
        old = numba.get_num_threads()
        numba.set_num_threads(self._n_threads())
        try:
            with threadpool_limits(limits=self._n_threads()):
                yield
        finally:
            numba.set_num_threads(old)

    def _chunks(self, n_genes: int) -> Iterator[slice]:
        for start in range(0, n_genes, self.chunk_size):
            yield slice(start, min(start + self.chunk_size, n_genes))

    # ------------------------------------------------------------------ means and LFCs

    def lin_reg_mu(  # noqa: D102
        self,
        counts: np.ndarray,
        size_factors: np.ndarray,
        design_matrix: np.ndarray,
        min_mu: float,
    ) -> np.ndarray:
        # sklearn's LinearRegression(fit_intercept=False) is scipy lstsq; do all genes at once
        sf = np.asarray(size_factors, dtype=float)
        x = np.asarray(design_matrix, dtype=float)
        out = np.empty(counts.shape, dtype=float)
        with self._limits():
            for sl in self._chunks(counts.shape[1]):
                y = np.asarray(counts[:, sl], dtype=float) / sf[:, None]
                coef = lstsq(x, y)[0]
                np.maximum(sf[:, None] * (x @ coef), min_mu, out=out[:, sl])
        return out

    def irls(  # noqa: D102
        self,
        counts: np.ndarray,
        size_factors: np.ndarray,
        design_matrix: np.ndarray,
        disp: np.ndarray,
        min_mu: float,
        beta_tol: float,
        min_beta: float = -30,
        max_beta: float = 30,
        optimizer: Literal["BFGS", "L-BFGS-B"] = "L-BFGS-B",
        maxiter: int = 250,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sf = np.ascontiguousarray(size_factors, dtype=float)
        x = np.ascontiguousarray(design_matrix, dtype=float)
        disp = np.asarray(disp, dtype=float)
        n, p = x.shape
        n_genes = counts.shape[1]
        full_rank = np.linalg.matrix_rank(x) == p
        if full_rank:
            q, r = qr(x, mode="economic")
        beta = np.empty((n_genes, p))
        mu = np.empty((n, n_genes))
        hat = np.empty((n, n_genes))
        converged = np.ones(n_genes, dtype=bool)
        with self._limits():
            for sl in self._chunks(n_genes):
                y = np.ascontiguousarray(np.asarray(counts[:, sl], dtype=float).T)  # (g, n)
                # same starting point as pydeseq2.utils.irls_solver
                if full_rank:
                    z = np.log(y / sf + 0.1)
                    b0 = solve_triangular(r, q.T @ z.T).T
                else:
                    b0 = np.zeros((y.shape[0], p))
                    with np.errstate(divide="ignore"):
                        b0[:, 0] = np.log(y / sf).mean(axis=1)
                b0 = np.ascontiguousarray(b0)
                b, m, h, fb = K.irls_kernel(
                    y, sf, x, np.ascontiguousarray(disp[sl]), b0, float(min_mu), float(beta_tol),
                    float(max_beta), int(maxiter), _RIDGE,
                )
                beta[sl] = b
                mu[:, sl] = m.T
                hat[:, sl] = h.T
                self.n_fallback_["irls"] += int(fb.sum())
                for i in np.flatnonzero(fb):
                    # PyDESeq2 leaves IRLS for these genes: let it do so itself
                    gi = sl.start + i
                    bi, mi, hi, ci = pd_utils.irls_solver(
                        counts=np.asarray(counts[:, gi]), size_factors=sf, design_matrix=x,
                        disp=disp[gi], min_mu=min_mu, beta_tol=beta_tol, min_beta=min_beta,
                        max_beta=max_beta, optimizer=optimizer, maxiter=maxiter,
                    )
                    beta[gi], mu[:, gi], hat[:, gi], converged[gi] = bi, mi, hi, ci
        return beta, mu, hat, converged

    # ------------------------------------------------------------------ dispersions

    def alpha_mle(  # noqa: D102
        self,
        counts: np.ndarray,
        design_matrix: np.ndarray,
        mu: np.ndarray,
        alpha_hat: np.ndarray,
        min_disp: float,
        max_disp: float,
        prior_disp_var: float | None = None,
        cr_reg: bool = True,
        prior_reg: bool = False,
        optimizer: Literal["BFGS", "L-BFGS-B"] = "L-BFGS-B",
    ) -> tuple[np.ndarray, np.ndarray]:
        if prior_reg and prior_disp_var is None:
            raise ValueError("Sigma_prior is required for prior regularization")
        x = np.ascontiguousarray(design_matrix, dtype=float)
        alpha_hat = np.asarray(alpha_hat, dtype=float)
        n_genes = counts.shape[1]
        # BFGS is unbounded in PyDESeq2; +-inf bounds reproduce that
        lo_b, hi_b = (np.log(min_disp), np.log(max_disp)) if optimizer == "L-BFGS-B" else (-np.inf, np.inf)
        disp = np.empty(n_genes)
        converged = np.empty(n_genes, dtype=bool)
        with self._limits():
            for sl in self._chunks(n_genes):
                y = np.ascontiguousarray(np.asarray(counts[:, sl], dtype=float).T)
                m = np.ascontiguousarray(np.asarray(mu[:, sl], dtype=float).T)
                with np.errstate(divide="ignore"):
                    t0 = np.log(alpha_hat[sl])
                t, ok = K.alpha_mle_kernel(
                    y, m, x, np.ascontiguousarray(t0), float(lo_b), float(hi_b),
                    float(prior_disp_var) if prior_reg else 1.0, bool(cr_reg), bool(prior_reg),
                    100, 1e-10, _PGTOL,
                )
                disp[sl] = np.exp(t)
                converged[sl] = ok
                # Near the lower bound the objective is flat in log-alpha to within rounding, so
                # a local method cannot tell a boundary minimum from an interior one; PyDESeq2's
                # L-BFGS-B (then grid search) decides there, as it does in DefaultInference.
                # (genes the kernel kept at their start by L-BFGS-B's first test are final)
                moved = t != np.clip(t0, lo_b, hi_b)
                near = (t < lo_b + _FLAT_LOG_MARGIN) | (t0 < lo_b + _FLAT_LOG_MARGIN)
                redo = ~ok | (near & moved) if self.flat_start_fallback else ~ok
                self.n_fallback_["alpha_mle"] += int(redo.sum())
                for i in np.flatnonzero(redo):
                    # PyDESeq2's own optimiser (and its grid-search fallback) for the rest
                    gi = sl.start + i
                    disp[gi], converged[gi] = pd_utils.fit_alpha_mle(
                        counts=np.asarray(counts[:, gi]), design_matrix=x, mu=np.asarray(mu[:, gi]),
                        alpha_hat=alpha_hat[gi], min_disp=min_disp, max_disp=max_disp,
                        prior_disp_var=prior_disp_var, cr_reg=cr_reg, prior_reg=prior_reg,
                        optimizer=optimizer,
                    )
        return disp, converged

    def fit_rough_dispersions(  # noqa: D102
        self, normed_counts: np.ndarray, design_matrix: np.ndarray
    ) -> np.ndarray:
        # PyDESeq2's version is already one vectorised least-squares fit
        with self._limits():
            return pd_utils.fit_rough_dispersions(normed_counts, design_matrix)

    def fit_moments_dispersions(  # noqa: D102
        self, normed_counts: np.ndarray, size_factors: np.ndarray
    ) -> np.ndarray:
        return pd_utils.fit_moments_dispersions(normed_counts, size_factors)

    def dispersion_trend_gamma_glm(  # noqa: D102
        self, covariates: pd.Series, targets: pd.Series
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        # a single two-parameter fit over all genes: reuse PyDESeq2's (no per-gene loop)
        return DefaultInference.dispersion_trend_gamma_glm(self, covariates, targets)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ tests

    def wald_test(  # noqa: D102
        self,
        design_matrix: np.ndarray,
        disp: np.ndarray,
        lfc: np.ndarray,
        mu: np.ndarray,
        ridge_factor: np.ndarray,
        contrast: np.ndarray,
        lfc_null: np.ndarray,
        alt_hypothesis: Literal["greaterAbs", "lessAbs", "greater", "less"] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(design_matrix, dtype=float)
        c = np.asarray(contrast, dtype=float)
        lfc = np.asarray(lfc, dtype=float)
        disp = np.asarray(disp, dtype=float)
        n_genes = mu.shape[1]
        se = np.empty(n_genes)
        with self._limits():
            for sl in self._chunks(n_genes):
                m_ = np.asarray(mu[:, sl], dtype=float)
                w = m_ / (1.0 + m_ * disp[sl])
                mm = np.einsum("ij,ig,ik->gjk", x, w, x, optimize=True)
                finite = np.isfinite(mm).all(axis=(1, 2))
                s = np.full(mm.shape[0], np.nan)
                if finite.any():
                    hinv = np.linalg.inv(mm[finite] + ridge_factor)
                    hc = hinv @ c
                    s[finite] = np.sqrt(np.einsum("gj,gjk,gk->g", hc, mm[finite], hc))
                se[sl] = s
        with np.errstate(invalid="ignore", divide="ignore"):
            return _wald_pvalues(lfc, se, c, lfc_null, alt_hypothesis)

    def lfc_shrink_nbinom_glm(  # noqa: D102
        self,
        design_matrix: np.ndarray,
        counts: np.ndarray,
        size: np.ndarray,
        offset: np.ndarray,
        prior_no_shrink_scale: float,
        prior_scale: float,
        optimizer: str,
        shrink_index: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Not vectorised: PyDESeq2's per-gene apeGLM MAP fit in a plain loop (no process pool).
        res = []
        with self._limits():
            for i in range(counts.shape[1]):
                res.append(
                    pd_utils.nbinomGLM(
                        design_matrix=design_matrix, counts=counts[:, i], size=size[i], offset=offset,
                        prior_no_shrink_scale=prior_no_shrink_scale, prior_scale=prior_scale,
                        optimizer=optimizer, shrink_index=shrink_index,
                    )
                )
        lfcs, inv_hessians, conv = (np.array(m) for m in zip(*res, strict=True))
        return lfcs, inv_hessians, conv


def _wald_pvalues(
    lfc: np.ndarray,
    se: np.ndarray,
    c: np.ndarray,
    lfc_null: float,
    alt: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised tails of ``pydeseq2.utils.wald_test`` given LFCs and standard errors."""
    s = se[:, None]

    def greater(null: float) -> tuple[np.ndarray, np.ndarray]:
        stat = np.fmax((lfc - null) / s, 0) @ c
        return stat, norm.sf(stat)

    def less(null: float) -> tuple[np.ndarray, np.ndarray]:
        stat = np.fmin((lfc - null) / s, 0) @ c
        return stat, norm.sf(np.abs(stat))

    if alt is None:
        stat = (lfc - lfc_null) @ c / se
        return 2 * norm.sf(np.abs(stat)), stat, se
    if alt == "greater":
        stat, pval = greater(lfc_null)
    elif alt == "less":
        stat, pval = less(lfc_null)
    elif alt == "greaterAbs":
        stat = (np.sign(lfc) * np.fmax((np.abs(lfc) - lfc_null) / s, 0)) @ c
        pval = 2 * norm.sf(np.abs(stat))
    elif alt == "lessAbs":
        st_a, p_a = greater(-abs(lfc_null))
        st_b, p_b = less(abs(lfc_null))
        # min(..., key=abs) keeps the first on ties
        stat = np.where(np.abs(st_b) < np.abs(st_a), st_b, st_a)
        pval = np.maximum(p_a, p_b)
    else:
        raise ValueError(f"FastInference.wald_test: unknown alt_hypothesis {alt!r}")
    return pval, stat, se
