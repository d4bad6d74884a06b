"""dormsig.de.define_groups: labels, per-sample thresholds, recorded counts, refusals."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from dormsig.de import define_groups
from dormsig.de.groups import _mixture_threshold
from dormsig.errors import DesignError, InputError


def _toy() -> ad.AnnData:
    # 8 cells in 2 samples; normalised NOTCH2 / NOTCH1 values chosen by hand (halves: not raw counts).
    x = 0.5 * np.array([
        [5, 0], [4, 1], [0, 5], [1, 4],   # sample A: medians NOTCH2 1.25, NOTCH1 1.25
        [9, 9], [8, 1], [1, 8], [0, 0],   # sample B: medians NOTCH2 2.25, NOTCH1 2.25
    ], dtype=np.float64)
    obs = pd.DataFrame({"sample": ["A"] * 4 + ["B"] * 4}, index=[f"c{i}" for i in range(8)])
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=["NOTCH2", "NOTCH1"]))


def test_two_gene_labels_within_samples():
    adata = _toy()
    define_groups(adata, "NOTCH2", "NOTCH1", by="sample")
    assert adata.obs["dormsig_group"].tolist() == [
        "NOTCH2_high", "NOTCH2_high", "NOTCH1_high", "NOTCH1_high",
        "double_high", "NOTCH2_high", "NOTCH1_high", "double_low",
    ]
    rec = adata.uns["dormsig"]["groups"]
    assert rec["thresholds"]["A"]["NOTCH2"] == 1.25 and rec["thresholds"]["B"]["NOTCH1"] == 2.25
    assert rec["counts"] == {"NOTCH2_high": 3, "NOTCH1_high": 3, "double_high": 1, "double_low": 1}
    assert rec["counts_per_sample"]["B"] == {"NOTCH2_high": 1, "NOTCH1_high": 1, "double_high": 1, "double_low": 1}
    assert isinstance(adata.obs["dormsig_group"].dtype, pd.CategoricalDtype)


def test_pooled_threshold_differs_from_per_sample():
    adata = _toy()
    define_groups(adata, "NOTCH2", "low")  # pooled median of NOTCH2 = 1.5
    assert adata.obs["dormsig_group"].tolist() == ["NOTCH2_high", "NOTCH2_high", "NOTCH2_low", "NOTCH2_low",
                                                   "NOTCH2_high", "NOTCH2_high", "NOTCH2_low", "NOTCH2_low"]


def test_fixed_threshold_and_from_column():
    adata = _toy()
    define_groups(adata, "NOTCH2", "NOTCH1", method="threshold", threshold={"NOTCH2": 1.75, "NOTCH1": 3.75})
    assert adata.obs["dormsig_group"].tolist()[:5] == ["NOTCH2_high", "NOTCH2_high", "double_low", "double_low",
                                                      "double_high"]
    adata.obs["population"] = ["N2", "N1"] * 4
    define_groups(adata, from_column="population", key_added="pop")
    assert adata.obs["pop"].tolist() == ["N2", "N1"] * 4
    assert adata.uns["dormsig"]["groups"]["method"] == "from_column"


def test_mixture_threshold_separates_two_modes():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 0.3, 300), rng.normal(4, 0.3, 100)])
    t = _mixture_threshold(x)
    assert 1.0 < t < 3.0  # equal-posterior point of the two components lies between them
    assert ((x > t) == (np.arange(400) >= 300)).all()


def test_every_cell_labelled_on_real_ctc():
    from pathlib import Path

    counts = pd.read_csv(Path(__file__).parent / "data" / "de" / "ctc_counts_subset.csv.gz", index_col=0).T
    adata = ad.AnnData(X=np.log1p(counts.to_numpy(dtype=np.float64)), var=pd.DataFrame(index=counts.columns),
                       obs=pd.DataFrame(index=counts.index))
    define_groups(adata, "NOTCH2", "NOTCH1", method="threshold", threshold=0.0)
    assert adata.obs["dormsig_group"].notna().all()
    # NOTCH1 and NOTCH2 are each detected in 18 of the 29 samples (PROVENANCE.md)
    high2 = adata.obs["dormsig_group"].isin(["NOTCH2_high", "double_high"]).sum()
    high1 = adata.obs["dormsig_group"].isin(["NOTCH1_high", "double_high"]).sum()
    assert (high2, high1) == (18, 18)


def test_refusals():
    adata = _toy()
    with pytest.raises(InputError, match="'NOTCH9'.*identifiers"):
        define_groups(adata, "NOTCH9", "NOTCH1")
    with pytest.raises(InputError, match="did you mean 'NOTCH2'"):
        define_groups(adata, "Notch2", "NOTCH1")
    with pytest.raises(DesignError, match="empty"):
        define_groups(adata, "NOTCH2", "NOTCH1", method="threshold", threshold=100.0)
    with pytest.raises(InputError, match="by='patient'"):
        define_groups(adata, "NOTCH2", "NOTCH1", by="patient")
