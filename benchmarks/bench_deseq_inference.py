"""Benchmark dormsig's DESeq2 (R-faithful, ``dormsig.de.deseq``) against plain PyDESeq2 and R DESeq2.

Run by hand (not in CI)::

    /work/venv/bin/python benchmarks/bench_deseq_inference.py \
        --data /work/shared/data/airway --threads 2 [--skip-pydeseq2] [--install-r] [--demo]

Cases: the CTC design of ``dormsig demo`` (Aceto 2014, 29 samples x 16,008 genes, ``~ patient + group``,
NOTCH2_high vs NOTCH1_high; inputs in tests/data/de/r_reference), simulated negative-binomial counts
(20,000 genes, two groups, 6 / 24 / 100 samples, seed 0) and the full airway data (64,102 genes x 8
samples, ``~ cell + dex``). Agreement with R (Pearson r of log2FC over baseMean >= 10, Jaccard of the
padj < 0.05 sets, both with R's alpha = 0.1 independent filtering) is printed beside the times. Each
implementation runs in a fresh subprocess: size factors, dispersions, LFCs, Cook's refit
and the Wald test (``DeseqDataSet(...).deseq2()`` + ``DeseqStats(...).summary()``; R:
``DESeq()`` + ``results()``). Wall time and peak resident memory of the process tree
(psutil, sampled every 50 ms) are printed as one table. R DESeq2 is used only if
``Rscript`` with DESeq2 is available; ``--install-r`` installs it with apt-get
(``apt-get install -y r-base-core r-bioc-deseq2``, about 5 minutes).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

R_SCRIPT = r"""
suppressMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
counts <- as.matrix(read.csv(args[1], row.names = 1, check.names = FALSE))
meta <- read.csv(args[2], row.names = 1, stringsAsFactors = TRUE)
meta <- meta[colnames(counts), , drop = FALSE]
meta[[args[4]]] <- relevel(factor(meta[[args[4]]]), ref = args[6])
dds <- DESeqDataSetFromMatrix(round(counts), meta, as.formula(args[3]))
dds <- DESeq(dds, quiet = TRUE)
res <- results(dds, contrast = c(args[4], args[5], args[6]))
write.csv(as.data.frame(res), args[7])
"""

PY_RUNNER = r"""
import sys, warnings
import pandas as pd
warnings.filterwarnings("ignore")
from pydeseq2.dds import DeseqDataSet
from pydeseq2.ds import DeseqStats
impl, counts_path, meta_path, design, factor, num, den, out, threads = sys.argv[1:10]
counts = pd.read_csv(counts_path, index_col=0).T  # samples x genes
meta = pd.read_csv(meta_path, index_col=0).loc[counts.index]
for col in meta.columns:
    meta[col] = meta[col].astype(str)
if impl == "dormsig":
    import anndata as ad
    import numpy as np
    from dormsig.de import deseq
    covs = [c.strip() for c in design.lstrip("~").split("+")][:-1]
    adata = ad.AnnData(counts.to_numpy(np.float64), obs=meta, var=pd.DataFrame(index=counts.columns))
    deseq(adata, group_key=factor, test=num, reference=den, covariates=covs, layer=None, alpha=0.1,
          threads=int(threads)).set_index("gene").to_csv(out)
    sys.exit(0)
