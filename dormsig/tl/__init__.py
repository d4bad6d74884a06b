"""Scoring gene sets and ranking cells by the dormancy index.

- :func:`score` scores signatures in an AnnData (single-sample rank methods by default, numba
  kernels working on sparse rows in chunks: in-memory, backed or dask matrices).
- :func:`rank` turns the dormancy index into ranks, percentiles and dormant/not-dormant calls.
- :func:`score_matrix` scores gene-index sets on a bare matrix.
- :func:`methods` lists the methods and their metadata records.
- :func:`check_compartments` says which observations (and dormant calls) express non-tumour markers;
  ``score(..., cells=...)`` and ``rank(..., cells=...)`` keep to the tumour cells.
"""

from __future__ import annotations

from dormsig.tl._registry import MethodInfo, available, info
from dormsig.tl.compartment import check_compartments
from dormsig.tl.rank import rank
from dormsig.tl.score import combine_index, score, score_matrix


def methods() -> dict[str, MethodInfo]:
    """Every registered scoring method and its metadata record."""
    return {name: info(name) for name in available()}


__all__ = ["MethodInfo", "check_compartments", "combine_index", "info", "methods", "rank", "score", "score_matrix"]
