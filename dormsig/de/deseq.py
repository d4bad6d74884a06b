"""Bulk (or pseudobulk) differential expression with pydeseq2, fitted as R DESeq2 1.38 fits.

:func:`deseq` validates everything that can be checked cheaply (counts are integers, the
design has full rank, each contrast group has >= 2 replicates, the data are not single cells)
before the long fit, fits the model with :class:`dormsig.de.r_dds.RDeseqDataSet` (pydeseq2's
``DeseqDataSet`` with R's dispersion stages) and :class:`dormsig.de.r_inference.RInference`
(R's GLM and dispersion numerics), and returns one table in R's column names plus R's per-gene
diagnostics (``betaConv``, ``betaIter``, ``optim``).

Where pydeseq2 (0.5.4) and R DESeq2 (1.38) differ, dormsig follows R; see those two modules for
the list. The differences that change results on real data:

- IRLS divergence and the optimiser fallback on the log2 scale within +-30 (pydeseq2: natural
  log, fold changes up to +-43) and standard errors at means floored at 0.5 (pydeseq2: unfloored,
  p = 0 for a coefficient at its bound). On the CTC design (``~ patient + group``) this alone
  moved hundreds of genes.
- R's ``cleanContrast``: a gene with zero counts in every sample of both contrasted groups gets
  log2FoldChange 0, stat 0 and p-value 1 (its lfcSE is kept), as in R.
- Dispersions: R's line search and grid fallbacks, R's MAP start, R's parametric trend (genes at the
  dispersion floor excluded) and R's low-df prior variance.

The other R defaults, which pydeseq2 already shares: Cook's distance (replacement and refit with
>= 7 replicates; p-values of remaining outliers set to NaN), independent filtering over all genes,
all-zero genes with baseMean 0 and NaN elsewhere. ``size_factors="ratio"`` refuses data in which
every gene has a zero (as R); use ``"poscounts"`` then. The VST in ``layers["vst"]`` uses the
model's dispersion trend (R ``vst(blind=FALSE)``).

``inference="pydeseq2"`` or ``"fast"`` runs plain pydeseq2 (its own numerics) for comparison.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from threadpoolctl import threadpool_limits

from dormsig.de.contrast import Contrast
from dormsig.de.r_filter import r_stats_class
from dormsig.errors import ConfigError, DesignError, InputError
from dormsig.provenance import attach, record

log = logging.getLogger("dormsig")

RESULT_COLUMNS = ("gene", "baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj")

#: Above this many observations a matrix is taken for single cells (replicates must be samples).
MAX_BULK_OBS = 200


def _make_inference(name: Any, threads: int | None, progress=None):
    """Return ``(inference, label, dataset class)`` for ``name``.

    ``"r"`` (default): :class:`~dormsig.de.r_inference.RInference` with
    :class:`~dormsig.de.r_dds.RDeseqDataSet` (R DESeq2's numerics). ``"fast"``: dormsig's vectorised
    copy of pydeseq2's numerics; ``"pydeseq2"``: pydeseq2's ``DefaultInference``; both with plain
    pydeseq2 ``DeseqDataSet`` (for comparison). A pydeseq2 ``Inference`` instance is used as is.
    """
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.inference import Inference

    from dormsig.de.r_dds import RDeseqDataSet
    from dormsig.de.r_inference import RInference

    if isinstance(name, RInference):
        return name, "r", RDeseqDataSet
    if isinstance(name, Inference):
        return name, type(name).__name__, DeseqDataSet
    if name == "r":
        return RInference(threads=threads, progress=progress), "r", RDeseqDataSet
    if name == "pydeseq2":
        return DefaultInference(n_cpus=threads), "pydeseq2", DeseqDataSet
    if name == "fast":
        from dormsig.de.inference import FastInference

        return FastInference(threads=threads), "fast", DeseqDataSet
    raise ConfigError(f"deseq: inference must be 'r', 'fast', 'pydeseq2' or a pydeseq2 Inference, not {name!r}")


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


def deseq(
    adata: AnnData,
    *,
    group_key: str = "dormsig_group",
    test: str | None = None,
    reference: str | None = None,
    contrast: Contrast | None = None,
    covariates: Sequence[str] = (),
    test_type: Literal["wald", "lrt"] = "wald",
    reduced: str | None = None,
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
    inference: Any = "r",
    key_added: str = "dormsig_de",
    progress: Callable[[str], None] | None = None,
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
    contrast
        The same as one :class:`~dormsig.de.contrast.Contrast` (replaces ``group_key``, ``test`` and ``reference``).
    test_type, reduced
        ``"wald"`` (default): Wald test of the ``test`` vs ``reference`` coefficient. ``"lrt"``: R's
        likelihood-ratio test (``DESeq(test = "LRT", reduced = ...)``) of the design against the
        nested ``reduced`` formula (default: the design without the group column), for a factor
        with several levels at once; ``stat`` is the LRT statistic (chi-squared, df = the
        coefficients dropped), ``log2FoldChange`` stays the ``test`` vs ``reference`` estimate of the
        full model, as R's ``results()`` reports it. Needs ``inference="r"``.
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
    progress
        Called with the name of each fitting stage as it starts (the CLI shows it).
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
    if contrast is not None:
        group_key, test, reference = contrast.factor, contrast.test, contrast.reference
    if test is None or reference is None:
        raise ConfigError("deseq: give test= and reference= levels, or contrast=")
    what = f"deseq({group_key}: {test} vs {reference})"
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    groups, keep, counts, cells_as_replicates = _validate(
        adata, group_key=group_key, test=test, reference=reference, covariates=covariates, test_type=test_type,
        reduced=reduced, size_factors=size_factors, layer=layer, subset=subset, round_counts=round_counts,
        force=force, what=what)
    meta, gname, formula = _design(adata.obs.loc[keep], groups[keep], group_key=group_key, test=test,
                                   reference=reference, covariates=covariates, design=design, what=what)
    # One BLAS thread for the whole fit: OpenBLAS splits a matrix product differently with 1 or 2 threads,
    # which changes its last bits, and genes refitted along flat likelihoods turn those into visible
    # differences (log2FC up to 0.15, betaConv in 22 of 2,000 CTC genes between OPENBLAS_NUM_THREADS=1, as
    # Snakemake sets for a one-thread job, and the default). The kernels parallelise over genes with numba.
    with threadpool_limits(limits=1, user_api="blas"):
        fit = _fit(counts, meta, adata.var_names, formula=formula, gname=gname, test=test, reference=reference,
                   test_type=test_type, reduced=reduced, size_factors=size_factors, cooks=cooks,
                   independent_filter=independent_filter, alpha=alpha, inference=inference, threads=threads,
                   progress=progress, what=what)
        res = _results(fit, counts, adata.var_names, gname=gname, test=test, shrink=shrink, what=what)
    _store(adata, fit, res, counts, keep, meta, key_added=key_added, params={
        "group_key": group_key, "test": test, "reference": reference, "covariates": covariates,
        "design": design, "layer": layer, "size_factors": size_factors, "cooks": cooks,
        "independent_filter": independent_filter, "alpha": alpha, "shrink": shrink, "subset": subset,
        "round_counts": round_counts, "force": force, "threads": threads, "inference": fit.inf_label,
        "test_type": test_type, "reduced": reduced,
    }, gname=gname, formula=formula, cells_as_replicates=cells_as_replicates)
    return res


@dataclass
class _Fit:
    """What the fit hands to the results and to the record."""

    dds: Any
    stats: Any
    dm: pd.DataFrame
    inf_label: str
    test_type: str
    both_zero: np.ndarray


def _validate(adata: AnnData, *, group_key: str, test: str, reference: str, covariates: list[str], test_type: str,
              reduced: str | None, size_factors: str, layer: str | None, subset: bool, round_counts: bool,
              force: bool, what: str) -> tuple[pd.Series, np.ndarray, np.ndarray, bool]:
    """The user's errors, before any work: options, columns, levels, replicates, counts, single cells."""
    if test_type not in ("wald", "lrt"):
        raise ConfigError(f"{what}: test_type must be 'wald' or 'lrt', not {test_type!r}")
    if test_type == "wald" and reduced is not None:
        raise ConfigError(f"{what}: reduced= is for test_type='lrt'")
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
    return groups, keep, counts, cells_as_replicates


def _design(obs: pd.DataFrame, groups: pd.Series, *, group_key: str, test: str, reference: str,
            covariates: list[str], design: str | None, what: str) -> tuple[pd.DataFrame, str, str]:
    """Metadata with formula-safe names and the formula; the reference level first (the baseline,
    needed for apeglm shrinkage of the test coefficient)."""
    meta = pd.DataFrame(index=obs.index.astype(str))
    if design is None:
        names = {c: _safe_name(c) for c in [*covariates, group_key]}
        if len(set(names.values())) != len(names):
            raise InputError(f"{what}: covariate names collide after sanitising: {names}")
        for col, safe in names.items():
            meta[safe] = _factor(obs[col], what) if col != group_key else groups.to_numpy()
        gname = names[group_key]
        formula = "~ " + " + ".join(names[c] for c in [*covariates, group_key])
    else:
        if not re.search(rf"\b{re.escape(group_key)}\b", design):
            raise DesignError(f"{what}: design {design!r} does not contain the group column {group_key!r}")
        for col in obs.columns:
            if re.search(rf"\b{re.escape(str(col))}\b", design) and col != group_key:
                meta[col] = _factor(obs[col], what)
        meta[group_key] = groups.to_numpy()
        gname, formula = group_key, design
    others = sorted(set(meta[gname]) - {test, reference})
    meta[gname] = pd.Categorical(meta[gname], categories=[reference, test, *others])
    meta[gname] = meta[gname].cat.remove_unused_categories()
    return meta, gname, formula


def _check_design_matrix(dm: pd.DataFrame, formula: str, what: str) -> None:
    if np.linalg.matrix_rank(dm.to_numpy(dtype=np.float64)) < dm.shape[1]:
        raise DesignError(
            f"{what}: design {formula!r} is not full rank; confounded terms: {', '.join(_confounded_columns(dm))} "
            "(drop a covariate that is nested in or identical to another, or in the groups)"
        )
    if dm.shape[0] <= dm.shape[1]:
        raise DesignError(f"{what}: design {formula!r} has {dm.shape[1]} coefficients for {dm.shape[0]} samples")
    for col in dm.columns:  # a covariate level carried by one sample is fitted exactly: no information
        vals = dm[col].to_numpy()
        if set(np.unique(vals)) <= {0, 1} and vals.sum() == 1 and col != "Intercept":
            log.warning("%s: design column %r is carried by one sample only; that sample is fitted exactly "
                        "and adds nothing to the dispersion estimates; merge that level with another or drop the "
                        "sample", what, col)


def _fit(counts: np.ndarray, meta: pd.DataFrame, var_names: pd.Index, *, formula: str, gname: str, test: str,
         reference: str, test_type: str, reduced: str | None, size_factors: str, cooks: bool,
         independent_filter: bool, alpha: float, inference: Any, threads: int | None,
         progress: Callable[[str], None] | None, what: str) -> _Fit:
    """The DESeq2 fit and test (Wald or LRT), with R's cleanContrast; statistics not yet tabulated."""
    from pydeseq2.ds import DeseqStats

    inf, inf_label, dds_class = _make_inference(inference, threads, progress)
    counts_df = pd.DataFrame(counts, index=meta.index, columns=var_names.astype(str))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The design matrix is not full rank")
            extra = {"cooks_mu": "dispersion"} if test_type == "lrt" and inf_label == "r" else {}
            dds = dds_class(
                counts=counts_df, metadata=meta, design=formula, refit_cooks=cooks, min_replicates=7,
                size_factors_fit_type=size_factors, inference=inf, quiet=True, **extra,
            )
    except DesignError:
        raise
    except Exception as exc:  # formulaic errors: unknown column, bad formula
        raise DesignError(f"{what}: design {formula!r} cannot be built ({type(exc).__name__}: {exc})") from None
    dm = dds.obsm["design_matrix"]
    _check_design_matrix(dm, formula, what)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if progress is not None:
            progress("size factors and gene-wise dispersions")
        dds.deseq2()
        if progress is not None:
            progress("Wald test")
        stats_class = r_stats_class() if inf_label == "r" else DeseqStats  # R's independent filtering
        stats = stats_class(
            dds, contrast=[gname, test, reference], alpha=alpha, cooks_filter=cooks,
            independent_filter=independent_filter, inference=inf, quiet=True,
        )
        stats.run_wald_test()
        if test_type == "lrt":
            if progress is not None:
                progress("likelihood-ratio test")
            lrt_stat, lrt_p, _ = _lrt(dds, inf, _reduced_columns(dm, reduced, gname, formula, what), what)
            stats.statistics = pd.Series(lrt_stat, index=stats.statistics.index)
            stats.p_values = pd.Series(lrt_p, index=stats.p_values.index)
        # R cleanContrast: zero in every sample of both groups -> LFC 0, stat 0, p 1 (before filtering/BH)
        in_contrast = np.asarray(meta[gname].isin([test, reference]))
        both_zero = (counts[in_contrast] == 0).all(axis=0) & (counts.sum(axis=0) > 0)
        if "replaced" in dds.var and "_normed_means" in dds.var:
            # R: counts replaced (Cook's) down to all zeros -> LFC 0, SE 0, stat 0, p 1
            now_zero = dds.var["replaced"].fillna(False).to_numpy(dtype=bool) & (
                dds.var["_normed_means"].to_numpy() == 0) & (counts.sum(axis=0) > 0)
            both_zero |= now_zero
        if test_type == "wald":  # R sets stat and p only for the Wald test; the LRT keeps its own
            stats.p_values = pd.Series(np.where(both_zero, 1.0, stats.p_values), index=stats.p_values.index)
            stats.statistics = pd.Series(np.where(both_zero, 0.0, stats.statistics), index=stats.statistics.index)
        stats.summary()
    return _Fit(dds=dds, stats=stats, dm=dm, inf_label=inf_label, test_type=test_type, both_zero=both_zero)


def _results(fit: _Fit, counts: np.ndarray, var_names: pd.Index, *, gname: str, test: str, shrink: bool,
             what: str) -> pd.DataFrame:
    """The results table: R's columns, per-gene fit diagnostics, shrunken fold changes beside the MLE."""
    dds, stats, both_zero = fit.dds, fit.stats, fit.both_zero
    res = stats.results_df.copy()
    res.loc[both_zero, "log2FoldChange"] = 0.0
    all_zero = counts.sum(axis=0) == 0
    res.loc[all_zero, ["log2FoldChange", "lfcSE", "stat", "pvalue", "padj"]] = np.nan
    res.loc[all_zero, "baseMean"] = 0.0
    res.index = var_names
    res.insert(0, "gene", var_names.astype(str))
    res = res[list(RESULT_COLUMNS)]
    if "betaConv" in dds.var:  # R's per-gene fit diagnostics (RDeseqDataSet)
        for col in ("betaConv", "betaIter", "optim"):
            res[col] = dds.var[col].to_numpy()
    res["contrast_all_zero"] = both_zero
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
    return res


def _store(adata: AnnData, fit: _Fit, res: pd.DataFrame, counts: np.ndarray, keep: np.ndarray, meta: pd.DataFrame,
           *, key_added: str, params: dict[str, Any], gname: str, formula: str, cells_as_replicates: bool) -> None:
    """Normalised counts and VST in layers, size factors in obs, the table and its provenance in uns."""
    dds, dm = fit.dds, fit.dm
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
    all_zero = counts.sum(axis=0) == 0
    test, reference, group_key = params["test"], params["reference"], params["group_key"]
    rec = record(
        "de",
        method="likelihood-ratio test (R nbinomLRT)" if fit.test_type == "lrt" else "Wald test",
        params=params,
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
        n_cooks_filtered=int(np.asarray(dds.cooks_outlier()).sum()) if params["cooks"] else 0,
        n_significant=int((res["padj"] < params["alpha"]).sum()),
        prior_disp_var=float(np.asarray(dds.uns["prior_disp_var"])),
        prior_disp_var_method=dds.uns.get("prior_disp_var_method", "MAD"),
        trend_method=dds.uns.get("trend_method", ""),
        trend_coeffs=[float(x) for x in np.asarray(dds.uns.get("trend_coeffs", [np.nan, np.nan]))],
        pydeseq2_version=_pydeseq2_version(),
        n_not_converged=int((res["betaConv"] == False).sum()) if "betaConv" in res else None,  # noqa: E712
        n_optim_refit=int((res["optim"] == True).sum()) if "optim" in res else None,  # noqa: E712
        n_contrast_all_zero=int(fit.both_zero.sum()),
        sign="positive log2FoldChange = higher in test than reference",
    )
    attach(adata, key_added, rec)
    adata.uns["dormsig"][key_added]["table"] = res


def _factor(col: pd.Series, what: str) -> np.ndarray | pd.Series:
    if col.isna().any():
        raise DesignError(f"{what}: covariate {col.name!r} has {int(col.isna().sum())} missing values")
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64)
    return col.astype(str).to_numpy()


