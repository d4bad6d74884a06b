"""Simulated UMI data with a planted dormant subpopulation, written to .h5ad in bounded memory.

Counts are gamma-Poisson (negative binomial) draws: gene means are log-normal, cells have
log-normal library sizes; a fraction of cells (the planted "dormant" cells) have the genes of
the up sets multiplied by ``fold`` and those of the down set divided by it. ``X`` is stored as
log1p(counts / library * 1e4), CSR float32; ``obs["planted"]`` marks the planted cells and
``uns["gene_sets"]`` holds the sets (JSON). Cells are generated and written in chunks with h5py,
so 1,000,000 cells need only one chunk in memory.

Usage::

    python benchmarks/simulate.py --cells 100000 --out /tmp/sim_100k.h5ad
"""

from __future__ import annotations

import argparse
import json
import time

import h5py
import numpy as np
import pandas as pd
from numba import njit, prange

SET_SIZES = {"UP_10": 10, "UP_25": 25, "UP_50": 50, "UP_100": 100, "DOWN_150": 150, "NULL_200": 200}


@njit(parallel=True, cache=True)
def _draw_chunk(first_cell, n_cells, mu, lib, planted, gene_fold, shape, seed):
    """Counts of cells first_cell.. as dense int32; each cell seeded on its own (reproducible)."""
    n_genes = mu.size
    out = np.zeros((n_cells, n_genes), dtype=np.int32)
    for i in prange(n_cells):
        # numba supports only the legacy np.random API; one seed per cell keeps draws reproducible
        np.random.seed(seed * 1_000_003 + first_cell + i)  # noqa: NPY002
        for g in range(n_genes):
            lam = lib[i] * mu[g] * (gene_fold[g] if planted[i] else 1.0)
            lam = lam * np.random.gamma(shape, 1.0 / shape)  # noqa: NPY002
            out[i, g] = np.random.poisson(lam)  # noqa: NPY002
    return out


def gene_sets(n_genes: int, mu: np.ndarray, seed: int) -> dict[str, list[int]]:
    """Disjoint sets drawn from the 6,000 most expressed genes (signature genes are usually detected)."""
    rng = np.random.default_rng(seed + 1)
    pool = np.argsort(-mu)[:6000]
    chosen = rng.choice(pool, sum(SET_SIZES.values()), replace=False)
    out, k = {}, 0
    for name, size in SET_SIZES.items():
        out[name] = sorted(int(g) for g in chosen[k:k + size])
        k += size
    return out


