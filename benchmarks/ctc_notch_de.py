"""Real breast-cancer run: NOTCH2-high vs NOTCH1-high (and vs NOTCH2-low) CTC samples (Aceto 2014).

Run by hand (needs /work/shared/data or --counts/--meta pointing at GSE51827)::

    python benchmarks/ctc_notch_de.py --out ctc_notch_de

Writes, per contrast, the DE table, the enrichment table (dormsig library + Hallmark v7.0) and a
volcano / running-sum figure, plus summary.json (n per group, design used, top genes, key sets).
Patient enters the design as a covariate when the design stays full rank; otherwise it is dropped
and the summary says so.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import anndata as ad
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dormsig import pl  # noqa: E402
from dormsig.de import define_groups, deseq, enrich  # noqa: E402
from dormsig.errors import DesignError  # noqa: E402
from dormsig.io.write import write_table  # noqa: E402
from dormsig.pp import normalise  # noqa: E402

SHARED = Path("/work/shared/data")
KEY_SETS = ("HSC", "PERK", "CD177", "PROLIF", "E2F", "G2M", "UNFOLDED", "ATF4", "NOTCH", "G0")


def load(counts: Path, meta: Path) -> ad.AnnData:
    c = pd.read_csv(counts, sep="\t", index_col=0).T  # header has one field fewer: first column = genes
    m = pd.read_csv(meta, sep="\t", header=None, index_col=0, names=["gsm", "patient", "id", "type"])
    adata = ad.AnnData(X=c.to_numpy(dtype=np.float64), obs=m.loc[c.index].astype(str),
                       var=pd.DataFrame(index=c.columns.astype(str)))
    adata.layers["counts"] = adata.X.copy()
    normalise(adata)
    return adata


def signatures(hallmark: Path | None) -> dict:
    from dormsig.signatures import load_library

    sets: dict = dict(load_library().items())
    if hallmark is not None and hallmark.exists():
        for line in hallmark.read_text().splitlines():
            parts = line.split("\t")
            sets.setdefault(parts[0], parts[2:])
    return sets


def run_contrast(adata, key, test, reference, sets, out: Path, threads, inference) -> dict:
    info: dict = {"contrast": f"{test} vs {reference}"}
    try:
        res = deseq(adata, group_key=key, test=test, reference=reference, covariates=["patient"],
                    size_factors="poscounts", threads=threads, key_added=f"de_{key}", inference=inference)
        info["design"] = "~ patient + group"
    except DesignError as exc:
        info["covariate_dropped"] = f"patient dropped: {exc}"
        res = deseq(adata, group_key=key, test=test, reference=reference, size_factors="poscounts",
                    threads=threads, key_added=f"de_{key}", inference=inference)
        info["design"] = "~ group"
    stem = f"{test}_vs_{reference}"
    write_table(res, out / f"de_{stem}.tsv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enr = enrich(res, sets, seed=0, permutations=1000, threads=threads)
    write_table(enr, out / f"enrichment_{stem}.tsv", index=False)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    pl.volcano(res, ax=axes[0], title=stem)
    best = enr[enr["method"] == "gsea_prerank"].iloc[0]["set"] if (enr["method"] == "gsea_prerank").any() else None
    if best is not None:
        genes = sets[best.split("|")[0]]
        genes = getattr(genes, "up" if not best.endswith("|down") else "down", genes)
        pl.running_sum(res, genes, ax=axes[1], title=best)
    fig.tight_layout()
    fig.savefig(out / f"plots_{stem}.png", dpi=110)
    plt.close(fig)
    ok = res.dropna(subset=["padj"]).sort_values("pvalue")
    info.update(
        n_per_group=adata.uns["dormsig"][f"de_{key}"]["n_per_group"],
        n_padj_lt_0_05=int((res["padj"] < 0.05).sum()),
        top_up=ok[ok["log2FoldChange"] > 0]["gene"].head(15).tolist(),
        top_down=ok[ok["log2FoldChange"] < 0]["gene"].head(15).tolist(),
        notch=res.loc[[g for g in ("NOTCH1", "NOTCH2") if g in res.index],
                      ["log2FoldChange", "pvalue", "padj"]].round(4).to_dict("index"),
        key_sets=enr[enr["set"].str.upper().str.contains("|".join(KEY_SETS))][
            ["set", "method", "n_matched", "NES", "effect", "pvalue", "fdr", "direction"]].round(4).to_dict("records"),
        top_sets=enr.head(10)[["set", "method", "n_matched", "NES", "effect", "pvalue", "fdr", "direction"]]
        .round(4).to_dict("records"),
    )
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=Path, default=SHARED / "aceto2014_ctc_GSE51827" / "GSE51827_data.txt")
    ap.add_argument("--meta", type=Path, default=SHARED / "aceto2014_ctc_GSE51827" / "GSE51827_metadata.txt")
    ap.add_argument("--hallmark", type=Path, default=Path(__file__).parents[1] / "tests/data/de/h.all.v7.0.symbols.gmt")
    ap.add_argument("--out", type=Path, default=Path("ctc_notch_de"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-count", type=int, default=10, help="prefilter: count threshold")
    ap.add_argument("--min-samples", type=int, default=5, help="prefilter: samples reaching --min-count")
    ap.add_argument("--inference", default="pydeseq2", help="'pydeseq2' (default here: faster than 'fast' "
                    "on these sparse data with a 13-coefficient design) or 'fast'")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    adata = load(args.counts, args.meta)
    sets = signatures(args.hallmark)
    # Groups from all genes' normalised values; then the usual DESeq2 prefilter (>= min_count reads
    # in >= min_samples samples, cf. the DESeq2 vignette) keeps the fit tractable on 2 cores.
    define_groups(adata, "NOTCH2", "NOTCH1", key_added="g_n2_n1")
    define_groups(adata, "NOTCH2", "low", key_added="g_n2")
    n_all = adata.n_vars
    keep = (adata.layers["counts"] >= args.min_count).sum(axis=0) >= args.min_samples
    # ... but the marker genes under study (dormsig library genes, e.g. CXCR4, CD34, TEK: rare in CTCs) are always tested.
    lib_genes = {g for sig in sets.values() if hasattr(sig, "up") for g in (*sig.up, *sig.down)}
    keep |= adata.var_names.isin(sorted(lib_genes | {"NOTCH1", "NOTCH2"})) & (adata.layers["counts"].sum(axis=0) > 0)
    adata = adata[:, keep].copy()
    summary = {
        "n_samples": int(adata.n_obs), "n_genes_total": int(n_all), "n_genes_tested": int(adata.n_vars),
        "prefilter": f">= {args.min_count} reads in >= {args.min_samples} samples", "inference": args.inference,
        "groups_n2_vs_n1": adata.obs["g_n2_n1"].value_counts().to_dict(),
        "groups_n2_vs_low": adata.obs["g_n2"].value_counts().to_dict(),
        "contrasts": [
            run_contrast(adata, "g_n2_n1", "NOTCH2_high", "NOTCH1_high", sets, args.out, args.threads, args.inference),
            run_contrast(adata, "g_n2", "NOTCH2_high", "NOTCH2_low", sets, args.out, args.threads, args.inference),
        ],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
