"""Provenance, built in one place and attached by every writer.

A provenance record is a plain JSON-able dict. In AnnData it lives under
``adata.uns["dormsig"][<step>]``; beside an output file it is written as
``<output>.provenance.json``. Records hold no timestamps so that the same input gives
byte-identical results.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dormsig import _keys as K
from dormsig._version import __version__

UNS_KEY = K.UNS


def sha256(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file (or of every file under a directory, in sorted order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            while block := handle.read(chunk_size):
                digest.update(block)
    return digest.hexdigest()


def record(step: str, *, method: str | None = None, params: Mapping[str, Any] | None = None, **extra: Any) -> dict:
    """A provenance record for one step: dormsig version, step, method and parameters."""
    out: dict[str, Any] = {"dormsig_version": __version__, "step": step}
    if method is not None:
        out["method"] = method
    out["params"] = dict(params or {})
    out.update(extra)
    return jsonable(out)


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths, tuples and sets into JSON-able Python objects."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def _h5ad_safe(value: Any) -> Any:
    """anndata cannot store None, empty lists or lists of dicts in ``uns``; encode them."""
    if isinstance(value, Mapping):
        # "/" in an HDF5 key would create nested groups (file paths as keys): percent-encode it.
        return {str(k).replace("/", "%2F"): _h5ad_safe(v) for k, v in value.items()}
    if value is None:
        return "None"
    if isinstance(value, list):
        if not value:
            return np.array([], dtype=str)
        if all(isinstance(v, str) for v in value):
            return np.array(value, dtype=object)
        if all(isinstance(v, bool | int | float) and not isinstance(v, bool) for v in value):
            return np.asarray(value)
        return json.dumps(value)  # nested or mixed lists: keep them readable as JSON text
    return value


def attach(adata, step: str, rec: Mapping[str, Any]) -> None:
    """Store a provenance record in ``adata.uns["dormsig"][step]`` (h5ad-safe)."""
    uns = adata.uns.setdefault(UNS_KEY, {})
    uns[step] = _h5ad_safe(jsonable(rec))


def command_line() -> list[str]:
    """The command line of this process, as recorded in provenance sidecars."""
    return [Path(sys.argv[0]).name, *sys.argv[1:]]
