"""Provenance: the dormsig version, every step's record in uns["dormsig"] and the run's extra record."""

from __future__ import annotations

import json
from typing import Any

from dormsig._version import __version__
from dormsig.provenance import jsonable
from dormsig.report._html import e
from dormsig.report.context import ReportContext

ANCHOR, HEADING = "provenance", "Provenance"


def render(ctx: ReportContext) -> str:
    doc: dict[str, Any] = {"dormsig_version": __version__, "uns['dormsig']": ctx.uns}
    if ctx.provenance:
        doc["run"] = dict(ctx.provenance)
    text = json.dumps(jsonable(doc), indent=2, sort_keys=True, default=str)
    return f"<p>dormsig version <code>{e(__version__)}</code>.</p>\n<pre>{e(text)}</pre>"