from pydeseq2.default_inference import DefaultInference
inf = DefaultInference(n_cpus=int(threads))
meta[factor] = pd.Categorical(meta[factor], categories=[den, *sorted(set(meta[factor]) - {den})])
dds = DeseqDataSet(counts=counts, metadata=meta, design=design, refit_cooks=True, inference=inf, quiet=True)
dds.deseq2()
ds = DeseqStats(dds, contrast=[factor, num, den], inference=inf, quiet=True)
ds.summary()
ds.results_df.to_csv(out)
"""


def simulate(n_genes: int, n_samples: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NB counts, two groups, 10% of genes with |log2 FC| = 1; genes x samples."""
    rng = np.random.default_rng(seed)
    base = np.exp(rng.normal(4.0, 2.0, n_genes))
    disp = 0.05 + 2.0 / base
    lfc = np.where(rng.random(n_genes) < 0.1, rng.choice([-1.0, 1.0], n_genes), 0.0)
    group = np.repeat(["A", "B"], [n_samples // 2, n_samples - n_samples // 2])
    sf = np.exp(rng.normal(0, 0.2, n_samples))
    mu = base[:, None] * sf[None, :] * np.where(group == "B", 2.0 ** lfc[:, None], 1.0)
    r = 1.0 / disp[:, None]
    counts = rng.negative_binomial(r, r / (r + mu))
    samples = [f"s{i}" for i in range(n_samples)]
    cdf = pd.DataFrame(counts, index=[f"g{i}" for i in range(n_genes)], columns=samples)
    meta = pd.DataFrame({"group": group}, index=samples)
    return cdf, meta


def run_tree(cmd: list[str]) -> tuple[float, float, int]:
    """Run ``cmd``; return (wall seconds, peak RSS of the process tree in MB, return code)."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.stderr.write(proc.stderr.read().decode()[-2000:])
    return wall, peak / 2**20, proc.returncode


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _time_demo(threads: int) -> None:
    """`dormsig demo` end to end (read, groups, two DE contrasts, enrichment, scores, report): wall and CPU seconds."""
    dormsig = Path(sys.executable).with_name("dormsig")
    with tempfile.TemporaryDirectory() as tmp:
        import resource

        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, mem, rc = run_tree([str(dormsig), "demo", "--out", str(Path(tmp) / "demo"), "--threads", str(threads)])
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    print(f"dormsig demo --threads {threads}: {wall:.1f} s wall, {cpu:.1f} CPU s, peak {mem:.0f} MB, exit {rc}; "
          f"load after: {_uptime()}", flush=True)


def have_r_deseq2() -> bool:
    """Whether ``Rscript`` can load DESeq2."""
    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "library(DESeq2)"], capture_output=True).returncode == 0


def main() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/airway"), help="folder with airway_counts.csv and airway_coldata.csv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--samples", type=int, nargs="+", default=[6, 24, 100])
    ap.add_argument("--skip-pydeseq2", action="store_true")
    ap.add_argument("--skip-airway", action="store_true")
    ap.add_argument("--install-r", action="store_true", help="apt-get install r-base-core r-bioc-deseq2 first")
    ap.add_argument("--demo", action="store_true", help="also time `dormsig demo` end to end (wall, CPU s)")
    ap.add_argument("--only-demo", action="store_true", help="time `dormsig demo` only")
    args = ap.parse_args()
    print(f"load before: {_uptime()}", flush=True)
    if args.demo or args.only_demo:
        _time_demo(args.threads)
        if args.only_demo:
            return

    if args.install_r and not have_r_deseq2():
        subprocess.run(["apt-get", "install", "-y", "r-base-core", "r-bioc-deseq2"], check=True)
    use_r = have_r_deseq2()
    if not use_r:
        print("R DESeq2 not found: install it with `apt-get install -y r-base-core r-bioc-deseq2` "
              "(about 5 min) or rerun with --install-r; R column left empty.")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        (tmpd / "run.py").write_text(PY_RUNNER)
        (tmpd / "run.R").write_text(R_SCRIPT)
        cases = []
        ref = Path(__file__).parents[1] / "tests" / "data" / "de" / "r_reference"
        cases.append(("CTC 16008 x 29 ~patient+group", ref / "ctc_counts.csv.gz", ref / "ctc_coldata.csv",
                      "~patient + group_NOTCH2_vs_NOTCH1", "group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high"))
        for n in args.samples:
            cdf, meta = simulate(args.genes, n)
            cp, mp = tmpd / f"sim{n}_counts.csv", tmpd / f"sim{n}_meta.csv"
            cdf.to_csv(cp)
            meta.to_csv(mp)
            cases.append((f"sim {args.genes} x {n}", cp, mp, "~group", "group", "B", "A"))
        if not args.skip_airway:
            cases.append(("airway 64102 x 8", args.data / "airway_counts.csv", args.data / "airway_coldata.csv",
                          "~cell + dex", "dex", "trt", "untrt"))
        # warm the numba cache once so that compilation is not timed
        warm = tmpd / "warm.csv"
        simulate(200, 6)[0].to_csv(warm)
        simulate(200, 6)[1].to_csv(tmpd / "warm_meta.csv")
        subprocess.run([sys.executable, str(tmpd / "run.py"), "dormsig", str(warm), str(tmpd / "warm_meta.csv"),
                        "~group", "group", "B", "A", str(tmpd / "warm_out.csv"), "1"], check=True)
        for name, cp, mp, design, factor, num, den in cases:
            row = {"case": name}
            impls = ["dormsig"] + ([] if args.skip_pydeseq2 else ["pydeseq2"])
            for impl in impls:
                out = tmpd / f"{impl}.csv"
                wall, mem, rc = run_tree([sys.executable, str(tmpd / "run.py"), impl, str(cp), str(mp), design,
                                          factor, num, den, str(out), str(args.threads)])
                row[f"{impl} s"] = round(wall, 1) if rc == 0 else float("nan")
                row[f"{impl} MB"] = round(mem)
                if rc == 0:
                    row[f"_{impl}"] = pd.read_csv(out, index_col=0)
            if use_r:
                out = tmpd / "r.csv"
                wall, mem, rc = run_tree(["Rscript", str(tmpd / "run.R"), str(cp), str(mp), design, factor, num, den, str(out)])
                row["R s"], row["R MB"] = (round(wall, 1) if rc == 0 else float("nan")), round(mem)
                if rc == 0:
                    row["_R"] = pd.read_csv(out, index_col=0)
            a = row.get("_dormsig")
            b_r, b_py = row.get("_R"), row.get("_pydeseq2")
            if b_r is not None and b_py is not None:  # plain pydeseq2 against R, for scale
                b_py = b_py.loc[b_r.index]
                m = (b_r.baseMean >= 10) & b_py.log2FoldChange.notna() & b_r.log2FoldChange.notna()
                row["pydeseq2 r LFC vs R"] = round(float(np.corrcoef(b_py.log2FoldChange[m], b_r.log2FoldChange[m])[0, 1]), 5)
            for other in ("pydeseq2", "R"):
                b = row.get(f"_{other}")
                if a is not None and b is not None:
                    b = b.loc[a.index]
                    ok = a.pvalue.notna() & b.pvalue.notna()
                    m = (b.baseMean >= 10) & a.log2FoldChange.notna() & b.log2FoldChange.notna()
                    row[f"r LFC vs {other}"] = round(float(np.corrcoef(a.log2FoldChange[m], b.log2FoldChange[m])[0, 1]), 5)
                    sa, sb = set(a.index[a.padj < 0.05]), set(b.index[b.padj < 0.05])
                    row[f"Jaccard vs {other}"] = round(len(sa & sb) / max(1, len(sa | sb)), 4)
                    row[f"spearman p vs {other}"] = round(a.pvalue[ok].rank().corr(b.pvalue[ok].rank()), 6)
            rows.append({k: v for k, v in row.items() if not k.startswith("_")})
            print(rows[-1], flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"load after: {_uptime()}")


if __name__ == "__main__":
    main()
