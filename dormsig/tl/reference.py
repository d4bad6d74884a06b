"""Stored references and flat score tables: what the CLI writes and reads back.

A reference is a scored AnnData reduced to its scores (no expression matrix) plus the calling rule
that was fitted on it. New samples scored against it get their percentile in the reference and a
call made by the same rule, so one sample scored alone gets exactly the numbers it gets in a batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from dormsig.errors import InputError
from dormsig.provenance import UNS_KEY
from dormsig.tl.score import OBSM_KEY

RANK_COLUMNS = ("dormsig_index", "dormsig_rank", "dormsig_percentile", "dormsig_call", "dormsig_pvalue",
                "dormsig_padj")


def rule_text(adata: AnnData) -> str:
    """A one-line, human-readable statement of the rule behind ``obs["dormsig_call"]``."""
    rec = adata.uns.get(UNS_KEY, {}).get("rank")
    if rec is None:
        return ""
    params = rec.get("params", {})
    rule = rec.get("method", params.get("rule"))
    ref = rec.get("reference")
    where = "the reference" if isinstance(ref, dict) else "these samples"
    if rule == "quantile":
        return f"dormant if dormancy_index > {float(rec['threshold']):.6g} (quantile {params.get('quantile')} of {where})"
    if rule == "mixture":
        return (f"dormant if the high component of a 2-Gaussian mixture fitted on {where} has posterior > 0.5 "
                f"(index > {float(rec['threshold']):.6g}; seed {params.get('seed')})")
    return (f"dormant if BH-adjusted empirical p < {params.get('alpha')} against {params.get('n_permutations')} "
            f"expression-matched random gene sets (seed {params.get('seed')})")


def score_table(adata: AnnData) -> pd.DataFrame:
    """One row per sample/cell: every set score, the index, rank, percentile, call and the call's rule."""
    if OBSM_KEY not in adata.obsm:
        raise InputError("AnnData has no dormsig scores; run dormsig.tl.score first")
    table = pd.DataFrame(adata.obsm[OBSM_KEY]).copy()
    table.index = adata.obs_names
    for col in RANK_COLUMNS:
        if col in adata.obs:
            table[col] = adata.obs[col].to_numpy()
    if "dormsig_call" in table:
        table["dormsig_call_rule"] = rule_text(adata)
    table.index.name = "sample"
    return table


def make_reference(adata: AnnData) -> AnnData:
    """Reduce a scored and ranked AnnData to a reference: scores, ranks and the calling rule, no matrix."""
    uns = adata.uns.get(UNS_KEY, {})
    if OBSM_KEY not in adata.obsm or "score" not in uns:
        raise InputError("AnnData has no dormsig scores; run dormsig.tl.score first")
    if "rank" not in uns:
        raise InputError("AnnData has no calling rule; run dormsig.tl.rank first")
    obs = adata.obs[[c for c in RANK_COLUMNS if c in adata.obs]].copy()
    ref = AnnData(X=sp.csr_matrix((adata.n_obs, 0), dtype=np.float32), obs=obs)
    ref.obsm[OBSM_KEY] = pd.DataFrame(adata.obsm[OBSM_KEY]).set_axis(ref.obs_names)
    ref.uns[UNS_KEY] = {"score": uns["score"], "rank": uns["rank"],
                        "reference": {"rule": reference_rule(adata)}}
    return ref


def reference_rule(adata: AnnData) -> dict:
    """The rule parameters stored with a reference (what :func:`rank` needs to apply it again)."""
    rec = adata.uns.get(UNS_KEY, {}).get("rank", {})
    params = dict(rec.get("params", {}))
    rule = str(rec.get("method", params.get("rule", "quantile")))
    out = {"rule": rule, "seed": int(params.get("seed", 0))}
    if rule == "quantile":
        out["quantile"] = float(params.get("quantile", 0.9))
    return out


def rank_against(adata: AnnData, reference: AnnData) -> None:
    """Rank ``adata`` against a stored reference with the rule stored in it."""
    from dormsig.tl.rank import rank

    stored = reference.uns.get(UNS_KEY, {}).get("reference", {}).get("rule")
    rule = dict(stored) if stored is not None else {"rule": "quantile", "quantile": 0.9, "seed": 0}
    if rule["rule"] == "permutation":
        raise InputError("a reference cannot carry the permutation rule (it depends on each sample's genes)")
    rank(adata, reference=reference, **{k: v for k, v in rule.items()})
