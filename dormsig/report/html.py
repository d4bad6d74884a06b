"""The self-contained HTML report.

One file, no JavaScript, no network: CSS is inline and each figure is embedded as a base64
PNG (and also written as PNG and SVG into a figures directory beside the report). Every
piece of text from the data is HTML-escaped. A section whose input is missing stays in the
report and says what is missing, so a reader can tell "not run" from "nothing found".
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import string
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dormsig import get
from dormsig._version import __version__
from dormsig.errors import InputError
from dormsig.io.write import atomic_path
from dormsig.pl.score_plots import CALL_COLUMN, INDEX_COLUMN, match_coverage, score_frame, scores, waterfall
from dormsig.provenance import UNS_KEY, jsonable
from dormsig.report.findings import (
    FindingsContext,
    compare_programme,
    findings_html,
    findings_table,
    infer_contrast,
)

log = logging.getLogger(__name__)

#: (anchor, heading) of every section, in order. Tests and readers rely on these headings.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("input", "Input summary"),
    ("findings", "What the data show about the NOTCH2-niche programme"),
    ("signatures", "Signature match report"),
    ("scores", "Score distributions by group"),
    ("waterfall", "Ranked dormancy index"),
    ("compartment", "Where the dormant calls fall"),
    ("heatmap", "Signature gene heatmap"),
    ("de", "Differential expression"),
    ("enrichment", "Enrichment"),
    ("provenance", "Provenance"),
)
DE_COLUMNS = ("gene", "baseMean", "log2FoldChange", "log2FoldChange_shrunk", "lfcSE", "stat", "pvalue", "padj", "optim")
MAX_HEATMAP_GENES = 60
MAX_CELL = 80  # longest text shown in a table cell
#: Every figure the report can draw (file stems in the figures directory).
FIGURE_NAMES = ("match_coverage", "scores_by_group", "waterfall", "heatmap", "volcano", "ma")
# Deterministic SVG ids and no creation date, so that reruns give identical figure files.
_RC = {"svg.hashsalt": "dormsig", "svg.fonttype": "path", "font.size": 9.0}


def write_report(
    path: str | os.PathLike,
    *,
    adata: AnnData,
    de: pd.DataFrame | str | os.PathLike | None = None,
    enrichment: pd.DataFrame | str | os.PathLike | None = None,
    groupby: str | None = None,
    title: str = "dormsig report",
    figures_dir: str | os.PathLike | None = None,
    provenance: Mapping[str, Any] | None = None,
    match_report: Any = None,
    heatmap_genes: Iterable[str] | None = None,
    max_rows: int = 50,
    findings: FindingsContext | None = None,
) -> Path:
    """Write one self-contained HTML report and return its path.

    Parameters
    ----------
    path
        Output ``.html`` file (written atomically; an existing file is replaced: the caller, e.g.
        the CLI, decides about ``--force`` with :func:`dormsig.io.write.check_output`).
    adata
        AnnData, ideally scored (:func:`dormsig.tl.score`) and ranked (:func:`dormsig.tl.rank`).
    de
        Result of :func:`dormsig.de.deseq` (or a path to its TSV/CSV); ``None`` = no DE run.
    enrichment
        Result of :func:`dormsig.de.enrich` (or a path to its TSV/CSV); ``None`` = not run.
    groupby
        ``obs`` column to split score distributions and the heatmap by.
    title
        Report title.
    figures_dir
        Where every figure is also saved as PNG and SVG; default ``<report stem>_figures/``
        beside the report.
    provenance
        Extra provenance to show (e.g. the command line); shown with ``uns["dormsig"]``.
    match_report
        A :class:`dormsig.signatures.MatchReport` or its frame; default: the one recorded in
        ``uns["dormsig"]["score"]``.
    heatmap_genes
        Genes for the heatmap; default: the matched signature genes recorded by scoring.
    max_rows
        Longest table shown (the full tables are in the pipeline's TSV outputs).
    findings
        Where the cells come from, the patient column and the contrast, for the findings section
        (:class:`dormsig.report.findings.FindingsContext`); the contrast defaults to NOTCH2_high vs
        NOTCH1_high in ``groupby``.

    Returns
    -------
    The path of the written report.
    """
    path = Path(path)
    if groupby is not None and groupby not in adata.obs.columns:
        raise InputError(f"AnnData.obs has no column {groupby!r} (--groupby)")
    figures = Path(figures_dir) if figures_dir is not None else path.parent / f"{path.stem}_figures"
    de_frame = _read_table(de, "DE table") if de is not None else None
    if de_frame is not None:
        de_frame = _normalise_de(de_frame)
    enr_frame = _read_table(enrichment, "enrichment table") if enrichment is not None else None
    if enr_frame is not None:
        enr_frame = _drop_unnamed(enr_frame)
    figures.mkdir(parents=True, exist_ok=True)
    builder = _Builder(figures, max_rows=max_rows)
    uns = _plain(dict(adata.uns.get(UNS_KEY, {})))
    match_frame = _match_frame(match_report, adata)
    with matplotlib.rc_context(_RC):
        body = [
            _section_input(builder, adata, uns, groupby),
            _section_findings(builder, adata, groupby, findings),
            _section_signatures(builder, match_frame, uns),
            _section_scores(builder, adata, groupby),
            _section_waterfall(builder, adata, uns),
            _section_compartment(builder, uns),
            _section_heatmap(builder, adata, groupby, uns, match_frame, de_frame, heatmap_genes),
            _section_de(builder, de_frame),
            _section_enrichment(builder, enr_frame),
            _section_provenance(uns, provenance),
        ]
    # A figure of an earlier run that this run did not draw (e.g. a volcano plot, now without DE) would mislead.
    for name in FIGURE_NAMES:
        if name not in builder.drawn:
            for suffix in ("png", "svg"):
                (figures / f"{name}.{suffix}").unlink(missing_ok=True)
    toc = "\n".join(f'<li><a href="#{a}">{_e(h)}</a></li>' for a, h in SECTIONS)
    template = string.Template(resources.files("dormsig.report").joinpath("template.html").read_text("utf-8"))
    text = template.substitute(title=_e(title), version=_e(__version__), toc=toc, body="\n".join(body))
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# building blocks


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """A short, readable cell: NA for missing, 4 significant digits, scientific below 1e-3."""
    if isinstance(value, list | tuple | np.ndarray):
        items = [str(v) for v in value]
        return ", ".join(items[:12]) + (f", … (+{len(items) - 12})" if len(items) > 12 else "")
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return "NA"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(value)


def _absent(message: str) -> str:
    return f'<p class="absent">{_e(message)}</p>'


def _section(anchor: str, parts: Iterable[str]) -> str:
    heading = dict(SECTIONS)[anchor]
    return f'<section id="{anchor}">\n<h2>{_e(heading)}</h2>\n' + "\n".join(parts) + "\n</section>"


def _table(frame: pd.DataFrame, *, max_rows: int, index: bool = False) -> str:
    shown = frame.head(max_rows)
    cols = list(shown.columns)
    head = "".join(f"<th>{_e(c)}</th>" for c in ([shown.index.name or ""] if index else []) + cols)
    rows = []
    for idx, row in shown.iterrows():
        cells = [f"<th>{_e(idx)}</th>"] if index else []
        for c in cols:
            v = row[c]
            cls = ' class="num"' if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) else ""
            text = _fmt(v)
            if len(text) > MAX_CELL:  # e.g. leading-edge gene lists: full text on hover
                cells.append(f'<td title="{_e(text)}">{_e(text[:MAX_CELL])}…</td>')
            else:
                cells.append(f"<td{cls}>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if len(frame) > max_rows:
        note = f'<p class="note">First {max_rows} of {len(frame)} rows.</p>'
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>" + note


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in items.items())
    return f"<table>\n<tbody>\n{rows}\n</tbody></table>"


class _Builder:
    """Renders figures: PNG + SVG to the figures directory, PNG embedded in the HTML."""

    def __init__(self, figures: Path, *, max_rows: int) -> None:
        self.figures = figures
        self.max_rows = max_rows
        self.drawn: list[str] = []

    def figure(self, name: str, draw: Callable[[Axes], Any], *, figsize: tuple[float, float], caption: str) -> str:
        # A bare Figure with an Agg canvas: no pyplot state, no GUI backend, nothing to leak.
        fig = Figure(figsize=figsize, dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        draw(ax)
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png")
        svg = io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None})
        fig.clear()
        for suffix, buffer in (("png", png), ("svg", svg)):
            with atomic_path(self.figures / f"{name}.{suffix}") as tmp:
                tmp.write_bytes(buffer.getvalue())
        self.drawn.append(name)
        data = base64.b64encode(png.getvalue()).decode("ascii")
        return (
            f'<figure id="fig-{_e(name)}"><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)} (also <code>{_e(name)}.png</code> / <code>{_e(name)}.svg</code> "
            f"in <code>{_e(self.figures.name)}/</code>)</figcaption></figure>"
        )


def _plain(value: Any) -> Any:
    """uns content -> JSON-like Python (numpy to lists; JSON text that provenance encoded, decoded)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return _plain(value.to_dict(orient="list"))
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str) and value[:1] in "[{" and value[-1:] in "]}":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, str) and value == "None":
        return None
    return jsonable(value)


