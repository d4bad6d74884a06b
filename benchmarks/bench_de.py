"""Benchmark dormsig's DE (run by hand, not in CI).

1. airway (8 samples x 64,102 genes, ~ cell + dex): dormsig.de.deseq (fast inference), plain pydeseq2
   defaults and R DESeq2 (installed with apt if ``Rscript`` is missing: ~5 min; skip with --no-r):
   wall time, peak memory (max RSS of a fresh worker process), concordance with R.
2. Pseudobulk DE on a simulated 100,000-cell dataset with 8 samples: wall time and peak memory of
   define_groups + pseudobulk + deseq.

    python benchmarks/bench_de.py --airway /work/shared/data/airway --json bench_de.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

R_SCRIPT = r"""
suppressMessages(library(DESeq2))
args <- commandArgs(TRUE)
cts <- as.matrix(read.csv(file.path(args[1], "airway_counts.csv"), row.names=1))
cd <- read.csv(file.path(args[1], "airway_coldata.csv"), row.names=1)
cd$dex <- relevel(factor(cd$dex), "untrt"); cd$cell <- factor(cd$cell)
dds <- DESeq(DESeqDataSetFromMatrix(cts, cd, ~ cell + dex), quiet=TRUE)
res <- results(dds, contrast=c("dex", "trt", "untrt"))
write.csv(as.data.frame(res), args[2])
"""


def _airway_adata(folder: Path):
    import anndata as ad

    counts = pd.read_csv(folder / "airway_counts.csv", index_col=0)
    meta = pd.read_csv(folder / "airway_coldata.csv", index_col=0)
    adata = ad.AnnData(X=counts.T.to_numpy(dtype=np.float64), obs=meta.loc[counts.columns, ["cell", "dex"]].astype(str),
                       var=pd.DataFrame(index=counts.index))
    adata.layers["counts"] = adata.X.copy()
    return adata


def worker(name: str, folder: Path, out: Path, threads: int) -> None:
    """Runs in a fresh process; writes the results table."""
    if name == "dormsig":
        from dormsig.de import deseq

        res = deseq(_airway_adata(folder), group_key="dex", test="trt", reference="untrt", covariates=["cell"],
                    threads=threads, inference="fast")
        res.drop(columns="gene").to_csv(out)
    elif name == "pydeseq2":
        from pydeseq2.dds import DeseqDataSet
        from pydeseq2.default_inference import DefaultInference
        from pydeseq2.ds import DeseqStats

        counts = pd.read_csv(folder / "airway_counts.csv", index_col=0).T
        meta = pd.read_csv(folder / "airway_coldata.csv", index_col=0)
        inf = DefaultInference(n_cpus=threads)
        dds = DeseqDataSet(counts=counts, metadata=meta[["cell", "dex"]], design="~cell + dex", inference=inf,
                           quiet=True)
        dds.deseq2()
        st = DeseqStats(dds, contrast=["dex", "trt", "untrt"], inference=inf, quiet=True)
        st.summary()
        st.results_df.to_csv(out)
    elif name == "pseudobulk":
        simulate_and_run(out, threads)
    else:
        raise SystemExit(f"unknown worker {name}")


def simulate_and_run(out: Path, threads: int, n_cells: int = 100_000, n_genes: int = 2000, n_samples: int = 8) -> None:
    import anndata as ad
    import scipy.sparse as sp

    from dormsig.de import define_groups, deseq, pseudobulk
    from dormsig.pp import normalise

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    sample = rng.integers(0, n_samples, n_cells)
    base = rng.lognormal(-1.5, 1.5, n_genes)  # mean counts per cell
    sample_eff = rng.normal(0, 0.2, (n_samples, n_genes))
    lib = rng.lognormal(0, 0.3, n_cells)
    high = rng.random(n_cells) < 0.5
    de_eff = np.zeros(n_genes)
    de_eff[:100] = rng.choice([-1.0, 1.0], 100)  # 100 true DE genes
    rows, cols, vals = [], [], []
    for start in range(0, n_cells, 10_000):  # chunks keep the dense intermediate small
        sl = slice(start, min(start + 10_000, n_cells))
        mu = base * np.exp(sample_eff[sample[sl]] + np.outer(high[sl], de_eff)) * lib[sl, None]
        x = rng.negative_binomial(2, 2 / (2 + mu))
        r, c = np.nonzero(x)
        rows.append(r + start)
        cols.append(c)
        vals.append(x[r, c])
    x = sp.csr_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_cells, n_genes))
    genes = [f"G{i}" for i in range(n_genes)]
    adata = ad.AnnData(X=x, obs=pd.DataFrame({"sample": [f"s{i}" for i in sample], "truth": high},
                                             index=[f"c{i}" for i in range(n_cells)]),
                       var=pd.DataFrame(index=genes))
    adata.layers["counts"] = adata.X.copy()
    normalise(adata)
    adata.obs["grp"] = np.where(high, "high", "low")
    t_sim = time.perf_counter() - t0
    t1 = time.perf_counter()
    pb = pseudobulk(adata, sample_key="sample", group_key="grp", min_cells=10, min_counts=1000)
    t_pb = time.perf_counter() - t1
    res = deseq(pb, group_key="grp", test="high", reference="low", covariates=["sample"], threads=threads,
                inference="fast")
    t_total = time.perf_counter() - t1
    sig = set(res.index[res["padj"] < 0.05])
    truth = set(genes[:100])
    json.dump({"n_cells": n_cells, "n_genes": n_genes, "n_samples": n_samples, "nnz": int(x.nnz),
               "simulate_s": t_sim, "pseudobulk_s": t_pb, "pseudobulk_plus_deseq_s": t_total,
               "n_pseudo_samples": int(pb.n_obs), "n_sig": len(sig), "true_positives": len(sig & truth),
               "false_positives": len(sig - truth)}, open(out, "w"))
    del define_groups


def measure(cmd: list[str]) -> dict:
    """Run ``cmd`` through a fresh Python parent so that RUSAGE_CHILDREN is this command's alone."""
    probe = ("import resource,subprocess,sys,time,json;t=time.perf_counter();"
             "rc=subprocess.run(sys.argv[1:]).returncode;"
             "print(json.dumps({'rc':rc,'wall_s':time.perf_counter()-t,"
             "'peak_rss_mb':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024}))")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
    rec = json.loads(line)
    if rec.get("rc", 1) != 0:
        rec["stderr"] = out.stderr[-2000:]
    return rec


