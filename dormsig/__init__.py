"""dormsig: find dormant breast-cancer cells in RNA-seq data.

Namespaces (imported lazily so that ``import dormsig`` stays cheap):

- :mod:`dormsig.io`: readers into AnnData and atomic writers
- :mod:`dormsig.genes`: gene-identifier detection, alias/Ensembl mapping, orthologs
- :mod:`dormsig.pp`: preprocessing (normalisation, identifier harmonisation)
- :mod:`dormsig.signatures`: the curated gene-set library, matching, the dormancy index
- :mod:`dormsig.tl`: scoring and ranking
- :mod:`dormsig.de`: groups, pseudobulk, DESeq2 and enrichment
- :mod:`dormsig.pl`: plots (each takes ``ax=`` and returns it)
- :mod:`dormsig.report`: the HTML report
- :mod:`dormsig.get`: read results back (scores, match report, calling rule, DE and enrichment tables)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from dormsig._version import __version__
from dormsig.errors import DormsigError

_NAMESPACES = ("io", "genes", "pp", "signatures", "tl", "de", "pl", "report", "get", "data", "provenance", "errors")

__all__ = ["__version__", "DormsigError", *_NAMESPACES]

if TYPE_CHECKING:  # pragma: no cover
    from dormsig import data, de, genes, get, io, pl, pp, provenance, report, signatures, tl  # noqa: F401


def __getattr__(name: str):
    # Lazy namespaces: the heavy imports (scanpy, pydeseq2, numba) happen on first use.
    if name in _NAMESPACES:
        module = importlib.import_module(f"dormsig.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'dormsig' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
