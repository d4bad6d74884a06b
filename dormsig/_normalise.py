"""Library-size normalisation (``log1p(count / library * target_sum)``), re-exported as :func:`dormsig.pp.normalise`.

Low in the package so that the readers (``io``) and ``genes.harmonise`` can normalise without
importing the ``pp`` namespace, which itself imports ``genes``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from dormsig.errors import InputError
from dormsig.provenance import attach, record

#: Default scale for bulk-like data (counts per million) and for single-cell data (per 10,000).
TARGET_SUM_BULK = 1e6
TARGET_SUM_SINGLE_CELL = 1e4


def normalise(
    adata: AnnData,
    *,
    layer: str = "counts",
    target_sum: float | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Set ``X`` to ``log1p(counts / library_size * target_sum)``.

    The scale is a fixed constant (not the cohort median, as in ``scanpy.pp.normalize_total``)
    so that a sample's normalised values never depend on the other samples.

    Parameters
    ----------
    adata
        AnnData with raw counts in ``layers[layer]`` (or in ``X`` when the layer is absent).
    layer
        Layer holding raw counts.
    target_sum
        Scale after library-size division. ``None`` picks 1e6 (CPM) when the median library
        exceeds 100,000 reads (bulk-like) and 1e4 otherwise; the choice is recorded.
    copy
        Return a modified copy instead of changing ``adata``.
    """
    adata = adata.copy() if copy else adata
    counts = adata.layers[layer] if layer in adata.layers else adata.X
    lib = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
    if np.any(lib < 0):
        raise InputError("negative library size: counts must be non-negative")
    if target_sum is None:
        target_sum = TARGET_SUM_BULK if lib.size and np.median(lib) > 1e5 else TARGET_SUM_SINGLE_CELL
    # All-zero samples keep all-zero values instead of NaN (0/0); they are reported.
    scale = np.divide(target_sum, lib, out=np.zeros_like(lib), where=lib > 0)
    if sp.issparse(counts):
        x = sp.csr_matrix(sp.diags(scale) @ counts, dtype=np.float32)
        x.data = np.log1p(x.data)
    else:
        x = np.log1p(np.asarray(counts, dtype=np.float64) * scale[:, None]).astype(np.float32)
    adata.X = x
    attach(
        adata,
        "normalise",
        record("normalise", method="log1p_library_size", params={"layer": layer, "target_sum": float(target_sum)},
               n_zero_library=int((lib == 0).sum())),
    )
    return adata if copy else None
