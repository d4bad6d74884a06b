"""DE diagnostics: is each contrast's p-value distribution what a DESeq2 test should give?

Per contrast: how many genes were filtered (padj NA), the share of p < 0.05 against the 5 % expected
when nothing differs, Storey's estimate of the share of genes that do not differ (pi0, lambda 0.5)
and the fold changes so large they signal complete separation (a group with zero counts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dormsig.report._html import absent, note, table
from dormsig.report.context import ReportContext, numeric

ANCHOR, HEADING = "de-diagnostics", "DE diagnostics"
LAMBDA = 0.5  # Storey's pi0 at a single lambda (qvalue's default smoother is not needed for a diagnostic)
EXTREME_LFC = 10.0


def diagnostics(de: pd.DataFrame) -> dict[str, object]:
    p, padj, lfc = numeric(de["pvalue"]), numeric(de["padj"]), numeric(de["log2FoldChange"])
    tested = np.isfinite(p)
    pt = p[tested]
    return {
        "genes with a p-value": int(tested.sum()),
        "filtered (p-value but padj NA)": int((tested & ~np.isfinite(padj)).sum()),
        "p < 0.05 (expected 5 % if nothing differs)": f"{100 * np.mean(pt < 0.05):.1f} %" if pt.size else "NA",
        "pi0: share of genes not differing (Storey, lambda 0.5)":
            f"{min(1.0, np.mean(pt > LAMBDA) / (1 - LAMBDA)):.3f}" if pt.size else "NA",
        f"|log2FC (MLE)| > {EXTREME_LFC:g} (complete separation)": int((np.abs(lfc) > EXTREME_LFC).sum()),
    }


def render(ctx: ReportContext) -> str:
    if not ctx.de:
        return absent("no DE run (dormsig de)")
    rows = pd.DataFrame([{"contrast": label or "DE table", **diagnostics(de)} for label, de in ctx.de.items()])
    return "\n".join([table(rows, max_rows=len(rows)), note(
        "A p-value histogram that is flat with a peak near 0 gives pi0 below 1; pi0 near 1 with few p < 0.05 "
        "means the groups hardly differ; many filtered genes come from low counts (independent filtering).")])
