"""The self-contained HTML report: :func:`write_report`, built from a registry of sections.

- :mod:`dormsig.report.context`: :class:`ReportContext`, the typed inputs of every section
- :mod:`dormsig.report.sections`: one module per section, listed in ``sections.MODULES``
- :mod:`dormsig.report.findings`: the programme comparison, in words
- :mod:`dormsig.report.write`: :func:`write_report`
"""

from __future__ import annotations

from dormsig.report.context import ReportContext
from dormsig.report.sections import registry
from dormsig.report.write import write_report

#: (anchor, heading) of every section, in order.
SECTIONS: tuple[tuple[str, str], ...] = tuple((s.anchor, s.heading) for s in registry())

__all__ = ["SECTIONS", "ReportContext", "write_report"]
