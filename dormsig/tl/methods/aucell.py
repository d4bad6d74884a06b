"""AUCell: area under the gene-recovery curve of the top-ranked genes (Aibar et al. 2017)."""

from __future__ import annotations

from functools import partial

import numpy as np

from dormsig.errors import InputError
from dormsig.tl._kernels import aucell_kernel
from dormsig.tl._matrix import shape
from dormsig.tl._registry import MethodInfo
from dormsig.tl.methods import IndexSets, MethodResult, SetLayout, run_chunks

INFO = MethodInfo(
    name="aucell",
    citation="Aibar S, et al. SCENIC: single-cell regulatory network inference and clustering. "
    "Nat Methods 2017;14:1083-1086.",
    doi="10.1038/nmeth.4463",
    score_range=(-1.0, 1.0),
    cohort_dependent=False,
    signed=True,
    single_sample=True,
    signed_rule="AUC(up) - AUC(down); an up-only set lies in [0, 1]",
    notes="Ordinal ranks by decreasing value; ties (zeros included) broken by a fixed pseudo-random gene "
    "order drawn from `seed` exactly as decoupler 2.2 does (numpy default_rng(seed).choice over the genes). "
    "n_up defaults to ceil(0.05 * n_genes) clipped to [2, n_genes] (decoupler's default). Equals "
    "decoupler.mt.aucell when the matrix has no all-zero gene (decoupler drops those first, which changes "
    "n_up and the tie order). An all-zero cell scores by the tie order alone.",
)


def tie_positions(n_genes: int, seed: int) -> np.ndarray:
    """Position of each gene in decoupler's tie-breaking shuffle (``default_rng(seed)``)."""
    rng = np.random.default_rng(seed=seed)
    order = rng.choice(np.arange(n_genes), n_genes, replace=False)
    pos = np.empty(n_genes, dtype=np.int64)
    pos[order] = np.arange(n_genes)
    return pos


def default_n_up(n_genes: int) -> int:
    """decoupler's default: the top 5% of genes, at least 2."""
    return int(np.clip(np.ceil(0.05 * n_genes), 2, n_genes))


def compute(
    X,
    sets: IndexSets,
    *,
    chunk_size: int = 20000,
    threads: int | None = None,
    seed: int = 0,
    n_up: int | float | None = None,
    obs_names=None,
    **_: object,
) -> MethodResult:
    """AUCell scores of every cell of ``X`` (cells x genes) for index ``sets``."""
    n_genes = shape(X)[1]
    n_up = default_n_up(n_genes) if n_up is None else int(np.ceil(n_up))
    if not 1 < n_up <= n_genes:
        raise InputError(f"n_up must be between 2 and the number of genes ({n_genes}), got {n_up}")
    layout = SetLayout.build(sets, n_genes)
    tie_pos = tie_positions(n_genes, seed)

    call = partial(_call, layout, n_genes, tie_pos, n_up)
    scores, _ = run_chunks(X, len(sets), call, chunk_size=chunk_size, threads=threads, obs_names=obs_names)
    return MethodResult(scores, params={"n_up": n_up, "tie_seed": int(seed)})


def _call(layout: SetLayout, n_genes: int, tie_pos: np.ndarray, n_up: int, block, out) -> None:
    # module level, so that dask pickles it by reference (a closure would carry the numba dispatcher by value)
    aucell_kernel(block.data, block.indices, block.indptr, n_genes, layout.slot, layout.slot_gene, tie_pos,
                  layout.set_slots, layout.set_ptr, n_up, out)
