"""Backed ``.h5ad`` CSR matrices are read as raw slices of their own h5py arrays; the scores stay bit-identical.

``iter_csr_chunks`` reads the rows ``start:stop`` of a backed CSR ``X`` of an ``.h5ad`` file as
``data``/``indices`` between ``indptr[start]`` and ``indptr[stop]`` (anndata's on-disk layout)
instead of going through anndata's row slicing. The references here are independent of that
reader: anndata's own ``X[start:stop]`` (every block equal, array for array) and in-memory
scoring of the same matrix (bit for bit). Real cells: the oligodendroglioma Smart-seq2 matrix
(Tirosh et al. 2016) as log1p float32, and the Aceto 2014 CTC integer counts (tests/data/score),
written with anndata's own writer. Dense and CSC ``X`` keep anndata's route; zarr stores have their own
reader (tests/test_zarr_raw_read.py).
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dormsig.tl import _matrix, score, score_matrix

DATA = Path(__file__).parent / "data" / "score"
METHODS = ("ucell", "aucell", "singscore")


def _oligo() -> tuple[np.ndarray, pd.Index, pd.Index]:
    df = pd.read_csv(DATA / "oligodendroglioma_tirosh2016_4000genes.tsv.gz", sep="\t", index_col=0)
    return np.log1p(df.T.to_numpy(dtype=np.float64)).astype(np.float32), df.columns, df.index


def _aceto() -> tuple[np.ndarray, pd.Index, pd.Index]:
    df = pd.read_csv(DATA / "aceto2014_ctc_GSE51827.tsv.gz", sep="\t", index_col=0)
    counts = df.T.to_numpy()
    assert np.abs(counts - np.rint(counts)).max() < 1e-6  # read counts (summed by symbol: float noise)
    return np.rint(counts).astype(np.int32), df.columns, df.index


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """name -> (h5ad path, the same X in memory)."""
    out = {}
    root = tmp_path_factory.mktemp("raw")
    x, cells, genes = _oligo()
    # a run of all-zero cells: one chunk of 50 rows holds no stored value (an empty h5py read)
    x = x.copy()
    x[50:110] = 0
    aceto, a_cells, a_genes = _aceto()
    holders = {
        "csr_float32": (sp.csr_matrix(x), cells, genes),
        "csr_int_counts": (sp.csr_matrix(aceto), a_cells, a_genes),
        "dense_float32": (x, cells, genes),
    }
    for name, (X, c, g) in holders.items():
        path = root / f"{name}.h5ad"
        ad.AnnData(X=X, obs=pd.DataFrame(index=c.astype(str)), var=pd.DataFrame(index=g.astype(str))).write_h5ad(path)
        out[name] = (path, X)
    return out


def _chunk(X) -> int:
    """50 rows for the 184 oligodendroglioma cells, 7 for the 29 CTC samples: several chunks each."""
    return 50 if X.shape[0] > 100 else 7


def _sets(n_genes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    perm = rng.permutation(n_genes)
    return {"S40": (perm[:40], np.zeros(0, np.int64)), "S150": (perm[40:190], np.zeros(0, np.int64)),
            "signed": (perm[190:260], perm[260:300])}


class _Spy:
    """Counts the blocks read by the raw h5py reader."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = _matrix._H5CSRReader.__call__

        def call(reader, start, stop, *slot):
            self.calls += 1
            return original(reader, start, stop, *slot)

        monkeypatch.setattr(_matrix._H5CSRReader, "__call__", call)


