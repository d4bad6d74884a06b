"""ssGSEA through gseapy (Barbie et al. 2009), for bulk cohorts."""

from __future__ import annotations

from dormsig.tl._registry import MethodInfo
from dormsig.tl.methods import IndexSets, MethodResult
from dormsig.tl.methods._gseapy import run_gseapy

INFO = MethodInfo(
    name="ssgsea",
    citation="Barbie DA, et al. Systematic RNA interference reveals that oncogenic KRAS-driven cancers "
    "require TBK1. Nature 2009;462:108-112 (via gseapy, Fang et al. 2023).",
    doi="10.1038/nature08460",
    score_range=None,
    cohort_dependent=True,
    signed=True,
    single_sample=False,
    signed_rule="NES(up) - NES(down)",
    notes="gseapy.ssgsea with sample_norm_method='rank', weight=0.25, min_size=1 (explicit: gseapy drops "
    "sets under 15 genes by default) and max_size=100000. gseapy's NES divides every ES by the range of "
    "ES over the whole cohort, so scores depend on the samples scored together.",
)


def compute(X, sets: IndexSets, *, var_names=None, threads: int | None = None, seed: int = 0,
            weight: float = 0.25, **_: object) -> MethodResult:
    """ssGSEA normalised enrichment scores of every sample of ``X`` (samples x genes)."""
    import gseapy

    def call(df, gene_sets):
        return gseapy.ssgsea(df, gene_sets, min_size=1, max_size=100000, threads=threads or 1, seed=seed,
                             weight=weight, outdir=None, no_plot=True, verbose=False)

    out = run_gseapy(X, sets, var_names, call, column="NES")
    return MethodResult(out, params={"weight": weight, "min_size": 1, "max_size": 100000, "seed": int(seed)})
