"""A zarr store or ``.h5ad`` file as an AnnData whose matrix is a dask array, read where the tasks run.

``obs``/``var``/``uns`` are read now; ``X`` (and a ``counts`` layer) stay on disk as dask arrays of
row blocks, so any dask scheduler, a ``dask.distributed`` cluster included, reads and scores them block
by block. A CSR matrix in a zarr store on a local disk, in a layout dormsig decodes (see
:class:`dormsig.io.chunks.ZarrCSRReader`), has its blocks decoded straight from the chunk files; anything
else is read with anndata's own lazy reader (``anndata.experimental.read_elem_lazy``). The blocks, and
so the scores, are the same either way.
"""

from __future__ import annotations

from pathlib import Path

from anndata import AnnData

from dormsig.errors import DormsigError, InputError

#: Rows per dask block (one task each; ~150 MB of a 10x-like CSR block)
DASK_CHUNK_ROWS = 10_000


def read_lazy(path: str | Path, chunk_rows: int = DASK_CHUNK_ROWS) -> AnnData:
    """Open ``path`` (a zarr store directory or an ``.h5ad`` file) with a dask-backed ``X``.

    Parameters
    ----------
    path
        The store.
    chunk_rows
        Rows per dask block.

    Returns
    -------
    AnnData with ``obs``, ``var`` and ``uns`` in memory, ``X`` (and ``layers["counts"]`` if stored) lazy.
    """
    import anndata as ad

    from dormsig.io.chunks import lazy_zarr_csr
    from dormsig.io.singlecell import check_names

    path = Path(path)
    try:
        from anndata.experimental import read_elem_lazy
        from anndata.io import read_elem
    except ImportError:
        raise InputError(f"reading a store lazily needs anndata >= 0.12 (read_elem_lazy), found {ad.__version__}; "
                         "pip install 'dormsig[dask]'") from None
    is_zarr = path.is_dir()
    if not is_zarr and path.suffix != ".h5ad":
        raise InputError("a lazy read (--scheduler) needs a zarr store (directory) or an .h5ad file", path=path)
    try:
        if is_zarr:
            import zarr

            store = zarr.open_group(str(path), mode="r")
        else:
            import h5py

            store = h5py.File(path, "r")  # kept open: the dask tasks read the path, this handle reads obs/var
        var = read_elem(store["var"])

        def lazy(elem):
            direct = lazy_zarr_csr(elem, chunk_rows) if is_zarr else None
            return direct if direct is not None else read_elem_lazy(elem, chunks=(chunk_rows, len(var)))

        adata = ad.AnnData(obs=read_elem(store["obs"]), var=var, uns=read_elem(store["uns"]) if "uns" in store else {})
        adata.X = lazy(store["X"])
        if "layers" in store and "counts" in store["layers"]:
            adata.layers["counts"] = lazy(store["layers"]["counts"])
    except DormsigError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read the store lazily ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})",
                         path=path) from None
    check_names(adata, path)
    return adata
