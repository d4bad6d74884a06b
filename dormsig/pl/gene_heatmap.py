"""Signature heatmap: observations (columns) x signature genes (rows), each gene's set marked.

Each gene is z-scored across observations (not across group means), columns are ordered by
group when a grouping is given, a colour strip left of the rows marks the set of each gene and a
strip above the columns marks the groups. Genes without counts (or constant across observations)
carry no information and would leave a blank row: :func:`heatmap_genes` drops them and says which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.patches import Patch, Rectangle

from dormsig.errors import InputError

#: Colour-blind-safe first (Okabe-Ito), then tab20 for libraries with many sets.
_SET_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
                "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf", "#aec7e8", "#ffbb78")
_GROUP_COLOURS = ("#555555", "#BBBBBB", "#8DA0CB", "#FC8D62", "#66C2A5", "#E78AC3", "#A6D854", "#FFD92F")


@dataclass(frozen=True)
class HeatmapGenes:
    """The rows of a signature heatmap and the genes left out, with why."""

    genes: list[str]
    sets: list[str]  # the set of each row (a gene in several sets is shown once, under its first set)
    absent: list[str] = field(default_factory=list)  # not in var_names
    no_counts: list[str] = field(default_factory=list)  # zero (or constant) in every observation
    over_limit: list[str] = field(default_factory=list)  # dropped to keep at most max_genes rows

    @property
    def n_dropped(self) -> int:
        return len(self.no_counts) + len(self.over_limit)


def _as_sets(gene_sets: Mapping[str, Sequence[str]] | Sequence[str]) -> dict[str, list[str]]:
    if isinstance(gene_sets, Mapping):
        return {str(k): [str(g) for g in v] for k, v in gene_sets.items()}
    return {"genes": [str(g) for g in gene_sets]}


def _matrix(adata: AnnData, genes: list[str], layer: str | None) -> np.ndarray:
    sub = adata[:, genes]
    x = sub.X if layer is None else sub.layers[layer]
    return x.toarray().astype(np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)


def heatmap_genes(
    adata: AnnData,
    gene_sets: Mapping[str, Sequence[str]] | Sequence[str],
    *,
    layer: str | None = None,
    max_genes: int = 60,
) -> HeatmapGenes:
    """Choose the rows of :func:`signature_heatmap`.

    Genes absent from ``var_names`` and genes with no counts (zero or constant in every
    observation, in ``layers["counts"]`` when present, else in the plotted values) are left out.
    Above ``max_genes`` rows the most variable genes of each set are kept in turn, so that every
    set stays represented.
    """
    sets = _as_sets(gene_sets)
    seen: dict[str, str] = {}
    absent: list[str] = []
    for name, genes in sets.items():
        for g in genes:
            if g in seen or g in absent:
                continue
            if g in adata.var_names:
                seen[g] = name
            else:
                absent.append(g)
    present = list(seen)
    if not present:
        return HeatmapGenes([], [], absent=absent)
    values = _matrix(adata, present, layer)
    counts = _matrix(adata, present, "counts") if layer is None and "counts" in adata.layers else values
    informative = (np.nanmax(counts, axis=0) > 0) & (np.nanstd(values, axis=0) > 0)
    no_counts = [g for g, ok in zip(present, informative, strict=True) if not ok]
    keep = [g for g, ok in zip(present, informative, strict=True) if ok]
    over: list[str] = []
    if len(keep) > max_genes:
        var = dict(zip(present, np.nanvar(values, axis=0), strict=True))
        by_set: dict[str, list[str]] = {}
        for g in keep:
            by_set.setdefault(seen[g], []).append(g)
        queues = [sorted(gs, key=lambda g: -var[g]) for gs in by_set.values()]
        chosen: set[str] = set()
        rank = 0
        while len(chosen) < max_genes:
            for queue in queues:
                if rank < len(queue) and len(chosen) < max_genes:
                    chosen.add(queue[rank])
            rank += 1
        over = [g for g in keep if g not in chosen]
        keep = [g for g in keep if g in chosen]
    return HeatmapGenes(keep, [seen[g] for g in keep], absent=absent, no_counts=no_counts, over_limit=over)


def signature_heatmap(
    adata: AnnData,
    gene_sets: Mapping[str, Sequence[str]] | Sequence[str],
    ax: Axes | None = None,
    *,
    groupby: str | None = None,
    sort_by: str | None = None,
    layer: str | None = None,
    max_genes: int = 60,
    cmap: str = "RdBu_r",
    vmax: float = 2.5,
) -> Axes:
    """Observations x signature genes, z-scored per gene across observations; row colours mark the sets.

    Parameters
    ----------
    adata
        Values from ``X`` (log-normalised) or ``layers[layer]``.
    gene_sets
        ``{set name: genes}`` (row colours and legend) or a list of genes.
    ax
        Axes to draw on (a new figure when None); returned.
    groupby
        ``obs`` column: columns ordered by its categories, marked by a strip above the heatmap.
    sort_by
        Numeric ``obs`` column ordering the observations inside each group (decreasing), e.g.
        ``"dormsig_index"``.
    max_genes
        Most rows drawn (see :func:`heatmap_genes`); genes without counts are never drawn.
    """
    if groupby is not None and groupby not in adata.obs:
        raise InputError(f"signature_heatmap: {groupby!r} is not an obs column")
    if sort_by is not None and sort_by not in adata.obs:
        raise InputError(f"signature_heatmap: {sort_by!r} is not an obs column")
    rows = heatmap_genes(adata, gene_sets, layer=layer, max_genes=max_genes)
    if not rows.genes:
        raise InputError("signature_heatmap: no gene of the sets has counts in the data")
    x = _matrix(adata, rows.genes, layer)
    sd = x.std(axis=0)
    z = ((x - x.mean(axis=0)) / sd).T  # genes x observations; sd > 0 by heatmap_genes
    n_genes, n_obs = z.shape

    order = np.arange(n_obs)
    keys: list[np.ndarray] = []
    if sort_by is not None:
        keys.append(-np.nan_to_num(pd.to_numeric(adata.obs[sort_by], errors="coerce").to_numpy(float), nan=-np.inf))
    labels = None
    if groupby is not None:
        col = adata.obs[groupby]
        cats = list(col.cat.categories) if isinstance(col.dtype, pd.CategoricalDtype) else sorted(col.astype(str).unique())
        code = pd.Categorical(col.astype(str), categories=[str(c) for c in cats]).codes
        keys.append(np.where(code < 0, len(cats), code))
        labels = np.array([str(c) for c in cats] + ["NA"])[np.where(code < 0, len(cats), code)]
    if keys:
        order = np.lexsort(tuple(keys))  # last key first: group, then the sort column
    z = z[:, order]

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(9.0, 1.5 + 0.16 * n_genes))
    im = ax.imshow(z, aspect="auto", cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest",
                   extent=(0, n_obs, n_genes, 0))
    # set strip left of the rows, group strip above the columns (in data units, on the same axes)
    strip_w, gap = max(1.0, 0.025 * n_obs), max(0.3, 0.005 * n_obs)
    strip_h = max(0.8, 0.035 * n_genes)
    set_names = list(dict.fromkeys(rows.sets))
    colour = {s: _SET_COLOURS[i % len(_SET_COLOURS)] for i, s in enumerate(set_names)}
    for start, end, name in _runs(rows.sets):
        ax.add_patch(Rectangle((-gap - strip_w, start), strip_w, end - start, color=colour[name], lw=0))
    xmin, ymin = -gap - strip_w, 0.0
    if labels is not None:
        shown = labels[order]
        group_names = list(dict.fromkeys(shown))
        gcol = {g: _GROUP_COLOURS[i % len(_GROUP_COLOURS)] for i, g in enumerate(group_names)}
        for start, end, name in _runs(list(shown)):
            ax.add_patch(Rectangle((start, -gap - strip_h), end - start, strip_h, color=gcol[name], lw=0))
            ax.text((start + end) / 2, -gap - strip_h * 1.15, f"{name} ({end - start})", ha="center", va="bottom",
                    fontsize="x-small")
            if start > 0:
                ax.axvline(start, color="black", lw=0.8)
        ymin = -gap - strip_h * 2.6
    ax.set_xlim(xmin, n_obs)
    ax.set_ylim(n_genes, ymin)
    if n_genes <= 80:
        ax.set_yticks(np.arange(n_genes) + 0.5, rows.genes, fontsize=6 if n_genes > 40 else 7)
    else:
        ax.set_yticks([])
    names = adata.obs_names.to_numpy()[order]
    if n_obs <= 40:
        ax.set_xticks(np.arange(n_obs) + 0.5, names, rotation=90, fontsize=6)
    else:
        ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    what = "observations" if groupby is None else f"observations by {groupby}"
    ax.set_xlabel(f"{n_obs} {what}" + (f", by decreasing {sort_by} within group" if sort_by else ""), fontsize="small")
    ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="z-score per gene")
    ax.legend(handles=[Patch(color=colour[s], label=s) for s in set_names], title="gene set", fontsize="x-small",
              title_fontsize="x-small", loc="upper left", bbox_to_anchor=(1.09, 1.0), frameon=False)
    return ax


def _runs(values: Sequence[str]) -> list[tuple[int, int, str]]:
    """Contiguous runs of equal values: (start, end, value)."""
    out: list[tuple[int, int, str]] = []
    for i, v in enumerate(values):
        if out and out[-1][2] == v and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1, v)
        else:
            out.append((i, i + 1, v))
    return out
