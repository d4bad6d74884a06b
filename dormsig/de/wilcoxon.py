"""Per-cell Wilcoxon ranking (exploratory).

Cells are treated as independent replicates, which they are not (cells of one tumour share its
biology and its library preparation): p-values are therefore far too small. The ranking is useful
to look at, never as a test; every output says so (``exploratory=True``). Use
:func:`dormsig.de.pseudobulk` + :func:`dormsig.de.deseq` for inference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig.errors import DesignError, InputError
from dormsig.provenance import attach, record

NOTE = (
    "EXPLORATORY: per-cell Wilcoxon test treats cells as independent replicates; p-values are "
    "anti-conservative. Use pseudobulk + deseq for inference."
)


def rank_genes_wilcoxon(
    adata: AnnData,
    group_key: str,
    test: str,
    reference: str,
    *,
    layer: str | None = None,
    key_added: str = "dormsig_wilcoxon",
) -> pd.DataFrame:
    """Rank genes between two groups of cells with scanpy's Wilcoxon test (exploratory).

    Parameters
    ----------
    adata
        Cells x genes; values from ``X`` (log1p normalised) unless ``layer`` is given.
    group_key, test, reference
        ``obs`` column and its two levels; positive log fold change = higher in ``test``.
    key_added
        Table and note stored in ``uns["dormsig"][key_added]``.

    Returns
    -------
    pandas.DataFrame
        Indexed by gene: gene, stat (Wilcoxon z-score), log2FoldChange (scanpy's, from
        ``expm1`` of the log data), pvalue, padj (BH), exploratory (always True).
    """
    import scanpy as sc

    what = f"rank_genes_wilcoxon({group_key}: {test} vs {reference})"
    if group_key not in adata.obs:
        raise InputError(f"{what}: {group_key!r} is not an obs column")
    labels = adata.obs[group_key].astype(str)
    for level in (test, reference):
        n = int((labels == level).sum())
        if n < 2:
            raise DesignError(f"{what}: group {level!r} has {n} cells; at least 2 are needed")
    sub = adata[labels.isin([test, reference]).to_numpy()].copy()
    sub.obs["_dormsig_wilcoxon_group"] = pd.Categorical(labels[labels.isin([test, reference])].to_numpy())
    sub.uns.pop("log1p", None)
    sub.uns["log1p"] = {"base": None}  # X is natural-log log1p by dormsig convention
    sc.tl.rank_genes_groups(
        sub, "_dormsig_wilcoxon_group", groups=[test], reference=reference, method="wilcoxon",
        layer=layer, use_raw=False, key_added="_dormsig_rgg", tie_correct=True,
    )
    df = sc.get.rank_genes_groups_df(sub, group=test, key="_dormsig_rgg")
    df = df.rename(columns={"names": "gene", "scores": "stat", "logfoldchanges": "log2FoldChange",
                            "pvals": "pvalue", "pvals_adj": "padj"})
    df = df.set_index(df["gene"].astype(str), drop=False).reindex(adata.var_names.astype(str))
    df["gene"] = df.index
    df.index = adata.var_names
    df = df[["gene", "stat", "log2FoldChange", "pvalue", "padj"]].copy()
    df["exploratory"] = True
    rec = record(
        "wilcoxon",
        method="scanpy rank_genes_groups wilcoxon (tie-corrected)",
        params={"group_key": group_key, "test": test, "reference": reference, "layer": layer},
        exploratory=True,
        note=NOTE,
        n_test=int((labels == test).sum()),
        n_reference=int((labels == reference).sum()),
    )
    attach(adata, key_added, rec)
    adata.uns["dormsig"][key_added]["table"] = df
    if np.isnan(df["stat"]).all():
        raise InputError(f"{what}: no gene could be ranked")
    return df
