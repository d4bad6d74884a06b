"""Shared AnnData construction for every reader: validation, dtype/sparsity choice, normalisation.

Each format reader produces a :class:`Parsed` (samples x genes counts plus annotations); this
module turns it into the AnnData that :func:`dormsig.io.read` returns, so that every format
obeys the same conventions (``layers["counts"]``, ``X`` = normalised, unique names).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from dormsig.errors import InputError

#: Sparse storage pays off only when most values are zero and the matrix has many observations.
SPARSE_ZERO_FRACTION = 0.5
SPARSE_MIN_OBS = 100

#: Separator used to make duplicated gene identifiers unique (``TP53``, ``TP53__1``); the
#: identifier as written in the file stays in ``var["id_in_file"]``.
DUP_SEP = "__"


@dataclass
class Parsed:
    """What a format reader returns: counts with obs = samples/cells and var = genes.

    Attributes
    ----------
    counts
        ``n_obs x n_var`` numeric matrix (numpy array or scipy sparse).
    obs_names, var_names
        Sample/cell and gene identifiers as written in the input.
    obs, var
        Extra annotation columns (index ignored; row order as ``counts``).
    layers
        Further layers (e.g. ``tpm``), same shape as ``counts``.
    integer
        ``"auto"``: store as an integer dtype when every value is integral; ``False``: keep floats
        (estimated counts of Salmon/kallisto/RSEM stay floats by design).
    sparse
        ``"auto"`` (decide from the zero fraction and size), ``True`` or ``False``.
    info
        Extra provenance for ``uns["dormsig"]["input"]`` (dropped rows, inferred strand ...).
    """

    counts: Any
    obs_names: list[str]
    var_names: list[str]
    obs: pd.DataFrame | None = None
    var: pd.DataFrame | None = None
    layers: dict[str, Any] = field(default_factory=dict)
    integer: str | bool = "auto"
    sparse: str | bool = "auto"
    info: dict[str, Any] = field(default_factory=dict)
    counts_present: bool = True
    uns: dict[str, Any] = field(default_factory=dict)


def check_counts(counts: Any, obs_names: list[str], var_names: list[str], path: str | os.PathLike) -> None:
    """Raise :class:`InputError` naming the first negative or non-finite count (sample and gene)."""
    data = counts.data if sp.issparse(counts) else np.asarray(counts)
    if not np.issubdtype(data.dtype, np.number):
        raise InputError(f"counts are not numeric (dtype {data.dtype})", path=path)
    if np.issubdtype(data.dtype, np.integer):
        bad_nonfinite = np.zeros(data.shape, dtype=bool)
    else:
        bad_nonfinite = ~np.isfinite(data)
    bad_negative = data < 0
    for bad, what in ((bad_nonfinite, "non-finite (NaN/inf/missing)"), (bad_negative, "negative")):
        if not bad.any():
            continue
        n_bad = int(bad.sum())
        if sp.issparse(counts):
            coo = counts.tocoo()
            k = int(np.flatnonzero(bad)[0])
            i, j = int(coo.row[k]), int(coo.col[k])
        else:
            i, j = (int(v) for v in np.argwhere(bad)[0])
        value = np.asarray(counts[i, j]).item()
        raise InputError(
            f"{n_bad} {what} count(s), first: {value!r} for sample {obs_names[i]!r}, gene {var_names[j]!r};"
            " counts must be finite and non-negative",
            path=path,
        )


#: Values this close to an integer count as integral: tables written by R after summing
#: per gene carry artefacts such as ``0.999999999999999`` (5 cells of the CTC table).
INTEGER_TOLERANCE = 1e-6


def is_integral(counts: Any) -> bool:
    """True when every value is within :data:`INTEGER_TOLERANCE` of an integer."""
    data = counts.data if sp.issparse(counts) else np.asarray(counts)
    if np.issubdtype(data.dtype, np.integer):
        return True
    if data.size == 0:
        return True
    return bool(np.all(np.isfinite(data)) and np.all(np.abs(data - np.rint(data)) <= INTEGER_TOLERANCE))


def n_inexact(counts: Any) -> int:
    """How many values are integral only within the tolerance (reported in provenance)."""
    data = counts.data if sp.issparse(counts) else np.asarray(counts)
    if np.issubdtype(data.dtype, np.integer):
        return 0
    return int(np.count_nonzero(data != np.rint(data)))


def to_integer(counts: Any) -> Any:
    """Cast integral counts to int32 when they fit, else int64."""
    data = counts.data if sp.issparse(counts) else np.asarray(counts)
    top = data.max() if data.size else 0
    dtype = np.int32 if top < np.iinfo(np.int32).max else np.int64
    if sp.issparse(counts):
        out = counts.copy()
        out.data = np.rint(out.data)
        return out.astype(dtype)
    return np.asarray(np.rint(counts) if not np.issubdtype(data.dtype, np.integer) else counts).astype(dtype)


def make_unique(names: list[str]) -> tuple[list[str], int]:
    """Suffix the 2nd, 3rd ... occurrence of a name with ``__1``, ``__2``; return names and #renamed."""
    seen: dict[str, int] = {}
    taken = set(names)
    out: list[str] = []
    renamed = 0
    for name in names:
        if name not in seen:
            seen[name] = 0
            out.append(name)
            continue
        k = seen[name]
        while True:
            k += 1
            candidate = f"{name}{DUP_SEP}{k}"
            if candidate not in taken:
                break
        seen[name] = k
        taken.add(candidate)
        out.append(candidate)
        renamed += 1
    return out, renamed


