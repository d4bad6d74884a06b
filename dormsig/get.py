"""Typed getters: read dormsig's results back from an AnnData or from a run's output directory.

scanpy's ``sc.get`` is the model: every consumer (the report, ``verify``, references, the CLI, the
workflow scripts) reads through these functions instead of guessing record layouts and keys.

>>> import dormsig
>>> dormsig.get.scores(adata)            # obsm scores: one column per set plus the dormancy index
>>> dormsig.get.match_report(adata)      # a MatchReport (present / detected / missing per set)
>>> dormsig.get.rank_rule(adata)         # the calling rule: {"rule": ..., "quantile"/"alpha"/...: ..., "seed": ...}
>>> dormsig.get.score_table(adata)       # the flat table written as scores.tsv
>>> dormsig.get.de_table("results/ctc", "NOTCH2_high_vs_NOTCH1_high")
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig import _keys as K
from dormsig.errors import InputError, MissingInputError
from dormsig.signatures.match import MatchReport

__all__ = [
    "contrasts", "de_table", "enrichment_table", "library_version", "match_report", "provenance", "rank_rule",
    "rule_text", "score_table", "scores",
]

#: Parameters of each calling rule that :func:`dormsig.tl.rank` needs to apply it again.
RULE_PARAMS = {"quantile": ("quantile",), "mixture": (), "permutation": ("n_permutations", "alpha", "n_bins")}


def _adata(data: AnnData | str | os.PathLike) -> AnnData:
    if isinstance(data, AnnData):
        return data
    path = Path(data)
    if path.is_dir():
        path = path / K.SCORED_FILE
    if not path.is_file():
        raise MissingInputError("file not found", path=path)
    import anndata as ad

    return ad.read_h5ad(path)


def provenance(data: AnnData | str | os.PathLike, step: str | None = None) -> dict:
    """The provenance record of ``step`` (all steps when None), from an AnnData or an output's sidecar."""
    if isinstance(data, AnnData):
        uns = data.uns.get(K.UNS, {})
        recs = {k: _plain(v) for k, v in uns.items()}
    else:
        path = Path(data)
        side = path if path.name.endswith(K.PROVENANCE_SUFFIX) else path.with_name(path.name + K.PROVENANCE_SUFFIX)
        if not side.is_file():
            raise MissingInputError(f"no provenance sidecar ({side.name})", path=path)
        recs = json.loads(side.read_text(encoding="utf-8"))
        if step is None:
            return recs
        return recs if recs.get("step") == step else recs.get(step, {})
    return recs if step is None else recs.get(step, {})


def scores(data: AnnData | str | os.PathLike) -> pd.DataFrame:
    """Set scores and the dormancy index (``obsm["dormsig_scores"]``), observations as the index."""
    adata = _adata(data)
    if K.SCORES not in adata.obsm:
        raise InputError("AnnData has no dormsig scores; run dormsig.tl.score first")
    table = pd.DataFrame(adata.obsm[K.SCORES]).copy()
    table.index = adata.obs_names
    return table


def match_report(data: AnnData | str | os.PathLike) -> MatchReport:
    """The match report of the last scoring (present, detected and missing genes of every set)."""
    rec = provenance(_adata(data), K.STEP_SCORE)
    if not rec or "match" not in rec:
        raise InputError("AnnData has no match report; run dormsig.tl.score first")
    match = _plain(rec["match"])
    order = [str(n) for n in (_plain(rec.get("sets")) or []) if str(n) in match.get("sets", {})]
    if order:  # an h5ad stores mappings with sorted keys: restore the scoring's order of sets
        match["sets"] = {n: match["sets"][n] for n in order + sorted(set(match["sets"]) - set(order))}
    return MatchReport.from_dict(match)


def rank_rule(data: AnnData | str | os.PathLike) -> dict[str, Any]:
    """The calling rule of the last :func:`dormsig.tl.rank`: ``{"rule", <its parameters>, "seed"}``.

    What :func:`dormsig.tl.rank` takes to apply the same rule again (references, gathered shards).
    """
    adata = _adata(data)
    rec = provenance(adata, K.STEP_RANK)
    if not rec:
        raise InputError("AnnData has no calling rule; run dormsig.tl.rank first")
    params = dict(rec.get("params", {}))
    rule = str(rec.get("method", params.get("rule", "quantile")))
    out: dict[str, Any] = {"rule": rule}
    for key in RULE_PARAMS.get(rule, ()):
        if params.get(key) is not None and str(params[key]) != "None":
            out[key] = params[key]
    out["seed"] = int(params.get("seed", 0))
    # the tumour check in effect ("epithelial"/"none"), so that a reference re-applies what it did
    if str(params.get("tumour_check", "None")) in ("epithelial", "none"):
        out["tumour_check"] = str(params["tumour_check"])
        out["min_epithelial_cpm"] = float(params.get("min_epithelial_cpm", 1000.0))
    return out


