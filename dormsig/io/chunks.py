"""Rows of a CSR matrix on disk, read without loading the matrix: anndata's on-disk CSR layout
(``data``/``indices``/``indptr``) in an ``.h5ad`` file or a zarr store on a local disk.

- :class:`H5CSRReader`: rows ``start:stop`` of a CSR group in an ``.h5ad`` file, memory-mapped where HDF5
  keeps the arrays' bytes in order, read with h5py otherwise.
- :class:`ZarrCSRReader`: the same for a zarr group, its chunk files decoded with the numcodecs codec the
  metadata names (plain layouts only; other layouts are read through anndata by the callers).
- :func:`lazy_zarr_csr`: such a zarr matrix as a dask array whose tasks decode their own rows.

Blocks that are copied or decoded (not memory-mapped) are written into memory taken from :data:`BLOCKS`,
which gets it back once the block's arrays (and every view of them) are gone: a loop that drops each
block before it reads the one after the next, as the scoring loops and dask workers do, reuses a few
buffers instead of having the kernel zero fresh pages for every block (at 1M cells as much CPU as a
quarter of the decompression). Blocks a caller keeps are never overwritten.
"""

from __future__ import annotations

import mmap
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from dormsig.errors import InputError

#: Memory-map in-order, uncompressed ``.h5ad`` arrays instead of copying them with h5py (POSIX only); the
#: default of ``H5CSRReader(map_files=None)``
MAP_H5AD = hasattr(mmap, "MAP_SHARED")


