"""The shipped signature library and library directories.

A library directory holds ``library.yaml`` (name, version, set order), ``sources.yaml`` (the
bibliography), ``sets/<NAME>.yaml`` (one file per signature) and ``index/<name>.yaml`` (dormancy
indices). The shipped one is the repository's top-level ``signatures/``, installed inside the
wheel as ``dormsig/_signatures``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import yaml

from dormsig.errors import MissingInputError, SignatureError
from dormsig.signatures.io import parse_sources, signature_from_dict
from dormsig.signatures.model import Library, Source


def shipped_path() -> Path:
    """Directory of the shipped library (wheel: ``dormsig/_signatures``; source tree: ``signatures/``)."""
    import dormsig

    package = Path(dormsig.__file__).resolve().parent
    for candidate in (package / "_signatures", package.parent / "signatures"):
        if (candidate / "library.yaml").is_file():
            return candidate
    raise MissingInputError(f"the shipped signature library is missing (looked in {package / '_signatures'} and "
                            f"{package.parent / 'signatures'}); reinstall dormsig")


def _load_yaml(path: Path):
    if not path.is_file():
        raise MissingInputError("file not found", path=path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SignatureError(f"cannot parse YAML: {' '.join(str(exc).split())}", path=path) from None


def read_library_dir(path: str | os.PathLike) -> Library:
    """Read a library directory (``library.yaml``, ``sources.yaml``, ``sets/*.yaml``) strictly.

    Every file in ``sets/`` must be listed in ``library.yaml`` and vice versa, and each file's
    ``name`` must equal its file name, so that a forgotten or renamed file is caught.
    """
    path = Path(path)
    meta = _load_yaml(path / "library.yaml")
    for key in ("name", "version", "sets"):
        if not isinstance(meta, dict) or key not in meta:
            raise SignatureError(f"missing required field {key!r}", path=path / "library.yaml")
    sources = parse_sources(_load_yaml(path / "sources.yaml") or {}, where=str(path / "sources.yaml"))
    files = {p.stem: p for p in sorted((path / "sets").glob("*.yaml"))}
    listed = [str(n) for n in meta["sets"]]
    unlisted = sorted(set(files) - set(listed))
    if unlisted:
        raise SignatureError(f"set file(s) not listed in library.yaml: {', '.join(unlisted)}", path=path / "sets")
    sigs = []
    for name in listed:
        if name not in files:
            raise SignatureError(f"set {name!r} is listed in library.yaml but sets/{name}.yaml is missing", path=path)
        file = files[name]
        doc = _load_yaml(file)
        sig = signature_from_dict(doc, where=str(file), bibliography=sources, strict=True)
        if sig.name != name:
            raise SignatureError(f"name {sig.name!r} differs from the file name {name!r}", path=file)
        sigs.append(sig)
    return Library(sigs, version=str(meta["version"]), name=str(meta["name"]), sources=sources, path=str(path))


@functools.lru_cache(maxsize=1)
def _shipped_library() -> Library:
    return read_library_dir(shipped_path())


def shipped_sources() -> dict[str, Source]:
    """The shipped bibliography (key -> Source)."""
    return dict(_shipped_sources())


@functools.lru_cache(maxsize=1)
def _shipped_sources() -> dict[str, Source]:
    file = shipped_path() / "sources.yaml"
    return parse_sources(_load_yaml(file) or {}, where=str(file))


def load_library(path: str | os.PathLike | None = None) -> Library:
    """Load the shipped library (default) or any signature file/directory.

    Parameters
    ----------
    path
        ``None`` for the shipped library; else a library directory or a GMT/GMX/YAML/JSON file
        (see :func:`dormsig.signatures.read_signatures`).

    Returns
    -------
    Library
        Immutable; the shipped library is cached after the first call.
    """
    if path is None:
        return _shipped_library()
    from dormsig.signatures.io import read_signatures

    return read_signatures(path)


def show(name: str, library: Library | None = None, *, width: int = 100) -> str:
    """Text rendering of one signature (genes, directions, evidence, citations) for ``dormsig signatures show``."""
    lib = load_library() if library is None else library
    return lib.show(name, width=width)