def simulate(path: str, n_cells: int, n_genes: int = 20000, *, frac_planted: float = 0.05, fold: float = 3.0,
             chunk: int = 5000, seed: int = 0) -> None:
    """Write the simulated data set to ``path`` (h5ad)."""
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(0.0, 1.8, n_genes)
    mu /= mu.sum()
    sets = gene_sets(n_genes, mu, seed)
    up = np.concatenate([sets[k] for k in sets if k.startswith("UP")])
    down = np.asarray(sets["DOWN_150"])
    gene_fold = np.ones(n_genes)
    gene_fold[up] = fold
    gene_fold[down] = 1.0 / fold
    planted = rng.random(n_cells) < frac_planted
    libs = rng.lognormal(np.log(2200), 0.35, n_cells)
    genes = np.array([f"GENE{i:05d}" for i in range(n_genes)])
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        X = f.create_group("X")
        X.attrs["encoding-type"] = "csr_matrix"
        X.attrs["encoding-version"] = "0.1.0"
        X.attrs["shape"] = (n_cells, n_genes)
        data = X.create_dataset("data", shape=(0,), maxshape=(None,), dtype="float32", chunks=(1 << 20,))
        indices = X.create_dataset("indices", shape=(0,), maxshape=(None,), dtype="int32", chunks=(1 << 20,))
        indptr = np.zeros(n_cells + 1, dtype=np.int64)
        nnz = 0
        for start in range(0, n_cells, chunk):
            stop = min(start + chunk, n_cells)
            counts = _draw_chunk(start, stop - start, mu, libs[start:stop], planted[start:stop], gene_fold, 2.0, seed)
            lib = counts.sum(axis=1).astype(np.float64)
            lib[lib == 0] = 1.0
            r, c = np.nonzero(counts)
            vals = np.log1p(counts[r, c] / lib[r] * 1e4).astype(np.float32)
            k = vals.size
            data.resize((nnz + k,))
            indices.resize((nnz + k,))
            data[nnz:] = vals
            indices[nnz:] = c.astype(np.int32)
            indptr[start + 1:stop + 1] = nnz + np.cumsum(np.bincount(r, minlength=stop - start))
            nnz += k
        X.create_dataset("indptr", data=indptr)
    import anndata as ad

    obs = pd.DataFrame({"planted": planted}, index=[f"cell{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=genes)
    with h5py.File(path, "a") as f:
        ad.io.write_elem(f, "obs", obs)
        ad.io.write_elem(f, "var", var)
        ad.io.write_elem(f, "uns", {"gene_sets": json.dumps({k: [genes[g] for g in v] for k, v in sets.items()}),
                                    "fold": fold, "seed": seed})
        for key in ("obsm", "varm", "obsp", "varp", "layers"):
            ad.io.write_elem(f, key, {})


def tile(src: str, path: str, times: int) -> None:
    """Write ``src`` repeated ``times`` times along the cells (e.g. 10 x 100k -> 1M cells), chunk by chunk.

    Per-cell scores do not depend on the other cells, so a tiled file times the scoring of a
    1M-cell matrix without spending hours drawing new counts.
    """
    import anndata as ad

    with h5py.File(src, "r") as f:
        n_cells, n_genes = (int(v) for v in f["X"].attrs["shape"])
        indptr0 = f["X/indptr"][:]
        nnz0 = int(indptr0[-1])
        with h5py.File(path, "w") as g:
            g.attrs["encoding-type"] = "anndata"
            g.attrs["encoding-version"] = "0.1.0"
            X = g.create_group("X")
            X.attrs["encoding-type"] = "csr_matrix"
            X.attrs["encoding-version"] = "0.1.0"
            X.attrs["shape"] = (n_cells * times, n_genes)
            data = X.create_dataset("data", shape=(nnz0 * times,), dtype="float32", chunks=(1 << 20,))
            indices = X.create_dataset("indices", shape=(nnz0 * times,), dtype="int32", chunks=(1 << 20,))
            step = 50_000_000
            for t in range(times):
                for a in range(0, nnz0, step):
                    b = min(a + step, nnz0)
                    data[t * nnz0 + a:t * nnz0 + b] = f["X/data"][a:b]
                    indices[t * nnz0 + a:t * nnz0 + b] = f["X/indices"][a:b]
            indptr = np.concatenate([[0]] + [indptr0[1:] + t * nnz0 for t in range(times)])
            X.create_dataset("indptr", data=indptr.astype(np.int64))
    src_ad = ad.read_h5ad(src, backed="r")
    obs = pd.concat([src_ad.obs] * times)
    obs.index = [f"cell{i}" for i in range(n_cells * times)]
    with h5py.File(path, "a") as g:
        ad.io.write_elem(g, "obs", obs)
        ad.io.write_elem(g, "var", src_ad.var.copy())
        ad.io.write_elem(g, "uns", {"gene_sets": src_ad.uns["gene_sets"], "tiled_from": src, "times": times})
        for key in ("obsm", "varm", "obsp", "varp", "layers"):
            ad.io.write_elem(g, key, {})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, required=True)
    p.add_argument("--genes", type=int, default=20000)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=5000)
    p.add_argument("--tile-from", default=None, help="instead of drawing, repeat this h5ad --tile-times times")
    p.add_argument("--tile-times", type=int, default=10)
    a = p.parse_args()
    t = time.perf_counter()
    if a.tile_from:
        tile(a.tile_from, a.out, a.tile_times)
        print(f"wrote {a.out}: {a.tile_from} x {a.tile_times} in {time.perf_counter() - t:.1f} s")
        return
    simulate(a.out, a.cells, a.genes, seed=a.seed, chunk=a.chunk)
    print(f"wrote {a.out}: {a.cells} cells x {a.genes} genes in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
