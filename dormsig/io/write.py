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
    if path.is_dir():
        raise OutputError("output path is a directory", path=path)
    parent = resolved.parent
    blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        # e.g. out/x.h5ad where "out" is a regular file: mkdir and mkstemp would fail later
        raise OutputError(f"cannot create output directory: {blocker} is not a directory", path=parent)
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output directory ({exc.strerror})", path=parent) from None
    if not os.access(parent, os.W_OK):
        raise OutputError("output directory is not writable", path=parent)
    _probe_writable(parent)
    return path


def _probe_writable(directory: Path) -> None:
    """Create and remove a hidden file: root passes ``os.access`` even where writing fails (/proc, read-only mounts)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dormsig-probe.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"output directory is not writable ({exc.strerror})", path=directory) from None
    os.close(fd)
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.resolve().parent)
    except OSError as exc:
        raise OutputError(f"cannot write output ({exc.strerror})", path=path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file 0600; a finished output gets the usual permissions (umask applied)
        os.chmod(tmp_path, 0o666 & ~_umask())
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


class OutputSet:
    """The outputs of one step: each checked before the work starts, each given a provenance sidecar after.

    Parameters
    ----------
    step
        Name recorded in the sidecars (e.g. ``"cli.score"``).
    params
        Parameters of the step.
    inputs
        Input paths (``None`` entries are ignored); their sha256 is computed up front and recorded,
        and no output may overwrite one of them.
    force
        Replace existing outputs.
    """

    def __init__(self, step: str, params: dict[str, Any], inputs: Iterable[str | os.PathLike | None], *,
                 force: bool = False) -> None:
        from dormsig.errors import MissingInputError
        from dormsig.provenance import command_line, sha256

        self.step = step
        self.params = params
        self.force = force
        self.inputs = [Path(p) for p in inputs if p is not None]
        for p in self.inputs:
            if not p.exists():
                raise MissingInputError("no such file or directory", path=p)
        # Absolute paths, so that `dormsig verify` works from any directory.
        self.input_sha = {str(p.resolve()): sha256(p) for p in self.inputs}
        self.command_line = command_line()
        self.paths: list[Path] = []
        self.extra: dict[str, Any] = {}

    def add(self, path: str | os.PathLike | None) -> Path | None:
        """Register (and check) an output path; ``None`` passes through."""
        if path is None:
            return None
        p = check_output(path, force=self.force, inputs=self.inputs)
        self.paths.append(p)
        return p

    def finish(self) -> list[Path]:
        """Write ``<output>.provenance.json`` beside every output that now exists."""
        from dormsig.provenance import record, sha256

        sides = []
        for p in self.paths:
            if not p.exists():
                continue
            rec = record(self.step, params=self.params, command_line=self.command_line, inputs=self.input_sha,
                         output={"path": str(p.resolve()), "sha256": sha256(p)}, **self.extra)
            sides.append(write_provenance(p, rec))
        return sides
