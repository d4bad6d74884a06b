"""``dormsig score --scheduler``: a zarr store or .h5ad scored as a dask graph gives the same table
as the backed (one process) route; bad schedulers and inputs stop with one line and exit 2.

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

from dormsig.cli import main

pytest.importorskip("dask")
pytest.importorskip("zarr")

DATA = Path(__file__).parent / "data" / "score"


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path]:
    df = pd.read_csv(DATA / "oligodendroglioma_tirosh2016_4000genes.tsv.gz", sep="\t", index_col=0)
    adata = ad.AnnData(X=sp.csr_matrix(np.log1p(df.T.to_numpy(np.float32))), obs=pd.DataFrame(index=df.columns),
                       var=pd.DataFrame(index=df.index))
    root = tmp_path_factory.mktemp("stores")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_zarr(root / "oligo.zarr")
        adata.write_h5ad(root / "oligo.h5ad")
    return root / "oligo.zarr", root / "oligo.h5ad"


def _score(*args: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["score", *args, "--method", "ucell", "--quiet"])


@pytest.mark.parametrize(("which", "scheduler"), [(0, "processes"), (1, "threads"), (0, "synchronous")])
def test_scheduler_equals_backed(stores, tmp_path, which, scheduler):
    zarr_path, h5ad = stores
    assert _score(str(h5ad), "--backed", "--out", str(tmp_path / "backed.tsv")) == 0
    assert _score(str(stores[which]), "--scheduler", scheduler, "--out", str(tmp_path / "dask.tsv")) == 0
    backed = pd.read_csv(tmp_path / "backed.tsv", sep="\t", index_col=0)
    lazy = pd.read_csv(tmp_path / "dask.tsv", sep="\t", index_col=0)
    assert len(lazy) == 184 and lazy["dormancy_index"].std() > 0
    pd.testing.assert_frame_equal(lazy, backed, check_exact=True)


@pytest.mark.parametrize(("args", "expected"), [
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler tcp://127.0.0.1:1: cannot connect"),
    (["--scheduler", "tcp://127.0.0.1"], "neither threads, processes, synchronous nor a scheduler address"),
    (["--scheduler", "threads", "--backed"], "--backed and --scheduler exclude each other"),
])
def test_bad_scheduler_one_line_exit_2(stores, tmp_path, capsys, args, expected):
    out = tmp_path / "never.tsv"
    assert _score(str(stores[1]), *args, "--out", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and len(err) <= 200, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_scheduler_refuses_a_table(tmp_path, capsys):
    table = tmp_path / "counts.tsv"
    table.write_text("gene\tS1\tS2\nNOTCH2\t1\t2\n")
    assert _score(str(table), "--scheduler", "threads", "--out", str(tmp_path / "o.tsv")) == 2
    err = capsys.readouterr().err.strip()
    assert "zarr store (directory) or an .h5ad file" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.tsv").exists()
