"""Gather the scored shards of one dataset into ``scores.tsv`` and ``scored.h5ad``.

Scores of single-sample methods do not depend on the other cells, so the shards' scores
are simply concatenated in shard order. Ranks, percentiles and calls do depend on all
cells: they are recomputed on the gathered AnnData with :func:`dormsig.tl.rank` (the rule read
back with :func:`dormsig.get.rank_rule`), and the score table is rebuilt from it with
:func:`dormsig.get.score_table`.
"""

# No "from __future__" import: Snakemake puts its preamble before this file's first line.
import logging
import sys

import anndata as ad
import pandas as pd


def gather(score_tables: list[str], h5ads: list[str], out_scores: str, out_h5ad: str) -> None:
    from dormsig import get
    from dormsig.io.write import write_h5ad, write_provenance, write_table
    from dormsig.provenance import attach, record, sha256

    parts = [ad.read_h5ad(p) for p in h5ads]
    adata = ad.concat(parts, axis=0, join="outer", merge="same", uns_merge="first")
    for col, dtype in parts[0].obs.dtypes.items():  # concat may widen categoricals to object
        if isinstance(dtype, pd.CategoricalDtype) and col in adata.obs:
            adata.obs[col] = adata.obs[col].astype("category")
    table = pd.concat([pd.read_csv(p, sep="\t", index_col=0) for p in score_tables])
    table.index = table.index.astype(str)
    if len(table) != adata.n_obs or set(table.index) != set(adata.obs_names):
        raise ValueError("score tables and scored h5ad shards list different observations")
    table = table.loc[adata.obs_names]  # the shards' tables may be sorted (e.g. by rank)
    adata.uns.setdefault("dormsig", {}).pop("shard", None)
    rank_rec = adata.uns["dormsig"].get("rank", {})
    # Calls against a stored reference do not depend on the other cells: keep the shards' values.
    by_reference = str(rank_rec.get("reference", "None")) not in ("None", "")
    reranked = False
    if rank_rec and not by_reference:
        from dormsig.tl import rank

        rule = get.rank_rule(adata)
        rank(adata, **rule)
        reranked = True
    table = get.score_table(adata)
    rec = record(
        "gather", params={"n_shards": len(h5ads), "reranked": reranked},
        # A list, not a dict keyed by path: "/" in a uns key would nest groups in the h5ad.
        inputs=[{"path": p, "sha256": sha256(p)} for p in [*score_tables, *h5ads]],
    )
    attach(adata, "gather", rec)
    write_h5ad(adata, out_h5ad)
    write_table(table, out_scores)
    write_provenance(out_h5ad, rec)
    write_provenance(out_scores, rec)
    logging.info("gathered %d shards: %d observations", len(h5ads), adata.n_obs)


if "snakemake" in globals():
    smk = globals()["snakemake"]
    logging.basicConfig(filename=smk.log[0], level=logging.INFO)
    try:
        gather(list(smk.input.scores), list(smk.input.h5ad), smk.output.scores, smk.output.h5ad)
    except Exception:
        logging.exception("gather failed")
        sys.exit(1)