def _read_table(value: Any, what: str) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        return value
    path = Path(value)
    if not path.exists():
        raise InputError(f"{what} not found", path=path)
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    frame = pd.read_csv(path, sep=sep)
    if frame.columns[0].startswith("Unnamed"):  # written with the index as first column
        frame = frame.set_index(frame.columns[0])
        frame.index.name = None
    return frame


def _drop_unnamed(frame: pd.DataFrame, name: str | None = None) -> pd.DataFrame:
    """A table read back with its index as an "Unnamed: 0" column: name that column (or drop it)."""
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed")]
    if not unnamed:
        return frame
    if name is not None and name not in frame.columns:
        return frame.rename(columns={unnamed[0]: name})
    return frame.drop(columns=unnamed)


def _normalise_de(frame: pd.DataFrame) -> pd.DataFrame:
    frame = _drop_unnamed(frame.copy(), "gene")
    if "gene" not in frame.columns:
        frame.insert(0, "gene", frame.index.astype(str))
    missing = [c for c in ("log2FoldChange", "pvalue", "padj", "baseMean") if c not in frame.columns]
    if missing:
        raise InputError(f"DE table lacks column(s) {', '.join(missing)}")
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
    return _normalise_match(frame)


def _normalise_match(frame: pd.DataFrame) -> pd.DataFrame:
    """A match table with a ``set`` column (``MatchReport.to_frame`` calls it ``name``)."""
    return frame.rename(columns={"name": "set"}) if "set" not in frame.columns else frame


