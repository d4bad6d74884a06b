"""Outputs of read quantifiers: featureCounts, STAR ``ReadsPerGene.out.tab``, Salmon, kallisto, RSEM.

Per-sample formats (STAR, Salmon, kallisto, RSEM) take one file, a list of files or a directory
(of files for STAR/RSEM, of per-sample subdirectories for Salmon/kallisto).

Salmon/kallisto estimate transcript counts; they are summed per gene through ``tx2gene``
(``layers["counts"]`` = estimated counts, kept as floats; ``layers["tpm"]`` = TPM summed per gene).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dormsig.errors import FormatError, InputError
from dormsig.io._build import Parsed, check_unique_samples, coerce_numeric_frame
from dormsig.io.detect import (
    FEATURECOUNTS_HEADER,
    GZ_ERRORS,
    KALLISTO_HEADER,
    SALMON_HEADER,
    STAR_SPECIAL,
    check_exists,
    head_lines,
    is_gzip,
    strip_gz,
)

PathLike = str | os.PathLike
STRANDS = ("unstranded", "forward", "reverse")
#: Strand inference (as in RSeQC/nf-core practice): a library is stranded when >= 80% of the
#: strand-assigned reads fall on one strand, unstranded when the two strands differ by < 10%.
STRANDED_FRACTION = 0.8
UNSTRANDED_DIFFERENCE = 0.1

_VERSION_RE = re.compile(r"\.\d+$")


def _read_tsv(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t", compression="gzip" if is_gzip(path) else None, low_memory=False, **kwargs)
    except GZ_ERRORS as exc:
        raise InputError(f"truncated or corrupt gzip file ({exc})", path=path) from None
    except pd.errors.EmptyDataError:
        raise InputError("file is empty", path=path) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"malformed table ({' '.join(str(exc).split())})", path=path) from None
    except UnicodeDecodeError:
        raise FormatError("not a UTF-8 text file", path=path) from None


def _expect_columns(df: pd.DataFrame, expected: Sequence[str], path: Path, tool: str) -> None:
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise FormatError(f"not a {tool} file: missing column(s) {', '.join(missing)}", path=path)


# --------------------------------------------------------------------------- featureCounts
def bam_sample_name(column: str) -> str:
    """``/data/run1/S1.Aligned.sortedByCoord.out.bam`` -> ``S1``: strip directories, ``.bam`` and STAR suffixes."""
    name = re.split(r"[\\/]", column)[-1]
    name = re.sub(r"\.bam$", "", name, flags=re.IGNORECASE)
    name = re.sub(r"[._]?Aligned(\.sortedByCoord)?\.out$", "", name)
    return name


def read_featurecounts(path: PathLike) -> Parsed:
    """featureCounts ``-o`` output: a ``# Program:featureCounts`` line, then Geneid, Chr, Start, End, Strand, Length, samples."""
    path = Path(path)
    lines = head_lines(path, 2)
    skip = 1 if lines and lines[0].startswith("#") else 0
    df = _read_tsv(path, skiprows=skip, dtype={"Geneid": str, "Chr": str, "Start": str, "End": str, "Strand": str})
    _expect_columns(df, FEATURECOUNTS_HEADER, path, "featureCounts")
    sample_cols = [c for c in df.columns if c not in FEATURECOUNTS_HEADER]
    if not sample_cols:
        raise InputError("featureCounts file has no sample columns", path=path)
    samples = [bam_sample_name(c) for c in sample_cols]
    check_unique_samples(samples, path)
    counts = coerce_numeric_frame(df[sample_cols], path, first_line=skip + 2)
    var = df[["Chr", "Start", "End", "Strand", "Length"]].rename(columns=str.lower).reset_index(drop=True)
    obs = pd.DataFrame({"bam": sample_cols})
    return Parsed(counts=counts.T, obs_names=samples, var_names=df["Geneid"].astype(str).tolist(),
                  obs=obs, var=var, info={"tool": "featureCounts", "program_line": lines[0] if skip else None})


