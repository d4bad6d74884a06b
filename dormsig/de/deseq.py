"""Bulk (or pseudobulk) differential expression with pydeseq2, with R DESeq2's defaults.

:func:`deseq` validates everything that can be checked cheaply (counts are integers, the
design has full rank, each contrast group has >= 2 replicates, the data are not single cells)
before the long fit, runs pydeseq2, and returns one table in R's column names.

Where pydeseq2 (0.5.4) and R DESeq2 (1.38) differ, dormsig follows R. Three of these change
results (measured on airway, ``~ cell + dex``: plain pydeseq2 finds 3,902 genes at padj < 0.05
against R's 3,994, Jaccard 0.914; dormsig 4,075, Jaccard 0.973, log2FC Pearson r = 0.999998):

- Dispersion trend: R's ``parametricDispersionFit`` (genes with gene-wise dispersion at the floor
  excluded; the [1e-4, 15) residual rule re-applied to all genes before every fit). pydeseq2 fits
  all genes first, which biases the trend (airway: a1 = 2.47 vs R 3.60).
- Dispersion prior variance with 1-3 residual degrees of freedom: R's Monte-Carlo histogram
  matching with an interpolating loess (:func:`prior_var_low_df`); pydeseq2 uses the MAD (0.25
  floor on airway vs R 0.529, dormsig 0.553: the random streams differ).
- Fitted means are floored at 0.5 before dispersion fits (R ``minmu``); without the floor the
  Cox-Reid term can be singular (pydeseq2 raises ``LinAlgError``, e.g. CTCs with ~ patient + group).

The other R defaults, which pydeseq2 0.5.4 already shares:

- Cook's distance: outliers in samples of cells with >= 7 replicates are replaced by the
  trimmed mean and the gene refitted (R ``minReplicatesForReplace = 7``); p-values of genes
  with a remaining outlier (only samples with >= 3 replicates considered) are set to NaN
  (R ``cooksCutoff``). Both are switched off by ``cooks=False``.
- Independent filtering on the mean of normalised counts with R's 50-quantile grid and
  lowess rule, over *all* genes including all-zero ones (whose results are NaN, as in R).
- ``size_factors="ratio"`` refuses data in which every gene has a zero (R stops with
  "every gene contains at least one zero"); pydeseq2 would silently switch to the iterative
  method. Use ``"poscounts"`` (R ``type="poscounts"``) for sparse or shallow data.
- All-zero genes get ``baseMean = 0`` and NaN everywhere else (R: NA).
- The VST in ``layers["vst"]`` uses the fitted dispersion trend of the model (R
  ``vst(blind=FALSE)`` with the parametric trend), which avoids a second dispersion fit.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from dormsig.errors import ConfigError, DesignError, InputError
from dormsig.provenance import attach, record

RESULT_COLUMNS = ("gene", "baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj")

#: Above this many observations a matrix is taken for single cells (replicates must be samples).
MAX_BULK_OBS = 200


def _make_inference(name: Any, threads: int | None):
    """Return a pydeseq2 ``Inference`` for ``name``.

    ``"fast"``: :class:`dormsig.de.inference.FastInference` (vectorised); falls back to pydeseq2's
    ``DefaultInference`` with a warning when that module is not available. ``"pydeseq2"``:
    ``DefaultInference(n_cpus=threads)``. An ``Inference`` instance is used as is.
    Returns ``(inference, label)``.
    """
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.inference import Inference

    if isinstance(name, Inference):
        return name, type(name).__name__
    if name == "pydeseq2":
        return DefaultInference(n_cpus=threads), "pydeseq2"
    if name == "fast":
        try:
            from dormsig.de.inference import FastInference
        except ImportError as exc:
            warnings.warn(
                f"dormsig.de.inference.FastInference is not available ({exc}); using pydeseq2's DefaultInference",
                RuntimeWarning,
                stacklevel=3,
            )
            return DefaultInference(n_cpus=threads), "pydeseq2"
        return FastInference(threads=threads), "fast"
    raise ConfigError(f"deseq: inference must be 'fast', 'pydeseq2' or a pydeseq2 Inference, not {name!r}")


def _safe_name(name: str) -> str:
    out = re.sub(r"\W", "_", str(name))
    return out if out and not out[0].isdigit() else f"v_{out}"


def _dense_counts(adata: AnnData, layer: str | None, what: str) -> np.ndarray:
    if layer is not None and layer not in adata.layers:
        raise InputError(f"{what}: layer {layer!r} not found (layers: {sorted(adata.layers)}); raw counts are needed")
    mat = adata.layers[layer] if layer is not None else adata.X
    arr = mat.toarray() if sp.issparse(mat) else np.asarray(mat)
    return np.asarray(arr, dtype=np.float64)


def check_counts(counts: np.ndarray, *, round_counts: bool, what: str) -> np.ndarray:
    """Refuse NaN, negative or non-integer counts (unless ``round_counts``); return integers."""
    if not np.isfinite(counts).all():
        raise InputError(f"{what}: counts contain {int((~np.isfinite(counts)).sum())} NaN/infinite values")
    if (counts < 0).any():
        raise InputError(f"{what}: counts contain {int((counts < 0).sum())} negative values")
    rounded = np.round(counts)
    # Tolerate floating-point residue (0.999999999999999 from summing transcripts or probes).
    n_nonint = int(np.count_nonzero(np.abs(counts - rounded) > 1e-6 * np.maximum(1.0, np.abs(counts))))
    if n_nonint and not round_counts:
        raise InputError(
            f"{what}: {n_nonint} count values are not integers (normalised or expected counts?); DESeq2 needs "
            "raw read counts; pass round_counts=True to round estimated counts (e.g. RSEM/salmon)"
        )
    return rounded.astype(np.int64)


def looks_single_cell(adata: AnnData, counts: np.ndarray) -> bool:
    """True for matrices of single cells rather than samples (see :func:`deseq`)."""
    if "pseudobulk" in adata.uns.get("dormsig", {}):
        return False
    if adata.n_obs > MAX_BULK_OBS:
        return True
    lib = counts.sum(axis=1)
    return adata.n_obs > 50 and float(np.median(lib)) < 1e5 and float((counts == 0).mean()) > 0.5


def _confounded_columns(dm: pd.DataFrame) -> list[str]:
    """Design-matrix columns that are linear combinations of the others."""
    x = dm.to_numpy(dtype=np.float64)
    full = np.linalg.matrix_rank(x)
    return [c for j, c in enumerate(dm.columns) if np.linalg.matrix_rank(np.delete(x, j, axis=1)) == full]


def _vst(normed: np.ndarray, dds) -> np.ndarray:
    """R's vst formula with the model's dispersion trend (blind=FALSE)."""
    if dds.uns.get("disp_function_type", "parametric") == "parametric" and "trend_coeffs" in dds.uns:
        a0, a1 = np.asarray(dds.uns["trend_coeffs"], dtype=np.float64)
        return np.log2((1 + a1 + 2 * a0 * normed + 2 * np.sqrt(a0 * normed * (1 + a1 + a0 * normed))) / (4 * a0))
    disp = float(dds.uns["mean_disp"])
    return (2 * np.arcsinh(np.sqrt(disp * normed)) - np.log(disp) - np.log(4)) / np.log(2)


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


def _r_parametric_trend(dds) -> bool:
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
        new, _, converged = dds.inference.dispersion_trend_gamma_glm(
            pd.Series(1 / means[good]), pd.Series(disps[good])
        )
        new = np.asarray(new, dtype=np.float64)
        if not converged or not np.all(new > 0):
            return False
        old, coefs = coefs, new
        if np.sum(np.log(coefs / old) ** 2) < 1e-6:
            break
    else:
        return False
    dds.uns["trend_coeffs"] = pd.Series(coefs, index=["a0", "a1"])
    dds.uns["disp_function_type"] = "parametric"
    fitted = np.full(dds.n_vars, np.nan)
    fitted[nz] = coefs[0] + coefs[1] / var["_normed_means"].to_numpy(dtype=np.float64)[nz]
    dds.var["fitted_dispersions"] = fitted
    return True


def _use_r_trend(dds) -> None:
    """Make ``dds.fit_dispersion_trend`` follow R's parametric fit (see :func:`_r_parametric_trend`).

    When R's fit fails (R then substitutes a local fit), pydeseq2's own procedure runs instead and
    the fallback is recorded in ``dds.uns["trend_method"]``.
    """
    original = dds.fit_dispersion_trend

    def fit_dispersion_trend(vst: bool = False) -> None:
        if vst or dds.fit_type != "parametric":
            original(vst)
            return
        if "genewise_dispersions" not in dds.var:
            dds.fit_genewise_dispersions()
        if _r_parametric_trend(dds):
            dds.uns["trend_method"] = "R parametricDispersionFit"
        else:
            original(vst)
            dds.uns["trend_method"] = f"pydeseq2 fallback ({dds.uns.get('disp_function_type')})"

    dds.fit_dispersion_trend = fit_dispersion_trend


def _clip_mu_for_dispersions(inference, min_mu: float):
    """A copy of ``inference`` whose ``alpha_mle`` sees ``mu`` floored at ``min_mu``.

    R floors the fitted means at ``minmu = 0.5`` before every dispersion fit; pydeseq2's GLM path
    passes unfloored means, and a gene whose fitted mean is 0 in many samples then makes the
    Cox-Reid matrix singular (``LinAlgError``) in designs with many levels (e.g. patients).
    """
    import copy

    wrapped = copy.copy(inference)
    original = inference.alpha_mle

    def alpha_mle(*args, **kwargs):
        if "mu" in kwargs:
            kwargs["mu"] = np.maximum(kwargs["mu"], min_mu)
        return original(*args, **kwargs)

    wrapped.alpha_mle = alpha_mle
    return wrapped


def _use_r_prior_variance(dds) -> None:
    """Make ``dds.fit_dispersion_prior`` follow R for residual df <= 3 (see :func:`prior_var_low_df`)."""
    original = dds.fit_dispersion_prior

    def fit_dispersion_prior() -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="As the residual degrees of freedom")
            original()
        df = dds.n_obs - dds.obsm["design_matrix"].shape[1]
        if 0 < df <= 3:
            var = dds[:, dds.non_zero_genes].var
            gw = var["genewise_dispersions"].to_numpy()
            res = np.log(gw) - np.log(var["fitted_dispersions"].to_numpy())
            dds.uns["prior_disp_var"] = np.asarray(prior_var_low_df(res[gw >= 100 * dds.min_disp], df))
            dds.uns["prior_disp_var_method"] = "R low-df Monte Carlo"

    dds.fit_dispersion_prior = fit_dispersion_prior


def deseq(
    adata: AnnData,
    *,
    group_key: str = "dormsig_group",
    test: str,
    reference: str,
    covariates: Sequence[str] = (),
    design: str | None = None,
    layer: str | None = "counts",
    size_factors: Literal["ratio", "poscounts", "iterative"] = "ratio",
    cooks: bool = True,
    independent_filter: bool = True,
    alpha: float = 0.05,
    shrink: bool = False,
    subset: bool = False,
    round_counts: bool = False,
    force: bool = False,
    threads: int | None = None,
    inference: Any = "fast",
    key_added: str = "dormsig_de",
) -> pd.DataFrame:
    """Wald test of ``test`` against ``reference`` with DESeq2's model (pydeseq2).

    Parameters
    ----------
    adata
        Samples x genes (bulk, or the output of :func:`dormsig.de.pseudobulk`) with raw counts in
        ``layers[layer]`` (``layer=None``: ``X``).
    group_key
        ``obs`` column with the groups: from :func:`dormsig.de.define_groups`, or a sample-sheet
        column for sorted populations (e.g. ``"population"``).
    test, reference
        Levels of ``group_key``; positive log2 fold change = higher in ``test``.
    covariates
        ``obs`` columns added before the group in the default design (``~ cov1 + ... + group``);
        strings/categories are factors, numbers are continuous.
    design
        A formula over ``obs`` columns (e.g. ``"~ batch + dormsig_group"``) replacing the default;
        it must contain ``group_key``.
    size_factors
        ``"ratio"`` (R default, median of ratios), ``"poscounts"`` (R, for sparse data) or
        ``"iterative"``.
    cooks
        Cook's-distance outlier replacement/refit and p-value filtering, as in R (see module notes).
    independent_filter, alpha
        R's independent filtering on baseMean, optimised for ``alpha``; ``False``: plain BH.
    shrink
        Add ``log2FoldChange_shrunk`` (apeglm prior, pydeseq2 ``lfc_shrink``); tests use the MLE.
    subset
        Fit only the ``test`` and ``reference`` samples (default: all samples inform the
        dispersions, as in R).
    round_counts
        Round non-integer (estimated) counts instead of refusing them.
    force
        Run even when the observations look like single cells (not recommended: cells are not
        independent replicates; use :func:`dormsig.de.pseudobulk`).
    threads
        Worker count for the inference.
    inference
        ``"fast"`` (dormsig's vectorised inference; pydeseq2's when unavailable), ``"pydeseq2"``
        or a pydeseq2 ``Inference`` instance.
    key_added
        Results go to ``uns["dormsig"][key_added]`` (``"table"`` + provenance); normalised counts
        and VST go to ``layers["normalised"]`` and ``layers["vst"]``, size factors to
        ``obs["size_factors"]``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``var_names``; columns gene, baseMean, log2FoldChange, lfcSE, stat, pvalue, padj
        (+ log2FoldChange_shrunk, lfcSE_shrunk with ``shrink=True``).

    Raises
    ------
    InputError
        Missing layer/column, non-integer or negative counts, every gene with a zero under ``"ratio"``.
    DesignError
        Unknown levels, fewer than 2 replicates in ``test`` or ``reference``, a rank-deficient design,
        single cells as replicates (without ``force``).
    """
    what = f"deseq({group_key}: {test} vs {reference})"
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    if size_factors not in ("ratio", "poscounts", "iterative"):
        raise ConfigError(f"{what}: size_factors must be 'ratio', 'poscounts' or 'iterative', not {size_factors!r}")
    for col in [group_key, *covariates]:
        if col not in adata.obs:
            raise InputError(f"{what}: {col!r} is not an obs column (columns: {list(adata.obs.columns)})")
    groups = adata.obs[group_key]
    if groups.isna().any():
        raise DesignError(f"{what}: {int(groups.isna().sum())} observations have no group in obs[{group_key!r}]")
    groups = groups.astype(str)
    for level in (test, reference):
        if level not in set(groups):
            raise DesignError(f"{what}: level {level!r} not in obs[{group_key!r}] (levels: {sorted(set(groups))})")
    if test == reference:
        raise DesignError(f"{what}: test and reference are the same level")
    n_per = groups.value_counts()
    for level in (test, reference):
        if n_per[level] < 2:
            raise DesignError(
                f"{what}: group {level!r} has {int(n_per[level])} replicate(s); DESeq2 needs at least 2 per group"
            )

    keep = groups.isin([test, reference]).to_numpy() if subset else np.ones(adata.n_obs, dtype=bool)
    counts = check_counts(_dense_counts(adata, layer, what)[keep], round_counts=round_counts, what=what)
    cells_as_replicates = looks_single_cell(adata, counts)
    if not force and cells_as_replicates:
        raise DesignError(
            f"{what}: {adata.n_obs} observations look like single cells; cells of one sample are not independent "
            "replicates (inflated significance): aggregate with dormsig.de.pseudobulk(sample_key=...) first, "
            "or pass force=True"
        )
    if size_factors == "ratio" and counts.size and (counts == 0).any(axis=0).all():
        raise InputError(
            f"{what}: every gene has a zero count in some sample, so median-of-ratios size factors cannot be "
            "computed (as in R); use size_factors='poscounts'"
        )

    # Metadata with formula-safe names; the group's reference level comes first so that it is the
    # baseline of the design (needed for apeglm shrinkage of the test coefficient).
    obs = adata.obs.loc[keep]
    if design is None:
        names = {c: _safe_name(c) for c in [*covariates, group_key]}
        if len(set(names.values())) != len(names):
            raise InputError(f"{what}: covariate names collide after sanitising: {names}")
        meta = pd.DataFrame(index=obs.index.astype(str))
        for col, safe in names.items():
            meta[safe] = _factor(obs[col], what) if col != group_key else groups[keep].to_numpy()
        gname = names[group_key]
        formula = "~ " + " + ".join(names[c] for c in [*covariates, group_key])
    else:
        if not re.search(rf"\b{re.escape(group_key)}\b", design):
            raise DesignError(f"{what}: design {design!r} does not contain the group column {group_key!r}")
        meta = pd.DataFrame(index=obs.index.astype(str))
        for col in obs.columns:
            if re.search(rf"\b{re.escape(str(col))}\b", design) and col != group_key:
                meta[col] = _factor(obs[col], what)
        meta[group_key] = groups[keep].to_numpy()
        gname, formula = group_key, design
    others = sorted(set(meta[gname]) - {test, reference})
    meta[gname] = pd.Categorical(meta[gname], categories=[reference, test, *others])
    meta[gname] = meta[gname].cat.remove_unused_categories()

    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.ds import DeseqStats

    inf, inf_label = _make_inference(inference, threads)
    inf = _clip_mu_for_dispersions(inf, 0.5)
    counts_df = pd.DataFrame(counts, index=meta.index, columns=adata.var_names.astype(str))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The design matrix is not full rank")
            dds = DeseqDataSet(
                counts=counts_df, metadata=meta, design=formula, refit_cooks=cooks, min_replicates=7,
                size_factors_fit_type=size_factors, inference=inf, quiet=True,
            )
    except DesignError:
        raise
    except Exception as exc:  # formulaic errors: unknown column, bad formula
        raise DesignError(f"{what}: design {formula!r} cannot be built ({type(exc).__name__}: {exc})") from None
    _use_r_trend(dds)
    _use_r_prior_variance(dds)
    dm = dds.obsm["design_matrix"]
    if np.linalg.matrix_rank(dm.to_numpy(dtype=np.float64)) < dm.shape[1]:
        raise DesignError(
            f"{what}: design {formula!r} is not full rank; confounded terms: {', '.join(_confounded_columns(dm))} "
            "(drop a covariate that is nested in or identical to another, or in the groups)"
        )
    if dm.shape[0] <= dm.shape[1]:
        raise DesignError(f"{what}: design {formula!r} has {dm.shape[1]} coefficients for {dm.shape[0]} samples")

    with warnings.catch_warnings():
        dds.deseq2()
        stats = DeseqStats(
            dds, contrast=[gname, test, reference], alpha=alpha, cooks_filter=cooks,
            independent_filter=independent_filter, inference=inf, quiet=True,
        )
        stats.summary()
    res = stats.results_df.copy()
    all_zero = counts.sum(axis=0) == 0
    res.loc[all_zero, ["log2FoldChange", "lfcSE", "stat", "pvalue", "padj"]] = np.nan
    res.loc[all_zero, "baseMean"] = 0.0
    res.index = adata.var_names
    res.insert(0, "gene", adata.var_names.astype(str))
    res = res[list(RESULT_COLUMNS)]

    if shrink:
        coeff = f"{gname}[T.{test}]"
        if coeff not in stats.LFC.columns:
            raise DesignError(f"{what}: no coefficient {coeff!r} to shrink (columns {list(stats.LFC.columns)})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            stats.lfc_shrink(coeff=coeff)
        shrunk = stats.LFC[coeff].to_numpy() / np.log(2)
        se_shrunk = stats.SE.to_numpy() / np.log(2)
        shrunk[all_zero] = np.nan
        se_shrunk[all_zero] = np.nan
        res["log2FoldChange_shrunk"] = shrunk
        res["lfcSE_shrunk"] = se_shrunk

    sf = dds.obs["size_factors"].to_numpy(dtype=np.float64)
    normed = counts / sf[:, None]
    vst = _vst(normed, dds)
    if keep.all():
        adata.layers["normalised"] = normed.astype(np.float32)
        adata.layers["vst"] = vst.astype(np.float32)
        adata.obs["size_factors"] = sf
    else:  # only the fitted samples have values
        for name, val in (("normalised", normed), ("vst", vst)):
            full = np.full(adata.shape, np.nan, dtype=np.float32)
            full[keep] = val
            adata.layers[name] = full
        full_sf = np.full(adata.n_obs, np.nan)
        full_sf[keep] = sf
        adata.obs["size_factors"] = full_sf

    n_sig = int((res["padj"] < alpha).sum())
    rec = record(
        "de",
        method="pydeseq2 Wald test",
        params={
            "group_key": group_key, "test": test, "reference": reference, "covariates": covariates,
            "design": design, "layer": layer, "size_factors": size_factors, "cooks": cooks,
            "independent_filter": independent_filter, "alpha": alpha, "shrink": shrink, "subset": subset,
            "round_counts": round_counts, "force": force, "threads": threads, "inference": inf_label,
        },
        contrast=f"{group_key}: {test} vs {reference}",
        contrast_ran=[gname, test, reference],
        # forced DE on single cells: p-values treat cells of one sample as independent replicates
        cells_as_replicates=bool(cells_as_replicates),
        formula=formula,
        design_columns=list(dm.columns),
        n_samples=int(keep.sum()),
        n_per_group={str(k): int(v) for k, v in pd.Series(meta[gname]).value_counts().items()},
        size_factors=dict(zip(meta.index, sf.tolist(), strict=True)),
        n_genes=int(adata.n_vars),
        n_all_zero=int(all_zero.sum()),
        n_outlier_replaced=int(dds.var["replaced"].sum()) if "replaced" in dds.var else 0,
        n_cooks_filtered=int(np.asarray(dds.cooks_outlier()).sum()) if cooks else 0,
        n_significant=n_sig,
        prior_disp_var=float(np.asarray(dds.uns["prior_disp_var"])),
        prior_disp_var_method=dds.uns.get("prior_disp_var_method", "MAD"),
        trend_method=dds.uns.get("trend_method", ""),
        trend_coeffs=[float(x) for x in np.asarray(dds.uns.get("trend_coeffs", [np.nan, np.nan]))],
        pydeseq2_version=_pydeseq2_version(),
        sign="positive log2FoldChange = higher in test than reference",
    )
    attach(adata, key_added, rec)
    adata.uns["dormsig"][key_added]["table"] = res
    return res


def _factor(col: pd.Series, what: str) -> np.ndarray | pd.Series:
    if col.isna().any():
        raise DesignError(f"{what}: covariate {col.name!r} has {int(col.isna().sum())} missing values")
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64)
    return col.astype(str).to_numpy()


def _pydeseq2_version() -> str:
    from importlib.metadata import version

    return version("pydeseq2")
