"""scanpy ``score_genes``: mean expression minus that of expression-matched random control genes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from dormsig.tl._matrix import to_memory
from dormsig.tl._registry import MethodInfo
from dormsig.tl.methods import IndexSets, MethodResult

INFO = MethodInfo(
    name="scanpy",
    citation="Satija R, et al. Spatial reconstruction of single-cell gene expression data. "
    "Nat Biotechnol 2015;33:495-502 (as scanpy.tl.score_genes, Wolf et al. 2018).",
    doi="10.1038/nbt.3192",
    score_range=None,
    cohort_dependent=True,
    signed=True,
    single_sample=False,
    signed_rule="score_genes(up) - score_genes(down)",
    notes="Control genes are drawn from expression bins computed over all cells scored together, with "
    "random_state = seed (recorded); ctrl_size=50, n_bins=25 (scanpy defaults). Runs on a private AnnData "
    "holding the same matrix, so the caller's object is not modified.",
)


def compute(
    X,
    sets: IndexSets,
    *,
    seed: int = 0,
    var_names=None,
    obs_names=None,
    ctrl_size: int = 50,
    n_bins: int = 25,
    **_: object,
) -> MethodResult:
    """scanpy scores of every cell of ``X`` (cells x genes)."""
    import anndata as ad
    import scanpy as sc

    X = to_memory(X)
    n, n_genes = X.shape
    var = pd.Index([f"g{i}" for i in range(n_genes)]) if var_names is None else pd.Index(var_names)
    tmp = ad.AnnData(X=X, var=pd.DataFrame(index=var.astype(str)), obs=pd.DataFrame(index=[str(i) for i in range(n)]))
    out = np.zeros((n, len(sets)))
    for j, (up, down) in enumerate(sets.values()):
        for idx, sign in ((up, 1.0), (down, -1.0)):
            if len(idx) == 0:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sc.tl.score_genes(tmp, list(tmp.var_names[np.asarray(idx)]), ctrl_size=ctrl_size, n_bins=n_bins,
                                  random_state=seed, score_name="_s")
            out[:, j] += sign * tmp.obs["_s"].to_numpy(dtype=np.float64)
    return MethodResult(out, params={"random_state": int(seed), "ctrl_size": ctrl_size, "n_bins": n_bins})
