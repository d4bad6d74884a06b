"""UCell: Mann-Whitney U statistic on per-cell gene ranks (Andreatta & Carmona 2021)."""

from __future__ import annotations

from functools import partial

import numpy as np

from dormsig.errors import InputError
from dormsig.tl._kernels import ucell_kernel, value_bits
from dormsig.tl._matrix import shape
from dormsig.tl._registry import MethodInfo
from dormsig.tl.methods import IndexSets, MethodResult, SetLayout, run_chunks

INFO = MethodInfo(
    name="ucell",
    citation="Andreatta M, Carmona SJ. UCell: Robust and scalable single-cell gene signature scoring. "
    "Comput Struct Biotechnol J 2021;19:3796-3798.",
    doi="10.1016/j.csbj.2021.06.043",
    score_range=(0.0, 1.0),
    cohort_dependent=False,
    signed=True,
    single_sample=True,
    signed_rule="max(0, U(up) - w_neg * U(down)), w_neg = 1 by default (as UCell/pyUCell)",
    notes="Genes ranked by decreasing value among the cell's nonzero entries, ties averaged; zeros and "
    "ranks beyond max_rank (default 1500) count as max_rank. Equals pyUCell 0.8 compute_ucell_scores "
    "(missing genes removed before scoring). An all-zero cell scores 0 for every set. Negative values "
    "are ranked below the positive ones and above zeros (pyUCell's convention); use non-negative data.",
)


def compute(
    X,
    sets: IndexSets,
    *,
    chunk_size: int = 20000,
    threads: int | None = None,
    max_rank: int = 1500,
    w_neg: float = 1.0,
    obs_names=None,
    **_: object,
) -> MethodResult:
    """UCell scores of every cell of ``X`` (cells x genes) for index ``sets``."""
    if int(max_rank) < 1:
        raise InputError(f"max_rank must be >= 1, got {max_rank}")
    layout = SetLayout.build(sets, shape(X)[1])

    call = partial(_call, layout, int(max_rank), float(w_neg))
    scores, _ = run_chunks(X, len(sets), call, chunk_size=chunk_size, threads=threads, obs_names=obs_names)
    return MethodResult(scores, params={"max_rank": int(max_rank), "w_neg": float(w_neg)})


def _call(layout: SetLayout, max_rank: int, w_neg: float, block, out) -> np.ndarray:
    # module level, so that dask pickles it by reference (a closure would carry the numba dispatcher by value);
    # returns the kernel's flags of rows with non-finite values (it checks them in its own pass)
    bad = np.empty(block.shape[0], dtype=np.uint8)
    ucell_kernel(block.data, value_bits(block.data), block.indices, block.indptr, layout.slot, layout.set_slots,
                 layout.set_ptr, max_rank, w_neg, out, bad)
    return bad


_call.checks_finite = True  # the kernel flags rows with NaN/infinite values in its own pass
