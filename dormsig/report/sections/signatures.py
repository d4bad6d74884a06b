"""Signature match report: which genes of each set the data has, and the scoring's warnings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dormsig.pl.score_plots import match_coverage
from dormsig.report._html import absent, e, table
from dormsig.report.context import ReportContext

ANCHOR, HEADING = "signatures", "Signature match report"


def warnings_html(uns: Mapping[str, Any]) -> str:
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
    return '<h3>Warnings</h3>\n<ul class="warnings">' + "".join(f"<li>{e(w)}</li>" for w in items) + "</ul>"


def render(ctx: ReportContext) -> str:
    warn, match = warnings_html(ctx.uns), ctx.match
    if match is None or match.empty:
        return "\n".join([warn, absent("no signature match report: no scoring run (dormsig score)")])
    detected = "n_detected" in match.columns
    if {"n_total", "n_matched"} <= set(match.columns):
        # bars and labels count detected genes when the report has them (coverage is then the detected fraction)
        shown = match.assign(n_matched=match["n_detected"]) if detected else match
        caption = ("Fraction of each gene set's genes detected in the data (present and non-zero in enough "
                   "observations)" if detected else "Fraction of each gene set's genes found in the data")
        fig = ctx.figures.figure("match_coverage", lambda ax: match_coverage(shown, ax=ax),
                                 figsize=(7.5, 1.0 + 0.26 * len(match)), caption=caption)
    else:
        fig = absent("no coverage plot: the match report has no n_total / n_matched counts")
    names = (("set", "part", "parts", "n_total", "n_present", "n_detected", "n_missing", "coverage", "status",
              "undetected", "missing") if detected else
             ("set", "part", "parts", "n_total", "n_matched", "coverage", "status", "missing"))
    cols = [c for c in names if c in match]
    return "\n".join([warn, table(match[cols], max_rows=max(ctx.max_rows, len(match))), fig])