def _pydeseq2_version() -> str:
    from importlib.metadata import version

    return version("pydeseq2")


def _reduced_columns(dm: pd.DataFrame, reduced: str | None, group_key: str, formula: str, what: str) -> list[str]:
    """Columns of the full design matrix that make the nested ``reduced`` design (same coding)."""
    full_terms = [t.strip() for t in formula.lstrip().lstrip("~").split("+") if t.strip()]
    if reduced is None:
        terms = [t for t in full_terms if t != group_key]
    else:
        if not reduced.strip().startswith("~"):
            raise DesignError(f"{what}: reduced design {reduced!r} is not a formula like '~ patient'")
        terms = [t.strip() for t in reduced.strip()[1:].split("+") if t.strip() and t.strip() != "1"]
    bad = [t for t in terms if t not in full_terms or ":" in t]
    if bad:
        raise DesignError(f"{what}: reduced design term(s) {', '.join(bad)} are not main-effect terms of {formula!r}")
    cols = [c for c in dm.columns if c == "Intercept" or c.split("[", 1)[0] in terms]
    if len(cols) >= dm.shape[1]:
        raise DesignError(f"{what}: the reduced design drops no coefficient of {formula!r}")
    return cols


def _lrt(dds: Any, inf: Any, reduced_cols: list[str], what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """R ``nbinomLRT``: 2 x (log likelihood of the full fit - that of the reduced fit), chi-squared p-value.

    The full fit is the Wald test's (the same ``fitNbinomGLMs``); the reduced one is fitted with the
    same size factors and final dispersions, on the counts with Cook's outliers replaced for the
    genes R refits. Log likelihoods use the unfloored means, except for genes refitted by the
    optimiser, whose R computes at the means floored at 0.5 (``fitNbinomGLMsOptim``): kept.
    """
    from scipy.special import gammaln
    from scipy.stats import chi2

    from dormsig.de.r_inference import RInference

    if not isinstance(inf, RInference):
        raise ConfigError(f"{what}: the likelihood-ratio test needs inference='r'")
    dm = dds.obsm["design_matrix"]
    x_full = dm.to_numpy(np.float64)
    x_red = dm[reduced_cols].to_numpy(np.float64)
    counts = np.asarray(dds.X, dtype=np.float64).copy()
    refit = getattr(dds, "counts_to_refit", None)
    if refit is not None and "replaced" in dds.var and bool(dds.var["replaced"].any()):
        # replaced genes that became all zero are dropped from counts_to_refit (and not refitted)
        where = dds.var_names.get_indexer(refit.var_names)
        counts[:, where] = np.asarray(refit.X, dtype=np.float64)
    nz = dds.var["non_zero"].to_numpy(dtype=bool)
    sf = dds.obs["size_factors"].to_numpy(np.float64)
    disp = dds.var["dispersions"].to_numpy(np.float64)[nz]
    y = counts[:, nz]
    with inf.final_fit():
        red = inf.fit_glm(y, sf, x_red, disp)
    beta_full = dds.varm["LFC"].to_numpy(np.float64)[nz]
    mu_full = sf[:, None] * np.exp(x_full @ beta_full.T)
    mu_red = np.array(red["mu"], dtype=np.float64)
    for mu, optim in ((mu_full, dds.var["optim"].fillna(False).to_numpy(dtype=bool)[nz] if "optim" in dds.var else None),
                      (mu_red, np.asarray(red["optim"], dtype=bool))):
        if optim is not None and optim.any():
            mu[:, optim] = np.maximum(mu[:, optim], 0.5)

    def loglik(mu: np.ndarray) -> np.ndarray:
        r = 1.0 / disp[None, :]
        return (gammaln(y + r) - gammaln(r) - gammaln(y + 1.0) + r * np.log(r / (r + mu))
                + y * np.log(mu / (r + mu))).sum(axis=0)

    df = x_full.shape[1] - x_red.shape[1]
    stat = np.full(dds.n_vars, np.nan)
    stat[nz] = 2.0 * (loglik(mu_full) - loglik(mu_red))
    pval = np.full(dds.n_vars, np.nan)
    pval[nz] = chi2.sf(stat[nz], df)
    return stat, pval, df
