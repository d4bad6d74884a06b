"""Atomic writers: a temporary file in the destination directory, then ``os.replace``.

An interrupted run therefore never leaves a partial output, and an existing output is
replaced only when ``force=True``. A writer refuses to overwrite one of the run's inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dormsig.errors import OutputError
from dormsig.provenance import jsonable

PROVENANCE_SUFFIX = ".provenance.json"


def check_output(path: str | os.PathLike, *, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Validate an output path before any work starts; return it as a Path."""
    path = Path(path)
    resolved = path.resolve()
    for inp in inputs:
        if Path(inp).resolve() == resolved:
            raise OutputError("refusing to overwrite an input file", path=path)
    if path.exists() and not force:
        raise OutputError("output exists; pass force=True (CLI: --force) to replace it", path=path)
    parent = resolved.parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output directory ({exc.strerror})", path=parent) from None
    if not os.access(parent, os.W_OK):
        raise OutputError("output directory is not writable", path=parent)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.resolve().parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n")


def write_provenance(output: str | os.PathLike, rec: Any) -> Path:
    """Write ``<output>.provenance.json`` beside an output file."""
    side = Path(f"{os.fspath(output)}{PROVENANCE_SUFFIX}")
    write_json(side, rec)
    return side


def write_h5ad(adata, path: str | os.PathLike, *, compression: str | None = "gzip") -> None:
    """Write an AnnData atomically."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression=compression)


def write_table(df, path: str | os.PathLike, **kwargs: Any) -> None:
    """Write a DataFrame as CSV/TSV (by suffix) atomically."""
    sep = "\t" if str(path).endswith((".tsv", ".tsv.gz", ".txt")) else ","
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep=sep, **kwargs)
