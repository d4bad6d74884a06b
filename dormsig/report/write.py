"""Write the self-contained HTML report: build the typed context, render every registered section.

One file, no JavaScript, no network: CSS is inline and each figure is embedded as a base64 PNG
(and also written as PNG and SVG into a figures directory beside the report). Sections are
listed in :mod:`dormsig.report.sections`.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib
from anndata import AnnData

from dormsig._version import __version__
from dormsig.io.write import atomic_path
from dormsig.report._html import Figures, e
from dormsig.report.context import TableArg, build_context
from dormsig.report.findings import FindingsContext
from dormsig.report.sections import registry

#: Stems of the figures the report draws; DE figures carry the contrast (``volcano_<contrast>``).
FIGURE_STEMS = ("match_coverage", "scores_by_group", "waterfall", "heatmap", "volcano", "ma")
#: The figures drawn by the last run, one stem a line (hidden: not a result).
MANIFEST = ".figures"
# Deterministic SVG ids and no creation date, so that reruns give identical figure files.
_RC = {"svg.hashsalt": "dormsig", "svg.fonttype": "path", "font.size": 9.0}


def write_report(
    path: str | os.PathLike,
    *,
    adata: AnnData,
    de: TableArg = None,
    enrichment: TableArg = None,
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
        DE results (:func:`dormsig.de.deseq`): ``{contrast label: table or path}`` for every contrast
        of a run (shown in that order), or one table or path; ``None`` = no DE run. Files are read
        with :func:`dormsig.get.de_table`.
    enrichment
        Enrichment results (:func:`dormsig.de.enrich`), as ``de``.
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
        A :class:`dormsig.signatures.MatchReport` or its frame; default: the one recorded by scoring.
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
    figures = Figures(Path(figures_dir) if figures_dir is not None else path.parent / f"{path.stem}_figures")
    # every input is read and checked before anything is written
    ctx = build_context(adata, figures, de=de, enrichment=enrichment, groupby=groupby, findings=findings,
                        match_report=match_report, provenance=provenance, heatmap_genes=heatmap_genes,
                        max_rows=max_rows)
    figures.directory.mkdir(parents=True, exist_ok=True)
    sections = registry()
    with matplotlib.rc_context(_RC):
        body = [f'<section id="{s.anchor}">\n<h2>{e(s.heading)}</h2>\n{s.render(ctx)}\n</section>' for s in sections]
    _remove_stale(figures)
    toc = "\n".join(f'<li><a href="#{s.anchor}">{e(s.heading)}</a></li>' for s in sections)
    template = string.Template(resources.files("dormsig.report").joinpath("template.html").read_text("utf-8"))
    text = template.substitute(title=e(title), version=e(__version__), toc=toc, body="\n".join(body))
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _remove_stale(figures: Figures) -> None:
    """A figure of an earlier run that this run did not draw (e.g. a volcano plot, now without DE) would mislead.

    The figures a run drew are listed in ``MANIFEST`` in the figures directory, so that a section's new
    figures are cleaned up without being declared here; the known stems cover directories written before it.
    """
    manifest = figures.directory / MANIFEST
    earlier = set(manifest.read_text(encoding="utf-8").split()) if manifest.is_file() else set()
    for file in figures.directory.iterdir():
        stem = file.stem
        ours = stem in earlier or stem in FIGURE_STEMS or stem.startswith(("volcano_", "ma_"))
        if ours and file.suffix in (".png", ".svg") and stem not in figures.drawn:
            file.unlink(missing_ok=True)
    with atomic_path(manifest) as tmp:
        tmp.write_text("\n".join(sorted(figures.drawn)) + "\n", encoding="utf-8")
