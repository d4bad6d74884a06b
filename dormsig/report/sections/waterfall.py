"""Ranked dormancy index: the waterfall, the index's evidence, the calls and the calling rule."""

from __future__ import annotations

import json
from collections.abc import Mapping

from dormsig.errors import DormsigError
from dormsig.pl.score_plots import CALL_COLUMN, INDEX_COLUMN, score_frame, waterfall
from dormsig.report._html import absent, e, table
from dormsig.report.context import ReportContext
from dormsig.report.sections.programme import has_scores

ANCHOR, HEADING = "waterfall", "Ranked dormancy index"


def _index_evidence(ctx: ReportContext) -> list[str]:
    """Which index made the calls, and its evidence on labelled public data (from the index YAML)."""
    from dormsig.signatures import load_index

    rec = (ctx.uns.get("score") or {}).get("index")
    if not isinstance(rec, Mapping) or not rec.get("name"):
        return []
    name, version = str(rec["name"]), str(rec.get("version", ""))
    parts = [f"<p>Dormancy index <code>{e(name)}</code> version {e(version)}.</p>"]
    try:
        index = load_index(name)
    except DormsigError:
        index = None
    if index is None or index.evidence is None or index.version != version:
        return parts + [absent(f"no recorded evidence for index {name} {version}")]
    evidence = index.evidence_table()
    cols = [c for c in ("dataset", "target", "role", "metric", "value", "n", "ci95", "proliferation", "wiecek",
                        "wiecek_zscore", "note") if c in evidence.columns]
    if "note" in evidence:  # most rows have none: an empty cell, not "NA"
        evidence["note"] = evidence["note"].fillna("")
    parts.append("<h3>Evidence: agreement with experimentally labelled public data (docs/evidence.md)</h3>")
    parts.append(f"<p>{e(index.evidence.method)} Design: {e(index.evidence.design)}.</p>")
    parts.append(table(evidence[cols], max_rows=max(ctx.max_rows, len(index.evidence.results))))
    return parts


def render(ctx: ReportContext) -> str:
    adata = ctx.adata
    if not has_scores(ctx) or INDEX_COLUMN not in score_frame(adata).columns:
        return absent("no dormancy index: no scoring run (dormsig score)")
    parts = [ctx.figures.figure("waterfall", lambda ax: waterfall(adata, ax=ax), figsize=(9.0, 3.8),
                                caption="Observations ranked by dormancy index, coloured by call")]
    parts.extend(_index_evidence(ctx))
    if CALL_COLUMN not in adata.obs.columns:
        parts.append(absent("no calls: dormsig.tl.rank was not run"))
        return "\n".join(parts)
    counts = adata.obs[CALL_COLUMN].astype(str).value_counts().rename("n").to_frame()
    counts.index.name = "call"
    parts.append(table(counts, max_rows=ctx.max_rows, index=True))
    rule = ctx.uns.get("rank")
    if isinstance(rule, Mapping):
        parts.append("<h3>Calling rule</h3>")
        parts.append(f"<pre>{e(json.dumps(rule, indent=2, sort_keys=True, default=str))}</pre>")
    return "\n".join(parts)
