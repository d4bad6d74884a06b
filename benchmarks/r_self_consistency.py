"""R DESeq2 against itself (samples reversed) and dormsig against both, on the CTC designs of issue 11.

Issue 11 asks that genes refitted by the optimiser (divergent IRLS) get p-values within a factor of 2
of R's, or are non-significant on both sides. For these genes the fit stops somewhere along a nearly
flat direction of the likelihood, so the answer depends on the last bits of every sum. This script
measures how far R moves from itself when only the order of the samples changes (same counts, same
design), and puts dormsig's distance from R beside it, with the criterion of
``tests/test_de_r_concordance.py``.

Usage (from the repository root; the R runs first, ~5-9 min per design on one core)::

    Rscript benchmarks/r_self_consistency.R ctc_n2_vs_n1 ctc_tumour_n2_vs_n1
    PYTHONPATH=$PWD python benchmarks/r_self_consistency.py ctc_n2_vs_n1 ctc_tumour_n2_vs_n1

Prints one table: per design and pair, the refitted genes, the genes with p > 2x apart and significant
(padj < 0.05) on one side only, those flipping significance, r(log2FC) over baseMean >= 10 and the Jaccard index of the padj < 0.05 sets (all genes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "tests" / "data" / "de" / "r_reference"
OUT = Path(os.environ.get("DORMSIG_R_SELF_OUT", "/tmp/dormsig_r_self"))

DESIGNS = {
    "ctc_n2_vs_n1": ("group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high"),
    "ctc_n2_high_vs_low": ("group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low"),
    "ctc_tumour_n2_vs_n1": ("tumour_group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high"),
    "ctc_tumour_n2_high_vs_low": ("tumour_group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low"),
}


def dormsig_fit(tag: str, threads: int) -> pd.DataFrame:
    from dormsig.de import deseq

    group, test, reference = DESIGNS[tag]
    counts = pd.read_csv(REF / "ctc_counts.csv.gz", index_col=0).T
    coldata = pd.read_csv(REF / "ctc_coldata.csv", index_col=0).loc[counts.index]
    adata = ad.AnnData(counts.to_numpy(np.float64), obs=coldata, var=pd.DataFrame(index=counts.columns))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return deseq(adata, group_key=group, test=test, reference=reference, covariates=["patient"],
                     layer=None, alpha=0.1, threads=threads)


def compare(a: pd.DataFrame, b: pd.DataFrame, genes: pd.Index) -> dict:
    """The concordance test's criterion for ``genes`` (refitted), and r(log2FC) over all genes."""
    p_a, p_b = a.loc[genes, "pvalue"], b.loc[genes, "pvalue"]
    sig_a, sig_b = a.loc[genes, "padj"].fillna(1) < 0.05, b.loc[genes, "padj"].fillna(1) < 0.05
    within = (p_a.isna() & p_b.isna()) | (((p_a / p_b) <= 2) & ((p_b / p_a) <= 2))
    bad = ~within & (sig_a | sig_b)
    m = (a["baseMean"] >= 10) & a["log2FoldChange"].notna() & b.loc[a.index, "log2FoldChange"].notna()
    r = np.corrcoef(a.loc[m, "log2FoldChange"], b.loc[a.index[m], "log2FoldChange"])[0, 1]
    sa, sb = set(a.index[a["padj"] < 0.05]), set(b.index[b["padj"] < 0.05])
    return {"Jaccard padj<0.05": len(sa & sb) / max(1, len(sa | sb)), "refitted": len(genes), "p>2x, sig. one side": int(bad.sum()), "sig. flips": int((sig_a != sig_b).sum()),
            "r(log2FC)": r, "examples": ", ".join(bad[bad].index[:4])}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tags", nargs="*", default=["ctc_n2_vs_n1", "ctc_tumour_n2_vs_n1"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--run-r", action="store_true", help="Run the R script first for tags without a result.")
    args = p.parse_args(argv)
    rows = []
    for tag in args.tags:
        rev_path = OUT / f"{tag}_r_reversed_results.csv.gz"
        if not rev_path.exists():
            if not args.run_r:
                sys.exit(f"{rev_path}: missing; run Rscript benchmarks/r_self_consistency.R {tag} (or --run-r)")
            subprocess.run(["Rscript", str(ROOT / "benchmarks" / "r_self_consistency.R"), tag], cwd=ROOT, check=True)
        r = pd.read_csv(REF / f"{tag}_r_results.csv.gz", index_col=0)
        r_rev = pd.read_csv(rev_path, index_col=0).loc[r.index]
        ours = dormsig_fit(tag, args.threads)
        r, r_rev = r.loc[ours.index], r_rev.loc[ours.index]
        refit = ours.index[ours["optim"].fillna(False).astype(bool)]
        for pair, (a, b) in {"R vs R (samples reversed)": (r, r_rev), "dormsig vs R": (r, ours),
                             "dormsig vs R (samples reversed)": (r_rev, ours)}.items():
            rows.append({"design": tag, "pair": pair, **compare(a, b, refit)})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.6f}"))
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
