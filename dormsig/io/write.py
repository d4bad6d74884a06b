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

from dormsig._paths import PROVENANCE_SUFFIX, PathPlan, check_output
from dormsig.errors import OutputError
from dormsig.provenance import jsonable

__all__ = ["PROVENANCE_SUFFIX", "OutputSet", "atomic_path", "check_output", "write_h5ad", "write_json",
           "write_provenance", "write_table", "write_text"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The output's directory is created here, when there is something to write (checked earlier by
    :class:`~dormsig.io.paths.PathPlan`, which creates nothing).
    """
    path = Path(path)
    try:
        path.resolve().parent.mkdir(parents=True, exist_ok=True)
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
        and no output may be equal to, inside or contain one of them.
    force
        Replace existing outputs.
    plan
        The :class:`~dormsig.io.paths.PathPlan` the inputs and outputs are declared in (the CLI's,
        with the option names); a new one otherwise.
    recorded
        The inputs whose checksums the sidecars record (default: every input declared in the plan).

    Used as a context manager, an exception inside the block removes every output written so far
    (and directories created for them): a step writes all its outputs or none.
    """

    def __init__(self, step: str, params: dict[str, Any], inputs: Iterable[str | os.PathLike | None] = (), *,
                 force: bool = False, plan: PathPlan | None = None,
                 recorded: Iterable[str | os.PathLike] | None = None) -> None:
        from dormsig.provenance import command_line

        self.step = step
        self.params = params
        self.force = force if plan is None else plan.force
        self.plan = plan if plan is not None else PathPlan(force=force)
        for p in inputs:
            if p is not None:
                self.plan.input(p)
        self.command_line = command_line()
        self.paths: list[Path] = []
        self.extra: dict[str, Any] = {}
        self._input_sha: dict[str, str] = {}
        # the inputs named in the sidecars: all declared ones, or those given (one dataset of a run)
        self._recorded = None if recorded is None else {str(Path(p).resolve()) for p in recorded}
        _ = self.input_sha  # hashed up front: the record describes the inputs as they were read

    @property
    def inputs(self) -> list[Path]:
        return [Path(e.typed) for e in self.plan.inputs]

    @property
    def input_sha(self) -> dict[str, str]:
        """sha256 of every declared input (absolute paths, so that `dormsig verify` works from anywhere)."""
        from dormsig.provenance import sha256

        for e in self.plan.inputs:
            key = str(Path(e.typed).resolve())
            if self._recorded is not None and key not in self._recorded:
                continue
            if key not in self._input_sha:
                self._input_sha[key] = sha256(e.typed)
        return dict(self._input_sha)

    def add(self, path: str | os.PathLike | None, label: str = "", *, kind: str = "file") -> Path | None:
        """Register (and check) an output path; ``None`` passes through."""
        if path is None:
            return None
        p = self.plan.output(path, label, kind=kind, sidecar=kind == "file")
        if kind == "file" and p not in self.paths:
            self.paths.append(p)
        return p

    def finish(self) -> list[Path]:
        """Write ``<output>.provenance.json`` beside every output that now exists."""
        from dormsig.provenance import record, sha256

        sides = []
        inputs = self.input_sha
        for p in self.paths:
            if not p.exists():
                continue
            rec = record(self.step, params=self.params, command_line=self.command_line, inputs=inputs,
                         output={"path": str(p.resolve()), "sha256": sha256(p)}, **self.extra)
            sides.append(write_provenance(p, rec))
        return sides

    def rollback(self) -> None:
        """Remove what was written (see :meth:`dormsig.io.paths.PathPlan.rollback`)."""
        self.plan.rollback()

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.rollback()
