"""What the gseapy-based methods (ssgsea, gsva) share."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dormsig.errors import InputError
from dormsig.tl._matrix import to_memory
from dormsig.tl.methods import IndexSets


def run_gseapy(X, sets: IndexSets, var_names, call: Callable, column: str) -> np.ndarray:
    """Run a gseapy single-sample tool on ``X`` (samples x genes); returns samples x sets."""
    X = to_memory(X)
    dense = X.toarray() if sp.issparse(X) else np.asarray(X)
    n, n_genes = dense.shape
    if n < 2:
        raise InputError(f"this cohort method needs at least 2 samples, got {n}")
    if not np.isfinite(dense).all():
        raise InputError("matrix has NaN or infinite values")
    genes = [f"g{i}" for i in range(n_genes)] if var_names is None else [str(v) for v in var_names]
    samples = [f"s{i}" for i in range(n)]
    df = pd.DataFrame(dense.T, index=genes, columns=samples)
    gene_sets: dict[str, list[str]] = {}
    keys = []
    for j, (up, down) in enumerate(sets.values()):
        for part, idx in (("up", up), ("down", down)):
            if len(idx):
                key = f"set{j}_{part}"  # plain keys: gseapy parses names
                gene_sets[key] = [genes[i] for i in np.asarray(idx)]
                keys.append((j, part, key))
    res = call(df, gene_sets)
    table = res.res2d.pivot(index="Name", columns="Term", values=column).astype(float)
    out = np.zeros((n, len(sets)))
    for j, part, key in keys:
        vals = table[key].reindex(samples).to_numpy(dtype=np.float64)
        out[:, j] += vals if part == "up" else -vals
    return out
