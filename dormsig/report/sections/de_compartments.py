"""Do the groups of a contrast differ in non-tumour content? (compartment labels x groups, markers among top genes)

A contrast between groups that differ in, say, platelet RNA reports platelet genes as its top hits
(the bundled CTC data: 3 of 7 NOTCH1-high samples are platelet-positive, 1 of 7 NOTCH2-high). Per
contrast this section counts the samples of each group labelled with a compartment by
:func:`dormsig.tl.check_compartments` (``obs["dormsig_compartment"]``) and the compartment markers
among the top DE genes, and says when a compartment is unevenly spread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dormsig import _keys as K
from dormsig.report._html import absent, e, note, table
from dormsig.report.context import ReportContext, numeric

ANCHOR, HEADING = "de-compartments", "DE groups and non-tumour content"
TOP = 50
UNEVEN = 0.25  # difference in the share of positive samples between the two groups worth saying


def _group_column(adata, test: str, reference: str) -> str | None:
    """The obs column holding both levels of a contrast (the pipeline names one per contrast)."""
    for col in adata.obs.columns:
        values = adata.obs[col]
        if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
            levels = set(values.astype(str))
            if test in levels and reference in levels:
                return col
    return None


def _markers() -> dict[str, list[str]]:
    from dormsig.tl.compartment import load_markers

    return {name.removeprefix("COMPARTMENT_").lower(): list(sig.up) for name, sig in load_markers().items()}


def contrast_rows(ctx: ReportContext, label: str, de: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """Table rows (one per compartment seen) and the sentences to say, for one contrast."""
    test, _, reference = label.partition(" vs ")
    col = _group_column(ctx.adata, test, reference) if reference else None
    labels = ctx.adata.obs.get(K.OBS_COMPARTMENT)
    padj, p = numeric(de["padj"]), numeric(de["pvalue"])
    sig = de.assign(_p=p)[np.isfinite(padj) & (padj < 0.05)].sort_values("_p")
    top = set(sig["gene"].astype(str).head(TOP))
    rows, says = [], []
    for comp, genes in _markers().items():
        in_top = [g for g in genes if g in top]
        row: dict[str, object] = {"compartment": comp, f"markers among the top {TOP} genes": ", ".join(in_top)}
        shares = {}
        if col is not None and labels is not None:
            for level in (test, reference):
                in_group = ctx.adata.obs[col].astype(str) == level
                n_pos = int((labels[in_group].astype(str) == comp).sum())
                row[f"{level}: positive samples"] = f"{n_pos} of {int(in_group.sum())}"
                shares[level] = n_pos / max(1, int(in_group.sum()))
        if not in_top and not any(shares.values()):
            continue
        rows.append(row)
        if shares and abs(shares[test] - shares[reference]) >= UNEVEN:
            more = test if shares[test] > shares[reference] else reference
            says.append(f"{label}: more {more} samples carry {comp} RNA ({test} {row[f'{test}: positive samples']}, "
                        f"{reference} {row[f'{reference}: positive samples']}); genes higher in {more} may come from "
                        f"{comp}s, "
                        "not tumour cells" + (f" (top genes include {', '.join(in_top)})" if in_top else "") + ".")
        elif len(in_top) >= 2:
            says.append(f"{label}: {len(in_top)} {comp} markers are among the top {TOP} genes ({', '.join(in_top)}).")
    return rows, says


def render(ctx: ReportContext) -> str:
    if not ctx.de:
        return absent("no DE run (dormsig de)")
    if K.OBS_COMPARTMENT not in ctx.adata.obs:
        return absent("no compartment labels (dormsig.tl.check_compartments was not run on these samples)")
    parts = []
    for label, de in ctx.de.items():
        rows, says = contrast_rows(ctx, label, de)
        parts.append(f"<h3>{e(label or 'DE table')}</h3>")
        parts.extend(f'<p class="warn">{e(s)}</p>' for s in says)
        parts.append(table(pd.DataFrame(rows), max_rows=ctx.max_rows) if rows else
                     "<p>No compartment is labelled in these groups or among the top genes.</p>")
    parts.append(note("Samples are labelled by the compartment markers they express (signatures/compartments/); "
                      "a positive bulk sample contains such cells or their RNA, not only them."))
    return "\n".join(parts)
