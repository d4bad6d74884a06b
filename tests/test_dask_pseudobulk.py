"""Pseudobulk from backed (.h5ad, backed="r") and dask matrices, summed chunk by chunk, equals the
in-memory sums (integer counts: float sums are exact in any order) and a pandas groupby.

Data: real cells (oligodendroglioma Smart-seq2, Tirosh et al. 2016, rounded RSEM counts,
tests/data/de), sample = patient prefix of the cell name, group = annotated cell type.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dormsig.de import pseudobulk

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

DATA = Path(__file__).parent / "data" / "de"


@pytest.fixture(scope="module")
def cells() -> ad.AnnData:
    counts = pd.read_csv(DATA / "oligo_counts_subset_rounded.csv.gz", index_col=0)
    ann = pd.read_csv(DATA / "oligo_annotations.txt", sep="\t", header=None, index_col=0).iloc[:, 0]
    obs = pd.DataFrame({"sample": [c.split("_")[0] for c in counts.columns],
                        "cell_type": ann.reindex(counts.columns).fillna("unknown").to_numpy()}, index=counts.columns)
    adata = ad.AnnData(X=sp.csr_matrix(counts.T.to_numpy(np.float32)), obs=obs, var=pd.DataFrame(index=counts.index))
    adata.layers["counts"] = adata.X.copy()
    assert obs["sample"].nunique() >= 3 and obs["cell_type"].nunique() >= 2
    return adata


def _check(pb, ref, cells):
    pd.testing.assert_frame_equal(pb.obs.astype(str), ref.obs.astype(str))  # h5ad stores strings as categories
    np.testing.assert_array_equal(pb.layers["counts"], ref.layers["counts"])
    dense = cells.layers["counts"].toarray().astype(np.float64)
    by = pd.DataFrame(dense, columns=cells.var_names).groupby([cells.obs["sample"].to_numpy(),
                                                               cells.obs["cell_type"].to_numpy()]).sum()
    by.index = [f"{s}|{g}" for s, g in by.index]
    np.testing.assert_array_equal(pb.layers["counts"], by.loc[pb.obs_names].to_numpy())


def test_backed_pseudobulk_equals_in_memory(cells, tmp_path):
    ref = pseudobulk(cells, sample_key="sample", group_key="cell_type", layer=None, min_cells=3, min_counts=0)
    path = tmp_path / "cells.h5ad"
    cells.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    pb = pseudobulk(backed, sample_key="sample", group_key="cell_type", layer=None, min_cells=3, min_counts=0,
                    chunk_size=37)  # 5 chunks, the last one short
    assert backed.isbacked
    _check(pb, ref, cells)


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
def test_dask_pseudobulk_equals_in_memory(cells, dense):
    ref = pseudobulk(cells, sample_key="sample", group_key="cell_type", min_cells=3, min_counts=0)
    lazy = cells.copy()
    x = cells.layers["counts"]
    lazy.layers["counts"] = (da.from_array(x.toarray(), chunks=(50, 200)) if dense
                             else da.from_array(x, chunks=(50, x.shape[1]), asarray=False))
    with warnings.catch_warnings(), dask.config.set(scheduler="threads"):
        warnings.simplefilter("ignore")
        pb = pseudobulk(lazy, sample_key="sample", group_key="cell_type", min_cells=3, min_counts=0)
    _check(pb, ref, cells)
