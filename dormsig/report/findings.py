"""What the data say about the seed's programme, in words (the report's findings section).

:func:`compare_programme` scores each component of the seed's NOTCH2-niche programme (HSC
mimicry, PERK-ATF4-CHOP, CD177, NOTCH2 over NOTCH1, proliferation) in two groups, e.g.
NOTCH2_high vs NOTCH1_high, with a Mann-Whitney test and Cliff's delta; :func:`findings_sentences`
and :func:`findings_html` turn that typed result into sentences and caveats. Rendering does no
computation, so the words can be tested on hand-made results.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig._stats import bh_adjust
from dormsig.errors import InputError
from dormsig.provenance import UNS_KEY

ALPHA = 0.05
#: Above this fraction of observations at a component's lowest value, the component is not assessed.
FLOOR_FRACTION = 0.5


@dataclass(frozen=True)
class Component:
    """One arm of the programme: library sets (with their sign inside the arm) and the seed's direction.

    ``expected`` is +1 when the seed says the arm is higher in dormant (NOTCH2-high) cells, -1 lower.
    """

    label: str
    sets: tuple[tuple[str, int], ...]
    expected: int


#: The seed's programme (Maurizi et al. Bone Res 2026) as library sets.
SEED_PROGRAMME: tuple[Component, ...] = (
    Component("HSC mimicry", (("DORMSIG_HSC_MIMICRY_CORE", 1),), 1),
    Component("PERK-ATF4-CHOP", (("DORMSIG_PERK_ATF4_CHOP_CORE", 1),), 1),
    Component("CD177", (("DORMSIG_CD177_MARKER", 1),), 1),
    Component("NOTCH2 over NOTCH1", (("DORMSIG_NOTCH2_DORMANCY", 1), ("DORMSIG_NOTCH1_CONTRAST", -1)), 1),
    Component("proliferation", (("DORMSIG_PROLIFERATION_CORE", 1),), -1),
)


@dataclass(frozen=True)
class FindingsContext:
    """What the data cannot tell dormsig: where the cells come from, the patient column, the contrast."""

    tissue: str | None = None
    block: str | None = None
    contrast: tuple[str, str] | None = None


@dataclass(frozen=True)
class ComponentResult:
    """One component compared between the test and reference groups."""

    label: str
    expected: int
    genes: tuple[str, ...] = ()
    n_test: int = 0
    n_ref: int = 0
    median_test: float = float("nan")
    median_ref: float = float("nan")
    delta: float = float("nan")  # Cliff's delta, test vs reference (-1..1)
    pvalue: float = float("nan")
    qvalue: float = float("nan")
    floor_fraction: float = float("nan")
    circular: tuple[str, ...] = ()  # grouping genes inside the component
    note: str | None = None  # why it could not be assessed

    @property
    def assessable(self) -> bool:
        return self.note is None and np.isfinite(self.pvalue)


@dataclass(frozen=True)
class ProgrammeComparison:
    """Everything the findings text needs (typed, JSON-able through :meth:`to_dict`)."""

    groupby: str
    test: str
    reference: str
    unit: str  # "cells" or "samples"
    method: str
    results: tuple[ComponentResult, ...]
    grouping_genes: tuple[str, ...] = ()
    block: str | None = None
    blocks_test: int | None = None
    blocks_ref: int | None = None
    tissue: str | None = None
    compartment: str | None = None  # the compartment check's message
    cells: str | None = None  # the selection scoring was restricted to
    alpha: float = ALPHA
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


# ---------------------------------------------------------------------------------------------- compute


def _grouping_genes(adata: AnnData, test: str, reference: str) -> tuple[str, ...]:
    genes = []
    for level in (test, reference):
        for suffix in ("_high", "_low"):
            if level.endswith(suffix) and level[: -len(suffix)] in adata.var_names:
                genes.append(level[: -len(suffix)])
    return tuple(dict.fromkeys(genes))


def _component_scores(adata: AnnData, rows: np.ndarray, components: Sequence[Component]
                      ) -> tuple[pd.DataFrame, dict[str, list[str]], str]:
    """Raw scores of every set of the components on ``rows`` (reused from obsm when scored), genes and method."""
    from dormsig.tl.score import OBSM_KEY, score

    rec = adata.uns.get(UNS_KEY, {}).get("score", {})
    rec = rec if isinstance(rec, Mapping) else {}
    method = str(rec.get("method", "auto"))  # unscored data: score()'s own default
    params = {k: (None if v == "None" else v) for k, v in dict(rec.get("params", {}) or {}).items()}
    stored_genes = rec.get("genes", {})
    if isinstance(stored_genes, str):
        import json

        stored_genes = json.loads(stored_genes)
    names = list(dict.fromkeys(s for c in components for s, _ in c.sets))
    have = adata.obsm[OBSM_KEY] if OBSM_KEY in adata.obsm else pd.DataFrame(index=adata.obs_names)
    reuse = [n for n in names if n in have.columns and isinstance(stored_genes, Mapping) and n in stored_genes]
    frame = pd.DataFrame(index=adata.obs_names[rows])
    genes: dict[str, list[str]] = {}
    for n in reuse:
        frame[n] = have[n].to_numpy()[rows]
        g = stored_genes[n]
        genes[n] = list(g.get("up", [])) + list(g.get("down", [])) if isinstance(g, Mapping) else list(g)
    todo = [n for n in names if n not in reuse]
    if todo:
        from dormsig.signatures import load_library

        library = load_library()
        for n in [n for n in todo if n not in library]:  # a renamed or removed set: reported, not fatal
            frame[n], genes[n] = np.nan, []
        todo = [n for n in todo if n in library]
    if todo:
        layer = params.get("layer")
        X = adata.layers[layer] if layer else adata.X
        tmp = AnnData(X=X[rows] if not hasattr(X, "to_memory") else X[rows],
                      obs=pd.DataFrame(index=adata.obs_names[rows]), var=pd.DataFrame(index=adata.var_names))
        kw = {k: params[k] for k in ("max_rank", "w_neg", "n_up", "centre") if params.get(k) is not None}
        from dormsig.errors import MatchError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # small-set warnings were given when the data were scored
                # the kind of data of the scored run (a subset of rows alone may look like another kind)
                score(tmp, todo, method=method, index=None, seed=int(params.get("seed") or 0),
                      data_kind=str(params.get("data_kind") or "auto"), **kw)
            got, rec2 = tmp.obsm[OBSM_KEY], tmp.uns[UNS_KEY]["score"]["genes"]
            method = str(tmp.uns[UNS_KEY]["score"].get("method", method))
        except MatchError:  # none of the sets has a gene in the data
            got, rec2 = pd.DataFrame(index=tmp.obs_names), {}
        for n in todo:
            frame[n] = got[n].to_numpy() if n in got.columns else np.nan
            g = rec2.get(n, {}) if isinstance(rec2, Mapping) else {}
            genes[n] = list(g.get("up", [])) + list(g.get("down", []))
    return frame, genes, method


def compare_programme(
    adata: AnnData,
    groupby: str,
    test: str,
    reference: str,
    *,
    context: FindingsContext | None = None,
    components: Sequence[Component] = SEED_PROGRAMME,
    alpha: float = ALPHA,
) -> ProgrammeComparison:
    """Compare each component of the seed's programme between ``test`` and ``reference`` groups.

    Scores are the recorded scoring method's (sets not scored yet are scored here the same way);
    observations outside a ``cells=`` selection are left out. Per component: medians, Cliff's delta
    (P(test > reference) - P(test < reference)), two-sided Mann-Whitney p and BH q over the
    components that are neither at their floor nor circular.
    """
    from scipy.stats import mannwhitneyu

    context = context or FindingsContext()
    if groupby not in adata.obs.columns:
        raise InputError(f"AnnData.obs has no column {groupby!r}")
    labels = adata.obs[groupby].astype(str).to_numpy()
    keep = np.isin(labels, [test, reference])
    if "dormsig_scored" in adata.obs.columns:
        keep &= adata.obs["dormsig_scored"].to_numpy(dtype=bool)
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise InputError(f"no observation is {test!r} or {reference!r} in obs[{groupby!r}]")
    frame, genes, method = _component_scores(adata, rows, components)
    is_test = labels[rows] == test
    grouping = _grouping_genes(adata, test, reference)
    raw: list[dict[str, Any]] = []
    for comp in components:
        comp_genes = tuple(dict.fromkeys(g for s, _ in comp.sets for g in genes.get(s, [])))
        values = sum(sign * frame[s].to_numpy(dtype=np.float64) for s, sign in comp.sets) / len(comp.sets)
        res: dict[str, Any] = {"label": comp.label, "expected": comp.expected, "genes": comp_genes,
                               "circular": tuple(g for g in grouping if g in comp_genes)}
        x, y = values[is_test], values[~is_test]
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        res.update(n_test=int(x.size), n_ref=int(y.size))
        if not comp_genes or not np.isfinite(values).any():
            res["note"] = "none of its genes is in the data"
        elif x.size < 2 or y.size < 2:
            res["note"] = f"too few observations ({x.size} vs {y.size})"
        else:
            both = np.concatenate([x, y])
            floor = float(np.mean(both <= both.min() + 1e-12))
            res.update(median_test=float(np.median(x)), median_ref=float(np.median(y)), floor_fraction=floor)
            if np.ptp(both) > 0:
                u = mannwhitneyu(x, y, alternative="two-sided")
                res.update(delta=float(2.0 * u.statistic / (x.size * y.size) - 1.0), pvalue=float(u.pvalue))
            if floor > FLOOR_FRACTION:  # the set follows the few observations where its genes are detected
                res["note"] = (f"its score sits at its lowest value in {round(100 * floor)}% of the "
                               "observations (genes not detected)")
            elif np.ptp(both) == 0:
                res["note"] = "its score is the same in every observation"
        raw.append(res)
    tested = [i for i, r in enumerate(raw) if r.get("note") is None and not r["circular"] and "pvalue" in r]
    q = bh_adjust(np.array([raw[i]["pvalue"] for i in tested])) if tested else np.array([])
    for i, qi in zip(tested, q, strict=True):
        raw[i]["qvalue"] = float(qi)
    results = tuple(ComponentResult(**r) for r in raw)

    block = context.block if context.block and context.block in adata.obs.columns else None
    blocks_test = blocks_ref = None
    if block is not None:
        b = adata.obs[block].astype(str).to_numpy()[rows]
        blocks_test, blocks_ref = int(pd.unique(b[is_test]).size), int(pd.unique(b[~is_test]).size)
    uns = adata.uns.get(UNS_KEY, {})
    comp_rec = uns.get("compartment", {})
    compartment = str(comp_rec.get("message")) if isinstance(comp_rec, Mapping) and comp_rec.get("message") else None
    kind = str(comp_rec.get("kind")) if isinstance(comp_rec, Mapping) and comp_rec.get("kind") else None
    cells_rec = uns.get("score", {}).get("cells") if isinstance(uns.get("score"), Mapping) else None
    cells = None
    if isinstance(cells_rec, Mapping):
        vals = cells_rec.get("values", [])
        vals = [vals] if isinstance(vals, str) else list(vals)
        cells = f"{cells_rec.get('column')}={','.join(map(str, vals))}"
    unit = kind or ("cells" if adata.n_obs > 50 else "samples")
    return ProgrammeComparison(groupby=groupby, test=test, reference=reference, unit=unit, method=method,
                               results=results, grouping_genes=grouping, block=block, blocks_test=blocks_test,
                               blocks_ref=blocks_ref, tissue=context.tissue, compartment=compartment, cells=cells,
                               alpha=alpha)


# ---------------------------------------------------------------------------------------------- words


def _num(v: float) -> str:
    if not np.isfinite(v):
        return "NA"
    return f"{v:.2g}" if abs(v) < 0.01 and v != 0 else f"{v:.2f}"


def _p(v: float) -> str:
    return "NA" if not np.isfinite(v) else (f"{v:.1e}" if v < 0.001 else f"{v:.3f}")


def verdict(r: ComponentResult, alpha: float = ALPHA) -> str:
    """``"as predicted"``, ``"against"``, ``"no detectable difference"``, ``"circular"`` or ``"not assessed"``."""
    if r.note is not None:
        return "not assessed"
    if r.circular:
        return "circular"
    if np.isfinite(r.qvalue) and r.qvalue < alpha and r.delta != 0:
        return "as predicted" if np.sign(r.delta) == r.expected else "against"
    return "no detectable difference"


def _stats(r: ComponentResult, c: ProgrammeComparison) -> str:
    q = f", BH q = {_p(r.qvalue)}" if np.isfinite(r.qvalue) else ""
    return (f"median score {_num(r.median_test)} in {c.test} vs {_num(r.median_ref)} in {c.reference}; "
            f"Cliff's delta {r.delta:+.2f}; Mann-Whitney p = {_p(r.pvalue)}{q}")


def component_sentence(r: ComponentResult, c: ProgrammeComparison) -> str:
    """One sentence per component."""
    predicted = "higher" if r.expected > 0 else "lower"
    v = verdict(r, c.alpha)
    if v == "not assessed":
        shown = ""
        if np.isfinite(r.pvalue):  # at the floor: say what it shows, and why that does not count
            shown = (f"; the difference it shows (Cliff's delta {r.delta:+.2f}, Mann-Whitney p = {_p(r.pvalue)}) "
                     "rests on the few observations where its genes are detected")
        return f"{r.label} could not be assessed: {r.note}{shown}."
    moved = "rose" if r.delta > 0 else "fell"
    if v == "circular":
        return (f"{r.label} {moved} ({_stats(r, c)}), but it contains {' and '.join(r.circular)}, the gene(s) "
                "that define the groups, so the difference is built in and is not evidence.")
    if v == "as predicted":
        return f"{r.label} {moved}, as the seed predicts ({_stats(r, c)})."
    if v == "against":
        return f"{r.label} {moved}, against the seed's prediction ({predicted} in dormant cells; {_stats(r, c)})."
    return (f"{r.label} did not differ detectably (the seed predicts {predicted}; {_stats(r, c)}).")


def summary_sentence(c: ProgrammeComparison) -> str:
    groups: dict[str, list[str]] = {"as predicted": [], "against": [], "no detectable difference": []}
    for r in c.results:
        v = verdict(r, c.alpha)
        if v in groups:
            groups[v].append(r.label)
    n = sum(len(v) for v in groups.values())
    others = [r.label for r in c.results if verdict(r, c.alpha) in ("circular", "not assessed")]
    if n == 0:
        text = "No component of the seed's programme could be assessed without circularity in these data."
    else:
        def names(xs: list[str]) -> str:
            return f" ({', '.join(xs)})" if xs else ""
        text = (f"Of the {n} component{'s' if n != 1 else ''} of the seed's programme that could be assessed "
                "without circularity, "
                f"{len(groups['as predicted'])} moved as the seed predicts{names(groups['as predicted'])}, "
                f"{len(groups['against'])} moved against it{names(groups['against'])} and "
                f"{len(groups['no detectable difference'])} did not differ detectably"
                f"{names(groups['no detectable difference'])} (BH q < {c.alpha:g}).")
    if others:
        text += f" Not counted: {', '.join(others)}."
    return text


def caveat_sentences(c: ProgrammeComparison) -> list[str]:
    """The caveats a reader needs before believing the sentences above."""
    out = []
    check = (c.compartment or "").removeprefix("compartment check: ")
    check = check[:1].upper() + check[1:]
    if c.cells:
        out.append(f"Compartment: only {c.cells} {c.unit} were scored. {check}".strip())
    elif c.compartment:
        out.append(f"Compartment: {check}")
    else:
        out.append("Compartment: no compartment check was run, so immune or stromal cells may be among the "
                   "observations (dormsig.tl.check_compartments).")
    circular = [r for r in c.results if r.circular]
    if circular:
        genes = " and ".join(c.grouping_genes)
        verb = "contains" if len(circular) == 1 else "contain"
        out.append(f"Circular sets: the groups were defined by {genes} expression, and "
                   f"{' and '.join(r.label for r in circular)} {verb} those genes; their differences are built in.")
    n_test = max((r.n_test for r in c.results), default=0)
    n_ref = max((r.n_ref for r in c.results), default=0)
    text = (f"Replicates: the test treats each of the {n_test} + {n_ref} {c.unit} as independent.")
    if c.block:
        text += (f" They come from {c.blocks_test} and {c.blocks_ref} levels of '{c.block}'; {c.unit} of one "
                 f"{c.block} are not independent, so the p-values are too small: read the effect sizes, and check "
                 f"per {c.block} or on pseudobulk.")
    else:
        text += " If several come from one patient, the p-values are too small."
    if min(n_test, n_ref) < 10:
        text += " With so few observations only large differences can be detected: 'did not differ' is weak evidence."
    out.append(text)
    seed = ("the seed described the programme in disseminated tumour cells (DTCs) held dormant in the endosteal "
            "niche of bone (mouse models, MDA-MB-231 cells)")
    if c.tissue:
        out.append(f"Tissue: these are {c.tissue}, not bone-marrow DTCs; {seed}. What holds there need not hold here.")
    else:
        out.append(f"Tissue: dormsig does not know where these {c.unit} come from; {seed}.")
    small = [f"{r.label} ({len(r.genes)} gene{'s' if len(r.genes) != 1 else ''})" for r in c.results
             if 0 < len(r.genes) <= 3 and not r.circular]
    text = f"Scores: {c.method} gene-set scores tell mRNA levels, not protein or function."
    if small:
        text += f" Small sets follow one or two genes: {', '.join(small)} in the data."
    out.append(text)
    return out


def findings_sentences(c: ProgrammeComparison) -> list[str]:
    """The findings as plain sentences: the contrast, one per component, a summary."""
    intro = (f"{c.test} ({max((r.n_test for r in c.results), default=0)} {c.unit}) compared with {c.reference} "
             f"({max((r.n_ref for r in c.results), default=0)} {c.unit}) in '{c.groupby}':")
    return [intro, *(component_sentence(r, c) for r in c.results), summary_sentence(c)]


def findings_table(c: ProgrammeComparison) -> pd.DataFrame:
    rows = []
    for r in c.results:
        rows.append({"component": r.label, "seed predicts": "higher" if r.expected > 0 else "lower",
                     "genes": len(r.genes), f"median {c.test}": r.median_test, f"median {c.reference}": r.median_ref,
                     "Cliff's delta": r.delta, "p": r.pvalue, "BH q": r.qvalue, "verdict": verdict(r, c.alpha)})
    return pd.DataFrame(rows)


def findings_html(c: ProgrammeComparison) -> str:
    """HTML of the findings: sentences, then the caveats (text escaped; no table: the caller adds one)."""
    e = html.escape
    parts = [f"<p>{e(s)}</p>" for s in findings_sentences(c)]
    parts.append("<h3>Caveats</h3>")
    parts.append("<ul>" + "".join(f"<li>{e(s)}</li>" for s in caveat_sentences(c)) + "</ul>")
    return "\n".join(parts)


def infer_contrast(adata: AnnData, groupby: str) -> tuple[str, str] | None:
    """(test, reference) of a group column: NOTCH2_high vs NOTCH1_high, else what ``define_groups`` recorded."""
    levels = set(adata.obs[groupby].astype(str))
    if {"NOTCH2_high", "NOTCH1_high"} <= levels:
        return "NOTCH2_high", "NOTCH1_high"
    rec = adata.uns.get(UNS_KEY, {}).get("groups", {})
    if isinstance(rec, Mapping) and rec.get("key") == groupby and {rec.get("test"), rec.get("reference")} <= levels:
        return str(rec["test"]), str(rec["reference"])
    return None


__all__ = ["SEED_PROGRAMME", "Component", "ComponentResult", "FindingsContext", "ProgrammeComparison",
           "caveat_sentences", "compare_programme", "component_sentence", "findings_html", "findings_sentences",
           "findings_table", "infer_contrast", "summary_sentence", "verdict"]
