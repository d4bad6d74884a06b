"""Differential expression: for every contrast of the run, counts, volcano and MA plots, top genes."""

from __future__ import annotations

import pandas as pd

from dormsig.pl.de_plots import ma, volcano
from dormsig.report._html import absent, e, kv_table, slug, table
from dormsig.report.context import ReportContext, numeric, padj_order

ANCHOR, HEADING = "de", "Differential expression"
DE_COLUMNS = ("gene", "baseMean", "log2FoldChange", "log2FoldChange_shrunk", "lfcSE", "stat", "pvalue", "padj", "optim")
N_LABELS = 12  # volcano labels: the top genes by padj
N_TOP = 25


def summary(de: pd.DataFrame) -> dict[str, object]:
    padj, lfc = numeric(de["padj"]), numeric(de["log2FoldChange"])
    out: dict[str, object] = {
        "genes tested": len(de),
        "padj < 0.05": int((padj < 0.05).sum()),
        "up (padj < 0.05, log2FC > 0)": int(((padj < 0.05) & (lfc > 0)).sum()),
        "down (padj < 0.05, log2FC < 0)": int(((padj < 0.05) & (lfc < 0)).sum()),
    }
    # R's per-gene fit diagnostics: a gene refitted by the optimiser has a fold change at or near the
    # +-30 bound (complete separation), a maximum-likelihood artefact that shrinkage pulls back
    if "optim" in de:
        out["IRLS diverged, refitted by L-BFGS-B (R's optim)"] = int((de["optim"] == True).sum())  # noqa: E712
    if "betaConv" in de:
        out["fit not converged (betaConv FALSE)"] = int((de["betaConv"] == False).sum())  # noqa: E712
    if "contrast_all_zero" in de:
        out["zero in both groups (log2FC 0, p 1, as R)"] = int((de["contrast_all_zero"] == True).sum())  # noqa: E712
    shrunk = "log2FoldChange_shrunk" in de
    out["fold changes plotted"] = "apeglm-shrunken (MLE in the table)" if shrunk else "maximum likelihood"
    return out


def _contrast(ctx: ReportContext, label: str, de: pd.DataFrame) -> list[str]:
    suffix = f"_{slug(label)}" if label else ""
    parts = [f'<h3 id="de-{e(slug(label) or "table")}">{e(label)}</h3>'] if label else []
    parts.append(kv_table(summary(de)))
    what = f" ({label})" if label else ""
    parts.append('<div class="figrow">')
    parts.append(ctx.figures.figure(
        f"volcano{suffix}", lambda ax: volcano(de, ax=ax, label=N_LABELS, title=label or None), figsize=(6.0, 4.8),
        caption=f"Volcano plot{what}: log2 fold change against -log10 p-value; the {N_LABELS} genes with the "
                "smallest padj named"))
    parts.append(ctx.figures.figure(
        f"ma{suffix}", lambda ax: ma(de, ax=ax, title=label or None), figsize=(6.0, 4.8),
        caption=f"MA plot{what}: log2 fold change against mean normalised count"))
    parts.append("</div>")
    parts.append(f"<h4>Top genes by adjusted p-value{e(what)}</h4>")
    cols = [c for c in DE_COLUMNS if c in de.columns]
    parts.append(table(padj_order(de)[cols], max_rows=min(ctx.max_rows, N_TOP)))
    return parts


def render(ctx: ReportContext) -> str:
    parts: list[str] = []
    skipped = ctx.skipped_contrasts
    if not ctx.de:
        reason = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        return absent("no DE run (dormsig de)" + (f": contrasts skipped ({reason})" if reason else ""))
    if len(ctx.de) > 1:
        rows = pd.DataFrame([{"contrast": k, **{s: v for s, v in summary(t).items() if s != "fold changes plotted"}}
                             for k, t in ctx.de.items()])
        parts.append(f"<p>{len(ctx.de)} contrasts: " + ", ".join(
            f'<a href="#de-{e(slug(k))}">{e(k)}</a>' for k in ctx.de) + ".</p>")
        parts.append(table(rows, max_rows=len(rows)))
    if skipped:
        parts.append(absent("contrasts skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())))
    for label, de in ctx.de.items():
        parts.extend(_contrast(ctx, label, de))
    return "\n".join(parts)
