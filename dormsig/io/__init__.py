"""Readers into AnnData and atomic writers.

The main entry point is :func:`read`, which detects the format of a file or directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from anndata import AnnData

from dormsig.errors import InputError
from dormsig.io._build import Parsed, build
from dormsig.io.detect import (
    FORMATS,
    MAX_TABLE_BYTES,
    check_exists,
    check_table_size,
    detect_format,
    normalise_format,
)
from dormsig.io.samplesheet import join_sample_sheet, read_sample_sheet
from dormsig.io.tables import ORIENTATIONS
from dormsig.io.write import (
    atomic_path,
    check_output,
    write_h5ad,
    write_json,
    write_provenance,
    write_table,
)
from dormsig.provenance import attach, record, sha256

__all__ = [
    "FORMATS",
    "MAX_TABLE_BYTES",
    "atomic_path",
    "check_output",
    "detect_format",
    "read",
    "read_sample_sheet",
    "write_h5ad",
    "write_json",
    "write_provenance",
    "write_table",
]

PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]


def _describe(value: Any) -> Any:
    """A JSON-able description of an option (paths as strings, tables by their type)."""
    if isinstance(value, pd.DataFrame):
        return f"DataFrame({value.shape[0]} rows)"
    if isinstance(value, Mapping):
        return f"dict({len(value)} entries)"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return [_describe(v) for v in value]
    return value


def _parse(path: PathOrPaths, fmt: str, *, orientation: str | None, tx2gene: Any, strand: str | None,
           max_table_bytes: int | None = None) -> Parsed:
    if orientation is not None and fmt != "table":
        raise InputError(f"orientation= applies only to delimited tables, not to {fmt}")
    if strand is not None and fmt != "star":
        raise InputError(f"strand= applies only to STAR ReadsPerGene files, not to {fmt}")
    if tx2gene is not None and fmt not in ("salmon", "kallisto"):
        raise InputError(f"tx2gene= applies only to Salmon/kallisto transcript quantifications, not to {fmt}")
    if isinstance(path, list | tuple) and fmt not in ("star", "salmon", "kallisto", "rsem"):
        raise InputError(f"a list of files is supported only for per-sample formats, not {fmt}")
    if fmt in ("table", "featurecounts"):
        check_table_size(path, max_table_bytes)
    if fmt == "table":
        from dormsig.io.tables import read_table

        return read_table(path, orientation=orientation)
    if fmt == "featurecounts":
        from dormsig.io.quantifiers import read_featurecounts

        return read_featurecounts(path)
    if fmt == "star":
        from dormsig.io.quantifiers import read_star

        return read_star(path, strand=strand)
    if fmt in ("salmon", "kallisto"):
        from dormsig.io.quantifiers import read_salmon_kallisto

        return read_salmon_kallisto(path, tool=fmt, tx2gene=tx2gene)
    if fmt == "rsem":
        from dormsig.io.quantifiers import read_rsem

        return read_rsem(path)
    if fmt == "10x_mtx":
        from dormsig.io.singlecell import read_10x_mtx

        return read_10x_mtx(path)
    if fmt == "10x_h5":
        from dormsig.io.singlecell import read_10x_h5

        return read_10x_h5(path)
    if fmt == "h5ad":
        from dormsig.io.singlecell import read_h5ad

        return read_h5ad(path)
    from dormsig.io.singlecell import read_loom

    return read_loom(path)


def read(
    path: PathOrPaths,
    *,
    format: str | None = None,
    orientation: str | None = None,
    sample_sheet: str | os.PathLike | pd.DataFrame | None = None,
    sample_column: str | None = None,
    tx2gene: str | os.PathLike | pd.DataFrame | Mapping[str, str] | bool | None = None,
    strand: str | None = None,
    harmonise: bool = True,
    species: str | None = None,
    max_table_bytes: int | None = None,
) -> AnnData:
    """Read counts from any supported format into an AnnData (obs = samples/cells, var = genes).

    Parameters
    ----------
    path
        A file, a directory (10x ``matrix.mtx``; per-sample Salmon/kallisto subdirectories; STAR or
        RSEM files) or a list of per-sample files.
    format
        One of :data:`FORMATS` (``table``, ``featurecounts``, ``star``, ``salmon``, ``kallisto``,
        ``rsem``, ``10x_mtx``, ``10x_h5``, ``h5ad``, ``loom``); ``None`` detects it and raises
        :class:`~dormsig.errors.FormatError` when it cannot.
    orientation
        Tables only: ``"genes_x_samples"`` or ``"samples_x_genes"``; ``None`` decides from the
        identifiers (Ensembl IDs, gene symbols, accession-like sample names) or refuses.
    sample_sheet
        CSV/TSV path or DataFrame joined into ``obs`` (headerless sheets are detected); every
        sample must be on both sides.
    sample_column
        Sheet column with the sample names (default: the first).
    tx2gene
        Salmon/kallisto: transcript -> gene table (2-column CSV/TSV path, DataFrame or dict;
        version suffixes tolerated). ``False`` keeps transcripts. Required otherwise.
    strand
        STAR: ``"unstranded"``, ``"forward"`` (column 3) or ``"reverse"`` (column 4); ``None`` infers it.
    harmonise
        Map ``var_names`` to current official symbols with :func:`dormsig.genes.harmonise`.
    species
        Passed to :func:`dormsig.genes.harmonise` (``None``: detected there).
    max_table_bytes
        Largest (uncompressed) text table read, in bytes; ``None``: ``$DORMSIG_MAX_TABLE_BYTES`` or
        :data:`~dormsig.io.detect.MAX_TABLE_BYTES` (1 GiB). A text table is parsed whole into memory;
        a larger one is refused with :class:`~dormsig.errors.InputError` naming the limit and the
        alternatives (.h5ad, 10x .mtx, which are read sparse).

    Returns
    -------
    AnnData
        Raw counts in ``layers["counts"]`` (CSR when sparse; integer dtype when integral; estimated
        counts of Salmon/kallisto/RSEM stay float, their TPM in ``layers["tpm"]``), ``X`` =
        :func:`dormsig.pp.normalise`, and the input's path, format, sha256 and the options in
        ``uns["dormsig"]["input"]``. An ``.h5ad``/``.loom`` without counts keeps its ``X`` and
        records ``uns["dormsig"]["input"]["counts"] = "absent"``.

    Raises
    ------
    MissingInputError
        A path does not exist.
    FormatError
        The format cannot be detected or the file is not what ``format=`` says.
    InputError
        Empty or malformed input, impossible counts, duplicated sample names, a sample sheet
        that does not match. Nothing is written.
    """
    paths = list(path) if isinstance(path, list | tuple) else None
    if paths is not None:
        for p in paths:
            check_exists(p)
    else:
        check_exists(path)
    if orientation is not None and orientation not in ORIENTATIONS:
        raise InputError(f"orientation must be one of {', '.join(ORIENTATIONS)}, not {orientation!r}")
    fmt = normalise_format(format) if format is not None else detect_format(paths if paths is not None else path)
    parsed = _parse(paths if paths is not None else path, fmt, orientation=orientation, tx2gene=tx2gene,
                    strand=strand, max_table_bytes=max_table_bytes)
    label = paths[0] if paths is not None else path
    adata = build(parsed, label)
    info = adata.uns.pop("_dormsig_read_info")

    sheet_info: dict[str, Any] | None = None
    if sample_sheet is not None:
        sheet = read_sample_sheet(sample_sheet, sample_column=sample_column, sample_names=list(adata.obs_names))
        source = sample_sheet if not isinstance(sample_sheet, pd.DataFrame) else "sample_sheet"
        join_sample_sheet(adata, sheet, source=source)
        sheet_info = {"columns": [str(c) for c in sheet.columns], "sample_column": sheet.index.name}
        if not isinstance(sample_sheet, pd.DataFrame):
            sheet_info["path"] = os.fspath(sample_sheet)
            sheet_info["sha256"] = sha256(sample_sheet)

    if paths is not None:
        where: Any = [os.fspath(p) for p in paths]
        digest: Any = [sha256(p) for p in paths]
    else:
        where, digest = os.fspath(path), sha256(path)
    params = {
        "format": format, "orientation": orientation, "sample_sheet": _describe(sample_sheet),
        "sample_column": sample_column, "tx2gene": _describe(tx2gene), "strand": strand,
        "harmonise": harmonise, "species": species,
    }
    extra: dict[str, Any] = {"path": where, "format": fmt, "sha256": digest, "n_obs": adata.n_obs,
                             "n_vars": adata.n_vars, **info}
    if isinstance(tx2gene, str | os.PathLike) and Path(tx2gene).is_file():
        extra["tx2gene_sha256"] = sha256(tx2gene)
    if sheet_info is not None:
        extra["sample_sheet"] = sheet_info
    attach(adata, "input", record("input", method=fmt, params=params, **extra))

    if harmonise:
        _harmonise(adata, species)
    return adata


def _harmonise(adata: AnnData, species: str | None) -> None:
    """Run :func:`dormsig.genes.harmonise` on the identifiers as written in the file.

    Duplicated IDs were suffixed (``TP53__1``) to keep ``var_names`` unique; harmonise gets the
    original IDs back so that it merges them (summing counts) instead of leaving them unmapped.
    """
    import warnings

    from dormsig.genes import harmonise as harmonise_ids

    if "id_in_file" in adata.var:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*names are not unique.*")
            adata.var_names = pd.Index(adata.var["id_in_file"].astype(str).to_numpy(), dtype=object)
            del adata.var["id_in_file"]
            harmonise_ids(adata, species=species)
        if not adata.var_names.is_unique:  # pragma: no cover - harmonise merges equal names
            adata.var_names_make_unique(join="__")
    else:
        harmonise_ids(adata, species=species)
