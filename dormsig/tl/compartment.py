"""Where do the dormant calls fall? Marker-based compartment check: ``dormsig.tl.check_compartments``.

The dormancy signatures are meant to be scored in tumour cells, but leukocytes, macrophages,
endothelial cells or normal glia in the same sample score too (leukocytes express CXCR4, the
HSC-mimicry gene, far more than carcinoma cells do). This module labels every observation with
the non-tumour compartment whose shipped markers it expresses (``signatures/compartments/``)
and says how many dormant calls carry such a label.

Rule, per observation and compartment: a marker is *expressed* at ``>= min_cpm`` counts per
million of the observation's library (default 100: 1 count in 10,000, so any UMI of a droplet
cell with < 10k UMIs, but 10 reads of a 100k full-length library and 500 of a 5M one, where single
reads are noise); the observation is *positive* when it expresses at least half (``min_fraction``) of the
compartment's markers found in the data, and at least ``min_markers`` of them. Its label is the
positive compartment with the largest expressed fraction (ties: library order), else ``"none"``.
A label is evidence about the cell, not a diagnosis: "none" does not prove a tumour cell.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig import _keys as K
from dormsig.errors import InputError
from dormsig.provenance import UNS_KEY, attach, record
from dormsig.tl._matrix import counts_source, linear_chunks

KEY = K.OBS_COMPARTMENT
NONE = "none"
CALL_COLUMN = K.OBS_CALL
#: Above this many observations the data are taken for single cells.
_MAX_BULK_OBS = 1000


@dataclass(frozen=True)
class Compartment:
    """One marker set: its short label, family (immune, stromal...), anchor gene and markers in the data."""

    name: str
    label: str
    family: str
    anchor: str
    markers: tuple[str, ...]
    missing: tuple[str, ...]
    needed: int

    def to_dict(self) -> dict[str, Any]:
        return {"set": self.name, "label": self.label, "family": self.family, "anchor": self.anchor,
                "markers": list(self.markers), "missing": list(self.missing), "needed": self.needed}


@dataclass(frozen=True)
class CompartmentSummary:
    """Result of :func:`check_compartments` (also stored in ``uns["dormsig"]["compartment"]``)."""

    kind: str  # "cells" or "samples"
    n_obs: int
    n_calls: int | None  # dormant calls checked; None when the data were not ranked
    calls: dict[str, int]  # label -> dormant calls with that label (non-"none" labels only)
    calls_anchor: dict[str, int]  # label -> of those, how many express the set's anchor gene
    overall: dict[str, int]  # label -> observations with that label
    compartments: tuple[Compartment, ...]
    skipped: dict[str, str]  # set -> why it was not checked
    cells: dict[str, Any] | None  # the selection scoring was restricted to, if any
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_calls_outside(self) -> int:
        return int(sum(self.calls.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_obs": self.n_obs, "n_calls": self.n_calls,
                "n_calls_outside": self.n_calls_outside, "calls": dict(self.calls),
                "calls_anchor": dict(self.calls_anchor), "overall": dict(self.overall),
                "compartments": [c.to_dict() for c in self.compartments], "skipped": dict(self.skipped),
                "cells": self.cells, "message": self.message}


@functools.lru_cache(maxsize=1)
def _shipped():
    from dormsig.signatures.library import read_library_dir, shipped_path

    return read_library_dir(shipped_path() / "compartments")


def load_markers():
    """The shipped compartment marker sets (a :class:`dormsig.signatures.Library`)."""
    return _shipped()


def _marker_sets(markers: Any) -> tuple[list[tuple[str, str, list[str]]], str | None]:
    """[(set name, family, genes)] and the library version from a Library, a dict or None (shipped)."""
    if markers is None:
        markers = load_markers()
    version = getattr(markers, "version", None)
    out = []
    for name, value in markers.items():
        if hasattr(value, "up"):
            out.append((str(name), str(getattr(value, "category", "") or "other"), list(value.up)))
        elif isinstance(value, Mapping):
            out.append((str(name), str(value.get("family", "other")), list(value.get("genes", value.get("up", [])))))
        elif isinstance(value, str):
            raise InputError(f"compartment markers {name!r}: give a list of genes, not a single string")
        else:
            out.append((str(name), "other", list(value)))
    return out, version


def _label(name: str) -> str:
    return name.removeprefix("COMPARTMENT_").lower()


def _kind(n_obs: int, zero_fraction: float, median_library: float | None) -> str:
    """Single cells or samples: many observations that are mostly zeros or hold < 500k counts each."""
    if n_obs > _MAX_BULK_OBS:
        return "cells"
    small = median_library is not None and median_library < 5e5
    return "cells" if n_obs > 50 and (zero_fraction > 0.5 or small) else "samples"


def check_compartments(
    adata: AnnData,
    *,
    markers: Any = None,
    layer: str | None = None,
    min_cpm: float = 100.0,
    min_fraction: float = 0.5,
    min_markers: int = 2,
    call_key: str = CALL_COLUMN,
    key_added: str = KEY,
    chunk_size: int = 20000,
) -> CompartmentSummary:
    """Label each observation by the non-tumour compartment its markers say, and count the dormant calls.

    Parameters
    ----------
    adata
        Cells or samples x genes, ideally ranked (:func:`dormsig.tl.rank`). Reads ``layers["counts"]``
        (else ``X``; log1p-normalised ``X`` is turned back into counts per million).
    markers
        ``None``: the shipped sets (``signatures/compartments/``). Else a
        :class:`dormsig.signatures.Library` or ``{name: genes}``.
    layer
        Layer to read instead of the counts layer.
    min_cpm
        A marker is expressed at this many counts per million of the observation's library.
    min_fraction, min_markers
        An observation is positive for a compartment when it expresses at least
        ``max(min_markers, ceil(min_fraction * n))`` of the compartment's ``n`` markers in the data.
    call_key
        ``obs`` column of the calls (``"dormant"`` is counted).
    key_added
        ``obs[key_added]``: the label (compartment or ``"none"``); ``obsm[key_added + "_fraction"]``:
        fraction of each compartment's markers expressed.

    Returns
    -------
    The summary, also stored (with parameters and marker lists) in ``uns["dormsig"]["compartment"]``.
    Compartments with fewer than ``min_markers`` markers in the data are skipped and listed.
    """
    if not 0 < min_fraction <= 1:
        raise InputError(f"min_fraction must be in (0, 1], got {min_fraction}")
    if min_cpm < 0 or min_markers < 1:
        raise InputError(f"min_cpm must be >= 0 and min_markers >= 1, got {min_cpm} and {min_markers}")
    sets, version = _marker_sets(markers)
    var = pd.Index(adata.var_names.astype(str))
    comps: list[Compartment] = []
    skipped: dict[str, str] = {}
    for name, family, genes in sets:
        present = [g for g in dict.fromkeys(genes) if g in var]
        missing = tuple(g for g in dict.fromkeys(genes) if g not in var)
        if len(present) < min_markers:
            skipped[name] = f"{len(present)} of {len(genes)} markers in the data (< {min_markers})"
            continue
        needed = max(min_markers, math.ceil(min_fraction * len(present) - 1e-9))
        anchor = genes[0] if genes[0] in var else present[0]
        comps.append(Compartment(name, _label(name), family, anchor, tuple(present), missing, needed))

    X, is_log = counts_source(adata, layer)
    cols = sorted({var.get_loc(g) for c in comps for g in c.markers})
    col_pos = {c: i for i, c in enumerate(cols)}
    expressed = np.zeros((adata.n_obs, len(cols)), dtype=bool)
    nnz = 0
    libsize = np.zeros(adata.n_obs)
    for start, stop, block, lib in linear_chunks(X, is_log, chunk_size):
        nnz += int(np.count_nonzero(block.data))
        libsize[start:stop] = lib
        if cols:
            sub = block[:, cols].toarray()
            with np.errstate(divide="ignore", invalid="ignore"):
                cpm = np.where(lib[:, None] > 0, sub * (1e6 / lib[:, None]), 0.0)
            expressed[start:stop] = cpm >= max(min_cpm, np.finfo(float).tiny)

    fractions = pd.DataFrame(index=adata.obs_names, dtype=np.float64)
    positive = np.zeros((adata.n_obs, len(comps)), dtype=bool)
    for j, c in enumerate(comps):
        idx = [col_pos[var.get_loc(g)] for g in c.markers]
        n_expr = expressed[:, idx].sum(axis=1)
        fractions[c.label] = n_expr / len(idx)
        positive[:, j] = n_expr >= c.needed
    labels = np.full(adata.n_obs, NONE, dtype=object)
    if comps:
        frac = np.where(positive, fractions.to_numpy(), -1.0)
        best = np.argmax(frac, axis=1)  # first maximum: library order breaks ties
        has = positive.any(axis=1)
        labels[has] = np.array([c.label for c in comps], dtype=object)[best[has]]
    categories = [c.label for c in comps] + [NONE]
    adata.obs[key_added] = pd.Categorical(labels, categories=categories)
    adata.obsm[f"{key_added}_fraction"] = fractions

    anchor_expr = {c.label: expressed[:, col_pos[var.get_loc(c.anchor)]] for c in comps}
    calls = adata.obs[call_key].astype(str).to_numpy() if call_key in adata.obs.columns else None
    dormant = calls == "dormant" if calls is not None else None
    order = [c.label for c in comps]
    overall = {lab: int(n) for lab in order if (n := int((labels == lab).sum()))}
    in_calls: dict[str, int] = {}
    anchor_calls: dict[str, int] = {}
    if dormant is not None:
        for lab in order:
            m = dormant & (labels == lab)
            if m.any():
                in_calls[lab] = int(m.sum())
                anchor_calls[lab] = int((m & anchor_expr[lab]).sum())
    stored = adata.uns.get(UNS_KEY, {}).get("score", {})
    cells = stored.get("cells") if isinstance(stored, Mapping) else None
    cells = dict(cells) if isinstance(cells, Mapping) else None
    kind = _kind(adata.n_obs, 1.0 - nnz / max(1, adata.n_obs * adata.n_vars),
                 None if is_log else float(np.median(libsize)))  # normalised values have no library size
    summary = CompartmentSummary(
        kind=kind, n_obs=int(adata.n_obs), n_calls=None if dormant is None else int(dormant.sum()),
        calls=in_calls, calls_anchor=anchor_calls, overall=overall, compartments=tuple(comps),
        skipped=skipped, cells=cells, message="",
        params={"min_cpm": min_cpm, "min_fraction": min_fraction, "min_markers": min_markers, "layer": layer,
                "call_key": call_key, "key_added": key_added, "markers_version": version},
    )
    summary = _with_message(summary)
    attach(adata, "compartment", record("compartment", method="marker_fraction", params=summary.params,
                                        **summary.to_dict()))
    return summary


def _with_message(s: CompartmentSummary) -> CompartmentSummary:
    from dataclasses import replace

    return replace(s, message=compartment_message(s))


#: How to restrict scoring, said in the words of each interface.
ADVICE = {
    "python": "score tumour cells only: dormsig.tl.score(..., cells='COLUMN=VALUE'), e.g. cells='malignant=yes'",
    "cli": "score tumour cells only: --cells COLUMN=VALUE, e.g. --cells malignant=yes",
    "config": "score tumour cells only: 'cells: COLUMN=VALUE' under the dataset in the config, or dormsig run --cells",
}


def compartment_message(s: CompartmentSummary, advice: str = "python") -> str:
    """One or two plain sentences for the CLI (``advice="cli"``), the log and the report."""
    unit = "cells" if s.kind == "cells" else "samples"
    anchors = {c.label: c.anchor for c in s.compartments}
    checked = ", ".join(c.label for c in s.compartments) or "none"
    if not s.compartments:
        return "compartment check skipped: no compartment has enough markers in the data"
    where = "" if not s.cells else f" (scored only {s.cells.get('column')}={','.join(map(str, s.cells.get('values', [])))})"
    if s.n_calls is None:
        n_out = sum(s.overall.values())
        parts = ", ".join(f"{n} {lab}" for lab, n in s.overall.items())
        return (f"compartment check: {n_out} of {s.n_obs} {unit} express markers of a non-tumour compartment"
                + (f" ({parts})" if parts else "") + "; no dormant calls to check (run rank first)")
    if s.n_calls == 0:
        return f"compartment check: no dormant calls{where}"
    n_out = s.n_calls_outside
    if n_out == 0:
        return (f"compartment check: none of the {s.n_calls} dormant calls express markers of a non-tumour "
                f"compartment ({checked} checked){where}")
    parts = ", ".join(f"{n} {lab} ({anchors[lab]}+ in {s.calls_anchor.get(lab, 0)})" for lab, n in s.calls.items())
    base = sum(s.overall.values())
    text = (f"compartment check: {n_out} of {s.n_calls} dormant calls express markers of a non-tumour compartment: "
            f"{parts}; {base} of {s.n_obs} {unit} overall{where}.")
    if s.kind == "samples":
        return text + (" Bulk samples mix compartments: a marker-positive sample contains such cells; sort or "
                       "deconvolve to score tumour cells only.")
    if not s.cells:
        hint = ADVICE.get(advice, advice)
        return f"{text} {hint[:1].upper()}{hint[1:]}."
    return text + " The selection still holds such cells: check the annotation."


__all__ = ["KEY", "NONE", "Compartment", "CompartmentSummary", "check_compartments", "compartment_message",
           "load_markers"]