# ---------------------------------------------------------------------------------------------------------
# sections


def _section_input(b: _Builder, adata: AnnData, uns: Mapping[str, Any], groupby: str | None) -> str:
    summary = {
        "observations (samples or cells)": adata.n_obs,
        "genes": adata.n_vars,
        "layers": ", ".join(map(str, adata.layers.keys())) or "none",
    }
    inp = uns.get("input")
    parts = []
    if isinstance(inp, Mapping):
        for key in ("path", "paths", "file", "input", "format", "sha256", "sample_sheet", "sample_sheet_sha256"):
            if key in inp:
                summary[f"input {key}"] = inp[key]
    parts.append(_kv_table(summary))
    if isinstance(inp, Mapping):
        parts.append("<h3>Input record</h3>")
        parts.append(_kv_table({k: v for k, v in inp.items() if not isinstance(v, Mapping)}))
    else:
        parts.append(_absent("no input record (uns['dormsig']['input']): the AnnData was not read by dormsig.io.read"))
    genes = uns.get("genes")
    parts.append("<h3>Gene identifier harmonisation</h3>")
    if isinstance(genes, Mapping):
        flat = {k: v for k, v in genes.items() if not isinstance(v, Mapping)}
        flat.update({f"{k}.{k2}": v2 for k, v in genes.items() if isinstance(v, Mapping) for k2, v2 in v.items()})
        parts.append(_kv_table(flat))
    else:
        parts.append(_absent("no gene harmonisation record (uns['dormsig']['genes'])"))
    if groupby is not None:
        counts = adata.obs[groupby].astype(str).value_counts(sort=False).rename("n").to_frame()
        counts.index.name = groupby
        parts.append(f"<h3>Groups ({_e(groupby)})</h3>")
        parts.append(_table(counts, max_rows=b.max_rows, index=True))
    return _section("input", parts)


