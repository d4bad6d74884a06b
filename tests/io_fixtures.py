"""Helpers for the dormsig.io tests: fixture paths and writers of HDF5-based fixtures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

IO_DATA = Path(__file__).parent / "data" / "io"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_10x_h5_v3(path: Path, counts_genes_x_cells: np.ndarray, ids: list[str], names: list[str],
                    types: list[str], barcodes: list[str], genome: str = "GRCh38") -> Path:
    """Write a Cell Ranger 3+ ``filtered_feature_bc_matrix.h5`` (CSC by barcode under ``/matrix``)."""
    csc = sp.csc_matrix(np.asarray(counts_genes_x_cells))
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m.create_dataset("barcodes", data=np.array(barcodes, dtype="S"))
        m.create_dataset("data", data=csc.data.astype(np.int32))
        m.create_dataset("indices", data=csc.indices.astype(np.int64))
        m.create_dataset("indptr", data=csc.indptr.astype(np.int64))
        m.create_dataset("shape", data=np.array(csc.shape, dtype=np.int32))
        feat = m.create_group("features")
        feat.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        feat.create_dataset("feature_type", data=np.array(types, dtype="S"))
        feat.create_dataset("genome", data=np.array([genome] * len(ids), dtype="S"))
        feat.create_dataset("id", data=np.array(ids, dtype="S"))
        feat.create_dataset("name", data=np.array(names, dtype="S"))
    return path


def write_10x_h5_v2(path: Path, counts_genes_x_cells: np.ndarray, ids: list[str], names: list[str],
                    barcodes: list[str], genome: str = "GRCh38") -> Path:
    """Write a Cell Ranger 2 ``filtered_gene_bc_matrices_h5.h5`` (one group per genome)."""
    csc = sp.csc_matrix(np.asarray(counts_genes_x_cells))
    with h5py.File(path, "w") as f:
        g = f.create_group(genome)
        g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"))
        g.create_dataset("data", data=csc.data.astype(np.int32))
        g.create_dataset("indices", data=csc.indices.astype(np.int64))
        g.create_dataset("indptr", data=csc.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array(csc.shape, dtype=np.int32))
        g.create_dataset("genes", data=np.array(ids, dtype="S"))
        g.create_dataset("gene_names", data=np.array(names, dtype="S"))
    return path


def write_loom_loompy_layout(path: Path, counts_genes_x_cells: np.ndarray, genes: list[str], cells: list[str],
                             layers: dict[str, np.ndarray] | None = None) -> Path:
    """Write a loom file as loompy/velocyto do: ``/matrix`` genes x cells, ``Gene``/``CellID`` attributes."""
    str_dt = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.create_dataset("matrix", data=np.asarray(counts_genes_x_cells), chunks=True)
        f.create_group("row_attrs").create_dataset("Gene", data=np.array(genes, dtype=object), dtype=str_dt)
        f["row_attrs"].create_dataset("Accession", data=np.array([f"ID{k}" for k in range(len(genes))],
                                                                 dtype=object), dtype=str_dt)
        f.create_group("col_attrs").create_dataset("CellID", data=np.array(cells, dtype=object), dtype=str_dt)
        lay = f.create_group("layers")
        for key, value in (layers or {}).items():
            lay.create_dataset(key, data=value)
        f.create_group("row_graphs")
        f.create_group("col_graphs")
        f.attrs["LOOM_SPEC_VERSION"] = "3.0.0"
    return path