@pytest.mark.parametrize("name", ["csr_float32", "csr_int_counts"])
def test_raw_blocks_equal_anndata_blocks(files, name, monkeypatch):
    path, X = files[name]
    backed = ad.read_h5ad(path, backed="r")
    spy = _Spy(monkeypatch)
    raw = list(_matrix.iter_csr_chunks(backed.X, _chunk(X)))
    assert spy.calls == len(raw) > 2
    monkeypatch.setattr(_matrix, "RAW_H5AD", False)
    via_anndata = list(_matrix.iter_csr_chunks(backed.X, _chunk(X)))
    assert spy.calls == len(raw)  # the second pass did not use the raw reader
    assert [(a, b) for a, b, _ in raw] == [(a, b) for a, b, _ in via_anndata]
    for (_, _, r), (_, _, q) in zip(raw, via_anndata, strict=True):
        assert r.shape == q.shape
        assert r.data.dtype == q.data.dtype  # float32 kept; integer counts as float64, as the anndata route
        np.testing.assert_array_equal(r.data, q.data)
        np.testing.assert_array_equal(r.indices, q.indices)
        np.testing.assert_array_equal(r.indptr, q.indptr)
    if name == "csr_int_counts":
        assert raw[0][2].data.dtype == np.float64
    else:
        assert any(b.nnz == 0 for _, _, b in raw)  # the all-zero run made an empty read


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["csr_float32", "csr_int_counts", "dense_float32"])
@pytest.mark.parametrize("prefetch", [True, False], ids=["read-ahead", "serial"])
def test_backed_scores_bit_identical_to_in_memory(files, name, method, prefetch, monkeypatch):
    path, X = files[name]
    sets = _sets(X.shape[1])
    chunk = _chunk(X)
    expected = score_matrix(X, sets, method=method, chunk_size=chunk).to_numpy()
    monkeypatch.setattr(_matrix, "PREFETCH", prefetch)
    spy = _Spy(monkeypatch)
    got = score_matrix(ad.read_h5ad(path, backed="r").X, sets, method=method, chunk_size=chunk).to_numpy()
    # dense X falls back to anndata's reader; CSR X is read raw, one call per chunk
    assert spy.calls == (0 if name.startswith("dense") else -(-X.shape[0] // chunk))
    assert np.isfinite(expected).all() and expected.std() > 0
    np.testing.assert_array_equal(got, expected)


def test_tl_score_on_backed_h5ad_uses_raw_read(files, monkeypatch):
    path, X = files["csr_float32"]
    genes = ad.read_h5ad(path, backed="r").var_names[np.argsort(-(X > 0).sum(axis=0).A1, kind="stable")]
    sigs = {"A": {"up": list(genes[10:60])}, "B": {"up": list(genes[100:140]), "down": list(genes[300:330])}}
    memory = ad.read_h5ad(path)
    score(memory, sigs, method="ucell", index=None, species="human", chunk_size=40)
    spy = _Spy(monkeypatch)
    backed = ad.read_h5ad(path, backed="r")
    score(backed, sigs, method="ucell", index=None, species="human", chunk_size=40)
    # two passes over the file, both raw: the data profile (counts or log?) and the scores
    assert spy.calls == 2 * -(-X.shape[0] // 40) and backed.isbacked
    np.testing.assert_array_equal(backed.obsm["dormsig_scores"].to_numpy(), memory.obsm["dormsig_scores"].to_numpy())


def test_zarr_and_csc_do_not_take_the_h5ad_reader(files, tmp_path, monkeypatch):
    import zarr
    from anndata.io import sparse_dataset

    path, X = files["csr_float32"]
    sets = _sets(X.shape[1])
    expected = score_matrix(X, sets, method="ucell", chunk_size=50).to_numpy()
    spy = _Spy(monkeypatch)
    zpath = tmp_path / "x.zarr"
    ad.read_h5ad(path).write_zarr(zpath)
    got = score_matrix(sparse_dataset(zarr.open_group(str(zpath), mode="r")["X"]), sets, method="ucell",
                       chunk_size=50).to_numpy()
    np.testing.assert_array_equal(got, expected)
    csc = tmp_path / "csc.h5ad"
    ad.AnnData(X=sp.csc_matrix(X)).write_h5ad(csc)
    got = score_matrix(ad.read_h5ad(csc, backed="r").X, sets, method="ucell", chunk_size=50).to_numpy()
    np.testing.assert_array_equal(got, expected)
    assert spy.calls == 0



def _mapped(a) -> bool:
    """Whether a block's array is a view of a memory map (not a copy)."""
    import mmap

    while True:
        if isinstance(a, np.ndarray):
            a = a.base
        elif isinstance(a, memoryview):
            a = a.obj
        else:
            return isinstance(a, mmap.mmap)


def test_in_order_arrays_are_memory_mapped_and_equal_h5py_reads(files, tmp_path, monkeypatch):
    """write_h5ad's float32 data and int32 indices are mapped (no copy); integer counts are read (HDF5
    converts them); a gzip-compressed file is read. Every route gives the same blocks and scores."""
    path, X = files["csr_float32"]
    backed = ad.read_h5ad(path, backed="r")
    mapped = list(_matrix.iter_csr_chunks(backed.X, _chunk(X)))
    assert all(_mapped(b.data) and _mapped(b.indices) for _, _, b in mapped if b.nnz)
    assert not mapped[0][2].data.flags.writeable  # read-only: the input file cannot be changed through it
    monkeypatch.setattr(_matrix, "MAP_H5AD", False)
    read = list(_matrix.iter_csr_chunks(backed.X, _chunk(X)))
    assert not any(_mapped(b.data) for _, _, b in read)
    gz = tmp_path / "gzip.h5ad"
    ad.read_h5ad(path).write_h5ad(gz, compression="gzip")
    monkeypatch.setattr(_matrix, "MAP_H5AD", True)
    compressed = list(_matrix.iter_csr_chunks(ad.read_h5ad(gz, backed="r").X, _chunk(X)))
    assert not any(_mapped(b.data) for _, _, b in compressed)
    for m, r, c in zip(mapped, read, compressed, strict=True):
        for attr in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(m[2], attr), getattr(r[2], attr))
            np.testing.assert_array_equal(getattr(m[2], attr), getattr(c[2], attr))
    counts_path, counts = files["csr_int_counts"]
    blocks = list(_matrix.iter_csr_chunks(ad.read_h5ad(counts_path, backed="r").X, _chunk(counts)))
    assert blocks[0][2].data.dtype == np.float64 and not _mapped(blocks[0][2].data) and _mapped(blocks[0][2].indices)
    sets = _sets(X.shape[1])
    np.testing.assert_array_equal(score_matrix(backed.X, sets, method="ucell", chunk_size=_chunk(X)).to_numpy(),
                                  score_matrix(sp.csr_matrix(X), sets, method="ucell").to_numpy())


def test_blocks_cut_where_the_file_layout_breaks(tmp_path):
    """HDF5 places the chunks of a large array in a few runs with other data between them: blocks are cut
    at those breaks (a row across one is read alone, with h5py); the blocks tile the matrix exactly."""
    x = sp.random(3000, 2000, density=0.2, format="csr", dtype=np.float32, random_state=np.random.default_rng(5))
    path = tmp_path / "runs.h5ad"
    ad.AnnData(X=x).write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    reader = _matrix._H5CSRReader(_matrix._h5ad_csr_group(backed.X), backed.X.shape)
    assert len(reader.runs["data"]) > 1  # the layout this test is about
    blocks = list(_matrix.iter_csr_chunks(backed.X, 1000))
    assert [b[0] for b in blocks[1:]] == [b[1] for b in blocks[:-1]] and blocks[-1][1] == 3000
    assert len(blocks) > 3
    alone = [(a, b) for a, b, blk in blocks if not _mapped(blk.data)]
    assert alone and all(b - a == 1 for a, b in alone)  # only rows across a break are copied
    whole = sp.vstack([blk for _, _, blk in blocks]).tocsr()
    assert (whole != x).nnz == 0


def test_files_with_a_user_block_or_external_storage_read_right(tmp_path):
    """HDF5 files can start with a user block or keep an array in another file: the blocks are still the
    matrix's rows (mapped only where the bytes are where HDF5 says, else read with h5py)."""
    import h5py
    from anndata.io import write_elem

    x = sp.random(300, 200, density=0.2, format="csr", dtype=np.float32, random_state=np.random.default_rng(1))
    adata = ad.AnnData(X=x)
    path = tmp_path / "userblock.h5ad"
    with h5py.File(path, "w", userblock_size=512) as f:
        for key in ("X", "obs", "var"):
            write_elem(f, key, getattr(adata, key))
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
    blocks = list(_matrix.iter_csr_chunks(ad.read_h5ad(path, backed="r").X, 100))
    assert (sp.vstack([b for _, _, b in blocks]).tocsr() != x).nnz == 0
    ext = tmp_path / "external.h5ad"
    adata.write_h5ad(ext)
    with h5py.File(ext, "a") as f:  # move X/data into an external raw file
        data = f["X/data"][...]
        del f["X/data"]
        f.create_dataset("X/data", data=data, external=[(str(tmp_path / "data.raw"), 0, h5py.h5f.UNLIMITED)])
    backed = ad.read_h5ad(ext, backed="r")
    reader = _matrix._H5CSRReader(_matrix._h5ad_csr_group(backed.X), backed.X.shape)
    assert reader.runs["data"] is None and reader.runs["indices"] is not None
    blocks = list(_matrix.iter_csr_chunks(backed.X, 100))
    assert (sp.vstack([b for _, _, b in blocks]).tocsr() != x).nnz == 0


def test_block_memory_recycled_on_h5py_reads(files, tmp_path):
    """The h5py route (integer counts converted by HDF5, a gzip file) writes blocks into recycled memory:
    dropped blocks lend it to later ones, kept blocks stay intact; mapped arrays are not pooled."""
    counts_path, counts = files["csr_int_counts"]
    path, X = files["csr_float32"]
    gz = tmp_path / "gzip.h5ad"
    ad.read_h5ad(path).write_h5ad(gz, compression="gzip")
    for p, m in ((counts_path, counts), (gz, X)):
        backed = ad.read_h5ad(p, backed="r").X
        step = max(_chunk(m) // 3, 2)
        fresh = [blk.copy() for _, _, blk in _matrix.iter_csr_chunks(backed, step)]
        addresses = set()
        for k, (_, _, blk) in enumerate(_matrix.iter_csr_chunks(backed, step)):
            assert (blk != fresh[k]).nnz == 0
            if blk.nnz:
                addresses.add(blk.data.__array_interface__["data"][0])
        assert len(fresh) > 6 and len(addresses) <= 5
        held = [blk for _, _, blk in _matrix.iter_csr_chunks(backed, step)]
        for blk, ref in zip(held, fresh, strict=True):
            assert (blk != ref).nnz == 0
    blocks = list(_matrix.iter_csr_chunks(ad.read_h5ad(path, backed="r").X, _chunk(X)))
    assert all(_mapped(b.data) for _, _, b in blocks if b.nnz)
