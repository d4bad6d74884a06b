"""Expression groups for the NOTCH2/NOTCH1 contrasts.

:func:`define_groups` labels every cell (or sample) from the expression of one or two genes,
optionally with thresholds computed within each sample (``by=``), or copies the groups of a
sorted-population sample sheet (``from_column=``). Every observation gets a label; nothing is
dropped.
"""

from __future__ import annotations

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
        ``layer`` is given.
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

    Raises
    ------
    InputError
        A gene, layer or column is absent, or a parameter is invalid.
    DesignError
        One of the two contrast groups is empty (e.g. all observations in one group).
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

    params: dict[str, Any] = {
        "high": high, "versus": versus, "by": by, "method": method, "layer": layer,
        "quantile": quantile if method == "quantile" else None,
        "threshold": dict(threshold) if isinstance(threshold, Mapping) else threshold,
        "from_column": from_column, "key_added": key_added,
    }

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
        values = {g: gene_vector(adata, g, layer, what=what) for g in genes}  # fails fast on absent genes
        strata = (
            adata.obs[by].astype(str).to_numpy() if by is not None else np.full(adata.n_obs, "all", dtype=object)
        )
        is_high = {g: np.zeros(adata.n_obs, dtype=bool) for g in genes}
        thresholds = {}
        for level in sorted(set(strata)):
            mask = strata == level
            thresholds[level] = {}
            for g in genes:
                t = _threshold(values[g][mask], g, method, quantile, threshold)
                thresholds[level][g] = t
                is_high[g][mask] = values[g][mask] > t
        if versus == "low":
            levels = [f"{high}_high", f"{high}_low"]
            labels = np.where(is_high[high], levels[0], levels[1]).astype(object)
        else:
            a, b = is_high[high], is_high[versus]
            levels = [f"{high}_high", f"{versus}_high", DOUBLE_HIGH, DOUBLE_LOW]
            labels = np.select([a & ~b, b & ~a, a & b], levels[:3], default=DOUBLE_LOW).astype(object)
        contrast = (levels[0], levels[1])
        for name in contrast:
            if not (labels == name).any():
                counts = {lv: int((labels == lv).sum()) for lv in levels}
                raise DesignError(
                    f"{what}: group {name!r} is empty (counts {counts}); try another method, quantile "
                    "or threshold, or check that the genes are expressed"
                )

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
    )
    attach(adata, "groups", rec)
    return adata if copy else None
