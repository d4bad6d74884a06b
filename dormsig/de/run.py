"""One call for the CLI and the pipeline: pseudobulk when a sample key is given, then DESeq2."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import pandas as pd
from anndata import AnnData

from dormsig import _interrupt
from dormsig.de.deseq import deseq
from dormsig.de.pseudobulk import pseudobulk

log = logging.getLogger("dormsig")


#: Share of a whole fit (with apeglm shrinkage) done when each stage starts, measured on the demo's
#: CTC fit (16,008 genes x 29 samples, 13 coefficients, ~6,000 optim refits: 52 s, load 4-6); used
#: only to say roughly how long is left. "refit" before the MAP dispersions is the intermediate one.
STAGE_SHARE = {"gene-wise dispersions": 0.23, "refit (intermediate)": 0.21, "MAP dispersions": 0.29,
               "refit (final)": 0.67, "Wald test": 0.88, "likelihood-ratio test": 0.88, "apeglm shrinkage": 0.90}
SHRINK_SHARE = 0.10


def _stage_logger(label: str, shrink: bool = True):
    """Progress for the long DESeq2 fit: one log line per stage, the elapsed time and a rough time left."""
    t0 = time.perf_counter()
    seen: set[str] = set()

    def tell(stage: str) -> None:
        _interrupt.checkpoint()  # between DE stages: a Ctrl-C dropped inside numba's compiler callback stops here
        elapsed = time.perf_counter() - t0
        key = stage
        if stage.startswith("optim refit"):
            key = "refit (final)" if "MAP dispersions" in seen else "refit (intermediate)"
        seen.add(key)
        share = STAGE_SHARE.get(key)
        if share is not None and not shrink:
            share = share / (1.0 - SHRINK_SHARE)
        left = ""
        if share and elapsed >= 2 and share < 1:
            left = f", about {max(1, round(elapsed / share - elapsed))} s left"
        log.info("DE %s: %s (%.0f s%s)", label, stage, elapsed, left)

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
    test_type: str = "wald",
    reduced: str | None = None,
    threads: int | None = None,
    force: bool = False,
) -> tuple[pd.DataFrame, AnnData]:
    """DESeq2 of ``test`` vs ``reference``: on the samples themselves (bulk) or on pseudobulk.

    With ``sample_key`` the cells are summed per (sample, group) first (:func:`dormsig.de.pseudobulk`),
    and the sample becomes a covariate of the design. Returns the results table and the AnnData
    the model was fitted on (with ``normalised`` and ``vst`` layers and the provenance in ``uns``).
    ``design``, ``size_factors``, ``alpha`` (independent filtering), ``shrink``, ``inference``,
    ``test_type`` and ``reduced`` (R's likelihood-ratio test) are :func:`dormsig.de.deseq`'s; with pseudobulk and a ``design`` the design must name the sample key.
    """
    if sample_key is not None:
        bulk = pseudobulk(adata, sample_key=sample_key, group_key=group_key, min_cells=min_cells)
        covariates = tuple(dict.fromkeys([*covariates, sample_key]))
    else:
        bulk = adata
    table = deseq(bulk, group_key=group_key, test=test, reference=reference, covariates=tuple(covariates),
                  design=design, size_factors=size_factors, alpha=alpha, inference=inference,
                  test_type=test_type, reduced=reduced,
                  shrink=shrink, threads=threads, force=force, progress=_stage_logger(f"{test} vs {reference}", shrink))
    return table, bulk
