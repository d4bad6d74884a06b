"""One normaliser for every way a user can name gene sets: :func:`as_library`.

Every consumer (``tl.score``, ``de.enrich``, ``signatures.match``, the CLI's ``--signatures``,
the pipeline's config) turns its ``signatures`` argument into a :class:`Library` here, so that
they all accept the same forms and read them the same way.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dormsig.errors import MissingInputError, SignatureError
from dormsig.signatures.model import Library, Signature

#: Suffixes that make a string a file name rather than a set name.
_FILE_SUFFIXES = (".gmt", ".gmx", ".yaml", ".yml", ".json", ".txt", ".tsv", ".csv")


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.lower().endswith(_FILE_SUFFIXES)


def _shipped_subset(names: list[str]) -> Library:
    from dormsig.signatures.library import load_library

    lib = load_library()
    unknown = [n for n in names if n not in lib]
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise SignatureError(f"unknown signature name(s) {shown}: not in the shipped library {lib.version} "
                             "(see 'dormsig signatures list') and not an existing file")
    return lib.select(names)


def _in_key_order(lib: Library, keys: list) -> Library:
    """The dict reader puts flat sets before structured ones: restore the caller's order."""
    from dormsig.signatures.io import _SUFFIX

    order: dict[str, int] = {}
    for i, key in enumerate(map(str, keys)):
        m = _SUFFIX.match(key)
        order.setdefault(m.group("stem") if m and m.group("stem") in lib else key, i)
    names = sorted(lib, key=lambda n: order.get(n, len(order)))
    return Library([lib[n] for n in names], version=lib.version, name=lib.name, sources=lib.sources, path=lib.path)


def as_library(spec: Any = None, *, species: str | None = None) -> Library:
    """Turn any documented signature specification into a :class:`Library`.

    Parameters
    ----------
    spec
        - ``None``: the shipped library;
        - a :class:`Library` (returned as is) or a :class:`Signature`;
        - a path (``str`` or ``PathLike``) to a GMT, GMX, YAML or JSON file or a library directory;
        - shipped set names: one name, ``"A,B"`` (as the CLI's ``--signatures``) or a list of names;
        - ``{name: [genes]}`` (``<NAME>_UP``/``<NAME>_DN`` keys are merged into one signature, as in GMT);
        - ``{name: {"up": [...], "down": [...]}}`` (and any other signature field);
        - ``{name: Signature}``, a list of :class:`Signature` or a parsed YAML/JSON document.
    species
        Species of user sets that do not say (default: detected from their genes).

    Returns
    -------
    Library

    Raises
    ------
    MissingInputError
        A string that looks like a file name (has a ``/`` or a signature-file suffix) does not exist.
    SignatureError
        Unknown set names, or a specification of no known form.
    """
    from dormsig.signatures.io import read_signatures
    from dormsig.signatures.library import load_library

    if spec is None:
        return load_library()
    if isinstance(spec, Library):
        return spec
    if isinstance(spec, Signature):
        return Library([spec])
    if isinstance(spec, os.PathLike):
        path = Path(spec)
        if not path.exists():
            raise MissingInputError("signature file not found", path=path)
        return read_signatures(path, species=species)
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise SignatureError("empty signature specification; give set names or a GMT/YAML/JSON file")
        if Path(text).exists():
            return read_signatures(Path(text), species=species)
        if _looks_like_path(text):
            raise MissingInputError("signature file not found", path=text)
        return _shipped_subset([n.strip() for n in text.split(",") if n.strip()])
    if isinstance(spec, Mapping):
        if spec and all(isinstance(v, Signature) for v in spec.values()):
            return Library([v if v.name == str(k) else dataclasses.replace(v, name=str(k)) for k, v in spec.items()])
        return _in_key_order(read_signatures(dict(spec), species=species), list(spec))
    if isinstance(spec, Iterable) and not isinstance(spec, bytes):
        items = list(spec)
        if not items:
            raise SignatureError("no signatures given (empty list)")
        if all(isinstance(s, Signature) for s in items):
            return Library(items)
        if all(isinstance(s, str | os.PathLike) for s in items):
            if len(items) == 1:
                return as_library(items[0], species=species)
            if all(isinstance(s, str) and not Path(s).exists() and not _looks_like_path(s) for s in items):
                return _shipped_subset([s.strip() for s in items])
            # Several files (or files and names): one library of all their sets.
            sigs = [sig for item in items for sig in as_library(item, species=species).values()]
            return Library(sigs, name="+".join(Path(str(i)).name for i in items))
        return read_signatures(items, species=species)
    raise SignatureError(f"cannot read signatures from a {type(spec).__name__}; give set names, a file, "
                         "a Library or a dict {name: genes}")
