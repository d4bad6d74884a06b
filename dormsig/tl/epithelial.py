"""Do the dormant calls hold tumour (epithelial) RNA at all?

A low proliferation score also fits samples that hold no tumour RNA: platelet-rich CTC preparations,
leukocytes, empty wells. In the bundled CTC data (Aceto 2014) the three highest dormancy indices are
samples with EPCAM + KRT8/18/19 below 40 counts per million and 0.5-2% of their reads in platelet
transcripts (TUBB1, ITGA2B, PPBP). Breast-cancer cells, including circulating ones captured by
EPCAM or cytokeratin (CellSearch), express these four genes at thousands of counts per million.

Rule: a dormant call is *without epithelial RNA* when EPCAM + KRT8 + KRT18 + KRT19 together hold
fewer than ``min_cpm`` counts per million of its library. Epithelial-to-mesenchymal tumour cells can
lose them, and non-epithelial tumours (gliomas, sarcomas) never had them: the check says what it
sees and names the calls; it changes no call. Stored in ``uns["dormsig"]["epithelial"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from anndata import AnnData

from dormsig import _keys as K
from dormsig.provenance import attach, record
from dormsig.tl._matrix import iter_csr_chunks

#: Epithelial genes of breast-cancer cells (luminal keratins 8/18/19 and EPCAM, the CTC capture antigens).
GENES = ("EPCAM", "KRT8", "KRT18", "KRT19")
MIN_CPM = 100.0
N_NAMED = 5


@dataclass(frozen=True)
class EpithelialSummary:
    """Result of :func:`check_epithelial`."""

    n_calls: int
    low: tuple[str, ...]  # dormant calls without epithelial RNA (obs names, highest index first when ranked)
    genes: tuple[str, ...]  # the epithelial genes found in the data
    min_cpm: float
    message: str
    cpm: dict[str, float] = field(default_factory=dict)  # summed CPM of the flagged calls

    def to_dict(self) -> dict[str, Any]:
        return {"n_calls": self.n_calls, "n_low": len(self.low), "low": list(self.low), "genes": list(self.genes),
                "min_cpm": self.min_cpm, "cpm": dict(self.cpm), "message": self.message}


def epithelial_cpm(adata: AnnData, genes: tuple[str, ...] = GENES, *, chunk_size: int = 20000) -> np.ndarray:
    """Counts per million of ``genes`` together, per observation (counts layer, else X back from log1p)."""
    present = [g for g in genes if g in adata.var_names]
    X = adata.layers["counts"] if "counts" in adata.layers else adata.X
    is_log = "counts" not in adata.layers and isinstance(adata.uns.get(K.UNS, {}).get("normalise"), Mapping)
    cols = [adata.var_names.get_loc(g) for g in present]
    out = np.zeros(adata.n_obs)
    for start, stop, block in iter_csr_chunks(X, chunk_size):
        if is_log:
            block = block.copy()
            block.data = np.expm1(block.data)
        lib = np.asarray(block.sum(axis=1)).ravel()
        sub = np.asarray(block[:, cols].sum(axis=1)).ravel() if cols else np.zeros(stop - start)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start:stop] = np.where(lib > 0, sub * 1e6 / lib, 0.0)
    return out


def check_epithelial(adata: AnnData, *, genes: tuple[str, ...] = GENES, min_cpm: float = MIN_CPM,
                     call_key: str = K.OBS_CALL) -> EpithelialSummary | None:
    """Name the dormant calls that hold (almost) no epithelial RNA; ``None`` when nothing was called or
    none of ``genes`` is in the data (then there is nothing to say)."""
    present = tuple(g for g in genes if g in adata.var_names)
    if call_key not in adata.obs.columns or not present:
        return None
    dormant = adata.obs[call_key].astype(str).to_numpy() == "dormant"
    if not dormant.any():
        return None
    cpm = epithelial_cpm(adata, present)
    low = dormant & (cpm < min_cpm)
    order = np.flatnonzero(low)
    if K.OBS_RANK in adata.obs.columns:  # highest dormancy index first
        order = order[np.argsort(np.asarray(adata.obs[K.OBS_RANK], dtype=float)[order], kind="stable")]
    names = tuple(str(adata.obs_names[i]) for i in order)
    gene_text = "+".join(present)
    if names:
        shown = ", ".join(names[:N_NAMED]) + (f" and {len(names) - N_NAMED} more" if len(names) > N_NAMED else "")
        message = (f"epithelial check: {len(names)} of {int(dormant.sum())} dormant calls hold almost no epithelial "
                   f"RNA ({gene_text} < {min_cpm:g} counts per million: {shown}). Breast-cancer cells express these "
                   "genes: such calls may be platelets, leukocytes or empty samples rather than dormant tumour cells "
                   "(or tumour cells that lost them).")
    else:
        message = (f"epithelial check: all {int(dormant.sum())} dormant calls hold epithelial RNA "
                   f"({gene_text} >= {min_cpm:g} counts per million)")
    summary = EpithelialSummary(n_calls=int(dormant.sum()), low=names, genes=present, min_cpm=float(min_cpm),
                                message=message, cpm={n: round(float(cpm[adata.obs_names.get_loc(n)]), 3)
                                                      for n in names})
    attach(adata, "epithelial", record("epithelial", method="summed CPM of epithelial genes",
                                       params={"genes": list(present), "min_cpm": float(min_cpm),
                                               "call_key": call_key}, **summary.to_dict()))
    return summary
