"""Row chunks of a cells x genes matrix as CSR, whatever holds it.

Supported holders: numpy arrays, scipy sparse matrices/arrays (CSR is sliced directly, other
formats are converted once), anndata backed datasets (``read_h5ad(path, backed="r")``), h5py
datasets and dask arrays. A backed CSR matrix of an ``.h5ad`` file is read as slices of its own
``data``/``indices`` arrays (anndata's on-disk CSR layout: the rows ``start:stop`` are
``data[indptr[start]:indptr[stop]]``), which skips anndata's per-slice index handling; a backed CSR
matrix in a zarr group on a local disk by decoding the chunk files of ``data``/``indices`` with
numcodecs (plain layouts only). The readers are in :mod:`dormsig.io.chunks`; dense or CSC ``X`` and
other zarr layouts are read through anndata (``X[start:stop]``).
For backed matrices a reader thread reads the next chunk while the caller works on this one
(the numba kernels release the GIL), so at most two chunks are in memory.

Dask arrays are not iterated by the scoring methods: they run as a dask graph over the row
blocks (:func:`row_blocks`, :func:`map_row_blocks`), so any scheduler (threads, processes, a
``dask.distributed`` cluster) does the work. :func:`iter_csr_chunks` still accepts them (one
block computed at a time, in the calling process).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from dormsig.errors import InputError
from dormsig.io.chunks import H5CSRReader as _H5CSRReader
from dormsig.io.chunks import ZarrCSRReader as _ZarrCSRReader
from dormsig.io.chunks import h5ad_csr_group as _h5ad_csr_group

#: Default of ``iter_csr_chunks(prefetch=None)`` for disk-backed matrices (benchmarks switch it off to compare)
PREFETCH = True
#: Read backed CSR ``.h5ad`` matrices as raw slices of their h5py arrays (benchmarks switch it off to compare)
RAW_H5AD = True
#: Decode the chunks of backed CSR zarr matrices in a local store directly (benchmarks switch it off to compare)
RAW_ZARR = True
#: Memory-map in-order, uncompressed ``.h5ad`` arrays instead of copying them with h5py (POSIX only; benchmarks
#: switch it off to compare)
MAP_H5AD = hasattr(mmap, "MAP_SHARED")


def shape(X) -> tuple[int, int]:
    """(rows, columns) of any supported holder."""
    return int(X.shape[0]), int(X.shape[1])


def is_dask(X) -> bool:
    """Whether ``X`` is a dask array (checked without importing dask)."""
    return type(X).__module__.startswith("dask.") and hasattr(X, "chunks") and hasattr(X, "map_blocks")


def row_blocks(X):
    """The dask array ``X`` with whole rows in every block (its row chunks kept: they follow the store's)."""
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def map_row_blocks(X, func: Callable, chunk_size: int = 20000) -> list:
    """``[func(start, stop, csr_block), ...]`` over the row chunks of ``X``, in row order.

    For a dask array each block is a task of the active scheduler (``func`` is shipped once, as
    a shared dependency, so it must pickle); otherwise the chunks of :func:`iter_csr_chunks`.
    """
    if not is_dask(X):
        return [func(start, stop, block) for start, stop, block in iter_csr_chunks(X, chunk_size)]
    import dask

    X = row_blocks(X)
    shared = dask.delayed(func, pure=True)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])])
    parts = [dask.delayed(_apply_block, pure=True)(shared, int(starts[i]), int(starts[i + 1]), block)
             for i, block in enumerate(X.to_delayed()[:, 0])]
    return list(dask.compute(*parts))


