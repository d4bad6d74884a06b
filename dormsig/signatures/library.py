"""The shipped signature library and library directories.

A library directory holds ``library.yaml`` (name, version, set order), ``sources.yaml`` (the
bibliography), ``sets/<NAME>.yaml`` (one file per signature) and ``index/<name>.yaml`` (dormancy
indices). The shipped one is the repository's top-level ``signatures/``, installed inside the
wheel as ``dormsig/_signatures``.
"""

from __future__ import annotations

import functools
import os

from dormsig.signatures.io import read_library_dir, read_signatures
from dormsig.signatures.model import Library
from dormsig.signatures.sources import shipped_path, shipped_sources

__all__ = ["load_library", "read_library_dir", "shipped_path", "shipped_sources", "show"]


@functools.lru_cache(maxsize=1)
def _shipped_library() -> Library:
    return read_library_dir(shipped_path())


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
    return read_signatures(path)


def show(name: str, library: Library | None = None, *, width: int = 100) -> str:
    """Text rendering of one signature (genes, directions, evidence, citations) for ``dormsig signatures show``."""
    lib = load_library() if library is None else library
    return lib.show(name, width=width)
