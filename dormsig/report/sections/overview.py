"""Input summary: the data's shape, the input and gene records, the groups."""

from __future__ import annotations

from collections.abc import Mapping

from dormsig.report._html import absent, e, kv_table, note, table
from dormsig.report.context import ReportContext

ANCHOR, HEADING = "input", "Input summary"


def render(ctx: ReportContext) -> str:
    adata, uns = ctx.adata, ctx.uns
    summary = {
        "observations (samples or cells)": adata.n_obs,
        "genes": adata.n_vars,
        "layers": ", ".join(map(str, adata.layers.keys())) or "none",
    }
    inp = uns.get("input")
    if isinstance(inp, Mapping):
        for key in ("path", "paths", "file", "input", "format", "sha256", "sample_sheet", "sample_sheet_sha256"):
            if key in inp:
                summary[f"input {key}"] = inp[key]
    parts = [kv_table(summary)]
    if isinstance(inp, Mapping):
        parts.append("<h3>Input record</h3>")
        flat = {k: v for k, v in inp.items() if not isinstance(v, Mapping)}
        params = inp.get("params")
        if isinstance(params, Mapping):
            flat.update({f"params.{k}": v for k, v in params.items()})
        parts.append(kv_table(flat))
    else:
        parts.append(absent("no input record (uns['dormsig']['input']): the AnnData was not read by dormsig.io.read"))
    genes = uns.get("genes")
    parts.append("<h3>Gene identifier harmonisation</h3>")
    if isinstance(genes, Mapping):
        flat = {k: v for k, v in genes.items() if not isinstance(v, Mapping)}
        flat.update({f"{k}.{k2}": v2 for k, v in genes.items() if isinstance(v, Mapping) for k2, v2 in v.items()})
        parts.append(kv_table(flat))
    else:
        parts.append(absent("no gene harmonisation record (uns['dormsig']['genes'])"))
    if ctx.groupby is not None:
        counts = adata.obs[ctx.groupby].astype(str).value_counts(sort=False).rename("n").to_frame()
        counts.index.name = ctx.groupby
        parts.append(f"<h3>Groups ({e(ctx.groupby)})</h3>")
        parts.append(table(counts, max_rows=ctx.max_rows, index=True))
        gate = (uns.get("groups") or {}).get("tumour_check") if isinstance(uns.get("groups"), Mapping) else None
        if isinstance(gate, Mapping) and gate.get("applied"):
            parts.append(note(f"{gate.get('n_excluded', 0)} of {gate.get('n_checked', adata.n_obs)} observations hold "
                              "little tumour (epithelial) RNA (EPCAM+KRT8+KRT18+KRT19 < "
                              f"{gate.get('min_cpm', 1000):g} counts per million) and form the group no_tumour_rna: "
                              "they set no threshold and take no part in the contrasts."))
        elif isinstance(gate, Mapping) and gate.get("reason"):
            parts.append(note(f"tumour check not applied to the groups: {gate['reason']}."))
    return "\n".join(parts)