def _warnings(uns: Mapping[str, Any]) -> str:
    """The warnings the steps recorded (scoring, groups) and DE run on cells as replicates."""
    items = []
    for step in ("groups", "score"):
        rec = uns.get(step)
        if isinstance(rec, Mapping):
            items += [f"{step}: {w}" for w in rec.get("warnings") or [] if w]
    for step, rec in uns.items():
        if isinstance(rec, Mapping) and rec.get("cells_as_replicates") is True:
            items.append(f"{step}: DE treated single cells as independent replicates; its p-values are optimistic "
                         "(aggregate cells to pseudobulk samples per sample)")
    if not items:
        return ""
    return '<h3>Warnings</h3>\n<ul class="warnings">' + "".join(f"<li>{_e(w)}</li>" for w in items) + "</ul>"


def _section_signatures(b: _Builder, match_frame: pd.DataFrame | None, uns: Mapping[str, Any] | None = None) -> str:
    warn = _warnings(uns or {})
    if match_frame is None or match_frame.empty:
        return _section("signatures", [warn, _absent("no signature match report: no scoring run (dormsig score)")])
    detected = "n_detected" in match_frame.columns
    if {"n_total", "n_matched"} <= set(match_frame.columns):
        # bars and labels count detected genes when the report has them (coverage is then the detected fraction)
        shown = match_frame.assign(n_matched=match_frame["n_detected"]) if detected else match_frame
        caption = ("Fraction of each gene set's genes detected in the data (present and non-zero in enough "
                   "observations)" if detected else "Fraction of each gene set's genes found in the data")
        fig = b.figure(
            "match_coverage", lambda ax: match_coverage(shown, ax=ax),
            figsize=(7.5, 1.0 + 0.26 * len(match_frame)), caption=caption,
        )
    else:
        fig = _absent("no coverage plot: the match report has no n_total / n_matched counts")
    names = (("set", "part", "parts", "n_total", "n_present", "n_detected", "n_missing", "coverage", "status",
              "undetected", "missing") if detected else
             ("set", "part", "parts", "n_total", "n_matched", "coverage", "status", "missing"))
    cols = [c for c in names if c in match_frame]
    return _section("signatures", [warn, _table(match_frame[cols], max_rows=max(b.max_rows, len(match_frame))), fig])


def _has_scores(adata: AnnData) -> bool:
    try:
        score_frame(adata)
    except InputError:
        return False
    return True


def _section_scores(b: _Builder, adata: AnnData, groupby: str | None) -> str:
    if not _has_scores(adata):
        return _section("scores", [_absent("no scores: no scoring run (dormsig score)")])
    frame = score_frame(adata)
    parts = []
    if groupby is None:
        parts.append('<p class="note">No grouping given: all observations form one group.</p>')
    keys = list(frame.columns)
    n_groups = 1 if groupby is None else adata.obs[groupby].nunique()
    parts.append(b.figure(
        "scores_by_group", lambda ax: scores(adata, groupby, ax=ax),
        figsize=(8.0, 1.2 + 0.3 * len(keys) * max(1.0, n_groups / 2)),
        caption="Gene-set scores and the dormancy index" + (f" by {groupby}" if groupby else ""),
    ))
    if groupby is not None:
        summary = frame.groupby(adata.obs[groupby].astype(str).to_numpy()).median(numeric_only=True).T
        summary.index.name = "score (median by group)"
        parts.append(_table(summary, max_rows=max(b.max_rows, len(summary)), index=True))
    return _section("scores", parts)


def _section_waterfall(b: _Builder, adata: AnnData, uns: Mapping[str, Any]) -> str:
    if not _has_scores(adata) or INDEX_COLUMN not in score_frame(adata).columns:
        return _section("waterfall", [_absent("no dormancy index: no scoring run (dormsig score)")])
    parts = [b.figure("waterfall", lambda ax: waterfall(adata, ax=ax), figsize=(9.0, 3.8),
                      caption="Observations ranked by dormancy index, coloured by call")]
    parts.extend(_index_evidence(b, uns))
    if CALL_COLUMN in adata.obs.columns:
        counts = adata.obs[CALL_COLUMN].astype(str).value_counts().rename("n").to_frame()
        counts.index.name = "call"
        parts.append(_table(counts, max_rows=b.max_rows, index=True))
        rule = uns.get("rank")
        if isinstance(rule, Mapping):
            parts.append("<h3>Calling rule</h3>")
            parts.append(f"<pre>{_e(json.dumps(rule, indent=2, sort_keys=True, default=str))}</pre>")
    else:
        parts.append(_absent("no calls: dormsig.tl.rank was not run"))
    return _section("waterfall", parts)


