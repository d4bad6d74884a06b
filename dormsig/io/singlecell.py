"""Single-cell containers: 10x Genomics ``matrix.mtx`` directories (v2/v3) and ``.h5``, ``.h5ad`` and ``.loom``.

10x data keep ``var["gene_ids"]`` (the Ensembl IDs, also used as ``var_names`` because they are
unique), ``var["gene_symbols"]`` and ``var["feature_types"]``; only "Gene Expression" features
are kept and the others are reported as dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp
from anndata import AnnData

from dormsig.errors import DormsigError, FormatError, InputError
from dormsig.io._build import Parsed, is_integral
from dormsig.io.detect import GZ_ERRORS, is_gzip, open_text

GENE_EXPRESSION = "Gene Expression"


def _find(directory: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_lines_table(path: Path) -> pd.DataFrame:
    try:
        with open_text(path) as handle:
            df = pd.read_csv(handle, sep="\t", header=None, dtype=str)
    except pd.errors.EmptyDataError:
        raise InputError("file is empty", path=path) from None
    except GZ_ERRORS as exc:
        raise InputError(f"truncated or corrupt gzip file ({exc})", path=path) from None
    return df


def _gex_filter(var: pd.DataFrame, info: dict[str, Any]) -> np.ndarray:
    if "feature_types" not in var:
        return np.ones(len(var), dtype=bool)
    keep = (var["feature_types"] == GENE_EXPRESSION).to_numpy()
    dropped = var.loc[~keep, "feature_types"].value_counts()
    info["dropped_feature_types"] = {str(k): int(v) for k, v in dropped.items()}
    if len(dropped):
        info.setdefault("decisions", []).append(
            "kept Gene Expression features only; dropped " + ", ".join(f"{int(v)} {k}" for k, v in dropped.items()))
    return keep


def read_10x_mtx(path: str | os.PathLike) -> Parsed:
    """A 10x ``matrix.mtx(.gz)`` directory: v3 (``features.tsv.gz``) or v2 (``genes.tsv``) layout."""
    path = Path(path)
    directory = path.parent if path.is_file() else path
    mtx = _find(directory, ("matrix.mtx",))
    barcodes_file = _find(directory, ("barcodes.tsv",))
    features_file = _find(directory, ("features.tsv", "genes.tsv"))
    missing = [n for n, f in (("matrix.mtx", mtx), ("barcodes.tsv", barcodes_file),
                              ("features.tsv/genes.tsv", features_file)) if f is None]
    if missing:
        raise FormatError(f"10x directory lacks {', '.join(missing)} (optionally .gz)", path=directory)
    assert mtx is not None and barcodes_file is not None and features_file is not None
    try:
        import gzip

        opener = gzip.open if is_gzip(mtx) else open
        with opener(mtx, "rb") as handle:
            matrix = scipy.io.mmread(handle)
    except GZ_ERRORS as exc:
        raise InputError(f"truncated or corrupt gzip file ({exc})", path=mtx) from None
    except (ValueError, IndexError, OSError) as exc:
        raise InputError(f"not a valid Matrix Market file ({' '.join(str(exc).split())})", path=mtx) from None
    if not sp.issparse(matrix):
        matrix = sp.coo_matrix(matrix)
    features = _read_lines_table(features_file)
    barcodes = _read_lines_table(barcodes_file)
    n_genes, n_cells = matrix.shape
    if len(features) != n_genes or len(barcodes) != n_cells:
        raise InputError(
            f"matrix is {n_genes} features x {n_cells} barcodes but {features_file.name} has {len(features)}"
            f" lines and {barcodes_file.name} {len(barcodes)}", path=directory,
        )
    var = pd.DataFrame({"gene_ids": features[0].to_numpy()})
    var["gene_symbols"] = features[1].to_numpy() if features.shape[1] > 1 else features[0].to_numpy()
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    info: dict[str, Any] = {"layout": "v3" if features_file.name.startswith("features") else "v2"}
    keep = _gex_filter(var, info)
    counts = sp.csr_matrix(matrix.T)[:, keep]
    var = var.loc[keep].reset_index(drop=True)
    return Parsed(counts=counts, obs_names=barcodes[0].tolist(), var_names=var["gene_ids"].tolist(),
                  var=var, sparse=True, info=info)


def check_names(adata: AnnData, path: str | os.PathLike) -> None:
    """Refuse duplicated sample/cell or gene names in an AnnData read as is (backed or not).

    Every table dormsig writes is keyed by these names; a duplicate would give two rows with one ID.
    """
    from dormsig.io.shapes import shown

    for axis, names in (("cell/sample", adata.obs_names), ("gene", adata.var_names)):
        if not names.is_unique:
            dup = names[names.duplicated()].unique()
            raise InputError(f"{len(dup)} duplicated {axis} name(s): {shown(list(dup))}; every name must be unique",
                             path=path)


def _decode(values: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_10x_h5(path: str | os.PathLike) -> Parsed:
    """A Cell Ranger ``*_feature_bc_matrix.h5``: v3 (``/matrix``) or v2 legacy (one group per genome).

    The matrix is stored CSC by barcode (``data``, ``indices``, ``indptr``, ``shape`` = features x barcodes).
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            if "matrix" in handle:
                group = handle["matrix"]
                feats = group["features"]
                var = pd.DataFrame({"gene_ids": _decode(feats["id"][:]), "gene_symbols": _decode(feats["name"][:])})
                if "feature_type" in feats:
                    var["feature_types"] = _decode(feats["feature_type"][:])
                if "genome" in feats:
                    var["genome"] = _decode(feats["genome"][:])
                layout = "v3"
            else:
                genomes = [k for k in handle if isinstance(handle[k], h5py.Group)]
                if len(genomes) != 1:
                    raise InputError(f"legacy 10x HDF5 file with {len(genomes)} genome groups; expected one",
                                     path=path)
                group = handle[genomes[0]]
                var = pd.DataFrame({"gene_ids": _decode(group["genes"][:]),
                                    "gene_symbols": _decode(group["gene_names"][:])})
                layout = "v2"
            shape = tuple(int(v) for v in group["shape"][:])
            barcodes = _decode(group["barcodes"][:])
            if len(shape) != 2 or len(barcodes) != shape[1] or len(var) != shape[0]:
                raise InputError(f"10x HDF5 file is inconsistent: matrix shape {shape} but {len(var)} features and"
                                 f" {len(barcodes)} barcodes (truncated or edited?)", path=path)
            indptr = group["indptr"][:]
            if indptr.size != shape[1] + 1:
                raise InputError(f"10x HDF5 file is inconsistent: {indptr.size - 1} matrix columns but {shape[1]}"
                                 " barcodes (truncated or edited?)", path=path)
            matrix = sp.csc_matrix((group["data"][:], group["indices"][:], indptr), shape=shape)
    except DormsigError:
        raise
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise InputError(f"cannot read 10x HDF5 file ({' '.join(str(exc).split())[:120]})", path=path) from None
    info: dict[str, Any] = {"layout": layout}
    keep = _gex_filter(var, info)
    counts = sp.csr_matrix(matrix.T)[:, keep]
    var = var.loc[keep].reset_index(drop=True)
    return Parsed(counts=counts, obs_names=barcodes, var_names=var["gene_ids"].tolist(),
                  var=var, sparse=True, info=info)


