"""The typed inputs every report section takes: :class:`ReportContext`.

:func:`build_context` turns what :func:`dormsig.report.write_report` was given (tables or paths,
one contrast or several) into this one object: DE and enrichment tables per contrast, read
through :mod:`dormsig.get` (the one reader of dormsig's result tables), the provenance records
of ``uns["dormsig"]`` decoded by :func:`dormsig.get.provenance`, and the match report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig import get
from dormsig.errors import InputError
from dormsig.io.results import REQUIRED
from dormsig.report._html import Figures
from dormsig.report.findings import FindingsContext

#: A DE or enrichment input: a table, a path to one, or ``{contrast label: table or path}``.
TableArg = pd.DataFrame | str | os.PathLike | Mapping[str, pd.DataFrame | str | os.PathLike] | None


@dataclass
class ReportContext:
    """Everything a section may show. Sections read it; none of them reads files or decodes records."""

    adata: AnnData
    figures: Figures
    groupby: str | None = None
    #: contrast label -> DE table (a ``gene`` column, then the DESeq2 columns), in the run's order;
    #: the label is "" for a single unnamed table
    de: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: contrast label -> enrichment table (:func:`dormsig.de.enrich`)
    enrichment: dict[str, pd.DataFrame] = field(default_factory=dict)
    findings: FindingsContext = field(default_factory=FindingsContext)
    #: ``uns["dormsig"]`` as plain Python (one record per step)
    uns: dict[str, Any] = field(default_factory=dict)
    #: the match report as a table (one row per set), None without scoring
    match: pd.DataFrame | None = None
    #: extra provenance to show (e.g. the command line)
    provenance: Mapping[str, Any] | None = None
    heatmap_genes: list[str] | None = None
    max_rows: int = 50

    @property
    def skipped_contrasts(self) -> dict[str, str]:
        """Contrasts the run could not test, with the reason (recorded by the pipeline)."""
        rec = self.uns.get("skipped_contrasts")
        return {str(k): str(v) for k, v in rec.items() if k != "none"} if isinstance(rec, Mapping) else {}


def build_context(
    adata: AnnData,
    figures: Figures,
    *,
    de: TableArg = None,
    enrichment: TableArg = None,
    groupby: str | None = None,
    findings: FindingsContext | None = None,
    match_report: Any = None,
    provenance: Mapping[str, Any] | None = None,
    heatmap_genes: Any = None,
    max_rows: int = 50,
) -> ReportContext:
    """Read and check every input of the report (nothing is written here)."""
    if groupby is not None and groupby not in adata.obs.columns:
        raise InputError(f"AnnData.obs has no column {groupby!r} (--groupby)")
    return ReportContext(
        adata=adata, figures=figures, groupby=groupby,
        de={k: _normalise_de(v, k) for k, v in _tables(de, "de").items()},
        enrichment={k: _drop_unnamed(v) for k, v in _tables(enrichment, "enrichment").items()},
        findings=findings or FindingsContext(),
        uns=get.provenance(adata),
        match=_match_frame(match_report, adata),
        provenance=provenance,
        heatmap_genes=None if heatmap_genes is None else [str(g) for g in heatmap_genes],
        max_rows=max_rows,
    )


def _tables(value: TableArg, kind: str) -> dict[str, pd.DataFrame]:
    if value is None:
        return {}
    items = value.items() if isinstance(value, Mapping) else [("", value)]
    return {str(label): _read(table, kind, str(label)) for label, table in items}


def _read(value: Any, kind: str, label: str) -> pd.DataFrame:
    what = f"{'DE' if kind == 'de' else kind} table" + (f" {label!r}" if label else "")
    if isinstance(value, pd.DataFrame):
        return value
    path = Path(value)
    if not path.is_file():
        raise InputError(f"{what} not found", path=path)
    return get.de_table(path) if kind == "de" else get.enrichment_table(path)


def _drop_unnamed(frame: pd.DataFrame, name: str | None = None) -> pd.DataFrame:
    """A table saved with its index as an "Unnamed: 0" column: name that column (or drop it)."""
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed")]
    if not unnamed:
        return frame
    if name is not None and name not in frame.columns:
        return frame.rename(columns={unnamed[0]: name})
    return frame.drop(columns=unnamed)


def _normalise_de(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    frame = _drop_unnamed(frame.copy(), "gene")
    if "gene" not in frame.columns:
        frame.insert(0, "gene", frame.index.astype(str))
    missing = [c for c in REQUIRED["de"][0] if c not in frame.columns]
    if missing:
        raise InputError(f"DE table{f' {label!r}' if label else ''} lacks column(s) {', '.join(missing)}")
    return frame.reset_index(drop=True)


def _match_frame(match_report: Any, adata: AnnData) -> pd.DataFrame | None:
    """The match report as a table: the one given (a ``MatchReport`` or its frame), else the scoring's."""
    if match_report is None:
        try:
            match_report = get.match_report(adata)
        except InputError:
            return None
    frame = match_report.to_frame().reset_index() if hasattr(match_report, "to_frame") else pd.DataFrame(match_report)
    if {"n_up", "n_up_matched", "n_down", "n_down_matched"} <= set(frame.columns):
        frame["parts"] = [", ".join(f"{part} {m}/{n}" for part, m, n in (("up", r.n_up_matched, r.n_up),
                                                                            ("down", r.n_down_matched, r.n_down)) if n)
                          for r in frame.itertuples()]
    for col in ("missing", "undetected"):
        if col in frame.columns:
            frame[col] = frame[col].astype(str).str.replace(",", ", ")
    return frame.rename(columns={"name": "set"}) if "set" not in frame.columns else frame


def signature_gene_sets(ctx: ReportContext) -> dict[str, list[str]]:
    """The scored genes of each set (``"SET (down)"`` for a set's down part), as recorded by scoring."""
    score = ctx.uns.get("score")
    sets: dict[str, list[str]] = {}
    if isinstance(score, Mapping):
        for key in ("genes", "matched_genes", "gene_sets"):
            value = score.get(key)
            if isinstance(value, Mapping):
                for name, v in value.items():
                    if isinstance(v, Mapping):  # {set: {"up": [...], "down": [...]}}
                        for part, genes in v.items():
                            if isinstance(genes, list) and genes:
                                sets[name if part == "up" else f"{name} ({part})"] = [str(g) for g in genes]
                    elif isinstance(v, list) and v:
                        sets[name] = [str(g) for g in v]
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                sets["signature genes"] = list(value)
            if sets:
                break
    if not sets and ctx.match is not None and "matched" in ctx.match.columns:
        for name, v in zip(ctx.match["set"], ctx.match["matched"], strict=False):
            genes = v if isinstance(v, list) else str(v).split(",")
            sets[str(name)] = [g.strip() for g in genes if g.strip()]
    return sets


def padj_order(de: pd.DataFrame) -> pd.DataFrame:
    """DE rows by adjusted p-value, then p-value (NA last)."""
    return de.sort_values(["padj", "pvalue"], na_position="last", kind="stable")


def numeric(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
