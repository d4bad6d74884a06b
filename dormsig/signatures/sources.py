"""The bibliography of signatures (``sources.yaml``) and where the shipped library lives.

The lowest room of :mod:`dormsig.signatures`: the readers (:mod:`~dormsig.signatures.io`) resolve
source keys against the shipped bibliography, and the library (:mod:`~dormsig.signatures.library`)
reads its directory, both through here, so neither needs the other.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dormsig.errors import MissingInputError, SignatureError
from dormsig.signatures.model import Source


def parse_sources(doc: Mapping[str, Any], *, where: str) -> dict[str, Source]:
    """A bibliography mapping (key -> {citation, doi, pmid, url, note, licence}) into Sources."""
    if not isinstance(doc, Mapping):
        raise SignatureError(f"{where}: sources must be a mapping of key -> entry")
    out = {}
    for key, entry in doc.items():
        if isinstance(entry, str):
            entry = {"citation": entry}
        if not isinstance(entry, Mapping) or not (entry.get("citation") or entry.get("cite")):
            raise SignatureError(f"{where}: source {key!r} needs a 'citation'")
        out[str(key)] = Source(
            key=str(key),
            citation=str(entry.get("citation") or entry.get("cite")),
            doi=_opt(entry.get("doi")),
            pmid=_opt(entry.get("pmid")),
            url=_opt(entry.get("url")),
            note=_opt(entry.get("note")),
            licence=_opt(entry.get("licence") or entry.get("license")),
        )
    return out


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def shipped_path() -> Path:
    """Directory of the shipped library (wheel: ``dormsig/_signatures``; source tree: ``signatures/``)."""
    package = Path(__file__).resolve().parents[1]
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


def shipped_sources() -> dict[str, Source]:
    """The shipped bibliography (key -> Source)."""
    return dict(_shipped_sources())


@functools.lru_cache(maxsize=1)
def _shipped_sources() -> dict[str, Source]:
    file = shipped_path() / "sources.yaml"
    return parse_sources(_load_yaml(file) or {}, where=str(file))
