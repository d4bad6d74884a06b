"""singscore: normalised mean rank of the set genes (Foroutan et al. 2018)."""

from __future__ import annotations

from functools import partial

from dormsig.tl._kernels import singscore_kernel
from dormsig.tl._matrix import shape
from dormsig.tl._registry import MethodInfo
from dormsig.tl.methods import IndexSets, MethodResult, SetLayout, run_chunks

INFO = MethodInfo(
    name="singscore",
    citation="Foroutan M, et al. Single sample scoring of molecular phenotypes. "
    "BMC Bioinformatics 2018;19:404.",
    doi="10.1186/s12859-018-2435-4",
    score_range=(-1.0, 1.0),
    cohort_dependent=False,
    signed=True,
    single_sample=True,
    signed_rule="centred up score + centred (1 - down score); each part in [-0.5, 0.5] without ties",
    notes="Ranks by increasing value with ties at the minimum (R rank, ties.method='min', the singscore "
    "default); each part normalised by its theoretical bounds ((n+1)/2, (2N-n+1)/2) and centred by -0.5. "
    "Dispersion = R mad (x 1.4826) of the set genes' ranks, summed over parts, in "
    "obsm['dormsig_singscore_dispersion']. An all-zero sample ranks every gene 1 (all tied): its up part is "
    "the lowest possible value, (1 - (n+1)/2) / bound range - 0.5, its down part the highest. "
    "score_range is the range without ties: because tied genes share the minimum rank (as in R), a part can "
    "pass its bound by up to (n-1)/(2(N-n)) for a set of n of N genes (e.g. 1.05 with N=12, n=2).",
    extra_outputs=("dispersion",),
)


def compute(
    X,
    sets: IndexSets,
    *,
    chunk_size: int = 20000,
    threads: int | None = None,
    centre: bool = True,
    obs_names=None,
    **_: object,
) -> MethodResult:
    """singscore scores (and dispersions) of every cell of ``X`` for index ``sets``."""
    n_genes = shape(X)[1]
    layout = SetLayout.build(sets, n_genes)

    call = partial(_call, layout, n_genes, bool(centre))
    scores, extras = run_chunks(X, len(sets), call, chunk_size=chunk_size, threads=threads,
                                obs_names=obs_names, n_extra=1)
    return MethodResult(scores, extra={"dispersion": extras[0]}, params={"centre": bool(centre)})


def _call(layout: SetLayout, n_genes: int, centre: bool, block, out, disp) -> None:
    # module level, so that dask pickles it by reference (a closure would carry the numba dispatcher by value)
    singscore_kernel(block.data, block.indices, block.indptr, n_genes, layout.slot, layout.set_slots,
                     layout.set_ptr, centre, out, disp)
