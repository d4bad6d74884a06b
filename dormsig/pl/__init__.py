"""Plots: each takes ``ax=``, returns the axes and never calls ``plt.show()``.

- DE (:mod:`dormsig.pl.de`): ``volcano``, ``ma``, ``heatmap``, ``running_sum``
- scores (:mod:`dormsig.pl.scores`): ``scores``, ``waterfall``

Functions are loaded on first access so that importing one family does not import the other.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "volcano": "de",
    "ma": "de",
    "heatmap": "de",
    "running_sum": "de",
    "scores": "scores",
    "waterfall": "scores",
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
