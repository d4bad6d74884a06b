"""zmean: mean z-score of the up genes minus mean z-score of the down genes (cohort-dependent)."""

from __future__ import annotations

import numpy as np

from dormsig.tl._matrix import iter_csr_chunks, shape
from dormsig.tl._registry import MethodInfo
from dormsig.tl.methods import IndexSets, MethodResult, check_finite

INFO = MethodInfo(
    name="zmean",
    citation="Lee E, et al. Inferring pathway activity toward precise disease classification. "
    "PLoS Comput Biol 2008;4:e1000217 (z-score combination).",
    doi="10.1371/journal.pcbi.1000217",
    score_range=None,
    cohort_dependent=True,
    signed=True,
    single_sample=False,
    signed_rule="mean z(up genes) - mean z(down genes)",
    notes="Each gene is z-scored across the samples scored together (mean 0, population sd 1; a gene "
    "with sd 0 contributes 0). Scores therefore change when the cohort changes.",
)


def compute(X, sets: IndexSets, *, chunk_size: int = 20000, obs_names=None, **_: object) -> MethodResult:
    """zmean scores of every sample of ``X`` (samples x genes)."""
    n, n_genes = shape(X)
    genes = np.unique(np.concatenate([np.concatenate([u, d]) for u, d in sets.values()]).astype(np.int64))
    # Two passes over chunks, only the set genes' columns are kept: backed/dask friendly.
    cols = []
    for start, _stop, block in iter_csr_chunks(X, chunk_size):
        check_finite(block, start, obs_names)
        cols.append(block[:, genes].toarray().astype(np.float64))
    sub = np.vstack(cols) if cols else np.zeros((0, genes.size))
    mean = sub.mean(axis=0)
    sd = sub.std(axis=0)
    z = np.divide(sub - mean, sd, out=np.zeros_like(sub), where=sd > 0)
    pos = {g: k for k, g in enumerate(genes)}
    out = np.zeros((n, len(sets)))
    for j, (up, down) in enumerate(sets.values()):
        if len(up):
            out[:, j] += z[:, [pos[g] for g in up]].mean(axis=1)
        if len(down):
            out[:, j] -= z[:, [pos[g] for g in down]].mean(axis=1)
    return MethodResult(out)
