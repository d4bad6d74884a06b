"""Every path a command touches is declared: an input (read, never written) or an output (written).

:class:`PathPlan` checks each declaration against all the others as it is made, before any work:

- an input exists, is of the expected kind (a file, a directory) and is not an empty file;
- an output is not equal to, inside, or (for a directory output) containing any input, even with
  ``force``; its ``.provenance.json`` sidecar is no input either;
- no two outputs share a path (sidecars included) and no directory output contains another output;
- an existing output is replaced only with ``force``;
- the place of an output can be created and written (checked without creating anything).

Nothing is created by the checks. A failed command calls :meth:`PathPlan.rollback`, which removes
every output it wrote and every directory it created, so an error leaves nothing behind.
Messages name the path as the user typed it and the option it came from (``--out x.gmt: ...``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dormsig.errors import InputError, MissingInputError, OutputError

PROVENANCE_SUFFIX = ".provenance.json"
KINDS = ("file", "dir", "any")


@dataclass
class Entry:
    """One declared path: as typed, resolved, where it came from, and its kind."""

    typed: str
    resolved: Path
    label: str
    kind: str
    sidecar: bool = False
    before: tuple | None = None  # (inode, mtime_ns, size) of an output that existed before the command
    created_dirs: list[Path] = field(default_factory=list)

    def name(self) -> str:
        """``--out x.h5ad`` for an option, ``x.h5ad`` for a positional argument or a library call."""
        return f"{self.label} {self.typed}" if self.label.startswith("-") else self.typed


def _stat(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _resolve(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _same(a: Entry, b: Entry) -> bool:
    if a.resolved == b.resolved:
        return True
    try:  # hard links, bind mounts
        return os.path.samefile(a.resolved, b.resolved)
    except OSError:
        return False


def _inside(inner: Path, outer: Path) -> bool:
    return inner != outer and inner.is_relative_to(outer)


def _first_existing(path: Path) -> Path:
    return next(p for p in (path, *path.parents) if p.exists())


class PathPlan:
    """The declared inputs and outputs of one command, checked as they are declared.

    Parameters
    ----------
    force
        Existing outputs may be replaced.
    cli
        Messages speak of ``--force`` (the command line) instead of ``force=True`` (the library).
    """

    def __init__(self, *, force: bool = False, cli: bool = False) -> None:
        self.force = force
        self.cli = cli
        self.inputs: list[Entry] = []
        self.outputs: list[Entry] = []
        self.containers: list[Entry] = []  # output directories created by this command (removed on failure if empty)

    # ------------------------------------------------------------------ declarations
    def input(self, path: str | os.PathLike, label: str = "", *, kind: str = "any",
              members: Iterable[str | os.PathLike] = ()) -> Path:
        """Declare a path that is read. ``members``: further files it stands for (a 10x matrix's barcodes...)."""
        if kind not in KINDS:  # pragma: no cover - programming error
            raise ValueError(f"kind must be one of {KINDS}")
        typed = os.fspath(path)
        entry = Entry(typed, _resolve(path), label, kind)
        p = Path(path)
        if typed.strip() == "":
            raise InputError(f"{label or 'input'}: empty path")
        if not p.exists():
            raise MissingInputError(f"{entry.name()}: no such file or directory")
        if kind == "file" and p.is_dir():
            raise InputError(f"{entry.name()}: is a directory; a file is expected")
        if kind == "dir" and not p.is_dir():
            raise InputError(f"{entry.name()}: is not a directory")
        if p.is_file():
            if not os.access(p, os.R_OK):
                raise InputError(f"{entry.name()}: file is not readable (permissions)")
            if p.stat().st_size == 0:
                raise InputError(f"{entry.name()}: file is empty")
        new = [entry] + [Entry(os.fspath(m), _resolve(m), label, "any") for m in members if Path(m).exists()]
        for e in new:
            for out in self.outputs:
                self._check_pair(e, out)
            if not any(_same(e, i) for i in self.inputs):
                self.inputs.append(e)
        return p

    def output(self, path: str | os.PathLike, label: str = "", *, kind: str = "file", sidecar: bool = True,
               scratch: bool = False) -> Path:
        """Declare a path that is written (``kind="dir"``: a directory replaced as a whole).

        ``scratch``: the command's own working space (e.g. a staging directory), replaced without
        ``force`` and always removed on failure.
        """
        typed = os.fspath(path)
        if typed.strip() == "":
            raise OutputError(f"{label or 'output'}: empty path")
        p = Path(path)
        resolved = _resolve(path)
        for known in self.outputs:  # the same declaration twice (e.g. the CLI, then the command body)
            if known.resolved == resolved and label in ("", known.label) and known.kind == kind:
                return p
        entry = Entry(typed, resolved, label, kind, sidecar=sidecar)
        for inp in self.inputs:
            self._check_pair(inp, entry)
        for other in self.outputs:
            self._check_outputs(other, entry)
        self._check_place(entry, p, scratch=scratch)
        entry.before = None if scratch else _stat(resolved)
        self.outputs.append(entry)
        return p

    def container(self, path: str | os.PathLike, label: str = "") -> Path:
        """Declare a directory the command writes its (separately declared) outputs into.

        It may exist (earlier runs) and may hold inputs; it must be a directory, or be creatable.
        """
        typed = os.fspath(path)
        if typed.strip() == "":
            raise OutputError(f"{label or 'output'}: empty path")
        p = Path(path)
        entry = Entry(typed, _resolve(path), label, "container", sidecar=False)
        if p.exists() and not p.is_dir():
            raise self._refuse(entry, "exists and is not a directory")
        for inp in self.inputs:
            if _inside(entry.resolved, inp.resolved):
                raise self._refuse(entry, f"is inside an input directory ({inp.name()}); write it elsewhere")
        if not p.exists():
            self._check_place(entry, p)
            entry.before = None
            self.containers.append(entry)
        return p

    # ------------------------------------------------------------------ checks
    def _refuse(self, out: Entry, text: str) -> OutputError:
        return OutputError(f"{out.name()}: {text}")

    def _check_pair(self, inp: Entry, out: Entry) -> None:
        what = f"input{f' ({inp.name()})' if inp.name() != out.name() else ''}"
        if _same(inp, out):
            raise self._refuse(out, f"refusing to overwrite an {what}; choose another path")
        if out.resolved == Path(f"{inp.resolved}{PROVENANCE_SUFFIX}"):
            raise self._refuse(out, f"would overwrite the provenance record of an {what}")
        if out.sidecar and inp.resolved == Path(f"{out.resolved}{PROVENANCE_SUFFIX}"):
            raise self._refuse(out, f"its provenance sidecar would overwrite an {what}")
        if _inside(out.resolved, inp.resolved):
            raise self._refuse(out, f"is inside an input directory ({inp.name()}); write it elsewhere")
        if out.kind == "dir" and _inside(inp.resolved, out.resolved):
            raise self._refuse(out, f"directory would be replaced but holds an {what}")

    def _check_outputs(self, a: Entry, b: Entry) -> None:
        other = a.label or a.typed
        if a.resolved == b.resolved:
            raise self._refuse(b, f"two outputs cannot share a path (it is also {other})")
        if a.sidecar and b.resolved == Path(f"{a.resolved}{PROVENANCE_SUFFIX}"):
            raise self._refuse(b, f"two outputs cannot share a path (it is the provenance sidecar of {other})")
        if b.sidecar and a.resolved == Path(f"{b.resolved}{PROVENANCE_SUFFIX}"):
            raise self._refuse(b, f"two outputs cannot share a path (its provenance sidecar is {other})")
        for outer, inner in ((a, b), (b, a)):
            if outer.kind == "dir" and _inside(inner.resolved, outer.resolved):
                raise self._refuse(inner, f"is inside the output directory {outer.name()}; choose another path")

    def _check_place(self, entry: Entry, p: Path, *, scratch: bool = False) -> None:
        exists = (p.exists() or p.is_symlink()) and not scratch
        if exists and entry.kind == "file" and p.is_dir():
            raise self._refuse(entry, "is a directory; give a file name")
        if exists and entry.kind == "dir" and not p.is_dir():
            raise self._refuse(entry, "exists and is not a directory")
        if exists and not self.force:
            hint = "pass --force to replace it" if self.cli else "pass force=True (CLI: --force) to replace it"
            raise self._refuse(entry, f"output exists; {hint}")
        parent = entry.resolved.parent
        base = _first_existing(parent)
        if not base.is_dir():
            raise self._refuse(entry, f"cannot create output directory: {base} is not a directory")
        where = f"output directory {base}" if base == parent else f"cannot create output directory ({base}"
        close = "" if base == parent else ")"
        if not os.access(base, os.W_OK):
            raise self._refuse(entry, f"{where}{close} is not writable")
        try:  # root passes os.access even where writing fails (/proc, read-only mounts)
            fd, tmp = tempfile.mkstemp(prefix=".dormsig-probe.", suffix=".tmp", dir=base)
        except OSError as exc:
            raise self._refuse(entry, f"{where} is not writable: {exc.strerror}{close}") from None
        os.close(fd)
        os.unlink(tmp)
        entry.created_dirs = [d for d in (parent, *parent.parents) if _inside(d, base)]

    # ------------------------------------------------------------------ after the work
    @property
    def input_paths(self) -> list[Path]:
        return [e.resolved for e in self.inputs]

    def rollback(self) -> None:
        """Remove what the command wrote (outputs, sidecars, temporary files) and the directories it created."""
        for entry in self.outputs:
            targets = [entry.resolved] + ([Path(f"{entry.resolved}{PROVENANCE_SUFFIX}")] if entry.sidecar else [])
            for k, target in enumerate(targets):
                now = _stat(target)
                if now is None:
                    continue
                if k == 0 and entry.before is not None and now == entry.before:
                    continue  # untouched by this command
                if k == 1 and entry.before is not None and _stat(entry.resolved) == entry.before:
                    continue  # the sidecar of an untouched output
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
        made = [d for e in self.outputs + self.containers for d in e.created_dirs]
        made += [e.resolved for e in self.containers]
        dirs = sorted(set(made), key=lambda d: len(d.parts), reverse=True)
        for d in dirs:
            try:
                d.rmdir()  # only when empty: never anything the command did not create
            except OSError:
                pass


def check_output(path: str | os.PathLike, *, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Validate one output path against some inputs before any work starts (creates nothing)."""
    plan = PathPlan(force=force)
    for inp in inputs:
        if Path(inp).exists():
            plan.inputs.append(Entry(os.fspath(inp), _resolve(inp), "", "any"))
    return plan.output(path)
