"""The curated dormancy signature library: model, I/O, matching to data, the dormancy index.

Quick start::

    from dormsig.signatures import load_library, match, load_index

    lib = load_library()                      # the shipped library (top-level signatures/)
    report = match(lib, adata.var_names, on_empty="warn")
    up, down = report.matched("WIECEK2023_G0_ARREST")
    index = load_index()                      # quiescence: components (set, sign, weight), evidence

A signature is one programme with ``up`` and ``down`` parts; its ``direction`` says how the
programme relates to dormancy (see :mod:`dormsig.signatures.model`).
"""

from dormsig.signatures.index import (
    DormancyIndex,
    EvidenceRow,
    IndexComponent,
    IndexEvidence,
    list_indices,
    load_index,
)
from dormsig.signatures.io import gmt_lines, read_gmt, read_gmx, read_signatures, write_gmt
from dormsig.signatures.library import load_library, shipped_path, show
from dormsig.signatures.match import MatchReport, MatchWarning, PartMatch, SetMatch, match
from dormsig.signatures.model import DIRECTIONS, GeneEvidence, Library, Signature, Source
from dormsig.signatures.spec import as_library

__all__ = [
    "DIRECTIONS",
    "DormancyIndex",
    "EvidenceRow",
    "GeneEvidence",
    "IndexComponent",
    "IndexEvidence",
    "Library",
    "MatchReport",
    "MatchWarning",
    "PartMatch",
    "SetMatch",
    "Signature",
    "Source",
    "as_library",
    "gmt_lines",
    "list_indices",
    "load_index",
    "load_library",
    "match",
    "read_gmt",
    "read_gmx",
    "read_signatures",
    "shipped_path",
    "show",
    "write_gmt",
]
