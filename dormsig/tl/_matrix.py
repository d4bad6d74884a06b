"""Row chunks of a cells x genes matrix as CSR, whatever holds it.

Supported holders: numpy arrays, scipy sparse matrices/arrays (CSR is sliced directly, other
formats are converted once), anndata backed datasets (``read_h5ad(path, backed="r")``), h5py
datasets and dask arrays. A backed CSR matrix of an ``.h5ad`` file is read as slices of its own
``data``/``indices`` arrays (anndata's on-disk CSR layout, read with h5py: the rows
``start:stop`` are ``data[indptr[start]:indptr[stop]]``), which skips anndata's per-slice
index handling. A backed CSR matrix in a zarr group on a local disk is read by decoding the chunk files
of ``data``/``indices`` with numcodecs (plain layouts only, see :class:`_ZarrCSRReader`); dense or CSC
``X`` and other zarr layouts are read through anndata (``X[start:stop]``).
For backed matrices a reader thread reads the next chunk while the caller works on this one
(the numba kernels release the GIL), so at most two chunks are in memory.

Dask arrays are not iterated by the scoring methods: they run as a dask graph over the row
blocks (:func:`row_blocks`, :func:`map_row_blocks`), so any scheduler (threads, processes, a
``dask.distributed`` cluster) does the work. :func:`iter_csr_chunks` still accepts them (one
block computed at a time, in the calling process).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from dormsig.errors import InputError

#: Default of ``iter_csr_chunks(prefetch=None)`` for disk-backed matrices (benchmarks switch it off to compare)
PREFETCH = True
#: Read backed CSR ``.h5ad`` matrices as raw slices of their h5py arrays (benchmarks switch it off to compare)
RAW_H5AD = True
#: Decode the chunks of backed CSR zarr matrices in a local store directly (benchmarks switch it off to compare)
RAW_ZARR = True


def shape(X) -> tuple[int, int]:
    """(rows, columns) of any supported holder."""
    return int(X.shape[0]), int(X.shape[1])


def is_dask(X) -> bool:
    """Whether ``X`` is a dask array (checked without importing dask)."""
    return type(X).__module__.startswith("dask.") and hasattr(X, "chunks") and hasattr(X, "map_blocks")


def row_blocks(X):
    """The dask array ``X`` with whole rows in every block (its row chunks kept: they follow the store's)."""
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def map_row_blocks(X, func: Callable, chunk_size: int = 20000) -> list:
    """``[func(start, stop, csr_block), ...]`` over the row chunks of ``X``, in row order.

    For a dask array each block is a task of the active scheduler (``func`` is shipped once, as
    a shared dependency, so it must pickle); otherwise the chunks of :func:`iter_csr_chunks`.
    """
    if not is_dask(X):
        return [func(start, stop, block) for start, stop, block in iter_csr_chunks(X, chunk_size)]
    import dask

    X = row_blocks(X)
    shared = dask.delayed(func, pure=True)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])])
    parts = [dask.delayed(_apply_block, pure=True)(shared, int(starts[i]), int(starts[i + 1]), block)
             for i, block in enumerate(X.to_delayed()[:, 0])]
    return list(dask.compute(*parts))


