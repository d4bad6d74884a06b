"""Scoring methods, one module each; see :mod:`dormsig.tl._registry` for their records.

This package also holds what the methods share: the flat gene-set layout the kernels read,
the chunk loop of the single-sample methods, and the result container.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from dormsig.errors import InputError
from dormsig.tl._kernels import nan_row
from dormsig.tl._matrix import _to_csr, is_dask, iter_csr_chunks, numba_threads, row_blocks, shape

#: gene sets as integer column indices: name -> (up indices, down indices)
IndexSets = Mapping[str, tuple[np.ndarray, np.ndarray]]


@dataclass
class MethodResult:
    """Scores (cells x sets) plus optional per-set extras (e.g. singscore dispersion).

    For a dask matrix ``scores`` and ``extra`` are lazy dask arrays; :meth:`compute` computes
    them together (the matrix is read once) with the active dask scheduler.
    """

    scores: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def lazy(self) -> bool:
        return is_dask(self.scores)

    def compute(self) -> MethodResult:
        """This result with numpy arrays (computed with the active dask scheduler when lazy)."""
        if not self.lazy:
            return self
        import dask

        keys = list(self.extra)
        done = dask.compute(self.scores, *(self.extra[k] for k in keys))
        return MethodResult(done[0], dict(zip(keys, done[1:], strict=True)), self.params)


@dataclass
class SetLayout:
    """The flat layout of gene sets described in :mod:`dormsig.tl._kernels`."""

    slot: np.ndarray
    slot_gene: np.ndarray
    set_slots: np.ndarray
    set_ptr: np.ndarray

    @classmethod
    def build(cls, sets: IndexSets, n_genes: int) -> SetLayout:
        halves = []
        for up, down in sets.values():
            halves.append(np.asarray(up, dtype=np.int64))
            halves.append(np.asarray(down, dtype=np.int64))
        allg = np.concatenate(halves) if halves else np.zeros(0, np.int64)
        if allg.size and (allg.min() < 0 or allg.max() >= n_genes):
            raise InputError(f"gene index out of range for a matrix with {n_genes} genes")
        slot_gene = np.unique(allg)
        slot = np.full(n_genes, -1, dtype=np.int64)
        slot[slot_gene] = np.arange(slot_gene.size)
        set_ptr = np.zeros(len(halves) + 1, dtype=np.int64)
        set_ptr[1:] = np.cumsum([h.size for h in halves])
        set_slots = slot[allg] if allg.size else np.zeros(0, np.int64)
        return cls(slot, slot_gene, set_slots.astype(np.int64), set_ptr)


def check_finite(block, start: int, obs_names) -> None:
    """Raise InputError naming the first cell with a NaN/infinite value."""
    if np.isfinite(block.data).all():  # vectorised fast path; the row is located only on failure
        return
    bad = nan_row(block.data, block.indptr)
    if bad >= 0:
        _raise_bad_row(start + bad, obs_names)


def _raise_bad_row(row: int, obs_names) -> None:
    name = obs_names[row] if obs_names is not None else f"row {row}"
    raise InputError(f"cell {name!s} has NaN or infinite values; rank methods need finite expression")


def _checks_finite(kernel_call: Callable) -> bool:
    """Whether the kernel behind ``kernel_call`` (a ``functools.partial``) flags non-finite rows itself."""
    return getattr(getattr(kernel_call, "func", kernel_call), "checks_finite", False)


def run_chunks(
    X,
    n_sets: int,
    kernel_call: Callable,
    *,
    chunk_size: int,
    threads: int | None,
    obs_names=None,
    n_extra: int = 0,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run ``kernel_call(block, out, *extra_outs)`` over row chunks of ``X``.

    A kernel that checks for non-finite values in its own pass returns its per-row flags (non-zero:
    a NaN or infinite value); for one that returns None the block is checked here first.
    A dask ``X`` gives lazy dask arrays instead (see :func:`run_blocks`).
    """
    if is_dask(X):
        return run_blocks(X, n_sets, kernel_call, threads=threads, n_extra=n_extra)
    n_cells, _ = shape(X)
    out = np.zeros((n_cells, n_sets), dtype=np.float64)
    extras = [np.zeros((n_cells, n_sets), dtype=np.float64) for _ in range(n_extra)]
    with numba_threads(threads):
        for start, stop, block in iter_csr_chunks(X, chunk_size):
            if not _checks_finite(kernel_call):
                check_finite(block, start, obs_names)
            sub = np.zeros((stop - start, n_sets), dtype=np.float64)
            sub_extra = [np.zeros_like(sub) for _ in range(n_extra)]
            flags = kernel_call(block, sub, *sub_extra)
            if flags is not None and flags.any():
                _raise_bad_row(start + int(np.argmax(flags)), obs_names)
            out[start:stop] = sub
            for e, s in zip(extras, sub_extra, strict=True):
                e[start:stop] = s
    return out, extras


_WORKQUEUE = threading.Lock()


def _launch_guard():
    """A lock when numba's threading layer is ``workqueue`` (or not chosen yet): that layer aborts the process on
    concurrent parallel launches, which the dask threads scheduler would make; omp and tbb need none."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet in this process
        layer = None
    return _WORKQUEUE if layer in (None, "workqueue") else nullcontext()


class NonFiniteRow(InputError):
    """A NaN/infinite value in a dask block; the message names the row (the block has no obs_names)."""


def run_blocks(X, n_sets: int, kernel_call: Callable, *, threads: int | None, n_extra: int = 0):
    """The dask version of :func:`run_chunks`: one ``map_blocks`` task per row block of ``X``.

    ``kernel_call`` (with the gene-set layout it holds) is one shared dependency of the graph, sent
    once to each worker rather than embedded in every task. Each task runs the kernel with
    ``threads`` numba threads (1 when None: the scheduler runs the blocks in parallel). Returns
    lazy (scores, [extras]) with the row chunks of ``X``.
    """
    import dask

    X = row_blocks(X)
    width = n_sets * (1 + n_extra)
    out = X.map_blocks(_score_block, dask.delayed(kernel_call, pure=True), n_sets, n_extra, threads,
                       chunks=(X.chunks[0], (width,)), dtype=np.float64, meta=np.empty((0, 0), np.float64))
    return out[:, :n_sets], [out[:, n_sets * (k + 1):n_sets * (k + 2)] for k in range(n_extra)]


def _score_block(block, kernel_call: Callable, n_sets: int, n_extra: int, threads: int | None,
                 block_info=None) -> np.ndarray:
    csr = _to_csr(block)
    start = int(block_info[0]["array-location"][0][0]) if block_info else 0
    bad = -1
    if not _checks_finite(kernel_call) and not np.isfinite(csr.data).all():
        bad = nan_row(csr.data, csr.indptr)
    out = np.zeros((csr.shape[0], n_sets * (1 + n_extra)), dtype=np.float64)
    parts = [np.zeros((csr.shape[0], n_sets), dtype=np.float64) for _ in range(1 + n_extra)]
    if bad < 0:
        with _launch_guard(), numba_threads(1 if threads is None else threads):
            flags = kernel_call(csr, *parts)
        if flags is not None and flags.any():
            bad = int(np.argmax(flags))
    if bad >= 0:
        raise NonFiniteRow(f"cell at row {start + bad} has NaN or infinite values; rank methods need finite "
                           "expression")
    for k, part in enumerate(parts):
        out[:, k * n_sets:(k + 1) * n_sets] = part
    return out