# --------------------------------------------------------------------------- per-sample file lists
def _sample_files(path: PathLike | Sequence[PathLike], *, file_names: Sequence[str] = (),
                  suffixes: Sequence[str] = ()) -> list[Path]:
    """Expand a file, a list or a directory (files with a suffix, or subdirectories with a file name)."""
    if isinstance(path, list | tuple):
        return [f for p in path for f in _sample_files(p, file_names=file_names, suffixes=suffixes)]
    path = check_exists(path)
    if path.is_file():
        return [path]
    found = [p for p in sorted(path.iterdir()) if p.is_file() and strip_gz(p.name) in file_names]
    if found:
        return found  # a single sample's output directory
    for p in sorted(path.iterdir()):
        if p.is_file() and strip_gz(p.name).endswith(tuple(suffixes)) and suffixes:
            found.append(p)
        elif p.is_dir():
            found.extend(q for q in sorted(p.iterdir()) if q.is_file() and (
                strip_gz(q.name) in file_names or (suffixes and strip_gz(q.name).endswith(tuple(suffixes)))))
    if not found:
        raise FormatError(f"directory holds no {' or '.join([*file_names, *suffixes])} files", path=path)
    return found


def _prefix_name(file: Path, suffix: str) -> str:
    """Sample name from ``<sample><sep><suffix>``; the parent directory when the prefix is empty."""
    name = strip_gz(file.name)
    prefix = name[: -len(suffix)] if name.endswith(suffix) else name
    prefix = prefix.rstrip("._-")
    return prefix or file.resolve().parent.name


# --------------------------------------------------------------------------- STAR
def read_star(path: PathLike | Sequence[PathLike], *, strand: str | None = None) -> Parsed:
    """STAR ``--quantMode GeneCounts`` output (``ReadsPerGene.out.tab``), one file per sample.

    Columns: gene, unstranded, forward (read 1 on the gene's strand), reverse. The four ``N_*``
    rows are excluded from counts and reported. ``strand=None`` infers the library type from the
    summed forward and reverse columns (see :data:`STRANDED_FRACTION`).
    """
    files = _sample_files(path, suffixes=("ReadsPerGene.out.tab",))
    if strand is not None and strand not in STRANDS:
        raise InputError(f"strand must be one of {STRANDS}, not {strand!r}")
    samples = [_prefix_name(f, "ReadsPerGene.out.tab") for f in files]
    check_unique_samples(samples, files[0])
    tables = []
    special: dict[str, dict[str, int]] = {}
    genes: list[str] | None = None
    for sample, file in zip(samples, files, strict=True):
        df = _read_tsv(file, header=None, dtype={0: str})
        if df.shape[1] != 4:
            raise FormatError(f"not a STAR ReadsPerGene.out.tab file: {df.shape[1]} columns, expected 4", path=file)
        is_special = df[0].isin(STAR_SPECIAL).to_numpy()
        special[sample] = {str(k): int(v) for k, v in zip(df.loc[is_special, 0], df.loc[is_special, 1], strict=True)}
        body = df.loc[~is_special].reset_index(drop=True)
        first_line = int(is_special.sum()) + 1
        values = coerce_numeric_frame(body[[1, 2, 3]].set_axis(["unstranded", "forward", "reverse"], axis=1),
                                      file, first_line=first_line)
        g = body[0].tolist()
        if genes is None:
            genes = g
        elif g != genes:
            raise InputError(f"gene list differs from that of {files[0].name} (another annotation?)", path=file)
        tables.append(values)
    assert genes is not None
    sums = {s: {c: float(t[:, k].sum()) for k, c in enumerate(("unstranded", "forward", "reverse"))}
            for s, t in zip(samples, tables, strict=True)}
    total_fwd = sum(v["forward"] for v in sums.values())
    total_rev = sum(v["reverse"] for v in sums.values())
    total_uns = sum(v["unstranded"] for v in sums.values())
    assigned = total_fwd + total_rev
    frac_fwd = total_fwd / assigned if assigned > 0 else float("nan")
    inference = {
        "sum_unstranded": total_uns, "sum_forward": total_fwd, "sum_reverse": total_rev,
        "fraction_forward": frac_fwd,
        "forward_over_unstranded": total_fwd / total_uns if total_uns else float("nan"),
        "reverse_over_unstranded": total_rev / total_uns if total_uns else float("nan"),
        "per_sample_fraction_forward": {
            s: (v["forward"] / (v["forward"] + v["reverse"]) if v["forward"] + v["reverse"] else float("nan"))
            for s, v in sums.items()
        },
    }
    if strand is None:
        strand = infer_strand(total_fwd, total_rev)
        if strand is None:
            raise InputError(
                f"cannot infer the library strandedness (forward fraction {frac_fwd:.2f}); pass strand="
                "'unstranded', 'forward' or 'reverse'", path=files[0],
            )
        inference["strand_inferred"] = True
    else:
        inference["strand_inferred"] = False
    column = STRANDS.index(strand)
    counts = np.vstack([t[:, column] for t in tables])
    how = (f"inferred: {frac_fwd:.0%} of strand-assigned reads forward" if inference["strand_inferred"]
           else "given")
    totals = {k: sum(v.get(k, 0) for v in special.values()) for k in STAR_SPECIAL}
    decisions = [f"STAR column {column + 2} ({strand}; {how})",
                 "dropped the 4 STAR summary rows, not genes (" + ", ".join(f"{k} {v:,}" for k, v in totals.items())
                 + " reads over all samples)"]
    info = {"tool": "STAR", "strand": strand, "strand_inference": inference, "star_excluded_rows": special,
            "decisions": decisions,
            "files": [str(f) for f in files]}
    return Parsed(counts=counts, obs_names=samples, var_names=genes, info=info)


def infer_strand(forward: float, reverse: float) -> str | None:
    """``"forward"``/``"reverse"``/``"unstranded"`` from the summed STAR columns 3 and 4, or ``None``."""
    total = forward + reverse
    if total <= 0:
        return None
    f, r = forward / total, reverse / total
    if f >= STRANDED_FRACTION:
        return "forward"
    if r >= STRANDED_FRACTION:
        return "reverse"
    if abs(f - r) < UNSTRANDED_DIFFERENCE:
        return "unstranded"
    return None


# --------------------------------------------------------------------------- Salmon / kallisto
def _strip_version(ids: pd.Series) -> pd.Series:
    return ids.astype(str).str.replace(_VERSION_RE, "", regex=True)


def _target_ids(names: pd.Series) -> pd.Series:
    # kallisto on a GENCODE FASTA keeps the whole header (ENST...|ENSG...|...); the ID is the first field.
    return names.astype(str).str.split("|", n=1).str[0]


def load_tx2gene(tx2gene: PathLike | pd.DataFrame | Mapping[str, str]) -> pd.Series:
    """A transcript -> gene Series from a 2-column CSV/TSV (header optional), a DataFrame or a dict."""
    if isinstance(tx2gene, Mapping):
        return pd.Series({str(k): str(v) for k, v in tx2gene.items()})
    if isinstance(tx2gene, pd.DataFrame):
        if tx2gene.shape[1] < 2:
            raise InputError("tx2gene DataFrame needs two columns (transcript, gene)")
        return pd.Series(tx2gene.iloc[:, 1].astype(str).to_numpy(), index=tx2gene.iloc[:, 0].astype(str).to_numpy())
    path = check_exists(tx2gene)
    lines = head_lines(path, 2)
    if not lines or not lines[0].strip():
        raise InputError("tx2gene file is empty", path=path)
    sep = "\t" if "\t" in lines[0] else ","
    try:
        df = pd.read_csv(path, sep=sep, header=None, dtype=str, compression="gzip" if is_gzip(path) else None)
    except GZ_ERRORS as exc:
        raise InputError(f"truncated or corrupt gzip file ({exc})", path=path) from None
    if df.shape[1] < 2:
        raise InputError("tx2gene table needs two columns (transcript, gene)", path=path)
    first = str(df.iloc[0, 0])
    if not re.match(r"^(ENS[A-Z]*T\d+|NM_|NR_|XM_|XR_)", first) and re.match(r"^[A-Za-z_ ]+$", first):
        df = df.iloc[1:]  # a header line such as TXNAME,GENEID
    return pd.Series(df.iloc[:, 1].to_numpy(), index=df.iloc[:, 0].to_numpy())


def _map_transcripts(tx: pd.Series, mapping: pd.Series) -> tuple[pd.Series, str]:
    """Map transcript IDs to genes: exactly, else after stripping version suffixes on both sides."""
    exact = tx.map(mapping.to_dict())
    versionless = _strip_version(pd.Series(mapping.index))
    vmap = dict(zip(versionless, mapping.to_numpy(), strict=True))
    loose = _strip_version(tx).map(vmap)
    if loose.notna().sum() > exact.notna().sum():
        return loose, "version_stripped"
    return exact, "exact"


def read_salmon_kallisto(path: PathLike | Sequence[PathLike], *, tool: str,
                         tx2gene: PathLike | pd.DataFrame | Mapping[str, str] | bool | None = None) -> Parsed:
    """Salmon ``quant.sf`` / kallisto ``abundance.tsv``, one per sample (sample = parent directory name)."""
    if tool == "salmon":
        file_name, header, id_col, count_col, tpm_col = "quant.sf", SALMON_HEADER, "Name", "NumReads", "TPM"
    else:
        file_name, header, id_col, count_col, tpm_col = "abundance.tsv", KALLISTO_HEADER, "target_id", "est_counts", "tpm"
    files = _sample_files(path, file_names=(file_name,))
    if tx2gene is None:
        raise InputError(
            f"{tool} quantifies transcripts: pass tx2gene= (a transcript->gene table) to sum them per gene, or"
            " tx2gene=False to keep transcripts", path=files[0],
        )
    samples = [f.resolve().parent.name for f in files]
    if len(files) == 1 and not isinstance(path, list | tuple) and Path(path).is_file() and strip_gz(
            files[0].name) != file_name:
        samples = [strip_gz(files[0].name).split(".")[0]]
    check_unique_samples(samples, files[0])
    counts_list, tpm_list = [], []
    targets: list[str] | None = None
    for file in files:
        df = _read_tsv(file, dtype={id_col: str})
        _expect_columns(df, header, file, tool)
        values = coerce_numeric_frame(df[[count_col, tpm_col]], file, first_line=2, what="quantification")
        ids = _target_ids(df[id_col]).tolist()
        if targets is None:
            targets = ids
        elif ids != targets:
            raise InputError(f"transcript list differs from that of {files[0]} (another index?)", path=file)
        counts_list.append(values[:, 0])
        tpm_list.append(values[:, 1])
    assert targets is not None
    counts = np.vstack(counts_list)
    tpm = np.vstack(tpm_list)
    info: dict[str, Any] = {"tool": tool, "files": [str(f) for f in files], "n_transcripts": len(targets)}
    if tx2gene is False:
        info["level"] = "transcript"
        return Parsed(counts=counts, obs_names=samples, var_names=targets, layers={"tpm": tpm}, integer=False,
                      info=info)
    if tx2gene is True:
        raise InputError("tx2gene=True is not a table; pass a path, DataFrame or dict (or False)")
    mapping = load_tx2gene(tx2gene)
    genes, how = _map_transcripts(pd.Series(targets), mapping)
    mapped = genes.notna().to_numpy()
    if not mapped.any():
        raise InputError(
            f"no transcript of {files[0]} is in tx2gene (e.g. {targets[0]!r} vs {mapping.index[0]!r})", path=files[0]
        )
    codes, gene_names = pd.factorize(genes[mapped], sort=True)
    # sum transcripts per gene: (samples x transcripts) @ (transcripts x genes) indicator
    import scipy.sparse as sp

    indicator = sp.csr_matrix((np.ones(codes.size), (np.arange(codes.size), codes)),
                              shape=(codes.size, gene_names.size))
    gene_counts = np.asarray(counts[:, mapped] @ indicator)
    gene_tpm = np.asarray(tpm[:, mapped] @ indicator)
    info["decisions"] = [f"summed {len(targets):,} transcripts into {gene_names.size:,} genes with tx2gene"
                         f" ({int((~mapped).sum()):,} transcripts not in it, {float(counts[:, ~mapped].sum()):,.0f}"
                         " estimated reads left out)"]
    info.update(level="gene", tx2gene_match=how, n_transcripts_unmapped=int((~mapped).sum()),
                unmapped_counts=float(counts[:, ~mapped].sum()), n_genes=int(gene_names.size))
    return Parsed(counts=gene_counts, obs_names=samples, var_names=[str(g) for g in gene_names],
                  layers={"tpm": gene_tpm}, integer=False, info=info)


# --------------------------------------------------------------------------- RSEM
RSEM_COLUMNS = ["gene_id", "transcript_id(s)", "length", "effective_length", "expected_count", "TPM", "FPKM"]


def read_rsem(path: PathLike | Sequence[PathLike]) -> Parsed:
    """RSEM ``*.genes.results``, one per sample (sample = file name before ``.genes.results``)."""
    files = _sample_files(path, suffixes=(".genes.results",))
    samples = [_prefix_name(f, ".genes.results") for f in files]
    check_unique_samples(samples, files[0])
    counts_list, tpm_list = [], []
    genes: list[str] | None = None
    var = None
    for file in files:
        df = _read_tsv(file, dtype={"gene_id": str, "transcript_id(s)": str})
        _expect_columns(df, RSEM_COLUMNS[:5], file, "RSEM genes.results")
        values = coerce_numeric_frame(df[["expected_count", "TPM"]], file, first_line=2, what="quantification")
        g = df["gene_id"].tolist()
        if genes is None:
            genes = g
            var = df[["transcript_id(s)", "length"]].rename(columns={"transcript_id(s)": "transcript_ids"})
        elif g != genes:
            raise InputError(f"gene list differs from that of {files[0]}", path=file)
        counts_list.append(values[:, 0])
        tpm_list.append(values[:, 1])
    assert genes is not None
    info = {"tool": "RSEM", "files": [str(f) for f in files]}
    return Parsed(counts=np.vstack(counts_list), obs_names=samples, var_names=genes, var=var,
                  layers={"tpm": np.vstack(tpm_list)}, integer=False, info=info)


# --------------------------------------------------------------------------- htseq-count
HTSEQ_SUFFIXES = (".htseq.counts", ".htseq.txt", ".htseq.tsv", ".htseq", ".counts", ".count", ".txt", ".tsv")


def htseq_sample_name(file: Path) -> str:
    """``S1.htseq.counts`` -> ``S1`` (the usual ``htseq-count ... > S1.counts`` naming)."""
    name = strip_gz(file.name)
    for suffix in HTSEQ_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)].rstrip("._-")
    return name


def read_htseq(path: PathLike | Sequence[PathLike]) -> Parsed:
    """htseq-count output (``gene<TAB>count``, no header), one file per sample.

    The five ``__no_feature``/``__ambiguous``/``__too_low_aQual``/``__not_aligned``/``__alignment_not_unique``
    lines are read counts that were assigned to no gene: dropped from the counts and reported.
    """
    from dormsig.io.shapes import special_rows

    files = [Path(p) for p in path] if isinstance(path, list | tuple) else _sample_files(path, suffixes=HTSEQ_SUFFIXES)
    samples = [htseq_sample_name(f) for f in files]
    check_unique_samples(samples, files[0])
    columns, special = [], {}
    genes: list[str] | None = None
    for sample, file in zip(samples, files, strict=True):
        df = _read_tsv(file, header=None, dtype={0: str})
        if df.shape[1] != 2:
            raise FormatError(f"not htseq-count output: {df.shape[1]} columns, expected 2 (gene, count)", path=file)
        mask = special_rows(df[0].tolist())
        special[sample] = {str(k): int(v) for k, v in zip(df.loc[mask, 0], df.loc[mask, 1], strict=True)}
        body = df.loc[~mask].reset_index(drop=True)
        values = coerce_numeric_frame(body[[1]].set_axis([sample], axis=1), file, first_line=1)
        g = body[0].astype(str).tolist()
        if genes is None:
            genes = g
        elif g != genes:
            raise InputError(f"gene list differs from that of {files[0].name} (another annotation?)", path=file)
        columns.append(values[:, 0])
    assert genes is not None
    totals = {k: sum(v.get(k, 0) for v in special.values()) for k in dict.fromkeys(k for v in special.values() for k in v)}
    decisions = []
    if totals:
        decisions.append(f"dropped {len(totals)} htseq-count summary row(s), not genes ("
                         + ", ".join(f"{k} {v:,}" for k, v in totals.items()) + " reads over all samples)")
    info = {"tool": "htseq-count", "htseq_excluded_rows": special, "files": [str(f) for f in files],
            "decisions": decisions}
    return Parsed(counts=np.vstack(columns), obs_names=samples, var_names=genes, info=info)
