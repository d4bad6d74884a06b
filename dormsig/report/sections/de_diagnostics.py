"""DE diagnostics: is each contrast's p-value distribution what a DESeq2 test should give?

Per contrast, over the genes tested (genes at zero in both groups get p = 1 without a test, as in R):
how many were filtered (padj NA), the share of p < 0.05 against the 5 % expected when nothing
differs, Storey's estimate of the share of genes that do not differ (pi0, lambda 0.5; above 1 the
p-values pile up near 1, a conservative test) and the fold changes so large they signal complete
separation (a group with zero counts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dormsig.pl.de_plots import pvalue_histogram
from dormsig.report._html import absent, note, slug, table
from dormsig.report.context import ReportContext, numeric

ANCHOR, HEADING = "de-diagnostics", "DE diagnostics"
LAMBDA = 0.5  # Storey's pi0 at a single lambda (qvalue's default smoother is not needed for a diagnostic)
EXTREME_LFC = 10.0


def tested(de: pd.DataFrame) -> np.ndarray:
    """Genes with a p-value from a test (R gives genes at zero in both groups p = 1 without one)."""
    p = numeric(de["pvalue"])
    zero = (de["contrast_all_zero"].to_numpy() == True if "contrast_all_zero" in de  # noqa: E712
            else np.zeros(len(de), dtype=bool))
    return np.isfinite(p) & ~zero


def _pi0(p: np.ndarray) -> str:
    if not p.size:
        return "NA"
    pi0 = np.mean(p > LAMBDA) / (1 - LAMBDA)
    # above 1, p-values pile up near 1: a conservative test (discrete low counts, many zeros)
    return f"{pi0:.3f}" + (" (> 1: p-values pile up near 1)" if pi0 > 1.0005 else "")


def diagnostics(de: pd.DataFrame) -> dict[str, object]:
    p, padj, lfc = numeric(de["pvalue"]), numeric(de["padj"]), numeric(de["log2FoldChange"])
    keep = tested(de)
    pt = p[keep]
    return {
        "genes tested (zero in both groups excluded)": int(keep.sum()),
        "filtered (p-value but padj NA)": int((keep & ~np.isfinite(padj)).sum()),
        "p < 0.05 (expected 5 % if nothing differs)": f"{100 * np.mean(pt < 0.05):.1f} %" if pt.size else "NA",
        "pi0: share of genes not differing (Storey, lambda 0.5)": _pi0(pt),
        f"|log2FC (MLE)| > {EXTREME_LFC:g} (complete separation)": int((np.abs(lfc) > EXTREME_LFC).sum()),
    }


def render(ctx: ReportContext) -> str:
    if not ctx.de:
        return absent("no DE run (dormsig de)")
    rows = pd.DataFrame([{"contrast": label or "DE table", **diagnostics(de)} for label, de in ctx.de.items()])
    figures = ['<div class="figrow">']
    for label, de in ctx.de.items():
        suffix = f"_{slug(label)}" if label else ""
        figures.append(ctx.figures.figure(
            f"pvalues{suffix}", lambda ax, de=de, label=label: pvalue_histogram(de, ax=ax, title=label or None),
            figsize=(5.0, 3.2), caption=f"p-values of the genes tested{f' ({label})' if label else ''}"))
    figures.append("</div>")
    return "\n".join([table(rows, max_rows=len(rows)), *figures, note(
        "A p-value histogram that is flat with a peak near 0 gives pi0 below 1; pi0 near 1 with few p < 0.05 "
        "means the groups hardly differ; pi0 above 1 means p-values pile up near 1 (a conservative test, e.g. "
        "many low-count genes); many filtered genes come from low counts (independent filtering).")])
