"""GSVA through gseapy (Haenzelmann et al. 2013), for bulk cohorts."""

from __future__ import annotations

from dormsig.tl._registry import MethodInfo
from dormsig.tl.methods import IndexSets, MethodResult
from dormsig.tl.methods._gseapy import run_gseapy

INFO = MethodInfo(
    name="gsva",
    citation="Haenzelmann S, Castelo R, Guinney J. GSVA: gene set variation analysis for microarray and "
    "RNA-seq data. BMC Bioinformatics 2013;14:7 (via gseapy.gsva).",
    doi="10.1186/1471-2105-14-7",
    score_range=(-2.0, 2.0),
    cohort_dependent=True,
    signed=True,
    single_sample=False,
    signed_rule="ES(up) - ES(down)",
    notes="gseapy.gsva with kcdf='Gaussian' (log-scale data), tau=1, mx_diff=True, min_size=1 (explicit), "
    "max_size=100000. Gene-wise kernel CDFs are estimated over the cohort: scores depend on the samples "
    "scored together; use several samples.",
)


def compute(X, sets: IndexSets, *, var_names=None, threads: int | None = None, seed: int = 0,
            kcdf: str = "Gaussian", **_: object) -> MethodResult:
    """GSVA enrichment scores of every sample of ``X`` (samples x genes)."""
    import gseapy

    def call(df, gene_sets):
        return gseapy.gsva(df, gene_sets, kcdf=kcdf, min_size=1, max_size=100000, threads=threads or 1,
                           seed=seed, outdir=None, verbose=False)

    out = run_gseapy(X, sets, var_names, call, column="ES")
    return MethodResult(out, params={"kcdf": kcdf, "min_size": 1, "max_size": 100000, "seed": int(seed)})
