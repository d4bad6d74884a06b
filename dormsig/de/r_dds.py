"""R DESeq2's dispersion stages on top of pydeseq2's ``DeseqDataSet``.

:class:`RDeseqDataSet` is a ``DeseqDataSet`` whose steps follow R DESeq2 1.38 where pydeseq2 0.5.4
differs (each override says what R does); the numerics of every fit come from
:class:`dormsig.de.r_inference.RInference`, which it requires.

- Dispersion trend: R's ``parametricDispersionFit`` (:func:`r_parametric_trend`), its Gamma GLM fitted as
  R's ``glm.fit`` does (:func:`r_gamma_identity_glm`; pydeseq2's L-BFGS-B fit of it ended ~3e-5 apart).
- Prior variance with 1-3 residual df: R's Monte-Carlo histogram matching (:func:`prior_var_low_df`).
- MAP dispersions: R's start (gene-wise estimate when above 10% of the trend, else the trend),
  line search with the log-normal prior, grid search when it does not converge, and the
  dispersion-outlier rule (gene-wise estimate kept above trend + 2 SD).
- Cook's refit: the refit runs through this class too (pydeseq2 builds a plain ``DeseqDataSet``).
- After the final GLM fit, per-gene diagnostics as R's ``mcols(dds)``: ``betaConv``, ``betaIter``
  and ``optim`` (refitted by L-BFGS-B), in ``var``.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
from pydeseq2 import dds as _pd_dds
from pydeseq2.dds import DeseqDataSet
from threadpoolctl import threadpool_limits

from dormsig.de.r_inference import RInference

__all__ = ["PRIOR_VAR_SEED", "RDeseqDataSet", "prior_var_low_df", "r_gamma_identity_glm", "r_parametric_trend"]

#: Seed of the Monte-Carlo prior-variance estimate (R uses set.seed(2) there; the streams differ).
PRIOR_VAR_SEED = 2


def _local_quadratic(x: np.ndarray, y: np.ndarray, x0: float, q: int) -> tuple[float, float]:
    """Value and slope at ``x0`` of a tricube-weighted quadratic fit on the ``q`` nearest points."""
    d = np.abs(x - x0)
    h = np.partition(d, q - 1)[q - 1]
    h = h if h > 0 else 1.0
    w = np.clip(1 - (d / h) ** 3, 0, None) ** 3
    sel = w > 0
    xx = x[sel] - x0
    a = np.column_stack([np.ones(sel.sum()), xx, xx**2]) * np.sqrt(w[sel])[:, None]
    coef, *_ = np.linalg.lstsq(a, y[sel] * np.sqrt(w[sel]), rcond=None)
    return float(coef[0]), float(coef[1])


def _loess_quadratic(x: np.ndarray, y: np.ndarray, xout: np.ndarray, span: float = 0.2, cell: float = 0.2) -> np.ndarray:
    """R ``predict(loess(y ~ x, span=span))`` for one predictor (degree 2, ``surface="interpolate"``).

    As R's loess: local fits (value and slope) only at the vertices of a k-d tree whose cells hold at
    most ``floor(n * span * cell)`` points (split at the median, box widened by 0.5%), then cubic
    Hermite interpolation between vertices. The interpolation matters here: the direct fit moves the
    KL minimum of :func:`prior_var_low_df` by ~0.02.
    """
    xs = np.sort(x)
    n = xs.size
    q = max(int(np.floor(n * span + 1e-5)), 3)
    fc = int(np.floor(n * span * cell))
    margin = 0.005 * max(xs[-1] - xs[0], 1e-10 * max(abs(xs[0]), abs(xs[-1])) + 1e-30)
    verts = [xs[0] - margin, xs[-1] + margin]
    stack = [(0, n - 1)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo + 1 <= fc:
            continue
        mid = (lo + hi) // 2
        verts.append((xs[mid] + xs[mid + 1]) / 2)
        stack += [(lo, mid), (mid + 1, hi)]
    verts = np.unique(verts)
    fits = np.array([_local_quadratic(x, y, v, q) for v in verts])
    j = np.clip(np.searchsorted(verts, xout) - 1, 0, verts.size - 2)
    width = verts[j + 1] - verts[j]
    t = (xout - verts[j]) / width
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    return h00 * fits[j, 0] + h10 * width * fits[j, 1] + h01 * fits[j + 1, 0] + h11 * width * fits[j + 1, 1]


def prior_var_low_df(disp_residuals: np.ndarray, df: int, *, seed: int = PRIOR_VAR_SEED) -> float:
    """R DESeq2's dispersion prior variance when the residual df is 1-3.

    For so few residual degrees of freedom the log-dispersion residuals are too asymmetric for
    the MAD (which pydeseq2 uses regardless). R matches their histogram to simulated
    ``log(chi2_df / df) + N(0, v)`` over a grid of ``v`` by KL divergence, smooths the
    divergence with loess and takes the minimum (at least 0.25). Same algorithm here with
    numpy's generator, so the value agrees with R's up to Monte-Carlo noise.
    """
    rng = np.random.default_rng(seed)
    brks = np.arange(-20, 21) / 2
    obs = disp_residuals[(disp_residuals > brks[0]) & (disp_residuals < brks[-1])]
    obs_d, _ = np.histogram(obs, bins=brks, density=True)
    grid = np.linspace(0, 8, 200)
    kl = np.empty(grid.size)
    for i, v in enumerate(grid):
        rand = np.log(rng.chisquare(df, 10_000)) + rng.normal(0, np.sqrt(v), 10_000) - np.log(df)
        rand = rand[(rand > brks[0]) & (rand < brks[-1])]
        rand_d, _ = np.histogram(rand, bins=brks, density=True)
        z = np.concatenate([obs_d, rand_d])
        small = z[z > 0].min()
        kl[i] = np.sum(obs_d * (np.log(obs_d + small) - np.log(rand_d + small)))
    fine = np.linspace(0, 8, 1000)
    fitted = _loess_quadratic(grid, kl, fine, span=0.2)
    return float(max(fine[np.argmin(fitted)], 0.25))


def r_gamma_identity_glm(x: np.ndarray, y: np.ndarray, start: np.ndarray, epsilon: float = 1e-8,
                         maxit: int = 25) -> tuple[np.ndarray, bool]:
    """R ``glm(y ~ x, family = Gamma(link = "identity"), start = start)`` (``glm.fit``, R 4.2): coefficients
    (intercept, slope) and ``converged``.

    IRLS from ``start``: with the identity link the working response is ``y`` and the weights are
    ``1 / mu^2``; least squares by QR; stop when the deviance changes by less than ``epsilon``
    relative (``glm.control`` defaults); a step that leaves ``mu > 0`` is halved towards the previous
    coefficients, as R does. DESeq2's ``parametricDispersionFit`` calls this with ``start`` = the
    current coefficients, so it converges from there, not from a fixed point.
    """
    X = np.column_stack([np.ones_like(x), x])
    y = np.asarray(y, dtype=np.float64)

    def deviance(mu: np.ndarray) -> float:
        # Gamma()$dev.resids: -2 * (log(ifelse(y == 0, 1, y / mu)) - (y - mu) / mu)
        return float(np.sum(-2.0 * (np.log(np.where(y == 0, 1.0, y / mu)) - (y - mu) / mu)))

    coef = np.asarray(start, dtype=np.float64).copy()
    mu = X @ coef
    if not (np.all(np.isfinite(mu)) and np.all(mu > 0)):
        return coef, False
    dev_old = deviance(mu)
    for _ in range(maxit):
        w = 1.0 / mu  # sqrt(weights * mu.eta^2 / variance(mu)) with variance mu^2, mu.eta 1
        q, r = np.linalg.qr(X * w[:, None])
        new = np.linalg.solve(r, q.T @ (y * w))
        mu = X @ new
        halvings = 0
        while not (np.all(np.isfinite(mu)) and np.all(mu > 0)):  # R: "step size truncated: out of bounds"
            halvings += 1
            if halvings > maxit:
                return new, False
            new = (new + coef) / 2.0
            mu = X @ new
        dev = deviance(mu)
        if not np.isfinite(dev):
            return new, False
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            return new, True
        dev_old, coef = dev, new
    return coef, False


def r_parametric_trend(dds) -> bool:
    """R's ``parametricDispersionFit`` on ``dds``; returns False when it fails (caller falls back).

    Differs from pydeseq2 in two ways that matter for low counts: genes whose gene-wise
    dispersion sits at the floor (<= 100 * min_disp) are excluded from the fit, and the
    outlier rule (residual ratio outside [1e-4, 15)) is re-evaluated on all genes from the
    current coefficients before every fit, starting from (0.1, 1).
    """
    var = dds.var
    nz = var["non_zero"].to_numpy(dtype=bool)
    means = var["_normed_means"].to_numpy(dtype=np.float64)[nz]
    disps = var["genewise_dispersions"].to_numpy(dtype=np.float64)[nz]
    use = (disps > 100 * dds.min_disp) & np.isfinite(means) & (means > 0)
    means, disps = means[use], disps[use]
    coefs = np.array([0.1, 1.0])
    for _ in range(11):
        ratio = disps / (coefs[0] + coefs[1] / means)
        good = (ratio > 1e-4) & (ratio < 15)
        new, converged = r_gamma_identity_glm(1 / means[good], disps[good], start=coefs)
        if not np.all(new > 0):  # R: stop("parametric dispersion fit failed")
            return False
        old, coefs = coefs, new
        if np.sum(np.log(coefs / old) ** 2) < 1e-6 and converged:
            break
    else:
        return False
    dds.uns["trend_coeffs"] = pd.Series(coefs, index=["a0", "a1"])
    dds.uns["disp_function_type"] = "parametric"
    fitted = np.full(dds.n_vars, np.nan)
    fitted[nz] = coefs[0] + coefs[1] / var["_normed_means"].to_numpy(dtype=np.float64)[nz]
    dds.var["fitted_dispersions"] = fitted
    return True


class RDeseqDataSet(DeseqDataSet):
    """``DeseqDataSet`` with R DESeq2's dispersion stages and diagnostics (see module notes).

    Takes pydeseq2's arguments; ``inference`` must be an :class:`RInference` (the default).
    """

    def __init__(self, *args, inference: RInference | None = None, cooks_mu: str = "fit", **kwargs) -> None:
        if cooks_mu not in ("fit", "dispersion"):
            raise ValueError(f"RDeseqDataSet: cooks_mu must be 'fit' or 'dispersion', not {cooks_mu!r}")
        # R's nbinomLRT computes Cook's distances before it stores the full fit's means, so with the
        # means of the gene-wise dispersion stage ("dispersion"); nbinomWaldTest with the fit's ("fit").
        self.cooks_mu = cooks_mu
        inference = inference if inference is not None else RInference()
        if not isinstance(inference, RInference):
            raise TypeError(f"RDeseqDataSet needs an RInference, not {type(inference).__name__}")
        kwargs.setdefault("min_mu", 0.5)
        super().__init__(*args, inference=inference, **kwargs)

    def fit_size_factors(self, fit_type=None, control_genes=None) -> None:  # noqa: D102
        fit_type = fit_type or self.size_factors_fit_type
        if fit_type != "poscounts" or control_genes is not None or getattr(self, "control_genes", None) is not None:
            super().fit_size_factors(fit_type=fit_type, control_genes=control_genes)
            return
        # R estimateSizeFactors(type = "poscounts"): the log geometric mean of the positive counts
        # divided by all samples, every gene not all zero used (pydeseq2 also drops genes whose
        # geometric mean is <= 1, which moves the size factors by ~1e-3 on sparse data).
        x = np.asarray(self.X.toarray() if hasattr(self.X, "toarray") else self.X, dtype=np.float64)
        pos = x > 0
        logx = np.log(np.where(pos, x, 1.0))
        logmeans = logx.sum(axis=0) / x.shape[0]
        usable = pos.any(axis=0)
        ratios = np.where(pos & usable[None, :], logx - logmeans[None, :], np.nan)
        sf = np.exp(np.nanmedian(ratios, axis=1))
        sf = sf / np.exp(np.mean(np.log(sf)))
        self.obs["size_factors"] = sf
        self.layers["normed_counts"] = x / sf[:, None]
        self.var["_normed_means"] = self.layers["normed_counts"].mean(axis=0)
        self.logmeans = logmeans
        self.filtered_genes = usable

    def fit_dispersion_trend(self, vst: bool = False) -> None:
        """R ``parametricDispersionFit``; pydeseq2's own procedure when it fails (recorded)."""
        if vst or self.fit_type != "parametric":
            super().fit_dispersion_trend(vst)
            return
        if "genewise_dispersions" not in self.var:
            self.fit_genewise_dispersions()
        with threadpool_limits(limits=1, user_api="blas"):  # as RInference.fit_glm: results whatever the caller's
            fitted = r_parametric_trend(self)
        if fitted:
            self.uns["trend_method"] = "R parametricDispersionFit"
        else:
            super().fit_dispersion_trend(vst)
            self.uns["trend_method"] = f"pydeseq2 fallback ({self.uns.get('disp_function_type')})"

    def fit_dispersion_prior(self) -> None:
        """pydeseq2's MAD estimate, R's Monte-Carlo estimate when the residual df is 1-3."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="As the residual degrees of freedom")
            super().fit_dispersion_prior()
        df = self.n_obs - self.obsm["design_matrix"].shape[1]
        if 0 < df <= 3:
            var = self[:, self.non_zero_genes].var
            gw = var["genewise_dispersions"].to_numpy()
            res = np.log(gw) - np.log(var["fitted_dispersions"].to_numpy())
            self.uns["prior_disp_var"] = np.asarray(prior_var_low_df(res[gw >= 100 * self.min_disp], df))
            self.uns["prior_disp_var_method"] = "R low-df Monte Carlo"

    def fit_MAP_dispersions(self) -> None:
        """R ``estimateDispersionsMAP`` (start, prior, grid fallback, outlier rule)."""
        if "prior_disp_var" not in self.uns:
            self.fit_dispersion_prior()
        nz = self.var["non_zero"].to_numpy(dtype=bool)
        gene = self.var["genewise_dispersions"].to_numpy(dtype=np.float64)[nz]
        trend = self.var["fitted_dispersions"].to_numpy(dtype=np.float64)[nz]
        start = np.where(gene > 0.1 * trend, gene, trend)
        disp, conv = self.inference.map_dispersions(
            self.X[:, self.non_zero_idx], self.obsm["design_matrix"].to_numpy(dtype=np.float64),
            self.layers["_mu_hat"][:, self.non_zero_idx], start, trend, float(np.asarray(self.uns["prior_disp_var"])),
            self.min_disp, self.max_disp,
        )
        self.var["MAP_dispersions"] = np.nan
        self.var.loc[nz, "MAP_dispersions"] = disp
        self.var["_MAP_converged"] = pd.array([pd.NA] * self.n_vars, dtype="boolean")
        self.var.loc[nz, "_MAP_converged"] = conv
        self.var["dispersions"] = self.var["MAP_dispersions"].copy()
        outlier = np.log(self.var["genewise_dispersions"]) > np.log(self.var["fitted_dispersions"]) + 2 * np.sqrt(
            self.uns["_squared_logres"]
        )
        self.var["_outlier_genes"] = outlier.fillna(False)
        self.var.loc[self.var["_outlier_genes"], "dispersions"] = self.var.loc[
            self.var["_outlier_genes"], "genewise_dispersions"
        ]

    def fit_LFC(self) -> None:
        """pydeseq2's fit, plus R's per-gene diagnostics (betaConv, betaIter, optim) in ``var``."""
        with self.inference.final_fit():
            super().fit_LFC()
        fit = self.inference.last_fit_
        nz = self.var["non_zero"].to_numpy(dtype=bool)
        for col, val, fill in (("betaConv", fit["converged"], pd.NA), ("betaIter", fit["iterations"], pd.NA),
                               ("optim", fit["optim"], pd.NA)):
            dtype = "Int64" if col == "betaIter" else "boolean"
            arr = pd.array([fill] * self.n_vars, dtype=dtype)
            arr[nz] = val
            self.var[col] = arr

    def calculate_cooks(self) -> None:  # noqa: D102
        if self.cooks_mu != "dispersion" or "_mu_hat" not in self.layers:
            super().calculate_cooks()
            return
        fitted = self.obsm["_mu_LFC"]
        self.obsm["_mu_LFC"] = np.asarray(self.layers["_mu_hat"])[:, self.var["non_zero"].to_numpy(dtype=bool)]
        try:
            super().calculate_cooks()
        finally:
            self.obsm["_mu_LFC"] = fitted

    def cooks_outlier(self) -> pd.Series:
        """R's Cook's filter (``results(cooksCutoff=TRUE)``), which differs from pydeseq2 after a refit.

        R's maximum Cook's distance is taken over samples with >= 3 replicates of their design row;
        after outlier replacement it is recomputed with every *replaceable* sample zeroed, for all
        genes (pydeseq2 zeroes them only for refitted genes), and it is NA when every sample is
        replaceable. A gene stays tested when >= 3 counts exceed the count at its largest Cook's
        distance.
        """
        if "_pvalue_cooks_outlier" in self.var:
            return self.var["_pvalue_cooks_outlier"]
        from pydeseq2.utils import n_or_more_replicates
        from scipy.stats import f

        dm = self.obsm["design_matrix"]
        m, p = dm.shape
        cooks = np.asarray(self.layers["cooks"], dtype=np.float64)
        use = np.asarray(n_or_more_replicates(dm, 3), dtype=bool)
        refitted = "refitted" in self.var and bool(self.var["refitted"].sum() > 0)
        if m <= p or not use.any():
            max_cooks = np.full(self.n_vars, np.nan)
        elif refitted:
            replaceable = np.asarray(self.obs["replaceable"], dtype=bool)
            if replaceable.all():
                max_cooks = np.full(self.n_vars, np.nan)
            else:
                rc = cooks.copy()
                rc[replaceable] = 0.0
                max_cooks = np.nanmax(np.where(np.isnan(rc[use]), -np.inf, rc[use]), axis=0)
        else:
            max_cooks = np.nanmax(np.where(np.isnan(cooks[use]), -np.inf, cooks[use]), axis=0)
        with np.errstate(invalid="ignore"):
            outlier = max_cooks > f.ppf(0.99, p, m - p)
        counts = np.asarray(self.X)
        # R applies the ">= 3 larger counts" exception only to a one-variable, two-level design
        two_groups = p == 2 and set(np.unique(dm.iloc[:, 1].to_numpy())) <= {0, 1}
        for g in np.flatnonzero(outlier) if two_groups else ():
            col = np.where(np.isnan(cooks[:, g]), -np.inf, cooks[:, g])
            if (counts[:, g] > counts[int(np.argmax(col)), g]).sum() >= 3:
                outlier[g] = False
        self.var["maxCooks"] = np.where(np.isfinite(max_cooks), max_cooks, np.nan)
        self.var["_pvalue_cooks_outlier"] = outlier
        return self.var["_pvalue_cooks_outlier"]

    def _refit_without_outliers(self) -> None:
        # pydeseq2 builds the refit dataset as ``DeseqDataSet(...)`` by module-global name; let
        # it build this class so the refit follows R like the first fit.
        with _build_as(type(self)):
            super()._refit_without_outliers()


@contextlib.contextmanager
def _build_as(cls: type):
    original = _pd_dds.DeseqDataSet
    _pd_dds.DeseqDataSet = cls
    try:
        yield
    finally:
        _pd_dds.DeseqDataSet = original
