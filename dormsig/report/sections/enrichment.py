"""Enrichment of the signature sets in every contrast's DE ranking (dormsig.de.enrich)."""

from __future__ import annotations

import pandas as pd

from dormsig.report._html import absent, e, slug, table
from dormsig.report.context import ReportContext, numeric

ANCHOR, HEADING = "enrichment", "Enrichment"
#: Columns shown, in order (every other column stays in the TSV); the gene lists are shortened in the cell.
COLUMNS = ("set", "method", "size", "n_matched", "NES", "effect", "nes_or_effect", "pvalue", "fdr", "direction",
           "circular", "pvalue_excl_grouping", "leading_edge")


def _one(ctx: ReportContext, label: str, frame: pd.DataFrame) -> list[str]:
    sort = [c for c in ("fdr", "pvalue") if c in frame.columns]
    if sort:
        frame = frame.sort_values(sort, na_position="last", kind="stable")
    parts = [f'<h3 id="enrichment-{e(slug(label))}">{e(label)}</h3>'] if label else []
    if "fdr" in frame.columns:
        parts.append(f"<p>{int((numeric(frame['fdr']) < 0.05).sum())} of {len(frame)} sets with FDR &lt; 0.05.</p>")
    cols = [c for c in COLUMNS if c in frame.columns] or list(frame.columns)
    parts.append(table(frame[cols], max_rows=ctx.max_rows))
    return parts


def render(ctx: ReportContext) -> str:
    if not ctx.enrichment:
        return absent("no enrichment run (dormsig enrich)")
    parts: list[str] = []
    if len(ctx.enrichment) > 1:
        parts.append('<p class="note">Leading-edge gene lists are shortened; hover a cell for the whole list '
                     "(all columns in the enrichment TSV of each contrast).</p>")
    for label, frame in ctx.enrichment.items():
        parts.extend(_one(ctx, label, frame))
    return "\n".join(parts)
