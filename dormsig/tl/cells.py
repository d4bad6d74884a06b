"""Restricting scoring, ranking and calls to some cells (``cells=`` / ``--cells COLUMN=VALUE``).

A selection is an ``obs`` column and one or more values: ``"cell_type=malignant"``,
``"cell_type=malignant_*"`` (shell-style patterns), ``"tumour=yes"`` (boolean columns accept
yes/no/true/false/1/0), ``{"cell_type": ["a", "b"]}`` or ``("cell_type", "a")``. Cells outside it
keep their rows, with NaN scores and the call ``"not_scored"``; ``obs["dormsig_scored"]`` marks
the selection.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig import _keys as K
from dormsig.errors import InputError
from dormsig.provenance import UNS_KEY, attach

SCORED_COLUMN = K.OBS_SCORED
NOT_SCORED = "not_scored"
_TRUE = {"yes", "true", "1", "y", "t"}
_FALSE = {"no", "false", "0", "n", "f"}


@dataclass(frozen=True)
class CellSelection:
    """A parsed selection: an ``obs`` column and the values (or patterns) to keep."""

    column: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.column}={','.join(self.values)}"

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "values": list(self.values)}


def parse_cells(spec: Any, *, what: str = "cells") -> CellSelection:
    """Parse a selection (see the module docstring); ``what`` names the argument in messages."""
    if isinstance(spec, CellSelection):
        return spec
    if isinstance(spec, str):
        column, sep, raw = spec.partition("=")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not sep or not column.strip() or not values:
            raise InputError(f"{what}: expected COLUMN=VALUE (e.g. cell_type=malignant), got {spec!r}")
        return CellSelection(column.strip(), tuple(values))
    if isinstance(spec, Mapping) and len(spec) == 1:
        column, raw = next(iter(spec.items()))
    elif isinstance(spec, tuple) and len(spec) == 2:
        column, raw = spec
    else:
        raise InputError(f"{what}: give 'COLUMN=VALUE', {{column: value(s)}} or (column, value(s)), got {spec!r}")
    values = [raw] if isinstance(raw, str | bool | int | float) else list(raw)
    if not values:
        raise InputError(f"{what}: no value given for column {column!r}")
    return CellSelection(str(column), tuple(str(v) for v in values))


def select_cells(adata: AnnData, spec: Any, *, what: str = "cells") -> np.ndarray:
    """Boolean mask of the selected observations.

    Raises
    ------
    InputError
        Unknown column, a value (or pattern) that matches nothing, or an empty selection.
    """
    sel = parse_cells(spec, what=what)
    if sel.column not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:12])) or "none"
        raise InputError(f"{what}: obs has no column {sel.column!r} (columns: {cols})")
    col = adata.obs[sel.column]
    if pd.api.types.is_bool_dtype(col):
        wanted = set()
        for v in sel.values:
            if v.lower() not in _TRUE | _FALSE:
                raise InputError(f"{what}: column {sel.column!r} is yes/no; got value {v!r}")
            wanted.add(v.lower() in _TRUE)
        mask = col.isin(list(wanted)).to_numpy()
    else:
        text = col.astype(str).to_numpy()
        levels = pd.unique(text)
        mask = np.zeros(adata.n_obs, dtype=bool)
        for v in sel.values:
            hit = [lv for lv in levels if fnmatch.fnmatchcase(lv, v)] if any(c in v for c in "*?[") else \
                ([v] if v in set(levels) else [])
            if not hit:
                shown = ", ".join(map(str, sorted(levels)[:10])) + (", ..." if len(levels) > 10 else "")
                raise InputError(f"{what}: column {sel.column!r} has no value {v!r} (values: {shown})")
            mask |= np.isin(text, hit)
    if not mask.any():
        raise InputError(f"{what}: {sel} selects no observation")
    return mask


def selection_record(adata: AnnData, spec: Any, mask: np.ndarray) -> dict[str, Any]:
    """Provenance of a selection: column, values, how many observations were kept."""
    return {**parse_cells(spec).to_dict(), "n_selected": int(mask.sum()), "n_obs": int(adata.n_obs)}


def score_restricted(score: Callable[..., Any], adata: AnnData, cells: Any, *, copy: bool,
                     kwargs: Mapping[str, Any]) -> AnnData | None:
    """Score only the selected cells with ``score(subset, **kwargs)`` and write the results back.

    Every ``obs``/``obsm`` output of the subset is expanded to all observations (NaN outside the
    selection); ``obs["dormsig_scored"]`` marks the selection and ``uns["dormsig"]["score"]["cells"]``
    records it. Cohort-dependent methods and detection counts see only the selected cells.
    """
    if copy and adata.isbacked:
        raise InputError(f"{adata.filename}: copy=True is not supported for backed AnnData; score in place")
    mask = select_cells(adata, cells)
    sub = adata[mask]
    sub = sub.to_memory() if adata.isbacked else sub.copy()
    # Drop earlier dormsig outputs from the subset: whatever dormsig_* it holds afterwards is new.
    sub.obs = sub.obs.drop(columns=[c for c in sub.obs.columns if str(c).startswith("dormsig_")])
    for key in [k for k in sub.obsm.keys() if k.startswith("dormsig_")]:
        del sub.obsm[key]
    score(sub, **kwargs)
    target = adata.copy() if copy else adata
    for key in sub.obsm.keys():
        if key.startswith("dormsig_"):
            frame = sub.obsm[key]
            if isinstance(frame, pd.DataFrame):
                target.obsm[key] = frame.reindex(target.obs_names)
            else:
                full = np.full((target.n_obs, *np.shape(frame)[1:]), np.nan)
                full[mask] = np.asarray(frame, dtype=np.float64)
                target.obsm[key] = full
    for col in sub.obs.columns:
        if str(col).startswith("dormsig_"):
            target.obs[col] = sub.obs[col].reindex(target.obs_names).to_numpy()
    target.obs[SCORED_COLUMN] = mask
    rec = dict(sub.uns[UNS_KEY]["score"])
    rec["cells"] = selection_record(adata, cells, mask)
    attach(target, "score", rec)
    return target if copy else None


def rank_mask(adata: AnnData, cells: Any) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """The observations ``rank`` may call: ``cells`` if given, else those ``score`` was restricted to."""
    mask = None
    rec = None
    if SCORED_COLUMN in adata.obs.columns:
        mask = adata.obs[SCORED_COLUMN].to_numpy(dtype=bool)
        stored = adata.uns.get(UNS_KEY, {}).get("score", {}).get("cells")
        rec = dict(stored) if isinstance(stored, Mapping) else {"n_selected": int(mask.sum()), "n_obs": int(adata.n_obs)}
    if cells is not None:
        chosen = select_cells(adata, cells)
        mask = chosen if mask is None else (mask & chosen)
        if not mask.any():
            raise InputError(f"cells: {parse_cells(cells)} selects no scored observation")
        rec = selection_record(adata, cells, mask)
    return mask, rec


def call_labels(dormant: np.ndarray, scored: np.ndarray | None,
                other: Mapping[str, np.ndarray] | None = None) -> pd.Categorical:
    """``dormant``/``not_dormant`` calls, ``not_scored`` outside the selection, and ``other`` labels
    (e.g. ``{"no_tumour_rna": mask}``) where their masks say; a category only when used."""
    labels = np.where(dormant, "dormant", "not_dormant").astype(object)
    if scored is not None:
        labels[~np.asarray(scored, dtype=bool)] = NOT_SCORED
    for label, mask in (other or {}).items():
        labels[np.asarray(mask, dtype=bool)] = label
    extra = [c for c in (NOT_SCORED, *(other or {})) if (labels == c).any()]
    return pd.Categorical(labels, categories=["not_dormant", "dormant", *extra])


def expand(values: np.ndarray, mask: np.ndarray | None, fill: float = np.nan) -> np.ndarray:
    """Values computed on ``mask`` rows, placed back into a full-length vector."""
    if mask is None:
        return values
    out = np.full(mask.size, fill, dtype=np.float64)
    out[mask] = values
    return out


__all__ = ["NOT_SCORED", "SCORED_COLUMN", "CellSelection", "call_labels", "expand", "parse_cells", "rank_mask",
           "score_restricted", "select_cells", "selection_record"]