def rule_text(data: AnnData | str | os.PathLike) -> str:
    """The calling rule in one line, for people (empty when nothing was called)."""
    adata = _adata(data)
    rec = provenance(adata, K.STEP_RANK)
    if not rec:
        return ""
    rule = rank_rule(adata)
    where = "the reference" if isinstance(rec.get("reference"), Mapping) else "these samples"
    if rule["rule"] == "quantile":
        text = f"dormant if {K.INDEX} > {float(rec['threshold']):.6g} (quantile {rule.get('quantile')} of {where})"
    elif rule["rule"] == "mixture":
        text = (f"dormant if the high component of a 2-Gaussian mixture fitted on {where} has posterior > 0.5 "
                f"(index > {float(rec['threshold']):.6g}; seed {rule['seed']})")
    else:
        text = (f"dormant if BH-adjusted empirical p < {rule.get('alpha')} against {rule.get('n_permutations')} "
                f"expression-matched random gene sets (seed {rule['seed']})")
    if rule.get("tumour_check") == "epithelial":
        text += f"; only samples with EPCAM+KRT8+KRT18+KRT19 >= {rule['min_epithelial_cpm']:g} CPM are called"
    return text


def score_table(data: AnnData | str | os.PathLike) -> pd.DataFrame:
    """One row per sample/cell, one name per quantity (what ``scores.tsv`` holds).

    Columns: every set score, ``dormancy_index``, then when ranked ``rank_in_batch`` (1 = highest
    among the observations ranked together), ``percentile`` and ``percentile_of`` (``"reference"``
    or ``"batch"``), ``call``, ``call_rule`` and, for the permutation rule, ``call_pvalue`` and
    ``call_padj``.
    """
    adata = _adata(data)
    table = scores(adata)
    ranked = adata.obs.get(K.OBS_INDEX)
    if ranked is not None:
        values = np.asarray(ranked, dtype=np.float64)
        # observations left uncalled (cells=, the tumour check) have no ranked index: compare the others
        ok = np.isfinite(values)
        same = K.INDEX in table and np.allclose(values[ok], table[K.INDEX].to_numpy(np.float64)[ok])
        if not same:  # rank(index=...) ranked on another index than score's: keep it, named apart
            table["ranked_index"] = values
    for col, name in K.TABLE_COLUMNS.items():
        if col in adata.obs:
            table[name] = adata.obs[col].to_numpy()
            if col == K.OBS_PERCENTILE:
                by_reference = isinstance(provenance(adata, K.STEP_RANK).get("reference"), Mapping)
                table["percentile_of"] = "reference" if by_reference else "batch"
    if "call" in table:
        table.insert(table.columns.get_loc("call") + 1, "call_rule", rule_text(adata))
    table.index.name = "sample"
    return table


def library_version(rec: Mapping[str, Any]) -> str | None:
    """The signature library version a provenance record (or sidecar) was made with."""
    for block in (rec, *(v for v in rec.values() if isinstance(v, Mapping))):
        version = block.get("library_version") or block.get("signature_library_version")
        if version and str(version) != "None":
            return str(version)
    return None


def contrasts(outdir: str | os.PathLike) -> list[str]:
    """The contrasts of a run's output directory (one per ``de_<contrast>.tsv``)."""
    prefix, suffix = K.DE_FILE.split("{contrast}")
    return sorted(p.name[len(prefix):-len(suffix)] for p in Path(outdir).glob(K.DE_FILE.format(contrast="*")))


def _result(path: str | os.PathLike, contrast: str | None, pattern: str, kind: str) -> pd.DataFrame:
    from dormsig.io.results import read_result_table

    path = Path(path)
    if path.is_dir():
        found = contrasts(path)
        if contrast is None:
            if len(found) != 1:
                raise InputError(f"{path}: {len(found)} contrasts ({', '.join(found) or 'none'}); name one with contrast=")
            contrast = found[0]
        path = path / pattern.format(contrast=contrast)
    if not path.is_file():
        raise MissingInputError("file not found", path=path)
    return read_result_table(path, kind)


def de_table(path: str | os.PathLike, contrast: str | None = None) -> pd.DataFrame:
    """A DE table written by dormsig (a file, or a run's directory and the contrast's name)."""
    return _result(path, contrast, K.DE_FILE, "de")


def enrichment_table(path: str | os.PathLike, contrast: str | None = None) -> pd.DataFrame:
    """An enrichment table written by dormsig (a file, or a run's directory and the contrast's name)."""
    return _result(path, contrast, K.ENRICHMENT_FILE, "enrichment")


def _plain(value: Any) -> Any:
    """Undo what storing in an h5ad does to a record (arrays, JSON text for nested lists, "None")."""
    if isinstance(value, Mapping):
        return {str(k).replace("%2F", "/"): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str):
        if value == "None":
            return None
        if value[:1] in "[{" and value[-1:] in "]}":
            try:
                return json.loads(value)
            except ValueError:
                return value
    return value
