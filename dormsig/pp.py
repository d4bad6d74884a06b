"""Preprocessing verbs: library-size normalisation and identifier harmonisation."""

from __future__ import annotations

from anndata import AnnData

from dormsig._normalise import TARGET_SUM_BULK, TARGET_SUM_SINGLE_CELL, normalise
from dormsig.genes.harmonise import harmonise

__all__ = ["TARGET_SUM_BULK", "TARGET_SUM_SINGLE_CELL", "harmonise_genes", "normalise"]


def harmonise_genes(adata: AnnData, **kwargs) -> AnnData | None:
    """Map ``var_names`` to current official symbols; see :func:`dormsig.genes.harmonise`."""
    return harmonise(adata, **kwargs)
