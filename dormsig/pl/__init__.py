"""Plots: each takes ``ax=``, returns the axes and never calls ``plt.show()``.

- DE (:mod:`dormsig.pl.de_plots`): ``volcano``, ``ma``, ``pvalue_histogram``, ``heatmap``, ``running_sum``
- scores (:mod:`dormsig.pl.score_plots`): ``scores``, ``waterfall``, ``match_coverage``
- signature genes (:mod:`dormsig.pl.gene_heatmap`): ``signature_heatmap`` (observations x genes,
  sets marked) and ``heatmap_genes`` (its rows, and the genes left out)

Functions are loaded on first access so that importing one family does not import the other.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "volcano": "de_plots",
    "ma": "de_plots",
    "pvalue_histogram": "de_plots",
    "heatmap": "de_plots",
    "running_sum": "de_plots",
    "scores": "score_plots",
    "waterfall": "score_plots",
    "match_coverage": "score_plots",
    "signature_heatmap": "gene_heatmap",
    "heatmap_genes": "gene_heatmap",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"dormsig.pl.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dormsig.pl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
