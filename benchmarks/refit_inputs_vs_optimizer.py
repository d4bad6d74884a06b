"""Why do refitted CTC genes still end apart from R? Inputs (dispersion, start) or the optimiser?

Run by hand from the repository root (R 4.2 with Rscript on PATH; ~3 min on 2 cores)::

    PYTHONPATH=$PWD python benchmarks/refit_inputs_vs_optimizer.py [--genes 120]

Fits the CTC design ``~ patient + group`` (NOTCH2_high vs NOTCH1_high; tests/data/de/r_reference)
with dormsig, records the inputs dormsig gives its L-BFGS-B refit (counts, size factors, dispersion,
start; ``dormsig.de._lbfgsb.optim_refit_genes``), hands the same doubles (as hex) to R's
``optim(method = "L-BFGS-B")`` with DESeq2's objective, and prints, for the genes whose p-values end
more than 2x from R DESeq2's (and significant on one side) and for a random sample of the others:
how far R's optim on dormsig's inputs is from dormsig (the optimiser's share) and from R DESeq2's
reported log2 fold change (the inputs' share), and how far dormsig's dispersions are from R's.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

import dormsig.de.r_inference as RI
from dormsig.de import deseq

REF = Path("tests/data/de/r_reference")
R_CODE = r"""
a <- commandArgs(trailingOnly = TRUE)
cases <- read.csv(a[1], colClasses = "character")
x <- as.matrix(read.csv(a[2], colClasses = "character")); x <- matrix(as.numeric(x), nrow(x))
nf <- as.numeric(read.csv(a[3], colClasses = "character")$nf)
lambda <- rep(1e-6, ncol(x)); large <- 30
hx <- function(s) as.numeric(strsplit(s, ";")[[1]])
out <- character(nrow(cases))
for (i in seq_len(nrow(cases))) {
  k <- hx(cases$k[i]); betaRow <- hx(cases$p[i]); alpha <- as.numeric(cases$alpha[i])
  objectiveFn <- function(p) {  # DESeq2 1.38.3 fitNbinomGLMsWithOptim, unweighted
    mu_row <- as.numeric(nf * 2^(x %*% p))
    logLike <- sum(dnbinom(k, mu = mu_row, size = 1/alpha, log = TRUE))
    logPrior <- sum(dnorm(p, 0, sqrt(1/lambda), log = TRUE))
    negLogPost <- -1 * (logLike + logPrior)
    if (is.finite(negLogPost)) negLogPost else 10^300
  }
  o <- optim(betaRow, objectiveFn, method = "L-BFGS-B", lower = -large, upper = large)
  out[i] <- paste(sprintf("%a", o$par), collapse = ";")
}
write.csv(data.frame(gene = cases$gene, par = out), a[4], row.names = FALSE)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=120, help="random refitted genes besides the mismatched ones")
    args = ap.parse_args()
    calls = []
    orig = RI.optim_refit_genes

    def spy(y, x, nf, alpha, const, start, *rest):
        out = orig(y, x, nf, alpha, const, start, *rest)
        calls.append((y.copy(), x.copy(), nf.copy(), alpha.copy(), start.copy(), out[0].copy()))
        return out

    RI.optim_refit_genes = spy
    counts = pd.read_csv(REF / "ctc_counts.csv.gz", index_col=0).T
    coldata = pd.read_csv(REF / "ctc_coldata.csv", index_col=0).loc[counts.index]
    adata = ad.AnnData(counts.to_numpy(np.float64), obs=coldata, var=pd.DataFrame(index=counts.columns))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = deseq(adata, group_key="group_NOTCH2_vs_NOTCH1", test="NOTCH2_high", reference="NOTCH1_high",
                     covariates=["patient"], layer=None, alpha=0.1, threads=2)
    r = pd.read_csv(REF / "ctc_n2_vs_n1_r_results.csv.gz", index_col=0)
    y, x, nf, alpha, start, par = max(calls, key=lambda c: c[0].shape[0])
    rows = {}
    for g, row in zip(counts.columns, counts.to_numpy().T, strict=True):
        rows.setdefault(row.tobytes(), []).append(g)
    names = [rows.get(np.asarray(v, dtype=counts.to_numpy().dtype).tobytes(), [None, None]) for v in y]
    idx = [i for i, n in enumerate(names) if len(n) == 1 and n[0] in ours.index]
    gene = {i: names[i][0] for i in idx}
    lfc = ours.loc[[gene[i] for i in idx], "log2FoldChange"].to_numpy()
    j = int(np.argmin([np.nanmedian(np.abs(par[idx, c] - lfc)) for c in range(x.shape[1])]))  # the contrast's column
    refit = ours.index[ours["optim"].fillna(False).astype(bool)]
    rr, oo = r.loc[refit], ours.loc[refit]
    ok = (rr.pvalue.isna() & oo.pvalue.isna()) | (((oo.pvalue / rr.pvalue) <= 2) & ((rr.pvalue / oo.pvalue) <= 2)) | (
        (rr.padj.fillna(1) >= 0.05) & (oo.padj.fillna(1) >= 0.05))
    bad = set(ok[~ok].index)
    rng = np.random.default_rng(0)
    others = [i for i in idx if gene[i] not in bad]
    sel = [i for i in idx if gene[i] in bad] + list(rng.choice(others, min(args.genes, len(others)), replace=False))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        pd.DataFrame([{"gene": gene[i], "alpha": float(alpha[i]).hex(), "k": ";".join(float(v).hex() for v in y[i]),
                       "p": ";".join(float(v).hex() for v in start[i])} for i in sel]).to_csv(t / "in.csv", index=False)
        pd.DataFrame(x).map(float.hex).to_csv(t / "x.csv", index=False)
        pd.DataFrame({"nf": [float(v).hex() for v in nf]}).to_csv(t / "nf.csv", index=False)
        (t / "optim.R").write_text(R_CODE)
        subprocess.run(["Rscript", str(t / "optim.R"), str(t / "in.csv"), str(t / "x.csv"), str(t / "nf.csv"),
                        str(t / "out.csv")], check=True)
        ro = pd.read_csv(t / "out.csv")
    res = []
    for k, i in enumerate(sel):
        rp = np.array([float.fromhex(v) for v in ro["par"][k].split(";")])
        g = gene[i]
        res.append({"gene": g, "mismatch": g in bad, "disp_rel_diff": abs(alpha[i] / r.loc[g, "dispersion"] - 1),
                    "optimiser": abs(rp[j] - par[i, j]), "inputs": abs(rp[j] - r.loc[g, "log2FoldChange"]),
                    "lfc_dormsig": par[i, j], "lfc_R_optim_dormsig_inputs": rp[j], "lfc_R": r.loc[g, "log2FoldChange"]})
    res = pd.DataFrame(res)
    print("optimiser = |LFC dormsig - LFC R optim on dormsig's inputs|; inputs = |LFC R optim on dormsig's "
          "inputs - LFC R DESeq2|")
    for label, s in res.groupby("mismatch"):
        print(f"{'p > 2x apart' if label else 'random refitted'} ({len(s)} genes): median optimiser {s.optimiser.median():.2g}, "
              f"median inputs {s.inputs.median():.2g}, median dispersion rel. diff {s.disp_rel_diff.median():.2g}; "
              f"genes where the optimiser's share is the larger: {(s.optimiser > s.inputs).sum()}")
    with pd.option_context("display.width", 200, "display.max_rows", 100):
        print(res[res.mismatch].drop(columns="mismatch").round(6).to_string(index=False))


if __name__ == "__main__":
    main()
