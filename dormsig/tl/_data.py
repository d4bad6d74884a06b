"""What kind of data is scored: bulk samples or single cells, and how often each gene is detected.

One chunked pass over the raw counts (``layers["counts"]`` when present, else the scored matrix)
gives the library sizes, the fraction of zeros and, per gene, the fraction of observations in
which it is non-zero. The bulk / single-cell rule is the one DESeq2's guard uses
(:func:`dormsig.de.deseq.looks_single_cell`): pseudobulk data are bulk; more than 200
observations are cells; above 50 observations, a median library below 100,000 counts with more
than half of the entries zero means cells; anything else is bulk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig.errors import InputError
from dormsig.tl._matrix import is_dask, iter_csr_chunks, map_row_blocks, shape

#: Same constants as dormsig.de.deseq.looks_single_cell (a test checks that both rules agree).
MAX_BULK_OBS = 200
MIN_CELLS_OBS = 50
CELL_MAX_MEDIAN_LIBRARY = 1e5
CELL_MIN_ZERO_FRACTION = 0.5

KINDS = ("bulk", "single_cell")


@dataclass(frozen=True)
class DataProfile:
    """Library sizes, sparsity and per-gene detection of a matrix, and the kind of data it holds."""

    kind: str
    reason: str
    source: str
    n_obs: int
    median_library: float
    zero_fraction: float
    detection: pd.Series  # fraction of observations with a non-zero value, indexed by var_names

    def to_dict(self) -> dict:
        return {"kind": self.kind, "reason": self.reason, "source": self.source, "n_obs": self.n_obs,
                "median_library": round(self.median_library, 3), "zero_fraction": round(self.zero_fraction, 6)}


def _counts_source(adata: AnnData, layer: str | None) -> tuple[object, str]:
    """The matrix whose zeros and sums are counted: raw counts when dormsig kept them."""
    counts = adata.layers["counts"] if "counts" in adata.layers else None
    if counts is not None and tuple(counts.shape) == tuple(adata.shape):
        return counts, 'layers["counts"]'
    X = adata.layers[layer] if layer is not None else adata.X
    return X, (f"layers[{layer!r}]" if layer is not None else "X")


def profile(adata: AnnData, *, layer: str | None = None, kind: str = "auto", chunk_size: int = 20000,
            rows: np.ndarray | None = None) -> DataProfile:
    """Profile ``adata`` (see the module docstring); ``kind`` forces ``"bulk"`` or ``"single_cell"``.

    ``rows`` (a boolean mask over ``obs``) restricts the profile to the observations scored.
    """
    if kind not in ("auto", *KINDS):
        raise InputError(f"data_kind must be 'auto', 'bulk' or 'single_cell', got {kind!r}")
    X, source = _counts_source(adata, layer)
    if X is None:
        raise InputError("AnnData has no X to score")
    n_all, n_vars = shape(X)
    keep = np.ones(n_all, dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    n_obs = int(keep.sum())
    nnz_gene = np.zeros(n_vars, dtype=np.int64)
    lib = np.zeros(n_obs, dtype=np.float64)
    nnz = 0
    done = 0
    if is_dask(X):  # one task per row block on the active scheduler, partial counts summed here
        parts = map_row_blocks(X, _BlockCounts(keep, n_vars), chunk_size)
        for part_genes, part_lib, part_nnz in parts:
            nnz_gene += part_genes
            lib[done:done + part_lib.size] = part_lib
            done += part_lib.size
            nnz += part_nnz
    for start, stop, block in ([] if is_dask(X) else iter_csr_chunks(X, chunk_size)):
        sel = keep[start:stop]
        if not sel.all():
            block = block[sel]
        start, stop = done, done + block.shape[0]
        done = stop
        nonzero = block.data != 0
        nnz_gene += np.bincount(block.indices[nonzero], minlength=n_vars)
        nnz += int(nonzero.sum())
        lib[start:stop] = np.asarray(block.sum(axis=1)).ravel()
    median_lib = float(np.median(lib)) if n_obs else 0.0
    zero_frac = 1.0 - nnz / (n_obs * n_vars) if n_obs * n_vars else 1.0
    detection = pd.Series(nnz_gene / max(n_obs, 1), index=pd.Index(adata.var_names.astype(str)), name="detection")
    detection.attrs["n_obs"] = n_obs
    if kind != "auto":
        found, reason = kind, "given (data_kind)"
    elif "pseudobulk" in adata.uns.get("dormsig", {}):
        found, reason = "bulk", "pseudobulk samples"
    elif n_obs > MAX_BULK_OBS:
        found, reason = "single_cell", f"{n_obs} observations (> {MAX_BULK_OBS})"
    elif n_obs > MIN_CELLS_OBS and median_lib < CELL_MAX_MEDIAN_LIBRARY and zero_frac > CELL_MIN_ZERO_FRACTION:
        found, reason = "single_cell", (f"{n_obs} observations, median library {median_lib:.4g} (< 1e5), "
                                        f"{zero_frac:.0%} zeros (> 50%)")
    else:
        found, reason = "bulk", (f"{n_obs} observations, median library {median_lib:.4g}, {zero_frac:.0%} zeros "
                                 "(cells need > 200 observations, or > 50 with a median library < 1e5 and > 50% zeros)")
    return DataProfile(found, reason, source, n_obs, median_lib, zero_frac, detection)


class _BlockCounts:
    """Per row block of a dask matrix: non-zeros per gene, library sizes, non-zeros (picklable)."""

    def __init__(self, keep: np.ndarray, n_vars: int) -> None:
        self.keep, self.n_vars = keep, n_vars

    def __call__(self, start: int, stop: int, block):
        sel = self.keep[start:stop]
        if not sel.all():
            block = block[sel]
        nonzero = block.data != 0
        return (np.bincount(block.indices[nonzero], minlength=self.n_vars), np.asarray(block.sum(axis=1)).ravel(),
                int(nonzero.sum()))