def concordance(res: pd.DataFrame, r: pd.DataFrame) -> dict:
    r = r.loc[res.index]
    m = (r["baseMean"] >= 10).to_numpy() & res["log2FoldChange"].notna().to_numpy()
    a = set(res.index[res["padj"] < 0.05])
    b = set(r.index[r["padj"] < 0.05])
    both = list(a & b)
    return {"pearson_lfc_basemean_ge_10": float(np.corrcoef(res["log2FoldChange"][m], r["log2FoldChange"][m])[0, 1]),
            "n_sig": len(a), "n_sig_r": len(b), "jaccard_padj_lt_0_05": len(a & b) / len(a | b),
            "sign_disagreements": int((np.sign(res.loc[both, "log2FoldChange"]) != np.sign(r.loc[both, "log2FoldChange"])).sum())}


def ensure_r() -> bool:
    if shutil.which("Rscript"):
        return True
    print("Rscript missing: apt-get install -y r-base-core r-bioc-deseq2 (several minutes)", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "r-base-core", "r-bioc-deseq2"], check=False)
    return shutil.which("Rscript") is not None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", default=None)
    ap.add_argument("--airway", type=Path, default=Path("/work/shared/data/airway"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-r", action="store_true", help="use the stored R results instead of running R")
    ap.add_argument("--skip", nargs="*", default=[], help="parts to skip: dormsig pydeseq2 r pseudobulk")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.airway, args.out, args.threads)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench_de_"))
    report: dict = {"threads": args.threads, "machine_cpus": os.cpu_count()}
    r_path = args.airway / "r_deseq2_cell_dex_results.csv"
    if "r" not in args.skip and not args.no_r and ensure_r():
        script = tmp / "airway.R"
        script.write_text(R_SCRIPT)
        r_path = tmp / "r.csv"
        report["r_deseq2"] = measure(["Rscript", str(script), str(args.airway), str(r_path)])
    r = pd.read_csv(r_path, index_col=0)
    for name in ("dormsig", "pydeseq2"):
        if name in args.skip:
            continue
        out = tmp / f"{name}.csv"
        rec = measure([sys.executable, __file__, "--worker", name, "--airway", str(args.airway), "--out", str(out),
                       "--threads", str(args.threads)])
        if out.exists():
            rec.update(concordance(pd.read_csv(out, index_col=0), r))
        report[f"airway_{name}"] = rec
        print(name, rec, file=sys.stderr)
    if "pseudobulk" not in args.skip:
        out = tmp / "pb.json"
        rec = measure([sys.executable, __file__, "--worker", "pseudobulk", "--out", str(out),
                       "--threads", str(args.threads)])
        if out.exists():
            rec.update(json.loads(out.read_text()))
        report["pseudobulk_100k_cells"] = rec
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
