"""Method metadata records, kept in one place.

Each scoring method lives in its own module under :mod:`dormsig.tl.methods` and exposes
``INFO`` (a :class:`MethodInfo`) and ``compute(source, sets, **params)``. The registry maps
method names to those modules and imports a module only when it is asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from types import ModuleType

from dormsig.errors import InputError


@dataclass(frozen=True)
class MethodInfo:
    """What a scoring method is and how its scores may be read.

    Attributes
    ----------
    name
        Registry name (``method=`` in :func:`dormsig.tl.score`).
    citation
        Short citation of the method's paper.
    doi
        DOI of that paper.
    score_range
        Theoretical range of a set score (signed sets included), ``None`` when unbounded.
    cohort_dependent
        ``True`` when a sample's score changes with the other samples scored alongside it.
    signed
        ``True`` when up/down sets are scored natively; how they combine is in ``signed_rule``.
    single_sample
        ``True`` when each sample is scored from its own profile only.
    signed_rule
        How the up and down parts are combined.
    notes
        Conventions (ties, zeros, defaults) a reader needs to reproduce the numbers.
    """

    name: str
    citation: str
    doi: str
    score_range: tuple[float, float] | None
    cohort_dependent: bool
    signed: bool
    single_sample: bool
    signed_rule: str
    notes: str = ""
    extra_outputs: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """A JSON-able copy (for provenance)."""
        out = asdict(self)
        out["score_range"] = None if self.score_range is None else list(self.score_range)
        out["extra_outputs"] = list(self.extra_outputs)
        return out


#: method name -> module under dormsig.tl.methods
_MODULES: dict[str, str] = {
    "ucell": "ucell",
    "aucell": "aucell",
    "singscore": "singscore",
    "scanpy": "scanpy_score",
    "ssgsea": "ssgsea",
    "gsva": "gsva",
    "zmean": "zmean",
}

#: methods that score each sample from its own profile (the default family)
SINGLE_SAMPLE = ("ucell", "aucell", "singscore")

#: UCell's rank cap on single cells (the UCell/pyUCell default: about the genes a cell detects).
UCELL_MAX_RANK_SINGLE_CELL = 1500

#: ``method="auto"``: the method for each kind of data (see :func:`dormsig.tl._data.profile`) and why.
DEFAULT_METHOD = {
    "single_cell": (
        "ucell",
        "single cells: UCell ranks each cell's detected genes up to max_rank=1500 (UCell's default); "
        "undetected genes tie at the bottom, so dropouts do not shift the scores",
    ),
    "bulk": (
        "singscore",
        "bulk: singscore ranks all genes of each sample (no cap) and adds its up and down parts without "
        "clipping; UCell's single-cell cap put 3-4 gene sets at 0 in 27-28 of the 29 CTC samples, and "
        "UCell's max(0, up - down) puts signed sets at 0 (G0 arrest in 9 of 29 even uncapped)",
    ),
}


def default_method(kind: str) -> tuple[str, str]:
    """``(method, reason)`` used by ``method="auto"`` for ``"bulk"`` or ``"single_cell"`` data."""
    return DEFAULT_METHOD[kind]


def default_max_rank(kind: str, n_genes: int) -> tuple[int, str]:
    """UCell's ``max_rank`` when not given: 1500 on single cells, every gene on bulk samples."""
    if kind == "bulk":
        return int(n_genes), (f"bulk: max_rank = number of genes ({n_genes}); a sample expresses most genes, "
                              "and a cap would tie every gene ranked below it with the undetected ones")
    return UCELL_MAX_RANK_SINGLE_CELL, "single cells: UCell's default max_rank (1500)"


def available() -> list[str]:
    """Names of all registered methods."""
    return list(_MODULES)


def module(name: str) -> ModuleType:
    """The module implementing method ``name``."""
    if name not in _MODULES:
        raise InputError(f"unknown scoring method {name!r}; choose one of auto, {', '.join(_MODULES)}")
    return importlib.import_module(f"dormsig.tl.methods.{_MODULES[name]}")


def info(name: str) -> MethodInfo:
    """The metadata record of method ``name``."""
    return module(name).INFO


def table() -> list[dict]:
    """All metadata records as dicts (for documentation and the report)."""
    return [info(n).to_dict() for n in _MODULES]
