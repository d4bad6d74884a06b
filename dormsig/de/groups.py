"""Expression groups for the NOTCH2/NOTCH1 contrasts.

:func:`define_groups` labels every cell (or sample) from the expression of one or two genes,
optionally with thresholds computed within each sample (``by=``), or copies the groups of a
sorted-population sample sheet (``from_column=``). Every observation gets a label; nothing is
dropped.

Thresholds are taken on normalised expression (``log1p`` of library-size-normalised counts), so
that a deep library does not make a cell "high"; a gene must be detected in at least
``min_detection`` of the observations to define groups. The record says what the groups rest on
and warns when they are hard to defend: a threshold of 0 (then "high" means any count at all) or
groups whose median library sizes differ by more than 1.5x (then they partly sort observations
by sequencing depth).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from dormsig.errors import DesignError, InputError
from dormsig.provenance import attach, record

DOUBLE_HIGH = "double_high"
DOUBLE_LOW = "double_low"
#: A gene must be non-zero in at least this fraction of the observations to define groups.
MIN_DETECTION = 0.1
#: Groups whose median library sizes differ by more than this factor are warned about.
MAX_LIBRARY_RATIO = 1.5


def gene_vector(adata: AnnData, gene: str, layer: str | None = None, *, what: str = "adata") -> np.ndarray:
    """Dense float vector of one gene's values from ``X`` or ``layers[layer]``.

    Raises :class:`~dormsig.errors.InputError` naming the gene (and a case-insensitive
    near match, if there is one) when it is absent.
    """
    if gene not in adata.var_names:
        lower = {str(v).upper(): v for v in adata.var_names}
        hint = f" (did you mean {lower[gene.upper()]!r}?)" if gene.upper() in lower else ""
        raise InputError(
            f"{what}: gene {gene!r} is not in var_names{hint}; check that the gene identifiers are "
            "symbols (run dormsig.pp.harmonise_genes) and the species is right"
        )
    if layer is not None and layer not in adata.layers:
        raise InputError(f"{what}: layer {layer!r} not found (layers: {sorted(adata.layers)})")
    idx = adata.var_names.get_loc(gene)
    if not isinstance(idx, int | np.integer):
        raise InputError(f"{what}: gene {gene!r} occurs more than once in var_names; harmonise first")
    mat = adata.X if layer is None else adata.layers[layer]
    col = mat[:, idx]
    col = col.toarray() if sp.issparse(col) else np.asarray(col)
    return col.ravel().astype(np.float64)


def _mixture_threshold(x: np.ndarray, *, n_iter: int = 200) -> float:
    """Threshold between the two components of a 1-D two-Gaussian mixture fitted by EM.

    Deterministic: initialised at the 25th/75th percentiles. The threshold is the smallest
    value at which the upper component's posterior reaches 0.5 (between the two means);
    when the data cannot support two components (fewer than two distinct values), the
    threshold is the maximum, so that every observation is "low".
    """
    x = np.asarray(x, dtype=np.float64)
    if np.unique(x).size < 2:
        return float(x.max()) if x.size else 0.0
    mu = np.array([np.percentile(x, 25), np.percentile(x, 75)])
    if mu[0] == mu[1]:
        mu = np.array([x.min(), x.max()])
    var = np.full(2, max(x.var(), 1e-6))
    w = np.array([0.5, 0.5])
    floor = max(x.var() * 1e-4, 1e-8)  # keeps a component on a point mass (zeros) from collapsing
    for _ in range(n_iter):
        dens = w / np.sqrt(2 * np.pi * var) * np.exp(-((x[:, None] - mu) ** 2) / (2 * var))
        tot = dens.sum(axis=1, keepdims=True)
        tot[tot == 0] = 1e-300
        resp = dens / tot
        nk = resp.sum(axis=0) + 1e-12
        new_mu = (resp * x[:, None]).sum(axis=0) / nk
        var = np.maximum((resp * (x[:, None] - new_mu) ** 2).sum(axis=0) / nk, floor)
        w = nk / nk.sum()
        if np.allclose(new_mu, mu, rtol=0, atol=1e-10):
            mu = new_mu
            break
        mu = new_mu
    lo, hi = np.argsort(mu)
    grid = np.linspace(mu[lo], mu[hi], 2001)
    d_lo = w[lo] / np.sqrt(var[lo]) * np.exp(-((grid - mu[lo]) ** 2) / (2 * var[lo]))
    d_hi = w[hi] / np.sqrt(var[hi]) * np.exp(-((grid - mu[hi]) ** 2) / (2 * var[hi]))
    above = np.nonzero(d_hi >= d_lo)[0]
    return float(grid[above[0]]) if above.size else float(mu[hi])


def _matrix(adata: AnnData, layer: str | None):
    if layer is not None and layer not in adata.layers:
        raise InputError(f"define_groups: layer {layer!r} not found (layers: {sorted(adata.layers)})")
    return adata.X if layer is None else adata.layers[layer]


def _row_sums(mat) -> np.ndarray:
    return np.asarray(mat.sum(axis=1)).ravel().astype(np.float64)


def _is_counts(mat) -> bool:
    """Non-negative integer values (raw counts, not normalised expression)."""
    data = mat.data if sp.issparse(mat) else np.asarray(mat)
    return bool(data.size) and bool(np.all(data >= 0)) and bool(np.all(data == np.round(data)))


def _library_sizes(adata: AnnData, layer: str | None) -> tuple[np.ndarray | None, str]:
    """Raw library sizes and where they come from (None when no counts are at hand)."""
    if "counts" in adata.layers:
        return _row_sums(adata.layers["counts"]), 'layers["counts"]'
    mat = _matrix(adata, layer)
    if _is_counts(mat):
        return _row_sums(mat), "X" if layer is None else f"layers[{layer!r}]"
    return None, "no raw counts (no counts layer, values not integer)"


def _expression(adata: AnnData, genes: list[str], layer: str | None, what: str) -> tuple[dict, str]:
    """Normalised values of ``genes`` and how they were obtained.

    ``X`` (or ``layer``) is used as is when it holds normalised values; raw counts (integer values)
    are normalised here as :func:`dormsig.pp.normalise` does: ``log1p(count / library * target_sum)``
    with 1e6 for bulk-like depth (median library > 1e5) and 1e4 otherwise.
    """
    raw = {g: gene_vector(adata, g, layer, what=what) for g in genes}  # fails fast on absent genes
    mat = _matrix(adata, layer)
    source = "X" if layer is None else f"layers[{layer!r}]"
    if not _is_counts(mat):
        return raw, f"{source} as given (normalised expression)"
    lib = _row_sums(mat)
    target = 1e6 if lib.size and np.median(lib) > 1e5 else 1e4
    scale = np.divide(target, lib, out=np.zeros_like(lib), where=lib > 0)
    return ({g: np.log1p(v * scale) for g, v in raw.items()},
            f"log1p({source} counts / library size * {target:g}) (the values were raw counts)")


def looks_single_cell(adata: AnnData) -> bool:
    """True when ``adata`` holds single cells, by the rule of :func:`dormsig.de.deseq.looks_single_cell`."""
    from dormsig.de.deseq import MAX_BULK_OBS
    from dormsig.de.deseq import looks_single_cell as rule

    if adata.n_obs > MAX_BULK_OBS:
        return True
    counts = adata.layers["counts"] if "counts" in adata.layers else adata.X
    counts = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    return rule(adata, counts)


def _threshold(
    x: np.ndarray, gene: str, method: str, quantile: float, threshold: float | Mapping[str, float] | None
) -> float:
    if method == "quantile":
        return float(np.quantile(x, quantile)) if x.size else 0.0
    if method == "threshold":
        if isinstance(threshold, Mapping):
            if gene not in threshold:
                raise InputError(f"define_groups: no threshold given for gene {gene!r}")
            return float(threshold[gene])
        return float(threshold)  # type: ignore[arg-type]
    return _mixture_threshold(x)


def define_groups(
    adata: AnnData,
    high: str = "NOTCH2",
    versus: str = "NOTCH1",
    *,
    by: str | None = None,
    method: Literal["quantile", "threshold", "mixture"] = "quantile",
    layer: str | None = None,
    quantile: float = 0.5,
    threshold: float | Mapping[str, float] | None = None,
    from_column: str | None = None,
    key_added: str = "dormsig_group",
    copy: bool = False,
    min_detection: float = MIN_DETECTION,
    tumour_check: str = "auto",
    min_epithelial_cpm: float = 1000.0,
) -> AnnData | None:
    """Label every observation by the expression of ``high`` (and ``versus``).

    Two-gene contrast (``versus`` a gene): each observation is "high" for a gene when its value
    is strictly above the threshold; labels are ``<HIGH>_high`` (only ``high`` is high),
    ``<VERSUS>_high`` (only ``versus``), ``double_high`` and ``double_low``. Single-gene contrast
    (``versus="low"``): ``<HIGH>_high`` / ``<HIGH>_low``.

    Parameters
    ----------
    adata
        AnnData; values are read from ``X`` (log1p of normalised counts by convention) unless
        ``layer`` is given; raw counts there are normalised first (see :func:`_expression`).
    high, versus
        Gene symbols; ``versus="low"`` asks for the single-gene contrast.
    by
        ``obs`` column (e.g. sample or tumour): thresholds are computed within each of its levels,
        so that a deep sample does not put all its cells in the high group.
    method
        ``"quantile"``: threshold = the ``quantile`` of the gene's values (median by default);
        ``"threshold"``: a fixed value (``threshold=``, a number or ``{gene: value}``);
        ``"mixture"``: the crossing point of a two-component Gaussian mixture fitted by EM.
    from_column
        Sorted populations / sample sheets: take the groups from this ``obs`` column instead of
        thresholding expression (its values are copied as strings; missing values are refused).
    key_added
        ``obs`` column written (categorical). The thresholds, the counts per group and per
        ``by`` level are recorded in ``uns["dormsig"]["groups"]``.
    copy
        Return a modified copy instead of changing ``adata``.
    min_detection
        Each gene must be non-zero in at least this fraction of the observations (default 0.1).
    tumour_check, min_epithelial_cpm
        As in :func:`dormsig.tl.rank`: observations holding almost no tumour (epithelial) RNA
        (EPCAM+KRT8+KRT18+KRT19 < ``min_epithelial_cpm`` counts per million: platelet-rich CTC
        preparations, leukocytes) get the label ``"no_tumour_rna"`` and take no part in the
        thresholds, so that "NOTCH2-high vs NOTCH1-high" compares tumour samples, not tumour with
        platelets. ``"auto"`` steps aside for ``from_column``, log-scale data and non-epithelial
        tumours (see :mod:`dormsig.tl.epithelial`); ``"none"`` labels every observation.

    Warns
    -----
    UserWarning
        A threshold is 0 (the "high" group then means "any count"); the test and reference groups
        differ in median library size by more than 1.5x. Both are in ``uns["dormsig"]["groups"]["warnings"]``,
        with the detection of each gene, the library sizes per group and whether the observations look
        like single cells (``single_cell``: DE then needs pseudobulk samples).

    Raises
    ------
    InputError
        A gene, layer or column is absent, or a parameter is invalid.
    DesignError
        One of the two contrast groups is empty (e.g. all observations in one group), or a gene is
        detected in fewer than ``min_detection`` of the observations.
    """
    adata = adata.copy() if copy else adata
    what = "define_groups"
    if method not in ("quantile", "threshold", "mixture"):
        raise InputError(f"{what}: method must be 'quantile', 'threshold' or 'mixture', not {method!r}")
    if method == "quantile" and not 0 < quantile < 1:
        raise InputError(f"{what}: quantile must be between 0 and 1, got {quantile}")
    if method == "threshold" and threshold is None:
        raise InputError(f"{what}: method='threshold' needs threshold= (a number or {{gene: value}})")
    if by is not None and by not in adata.obs:
        raise InputError(f"{what}: by={by!r} is not an obs column (columns: {list(adata.obs.columns)})")
    if isinstance(min_detection, bool) or not isinstance(min_detection, int | float) or not 0 <= min_detection <= 1:
        raise InputError(f"{what}: min_detection must be a fraction between 0 and 1, got {min_detection!r}")

    params: dict[str, Any] = {
        "high": high, "versus": versus, "by": by, "method": method, "layer": layer,
        "quantile": quantile if method == "quantile" else None,
        "threshold": dict(threshold) if isinstance(threshold, Mapping) else threshold,
        "from_column": from_column, "key_added": key_added, "min_detection": float(min_detection),
    }
    from dormsig.tl.epithelial import NO_TUMOUR_RNA, tumour_gate

    gate = tumour_gate(adata, tumour_check, min_cpm=min_epithelial_cpm, cells_chosen=from_column is not None)
    tumour = gate.holds if gate.applied else np.ones(adata.n_obs, dtype=bool)
    params.update(tumour_check=gate.mode, min_epithelial_cpm=float(min_epithelial_cpm))
    notes: list[str] = []
    detection: dict[str, float] = {}
    values_how = None

    if from_column is not None:
        if from_column not in adata.obs:
            raise InputError(f"{what}: from_column={from_column!r} is not an obs column")
        col = adata.obs[from_column]
        if col.isna().any():
            raise InputError(f"{what}: obs column {from_column!r} has {int(col.isna().sum())} missing values")
        labels = col.astype(str).to_numpy()
        levels = sorted(set(labels))
        if len(levels) < 2:
            raise DesignError(f"{what}: obs column {from_column!r} has a single level ({levels[0]!r})")
        contrast = (None, None)
        thresholds: dict = {}
    else:
        genes = [high] if versus == "low" else [high, versus]
        if versus != "low" and versus == high:
            raise InputError(f"{what}: high and versus are the same gene ({high!r})")
        values, values_how = _expression(adata, genes, layer, what)
        n_tum = int(tumour.sum())
        for g in genes:
            detection[g] = float((values[g][tumour] > 0).mean()) if n_tum else 0.0
            if detection[g] == 0:
                raise DesignError(f"{what}: {g} has no count in any of the {n_tum} observations: no "
                                  f"'{g}_high' group can be formed; choose a gene the data measure")
            if detection[g] < min_detection:
                raise DesignError(
                    f"{what}: {g} is non-zero in {detection[g]:.1%} of the {n_tum} observations "
                    f"(< min_detection {min_detection:g}): its high and low groups would rest on a few counts; "
                    "choose a gene the data measure"
                )
        strata = (
            adata.obs[by].astype(str).to_numpy() if by is not None else np.full(adata.n_obs, "all", dtype=object)
        )
        is_high = {g: np.zeros(adata.n_obs, dtype=bool) for g in genes}
        thresholds = {}
        for level in sorted(set(strata[tumour])):
            mask = (strata == level) & tumour  # thresholds among the tumour samples only
            thresholds[level] = {}
            for g in genes:
                t = _threshold(values[g][mask], g, method, quantile, threshold)
                thresholds[level][g] = t
                is_high[g][mask] = values[g][mask] > t
                if t <= 0:
                    where = "" if by is None else f" within {by}={level}"
                    notes.append(
                        f"{what}: the {g} threshold is 0{where}: {g} is non-zero in "
                        f"{(values[g][mask] > 0).mean():.0%} of those observations, so '{g}_high' means any "
                        "count at all; a higher quantile or the mixture method separates expression levels"
                    )
        if versus == "low":
            levels = [f"{high}_high", f"{high}_low"]
            labels = np.where(is_high[high], levels[0], levels[1]).astype(object)
        else:
            a, b = is_high[high], is_high[versus]
            levels = [f"{high}_high", f"{versus}_high", DOUBLE_HIGH, DOUBLE_LOW]
            labels = np.select([a & ~b, b & ~a, a & b], levels[:3], default=DOUBLE_LOW).astype(object)
        if gate.applied and not tumour.all():
            labels[~tumour] = NO_TUMOUR_RNA
            levels.append(NO_TUMOUR_RNA)
        contrast = (levels[0], levels[1])
        for name in contrast:
            if not (labels == name).any():
                counts = {lv: int((labels == lv).sum()) for lv in levels}
                raise DesignError(
                    f"{what}: group {name!r} is empty (counts {counts}); try another method, quantile "
                    "or threshold, or check that the genes are expressed"
                )

    library = _library_record(adata, layer, labels, levels, contrast, notes, what)
    single_cell = looks_single_cell(adata)
    for text in notes:
        warnings.warn(text, UserWarning, stacklevel=2)

    adata.obs[key_added] = pd.Categorical(labels, categories=levels)
    table = pd.crosstab(
        adata.obs[key_added], adata.obs[by].astype(str) if by is not None else pd.Series("all", index=adata.obs_names),
        dropna=False,
    )
    per_sample = {str(s): {str(g): int(table.loc[g, s]) for g in table.index} for s in table.columns}
    rec = record(
        "groups",
        method=method if from_column is None else "from_column",
        params=params,
        key=key_added,
        test=contrast[0],
        reference=contrast[1],
        thresholds=thresholds,
        counts={str(g): int((labels == g).sum()) for g in levels},
        counts_per_sample=per_sample,
        values=values_how,
        detection=detection,
        library_size=library,
        single_cell=bool(single_cell),
        warnings=notes,
        tumour_check=gate.to_dict(adata.obs_names),
    )
    attach(adata, "groups", rec)
    return adata if copy else None


def _library_record(adata: AnnData, layer: str | None, labels: np.ndarray, levels: list[str],
                    contrast: tuple, notes: list[str], what: str) -> dict[str, Any]:
    """Median library size per group; a note when the contrast groups differ by more than 1.5x."""
    lib, source = _library_sizes(adata, layer)
    if lib is None:
        return {"source": source}
    medians = {str(g): float(np.median(lib[labels == g])) for g in levels if (labels == g).any()}
    out: dict[str, Any] = {"source": source, "median_per_group": medians, "max_ratio": MAX_LIBRARY_RATIO}
    test, ref = contrast
    if test is None and len(medians) >= 2:  # groups from a column: the deepest and the shallowest
        test, ref = max(medians, key=medians.get), min(medians, key=medians.get)
    if test is not None and test in medians and ref in medians and min(medians[test], medians[ref]) > 0:
        ratio = max(medians[test], medians[ref]) / min(medians[test], medians[ref])
        out["ratio"] = round(ratio, 4)
        if ratio > MAX_LIBRARY_RATIO:
            notes.append(
                f"{what}: {test} and {ref} differ in median library size ({_short(medians[test])} vs "
                f"{_short(medians[ref])} counts, {ratio:.2f}x > {MAX_LIBRARY_RATIO}x): the groups partly sort "
                "observations by sequencing depth, not expression"
            )
    return out


def _short(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"
