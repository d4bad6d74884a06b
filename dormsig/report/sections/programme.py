"""What the data show about the seed's NOTCH2-niche programme (words from :mod:`dormsig.report.findings`)."""

from __future__ import annotations

from dormsig.errors import InputError
from dormsig.pl.score_plots import score_frame
from dormsig.report._html import absent, table
from dormsig.report.context import ReportContext
from dormsig.report.findings import compare_programme, findings_html, findings_table, infer_contrast

ANCHOR, HEADING = "findings", "What the data show about the NOTCH2-niche programme"


def has_scores(ctx: ReportContext) -> bool:
    try:
        score_frame(ctx.adata)
    except InputError:
        return False
    return True


def render(ctx: ReportContext) -> str:
    if not has_scores(ctx):
        return absent("no scores: no scoring run (dormsig score)")
    groupby = ctx.groupby
    contrast = ctx.findings.contrast or (infer_contrast(ctx.adata, groupby) if groupby is not None else None)
    if groupby is None or contrast is None:
        return absent("no NOTCH2_high vs NOTCH1_high groups to compare (dormsig groups, then report with --groupby)")
    try:
        comparison = compare_programme(ctx.adata, groupby, *contrast, context=ctx.findings)
    except InputError as exc:
        return absent(f"not compared: {exc}")
    return "\n".join([findings_html(comparison), "<h3>Per component</h3>",
                      table(findings_table(comparison), max_rows=ctx.max_rows)])