class BlockMemory:
    """Memory for blocks read from disk, reused once the arrays made on it are gone.

    :meth:`take` returns an array made with ``numpy.frombuffer`` on a memoryview of a pooled byte buffer;
    when that array and every view of it are garbage (CPython frees them as the last reference goes), the
    buffer comes back here. Views of such an array keep the array itself alive (their ``base``; the base
    chain stops at an array whose base is not an array), so memory is never handed out twice while in
    use. At most ``keep`` idle buffers are held (a loop that reads one block ahead frees data and indices
    of one block at a time, plus an integer buffer converted to float), and none that is too small for
    a block asked for; thread-safe (dask worker threads).
    """

    def __init__(self, keep: int = 3) -> None:
        self.keep = keep
        self._idle: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, n: int, dtype: np.dtype) -> np.ndarray:
        """An array of ``n`` elements of ``dtype`` to write a block into (it may hold an earlier block's values)."""
        dtype = np.dtype(dtype)
        nbytes = max(n * dtype.itemsize, 1)
        raw = None
        with self._lock:
            fits = [k for k, b in enumerate(self._idle) if len(b) >= nbytes]
            if fits:
                raw = self._idle.pop(min(fits, key=lambda k: len(self._idle[k])))
            else:  # blocks are growing: the idle buffers are too small to serve them, let them go
                self._idle.clear()
        if raw is None:  # a quarter more: the next block may be a little larger. numpy's own allocation asks
            # for transparent huge pages (fewer TLB misses for the decoders and kernels than a bytearray's pages)
            raw = np.empty(nbytes + nbytes // 4, dtype=np.uint8)
        # through a memoryview: views of ``out`` then keep ``out`` itself alive, not just ``raw``
        out = np.frombuffer(memoryview(raw), dtype=dtype, count=n)
        weakref.finalize(out, self._give, raw)
        return out

    def _give(self, raw: np.ndarray) -> None:
        with self._lock:
            self._idle.append(raw)
            if len(self._idle) > self.keep:  # let the smallest go
                self._idle.pop(min(range(len(self._idle)), key=lambda k: len(self._idle[k])))

    def idle_bytes(self) -> int:
        with self._lock:
            return sum(len(b) for b in self._idle)


#: The process's pool of block memory (readers of every matrix share it)
BLOCKS = BlockMemory()


def h5ad_csr_group(X):
    """The h5py group of an anndata backed CSR matrix stored in an ``.h5ad`` file, else None (zarr, CSC, dense)."""
    group = getattr(X, "group", None)
    if getattr(X, "format", None) != "csr" or group is None or not type(group).__module__.startswith("h5py"):
        return None
    if not all(k in group for k in ("data", "indices", "indptr")):
        return None
    return group


class H5CSRReader:
    """Rows ``start:stop`` of anndata's on-disk CSR layout in an h5py group, as a CSR matrix.

    ``indptr`` is read once; each block is the stretch of ``data`` and ``indices`` between
    ``indptr[start]`` and ``indptr[stop]``, as anndata's own contiguous row slice, without its
    per-call index validation. Where HDF5 stores an array's bytes in order in the file (contiguous, or
    chunks one after the other as ``write_h5ad`` leaves them), uncompressed and in native byte order,
    the stretch is memory-mapped (read-only, ``MAP_POPULATE``:
    the pages are read in when the map is made, in the read-ahead thread, and no copy is made);
    otherwise it is read with h5py. Integer ``data`` is converted to float64 by HDF5 during the read
    (as ``dormsig.tl._matrix._to_csr`` would after it), float32/float64 is kept as stored.
    """

    def __init__(self, group, shape: tuple[int, int], map_files: bool | None = None):
        self.data, self.indices = group["data"], group["indices"]
        map_files = MAP_H5AD if map_files is None else map_files
        self.indptr = group["indptr"][...]
        self.n_cols = shape[1]
        kind = self.data.dtype
        self.dtype = kind if kind in (np.float32, np.float64) else np.dtype(np.float64)
        self.path = group.file.filename
        self.runs = {name: _file_runs(ds) if map_files and (name == "indices" or ds.dtype == self.dtype) else None
                     for name, ds in (("data", self.data), ("indices", self.indices))}

    def __call__(self, start: int, stop: int) -> sp.csr_matrix:
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        data = self._stretch("data", self.data, self.dtype, a, b)
        indices = self._stretch("indices", self.indices, self.indices.dtype, a, b)
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

    def _stretch(self, name: str, ds, dtype: np.dtype, a: int, b: int) -> np.ndarray:
        runs = self.runs[name]
        if runs is not None and b > a:
            k = int(np.searchsorted(runs[:, 0], a, side="right")) - 1
            if k >= 0 and b <= runs[k, 1]:  # within one run of in-order bytes: map it
                return _map_array(self.path, int(runs[k, 2]), np.dtype(dtype), a - int(runs[k, 0]), b - int(runs[k, 0]))
        out = BLOCKS.take(b - a, dtype)
        if b > a:
            ds.read_direct(out, np.s_[a:b])
        return out


class ZarrCSRReader:
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

    @classmethod
    def of(cls, X) -> ZarrCSRReader | None:
        """A reader for anndata backed CSR ``X`` in a zarr group this class can decode, else None."""
        group = getattr(X, "group", None)
        if getattr(X, "format", None) != "csr" or group is None:
            return None
        return cls.of_group(group, (int(X.shape[0]), int(X.shape[1])))

    @classmethod
    def of_group(cls, group, shape: tuple[int, int]) -> ZarrCSRReader | None:
        """A reader for the CSR matrix (anndata's encoding) in zarr ``group``, else None."""
        if not type(group).__module__.startswith("zarr"):
            return None
        try:
            arrays = {name: cls._plan(group[name]) for name in ("data", "indices")}
        except (KeyError, AttributeError, TypeError, ValueError):
            return None
        if any(a is None for a in arrays.values()) or "indptr" not in group:
            return None
        return cls(group, shape, arrays)

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

    def __call__(self, start: int, stop: int) -> sp.csr_matrix:
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        # two decoders (numcodecs releases the GIL while it decompresses); made per block, so none outlives it.
        # Both arrays' chunks are queued before any is awaited, so neither decoder waits at the switch.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dormsig-decode") as pool:
            plans = {name: self._submit(pool, name, a, b) for name in ("data", "indices")}
            data, indices = (self._gather(name, *plans[name]) for name in ("data", "indices"))
        if data.dtype != self.dtype:  # integer counts: float, as the kernels take them
            conv = BLOCKS.take(b - a, self.dtype)
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

    def _submit(self, pool: ThreadPoolExecutor, name: str, a: int, b: int) -> tuple:
        """Queue the decoding of elements ``a:b`` of ``name`` into block memory; chunks that straddle the
        block's ends go to chunk-sized spare buffers."""
        size, dtype = self.arrays[name][1], self.arrays[name][2]
        out = BLOCKS.take(b - a, dtype)
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


def lazy_zarr_csr(group, chunk_rows: int):
    """anndata's CSR matrix in a zarr group on a local disk as a dask array of ``chunk_rows``-row CSR blocks,
    each decoded by :class:`ZarrCSRReader` in the process (and thread) that runs its task; None where that
    reader does not decode the layout (then anndata's ``read_elem_lazy`` is the route).

    The tasks carry the store's path, not data: every worker opens the store itself, as with anndata's
    lazy reader, and the blocks equal anndata's array for array (integer counts as float64, as the
    scoring kernels take them).
    """
    import dask
    import dask.array as da

    attrs = dict(group.attrs)
    if attrs.get("encoding-type") != "csr_matrix" or "shape" not in attrs:
        return None
    n, n_cols = (int(v) for v in attrs["shape"])
    reader = ZarrCSRReader.of_group(group, (n, n_cols))
    root = getattr(group.store, "root", None)
    if reader is None or root is None or n == 0 or chunk_rows < 1:
        return None
    rows = ZarrRows(str(root), group.path, (n, n_cols))
    meta = sp.csr_matrix((0, n_cols), dtype=reader.dtype)
    token = dask.base.tokenize(rows, chunk_rows)
    blocks = [da.from_delayed(dask.delayed(rows, pure=True)(start, min(start + chunk_rows, n),
                                                            dask_key_name=f"dormsig-zarr-rows-{token}-{k}"),
                              shape=(min(start + chunk_rows, n) - start, n_cols), dtype=reader.dtype, meta=meta)
              for k, start in enumerate(range(0, n, chunk_rows))]
    return da.concatenate(blocks, axis=0)


_THREAD = threading.local()


class ZarrRows:
    """A picklable task: rows ``start:stop`` of the CSR matrix at ``path`` in the zarr store at ``root``.

    One reader per thread and matrix (its kept chunk serves the next block the same thread reads), so
    tasks that run at once in one process share nothing.
    """

    def __init__(self, root: str, path: str, shape: tuple[int, int]) -> None:
        self.root, self.path, self.shape = root, path, shape

    def __dask_tokenize__(self) -> tuple:
        return ("dormsig-zarr-rows", self.root, self.path, self.shape)

    def __call__(self, start: int, stop: int) -> sp.csr_matrix:
        readers = _THREAD.__dict__.setdefault("readers", {})
        key = (self.root, self.path)
        if key not in readers:
            import zarr

            group = zarr.open_group(self.root, mode="r")
            reader = ZarrCSRReader.of_group(group[self.path] if self.path else group, self.shape)
            if reader is None:
                raise InputError(f"the store at {self.root} changed its layout while being read")
            readers[key] = reader
        return readers[key](start, stop)


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
