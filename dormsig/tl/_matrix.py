"""Row chunks of a cells x genes matrix as CSR, whatever holds it.

Supported holders: numpy arrays, scipy sparse matrices/arrays (CSR is sliced directly, other
formats are converted once), anndata backed datasets (``read_h5ad(path, backed="r")``: each
chunk is read from disk with ``X[start:stop]``), h5py datasets and dask arrays (each chunk is
computed on its own). Only one chunk is in memory at a time for backed and dask matrices.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp

from dormsig.errors import InputError


def shape(X) -> tuple[int, int]:
    """(rows, columns) of any supported holder."""
    return int(X.shape[0]), int(X.shape[1])


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


def iter_csr_chunks(X, chunk_size: int = 20000) -> Iterator[tuple[int, int, sp.csr_matrix]]:
    """Yield ``(start, stop, csr_block)`` over the rows of ``X``, ``chunk_size`` rows at a time."""
    if chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
    n = shape(X)[0]
    if sp.issparse(X) and X.format != "csr":
        X = sp.csr_matrix(X)  # row slicing of CSC/COO is slow: convert once
    in_memory_csr = sp.issparse(X) and X.data.dtype in (np.float32, np.float64)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        yield start, stop, (_csr_view(X, start, stop) if in_memory_csr else _to_csr(X[start:stop]))


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
