"""Pseudobulk: sum raw counts of the cells of each sample x group.

Single cells of one sample are not independent replicates; DESeq2 on pseudobulk samples (one
per biological sample and group) keeps the false-positive rate at its nominal level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from dormsig.errors import DesignError, InputError
from dormsig.provenance import attach, record
from dormsig.tl._matrix import sum_row_blocks


def pseudobulk(
    adata: AnnData,
    *,
    sample_key: str,
    group_key: str = "dormsig_group",
    layer: str | None = "counts",
    min_cells: int = 10,
    min_counts: int = 1000,
    chunk_size: int = 20000,
) -> AnnData:
    """Sum the counts of each (sample, group) pair into one pseudo-sample.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``layers[layer]`` (``layer=None``: ``X``); sparse or dense.
    sample_key
        ``obs`` column of biological samples (patients, tumours, mice).
    group_key
        ``obs`` column of groups (e.g. from :func:`dormsig.de.define_groups`).
    min_cells, min_counts
        Pseudo-samples with fewer cells or fewer summed counts are dropped; each dropped one is
        listed with its reason in ``uns["dormsig"]["pseudobulk"]["dropped"]``.
    chunk_size
        Cells read at once from a backed matrix (``read_h5ad(..., backed="r")``); a dask matrix is
        summed per row block as dask tasks on the active scheduler. Neither is loaded whole.

    Returns
    -------
    AnnData
        Pseudo-samples x genes: ``X`` and ``layers["counts"]`` hold the sums (float64, integer
        valued when the input is), ``obs`` has ``sample_key``, ``group_key``, ``n_cells`` and
        ``n_counts`` plus every obs column that is constant within each pseudo-sample.
        Obs names are ``"<sample>|<group>"``.

    Raises
    ------
    InputError
        Missing column or layer, missing values in the keys.
    DesignError
        No pseudo-sample passes the thresholds.
    """
    what = "pseudobulk"
    for key in (sample_key, group_key):
        if key not in adata.obs:
            raise InputError(f"{what}: {key!r} is not an obs column (columns: {list(adata.obs.columns)})")
        if adata.obs[key].isna().any():
            raise InputError(f"{what}: obs[{key!r}] has {int(adata.obs[key].isna().sum())} missing values")
    if layer is not None and layer not in adata.layers:
        raise InputError(f"{what}: layer {layer!r} not found (layers: {sorted(adata.layers)}); raw counts are needed")
    mat = adata.layers[layer] if layer is not None else adata.X

    samples = adata.obs[sample_key].astype(str).to_numpy()
    groups = adata.obs[group_key].astype(str).to_numpy()
    keys = pd.MultiIndex.from_arrays([samples, groups])
    codes, uniques = pd.factorize(keys, sort=True)
    n_ps = len(uniques)
    if sp.issparse(mat) or isinstance(mat, np.ndarray):
        # Indicator matrix (pseudo-samples x cells) @ counts: one sparse product, no Python loop.
        ind = sp.csr_matrix((np.ones(adata.n_obs), (codes, np.arange(adata.n_obs))), shape=(n_ps, adata.n_obs))
        summed = ind @ (mat if sp.issparse(mat) else np.asarray(mat, dtype=np.float64))
        summed = summed.toarray() if sp.issparse(summed) else np.asarray(summed)
        summed = summed.astype(np.float64)
    else:  # backed or dask: summed chunk by chunk (dask: one task per row block), never loaded whole
        summed = sum_row_blocks(mat, _GroupSums(codes, n_ps, adata.n_vars), chunk_size)
    n_cells = np.bincount(codes, minlength=n_ps)
    n_counts = summed.sum(axis=1)

    names = np.array([f"{s}|{g}" for s, g in uniques])
    ok = (n_cells >= min_cells) & (n_counts >= min_counts)
    dropped = [
        {
            "pseudo_sample": str(names[i]), "sample": str(uniques[i][0]), "group": str(uniques[i][1]),
            "n_cells": int(n_cells[i]), "n_counts": float(n_counts[i]),
            "reason": "; ".join(
                r for r, bad in (
                    (f"n_cells < {min_cells}", n_cells[i] < min_cells),
                    (f"n_counts < {min_counts}", n_counts[i] < min_counts),
                ) if bad
            ),
        }
        for i in np.nonzero(~ok)[0]
    ]
    if not ok.any():
        raise DesignError(
            f"{what}: no (sample, group) pair has >= {min_cells} cells and >= {min_counts} counts "
            f"({n_ps} pairs); lower min_cells/min_counts"
        )

    obs = pd.DataFrame(
        {sample_key: [u[0] for u in uniques], group_key: [u[1] for u in uniques], "n_cells": n_cells,
         "n_counts": n_counts},
        index=names,
    )
    # Carry over obs columns that are constant within each pseudo-sample (patient, batch, ...).
    frame = adata.obs.drop(columns=[c for c in (sample_key, group_key) if c in adata.obs]).copy()
    frame["_code"] = codes
    for col in frame.columns.drop("_code"):
        if col in obs:
            continue
        nun = frame.groupby("_code", observed=True)[col].nunique(dropna=False)
        if (nun <= 1).all():
            first = frame.groupby("_code", observed=True)[col].first()
            obs[col] = first.reindex(range(n_ps)).to_numpy()
    if isinstance(adata.obs[group_key].dtype, pd.CategoricalDtype):
        cats = [str(c) for c in adata.obs[group_key].cat.categories]
        obs[group_key] = pd.Categorical(obs[group_key], categories=cats)

    out = AnnData(X=summed[ok], obs=obs.loc[ok].copy(), var=pd.DataFrame(index=adata.var_names.copy()))
    out.var = adata.var.copy()
    out.layers["counts"] = out.X.copy()
    out.uns["dormsig"] = {}
    rec = record(
        "pseudobulk",
        method="sum of raw counts per sample x group",
        params={"sample_key": sample_key, "group_key": group_key, "layer": layer, "min_cells": min_cells,
                "min_counts": min_counts},
        n_cells_in=int(adata.n_obs),
        n_pseudo_samples=int(ok.sum()),
        n_dropped=len(dropped),
        dropped=dropped,
        n_cells_used=int(n_cells[ok].sum()),
    )
    attach(out, "pseudobulk", rec)
    for step in ("groups", "input", "normalise"):
        if step in adata.uns.get("dormsig", {}):
            out.uns["dormsig"][f"source_{step}"] = adata.uns["dormsig"][step]
    return out


class _GroupSums:
    """Per row block: the sums of its cells per pseudo-sample, dense (n_pseudo x genes) float64 (picklable)."""

    def __init__(self, codes: np.ndarray, n_groups: int, n_vars: int) -> None:
        self.codes, self.n_groups, self.n_vars = codes, n_groups, n_vars

    def __call__(self, start: int, stop: int, block: sp.csr_matrix) -> np.ndarray:
        ind = sp.csr_matrix((np.ones(stop - start), (self.codes[start:stop], np.arange(stop - start))),
                            shape=(self.n_groups, stop - start))
        return np.asarray((ind @ block.astype(np.float64)).toarray())