def _index_evidence(b: _Builder, uns: Mapping[str, Any]) -> list[str]:
    """Which index made the calls, and its evidence on labelled public data (from the index YAML)."""
    from dormsig.errors import DormsigError
    from dormsig.signatures import load_index

    rec = (uns.get("score") or {}).get("index")
    if not isinstance(rec, Mapping) or not rec.get("name"):
        return []
    name, version = str(rec["name"]), str(rec.get("version", ""))
    parts = [f"<p>Dormancy index <code>{_e(name)}</code> version {_e(version)}.</p>"]
    try:
        index = load_index(name)
    except DormsigError:
        index = None
    if index is None or index.evidence is None or index.version != version:
        return parts + [_absent(f"no recorded evidence for index {name} {version}")]
    table = index.evidence_table()
    cols = [c for c in ("dataset", "target", "role", "metric", "value", "n", "ci95", "proliferation", "wiecek",
                        "wiecek_zscore", "note") if c in table.columns]
    if "note" in table:  # most rows have none: an empty cell, not "NA"
        table["note"] = table["note"].fillna("")
    parts.append("<h3>Evidence: agreement with experimentally labelled public data (docs/evidence.md)</h3>")
    parts.append(f"<p>{_e(index.evidence.method)} Design: {_e(index.evidence.design)}.</p>")
    parts.append(_table(table[cols], max_rows=max(b.max_rows, len(index.evidence.results))))
    return parts


def _signature_genes(uns: Mapping[str, Any], match_frame: pd.DataFrame | None) -> list[str]:
    genes: list[str] = []
    score = uns.get("score")
    if isinstance(score, Mapping):
        for key in ("genes", "matched_genes", "gene_sets"):
            value = score.get(key)
            if isinstance(value, Mapping):
                # {set: [genes]} or {set: {"up": [genes], "down": [genes]}}
                for v in value.values():
                    if isinstance(v, Mapping):
                        for part in v.values():
                            genes.extend(part if isinstance(part, list) else [])
                    elif isinstance(v, list):
                        genes.extend(v)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                genes.extend(value)
            if genes:
                break
    if not genes and match_frame is not None and "matched" in match_frame.columns:
        for v in match_frame["matched"]:
            genes.extend(v if isinstance(v, list) else str(v).split(","))
    return list(dict.fromkeys(g.strip() for g in genes if isinstance(g, str) and g.strip()))


def _section_heatmap(
    b: _Builder, adata: AnnData, groupby: str | None, uns: Mapping[str, Any],
    match_frame: pd.DataFrame | None, de: pd.DataFrame | None, heatmap_genes: Iterable[str] | None,
) -> str:
    parts = []
    if heatmap_genes is not None:
        genes, source = list(heatmap_genes), "the genes given"
    else:
        genes, source = _signature_genes(uns, match_frame), "matched signature genes"
        if not genes and de is not None:
            ranked = de.sort_values(["padj", "pvalue"], na_position="last")
            genes, source = ranked["gene"].astype(str).head(MAX_HEATMAP_GENES).tolist(), "top DE genes by padj"
            parts.append('<p class="note">No signature genes recorded by scoring; showing the top DE genes.</p>')
    present = [g for g in dict.fromkeys(genes) if g in adata.var_names]
    if not present:
        return _section("heatmap", [_absent("no signature genes to show: no scoring run (dormsig score) and no DE run")])
    if len(present) > MAX_HEATMAP_GENES:
        # Keep the most variable genes so the figure stays legible.
        x = adata[:, present].X
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        order = np.argsort(-np.nanvar(x, axis=0), kind="stable")[:MAX_HEATMAP_GENES]
        parts.append(f'<p class="note">{MAX_HEATMAP_GENES} most variable of {len(present)} {_e(source)}.</p>')
        present = [present[i] for i in sorted(order)]
    if groupby is not None:
        # dormsig.pl.de_plots.heatmap: genes x groups, the group means z-scored per gene.
        from dormsig.pl.de_plots import heatmap as draw

        what, width = "Mean expression per group (log-normalised, z-scored per gene)", 4.0 + 0.8 * adata.obs[groupby].nunique()
    else:
        draw, what, width = _heatmap, "Expression per observation (log-normalised, z-scored per gene)", 9.0
    parts.append(b.figure(
        "heatmap", lambda ax: draw(adata, present, groupby, ax=ax),
        figsize=(min(width, 10.0), 1.5 + 0.16 * len(present)),
        caption=f"{what} of {len(present)} {source}",
    ))
    return _section("heatmap", parts)


