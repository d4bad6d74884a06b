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

from dormsig import _keys as K
from dormsig import get
from dormsig.errors import InputError
from dormsig.provenance import UNS_KEY
from dormsig.tl.score import OBSM_KEY

RANK_COLUMNS = K.RANK_COLUMNS
rule_text = get.rule_text
score_table = get.score_table


def make_reference(adata: AnnData) -> AnnData:
    """Reduce a scored and ranked AnnData to a reference: scores, ranks and the calling rule, no matrix."""
    uns = adata.uns.get(UNS_KEY, {})
    if OBSM_KEY not in adata.obsm or "score" not in uns:
        raise InputError("AnnData has no dormsig scores; run dormsig.tl.score first")
    if "rank" not in uns:
        raise InputError("AnnData has no calling rule; run dormsig.tl.rank first")
    check_calls(adata, advice="a reference needs calls on both sides: use another rule or a varied cohort")
    obs = adata.obs[[c for c in RANK_COLUMNS if c in adata.obs]].copy()
    ref = AnnData(X=sp.csr_matrix((adata.n_obs, 0), dtype=np.float32), obs=obs)
    ref.obsm[OBSM_KEY] = pd.DataFrame(adata.obsm[OBSM_KEY]).set_axis(ref.obs_names)
    ref.uns[UNS_KEY] = {"score": uns["score"], "rank": uns["rank"],
                        "reference": {"rule": reference_rule(adata)}}
    return ref


def check_calls(adata: AnnData, what: str = "", *, advice: str = "use another rule or data that vary more") -> None:
    """Refuse calls that cannot mean anything: a constant dormancy index, or every sample (or none) dormant.

    A rule fitted on data that do not separate (all-zero counts, one sample repeated) puts the
    threshold where every sample is on one side; every sample later placed in such a reference
    would inherit the same call.
    """
    index = np.asarray(adata.obs["dormsig_index"], dtype=np.float64) if "dormsig_index" in adata.obs else None
    calls = adata.obs["dormsig_call"].astype(str).to_numpy() if "dormsig_call" in adata.obs else None
    where = f"{what}: " if what else ""
    if index is None or calls is None:
        raise InputError(f"{where}no dormancy calls; rank first (dormsig.tl.rank)")
    rec = adata.uns.get(UNS_KEY, {}).get("rank", {})
    rule = rec.get("method", "?") if isinstance(rec, dict) else "?"
    finite = index[np.isfinite(index)]
    if finite.size == 0:
        raise InputError(f"{where}the dormancy index is not finite in any sample (a set without genes?)")
    if np.ptp(finite) == 0:
        raise InputError(f"{where}the dormancy index is {finite[0]:.6g} in all {finite.size} samples (all-zero or"
                         f" identical data?): no rule can call dormancy; {advice}")
    n_dormant = int((calls == "dormant").sum())
    if n_dormant in (0, calls.size):
        threshold = rec.get("threshold") if isinstance(rec, dict) else None
        at = f" (threshold {float(threshold):.3g})" if isinstance(threshold, int | float) else ""
        raise InputError(f"{where}rule {rule!r} calls {'all' if n_dormant else 'none'} of {calls.size} samples dormant"
                         f"{at}: it separates nothing; {advice}")


def reference_rule(adata: AnnData) -> dict:
    """The rule parameters stored with a reference (what :func:`rank` needs to apply it again)."""
    rule = get.rank_rule(adata)
    if rule["rule"] == "quantile":
        rule["quantile"] = float(rule.get("quantile", 0.9))
    return rule


def rank_against(adata: AnnData, reference: AnnData, *, source: str = "reference", tumour_check: str | None = None,
                 min_epithelial_cpm: float | None = None) -> None:
    """Rank ``adata`` against a stored reference with the rule stored in it (``source`` names it in messages).

    The tumour check is the one the reference was built with (``"auto"`` for references that predate
    it), unless ``tumour_check`` is given: a single platelet-rich sample is then left uncalled against a
    reference of tumour samples, as it would have been inside the reference cohort.
    """
    from dormsig.tl.rank import rank

    if "dormsig_call" in reference.obs:  # a reference built before references were checked
        check_calls(reference, source, advice="rebuild the reference from a varied cohort")
    stored = reference.uns.get(UNS_KEY, {}).get("reference", {}).get("rule")
    rule = dict(stored) if stored is not None else {"rule": "quantile", "quantile": 0.9, "seed": 0}
    if rule["rule"] == "permutation":
        raise InputError("a reference cannot carry the permutation rule (it depends on each sample's genes)")
    if tumour_check is not None:
        rule["tumour_check"] = tumour_check
    if min_epithelial_cpm is not None and "min_epithelial_cpm" not in rule:
        rule["min_epithelial_cpm"] = min_epithelial_cpm
    rank(adata, reference=reference, **{k: v for k, v in rule.items()})
