"""The dormancy index as data: which signature scores to combine, with which sign and weight.

An index file (``signatures/index/<name>.yaml``) looks like::

    name: notch2_niche
    version: 2026.11.0
    description: ...
    citation: ...
    components:
      - {set: DORMSIG_HSC_MIMICRY_CORE, sign: 1, weight: 1.0}
      - {set: DORMSIG_PROLIFERATION_CORE, sign: -1, weight: 1.0}

The combination itself (e.g. ``sum(sign * weight * score) / sum(weight)``) is done by the
scoring module; this module only holds and validates the definition.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dormsig.errors import MissingInputError, SignatureError
from dormsig.signatures.model import Library

DEFAULT_INDEX = "notch2_niche"


@dataclass(frozen=True)
class IndexComponent:
    """One signature of an index: its name, sign (+1 up in dormancy, -1 down) and weight (> 0)."""

    set: str
    sign: int
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.set, str) or not self.set:
            raise SignatureError(f"index component: set must be a signature name, got {self.set!r}")
        sign = self.sign
        if isinstance(sign, str) and sign.strip() in ("+", "-", "+1", "-1", "1"):
            sign = -1 if sign.strip().startswith("-") else 1
        if isinstance(sign, bool) or sign not in (1, -1):
            raise SignatureError(f"index component {self.set!r}: sign must be +1 or -1, got {self.sign!r}")
        try:
            weight = float(self.weight)
        except (TypeError, ValueError):
            raise SignatureError(f"index component {self.set!r}: weight must be a number, got {self.weight!r}") from None
        if not math.isfinite(weight) or weight <= 0:
            raise SignatureError(f"index component {self.set!r}: weight must be a positive number, got {self.weight!r}")
        object.__setattr__(self, "sign", int(sign))
        object.__setattr__(self, "weight", weight)


@dataclass(frozen=True)
class DormancyIndex:
    """A named, versioned combination of signature scores."""

    name: str
    version: str
    components: tuple[IndexComponent, ...]
    description: str = ""
    citation: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise SignatureError("dormancy index: name is empty")
        comps = tuple(c if isinstance(c, IndexComponent) else IndexComponent(**dict(c)) for c in self.components)
        if not comps:
            raise SignatureError(f"dormancy index {self.name!r}: no components")
        sets = [c.set for c in comps]
        dups = sorted({s for s in sets if sets.count(s) > 1})
        if dups:
            raise SignatureError(f"dormancy index {self.name!r}: set(s) listed twice: {', '.join(dups)}")
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "version", str(self.version))

    @property
    def sets(self) -> tuple[str, ...]:
        return tuple(c.set for c in self.components)

    def validate(self, library: Library) -> DormancyIndex:
        """Check every component names a signature of ``library``; return ``self``."""
        unknown = [c.set for c in self.components if c.set not in library]
        if unknown:
            raise SignatureError(
                f"dormancy index {self.name!r}: unknown set(s) {', '.join(unknown)}; "
                f"valid names: {', '.join(library)}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "citation": self.citation,
            "components": [{"set": c.set, "sign": c.sign, "weight": c.weight} for c in self.components],
        }


def index_from_dict(doc: Mapping[str, Any], *, where: str = "<dict>") -> DormancyIndex:
    """Build a :class:`DormancyIndex` from its YAML mapping (required: name, version, components)."""
    if not isinstance(doc, Mapping):
        raise SignatureError(f"{where}: an index must be a mapping")
    for key in ("name", "version", "components"):
        if key not in doc:
            raise SignatureError(f"{where}: missing required field {key!r}")
    comps = doc["components"]
    if not isinstance(comps, list):
        raise SignatureError(f"{where}: 'components' must be a list of {{set, sign, weight}}")
    built = []
    for i, comp in enumerate(comps, start=1):
        if not isinstance(comp, Mapping) or "set" not in comp or "sign" not in comp:
            raise SignatureError(f"{where}: component {i} needs 'set' and 'sign' (weight optional)")
        extra = set(comp) - {"set", "sign", "weight"}
        if extra:
            raise SignatureError(f"{where}: component {i} has unknown field(s) {', '.join(sorted(extra))}")
        try:
            built.append(IndexComponent(set=str(comp["set"]), sign=comp["sign"], weight=comp.get("weight", 1.0)))
        except SignatureError as exc:
            raise SignatureError(f"{where}: {exc}") from None
    try:
        return DormancyIndex(
            name=str(doc["name"]),
            version=str(doc["version"]),
            components=tuple(built),
            description=" ".join(str(doc.get("description") or "").split()),
            citation=" ".join(str(doc.get("citation") or "").split()),
        )
    except SignatureError as exc:
        raise SignatureError(f"{where}: {exc}") from None


def _index_dir() -> Path:
    from dormsig.signatures.library import shipped_path

    return shipped_path() / "index"


def list_indices() -> list[str]:
    """Names of the shipped dormancy indices."""
    return sorted(p.stem for p in _index_dir().glob("*.yaml"))


def load_index(
    path_or_name: str | os.PathLike | Mapping[str, Any] | DormancyIndex | None = None,
    *,
    library: Library | None = None,
    validate: bool = True,
) -> DormancyIndex:
    """Load a dormancy index by shipped name, from a YAML file, or from a dict.

    Parameters
    ----------
    path_or_name
        ``None`` for the default (``notch2_niche``), a shipped index name, a YAML path or a dict.
    library
        Library whose set names the components must use (default: the shipped library).
    validate
        Check the component set names against ``library``.
    """
    if isinstance(path_or_name, DormancyIndex):
        index = path_or_name
    elif isinstance(path_or_name, Mapping):
        index = index_from_dict(path_or_name)
    else:
        key = DEFAULT_INDEX if path_or_name is None else path_or_name
        path = Path(key)
        if not path.suffix and not path.exists():
            path = _index_dir() / f"{key}.yaml"
            if not path.is_file():
                raise SignatureError(f"unknown dormancy index {str(key)!r}; shipped: {', '.join(list_indices())}")
        if not path.is_file():
            raise MissingInputError("index file not found", path=path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SignatureError(f"cannot parse YAML: {' '.join(str(exc).split())}", path=path) from None
        index = index_from_dict(doc, where=str(path))
    if validate:
        from dormsig.signatures.library import load_library

        index.validate(load_library() if library is None else library)
    return index
