"""Scoring on a real dask.distributed cluster: a LocalCluster of 2 worker processes (1 thread, a
memory limit each) scores a chunked zarr store read lazily with anndata's own reader; the scores
equal in-memory scoring bit for bit, and the blocks ran on the workers, not in the client.

Data: real cells (oligodendroglioma Smart-seq2, Tirosh et al. 2016; tests/data/score).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from score_fixtures import hallmark_subset, oligo_frame

from dormsig.tl import score

distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

ROWS = 40  # rows per dask block: 5 blocks over 184 cells


_gmt = hallmark_subset


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[ad.AnnData, Path]:
    df = oligo_frame()
    adata = ad.AnnData(X=sp.csr_matrix(np.log1p(df.T.to_numpy(np.float32))), obs=pd.DataFrame(index=df.columns),
                       var=pd.DataFrame(index=df.index))
    path = tmp_path_factory.mktemp("zarr") / "oligo.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_zarr(path, chunks=(ROWS * 300,))  # several zarr chunks of data/indices too
    return adata, path


def _lazy(path: Path, route: str = "anndata") -> ad.AnnData:
    from anndata.experimental import read_elem_lazy
    from anndata.io import read_elem

    if route == "dormsig":  # the chunk files decoded in the tasks (dormsig score --scheduler)
        from dormsig.io.lazy import read_lazy

        return read_lazy(path, chunk_rows=ROWS)

    g = zarr.open_group(str(path), mode="r")
    adata = ad.AnnData(obs=read_elem(g["obs"]), var=read_elem(g["var"]))
    adata.X = read_elem_lazy(g["X"], chunks=(ROWS, adata.n_vars))
    return adata


@pytest.mark.parametrize(("method", "route"), [("ucell", "anndata"), ("singscore", "anndata"), ("ucell", "dormsig")])
def test_local_cluster_scores_equal_in_memory(store, method, route):
    mem, path = store
    mem = mem.copy()
    lazy = _lazy(path, route)
    assert lazy.X.numblocks == (5, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score(mem, _gmt(), method=method, index=None)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            client.wait_for_workers(2)
            # ask the workers themselves: the client's cached scheduler_info() can be empty (seen in CI)
            cluster_workers = set(client.run(lambda: None))
            with distributed.get_task_stream(client) as stream:
                score(lazy, _gmt(), method=method, index=None)
            blocks = [t for t in stream.data if "_score_block" in str(t["key"])]
            reads = [t for t in stream.data if "dormsig-zarr-rows" in str(t["key"])]
    assert len(blocks) == 5  # one task per row block, run on the cluster's worker processes
    assert {t["worker"] for t in blocks} <= cluster_workers and len(cluster_workers) == 2
    if route == "dormsig":  # the blocks were decoded on the workers too
        # each block read once per pass over the matrix (gene detection, then the scores)
        assert len({str(t["key"]) for t in reads}) == 5 and {t["worker"] for t in reads} <= cluster_workers
    for key in mem.obsm:
        pd.testing.assert_frame_equal(lazy.obsm[key], mem.obsm[key], check_exact=True)
    np.testing.assert_equal(lazy.uns["dormsig"]["score"]["floor"], mem.uns["dormsig"]["score"]["floor"])
    assert lazy.obsm["dormsig_scores"].std().min() > 0
