"""Signature gene heatmap: observations x the scored genes, each gene's set marked (dormsig.pl.signature_heatmap)."""

from __future__ import annotations

from dormsig import _keys as K
from dormsig.pl.gene_heatmap import heatmap_genes, signature_heatmap
from dormsig.report._html import absent, fmt, note
from dormsig.report.context import ReportContext, padj_order, signature_gene_sets

ANCHOR, HEADING = "heatmap", "Signature gene heatmap"
MAX_GENES = 60


def render(ctx: ReportContext) -> str:
    adata, parts = ctx.adata, []
    if ctx.heatmap_genes is not None:
        sets, source = {"genes given": ctx.heatmap_genes}, "genes given"
    else:
        sets, source = signature_gene_sets(ctx), "matched signature genes"
        if not sets and ctx.de:
            label, de = next(iter(ctx.de.items()))
            sets = {"top DE genes": padj_order(de)["gene"].astype(str).head(MAX_GENES).tolist()}
            source = "top DE genes by padj" + (f" ({label})" if label else "")
            parts.append(note("No signature genes recorded by scoring; showing the top DE genes."))
    rows = heatmap_genes(adata, sets, max_genes=MAX_GENES)
    if not sets:
        return absent("no signature genes to show: no scoring run (dormsig score) and no DE run")
    n_present = len(rows.genes) + len(rows.no_counts) + len(rows.over_limit)
    if not rows.genes:
        return absent(f"no signature genes to show: none of the {n_present} {source} in the data has counts")
    if rows.no_counts:
        parts.append(note(f"{len(rows.no_counts)} of {n_present} {source} have no counts (or the same value) in "
                          f"every observation and are not shown: {fmt(rows.no_counts)}."))
    if rows.over_limit:
        parts.append(note(f"The {MAX_GENES} most variable of {MAX_GENES + len(rows.over_limit)} {source} with "
                          "counts are shown, taken from each set in turn."))
    sort_by = K.OBS_INDEX if K.OBS_INDEX in adata.obs else None
    n_groups = adata.obs[ctx.groupby].nunique() if ctx.groupby else 0
    caption = (f"Expression per observation (log-normalised, z-scored per gene) of {len(rows.genes)} {source}; "
               "rows coloured by gene set" + (f", columns grouped by {ctx.groupby}" if ctx.groupby else "")
               + (" and ordered by decreasing dormancy index" if sort_by else ""))
    parts.append(ctx.figures.figure(
        "heatmap",
        lambda ax: signature_heatmap(adata, sets, ax=ax, groupby=ctx.groupby, sort_by=sort_by, max_genes=MAX_GENES),
        figsize=(10.0, 2.2 + 0.15 * len(rows.genes) + 0.3 * bool(n_groups)), caption=caption,
    ))
    return "\n".join(parts)