def sum_row_blocks(X, func: Callable, chunk_size: int = 20000):
    """``sum(func(start, stop, csr_block))`` over the row chunks of ``X``, never holding all the parts.

    For a dask array the parts are tasks summed pairwise in the graph (a tree reduction on the
    active scheduler); otherwise a running sum over :func:`iter_csr_chunks` (disk reads prefetched).
    """
    if not is_dask(X):
        total = None
        for start, stop, block in iter_csr_chunks(X, chunk_size, reuse=True):  # parts are new arrays
            part = func(start, stop, block)
            total = part if total is None else total + part
        return total
    import dask

    X = row_blocks(X)
    shared = dask.delayed(func, pure=True)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])])
    parts = [dask.delayed(_apply_block, pure=True)(shared, int(starts[i]), int(starts[i + 1]), block)
             for i, block in enumerate(X.to_delayed()[:, 0])]
    add = dask.delayed(np.add, pure=True)
    while len(parts) > 1:  # pairwise, in row order
        parts = [add(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0].compute()


def _apply_block(func: Callable, start: int, stop: int, block):
    return func(start, stop, _to_csr(block))


def _to_csr(block) -> sp.csr_matrix:
    if hasattr(block, "compute"):  # dask
        block = block.compute()
    if sp.issparse(block):
        block = sp.csr_matrix(block)
    else:
        block = sp.csr_matrix(np.asarray(block))
    if block.data.dtype not in (np.float32, np.float64):
        block.data = block.data.astype(np.float64)
    return block


def iter_csr_chunks(X, chunk_size: int = 20000, *, prefetch: bool | None = None, reuse: bool = False
                    ) -> Iterator[tuple[int, int, sp.csr_matrix]]:
    """Yield ``(start, stop, csr_block)`` over the rows of ``X``, ``chunk_size`` rows at a time.

    ``prefetch`` (default: on for matrices read from disk) reads the next chunk in a thread
    while the caller works on the current one. ``reuse``: blocks decoded or copied from disk are
    written into two buffers in turn, so a block's arrays are overwritten once the caller asks for the
    block after the next; for callers done with a block when they ask for the next one (the scoring
    loops). It spares the kernel's zeroing of fresh pages, a CPU cost as large as a quarter of the
    decompression at 1M cells.
    """
    if chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
    n = shape(X)[0]
    if sp.issparse(X) and X.format != "csr":
        X = sp.csr_matrix(X)  # row slicing of CSC/COO is slow: convert once
    if sp.issparse(X) and X.data.dtype in (np.float32, np.float64):
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            yield start, stop, _csr_view(X, start, stop)
        return
    bounds = [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]
    h5 = _h5ad_csr_group(X) if RAW_H5AD else None
    zr = _ZarrCSRReader.of(X) if RAW_ZARR and h5 is None else None
    read = _H5CSRReader(h5, shape(X)) if h5 is not None else zr if zr is not None else partial(_read_csr, X)
    if h5 is not None:
        bounds = read.split(bounds)
    if prefetch is None:
        prefetch = PREFETCH and not isinstance(X, np.ndarray) and not is_dask(X) and len(bounds) > 1
    slots = reuse and (h5 is not None or zr is not None)

    def get(k: int) -> sp.csr_matrix:
        # slot k % 2: block k is written where block k - 2 was, which the caller is done with
        return read(*bounds[k], k % 2) if slots else read(*bounds[k])

    if not prefetch:
        for k, (start, stop) in enumerate(bounds):
            yield start, stop, get(k)
        return
    # one reader thread, one chunk ahead: reading k+1 overlaps the (GIL-free) kernels on chunk k
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dormsig-read") as pool:
        ahead = pool.submit(get, 0)
        for k, (start, stop) in enumerate(bounds):
            block = ahead.result()
            if k + 1 < len(bounds):
                ahead = pool.submit(get, k + 1)
            yield start, stop, block


def _read_csr(X, start: int, stop: int) -> sp.csr_matrix:
    return _to_csr(X[start:stop])


def _h5ad_csr_group(X):
    """The h5py group of an anndata backed CSR matrix stored in an ``.h5ad`` file, else None (zarr, CSC, dense)."""
    group = getattr(X, "group", None)
    if getattr(X, "format", None) != "csr" or group is None or not type(group).__module__.startswith("h5py"):
        return None
    if not all(k in group for k in ("data", "indices", "indptr")):
        return None
    return group


class _H5CSRReader:
    """Rows ``start:stop`` of anndata's on-disk CSR layout in an h5py group, as a CSR matrix.

    ``indptr`` is read once; each block is the stretch of ``data`` and ``indices`` between
    ``indptr[start]`` and ``indptr[stop]``, as anndata's own contiguous row slice, without its
    per-call index validation. Where HDF5 stores an array's bytes in order in the file (contiguous, or
    chunks one after the other as ``write_h5ad`` leaves them), uncompressed and in native byte order,
    the stretch is memory-mapped (read-only, ``MAP_POPULATE``:
    the pages are read in when the map is made, in the read-ahead thread, and no copy is made);
    otherwise it is read with h5py. Integer ``data`` is converted to float64 by HDF5 during the read
    (as :func:`_to_csr` would after it), float32/float64 is kept as stored.
    """

    def __init__(self, group, shape: tuple[int, int]):
        self.data, self.indices = group["data"], group["indices"]
        self.indptr = group["indptr"][...]
        self.n_cols = shape[1]
        kind = self.data.dtype
        self.dtype = kind if kind in (np.float32, np.float64) else np.dtype(np.float64)
        self.path = group.file.filename
        self.buffers: dict[tuple, np.ndarray] = {}  # (slot, array) -> block buffer, reused per slot
        self.runs = {name: _file_runs(ds) if MAP_H5AD and (name == "indices" or ds.dtype == self.dtype) else None
                     for name, ds in (("data", self.data), ("indices", self.indices))}

    def __call__(self, start: int, stop: int, slot: int | None = None) -> sp.csr_matrix:
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        data = self._stretch("data", self.data, self.dtype, a, b, slot)
        indices = self._stretch("indices", self.indices, self.indices.dtype, a, b, slot)
        indptr = self.indptr[start:stop + 1] - a
        return sp.csr_matrix((data, indices, indptr), shape=(stop - start, self.n_cols), copy=False)

    def split(self, bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """``bounds`` cut where the file's runs of in-order bytes break, so that every block but the
        rows that straddle a break (read with h5py, alone) is memory-mapped: the results are per row,
        so any cut gives the same scores."""
        cuts = np.unique(np.concatenate([r[1:, 0] for r in self.runs.values() if r is not None] or [np.zeros(0)]))
        if cuts.size == 0:
            return bounds
        rows = np.searchsorted(self.indptr, cuts, side="right") - 1  # the row holding each cut element
        at_start = self.indptr[rows] == cuts
        edges = set(rows.tolist()) | set((rows[~at_start] + 1).tolist())  # a straddling row is a block alone
        out = []
        for start, stop in bounds:
            inner = sorted(e for e in edges if start < e < stop)
            out += [(a, b) for a, b in zip([start, *inner], [*inner, stop], strict=True)]
        return out

    def _stretch(self, name: str, ds, dtype: np.dtype, a: int, b: int, slot: int | None) -> np.ndarray:
        runs = self.runs[name]
        if runs is not None and b > a:
            k = int(np.searchsorted(runs[:, 0], a, side="right")) - 1
            if k >= 0 and b <= runs[k, 1]:  # within one run of in-order bytes: map it
                return _map_array(self.path, int(runs[k, 2]), np.dtype(dtype), a - int(runs[k, 0]), b - int(runs[k, 0]))
        out = _buffer(self.buffers, (slot, name), b - a, dtype)[:b - a] if slot is not None else np.empty(b - a, dtype)
        if b > a:
            ds.read_direct(out, np.s_[a:b])
        return out


class _ZarrCSRReader:
    """Rows ``start:stop`` of anndata's CSR layout in a zarr group on a local disk, as a CSR matrix.

    zarr's own reader spends about twice the CPU of the decompression itself on a slice (1M cells, 11.7 GB
    of zstd chunks: 36-46 CPU s, against ~18 for numcodecs alone), and on a 2-core machine that CPU is what
    the kernels need. Here each chunk file of ``data``/``indices`` is read and decoded
    with the numcodecs codec the array's metadata names, two chunks at a time, and the chunk a block
    ends in is kept for the next block. Only plain layouts are read this way: a ``LocalStore``, one
    compressor (zarr v2: Blosc, Zstd, GZip, no filters; v3: ``bytes`` then ``blosc``/``zstd``/``gzip``),
    little-endian or native values; anything else (sharding, filters, checksums, remote stores) is read
    through anndata. A chunk file that is absent holds the fill value (zarr does not write empty chunks).
    """

    _V3 = ("zstd", "blosc", "gzip")

    def __init__(self, group, shape: tuple[int, int], arrays: dict):
        self.n_cols = shape[1]
        self.indptr = np.asarray(group["indptr"][...])
        self.arrays = arrays  # name -> (directory, chunk length, numpy dtype, codec, fill value, key function)
        kind = arrays["data"][2]
        self.dtype = kind if kind in (np.float32, np.float64) else np.dtype(np.float64)
        self.cache: dict[str, tuple[int, np.ndarray]] = {}
        self.spares: dict[str, list[np.ndarray]] = {}  # chunk-sized buffers free for straddling chunks
        self.buffers: dict[tuple, np.ndarray] = {}  # (slot, array) -> block buffer, reused per slot

    @classmethod
    def of(cls, X) -> _ZarrCSRReader | None:
        """A reader for anndata backed CSR ``X`` in a zarr group this class can decode, else None."""
        group = getattr(X, "group", None)
        if getattr(X, "format", None) != "csr" or group is None or not type(group).__module__.startswith("zarr"):
            return None
        try:
            arrays = {name: cls._plan(group[name]) for name in ("data", "indices")}
        except (KeyError, AttributeError, TypeError, ValueError):
            return None
        if any(a is None for a in arrays.values()) or "indptr" not in group:
            return None
        return cls(group, shape(X), arrays)

    @classmethod
    def _plan(cls, arr) -> tuple | None:
        import numcodecs

        root = getattr(arr.store, "root", None)
        if type(arr.store).__name__ != "LocalStore" or root is None or arr.ndim != 1:
            return None
        dtype = np.dtype(arr.dtype)
        if dtype.byteorder == ">" or dtype.byteorder == "=" and not np.little_endian:
            return None
        md = arr.metadata
        if md.zarr_format == 2:
            if md.filters or md.compressor is None or getattr(md, "order", "C") != "C":
                return None
            codec = numcodecs.get_codec(md.compressor.get_config())
        else:
            names = [c.to_dict() for c in md.codecs]
            if len(names) != 2 or names[0]["name"] != "bytes" or names[1]["name"] not in cls._V3:
                return None
            if names[0].get("configuration", {}).get("endian", "little") != "little":
                return None
            conf = dict(names[1].get("configuration", {}))
            if names[1]["name"] == "zstd":
                if conf.get("checksum"):
                    return None
                codec = numcodecs.Zstd(level=int(conf.get("level", 0)))
            elif names[1]["name"] == "gzip":
                codec = numcodecs.GZip(level=int(conf.get("level", 5)))
            else:
                codec = numcodecs.Blosc()  # blosc frames describe themselves; the settings matter only to encode
        if type(codec).__name__ not in ("Blosc", "Zstd", "GZip"):
            return None
        fill = md.fill_value if md.fill_value is not None else 0
        return (Path(root) / arr.path, int(arr.chunks[0]), dtype, codec, fill, md.encode_chunk_key)

    def __call__(self, start: int, stop: int, slot: int | None = None) -> sp.csr_matrix:
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        # two decoders (numcodecs releases the GIL while it decompresses); made per block, so none outlives it.
        # Both arrays' chunks are queued before any is awaited, so neither decoder waits at the switch.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dormsig-decode") as pool:
            plans = {name: self._submit(pool, name, a, b, slot) for name in ("data", "indices")}
            data, indices = (self._gather(name, *plans[name]) for name in ("data", "indices"))
        if data.dtype != self.dtype:  # integer counts: float as _to_csr would make them
            if slot is None:
                data = data.astype(self.dtype)
            else:
                conv = _buffer(self.buffers, (slot, "data_float"), b - a, self.dtype)[:b - a]
                np.copyto(conv, data, casting="unsafe")
                data = conv
        indptr = self.indptr[start:stop + 1] - a
        return sp.csr_matrix((data, indices, indptr), shape=(stop - start, self.n_cols), copy=False)

    def _chunk(self, name: str, c: int, out: np.ndarray) -> np.ndarray:
        """Chunk ``c`` of array ``name``, decoded into ``out`` (a whole chunk's length)."""
        where, _size, _dtype, codec, fill, key = self.arrays[name]
        try:
            raw = (where / key((c,))).read_bytes()
        except FileNotFoundError:
            out[:] = fill
            return out
        codec.decode(raw, out=out)
        return out

    def _submit(self, pool: ThreadPoolExecutor, name: str, a: int, b: int, slot: int | None) -> tuple:
        """Queue the decoding of elements ``a:b`` of ``name``: into the slot's buffer (kept for the next use of
        the slot) or a new array; chunks that straddle the block's ends go to chunk-sized spare buffers."""
        size, dtype = self.arrays[name][1], self.arrays[name][2]
        out = _buffer(self.buffers, (slot, name), b - a, dtype)[:b - a] if slot is not None else np.empty(b - a, dtype)
        if b <= a:
            return out, a, b, {}
        first, last = a // size, (b - 1) // size
        cached = self.cache.get(name)
        jobs = {}
        for c in range(first, last + 1):
            if cached is not None and cached[0] == c:
                continue
            lo, hi = max(a, c * size), min(b, (c + 1) * size)
            # a chunk wholly inside the block is decoded in place (no second buffer to fill and copy)
            inplace = hi - lo == size and c != last
            into = out[lo - a:hi - a] if inplace else self._spare(name)
            jobs[c] = (pool.submit(self._chunk, name, c, into), inplace)
        return out, a, b, jobs

    def _gather(self, name: str, out: np.ndarray, a: int, b: int, jobs: dict) -> np.ndarray:
        if b <= a:
            return out
        size = self.arrays[name][1]
        first, last = a // size, (b - 1) // size
        cached = self.cache.pop(name, None)
        spares = self.spares.setdefault(name, [])
        tail = None
        for c in range(first, last + 1):
            lo, hi = max(a, c * size), min(b, (c + 1) * size)
            if c in jobs:
                chunk, inplace = jobs[c][0].result(), jobs[c][1]
            else:  # the chunk the previous block ended in
                chunk, inplace = cached[1], False
            if not inplace:
                out[lo - a:hi - a] = chunk[lo - c * size:hi - c * size]
            if c == last:
                tail = chunk  # kept: the next block starts in it
            elif not inplace:
                spares.append(chunk)  # copied out: free for the next straddling chunk
        if cached is not None and not first <= cached[0] <= last:
            spares.append(cached[1])
        self.cache[name] = (last, tail)
        return out

    def _spare(self, name: str) -> np.ndarray:
        pool = self.spares.setdefault(name, [])
        size, dtype = self.arrays[name][1], self.arrays[name][2]
        return pool.pop() if pool else np.empty(size, dtype=dtype)


def _buffer(buffers: dict, key: tuple, n: int, dtype: np.dtype) -> np.ndarray:
    """A reusable array of at least ``n`` elements under ``key`` (when too small, regrown to the larger of
    twice its size and ``n`` and a quarter)."""
    buf = buffers.get(key)
    if buf is None or buf.size < n or buf.dtype != dtype:
        buf = buffers[key] = np.empty(max(n + n // 4, 2 * buf.size if buf is not None else 1), dtype=dtype)
    return buf


#: Memory-map in-order, uncompressed ``.h5ad`` arrays instead of copying them with h5py (POSIX only; benchmarks
#: switch it off to compare)
MAP_H5AD = hasattr(mmap, "MAP_SHARED")


def _file_runs(ds) -> np.ndarray | None:
    """Where a 1-d h5py dataset's elements lie in its file, as runs ``(first element, end element,
    byte offset)`` (int64, n x 3) of elements whose bytes follow one another as in memory: one run for
    a contiguous layout, a few for chunks (anndata's default) that HDF5 placed mostly one after the
    other. None when the bytes are not as in memory (a filter such as compression, foreign byte
    order) or the file is not a plain file: such arrays are read with h5py."""
    try:
        if ds.ndim != 1 or ds.dtype.byteorder not in "=|<" or ds.dtype.byteorder == "<" and not np.little_endian:
            return None
        import h5py

        plist = ds.id.get_create_plist()
        if plist.get_nfilters() or plist.get_external_count() or ds.file.driver not in ("sec2", "stdio"):
            return None  # compressed, stored in other files, or not a plain file
        if plist.get_layout() not in (h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):  # virtual, compact
            return None
        if ds.chunks is None:
            offset = ds.id.get_offset()
            return None if offset is None else np.array([[0, ds.shape[0], offset]], dtype=np.int64)
        size = ds.chunks[0]
        found: list[tuple[int, int]] = []  # (first element, byte offset) of every stored chunk
        ds.id.chunk_iter(lambda c: found.append((c.chunk_offset[0], c.byte_offset)))
        if len(found) != -(-ds.shape[0] // size):  # unallocated chunks (fill values) are not in the file
            return None
        found.sort()
        runs = []
        for first, offset in found:
            if runs and runs[-1][1] == first and runs[-1][2] + (first - runs[-1][0]) * ds.dtype.itemsize == offset:
                runs[-1][1] = min(first + size, ds.shape[0])
            else:
                runs.append([first, min(first + size, ds.shape[0]), offset])
        return np.array(runs, dtype=np.int64)
    except (AttributeError, ValueError, OSError, RuntimeError):  # h5py/HDF5 without these calls
        return None


def _map_array(path: str, offset: int, dtype: np.dtype, a: int, b: int) -> np.ndarray:
    """Elements ``a:b`` of a contiguous array at byte ``offset`` of ``path``, memory-mapped read-only.

    The map lives as long as the returned array (it holds the buffer); ``MAP_POPULATE`` reads the
    pages in now, so that the kernels later run on resident memory.
    """
    first = offset + a * dtype.itemsize
    length = (b - a) * dtype.itemsize
    base = first - first % mmap.ALLOCATIONGRANULARITY
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    with open(path, "rb") as fh:  # the map stays valid after the file is closed
        mm = mmap.mmap(fh.fileno(), length + first - base, flags=flags, prot=mmap.PROT_READ, offset=base)
    return np.frombuffer(mm, dtype=dtype, count=b - a, offset=first - base)


def _csr_view(X, start: int, stop: int) -> sp.csr_matrix:
    """Rows start:stop of an in-memory CSR matrix without copying data/indices (slicing copies)."""
    a, b = int(X.indptr[start]), int(X.indptr[stop])
    indptr = X.indptr[start:stop + 1] - a
    return sp.csr_matrix((X.data[a:b], X.indices[a:b], indptr), shape=(stop - start, X.shape[1]), copy=False)


def to_memory(X):
    """The whole matrix in memory (numpy or scipy sparse), for the cohort methods."""
    if hasattr(X, "compute"):
        X = X.compute()
    if sp.issparse(X) or isinstance(X, np.ndarray):
        return X
    if hasattr(X, "to_memory"):  # anndata backed sparse dataset
        return X.to_memory()
    return np.asarray(X[()]) if hasattr(X, "dtype") else np.asarray(X)


@contextmanager
def numba_threads(threads: int | None):
    """Run a block with ``threads`` numba threads (all available when None), then restore."""
    import numba

    previous = numba.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be >= 1, got {threads}")
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def counts_source(adata: Any, layer: str | None = None) -> tuple[Any, bool]:
    """(matrix, is_log1p) to take counts per million from: ``layer`` if given, else the counts layer, else
    ``X`` (flagged log1p when dormsig normalised it, so that :func:`linear_chunks` undoes it)."""
    if layer is not None:
        if layer not in adata.layers:
            raise InputError(f"AnnData has no layer {layer!r} (layers: {', '.join(adata.layers.keys()) or 'none'})")
        return adata.layers[layer], False
    if "counts" in adata.layers:
        return adata.layers["counts"], False
    return adata.X, isinstance(adata.uns.get("dormsig", {}).get("normalise"), Mapping)


def linear_chunks(X: Any, is_log: bool, chunk_size: int) -> Iterator[tuple[int, int, sp.csr_matrix, np.ndarray]]:
    """``(start, stop, block, library sizes)`` per row chunk, log1p undone when ``is_log``."""
    for start, stop, block in iter_csr_chunks(X, chunk_size):
        if is_log:
            block = block.copy()
            block.data = np.expm1(block.data)
        yield start, stop, block, np.asarray(block.sum(axis=1)).ravel()