def _from_anndata(adata: AnnData, path: Path, fmt: str) -> Parsed:
    """Counts from ``layers["counts"]``, else from an integral non-negative ``X``, else none (X kept)."""
    info: dict[str, Any] = {}
    layers = {k: v for k, v in adata.layers.items() if k != "counts"}
    obs = adata.obs.reset_index(drop=True)
    var = adata.var.reset_index(drop=True)
    uns = {k: v for k, v in adata.uns.items() if k != "dormsig"}
    if "counts" in adata.layers:
        counts, info["counts_source"] = adata.layers["counts"], "layers['counts']"
        present = True
    else:
        x = adata.X
        data = x.data if sp.issparse(x) else np.asarray(x)
        if data.size and is_integral(x) and data.min() >= 0:
            counts, info["counts_source"], present = x, "X (integer-valued)", True
        else:
            # normalised or log values: do not invent counts; keep X as it is
            counts, present = x, False
            info["counts_source"] = "none: X is not integer-valued counts, kept as is"
    info["decisions"] = [f"counts from {info['counts_source']}"]
    # an h5ad keeps the storage it was saved with; loom matrices (read sparse) follow the density rule
    sparse: str | bool = True if fmt == "h5ad" and sp.issparse(counts) else "auto"
    parsed = Parsed(counts=counts, obs_names=adata.obs_names.tolist(), var_names=adata.var_names.tolist(),
                    obs=obs, var=var, layers=layers, sparse=sparse, info=info, counts_present=present, uns=uns)
    return parsed


