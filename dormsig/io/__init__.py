"""Readers into AnnData and atomic writers.

The main entry point is :func:`read`, which detects the format of a file or directory.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from anndata import AnnData

from dormsig.errors import DormsigError, GeneIdError, InputError
from dormsig.io._build import Parsed, build
from dormsig.io.detect import (
    FORMATS,
    MAX_TABLE_BYTES,
    PER_SAMPLE,
    check_exists,
    check_table_size,
    detect_format,
    normalise_format,
)
from dormsig.io.lazy import read_lazy
from dormsig.io.samplesheet import join_sample_sheet, read_sample_sheet
from dormsig.io.shapes import check_species
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
    "read_lazy",
    "read_sample_sheet",
    "read_summary",
    "write_h5ad",
    "write_json",
    "write_provenance",
    "write_table",
]

PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]
log = logging.getLogger("dormsig")


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
    if tx2gene is not None and fmt not in ("salmon", "kallisto", "table"):
        raise InputError(f"tx2gene= applies only to transcript quantifications (Salmon, kallisto, tables), not to {fmt}")
    if isinstance(path, list | tuple) and fmt not in PER_SAMPLE:
        raise InputError(f"a list of files is supported only for per-sample formats, not {fmt}")
    if fmt in ("table", "featurecounts"):
        check_table_size(path, max_table_bytes)
    if fmt == "table":
        from dormsig.io.tables import read_table

        return read_table(path, orientation=orientation, tx2gene=tx2gene)
    if fmt == "featurecounts":
        from dormsig.io.quantifiers import read_featurecounts

        return read_featurecounts(path)
    if fmt == "star":
        from dormsig.io.quantifiers import read_star

        return read_star(path, strand=strand)
    if fmt == "htseq":
        from dormsig.io.quantifiers import read_htseq

        return read_htseq(path)
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
    decisions: list[str] = list(info.pop("decisions", []))
    if info.get("n_values_rounded_to_integer"):
        decisions.append(f"rounded {info['n_values_rounded_to_integer']} count(s) within 1e-6 of an integer")
    if harmonise:
        ids = adata.var["id_in_file"].astype(str).tolist() if "id_in_file" in adata.var else list(adata.var_names)
        counts = check_species(ids, species, source=os.fspath(label))
        info["species_evidence"] = counts
    decisions += _restore_excel_dates(adata, species)

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
    if harmonise:
        decisions += _harmonise(adata, species, source=os.fspath(label))
    extra["decisions"] = decisions
    attach(adata, "input", record("input", method=fmt, params=params, **extra))
    for line in decisions:  # the read summary: every decision taken about the input
        log.info("%s: %s", os.fspath(label), line)
    return adata


def read_summary(adata: AnnData) -> list[str]:
    """What :func:`read` decided about the input, one line each (``uns["dormsig"]["input"]["decisions"]``)."""
    rec = adata.uns.get("dormsig", {}).get("input", {})
    decisions = rec.get("decisions", [])
    if isinstance(decisions, str):  # an empty list is stored as text by h5ad-safe provenance
        return [] if decisions in ("", "None", "[]") else [decisions]
    return [str(d) for d in decisions]


def _restore_excel_dates(adata: AnnData, species: str | None) -> list[str]:
    """Gene names Excel turned into dates: restored when one gene fits, else kept apart (never merged)."""
    from dormsig.genes.detect import detect_species
    from dormsig.io._build import make_unique
    from dormsig.io.shapes import date_parts, restore_dates, shown

    in_file = adata.var["id_in_file"].astype(str).tolist() if "id_in_file" in adata.var else None
    ids = in_file if in_file is not None else [str(v) for v in adata.var_names]
    if not any(date_parts(i) for i in ids):
        return []
    if species is None:
        try:
            species = detect_species([i for i in ids if not date_parts(i)])
        except DormsigError:
            species = "human"
    new, restored, unresolved = restore_dates(ids, species)
    lines = []
    if restored:
        lines.append(f"restored {len(restored)} gene name(s) that Excel had turned into dates: "
                     + ", ".join(f"{k} -> {v}" for k, v in list(restored.items())[:4])
                     + (f" (+{len(restored) - 4} more)" if len(restored) > 4 else ""))
    if unresolved:
        lines.append(f"{len(unresolved)} gene name(s) are Excel dates that fit no single gene, kept apart as written"
                     f" (not merged): {shown(sorted(set(unresolved)))}; fix them in the source file")
        warnings.warn(f"{len(unresolved)} gene names are Excel dates that fit several genes"
                      f" ({shown(sorted(set(unresolved)))}); kept apart as written, not merged", UserWarning, stacklevel=3)
    unique, _ = make_unique(new)
    if in_file is not None:
        # unresolved dates keep their unique names (1-Mar, 1-Mar__1) so that harmonise does not sum them
        adata.var["id_in_file"] = [u if date_parts(n) and n not in restored.values() else n
                                   for n, u in zip(new, unique, strict=True)]
    adata.var_names = pd.Index(unique, dtype=object)
    return lines


def _harmonise(adata: AnnData, species: str | None, *, source: str = "") -> list[str]:
    """Run :func:`dormsig.genes.harmonise` on the identifiers as written in the file; return its decisions.

    Duplicated IDs were suffixed (``TP53__1``) to keep ``var_names`` unique; harmonise gets the
    original IDs back so that it merges them (summing counts) instead of leaving them unmapped.
    """
    from dormsig.genes import harmonise as harmonise_ids
    from dormsig.io.shapes import species_counts

    try:
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
    except GeneIdError as exc:
        if "human from mouse" not in str(exc):
            raise
        c = species_counts(list(adata.var_names))
        human, mouse = c["ensembl_human"] + c["symbol_human"], c["ensembl_mouse"] + c["symbol_mouse"]
        raise GeneIdError(f"{source + ': ' if source else ''}cannot tell human from mouse ({human:,} human-only and"
                          f" {mouse:,} mouse-only gene IDs of {c['n']:,}); pass species='human' or 'mouse'") from None
    rec = adata.uns.get("dormsig", {}).get("genes", {})
    lines = [f"species {rec.get('species')} ({'detected' if rec.get('species_detected') else 'given'})"]
    n_in, n_mapped = int(rec.get("n_input", 0)), int(rec.get("n_mapped", 0))
    lines.append(f"{n_mapped:,} of {n_in:,} gene IDs map to current {rec.get('species')} symbols"
                 f" ({int(rec.get('n_renamed', 0)):,} renamed)")
    if int(rec.get("n_collapsed", 0)):
        examples = rec.get("collapsed_examples", [])
        first = f" (e.g. {examples[0]})" if len(examples) else ""
        lines.append(f"summed {int(rec['n_collapsed']):,} row(s) that are the same gene as another row{first}")
    if n_in and n_mapped < 0.5 * n_in:
        warnings.warn(f"only {n_mapped:,} of {n_in:,} gene IDs map to current {rec.get('species')} symbols; check"
                      " the identifiers and the species", UserWarning, stacklevel=3)
    return lines
