"""Plots of differential expression: volcano, MA, signature heatmap, GSEA running sum.

Each function takes ``ax=`` (a new figure when None), returns the axes and never calls
``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from dormsig.errors import InputError

UP_COLOUR = "#b2182b"
DOWN_COLOUR = "#2166ac"
NS_COLOUR = "#bdbdbd"


def _axes(ax, figsize=(5, 4)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def _table(de: Any, key: str = "dormsig_de") -> pd.DataFrame:
    if isinstance(de, AnnData):
        try:
            return de.uns["dormsig"][key]["table"]
        except KeyError:
            raise InputError(f"plot: adata has no DE table in uns['dormsig'][{key!r}]") from None
    if not isinstance(de, pd.DataFrame):
        raise InputError(f"plot: expected a DE DataFrame or AnnData, got {type(de).__name__}")
    return de


def _need(df: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{what}: DE table lacks column(s) {missing} (columns: {list(df.columns)})")


def _colours(df: pd.DataFrame, lfc: str, alpha: float, lfc_threshold: float) -> np.ndarray:
    sig = (df["padj"] < alpha).to_numpy() & (df[lfc].abs() >= lfc_threshold).to_numpy()
    up = sig & (df[lfc] > 0).to_numpy()
    down = sig & (df[lfc] < 0).to_numpy()
    return np.where(up, UP_COLOUR, np.where(down, DOWN_COLOUR, NS_COLOUR))


def _label(ax, df: pd.DataFrame, x: np.ndarray, y: np.ndarray, genes: Sequence[str]) -> None:
    names = df["gene"].astype(str).to_numpy() if "gene" in df else df.index.astype(str).to_numpy()
    for g in genes:
        hits = np.nonzero(names == g)[0]
        if hits.size and np.isfinite(x[hits[0]]) and np.isfinite(y[hits[0]]):
            ax.annotate(g, (x[hits[0]], y[hits[0]]), fontsize=7, xytext=(3, 3), textcoords="offset points")


def _lfc_column(df: Any, lfc: str | None) -> str:
    if lfc is not None:
        return lfc
    return "log2FoldChange_shrunk" if "log2FoldChange_shrunk" in df else "log2FoldChange"


def volcano(
    de: Any,
    ax=None,
    *,
    lfc: str | None = None,
    alpha: float = 0.05,
    lfc_threshold: float = 0.0,
    label: Sequence[str] | int = 10,
    title: str | None = None,
    key: str = "dormsig_de",
):
    """Volcano plot: log2 fold change against -log10 p-value, significant genes coloured.

    One point per gene with a finite fold change and p-value (p = 0 is drawn at the smallest
    positive p-value). ``label``: genes to name, or the number of top genes by p-value. ``lfc``:
    the fold-change column; by default the apeglm-shrunken one when the table has it (as R's guide
    plots), else the maximum-likelihood estimate.
    """
    df = _table(de, key)
    lfc = _lfc_column(df, lfc)
    _need(df, [lfc, "pvalue", "padj"], "volcano")
    df = df[np.isfinite(df[lfc]) & np.isfinite(df["pvalue"])]
    ax = _axes(ax)
    p = df["pvalue"].to_numpy(dtype=np.float64)
    floor = p[p > 0].min() if (p > 0).any() else 1e-300
    y = -np.log10(np.maximum(p, floor))
    x = df[lfc].to_numpy(dtype=np.float64)
    ax.scatter(x, y, c=_colours(df, lfc, alpha, lfc_threshold), s=6, linewidths=0, rasterized=len(df) > 5000)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel(f"{lfc} (test vs reference)")
    ax.set_ylabel("-log10 p-value")
    genes = df.sort_values("pvalue").index[:label].astype(str).tolist() if isinstance(label, int) else list(label)
    if isinstance(label, int) and "gene" in df:
        genes = df.sort_values("pvalue")["gene"].astype(str).iloc[:label].tolist()
    _label(ax, df, x, y, genes)
    if title:
        ax.set_title(title)
    return ax


def ma(
    de: Any,
    ax=None,
    *,
    lfc: str | None = None,
    alpha: float = 0.05,
    lfc_threshold: float = 0.0,
    label: Sequence[str] = (),
    title: str | None = None,
    key: str = "dormsig_de",
):
    """MA plot: log2 fold change against mean of normalised counts (log scale), one point per gene with baseMean > 0.

    ``lfc`` as in :func:`volcano` (shrunken when available, as R's ``plotMA`` after ``lfcShrink``).
    """
    df = _table(de, key)
    lfc = _lfc_column(df, lfc)
    _need(df, [lfc, "baseMean", "padj"], "ma")
    df = df[np.isfinite(df[lfc]) & (df["baseMean"] > 0)]
    ax = _axes(ax)
    x = df["baseMean"].to_numpy(dtype=np.float64)
    y = df[lfc].to_numpy(dtype=np.float64)
    ax.scatter(x, y, c=_colours(df, lfc, alpha, lfc_threshold), s=6, linewidths=0, rasterized=len(df) > 5000)
    ax.set_xscale("log")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("mean of normalised counts")
    ax.set_ylabel(lfc)
    _label(ax, df, x, y, list(label))
    if title:
        ax.set_title(title)
    return ax


def _genes_of(genes_or_signature: Any) -> list[str]:
    if isinstance(genes_or_signature, str):
        return [genes_or_signature]
    up = getattr(genes_or_signature, "up", None)
    if up is not None:
        return list(up) + list(getattr(genes_or_signature, "down", ()) or ())
    return [str(g) for g in genes_or_signature]


def heatmap(
    adata: AnnData,
    genes_or_signature: Any,
    groupby: str,
    ax=None,
    *,
    layer: str | None = None,
    standard_scale: bool = True,
    cmap: str = "RdBu_r",
):
    """Mean expression of signature genes per group (genes x groups), z-scored across groups.

    Values from ``X`` (log1p normalised) or ``layers[layer]`` (e.g. ``"vst"``). Genes absent
    from the data are skipped; if none is present an InputError is raised.
    """
    import seaborn as sns

    if groupby not in adata.obs:
        raise InputError(f"heatmap: {groupby!r} is not an obs column")
    genes = [g for g in dict.fromkeys(_genes_of(genes_or_signature)) if g in adata.var_names]
    if not genes:
        raise InputError("heatmap: none of the genes is in var_names")
    mat = adata[:, genes].X if layer is None else adata[:, genes].layers[layer]
    mat = mat.toarray() if sp.issparse(mat) else np.asarray(mat, dtype=np.float64)
    frame = pd.DataFrame(mat, columns=genes)
    frame["_group"] = adata.obs[groupby].astype(str).to_numpy()
    means = frame.groupby("_group").mean().T  # genes x groups
    if standard_scale:
        sd = means.std(axis=1, ddof=0).replace(0, 1)
        means = means.sub(means.mean(axis=1), axis=0).div(sd, axis=0)
    ax = _axes(ax, figsize=(1.2 + 0.6 * means.shape[1], 1.0 + 0.22 * len(genes)))
    sns.heatmap(means, ax=ax, cmap=cmap, center=0 if standard_scale else None,
                cbar_kws={"label": "z-score of group mean" if standard_scale else "mean"})
    ax.set_xlabel(groupby)
    ax.set_ylabel("")
    return ax


def running_sum_curve(ranking: pd.Series, genes: Iterable[str], weight: float = 1.0) -> tuple[np.ndarray, np.ndarray, float]:
    """GSEA running enrichment score along a ranking sorted by decreasing statistic.

    Returns ``(curve, hit_positions, ES)`` (Subramanian 2005, weight ``p``).
    """
    ranking = ranking.sort_values(ascending=False)
    hits = ranking.index.isin(list(genes))
    if not hits.any():
        raise InputError("running_sum: none of the set's genes is in the ranking")
    w = np.abs(ranking.to_numpy(dtype=np.float64)) ** weight
    nr = w[hits].sum()
    step_hit = np.where(hits, w / nr if nr > 0 else 1.0 / hits.sum(), 0.0)
    step_miss = np.where(~hits, 1.0 / max((~hits).sum(), 1), 0.0)
    curve = np.cumsum(step_hit - step_miss)
    es = curve[np.argmax(np.abs(curve))]
    return curve, np.nonzero(hits)[0], float(es)


def running_sum(de: Any, gene_set: Any, ax=None, *, stat: str = "stat", title: str | None = None,
                key: str = "dormsig_de"):
    """GSEA running-sum plot of a gene set along the DE ranking (decreasing ``stat``).

    Draws the running enrichment score and one tick per set gene under the curve.
    """
    df = _table(de, key)
    _need(df, [stat], "running_sum")
    genes_col = df["gene"].astype(str) if "gene" in df else pd.Series(df.index.astype(str), index=df.index)
    ranking = pd.Series(df[stat].to_numpy(dtype=np.float64), index=genes_col.to_numpy()).dropna()
    ranking = ranking[~ranking.index.duplicated()]
    curve, hits, es = running_sum_curve(ranking, _genes_of(gene_set))
    ax = _axes(ax, figsize=(5, 3.5))
    ax.plot(np.arange(curve.size), curve, color="#1b7837", lw=1.2)
    ax.axhline(0, color="black", lw=0.5)
    lo = min(curve.min(), 0)
    span = max(curve.max(), 0) - lo or 1.0
    ax.vlines(hits, lo - 0.12 * span, lo - 0.02 * span, color="black", lw=0.5)
    ax.set_xlim(0, curve.size)
    ax.set_xlabel(f"rank in DE list (by {stat}, decreasing)")
    ax.set_ylabel("running enrichment score")
    ax.set_title(title or f"ES = {es:.3f}, {hits.size} genes")
    return ax