def read_h5ad(path: str | os.PathLike) -> Parsed:
    import anndata

    path = Path(path)
    try:
        adata = anndata.read_h5ad(path)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read h5ad file, truncated or corrupt? ({' '.join(str(exc).split())[:200]})",
                         path=path) from None
    except Exception as exc:  # anndata wraps h5py errors in its own AnnDataReadError types
        if type(exc).__module__.startswith(("anndata", "h5py")):
            raise InputError(f"cannot read h5ad file ({type(exc).__name__})", path=path) from None
        raise
    return _from_anndata(adata, path, "h5ad")


#: Attribute names that hold cell and gene names in loom files (loompy, velocyto, anndata conventions).
LOOM_OBS_NAMES = ("CellID", "obs_names", "cell_names", "CellIDs")
LOOM_VAR_NAMES = ("Gene", "var_names", "gene_names", "Accession")


def _loom_attrs(group: Any, n: int) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    for key in group:
        values = group[key][...]
        if values.ndim == 1 and len(values) == n:
            cols[key] = _decode(values) if values.dtype.kind in "OSU" else values
    return pd.DataFrame(cols)


def read_loom(path: str | os.PathLike) -> Parsed:
    """A ``.loom`` file (``/matrix`` genes x cells, ``row_attrs``, ``col_attrs``, ``layers``), read with h5py.

    Cell names come from ``CellID`` (or ``obs_names``), gene names from ``Gene`` (or ``var_names``);
    a ``layers/counts`` layer, else an integer-valued ``matrix``, gives the counts (as for h5ad).
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            if "matrix" not in handle:
                raise FormatError("not a loom file (no /matrix)", path=path)
            if not isinstance(handle["matrix"], h5py.Dataset):
                what = "a 10x HDF5 matrix" if "barcodes" in handle["matrix"] else "no loom /matrix dataset"
                raise FormatError(f"not a loom file: it holds {what}; pass format='10x_h5'" if "barcodes" in
                                  handle["matrix"] else f"not a loom file ({what})", path=path)
            matrix = handle["matrix"][...]
            if matrix.ndim != 2:
                raise FormatError(f"not a loom file: /matrix has {matrix.ndim} dimension(s)", path=path)
            n_genes, n_cells = matrix.shape
            row = _loom_attrs(handle["row_attrs"], n_genes) if "row_attrs" in handle else pd.DataFrame()
            col = _loom_attrs(handle["col_attrs"], n_cells) if "col_attrs" in handle else pd.DataFrame()
            layers = {k: handle["layers"][k][...].T for k in handle.get("layers", {}) if k}
    except DormsigError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read loom file ({' '.join(str(exc).split())[:120]})", path=path) from None
    obs_key = next((k for k in LOOM_OBS_NAMES if k in col), None)
    var_key = next((k for k in LOOM_VAR_NAMES if k in row), None)
    if obs_key is None or var_key is None:
        raise InputError(f"loom file lacks cell names ({'/'.join(LOOM_OBS_NAMES)}) or gene names"
                         f" ({'/'.join(LOOM_VAR_NAMES)})", path=path)
    obs_names = [str(v) for v in col.pop(obs_key)]
    var_names = [str(v) for v in row.pop(var_key)]
    adata = AnnData(X=matrix.T, obs=col.set_axis(obs_names), var=row.set_axis(var_names))
    for key, value in layers.items():
        adata.layers[key] = value
    parsed = _from_anndata(adata, path, "loom")
    parsed.info["name_attributes"] = {"obs": obs_key, "var": var_key}
    return parsed
