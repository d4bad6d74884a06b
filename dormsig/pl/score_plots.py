"""Score plots: distributions by group, the ranked dormancy waterfall and signature coverage.

Each function takes ``ax=`` (a new figure is made when it is ``None``), draws with plain
matplotlib so that the artists are predictable, and returns the axes. Nothing calls
``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from dormsig import _keys as K
from dormsig.errors import InputError

SCORES_KEY = K.SCORES
INDEX_COLUMN = K.INDEX
CALL_COLUMN = K.OBS_CALL

#: Colours of the calls (colour-blind safe, Okabe-Ito).
CALL_COLOURS = {"dormant": "#0072B2", "not_dormant": "#BBBBBB"}
STATUS_COLOURS = {"ok": "#009E73", "low": "#E69F00", "failed": "#D55E00"}
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
# matplotlib 3.10 replaced boxplot(vert=False) by orientation="horizontal".
_HORIZONTAL = (
    {"orientation": "horizontal"}
    if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    else {"vert": False}
)
#: Above this many samples the waterfall draws one line collection per call instead of one bar each.
_MAX_BARS = 2000


def _new_ax(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def score_frame(adata: AnnData) -> pd.DataFrame:
    """The score table written by :func:`dormsig.tl.score` (``obsm["dormsig_scores"]``), indexed like ``obs``."""
    if SCORES_KEY in adata.obsm:
        frame = adata.obsm[SCORES_KEY]
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(np.asarray(frame), index=adata.obs_names)
        return frame
    # Fall back to the per-set obs columns (dormsig_<set>) when obsm was dropped.
    cols = [c for c in adata.obs.columns if c.startswith("dormsig_")
            and pd.api.types.is_float_dtype(adata.obs[c]) and c not in ("dormsig_percentile",)]
    if not cols:
        raise InputError("AnnData has no dormsig scores (obsm['dormsig_scores']); run dormsig.tl.score first")
    return adata.obs[cols].rename(columns=lambda c: c.removeprefix("dormsig_"))


def _groups(adata: AnnData, groupby: str | None) -> pd.Series:
    if groupby is None:
        return pd.Series("all", index=adata.obs_names, dtype="category")
    if groupby not in adata.obs.columns:
        raise InputError(f"AnnData.obs has no column {groupby!r} to group scores by")
    values = adata.obs[groupby]
    if not isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(str).astype("category")
    return values


def scores(
    adata: AnnData,
    groupby: str | None = None,
    ax: Axes | None = None,
    *,
    keys: Sequence[str] | None = None,
    strip: bool = True,
    max_points: int = 500,
    seed: int = 0,
) -> Axes:
    """Box plots (with the points on top) of each gene-set score and the dormancy index, by group.

    One row per score (horizontal boxes, so long set names stay readable); inside a row one box
    per group, side by side. Each group is one colour, one ``PathCollection`` of points and one
    legend entry.

    Parameters
    ----------
    adata
        AnnData scored by :func:`dormsig.tl.score`.
    groupby
        ``obs`` column with the groups; ``None`` draws one group named "all".
    ax
        Axes to draw on; a new figure when ``None``.
    keys
        Score columns to draw (default: all, the dormancy index first).
    strip
        Draw the individual values over the boxes.
    max_points
        At most this many points per group and score are drawn (a seeded random subset), so
        that single-cell data stay legible and the SVG small; the boxes always use every value.
    seed
        Seed of the point subset and of the vertical jitter.

    Returns
    -------
    The axes. Artists: ``len(keys) * n_groups`` boxes (``ax.patches``) and ``n_groups``
    point collections when ``strip``.
    """
    frame = score_frame(adata)
    if keys is None:
        keys = [INDEX_COLUMN] if INDEX_COLUMN in frame.columns else []
        keys += [c for c in frame.columns if c != INDEX_COLUMN]
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise InputError(f"dormsig scores have no column(s) {', '.join(map(str, missing))}")
    groups = _groups(adata, groupby)
    levels = [g for g in groups.cat.categories if (groups == g).any()]
    n_groups = max(len(levels), 1)
    ax = _new_ax(ax, (7.0, 0.9 + 0.35 * len(keys) * max(1, n_groups / 2)))
    rng = np.random.default_rng(seed)
    width = 0.8 / n_groups
    for gi, level in enumerate(levels):
        colour = _PALETTE[gi % len(_PALETTE)]
        mask = (groups == level).to_numpy()
        # Row 0 (the index) on top: y decreases down the list of keys, and within a row the
        # groups run top-down in legend order.
        positions = [len(keys) - 1 - ki + 0.4 - width * (gi + 0.5) for ki in range(len(keys))]
        data = [frame.loc[mask, k].to_numpy(dtype=float) for k in keys]
        data = [d[np.isfinite(d)] for d in data]
        ax.boxplot(
            data, positions=positions, widths=width * 0.8, patch_artist=True, **_HORIZONTAL,
            showfliers=False, manage_ticks=False,
            boxprops={"facecolor": colour, "alpha": 0.35, "edgecolor": colour},
            medianprops={"color": colour}, whiskerprops={"color": colour}, capprops={"color": colour},
        )
        if strip:
            shown = [d if d.size <= max_points else rng.choice(d, size=max_points, replace=False) for d in data]
            xs = np.concatenate(shown) if shown else np.array([])
            ys = np.concatenate([np.full(d.size, p) for d, p in zip(shown, positions, strict=True)]) if shown else xs
            ys = ys + rng.uniform(-width * 0.3, width * 0.3, size=ys.size)
            ax.scatter(xs, ys, s=6, color=colour, alpha=0.7, linewidths=0, label=str(level))
    ax.set_yticks(range(len(keys)), [str(k) for k in reversed(keys)])
    ax.set_ylim(-0.6, len(keys) - 0.4)
    ax.set_xlabel("score")
    if groupby is not None:
        ax.legend(handles=[Patch(color=_PALETTE[i % len(_PALETTE)], alpha=0.6, label=str(g))
                           for i, g in enumerate(levels)], title=groupby, fontsize="small",
                  loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: rows fill the axes
    return ax


def waterfall(adata: AnnData, ax: Axes | None = None, *, key: str = INDEX_COLUMN) -> Axes:
    """Samples ranked by dormancy index (highest first), one bar each, coloured by ``obs["dormsig_call"]``.

    Above 2,000 samples the bars are drawn as one line collection per call (same picture,
    far fewer artists). A horizontal line marks the call threshold when the rank rule in
    ``uns["dormsig"]["rank"]`` records a numeric ``threshold``.

    Returns
    -------
    The axes; with up to 2,000 samples ``ax.patches`` holds exactly one bar per sample.
    """
    frame = score_frame(adata)
    if key not in frame.columns:
        raise InputError(f"dormsig scores have no column {key!r}; run dormsig.tl.score with the dormancy index")
    values = frame[key].to_numpy(dtype=float)
    if CALL_COLUMN in adata.obs.columns:
        calls = adata.obs[CALL_COLUMN].astype(str).to_numpy()
    else:
        calls = np.full(values.size, "not called", dtype=object)
    # Stable order: by value descending, NaN last, ties by obs order.
    order = np.lexsort((np.arange(values.size), -np.nan_to_num(values, nan=-np.inf)))
    values, calls = values[order], calls[order]
    ax = _new_ax(ax, (8.0, 3.5))
    x = np.arange(values.size)
    colours = {c: CALL_COLOURS.get(c, _PALETTE[i % len(_PALETTE)]) for i, c in enumerate(dict.fromkeys(calls))}
    if values.size <= _MAX_BARS:
        ax.bar(x, np.nan_to_num(values), width=0.9, color=[colours[c] for c in calls], linewidth=0)
    else:
        for call, colour in colours.items():
            m = calls == call
            ax.vlines(x[m], 0, np.nan_to_num(values[m]), colors=colour, linewidth=0.5)
    threshold = _rank_threshold(adata)
    if threshold is not None:
        ax.axhline(threshold, color="black", linestyle="--", linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlim(-0.5, max(values.size, 1) - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"samples ranked by {key} (n = {values.size})")
    ax.set_ylabel(key)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in colours.items()], fontsize="small", loc="upper right")
    return ax


def _rank_threshold(adata: AnnData) -> float | None:
    rule = adata.uns.get("dormsig", {}).get("rank", {})
    for name in ("threshold", "cutoff"):
        value = rule.get(name) if hasattr(rule, "get") else None
        if value is None and hasattr(rule, "get") and hasattr(rule.get("params"), "get"):
            value = rule["params"].get(name)
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if np.isfinite(value):
            return value
    return None


def match_coverage(report_frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Fraction of each gene set found in the data (one horizontal bar per set/part), coloured by status.

    ``report_frame`` is :meth:`dormsig.signatures.MatchReport.to_frame` (columns set, part,
    n_total, n_matched, coverage, status). Each bar is labelled ``n_matched/n_total``.

    Returns
    -------
    The axes; ``ax.patches`` holds one bar per row of ``report_frame``.
    """
    needed = {"set", "n_total", "n_matched"}
    if not needed <= set(report_frame.columns):
        raise InputError(f"match report lacks column(s) {', '.join(sorted(needed - set(report_frame.columns)))}")
    frame = report_frame.reset_index(drop=True)
    n_total = frame["n_total"].astype(float).to_numpy()
    n_matched = frame["n_matched"].astype(float).to_numpy()
    if "coverage" in frame.columns:
        coverage = frame["coverage"].astype(float).to_numpy()
    else:
        coverage = np.divide(n_matched, n_total, out=np.zeros_like(n_total), where=n_total > 0)
    labels = frame["set"].astype(str)
    if "part" in frame.columns:
        part = frame["part"].fillna("").astype(str)
        labels = labels.where(part.isin(["", "all", "None", "nan"]), labels + " (" + part + ")")
    status = frame["status"].astype(str) if "status" in frame.columns else pd.Series("ok", index=frame.index)
    colours = [STATUS_COLOURS.get(s, "#777777") for s in status]
    ax = _new_ax(ax, (7.0, 0.8 + 0.28 * len(frame)))
    y = np.arange(len(frame))[::-1]
    ax.barh(y, coverage, color=colours, height=0.7)
    for yi, cov, m, t in zip(y, coverage, n_matched, n_total, strict=True):
        ax.text(min(cov, 1.0) + 0.01, yi, f"{int(m)}/{int(t)}", va="center", fontsize="x-small")
    ax.set_yticks(y, labels.tolist())
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("fraction of the set's genes found in the data")
    seen = list(dict.fromkeys(status))
    ax.legend(handles=[Patch(color=STATUS_COLOURS.get(s, "#777777"), label=s) for s in seen],
              fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax
