"""Format detection: from a file's name and first lines, or a directory's contents; never a guess.

:func:`detect_format` returns one of :data:`FORMATS` or raises :class:`~dormsig.errors.FormatError`
naming the path and what was seen.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from dormsig.errors import FormatError, InputError, MissingInputError

#: Formats :func:`dormsig.io.read` understands.
FORMATS = ("table", "featurecounts", "star", "htseq", "salmon", "kallisto", "rsem", "10x_mtx", "10x_h5", "h5ad",
           "loom")
#: Formats with one file per sample (a list of files or a directory of them).
PER_SAMPLE = ("star", "htseq", "salmon", "kallisto", "rsem")

#: Accepted spellings of ``format=``.
ALIASES = {
    "csv": "table", "tsv": "table", "txt": "table", "delimited": "table",
    "featurecount": "featurecounts", "subread": "featurecounts",
    "star_readspergene": "star", "readspergene": "star",
    "quant.sf": "salmon", "abundance.tsv": "kallisto", "rsem_genes": "rsem", "htseq-count": "htseq",
    "htseq_count": "htseq",
    "10x": "10x_mtx", "mtx": "10x_mtx", "10x_mtx": "10x_mtx", "h5": "10x_h5", "10x_h5": "10x_h5",
    "anndata": "h5ad",
}

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".counts", ".matrix")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
GZIP_MAGIC = b"\x1f\x8b"

STAR_SPECIAL = ("N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous")
SALMON_HEADER = ["Name", "Length", "EffectiveLength", "TPM", "NumReads"]
KALLISTO_HEADER = ["target_id", "length", "eff_length", "est_counts", "tpm"]
FEATURECOUNTS_HEADER = ["Geneid", "Chr", "Start", "End", "Strand", "Length"]
RSEM_HEADER_START = ["gene_id", "transcript_id(s)"]
RSEM_ISOFORMS_START = ["transcript_id", "gene_id"]

# errors raised by gzip/zlib when a .gz is truncated or corrupt
GZ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)

#: Default limit on the uncompressed size of a delimited text table (1 GiB). Text tables are parsed
#: whole into memory (several times their size); larger data belong in .h5ad or 10x .mtx.
MAX_TABLE_BYTES = 1 << 30
MAX_TABLE_ENV = "DORMSIG_MAX_TABLE_BYTES"


def max_table_bytes(value: int | None = None) -> int:
    """The limit in force: ``value`` if given, else ``$DORMSIG_MAX_TABLE_BYTES``, else :data:`MAX_TABLE_BYTES`."""
    if value is not None:
        return int(value)
    raw = os.environ.get(MAX_TABLE_ENV, "").strip()
    if not raw:
        return MAX_TABLE_BYTES
    try:
        limit = int(float(raw))
    except ValueError:
        raise InputError(f"environment variable {MAX_TABLE_ENV}={raw!r} is not a number of bytes") from None
    if limit <= 0:
        raise InputError(f"environment variable {MAX_TABLE_ENV}={raw!r} must be a positive number of bytes")
    return limit


def _human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def uncompressed_size(path: str | os.PathLike) -> int:
    """Size of a file's text: its size, or for gzip the ISIZE trailer (size mod 2**32, unwrapped).

    ISIZE stores the uncompressed size modulo 4 GiB; since text compresses, the uncompressed size
    is at least the compressed one, which tells how many times it wrapped (an estimate, enough for a limit).
    """
    path = Path(path)
    size = path.stat().st_size
    if not is_gzip(path) or size < 18:
        return size
    with open(path, "rb") as handle:
        handle.seek(-4, os.SEEK_END)
        isize = int.from_bytes(handle.read(4), "little")
    while isize < size:
        isize += 1 << 32
    return isize


def _streamed_size(path: Path, stop_after: int) -> int:
    """Decompress and count up to ``stop_after`` bytes (memory: one 1 MiB block)."""
    total = 0
    try:
        with gzip.open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                total += len(block)
                if total > stop_after:
                    break
    except GZ_ERRORS as exc:
        raise InputError(f"truncated or corrupt gzip file ({exc})", path=path) from None
    return total


def check_table_size(path: str | os.PathLike, limit: int | None = None) -> int:
    """Refuse a text table whose (uncompressed) size is above the limit; return its size (or an estimate).

    For gzip the ISIZE trailer is only trusted below the limit: a truncated file ends in arbitrary
    bytes, so an ISIZE above the limit is confirmed by decompressing (at most ``limit`` bytes).
    """
    limit = max_table_bytes(limit)
    path = Path(path)
    size = uncompressed_size(path)
    if size > limit and is_gzip(path):
        streamed = _streamed_size(path, limit)  # raises on a truncated/corrupt stream
        if streamed <= limit:
            return streamed
        size = max(size, streamed)
    if size > limit:
        raise InputError(
            f"table is {_human_bytes(size)}, above the {_human_bytes(limit)} limit for text tables; convert it"
            f" to .h5ad / 10x .mtx (e.g. with scanpy) or raise the limit with {MAX_TABLE_ENV}",
            path=path,
        )
    return size


def normalise_format(fmt: str) -> str:
    key = fmt.strip().lower()
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return key


def strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


@contextmanager
def open_text(path: str | os.PathLike) -> Iterator[IO[str]]:
    """Open a text file, gunzipping when it starts with the gzip magic; wrap decoding errors."""
    path = Path(path)
    try:
        if is_gzip(path):
            handle: IO[str] = gzip.open(path, "rt", encoding="utf-8-sig", newline="")
        else:
            handle = open(path, encoding="utf-8-sig", newline="")
        with handle:
            yield handle
    except GZ_ERRORS as exc:
        raise InputError(f"truncated or corrupt gzip file ({exc})", path=path) from None
    except UnicodeDecodeError:
        raise FormatError("not a UTF-8 text file (binary or unknown format)", path=path) from None


def head_lines(path: str | os.PathLike, n: int = 5) -> list[str]:
    """The first ``n`` lines (without line endings) of a possibly gzipped text file."""
    lines: list[str] = []
    with open_text(path) as handle:
        for line in handle:
            lines.append(line.rstrip("\r\n"))
            if len(lines) >= n:
                break
    return lines


def check_exists(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingInputError("no such file or directory", path=path)
    return path


#: Files a 10x matrix.mtx is read with (its directory's other members).
TENX_MEMBERS = ("barcodes.tsv", "features.tsv", "genes.tsv")


def input_members(path: str | os.PathLike) -> list[Path]:
    """The other files reading ``path`` reads too (a 10x ``matrix.mtx``'s barcodes and features).

    A directory needs no list: everything inside it is protected as an input.
    """
    path = Path(path)
    if path.is_file() and strip_gz(path.name.lower()).endswith("matrix.mtx"):
        return [path.parent / f"{name}{gz}" for name in TENX_MEMBERS for gz in ("", ".gz")
                if (path.parent / f"{name}{gz}").exists()]
    return []


def _sniff_header(lines: list[str]) -> str | None:
    """Recognise a tool's output from its first lines; ``None`` if nothing specific."""
    content = [ln for ln in lines if ln.strip()]
    if not content:
        return None
    first = content[0]
    if first.startswith("# Program:featureCounts"):
        return "featurecounts"
    fields = first.split("\t")
    if fields[:6] == FEATURECOUNTS_HEADER:
        return "featurecounts"
    if fields == SALMON_HEADER:
        return "salmon"
    if fields == KALLISTO_HEADER:
        return "kallisto"
    if fields[:2] == RSEM_HEADER_START:
        return "rsem"
    if fields[:2] == RSEM_ISOFORMS_START:
        return "rsem_isoforms"
    if _looks_htseq(content):
        return "htseq"
    if fields[0] in STAR_SPECIAL and len(fields) == 4:
        return "star"
    return None


def _looks_htseq(lines: list[str]) -> bool:
    """``gene<TAB>integer`` on every line and no header: htseq-count output."""
    rows = [ln.split("\t") for ln in lines if ln.strip()]
    return bool(rows) and all(len(r) == 2 and r[1].strip().isdigit() and r[0].strip() for r in rows)


def _refuse_transcripts(path: Path) -> None:
    raise FormatError("RSEM per-transcript output (isoforms.results): read the sample's .genes.results instead"
                      " (format='rsem')", path=path)


def _detect_file(path: Path) -> str:
    name = path.name
    lower = strip_gz(name.lower())
    if path.stat().st_size == 0:
        raise InputError("file is empty", path=path)
    if lower.endswith("readspergene.out.tab"):
        return "star"
    if lower == "quant.sf" or lower.endswith(".quant.sf"):
        return "salmon"
    if lower.endswith(".genes.results"):
        return "rsem"
    if lower.endswith(".isoforms.results"):
        _refuse_transcripts(path)
    if lower.endswith((".h5ad", ".loom")):
        named = "h5ad" if lower.endswith(".h5ad") else "loom"
        with open(path, "rb") as handle:
            magic = handle.read(8)
        if magic != HDF5_MAGIC:
            raise InputError(f"not an HDF5 file, so not a .{named} (corrupt, truncated or renamed?)", path=path)
        try:
            held = _detect_hdf5(path)
        except (InputError, FormatError):
            return named  # truncated or foreign: the reader says what is wrong with it
        if held != named:
            raise FormatError(f"named .{named} but holds a {held} file; rename it or pass format='{held}'", path=path)
        return named
    if lower.endswith(".mtx"):
        return "10x_mtx"
    with open(path, "rb") as handle:
        magic = handle.read(8)
    if magic == HDF5_MAGIC or lower.endswith((".h5", ".hdf5")):
        if magic != HDF5_MAGIC:
            raise InputError("not an HDF5 file (corrupt or truncated?)", path=path)
        return _detect_hdf5(path)
    lines = head_lines(path, 5)
    if not any(ln.strip() for ln in lines):
        raise InputError("file is empty", path=path)
    sniffed = _sniff_header(lines)
    if sniffed == "rsem_isoforms":
        _refuse_transcripts(path)
    if sniffed:
        return sniffed
    if lower.endswith(TABLE_SUFFIXES) or lower == "abundance.tsv":
        return "table"
    # An unusual extension: accept it as a table only when the lines are clearly delimited.
    if any(sep in lines[0] for sep in ("\t", ",")) and not lower.endswith(
        (".bam", ".sam", ".xlsx", ".xls", ".rds", ".rda", ".pdf", ".fastq", ".fq", ".gtf", ".gff")
    ):
        return "table"
    raise FormatError(f"unknown format (extension {Path(lower).suffix or 'none'!r}); pass format=", path=path)


def _detect_hdf5(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            keys = set(handle.keys())
            if {"matrix", "row_attrs", "col_attrs"} <= keys:
                return "loom"
            if {"matrix"} <= keys or any(
                isinstance(handle[k], h5py.Group) and {"data", "indices", "indptr", "barcodes"} <= set(handle[k].keys())
                for k in keys
            ):
                return "10x_h5"
            if {"X", "obs", "var"} <= keys:
                return "h5ad"
    except OSError as exc:
        raise InputError(f"cannot open HDF5 file ({exc})", path=path) from None
    raise FormatError(f"HDF5 file is neither 10x, h5ad nor loom (groups: {sorted(keys)[:6]})", path=path)


def _detect_dir(path: Path) -> str:
    names = {p.name for p in path.iterdir()}
    if "matrix.mtx" in names or "matrix.mtx.gz" in names:
        return "10x_mtx"
    if "quant.sf" in names or "quant.sf.gz" in names:
        return "salmon"
    if "abundance.tsv" in names or "abundance.tsv.gz" in names:
        return "kallisto"
    found = set()
    for p in sorted(path.iterdir()):
        if p.is_file():
            low = strip_gz(p.name.lower())
            if low.endswith("readspergene.out.tab"):
                found.add("star")
            elif low.endswith(".genes.results"):
                found.add("rsem")
        elif p.is_dir():
            sub = {strip_gz(q.name) for q in p.iterdir() if q.is_file()}
            if "quant.sf" in sub:
                found.add("salmon")
            if "abundance.tsv" in sub:
                found.add("kallisto")
            if any(n.lower().endswith("readspergene.out.tab") for n in sub):
                found.add("star")  # one subdirectory per sample (STAR --outFileNamePrefix S1/)
            if any(n.endswith(".genes.results") for n in sub):
                found.add("rsem")
    if not found:
        files = [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]
        if files and all(_looks_htseq(head_lines(p, 5)) for p in files):
            found.add("htseq")
    if len(found) == 1:
        return found.pop()
    if len(found) > 1:
        raise FormatError(f"directory mixes several formats ({', '.join(sorted(found))}); pass format=", path=path)
    raise FormatError(
        "directory holds no recognised input (10x matrix.mtx, quant.sf, abundance.tsv, *ReadsPerGene.out.tab,"
        " *.genes.results)",
        path=path,
    )


def detect_format(path: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    """Detect the format of a file, a directory or a list of per-sample files.

    Raises
    ------
    MissingInputError
        A path does not exist.
    FormatError
        The format cannot be told (or differs between the files of a list).
    """
    if isinstance(path, list | tuple):
        if not path:
            raise InputError("empty list of input files")
        formats = {detect_format(p) for p in path}
        if len(formats) > 1:
            raise FormatError(f"the files of the list have different formats ({', '.join(sorted(formats))})",
                              path=path[0])
        fmt = formats.pop()
        if fmt not in PER_SAMPLE:
            raise FormatError(f"a list of files is supported only for per-sample formats, not {fmt}", path=path[0])
        return fmt
    path = check_exists(path)
    if path.is_dir():
        return _detect_dir(path)
    return _detect_file(path)

