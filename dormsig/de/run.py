"""One call for the CLI and the pipeline: pseudobulk when a sample key is given, then DESeq2."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import pandas as pd
from anndata import AnnData

from dormsig.de.deseq import deseq
from dormsig.de.pseudobulk import pseudobulk

log = logging.getLogger("dormsig")


def _stage_logger(label: str):
    """Progress for the long DESeq2 fit: one log line per stage with the elapsed time."""
    t0 = time.perf_counter()

    def tell(stage: str) -> None:
        log.info("DE %s: %s (%.0f s)", label, stage, time.perf_counter() - t0)

    return tell


def run_de(
    adata: AnnData,
    *,
    group_key: str,
    test: str,
    reference: str,
    covariates: Sequence[str] = (),
    sample_key: str | None = None,
    min_cells: int = 10,
    shrink: bool = False,
    design: str | None = None,
    size_factors: str = "ratio",
    alpha: float = 0.05,
    inference: str = "r",
    threads: int | None = None,
    force: bool = False,
) -> tuple[pd.DataFrame, AnnData]:
    """DESeq2 of ``test`` vs ``reference``: on the samples themselves (bulk) or on pseudobulk.

    With ``sample_key`` the cells are summed per (sample, group) first (:func:`dormsig.de.pseudobulk`),
    and the sample becomes a covariate of the design. Returns the results table and the AnnData
    the model was fitted on (with ``normalised`` and ``vst`` layers and the provenance in ``uns``).
    ``design``, ``size_factors``, ``alpha`` (independent filtering), ``shrink`` and ``inference`` are
    :func:`dormsig.de.deseq`'s; with pseudobulk and a ``design`` the design must name the sample key.
    """
    if sample_key is not None:
        bulk = pseudobulk(adata, sample_key=sample_key, group_key=group_key, min_cells=min_cells)
        covariates = tuple(dict.fromkeys([*covariates, sample_key]))
    else:
        bulk = adata
    table = deseq(bulk, group_key=group_key, test=test, reference=reference, covariates=tuple(covariates),
                  design=design, size_factors=size_factors, alpha=alpha, inference=inference,
                  shrink=shrink, threads=threads, force=force, progress=_stage_logger(f"{test} vs {reference}"))
    return table, bulk
