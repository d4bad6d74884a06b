"""R DESeq2's likelihood-ratio test (``DESeq(test = "LRT", reduced = ...)``) against R's outputs.

References: tests/data/de/r_reference/{sim_wide_lrt,oligo_pb_lrt}_r_results.csv.gz (make_references.R).
sim_wide: ``~ batch + condition`` vs ``~ batch``, 8 conditions (7 df), 60 genes silent in whole conditions
(R refits them with optim and computes their log likelihood at means floored at 0.5: kept).
oligo_pb: ``~ patient + cell_class`` vs ``~ patient`` (R computes the LRT's Cook's distances with the
means of the dispersion stage, so other genes are replaced than in the Wald run: kept).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from dormsig.de import deseq
from dormsig.errors import DesignError

REF = Path(__file__).parent / "data" / "de" / "r_reference"
CASES = {
    "sim_wide_lrt": ("sim_wide", "condition", "c3", "c0", ["batch"], 1e-3, 0),
    "oligo_pb_lrt": ("oligo_pb", "cell_class", "malignant", "oligodendrocyte", ["patient"], 0.002, 11),
}


def _adata(name: str) -> ad.AnnData:
    counts = pd.read_csv(REF / f"{name}_counts.csv.gz", index_col=0).T
    coldata = pd.read_csv(REF / f"{name}_coldata.csv", index_col=0).loc[counts.index]
    return ad.AnnData(counts.to_numpy(np.float64), obs=coldata, var=pd.DataFrame(index=counts.columns))


@pytest.mark.parametrize("tag", list(CASES))
def test_lrt_matches_r(tag: str) -> None:
    name, group, test, reference, covariates, max_frac, _ = CASES[tag]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = deseq(_adata(name), group_key=group, test=test, reference=reference, covariates=covariates,
                     layer=None, alpha=0.1, threads=2, test_type="lrt")
    r = pd.read_csv(REF / f"{tag}_r_results.csv.gz", index_col=0).loc[ours.index]
    ok = ours["stat"].notna() & r["stat"].notna()
    assert (ours["pvalue"].isna() == r["pvalue"].isna()).all()
    assert (ours["padj"].isna() == r["padj"].isna()).all(), "R's independent filtering keeps other genes"
    rel = (ours["stat"][ok] - r["stat"][ok]).abs() / np.maximum(1.0, r["stat"][ok].abs())
    assert (rel > 1e-3).mean() <= max_frac, rel.sort_values().tail()
    assert np.median(rel) < 1e-5
    sig_o, sig_r = set(ours.index[ours["padj"] < 0.05]), set(r.index[r["padj"] < 0.05])
    assert len(sig_o & sig_r) / len(sig_o | sig_r) >= 0.999
    m = r["baseMean"] >= 10
    assert np.corrcoef(ours["log2FoldChange"][m], r["log2FoldChange"][m])[0, 1] >= 0.99999


def test_lrt_bad_reduced_design() -> None:
    adata = _adata("sim_cont")
    with pytest.raises(DesignError, match="not main-effect terms"):
        deseq(adata, group_key="condition", test="B", reference="A", covariates=["age"], layer=None,
              test_type="lrt", reduced="~ batch")
    with pytest.raises(DesignError, match="drops no coefficient"):
        deseq(adata, group_key="condition", test="B", reference="A", covariates=["age"], layer=None,
              test_type="lrt", reduced="~ age + condition")