def _heatmap(adata: AnnData, genes: list[str], groupby: str | None, ax: Axes) -> Axes:
    """Heatmap without groups: genes x observations, z-scored per gene, observations ordered by group."""
    x = adata[:, genes].X
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x, dtype=float)
    x = np.asarray(x, dtype=float)
    sd = x.std(axis=0)
    z = np.divide(x - x.mean(axis=0), sd, out=np.zeros_like(x), where=sd > 0).T
    if groupby is not None:
        labels = adata.obs[groupby].astype(str).to_numpy()
        order = np.argsort(labels, kind="stable")
        z, labels = z[:, order], labels[order]
    im = ax.imshow(z, aspect="auto", cmap="RdBu_r", vmin=-2.5, vmax=2.5, interpolation="nearest")
    ax.set_yticks(range(len(genes)), genes, fontsize="x-small")
    if groupby is not None:
        bounds = np.flatnonzero(labels[1:] != labels[:-1]) + 0.5
        for pos in bounds:
            ax.axvline(pos, color="black", linewidth=1)
        edges = np.concatenate([[-0.5], bounds, [labels.size - 0.5]])
        ax.set_xticks((edges[:-1] + edges[1:]) / 2, [labels[int(np.ceil(e + 0.5))] for e in edges[:-1]])
    else:
        ax.set_xticks([])
    ax.set_xlabel("observations" + (f" by {groupby}" if groupby else ""))
    ax.figure.colorbar(im, ax=ax, label="z-score", fraction=0.03)
    return ax


def _section_de(b: _Builder, de: pd.DataFrame | None) -> str:
    if de is None:
        return _section("de", [_absent("no DE run (dormsig de)")])
    padj = de["padj"].astype(float)
    lfc = de["log2FoldChange"].astype(float)
    summary = {
        "genes tested": len(de),
        "padj < 0.05": int((padj < 0.05).sum()),
        "up (padj < 0.05, log2FC > 0)": int(((padj < 0.05) & (lfc > 0)).sum()),
        "down (padj < 0.05, log2FC < 0)": int(((padj < 0.05) & (lfc < 0)).sum()),
    }
    # R's per-gene fit diagnostics: a gene refitted by the optimiser has a fold change at or near the
    # +-30 bound (complete separation), a maximum-likelihood artefact that shrinkage pulls back
    if "optim" in de:
        summary["IRLS diverged, refitted by L-BFGS-B (R's optim)"] = int((de["optim"] == True).sum())  # noqa: E712
    if "betaConv" in de:
        summary["fit not converged (betaConv FALSE)"] = int((de["betaConv"] == False).sum())  # noqa: E712
    if "contrast_all_zero" in de:
        summary["zero in both groups (log2FC 0, p 1, as R)"] = int((de["contrast_all_zero"] == True).sum())  # noqa: E712
    shrunk = "log2FoldChange_shrunk" in de
    summary["fold changes plotted"] = "apeglm-shrunken (MLE in the table)" if shrunk else "maximum likelihood"
    from dormsig.pl.de_plots import ma, volcano

    parts = [
        _kv_table(summary),
        b.figure("volcano", lambda ax: volcano(de, ax=ax), figsize=(6.5, 5.0),
                 caption="Volcano plot: log2 fold change against -log10 p-value"),
        b.figure("ma", lambda ax: ma(de, ax=ax), figsize=(6.5, 4.5),
                 caption="MA plot: log2 fold change against mean normalised count"),
        "<h3>Top genes by adjusted p-value</h3>",
    ]
    cols = [c for c in DE_COLUMNS if c in de.columns]
    top = de.sort_values(["padj", "pvalue"], na_position="last")[cols]
    parts.append(_table(top, max_rows=min(b.max_rows, 25)))
    return _section("de", parts)


