"""Backed CSR zarr stores on a local disk are read by decoding their chunk files; the scores stay bit-identical.

``iter_csr_chunks`` reads the rows of an anndata backed CSR ``X`` in a zarr group by decoding the chunk
files of ``data``/``indices`` with the numcodecs codec the metadata names (zarr v2: Blosc, Zstd, GZip; v3:
``bytes`` + ``blosc``/``zstd``/``gzip``), instead of zarr's own slicing. References independent of that
reader: anndata's own ``X[start:stop]`` (every block equal, array for array) and in-memory scoring of the
same matrix (bit for bit). Real cells: the oligodendroglioma Smart-seq2 matrix (Tirosh et al. 2016) as
log1p float32 with a run of all-zero cells, and the Aceto 2014 CTC integer counts, written with anndata's
writer in small chunks so that every block spans several chunks and starts inside one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dormsig.io.chunks import lazy_zarr_csr
from dormsig.tl import _matrix, score_matrix

zarr = pytest.importorskip("zarr")
numcodecs = pytest.importorskip("numcodecs")

DATA = Path(__file__).parent / "data" / "score"
CHUNK = 1000  # elements per zarr chunk: ~10 cells of the oligodendroglioma matrix


def _oligo() -> sp.csr_matrix:
    df = pd.read_csv(DATA / "oligodendroglioma_tirosh2016_4000genes.tsv.gz", sep="\t", index_col=0)
    x = np.log1p(df.T.to_numpy(dtype=np.float64)).astype(np.float32)
    x[50:110] = 0  # a run of empty cells: blocks with no stored value
    return sp.csr_matrix(x)


def _aceto() -> sp.csr_matrix:
    df = pd.read_csv(DATA / "aceto2014_ctc_GSE51827.tsv.gz", sep="\t", index_col=0)
    return sp.csr_matrix(np.rint(df.T.to_numpy()).astype(np.int32))


def _write(path: Path, X: sp.csr_matrix, fmt: int, compressor: str | None) -> Path:
    """``X`` in anndata's encoding, zarr format ``fmt``, ``CHUNK``-element chunks, the named compressor
    (None: the zarr/anndata default: Blosc lz4 for v2, zstd for v3)."""
    from anndata.io import write_elem

    group = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    kwargs: dict = {"chunks": (CHUNK,)}
    if compressor is not None:
        if fmt == 2:
            kwargs["compressor"] = {"blosc": numcodecs.Blosc(cname="zstd"), "zstd": numcodecs.Zstd(level=3),
                                    "gzip": numcodecs.GZip(level=1)}[compressor]
        else:
            from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

            kwargs["compressors"] = {"blosc": BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
                                     "zstd": ZstdCodec(level=3), "gzip": GzipCodec(level=1)}[compressor]
    write_elem(group, "X", X, dataset_kwargs=kwargs)
    return path


def _backed(path: Path):
    from anndata.io import sparse_dataset

    return sparse_dataset(zarr.open_group(str(path), mode="r")["X"])


LAYOUTS = [(2, None), (2, "zstd"), (2, "gzip"), (3, None), (3, "blosc"), (3, "gzip")]


@pytest.mark.parametrize(("fmt", "compressor"), LAYOUTS)
@pytest.mark.parametrize("which", ["oligo_float32", "aceto_int_counts"])
def test_decoded_blocks_equal_anndata_blocks(tmp_path, fmt, compressor, which):
    X = _oligo() if which == "oligo_float32" else _aceto()
    backed = _backed(_write(tmp_path / "x.zarr", X, fmt, compressor))
    reader = _matrix._ZarrCSRReader.of(backed)
    assert reader is not None
    n = X.shape[0]
    for step in (50, 7):  # blocks of many chunks, and blocks inside one chunk (the kept chunk reused)
        for start in range(0, n, step):
            stop = min(start + step, n)
            got, ref = reader(start, stop), backed[start:stop]
            np.testing.assert_array_equal(got.indptr, ref.indptr)
            np.testing.assert_array_equal(got.indices, ref.indices)
            np.testing.assert_array_equal(got.data, ref.data.astype(got.data.dtype))
    if which == "aceto_int_counts":
        assert got.data.dtype == np.float64  # integer counts are converted as _to_csr does


@pytest.mark.parametrize(("fmt", "compressor"), [(2, None), (3, None)])
@pytest.mark.parametrize("method", ["ucell", "aucell", "singscore"])
def test_backed_zarr_scores_bit_identical_to_in_memory(tmp_path, fmt, compressor, method):
    X = _oligo()
    rng = np.random.default_rng(0)
    sets = {f"S{k}": (rng.choice(X.shape[1], size, replace=False), np.zeros(0, np.int64))
            for k, size in enumerate((5, 40, 200))}
    expected = score_matrix(X, sets, method=method, chunk_size=50).to_numpy()
    backed = _backed(_write(tmp_path / "x.zarr", X, fmt, compressor))
    got = score_matrix(backed, sets, method=method, chunk_size=50).to_numpy()
    np.testing.assert_array_equal(got, expected)


def test_absent_chunk_files_hold_the_fill_value(tmp_path):
    """zarr does not write a chunk whose values all equal the fill value (0): a run of stored zeros longer
    than a chunk leaves no file for it, and the reader must give zeros there, as zarr does."""
    X = _oligo()
    X.data[3 * CHUNK:6 * CHUNK] = 0  # explicit zeros, still stored in the CSR layout
    path = _write(tmp_path / "x.zarr", X, 3, None)
    files = {p.name for p in (path / "X" / "data" / "c").iterdir()}
    assert "4" not in files and "0" in files  # chunk 4 of data is all zero: not written
    backed = _backed(path)
    reader = _matrix._ZarrCSRReader.of(backed)
    got, ref = reader(0, X.shape[0]), backed[0:X.shape[0]]
    np.testing.assert_array_equal(got.data, ref.data)
    np.testing.assert_array_equal(got.indices, ref.indices)


def test_layouts_it_cannot_decode_go_through_anndata(tmp_path):
    """Sharded arrays, a checksum codec, a (lossless) filter: no direct reader, and the scores are still the in-memory ones."""
    from anndata.io import write_elem
    from zarr.codecs import Crc32cCodec

    X = _oligo()
    sets = {"S": (np.arange(0, 400, 7), np.zeros(0, np.int64))}
    expected = score_matrix(X, sets, method="ucell", chunk_size=50).to_numpy()
    cases = {
        "sharded": (3, {"chunks": (CHUNK,), "shards": (4 * CHUNK,)}),
        "crc32c": (3, {"chunks": (CHUNK,), "compressors": [Crc32cCodec()]}),
        "v2_filter": (2, {"chunks": (CHUNK,), "filters": [numcodecs.Shuffle(elementsize=4)]}),
    }
    for name, (fmt, kwargs) in cases.items():
        group = zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="w", zarr_format=fmt)
        write_elem(group, "X", X, dataset_kwargs=kwargs)
        backed = _backed(tmp_path / f"{name}.zarr")
        assert _matrix._ZarrCSRReader.of(backed) is None, name
        got = score_matrix(backed, sets, method="ucell", chunk_size=50).to_numpy()
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("which", ["oligo_float32", "aceto_int_counts"])
def test_recycled_block_memory_gives_anndata_blocks_in_any_order(tmp_path, which):
    """Blocks decoded into recycled memory (each block dropped before the next is read) equal anndata's, read
    in order (the scoring loop), backwards and at random: the kept chunk, the spare chunk buffers and the
    block memory must not leak one block into another."""
    X = _oligo() if which == "oligo_float32" else _aceto()
    backed = _backed(_write(tmp_path / "x.zarr", X, 3, None))
    reader = _matrix._ZarrCSRReader.of(backed)
    n = X.shape[0]
    bounds = [(s, min(s + 23, n)) for s in range(0, n, 23)]
    rng = np.random.default_rng(3)
    for order in (range(len(bounds)), range(len(bounds) - 1, -1, -1), rng.permutation(len(bounds))):
        for i in order:
            start, stop = bounds[i]
            got, ref = reader(start, stop), backed[start:stop]
            np.testing.assert_array_equal(got.indptr, ref.indptr)
            np.testing.assert_array_equal(got.indices, ref.indices)
            np.testing.assert_array_equal(got.data, ref.data.astype(got.data.dtype))
            del got


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("prefetch", [True, False])
def test_block_memory_reused_after_drop_never_while_held(tmp_path, prefetch):
    """Blocks the caller drops give their memory to later blocks (a few buffers serve all blocks); blocks the
    caller keeps are never overwritten (all equal the fresh ones at the end)."""
    X = _aceto()
    backed = _backed(_write(tmp_path / "x.zarr", X, 3, None))
    fresh = [blk.copy() for _, _, blk in _matrix.iter_csr_chunks(backed, 2, prefetch=False)]
    assert len(fresh) > 10
    addresses = set()
    for k, (_, _, blk) in enumerate(_matrix.iter_csr_chunks(backed, 2, prefetch=prefetch)):
        assert (blk != fresh[k]).nnz == 0
        addresses.add(_address(blk.data))
    assert len(addresses) <= 4  # recycled: not one buffer per block
    held = [blk for _, _, blk in _matrix.iter_csr_chunks(backed, 2, prefetch=prefetch)]
    assert len({_address(b.data) for b in held}) == len(held)
    for blk, ref in zip(held, fresh, strict=True):
        assert (blk != ref).nnz == 0


def test_block_memory_returns_only_when_every_view_is_gone():
    from dormsig.io.chunks import BlockMemory

    pool = BlockMemory(keep=2)
    a = pool.take(1000, np.float32)
    view = a[10:20]
    del a
    b = pool.take(1000, np.float32)
    assert not np.shares_memory(b, view)  # a view keeps the memory in use
    del view
    c = pool.take(1000, np.int32)
    assert pool.idle_bytes() == 0 and c.size == 1000  # the freed buffer (same bytes) served c
    del b, c
    assert pool.idle_bytes() >= 2 * 4000
    for _ in range(5):
        held = [pool.take(10, np.float64) for _ in range(4)]
        del held
    assert len(pool._idle) <= 2  # at most `keep` idle buffers


@pytest.mark.parametrize(("fmt", "compressor"), [(2, None), (3, None), (3, "gzip")])
@pytest.mark.parametrize("which", ["oligo_float32", "aceto_int_counts"])
def test_lazy_zarr_blocks_equal_anndata_lazy_blocks(tmp_path, fmt, compressor, which):
    """The dask route (``dormsig score --scheduler``, ``dormsig.io.lazy.read_lazy``): blocks decoded in the
    tasks equal anndata's ``read_elem_lazy`` blocks (integer counts as float64, as the kernels take them)."""
    pytest.importorskip("dask")
    from anndata.experimental import read_elem_lazy

    X = _oligo() if which == "oligo_float32" else _aceto()
    path = _write(tmp_path / "x.zarr", X, fmt, compressor)
    group = zarr.open_group(str(path), mode="r")["X"]
    lazy = lazy_zarr_csr(group, 13)
    assert lazy is not None and lazy.numblocks == (-(-X.shape[0] // 13), 1)
    assert any(str(k[0] if isinstance(k, tuple) else k).startswith("dormsig-zarr-rows") for k in lazy.__dask_graph__())
    ref = read_elem_lazy(group, chunks=(13, X.shape[1]))
    for got, want in zip(lazy.to_delayed()[:, 0], ref.to_delayed()[:, 0], strict=True):
        got, want = got.compute(scheduler="threads"), want.compute()
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data.astype(got.data.dtype))
    whole = lazy.compute(scheduler="threads")  # blocks read at once in threads: one reader each, nothing shared
    assert (whole != sp.csr_matrix(X, dtype=whole.dtype)).nnz == 0


def test_lazy_zarr_other_layouts_left_to_anndata(tmp_path):
    from anndata.io import write_elem

    X = _oligo()
    group = zarr.open_group(str(tmp_path / "sharded.zarr"), mode="w", zarr_format=3)
    write_elem(group, "X", X, dataset_kwargs={"chunks": (CHUNK,), "shards": (4 * CHUNK,)})
    assert lazy_zarr_csr(zarr.open_group(str(tmp_path / "sharded.zarr"), mode="r")["X"], 13) is None
    dense = zarr.open_group(str(tmp_path / "dense.zarr"), mode="w", zarr_format=3)
    write_elem(dense, "X", X.toarray())
    assert lazy_zarr_csr(zarr.open_group(str(tmp_path / "dense.zarr"), mode="r")["X"], 13) is None
