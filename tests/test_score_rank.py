"""dormsig.tl.rank: index, ranks, percentiles, dormancy calls, references."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import dormsig.tl as tl
from dormsig.errors import InputError, ReferenceMismatchError

UP = [f"GENE{i}" for i in range(0, 40)]
DOWN = [f"GENE{i}" for i in range(40, 70)]
SETS = {"UP": UP, "DOWN": DOWN}
INDEX = {"name": "toy", "version": "1", "components": [{"set": "UP", "sign": 1, "weight": 1.0},
                                                     {"set": "DOWN", "sign": -1, "weight": 1.0}]}


def _planted(n_cells=300, n_genes=800, frac=0.1, seed=0) -> ad.AnnData:
    """NB counts; planted cells have the UP genes x4 and the DOWN genes / 4."""
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(0, 1, n_genes)
    planted = rng.random(n_cells) < frac
    lam = np.tile(mu, (n_cells, 1))
    lam[np.ix_(planted, np.arange(40))] *= 4
    lam[np.ix_(planted, np.arange(40, 70))] /= 4
    counts = rng.poisson(lam * rng.gamma(2.0, 0.5, lam.shape)).astype(np.float32)
    x = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    a = ad.AnnData(X=sp.csr_matrix(x.astype(np.float32)), obs=pd.DataFrame({"planted": planted},
                   index=[f"c{i}" for i in range(n_cells)]), var=pd.DataFrame(index=[f"GENE{i}" for i in range(n_genes)]))
    return a


def _scored(a, method="ucell", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a, SETS, index=INDEX, method=method, species="human", max_rank=200, **kw)
    return a


def test_quantile_rule_against_numpy():
    a = _scored(_planted())
    tl.rank(a, rule="quantile", quantile=0.8)
    idx = a.obsm["dormsig_scores"]["dormancy_index"].to_numpy()
    np.testing.assert_array_equal(a.obs["dormsig_index"], idx)
    thr = np.quantile(idx, 0.8)
    assert a.uns["dormsig"]["rank"]["threshold"] == pytest.approx(thr)
    np.testing.assert_array_equal(a.obs["dormsig_call"] == "dormant", idx > thr)
    assert a.obs["dormsig_rank"].iloc[np.argmax(idx)] == 1
    assert a.obs["dormsig_rank"].max() <= a.n_obs
    # percentile: share of reference values <= the value (mid-rank for ties)
    i = 17
    expected = 100 * ((idx < idx[i]).sum() + (idx <= idx[i]).sum()) / (2 * idx.size)
    assert a.obs["dormsig_percentile"].iloc[i] == pytest.approx(expected)


def test_mixture_rule_finds_planted_cells():
    a = _scored(_planted(frac=0.15))
    tl.rank(a, rule="mixture", seed=1)
    called = (a.obs["dormsig_call"] == "dormant").to_numpy()
    planted = a.obs["planted"].to_numpy()
    agreement = (called == planted).mean()
    assert agreement > 0.95, agreement
    assert a.uns["dormsig"]["rank"]["params"]["seed"] == 1


def test_permutation_rule_calls_planted_cells():
    a = _scored(_planted(n_cells=120, frac=0.2, seed=2))
    tl.rank(a, rule="permutation", index=INDEX, n_permutations=200, seed=3)
    p = a.obs["dormsig_pvalue"].to_numpy()
    planted = a.obs["planted"].to_numpy()
    assert p.min() >= 1 / 201 and p.max() <= 1
    assert np.median(p[planted]) < np.median(p[~planted])
    called = (a.obs["dormsig_call"] == "dormant").to_numpy()
    assert called[planted].mean() > 0.8 and called[~planted].mean() < 0.1
    first = a.obs["dormsig_pvalue"].copy()
    tl.rank(a, rule="permutation", index=INDEX, n_permutations=200, seed=3)
    np.testing.assert_array_equal(a.obs["dormsig_pvalue"], first)  # seeded


def test_reference_percentiles_and_mismatch():
    ref = _scored(_planted(seed=5))
    new = _scored(_planted(n_cells=40, seed=6))
    tl.rank(new, rule="quantile", quantile=0.9, reference=ref)
    ref_idx = ref.obsm["dormsig_scores"]["dormancy_index"].to_numpy()
    assert new.uns["dormsig"]["rank"]["threshold"] == pytest.approx(np.quantile(ref_idx, 0.9))
    v = new.obs["dormsig_index"].iloc[0]
    expected = 100 * ((ref_idx < v).sum() + (ref_idx <= v).sum()) / (2 * ref_idx.size)
    assert new.obs["dormsig_percentile"].iloc[0] == pytest.approx(expected)
    other = _scored(_planted(n_cells=40, seed=6), method="aucell")
    with pytest.raises(ReferenceMismatchError, match="method"):
        tl.rank(other, reference=ref)
    ref.uns["dormsig"]["score"]["library_version"] = "1999.1"
    with pytest.raises(ReferenceMismatchError, match="library_version"):
        tl.rank(new, reference=ref)


def test_rank_needs_scores_and_valid_rule():
    a = _planted()
    with pytest.raises(InputError, match="run dormsig.tl.score"):
        tl.rank(a)
    _scored(a)
    with pytest.raises(InputError, match="unknown rule"):
        tl.rank(a, rule="vibes")


def test_rank_after_h5ad_round_trip(tmp_path):
    a = _scored(_planted(n_cells=80))
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad")
    tl.rank(b, rule="quantile")
    tl.rank(a, rule="quantile")
    np.testing.assert_array_equal(a.obs["dormsig_call"], b.obs["dormsig_call"])