def check_unique_samples(names: list[str], path: str | os.PathLike) -> None:
    dup = pd.Index(names)[pd.Index(names).duplicated()].unique().tolist()
    if dup:
        shown = ", ".join(repr(d) for d in dup[:5])
        raise InputError(f"duplicated sample names: {shown}; sample names must be unique", path=path)


def choose_sparse(counts: Any, sparse: str | bool) -> bool:
    """CSR when forced, or (``"auto"``) when > 50% zeros and at least :data:`SPARSE_MIN_OBS` observations."""
    if sparse != "auto":
        return bool(sparse)
    n_obs, n_var = counts.shape
    if n_obs < SPARSE_MIN_OBS or n_obs * n_var == 0:
        return False
    nonzero = counts.count_nonzero() if sp.issparse(counts) else np.count_nonzero(counts)
    return bool(nonzero / (n_obs * n_var) < 1 - SPARSE_ZERO_FRACTION)


def build(parsed: Parsed, path: str | os.PathLike) -> AnnData:
    """Validate counts and build the AnnData (counts layer, dtype, sparsity, unique names, X)."""
    from dormsig._normalise import normalise

    obs_names = [str(n) for n in parsed.obs_names]
    var_names = [str(n) for n in parsed.var_names]
    counts = parsed.counts
    if counts.shape != (len(obs_names), len(var_names)):  # pragma: no cover - reader bug
        raise AssertionError(f"counts shape {counts.shape} != ({len(obs_names)}, {len(var_names)})")
    if counts.shape[0] == 0 or counts.shape[1] == 0:
        raise InputError(f"no data: {counts.shape[0]} samples x {counts.shape[1]} genes", path=path)
    check_unique_samples(obs_names, path)

    obs = pd.DataFrame(index=pd.Index(obs_names, dtype=object))
    if parsed.obs is not None:
        for col in parsed.obs.columns:
            obs[str(col)] = parsed.obs[col].values
    unique_vars, n_renamed = make_unique(var_names)
    var = pd.DataFrame(index=pd.Index(unique_vars, dtype=object))
    if n_renamed:
        var["id_in_file"] = var_names
    if parsed.var is not None:
        for col in parsed.var.columns:
            var[str(col)] = parsed.var[col].values

    info = dict(parsed.info)
    if n_renamed:
        info["n_duplicated_gene_ids"] = n_renamed

    if not parsed.counts_present:
        # Already-normalised input (e.g. log values in an h5ad): keep X, invent no counts.
        adata = AnnData(X=counts, obs=obs, var=var)
        for key, value in parsed.layers.items():
            adata.layers[key] = value
        adata.uns.update(parsed.uns)
        info["counts"] = "absent"
        return _with_info(adata, info)

    check_counts(counts, obs_names, var_names, path)
    if parsed.integer == "auto" and is_integral(counts):
        rounded = n_inexact(counts)
        if rounded:
            info["n_values_rounded_to_integer"] = rounded
        counts = to_integer(counts)
        info["counts_dtype"] = "integer"
    else:
        counts = counts.astype(np.float64) if sp.issparse(counts) else np.asarray(counts, dtype=np.float64)
        info["counts_dtype"] = "float"
    if choose_sparse(counts, parsed.sparse):
        counts = sp.csr_matrix(counts)
        counts.eliminate_zeros()
        counts.sort_indices()
    elif sp.issparse(counts):
        counts = counts.toarray()
    adata = AnnData(obs=obs, var=var)
    adata.layers["counts"] = counts
    for key, value in parsed.layers.items():
        adata.layers[key] = sp.csr_matrix(value) if sp.issparse(counts) else np.asarray(value)
    adata.uns.update(parsed.uns)
    normalise(adata, layer="counts")
    info["counts"] = "present"
    return _with_info(adata, info)


def _with_info(adata: AnnData, info: dict[str, Any]) -> AnnData:
    adata.uns["_dormsig_read_info"] = info  # moved into uns["dormsig"]["input"] by io.read
    return adata


def coerce_numeric_frame(df: pd.DataFrame, path: str | os.PathLike, *, first_line: int, what: str = "count") -> np.ndarray:
    """Numeric matrix from a frame of count columns; name the column and line of a non-numeric cell.

    ``first_line`` is the 1-based file line of the frame's first row.
    """
    for j, col in enumerate(df.columns):
        series = df.iloc[:, j]
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            continue
        parsed = pd.to_numeric(series, errors="coerce")
        bad = parsed.isna() & series.notna()
        if bad.any():
            k = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"non-numeric value {series.iloc[k]!r} in {what} column {col!r} at line {first_line + k}",
                path=path,
            )
    try:
        return df.apply(pd.to_numeric).to_numpy()
    except (TypeError, ValueError) as exc:  # pragma: no cover - caught above
        raise InputError(f"non-numeric {what} values ({exc})", path=path) from None