def sum_row_blocks(X, func: Callable, chunk_size: int = 20000):
    """``sum(func(start, stop, csr_block))`` over the row chunks of ``X``, never holding all the parts.

    For a dask array the parts are tasks summed pairwise in the graph (a tree reduction on the
    active scheduler); otherwise a running sum over :func:`iter_csr_chunks` (disk reads prefetched).
    """
    if not is_dask(X):
        total = None
        for start, stop, block in iter_csr_chunks(X, chunk_size):
            part = func(start, stop, block)
            total = part if total is None else total + part
        return total
    import dask

    X = row_blocks(X)
    shared = dask.delayed(func, pure=True)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])])
    parts = [dask.delayed(_apply_block, pure=True)(shared, int(starts[i]), int(starts[i + 1]), block)
             for i, block in enumerate(X.to_delayed()[:, 0])]
    add = dask.delayed(np.add, pure=True)
    while len(parts) > 1:  # pairwise, in row order
        parts = [add(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0].compute()


def _apply_block(func: Callable, start: int, stop: int, block):
    return func(start, stop, _to_csr(block))


def _to_csr(block) -> sp.csr_matrix:
    if hasattr(block, "compute"):  # dask
        block = block.compute()
    if sp.issparse(block):
        block = sp.csr_matrix(block)
    else:
        block = sp.csr_matrix(np.asarray(block))
    if block.data.dtype not in (np.float32, np.float64):
        block.data = block.data.astype(np.float64)
    return block


def iter_csr_chunks(X, chunk_size: int = 20000, *, prefetch: bool | None = None
                    ) -> Iterator[tuple[int, int, sp.csr_matrix]]:
    """Yield ``(start, stop, csr_block)`` over the rows of ``X``, ``chunk_size`` rows at a time.

    ``prefetch`` (default: on for matrices read from disk) reads the next chunk in a thread
    while the caller works on the current one. Blocks copied or decoded from disk live in memory
    that is reused once the caller has dropped them (``dormsig.io.chunks.BLOCKS``).
    """
    if chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
    n = shape(X)[0]
    if sp.issparse(X) and X.format != "csr":
        X = sp.csr_matrix(X)  # row slicing of CSC/COO is slow: convert once
    if sp.issparse(X) and X.data.dtype in (np.float32, np.float64):
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            yield start, stop, _csr_view(X, start, stop)
        return
    bounds = [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]
    h5 = _h5ad_csr_group(X) if RAW_H5AD else None
    zr = _ZarrCSRReader.of(X) if RAW_ZARR and h5 is None else None
    read = _H5CSRReader(h5, shape(X), map_files=MAP_H5AD) if h5 is not None else zr if zr is not None else partial(_read_csr, X)
    if h5 is not None:
        bounds = read.split(bounds)
    if prefetch is None:
        prefetch = PREFETCH and not isinstance(X, np.ndarray) and not is_dask(X) and len(bounds) > 1
    if not prefetch:
        for start, stop in bounds:
            yield start, stop, read(start, stop)
        return
    # one reader thread, one chunk ahead: reading k+1 overlaps the (GIL-free) kernels on chunk k
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dormsig-read") as pool:
        ahead = pool.submit(read, *bounds[0])
        for k, (start, stop) in enumerate(bounds):
            block = ahead.result()
            if k + 1 < len(bounds):
                ahead = pool.submit(read, *bounds[k + 1])
            yield start, stop, block


def _read_csr(X, start: int, stop: int) -> sp.csr_matrix:
    return _to_csr(X[start:stop])


def _csr_view(X, start: int, stop: int) -> sp.csr_matrix:
    """Rows start:stop of an in-memory CSR matrix without copying data/indices (slicing copies)."""
    a, b = int(X.indptr[start]), int(X.indptr[stop])
    indptr = X.indptr[start:stop + 1] - a
    return sp.csr_matrix((X.data[a:b], X.indices[a:b], indptr), shape=(stop - start, X.shape[1]), copy=False)


def to_memory(X):
    """The whole matrix in memory (numpy or scipy sparse), for the cohort methods."""
    if hasattr(X, "compute"):
        X = X.compute()
    if sp.issparse(X) or isinstance(X, np.ndarray):
        return X
    if hasattr(X, "to_memory"):  # anndata backed sparse dataset
        return X.to_memory()
    return np.asarray(X[()]) if hasattr(X, "dtype") else np.asarray(X)


@contextmanager
def numba_threads(threads: int | None):
    """Run a block with ``threads`` numba threads (all available when None), then restore."""
    import numba

    previous = numba.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be >= 1, got {threads}")
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def counts_source(adata: Any, layer: str | None = None) -> tuple[Any, bool]:
    """(matrix, is_log1p) to take counts per million from: ``layer`` if given, else the counts layer, else
    ``X`` (flagged log1p when dormsig normalised it, so that :func:`linear_chunks` undoes it)."""
    if layer is not None:
        if layer not in adata.layers:
            raise InputError(f"AnnData has no layer {layer!r} (layers: {', '.join(adata.layers.keys()) or 'none'})")
        return adata.layers[layer], False
    if "counts" in adata.layers:
        return adata.layers["counts"], False
    return adata.X, isinstance(adata.uns.get("dormsig", {}).get("normalise"), Mapping)


def linear_chunks(X: Any, is_log: bool, chunk_size: int) -> Iterator[tuple[int, int, sp.csr_matrix, np.ndarray]]:
    """``(start, stop, block, library sizes)`` per row chunk, log1p undone when ``is_log``."""
    for start, stop, block in iter_csr_chunks(X, chunk_size):
        if is_log:
            block = block.copy()
            block.data = np.expm1(block.data)
        yield start, stop, block, np.asarray(block.sum(axis=1)).ravel()
