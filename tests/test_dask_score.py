"""Scoring a dask-backed matrix as a dask graph: equal, bit for bit, to the in-memory path.

Real cells (oligodendroglioma Smart-seq2, Tirosh et al. 2016; tests/data/score) with six Hallmark
sets, held as dask arrays of sparse (CSR) and of dense blocks, with row blocks of uneven sizes and
(dense) column blocks that the scorer must join. The in-memory scores are themselves checked
against pyUCell/decoupler/R in tests/test_score_exact.py.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from score_fixtures import hallmark_subset, oligo_frame

from dormsig.errors import InputError
from dormsig.tl import score, score_matrix

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

METHODS = ("ucell", "aucell", "singscore")


_gmt = hallmark_subset


@pytest.fixture(scope="module")
def oligo() -> ad.AnnData:
    df = oligo_frame()
    x = np.log1p(df.T.to_numpy(dtype=np.float64))
    return ad.AnnData(X=sp.csr_matrix(x), obs=pd.DataFrame(index=df.columns), var=pd.DataFrame(index=df.index))


def _sets(adata):
    idx = adata.var_names.get_indexer
    gmt = _gmt()
    names = list(gmt)
    sets = {k: (idx([g for g in v if g in adata.var_names]), np.zeros(0, np.int64)) for k, v in gmt.items()}
    # a signed set: one Hallmark set up, another down
    sets["E2F_minus_HYPOXIA"] = (sets[names[1]][0], sets[names[3]][0])
    return sets


def _dask_sparse(X: sp.csr_matrix):
    return da.from_array(X, chunks=((50, 50, 60, 24), (X.shape[1],)), asarray=False)


def _dask_dense(X: sp.csr_matrix):
    return da.from_array(X.toarray(), chunks=((50, 50, 60, 24), (1500, 1500, 1000)))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("holder", [_dask_sparse, _dask_dense], ids=["sparse", "dense"])
def test_dask_scores_equal_in_memory(oligo, method, holder):
    sets = _sets(oligo)
    ref = score_matrix(oligo.X, sets, method=method)
    lazy = score_matrix(holder(oligo.X), sets, method=method, compute=False)
    assert isinstance(lazy, da.Array) and lazy.numblocks == (4, 1)
    got = lazy.compute(scheduler="threads")
    np.testing.assert_array_equal(got, ref.to_numpy())
    assert np.isfinite(got).all() and got.std(axis=0).min() > 0  # real, varying scores
    computed = score_matrix(holder(oligo.X), sets, method=method)
    pd.testing.assert_frame_equal(computed, ref, check_exact=True)
    for key, frame in ref.attrs["extra"].items():  # singscore dispersion
        pd.testing.assert_frame_equal(computed.attrs["extra"][key], frame, check_exact=True)


def test_gene_sets_are_one_shared_task(oligo):
    """The layout is one key of the graph that every block depends on, not copied into each task."""
    lazy = score_matrix(_dask_sparse(oligo.X), _sets(oligo), method="aucell", compute=False)
    graph = dict(lazy.__dask_graph__())
    shared = [k for k in graph if "partial-" in str(k)]
    assert len(shared) == 1, list(graph)


@pytest.mark.parametrize("method", METHODS)
def test_tl_score_dask_writes_what_in_memory_writes(oligo, method):
    gmt = _gmt()
    mem = oligo.copy()
    lazy = oligo.copy()
    lazy.X = _dask_sparse(oligo.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score(mem, gmt, method=method, index=None)
        with dask.config.set(scheduler="threads"):
            score(lazy, gmt, method=method, index=None)
    pd.testing.assert_frame_equal(lazy.obsm["dormsig_scores"], mem.obsm["dormsig_scores"], check_exact=True)
    for key in mem.obsm:
        pd.testing.assert_frame_equal(lazy.obsm[key], mem.obsm[key], check_exact=True)
    a, b = lazy.uns["dormsig"]["score"], mem.uns["dormsig"]["score"]
    for key in ("params", "match", "floor", "n_genes_matched", "data", "genes", "warnings"):
        np.testing.assert_equal(a[key], b[key], err_msg=key)
    assert isinstance(lazy.X, da.Array)  # the matrix stays lazy


def test_nan_in_a_dask_block_names_the_cell(oligo):
    x = oligo.X.copy()
    x.data[x.indptr[130] + 2] = np.nan  # row 130 is in the third block
    lazy = ad.AnnData(X=_dask_sparse(x), obs=oligo.obs.copy(), var=oligo.var.copy())
    with pytest.raises(InputError, match=f"cell {oligo.obs_names[130]} has NaN"):
        score(lazy, _gmt(), method="ucell", index=None, data_kind="single_cell")
