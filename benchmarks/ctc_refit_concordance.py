"""Refitted (optim) genes on the CTC design against R DESeq2 1.38.3: how many end apart, and the DE time.

Run by hand from the repository root (uses tests/data/de/r_reference; ~2 min on 2 cores)::

    PYTHONPATH=$PWD python benchmarks/ctc_refit_concordance.py

For both CTC contrasts of tests/test_de_r_concordance.py prints: genes refitted by L-BFGS-B, those whose
p-values are more than 2x from R's and significant on one side (the test's REFIT_P_MISMATCH_MAX), padj <
0.05 calls that flip, Pearson r of log2FC (baseMean >= 10), Jaccard of the padj < 0.05 sets, the
distribution of |log2FC - R's| over refitted genes, and the wall time of ``deseq`` (with ``uptime``).
"""
from __future__ import annotations

import os
import sys
import time
import warnings

import anndata as ad
import numpy as np
import pandas as pd

sys.path.insert(0, os.getcwd())
import tests.test_de_r_concordance as T  # noqa: E402
from dormsig.de import deseq  # noqa: E402


def main() -> None:
    print(os.popen("uptime").read().strip())
    for tag in ["ctc_n2_vs_n1", "ctc_n2_high_vs_low"]:
        name, group, test, reference, covariates = T.DESIGNS[tag]
        counts = pd.read_csv(T.REF / f"{name}_counts.csv.gz", index_col=0).T
        coldata = pd.read_csv(T.REF / f"{name}_coldata.csv", index_col=0).loc[counts.index]
        adata = ad.AnnData(counts.to_numpy(np.float64), obs=coldata, var=pd.DataFrame(index=counts.columns))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = deseq(adata, group_key=group, test=test, reference=reference, covariates=covariates, layer=None,
                         alpha=0.1, threads=2)
        dt = time.perf_counter() - t0
        r = pd.read_csv(T.REF / f"{tag}_r_results.csv.gz", index_col=0).loc[ours.index]
        m = (r["baseMean"] >= 10) & r["log2FoldChange"].notna() & ours["log2FoldChange"].notna()
        rr = np.corrcoef(r.loc[m, "log2FoldChange"], ours.loc[m, "log2FoldChange"])[0, 1]
        refit = ours.index[ours["optim"].fillna(False).astype(bool)]
        p_r, p_o = r.loc[refit, "pvalue"], ours.loc[refit, "pvalue"]
        sig_r, sig_o = r.loc[refit, "padj"].fillna(1) < 0.05, ours.loc[refit, "padj"].fillna(1) < 0.05
        ok = (p_r.isna() & p_o.isna()) | (((p_o / p_r) <= 2) & ((p_r / p_o) <= 2)) | (~sig_r & ~sig_o)
        d = (ours.loc[refit, "log2FoldChange"] - r.loc[refit, "log2FoldChange"]).abs()
        a, b = set(r.index[r.padj < 0.05]), set(ours.index[ours.padj < 0.05])
        print(f"{tag}: refitted {len(refit)}, p > 2x apart {(~ok).sum()}, padj flips {(sig_r != sig_o).sum()}, "
              f"r(log2FC) {rr:.6f}, Jaccard {len(a & b) / len(a | b):.4f}; refitted |dLFC| median {d.median():.2e}, "
              f"< 1e-6 {(d < 1e-6).mean():.3f}, < 1e-3 {(d < 1e-3).mean():.3f}, max {d.max():.3g}; deseq {dt:.1f} s",
              flush=True)
        print("  apart:", ", ".join(ok[~ok].index))
    print(os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