def _section_enrichment(b: _Builder, enrichment: pd.DataFrame | None) -> str:
    if enrichment is None:
        return _section("enrichment", [_absent("no enrichment run (dormsig enrich)")])
    frame = enrichment
    sort = [c for c in ("fdr", "pvalue") if c in frame.columns]
    if sort:
        frame = frame.sort_values(sort, na_position="last")
    parts = []
    if "fdr" in frame.columns:
        parts.append(f'<p>{int((frame["fdr"].astype(float) < 0.05).sum())} of {len(frame)} sets with FDR &lt; 0.05.</p>')
    parts.append(_table(frame, max_rows=b.max_rows))
    return _section("enrichment", parts)


def _section_findings(b: _Builder, adata: AnnData, groupby: str | None, context: FindingsContext | None) -> str:
    context = context or FindingsContext()
    if not _has_scores(adata):
        return _section("findings", [_absent("no scores: no scoring run (dormsig score)")])
    contrast = context.contrast or (infer_contrast(adata, groupby) if groupby is not None else None)
    if groupby is None or contrast is None:
        return _section("findings", [_absent("no NOTCH2_high vs NOTCH1_high groups to compare (dormsig groups, "
                                             "then report with --groupby)")])
    try:
        comparison = compare_programme(adata, groupby, *contrast, context=context)
    except InputError as exc:
        return _section("findings", [_absent(f"not compared: {exc}")])
    return _section("findings", [findings_html(comparison), "<h3>Per component</h3>",
                                 _table(findings_table(comparison), max_rows=b.max_rows)])


def _section_compartment(b: _Builder, uns: Mapping[str, Any]) -> str:
    rec = uns.get("compartment")
    if not isinstance(rec, Mapping):
        return _section("compartment", [_absent("no compartment check (dormsig.tl.check_compartments)")])
    parts = [f"<p>{_e(rec.get('message', ''))}</p>"]
    comps = rec.get("compartments") or []
    calls, overall, anchor = rec.get("calls") or {}, rec.get("overall") or {}, rec.get("calls_anchor") or {}
    rows = [{"compartment": c.get("label"), "family": c.get("family"), "dormant calls": calls.get(c.get("label"), 0),
             "anchor+ calls": f"{anchor.get(c.get('label'), 0)} ({c.get('anchor')}+)",
             "all observations": overall.get(c.get("label"), 0),
             "markers needed": f"{c.get('needed')} of {len(c.get('markers') or [])}", "markers": c.get("markers")}
            for c in comps if isinstance(c, Mapping)]
    if rows:
        parts.append(_table(pd.DataFrame(rows), max_rows=b.max_rows))
    skipped = rec.get("skipped") or {}
    if isinstance(skipped, Mapping) and skipped:
        parts.append(_kv_table({f"not checked: {k}": v for k, v in skipped.items()}))
    params = rec.get("params") or {}
    parts.append('<p class="note">A marker counts as expressed at &ge; '
                 f'{_e(_fmt(params.get("min_cpm")))} counts per million of the observation\'s library; an observation '
                 'carries a compartment label when it expresses at least half of that compartment\'s markers. '
                 'Marker sets: signatures/compartments/ (one citation per gene).</p>')
    return _section("compartment", parts)


def _section_provenance(uns: Mapping[str, Any], provenance: Mapping[str, Any] | None) -> str:
    doc: dict[str, Any] = {"dormsig_version": __version__, "uns['dormsig']": uns}
    if provenance:
        doc["run"] = _plain(dict(provenance))
    text = json.dumps(jsonable(doc), indent=2, sort_keys=True, default=str)
    return _section("provenance", [f"<p>dormsig version <code>{_e(__version__)}</code>.</p>", f"<pre>{_e(text)}</pre>"])
