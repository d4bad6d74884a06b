"""Does an observation hold tumour (epithelial) RNA? The tumour check of the calls.

A low proliferation score also fits samples that hold no tumour RNA: platelet-rich CTC preparations,
leukocytes, empty wells. In the bundled CTC data (Aceto 2014) the three highest dormancy indices are
samples with EPCAM + KRT8/18/19 below 40 counts per million and 0.5-2% of their reads in platelet
transcripts (TUBB1, ITGA2B, PPBP); in the single-cell CTCs of GSE75367 (the validation pack), 41 of
the 48 cells labelled "quiescent" hold no epithelial RNA. Breast-cancer cells, including circulating
ones captured by EPCAM or cytokeratin (CellSearch), express these four genes at thousands of counts
per million.

Rule (:func:`tumour_gate`): an observation *holds too little tumour RNA* when EPCAM + KRT8 + KRT18 + KRT19
together hold fewer than ``min_cpm`` counts per million of its library (default 1,000). The default
was set on labelled data: 22 of the 23 proliferating (bona fide tumour) CTCs of GSE75367 hold >= 1,000
(the lowest 150, the next 1,510; median 5,476), and the pure tumour samples of the bundled CTC data hold
2,000-35,000. Between 100 and 1,000 lie mixed samples dominated by other RNA: GSM1253383 (529 CPM
epithelial, 5.6% of its reads platelet transcripts) and GSM1253382 (349 CPM; 0.2% platelet, a 37k-read
library), which 100 CPM let through and which then became the demo's dormant calls. In droplet data
1,000 CPM is ~3 UMIs of these genes in a 3,000-UMI cell, above one ambient molecule. :func:`dormsig.tl.rank` does
not call such observations (call ``"no_tumour_rna"``, no rank, not part of the threshold) unless told
so (``tumour_check="none"``). ``"auto"`` applies the check except where it cannot mean anything: when
the observations were chosen with ``cells=`` (the user said which are tumour cells), when the data
hold no counts (log-scale values), or when fewer than 5% of the observations hold epithelial RNA
(a non-epithelial tumour such as a glioma, or a sorted non-epithelial population); it says which.
Epithelial-to-mesenchymal tumour cells can lose these genes: ``tumour_check="none"`` calls them.
:func:`check_epithelial` summarises the check for people (``uns["dormsig"]["epithelial"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from anndata import AnnData

from dormsig import _keys as K
from dormsig.errors import InputError
from dormsig.provenance import attach, record
from dormsig.tl._matrix import counts_source, iter_csr_chunks, linear_chunks

#: Epithelial genes of breast-cancer cells (luminal keratins 8/18/19 and EPCAM, the CTC capture antigens).
GENES = ("EPCAM", "KRT8", "KRT18", "KRT19")
MIN_CPM = K.MIN_EPITHELIAL_CPM
N_NAMED = 5
#: tumour_check values of :func:`dormsig.tl.rank`
TUMOUR_CHECKS = ("auto", "epithelial", "none")
#: The call of an observation the tumour check left out.
NO_TUMOUR_RNA = "no_tumour_rna"
#: How the messages say to turn the check off; the CLI, `dormsig run` and the report reword it for their readers
OFF_ADVICE = "pass tumour_check=none"
#: The same advice for a reader of the HTML report, who may have used any of the three routes
OFF_ADVICE_ANY = ("turn the check off (--tumour-check none on the command line, tumour_check: none in a run "
                  "config, tumour_check=\"none\" in Python)")
#: "auto" applies the check when at least this fraction of the observations holds epithelial RNA.
AUTO_MIN_FRACTION = 0.05


@dataclass(frozen=True)
class TumourGate:
    """Result of :func:`tumour_gate`: which observations hold epithelial RNA, and whether calls use it."""

    requested: str  # "auto", "epithelial" or "none"
    applied: bool
    reason: str  # why (not) applied, in words
    genes: tuple[str, ...] = ()
    min_cpm: float = MIN_CPM
    holds: np.ndarray | None = None  # True: holds epithelial RNA (None when not computed)
    cpm: np.ndarray | None = None

    @property
    def mode(self) -> str:
        """The check in effect: ``"epithelial"`` or ``"none"`` (what a reference stores and re-applies)."""
        return "epithelial" if self.applied else "none"

    def excluded(self, among: np.ndarray | None = None) -> np.ndarray:
        """Observations the check leaves out (within ``among`` when given)."""
        if not self.applied or self.holds is None:
            return np.zeros(0 if self.holds is None else self.holds.size, dtype=bool)
        out = ~self.holds
        return out if among is None else out & among

    def to_dict(self, obs_names: Any = None, among: np.ndarray | None = None) -> dict[str, Any]:
        rec: dict[str, Any] = {"requested": self.requested, "mode": self.mode, "applied": self.applied,
                               "reason": self.reason, "genes": list(self.genes), "min_cpm": float(self.min_cpm)}
        if self.applied and self.holds is not None:
            ex = self.excluded(among)
            rec["n_excluded"] = int(ex.sum())
            rec["n_checked"] = int(ex.size if among is None else among.sum())
            if obs_names is not None:
                rec["excluded"] = [str(obs_names[i]) for i in np.flatnonzero(ex)]
        return rec


def _holds_counts(adata: AnnData) -> bool:
    """Counts (or TPM/CPM, any linear scale) to take fractions of: a counts layer, dormsig's log1p
    normalisation (undone), or an X that is not a log scale (non-integer values all below 50)."""
    if "counts" in adata.layers or isinstance(adata.uns.get(K.UNS, {}).get("normalise"), Mapping):
        return True
    for _, _, block in iter_csr_chunks(adata.X, 2000):
        data = np.asarray(block.data, dtype=np.float64)
        if data.size == 0:
            continue
        return not (data.max() < 50 and np.any(data != np.round(data)))
    return True


def tumour_gate(adata: AnnData, tumour_check: str = "auto", *, min_cpm: float = MIN_CPM,
                genes: tuple[str, ...] = GENES, among: np.ndarray | None = None,
                cells_chosen: bool = False, require_any: bool = True) -> TumourGate:
    """Which observations hold epithelial (tumour) RNA, and whether the calls should use it.

    Parameters
    ----------
    adata
        Samples or cells x genes with counts (``layers["counts"]``, dormsig's log1p ``X``, or a linear ``X``).
    tumour_check
        ``"auto"``, ``"epithelial"`` or ``"none"`` (see the module docstring).
    min_cpm
        EPCAM + KRT8 + KRT18 + KRT19 counts per million below which an observation holds no epithelial RNA.
    among
        The observations that would be called (``cells=``); the 5% rule of ``"auto"`` counts among them.
    cells_chosen
        The observations were chosen by the user (``cells=``): ``"auto"`` then trusts that choice.
    require_any
        ``"epithelial"`` with no observation holding epithelial RNA is an error (nothing left to call),
        except against a reference (``False``): one platelet-rich sample is then simply not called.

    Raises
    ------
    InputError
        ``"epithelial"`` requested where it cannot work (no epithelial gene in the data, log-scale values,
        or no observation holding epithelial RNA), or an unknown ``tumour_check``.
    """
    if tumour_check not in TUMOUR_CHECKS:
        raise InputError(f"tumour_check must be one of {', '.join(TUMOUR_CHECKS)}, got {tumour_check!r}")
    if min_cpm < 0 or not np.isfinite(min_cpm):
        raise InputError(f"min_epithelial_cpm must be a number >= 0, got {min_cpm!r}")
    present = tuple(g for g in genes if g in adata.var_names)
    forced = tumour_check == "epithelial"
    if tumour_check == "none":
        return TumourGate("none", False, "not requested (tumour_check none)", present, min_cpm)
    if cells_chosen and not forced:
        return TumourGate(tumour_check, False, "the observations were chosen with cells=", present, min_cpm)
    if not present:
        why = f"none of {', '.join(genes)} is in the data"
        if forced:
            raise InputError(f"tumour check 'epithelial': {why}; pass tumour_check=none")
        return TumourGate(tumour_check, False, why, present, min_cpm)
    if not _holds_counts(adata):
        why = "the data hold log-scale values, not counts (epithelial RNA is a fraction of the library)"
        if forced:
            raise InputError(f"tumour check 'epithelial': {why}; give counts or pass tumour_check=none")
        return TumourGate(tumour_check, False, why, present, min_cpm)
    cpm = epithelial_cpm(adata, present)
    holds = cpm >= min_cpm
    pool = np.ones(adata.n_obs, dtype=bool) if among is None else np.asarray(among, dtype=bool)
    n_hold, n_pool = int((holds & pool).sum()), int(pool.sum())
    gene_text = "+".join(present)
    if n_hold == 0 and forced and require_any:
        raise InputError(f"tumour check 'epithelial': no observation holds epithelial RNA ({gene_text} >= "
                         f"{min_cpm:g} counts per million); a non-epithelial tumour? pass tumour_check=none")
    if not forced and n_hold < AUTO_MIN_FRACTION * n_pool:
        why = (f"only {n_hold} of {n_pool} observations hold epithelial RNA ({gene_text} >= {min_cpm:g} counts per "
               f"million): a non-epithelial tumour or population? choose the tumour cells with cells=COLUMN=VALUE")
        return TumourGate(tumour_check, False, why, present, min_cpm, holds, cpm)
    why = (f"{n_pool - n_hold} of {n_pool} observations hold no epithelial RNA ({gene_text} < {min_cpm:g} counts "
           "per million) and are not called")
    return TumourGate(tumour_check, True, why, present, min_cpm, holds, cpm)


def stored_gate(adata: AnnData) -> dict[str, Any] | None:
    """The tumour check :func:`dormsig.tl.rank` applied (``uns["dormsig"]["rank"]["tumour_check"]``)."""
    rec = adata.uns.get(K.UNS, {}).get(K.STEP_RANK, {})
    gate = rec.get("tumour_check") if isinstance(rec, Mapping) else None
    return dict(gate) if isinstance(gate, Mapping) else None


@dataclass(frozen=True)
class EpithelialSummary:
    """Result of :func:`check_epithelial`."""

    n_calls: int
    low: tuple[str, ...]  # dormant calls without epithelial RNA (obs names, highest index first when ranked)
    genes: tuple[str, ...]  # the epithelial genes found in the data
    min_cpm: float
    message: str
    cpm: dict[str, float] = field(default_factory=dict)  # summed CPM of the flagged calls
    excluded: tuple[str, ...] = ()  # observations the tumour check left uncalled (call no_tumour_rna)
    applied: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"n_calls": self.n_calls, "n_low": len(self.low), "low": list(self.low), "genes": list(self.genes),
                "min_cpm": self.min_cpm, "cpm": dict(self.cpm), "message": self.message,
                "applied": self.applied, "n_excluded": len(self.excluded), "excluded": list(self.excluded)}


def epithelial_cpm(adata: AnnData, genes: tuple[str, ...] = GENES, *, chunk_size: int = 20000) -> np.ndarray:
    """Counts per million of ``genes`` together, per observation (counts layer, else X back from log1p)."""
    present = [g for g in genes if g in adata.var_names]
    X, is_log = counts_source(adata)
    cols = [adata.var_names.get_loc(g) for g in present]
    out = np.zeros(adata.n_obs)
    for start, stop, block, lib in linear_chunks(X, is_log, chunk_size):
        sub = np.asarray(block[:, cols].sum(axis=1)).ravel() if cols else np.zeros(stop - start)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start:stop] = np.where(lib > 0, sub * 1e6 / lib, 0.0)
    return out


def _named(names: tuple[str, ...]) -> str:
    return ", ".join(names[:N_NAMED]) + (f" and {len(names) - N_NAMED} more" if len(names) > N_NAMED else "")


def check_epithelial(adata: AnnData, *, genes: tuple[str, ...] = GENES, min_cpm: float = MIN_CPM,
                     call_key: str = K.OBS_CALL) -> EpithelialSummary | None:
    """The tumour check in words, after :func:`dormsig.tl.rank`; ``None`` when nothing was called or
    none of ``genes`` is in the data (then there is nothing to say).

    When rank applied the check, the message names the observations left uncalled (``no_tumour_rna``);
    when it did not, it names the dormant calls that hold little tumour (epithelial) RNA, and why the check
    was not applied.
    """
    present = tuple(g for g in genes if g in adata.var_names)
    if call_key not in adata.obs.columns or not present:
        return None
    calls = adata.obs[call_key].astype(str).to_numpy()
    dormant = calls == "dormant"
    gate = stored_gate(adata) or {}
    excluded = tuple(str(n) for n in adata.obs_names[calls == NO_TUMOUR_RNA])
    gene_text = "+".join(present)
    if gate.get("applied"):
        min_cpm = float(gate.get("min_cpm", min_cpm))
        n_checked = int(gate.get("n_checked", adata.n_obs))
        message = (f"tumour check: {len(excluded)} of {n_checked} samples/cells hold little tumour (epithelial) RNA "
                   f"({gene_text} < {min_cpm:g} counts per million) and were not called (call {NO_TUMOUR_RNA}"
                   + (f": {_named(excluded)}" if excluded else "") + "); breast-cancer cells express these genes. "
                   "Epithelial-to-mesenchymal or non-epithelial tumour cells lack them: to call every sample, "
                   f"{OFF_ADVICE}.")
        summary = EpithelialSummary(n_calls=int(dormant.sum()), low=(), genes=present, min_cpm=min_cpm,
                                    message=message, excluded=excluded, applied=True)
    else:
        if not dormant.any():
            return None
        cpm = epithelial_cpm(adata, present)
        low = dormant & (cpm < min_cpm)
        order = np.flatnonzero(low)
        if K.OBS_RANK in adata.obs.columns:  # highest dormancy index first
            order = order[np.argsort(np.asarray(adata.obs[K.OBS_RANK], dtype=float)[order], kind="stable")]
        names = tuple(str(adata.obs_names[i]) for i in order)
        why = f" (tumour check not applied: {gate['reason']})" if gate.get("reason") else ""
        if names:
            message = (f"epithelial check: {len(names)} of {int(dormant.sum())} dormant calls hold little tumour "
                       f"(epithelial) RNA ({gene_text} < {min_cpm:g} counts per million: {_named(names)}){why}. "
                       "Breast-cancer cells express these genes: such calls may be platelets, leukocytes or empty "
                       "samples rather than dormant tumour cells (or tumour cells that lost them).")
        else:
            message = (f"epithelial check: all {int(dormant.sum())} dormant calls hold epithelial RNA "
                       f"({gene_text} >= {min_cpm:g} counts per million){why}")
        summary = EpithelialSummary(n_calls=int(dormant.sum()), low=names, genes=present, min_cpm=float(min_cpm),
                                    message=message, cpm={n: round(float(cpm[adata.obs_names.get_loc(n)]), 3)
                                                          for n in names})
    attach(adata, "epithelial", record("epithelial", method="summed CPM of epithelial genes",
                                       params={"genes": list(present), "min_cpm": float(summary.min_cpm),
                                               "call_key": call_key}, **summary.to_dict()))
    return summary
