#!/usr/bin/env python
"""Does copy-number inference (infercnvpy) tell malignant cells apart better than the marker check?

An evaluation, not part of dormsig: infercnvpy is not a dependency (see the report of issue 12).
On the Tirosh 2016 oligodendroglioma matrix (184 cells, authors' copy-number annotation), it runs
infercnvpy with the cells that dormsig's compartment check labels as non-tumour as the reference,
and prints the AUROC of the mean |CNV| for malignant vs non-malignant, arm-level means on chr1/19
(1p/19q co-deletion is the hallmark of oligodendroglioma) and a simple call (above the 99th
percentile of the reference).

Needs: infercnvpy (+ pyreadr, pybiomart, which it imports) on the path, and gene positions from
Bioconductor org.Hs.eg.db (Debian package r-bioc-org.hs.eg.db, read with sqlite3). Usage::

    PYTHONPATH=.:/path/to/infercnvpy python benchmarks/compartment_infercnv_eval.py [DATA_DIR]
"""

from __future__ import annotations

import sqlite3
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ORG_HS = Path("/usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite")


def main(data: Path) -> None:
    warnings.filterwarnings("ignore")
    try:
        import infercnvpy as cnv
    except ImportError as exc:
        sys.exit(f"infercnvpy is not installed ({exc}); this evaluation needs it")
    if not ORG_HS.exists():
        sys.exit(f"{ORG_HS} not found: install the Debian package r-bioc-org.hs.eg.db for gene positions")
    from sklearn.metrics import roc_auc_score

    from dormsig.io import read
    from dormsig.tl.compartment import check_compartments

    adata = read(data / "oligodendroglioma_expression_downsampled.counts.matrix.gz")
    ann = pd.read_csv(data / "oligodendroglioma_annotations_downsampled.txt", sep="\t", header=None, index_col=0)[1]
    malignant = ann.reindex(adata.obs_names).str.startswith("malignant").to_numpy()
    t0 = time.perf_counter()
    check_compartments(adata)
    t_check = time.perf_counter() - t0
    with sqlite3.connect(ORG_HS) as con:
        pos = pd.read_sql("select g.symbol, l.seqname as chromosome, abs(l.start_location) as start, "
                          "abs(l.end_location) as end from chromosome_locations l join gene_info g on g._id = l._id", con)
    pos = pos[pos.chromosome.isin([str(i) for i in range(1, 23)] + ["X"])].groupby("symbol").first()
    pos["chromosome"] = "chr" + pos["chromosome"]
    adata.var = adata.var.join(pos[["chromosome", "start", "end"]])
    reference = adata.obs["dormsig_compartment"].astype(str).to_numpy() != "none"
    adata.obs["reference"] = np.where(reference, "normal", "unknown")
    t0 = time.perf_counter()
    cnv.tl.infercnv(adata, reference_key="reference", reference_cat=["normal"], window_size=100)
    t_cnv = time.perf_counter() - t0
    x = adata.obsm["X_cnv"]
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    score = np.abs(x).mean(axis=1)
    called = score > np.quantile(score[reference], 0.99)
    print(f"genes with a position: {int(adata.var.chromosome.notna().sum())} of {adata.n_vars}")
    print(f"reference (marker-labelled non-tumour cells): {int(reference.sum())}; truly non-malignant among them: "
          f"{int((reference & ~malignant).sum())}")
    print(f"AUROC of mean |CNV|, malignant vs not: {roc_auc_score(malignant, score):.3f}")
    print(f"called malignant (> 99th percentile of the reference): {int(called.sum())}; of them malignant "
          f"{int((called & malignant).sum())} (of {int(malignant.sum())})")
    starts = sorted(adata.uns["cnv"]["chr_pos"].items(), key=lambda kv: kv[1])
    ends = [s for _, s in starts[1:]] + [x.shape[1]]
    print("arm-level mean CNV (first / second half of the chromosome), malignant vs non-malignant:")
    for (chrom, start), end in zip(starts, ends, strict=True):
        if chrom in ("chr1", "chr7", "chr19"):
            half = start + (end - start) // 2
            a, b = x[:, start:half], x[:, half:end]
            print(f"  {chrom}: {a[malignant].mean():+.3f} vs {a[~malignant].mean():+.3f} | "
                  f"{b[malignant].mean():+.3f} vs {b[~malignant].mean():+.3f}")
    print(f"time: compartment check {t_check:.2f} s, infercnv {t_cnv:.2f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/data/sc_oligodendroglioma_tirosh2016"))
