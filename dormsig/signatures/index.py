"""The dormancy index as data: which signature scores to combine, with which sign and weight.

An index file (``signatures/index/<name>.yaml``) looks like::

    name: quiescence
    version: 2026.12.0
    description: ...
    citation: ...
    components:
      - {set: DORMSIG_PROLIFERATION_CORE, sign: -1, weight: 1.0}
      - {set: WIECEK2023_G0_ARREST_UPREGULATED, sign: 1, weight: 0.5}
    evidence:                      # optional; written by benchmarks/validate_indices.py --write
      computed_by: benchmarks/validate_indices.py
      method: ...
      results:
        - {dataset: gse83142_lrc, metric: auroc, value: 0.79, n: 48, proliferation: 0.71, wiecek: 0.71,
           wiecek_zscore: 0.93}

The combination itself (e.g. ``sum(sign * weight * score) / sum(weight)``) is done by the
scoring module; this module only holds and validates the definition and its evidence.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dormsig.errors import MissingInputError, SignatureError
from dormsig.signatures.model import Library

# The index with evidence (docs/evidence.md) is the default.
DEFAULT_INDEX = "quiescence"


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
class EvidenceRow:
    """One result of an index on a labelled dataset (higher = agrees with the label)."""

    dataset: str
    metric: str
    value: float | None
    n: int
    target: str = ""
    role: str = ""
    ci95: tuple[float, float] | None = None
    proliferation: float | None = None
    wiecek: float | None = None
    wiecek_zscore: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dataset": self.dataset, "metric": self.metric, "value": self.value, "n": self.n}
        for key in ("target", "role", "note"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.ci95 is not None:
            out["ci95"] = list(self.ci95)
        for key in ("proliferation", "wiecek", "wiecek_zscore"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


_ROW_FIELDS = ("dataset", "metric", "value", "n", "target", "role", "ci95", "proliferation", "wiecek", "wiecek_zscore",
               "note")


@dataclass(frozen=True)
class IndexEvidence:
    """How well an index agreed with experimentally labelled data, and how that was measured."""

    results: tuple[EvidenceRow, ...]
    computed_by: str = ""
    method: str = ""
    data: str = ""
    library_version: str = ""
    design: str = ""

    def to_frame(self):
        """The results as a DataFrame (one row per dataset and metric)."""
        import pandas as pd

        rows = []
        for r in self.results:
            d = r.to_dict()
            d["ci95"] = "" if r.ci95 is None else f"{r.ci95[0]:.3f}-{r.ci95[1]:.3f}"
            rows.append(d)
        cols = [c for c in _ROW_FIELDS if any(c in d for d in rows)]
        return pd.DataFrame(rows, columns=cols)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in ("computed_by", "method", "data", "library_version",
                                                              "design") if getattr(self, k)}
        out["results"] = [r.to_dict() for r in self.results]
        return out


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SignatureError(f"{what} must be a number, got {value!r}") from None
    return out if math.isfinite(out) else None


def evidence_from_dict(doc: Mapping[str, Any], *, where: str = "<dict>") -> IndexEvidence:
    """Parse an index's ``evidence:`` block (``results`` is a list of {dataset, metric, value, n, ...})."""
    if not isinstance(doc, Mapping):
        raise SignatureError(f"{where}: 'evidence' must be a mapping with a 'results' list")
    results = doc.get("results")
    if not isinstance(results, list) or not results:
        raise SignatureError(f"{where}: 'evidence' needs a non-empty 'results' list")
    rows = []
    for i, item in enumerate(results, start=1):
        what = f"{where}: evidence result {i}"
        if not isinstance(item, Mapping) or not {"dataset", "metric", "value", "n"} <= set(item):
            raise SignatureError(f"{what} needs dataset, metric, value and n")
        extra = set(item) - set(_ROW_FIELDS)
        if extra:
            raise SignatureError(f"{what} has unknown field(s) {', '.join(sorted(extra))}")
        if item["metric"] not in ("auroc", "spearman"):
            raise SignatureError(f"{what}: metric must be auroc or spearman, got {item['metric']!r}")
        ci = item.get("ci95")
        if ci is not None:
            if not isinstance(ci, list | tuple) or len(ci) != 2:
                raise SignatureError(f"{what}: ci95 must be [low, high]")
            ci = (_number(ci[0], f"{what} ci95"), _number(ci[1], f"{what} ci95"))
        try:
            n = int(item["n"])
        except (TypeError, ValueError):
            raise SignatureError(f"{what}: n must be an integer, got {item['n']!r}") from None
        rows.append(EvidenceRow(
            dataset=str(item["dataset"]), metric=str(item["metric"]), value=_number(item["value"], f"{what} value"),
            n=n, target=str(item.get("target") or ""), role=str(item.get("role") or ""), ci95=ci,
            proliferation=_number(item.get("proliferation"), f"{what} proliferation"),
            wiecek=_number(item.get("wiecek"), f"{what} wiecek"),
            wiecek_zscore=_number(item.get("wiecek_zscore"), f"{what} wiecek_zscore"), note=" ".join(str(item.get("note") or "").split()),
        ))
    meta = {k: " ".join(str(doc.get(k) or "").split()) for k in ("computed_by", "method", "data", "library_version",
                                                                  "design")}
    return IndexEvidence(results=tuple(rows), **meta)


@dataclass(frozen=True)
class DormancyIndex:
    """A named, versioned combination of signature scores."""

    name: str
    version: str
    components: tuple[IndexComponent, ...]
    description: str = ""
    citation: str = ""
    evidence: IndexEvidence | None = field(default=None, compare=False)

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

    def evidence_table(self):
        """The evidence results as a DataFrame (empty when the index has no evidence block)."""
        import pandas as pd

        return pd.DataFrame() if self.evidence is None else self.evidence.to_frame()

    def overlaps(self, library: Library) -> dict[tuple[str, str], tuple[str, ...]]:
        """Genes shared by two components (``{(set_a, set_b): genes}``); empty when the components are disjoint."""
        genes = {c.set: set(library[c.set].genes) for c in self.components}
        out = {}
        for i, a in enumerate(self.sets):
            for b in self.sets[i + 1:]:
                shared = genes[a] & genes[b]
                if shared:
                    out[(a, b)] = tuple(sorted(shared))
        return out

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
        out = {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "citation": self.citation,
            "components": [{"set": c.set, "sign": c.sign, "weight": c.weight} for c in self.components],
        }
        if self.evidence is not None:
            out["evidence"] = self.evidence.to_dict()
        return out


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
    evidence = evidence_from_dict(doc["evidence"], where=where) if doc.get("evidence") is not None else None
    try:
        return DormancyIndex(
            name=str(doc["name"]),
            version=str(doc["version"]),
            components=tuple(built),
            description=" ".join(str(doc.get("description") or "").split()),
            citation=" ".join(str(doc.get("citation") or "").split()),
            evidence=evidence,
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
        ``None`` for the default (``quiescence``, the index with evidence), a shipped index name, a
        YAML path or a dict.
    library
        Library whose set names the components must use (default: the shipped library).
    validate
        Check the component set names against ``library``.

    Returns
    -------
    The :class:`DormancyIndex`; ``index.evidence`` holds its ``evidence:`` block (results on labelled
    datasets, see docs/evidence.md) or ``None``.
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
