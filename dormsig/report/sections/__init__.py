"""The report's sections, in order: one module per section, listed once in :data:`MODULES`.

A section module defines ``ANCHOR`` (the HTML id), ``HEADING`` and ``render(ctx) -> str``, which
takes the typed :class:`dormsig.report.context.ReportContext` and returns the section's HTML
(the writer adds ``<section>`` and the heading). A section whose input is missing says so in its
body; it is never left out, so that a reader can tell "not run" from "nothing found".

Adding a section: write ``dormsig/report/sections/<name>.py`` and add ``"<name>"`` to
:data:`MODULES` where it should appear.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from dormsig.report.context import ReportContext

#: Section modules in report order.
MODULES: tuple[str, ...] = (
    "overview",
    "programme",
    "signatures",
    "scores",
    "waterfall",
    "compartment",
    "heatmap",
    "de",
    "de_diagnostics",
    "de_compartments",
    "enrichment",
    "provenance",
)


@dataclass(frozen=True)
class Section:
    anchor: str
    heading: str
    render: Callable[[ReportContext], str]


@cache
def registry() -> tuple[Section, ...]:
    """Every section, in report order."""
    out = []
    for name in MODULES:
        mod = importlib.import_module(f"{__name__}.{name}")
        out.append(Section(mod.ANCHOR, mod.HEADING, mod.render))
    anchors = [s.anchor for s in out]
    if len(set(anchors)) != len(anchors):
        raise RuntimeError(f"report sections share an anchor: {anchors}")
    return tuple(out)
