"""Scoring a store on disk: one process (backed) versus a dask.distributed LocalCluster, against the read time.

Simulated cells x 20,000 genes (benchmarks/simulate.py: gamma-Poisson UMI counts, log1p-normalised,
CSR float32) are drawn once for ``--base-cells`` cells and tiled to ``--cells`` into a store in
anndata's encoding: ``--format zarr`` (chunked, compressed; written with anndata's own writer,
``anndata.io.write_elem`` then ``sparse_dataset(...).append``) or ``--format h5ad`` (uncompressed,
the layout ``read_h5ad``/``write_h5ad`` use, tiled with h5py by ``simulate.tile``). ``--thin p``
(zarr only) keeps each stored value with probability ``p`` (a lower density, for stores that would
not fit on disk at 10x-like density).

Each mode runs in its own subprocess (its peak memory is its own) and times one pass of UCell
(``dormsig.tl.score_matrix``, 6 sets of 10-200 genes, rows in 20,000-cell chunks/blocks), or one
read of the matrix in the same chunks:

``read_raw``        read the ``data``/``indices`` arrays only, with h5py/zarr (the floor of any reader)
``read_backed``     rows through anndata's backed reader (``sparse_dataset``), CSR chunks, no kernels
``read_dormsig``    rows through dormsig's chunk reader (h5ad CSR: memory maps of the file's in-order runs,
                    MAP_POPULATE; h5py slices where the layout breaks; zarr CSR in a local store: chunk files
                    decoded with numcodecs, two at a time), no kernels
``read_h5py``       as ``read_dormsig`` with every block copied by h5py (``_matrix.MAP_H5AD = False``)
``backed_serial``   UCell, one process (2 numba threads), reading and kernels one after the other
``backed_anndata``  UCell, one process, read-ahead thread, chunks read by anndata (the route before the raw read)
``backed``          UCell, one process, read-ahead thread, chunks mapped (h5ad) or decoded by dormsig (zarr)
``backed_h5py``     as ``backed`` with h5ad chunks copied by h5py (the route before the memory maps)
``cluster``         UCell as a dask graph on LocalCluster(2 workers x 1 thread), ``read_elem_lazy``
``cluster_dormsig`` as ``cluster``, the zarr blocks decoded in the tasks (``dormsig score --scheduler``'s route)

A mode with the suffix ``_cold`` (e.g. ``read_raw_cold``) first drops the store's files from the
page cache (``posix_fadvise(DONTNEED)``, this store only), so it reads from disk; other modes read
whatever the cache holds (a freshly written store is mostly cached when RAM allows).

Usage::

    python benchmarks/bench_distributed.py --cells 1000000 --format h5ad --workdir /work/bench_dist \
        --modes read_raw,read_raw_cold,read_backed,read_dormsig,backed_anndata,backed,backed_cold --delete
    python benchmarks/bench_distributed.py --cells 10000000 --thin 0.1 --workdir /work/bench_dist --delete

Prints one table (wall s, CPU s of the process, peak RSS per process/worker, cells/s), the load
average before each mode and ``uptime``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODES = ("read_raw", "read_backed", "backed_serial", "backed", "cluster")
SCORING = ("backed", "backed_serial", "backed_anndata", "backed_h5py", "cluster", "cluster_dormsig")
CHUNK = 20_000


# ------------------------------------------------------------------------------------------ data
def base_h5ad(workdir: Path, n: int, seed: int) -> Path:
    sys.path.insert(0, str(HERE))
    from simulate import simulate

    path = workdir / f"base_{n}_{seed}.h5ad"
    if not path.exists():
        t = time.perf_counter()
        simulate(str(path), n, 20000, seed=seed)
        print(f"simulated {n} cells in {time.perf_counter() - t:.0f} s -> {path}", flush=True)
    return path


def make_store(base: Path, store: Path, n_cells: int, thin: float, seed: int) -> None:
    """Tile the base cells into a zarr store (anndata encoding, anndata's writer), ``thin`` applied once."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp
    import zarr
    from anndata.io import sparse_dataset, write_elem

    src = ad.read_h5ad(base)
    X = sp.csr_matrix(src.X)
    if thin < 1:  # keep each stored value with probability thin (same cells, fewer non-zeros)
        keep = np.random.default_rng(seed).random(X.nnz) < thin
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))[keep]
        X = sp.csr_matrix((X.data[keep], (rows, X.indices[keep])), shape=X.shape, dtype=np.float32)
        X.sort_indices()
    n_base = X.shape[0]
    if n_cells % n_base:
        raise SystemExit(f"--cells must be a multiple of --base-cells ({n_base})")
    times = n_cells // n_base
    per_append = max(1, min(times, int(2e8 // max(X.nnz, 1))))  # ~2e8 non-zeros (~1.6 GB) per append
    group = zarr.open_group(str(store), mode="w")
    kwargs = {"chunks": (1 << 22,)}
    written = 0
    t = time.perf_counter()
    while written < times:
        k = min(per_append, times - written)
        piece = sp.vstack([X] * k, format="csr") if k > 1 else X
        if written == 0:
            write_elem(group, "X", piece, dataset_kwargs=kwargs)
        else:
            sparse_dataset(group["X"]).append(piece)
        written += k
    obs = pd.DataFrame({"planted": np.tile(src.obs["planted"].to_numpy(), times)},
                       index=[f"cell{i}" for i in range(n_cells)])
    write_elem(group, "obs", obs)
    write_elem(group, "var", src.var)
    write_elem(group, "uns", {"gene_sets": src.uns["gene_sets"], "thin": float(thin), "base_cells": n_base})
    zarr.consolidate_metadata(str(store))
    print(f"wrote {store} ({n_cells} cells, {int(X.nnz) * times:.3g} non-zeros, {du(store) / 1e9:.2f} GB on disk) "
          f"in {time.perf_counter() - t:.0f} s", flush=True)


def make_h5ad(base: Path, path: Path, n_cells: int) -> None:
    """Tile the base cells into an uncompressed ``.h5ad`` (anndata's CSR layout), written with h5py."""
    sys.path.insert(0, str(HERE))
    from simulate import tile

    with h5py_file(base) as f:
        n_base = int(f["X"].attrs["shape"][0])
    if n_cells % n_base:
        raise SystemExit(f"--cells must be a multiple of --base-cells ({n_base})")
    t = time.perf_counter()
    tile(str(base), str(path), n_cells // n_base)
    print(f"wrote {path} ({n_cells} cells, {du(path) / 1e9:.2f} GB) in {time.perf_counter() - t:.0f} s", flush=True)


def h5py_file(path: Path):
    import h5py

    return h5py.File(path, "r")


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def evict(path: Path) -> None:
    """Drop the store's files from the page cache (this store only), so the next read is from disk."""
    for f in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------ modes
def _sets(group) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from anndata.io import read_elem

    var = read_elem(group["var"]).index
    sets = json.loads(str(read_elem(group["uns"])["gene_sets"]))
    return {k: (var.get_indexer(v), np.zeros(0, np.int64)) for k, v in sets.items()}


def _digest(scores: np.ndarray) -> str:
    """SHA-256 of the scores' bytes (C order, float64): equal digests = bit-identical scores."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(scores, dtype=np.float64).tobytes()).hexdigest()[:16]


def _peak() -> int:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited across fork/exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(mode: str, store: Path) -> dict:
    import zarr
    from anndata.io import sparse_dataset

    from dormsig.io.chunks import lazy_zarr_csr
    from dormsig.tl import _matrix, score_matrix

    label, cold = mode, mode.endswith("_cold")
    mode = mode.removesuffix("_cold")
    group = h5py_file(store) if store.suffix == ".h5ad" else zarr.open_group(str(store), mode="r")
    n_cells, n_genes = (int(v) for v in group["X"].attrs["shape"])
    sets = _sets(group)
    res: dict = {"mode": label, "n_cells": n_cells, "nnz": int(group["X"]["indptr"][-1])}
    if mode in SCORING:  # compile/load the kernels outside the timing
        score_matrix(sparse_dataset(group["X"])[:100], sets, method="ucell")
    if cold:
        evict(store)
    t, c = time.perf_counter(), time.process_time()
    if mode == "read_raw":
        indptr = group["X"]["indptr"][:]
        total = 0
        for start in range(0, n_cells, CHUNK):
            a, b = int(indptr[start]), int(indptr[min(start + CHUNK, n_cells)])
            total += group["X"]["data"][a:b].size + group["X"]["indices"][a:b].size
    elif mode in ("read_backed", "read_dormsig", "read_h5py"):
        _matrix.PREFETCH = False
        _matrix.RAW_H5AD = _matrix.RAW_ZARR = mode != "read_backed"
        _matrix.MAP_H5AD = mode == "read_dormsig"
        for _ in _matrix.iter_csr_chunks(sparse_dataset(group["X"]), CHUNK):
            pass
    elif mode in ("backed", "backed_serial", "backed_anndata", "backed_h5py"):
        _matrix.PREFETCH = mode != "backed_serial"
        _matrix.RAW_H5AD = _matrix.RAW_ZARR = mode != "backed_anndata"
        _matrix.MAP_H5AD = mode in ("backed", "backed_serial")
        scores = score_matrix(sparse_dataset(group["X"]), sets, method="ucell", chunk_size=CHUNK, threads=2)
        res["checksum"] = _digest(scores.to_numpy())
    elif mode in ("cluster", "cluster_dormsig"):
        import dask
        from anndata.experimental import read_elem_lazy
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="4GiB",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            # cluster: anndata's lazy reader; cluster_dormsig: the chunk files decoded in the tasks (zarr only)
            lazy = lazy_zarr_csr(group["X"], CHUNK) if mode == "cluster_dormsig" else None
            if lazy is None:
                lazy = read_elem_lazy(group["X"], chunks=(CHUNK, n_genes))
            score_matrix(lazy[:CHUNK], sets, method="ucell")  # workers import dormsig and load the kernels
            client.run(lambda: __import__("gc").collect())
            t, c = time.perf_counter(), time.process_time()
            with dask.config.set(scheduler=client):
                scores = score_matrix(lazy, sets, method="ucell")
            res["checksum"] = _digest(scores.to_numpy())
            res["wall_s"] = time.perf_counter() - t
            res["worker_peak"] = sorted(client.run(_peak).values())
    res.setdefault("wall_s", time.perf_counter() - t)
    res["cpu_s"] = time.process_time() - c
    res["peak"] = _peak()
    return res


def run(mode: str, store: Path, timeout: float) -> dict:
    out = store.parent / f"{mode}.json"
    cmd = [sys.executable, __file__, "--worker", mode, "--store", str(store), "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode:
        return {"mode": mode, "error": proc.stderr.strip().splitlines()[-1][:150]}
    return json.loads(out.read_text())


def table(rows: list[dict]) -> str:
    head = "| mode | cells | non-zeros | wall s | CPU s (main process) | peak RSS | cells/s |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['mode']} | error: {r['error']} ||||||")
            continue
        peak = f"{r['peak'] / 2**30:.2f} GiB"
        if "worker_peak" in r:
            peak = "workers " + ", ".join(f"{p / 2**30:.2f}" for p in r["worker_peak"]) + f" GiB; client {peak}"
        lines.append(f"| {r['mode']} | {r['n_cells']:,} | {r['nnz']:.3g} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{peak} | {r['n_cells'] / r['wall_s']:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=1_000_000)
    p.add_argument("--base-cells", type=int, default=100_000)
    p.add_argument("--thin", type=float, default=1.0)
    p.add_argument("--format", choices=("zarr", "h5ad"), default="zarr")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/bench_distributed"))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--delete", action="store_true", help="Delete the zarr store afterwards.")
    p.add_argument("--worker", default=None)
    p.add_argument("--store", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    if a.worker:
        a.json.write_text(json.dumps(worker(a.worker, a.store)))
        return
    a.workdir.mkdir(parents=True, exist_ok=True)
    if a.format == "h5ad" and a.thin != 1:
        raise SystemExit("--thin is for --format zarr")
    store = a.workdir / (f"sim_{a.cells}.h5ad" if a.format == "h5ad" else f"sim_{a.cells}_thin{a.thin:g}.zarr")
    if not store.exists():
        base = base_h5ad(a.workdir, a.base_cells, a.seed)
        if a.format == "h5ad":
            make_h5ad(base, store, a.cells)
        else:
            make_store(base, store, a.cells, a.thin, a.seed)
    print(f"store {store}: {du(store) / 1e9:.2f} GB", flush=True)
    rows = []
    for mode in a.modes.split(","):
        load = os.getloadavg()
        rows.append(run(mode, store, a.timeout))
        rows[-1]["load"] = load
        rows[-1]["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        print(json.dumps(rows[-1]), flush=True)
    checks = {r.get("checksum") for r in rows if "checksum" in r}
    print(table(rows))
    print(f"UCell scores bit-identical across modes: {len(checks) == 1} (sha256 {sorted(checks)})")
    print(f"load average before each mode: {[tuple(round(x, 2) for x in r['load']) for r in rows]}")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if a.delete:
        import shutil

        shutil.rmtree(store) if store.is_dir() else store.unlink()
        print(f"deleted {store}")


if __name__ == "__main__":
    main()
