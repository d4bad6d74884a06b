"""Where the dormant calls fall: non-tumour compartments among the calls (dormsig.tl.check_compartments)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from dormsig.report._html import absent, e, fmt, kv_table, table
from dormsig.report.context import ReportContext
from dormsig.tl.epithelial import OFF_ADVICE, OFF_ADVICE_ANY

ANCHOR, HEADING = "compartment", "Where the dormant calls fall"


def render(ctx: ReportContext) -> str:
    rec = ctx.uns.get("compartment")
    if not isinstance(rec, Mapping):
        return absent("no compartment check (dormsig.tl.check_compartments)")
    parts = [f"<p>{e(rec.get('message', ''))}</p>"]
    epi = ctx.uns.get("epithelial")
    if isinstance(epi, Mapping) and epi.get("message"):
        css = "warn" if epi.get("n_low") else "note"
        parts.append(f'<p class="{css}">{e(str(epi["message"]).replace(OFF_ADVICE, OFF_ADVICE_ANY))}</p>')
    comps = rec.get("compartments") or []
    calls, overall, anchor = rec.get("calls") or {}, rec.get("overall") or {}, rec.get("calls_anchor") or {}
    rows = [{"compartment": c.get("label"), "family": c.get("family"), "dormant calls": calls.get(c.get("label"), 0),
             "anchor+ calls": f"{anchor.get(c.get('label'), 0)} ({c.get('anchor')}+)",
             "all observations": overall.get(c.get("label"), 0),
             "markers needed": f"{c.get('needed')} of {len(c.get('markers') or [])}", "markers": c.get("markers")}
            for c in comps if isinstance(c, Mapping)]
    if rows:
        parts.append(table(pd.DataFrame(rows), max_rows=ctx.max_rows))
    skipped = rec.get("skipped") or {}
    if isinstance(skipped, Mapping) and skipped:
        parts.append(kv_table({f"not checked: {k}": v for k, v in skipped.items()}))
    params = rec.get("params") or {}
    parts.append('<p class="note">A marker counts as expressed at &ge; '
                 f'{e(fmt(params.get("min_cpm")))} counts per million of the observation\'s library; an observation '
                 'carries a compartment label when it expresses at least half of that compartment\'s markers. '
                 'Marker sets: signatures/compartments/ (one citation per gene).</p>')
    return "\n".join(parts)
