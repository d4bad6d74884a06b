"""dormsig.de.rank_genes_wilcoxon: against scipy's Mann-Whitney test; always labelled exploratory."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from dormsig.de import rank_genes_wilcoxon
from dormsig.errors import DesignError


def test_matches_scipy_and_is_exploratory():
    rng = np.random.default_rng(4)
    x = np.log1p(rng.poisson(3, (80, 5)).astype(float))
    x[:30, 0] += 1.0  # gene A higher in group t
    adata = ad.AnnData(X=x, obs=pd.DataFrame({"g": ["t"] * 30 + ["r"] * 40 + ["other"] * 10},
                                             index=[f"c{i}" for i in range(80)]),
                       var=pd.DataFrame(index=list("ABCDE")))
    res = rank_genes_wilcoxon(adata, "g", "t", "r")
    assert res["exploratory"].all()
    assert "EXPLORATORY" in adata.uns["dormsig"]["dormsig_wilcoxon"]["note"]
    for j, gene in enumerate("ABCDE"):
        p = mannwhitneyu(x[:30, j], x[30:70, j], alternative="two-sided", method="asymptotic",
                         use_continuity=False).pvalue
        assert res.loc[gene, "pvalue"] == pytest.approx(p, rel=1e-6)
    assert res.loc["A", "stat"] > 0


def test_too_few_cells():
    adata = ad.AnnData(X=np.ones((3, 2)), obs=pd.DataFrame({"g": ["t", "r", "r"]}, index=["a", "b", "c"]))
    with pytest.raises(DesignError, match="'t' has 1 cells"):
        rank_genes_wilcoxon(adata, "g", "t", "r")
