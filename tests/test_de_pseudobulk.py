"""dormsig.de.pseudobulk: sums against a hand/pandas computation, drop reporting, sparse input."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dormsig.de import pseudobulk
from dormsig.errors import DesignError


def _cells(sparse: bool) -> ad.AnnData:
    rng = np.random.default_rng(3)
    x = rng.poisson(2.0, (60, 7)).astype(np.float64)
    obs = pd.DataFrame({
        "sample": np.repeat(["s1", "s2", "s3"], 20),
        "grp": np.tile(["hi", "lo", "lo", "lo"], 15),
        "patient": np.repeat(["p1", "p1", "p2"], 20),
        "cell_qc": rng.normal(size=60),
    }, index=[f"cell{i}" for i in range(60)])
    adata = ad.AnnData(X=sp.csr_matrix(x) if sparse else x, obs=obs, var=pd.DataFrame(index=list("ABCDEFG")))
    adata.layers["counts"] = adata.X.copy()
    return adata


@pytest.mark.parametrize("sparse", [False, True])
def test_sums_match_pandas_groupby(sparse):
    adata = _cells(sparse)
    pb = pseudobulk(adata, sample_key="sample", group_key="grp", min_cells=1, min_counts=0)
    dense = adata.layers["counts"].toarray() if sparse else adata.layers["counts"]
    ref = pd.DataFrame(dense, columns=adata.var_names).groupby(
        [adata.obs["sample"].to_numpy(), adata.obs["grp"].to_numpy()]).sum()
    ref.index = [f"{s}|{g}" for s, g in ref.index]
    np.testing.assert_array_equal(pb.layers["counts"], ref.loc[pb.obs_names].to_numpy())
    assert pb.obs["n_cells"].tolist() == [5, 15, 5, 15, 5, 15]
    assert pb.obs["patient"].tolist() == ["p1", "p1", "p1", "p1", "p2", "p2"]  # constant per pseudo-sample
    assert "cell_qc" not in pb.obs  # varies within a pseudo-sample: not carried over


def test_dropped_pseudo_samples_are_reported():
    adata = _cells(False)
    pb = pseudobulk(adata, sample_key="sample", group_key="grp", min_cells=10, min_counts=0)
    assert pb.n_obs == 3 and set(pb.obs["grp"]) == {"lo"}
    rec = adata.uns.get("dormsig", {})  # the input is left untouched
    assert "pseudobulk" not in rec
    rep = pb.uns["dormsig"]["pseudobulk"]
    dropped = json.loads(rep["dropped"])
    assert rep["n_dropped"] == 3 and {d["pseudo_sample"] for d in dropped} == {"s1|hi", "s2|hi", "s3|hi"}
    assert all(d["reason"] == "n_cells < 10" and d["n_cells"] == 5 for d in dropped)
    with pytest.raises(DesignError, match="lower min_cells"):
        pseudobulk(adata, sample_key="sample", group_key="grp", min_cells=100)
