"""Score distributions by group, with the median of every score per group."""

from __future__ import annotations

from dormsig.pl.score_plots import score_frame, scores
from dormsig.report._html import absent, note, table
from dormsig.report.context import ReportContext
from dormsig.report.sections.programme import has_scores

ANCHOR, HEADING = "scores", "Score distributions by group"


def render(ctx: ReportContext) -> str:
    if not has_scores(ctx):
        return absent("no scores: no scoring run (dormsig score)")
    adata, groupby = ctx.adata, ctx.groupby
    frame = score_frame(adata)
    parts = [] if groupby is not None else [note("No grouping given: all observations form one group.")]
    n_groups = 1 if groupby is None else adata.obs[groupby].nunique()
    parts.append(ctx.figures.figure(
        "scores_by_group", lambda ax: scores(adata, groupby, ax=ax),
        figsize=(8.0, 1.2 + 0.3 * frame.shape[1] * max(1.0, n_groups / 2)),
        caption="Gene-set scores and the dormancy index" + (f" by {groupby}" if groupby else ""),
    ))
    if groupby is not None:
        summary = frame.groupby(adata.obs[groupby].astype(str).to_numpy()).median(numeric_only=True).T
        summary.index.name = "score (median by group)"
        parts.append(table(summary, max_rows=max(ctx.max_rows, len(summary)), index=True))
    return "\n".join(parts)
