"""The self-contained HTML report: :func:`write_report`."""

from dormsig.report.html import SECTIONS, write_report

__all__ = ["SECTIONS", "write_report"]
