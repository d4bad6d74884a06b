"""Dormant calls without tumour (epithelial) RNA are named (real CTC data: platelet-rich samples)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dormsig
from dormsig.tl.epithelial import check_epithelial


@pytest.fixture(scope="module")
def ranked():
    adata = dormsig.data.ctc()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dormsig.tl.score(adata)
        dormsig.tl.rank(adata)
    return adata


def test_dormant_calls_without_epithelial_rna_are_named(ranked) -> None:
    counts = ranked.to_df("counts")
    cpm = counts[["EPCAM", "KRT8", "KRT18", "KRT19"]].sum(axis=1) / counts.sum(axis=1) * 1e6  # by hand
    dormant = ranked.obs["dormsig_call"].astype(str) == "dormant"
    expected = set(ranked.obs_names[dormant & (cpm < 100)])
    s = check_epithelial(ranked)
    assert set(s.low) == expected and len(expected) >= 2  # the demo's calls: platelet-rich, keratin-poor samples
    for name in s.low:
        assert s.cpm[name] == pytest.approx(cpm[name], abs=5e-4)  # stored to 3 decimals
    # named highest dormancy index first
    ranks = ranked.obs.loc[list(s.low), "dormsig_rank"].to_numpy()
    assert np.all(np.diff(ranks) > 0)
    assert s.message.startswith(f"epithelial check: {len(expected)} of {int(dormant.sum())} dormant calls")
    assert ranked.uns["dormsig"]["epithelial"]["n_low"] == len(expected)


def test_nothing_to_say_without_calls_or_genes(ranked) -> None:
    plain = ranked.copy()
    del plain.obs["dormsig_call"]
    assert check_epithelial(plain) is None
    assert check_epithelial(ranked, genes=("NOT_A_GENE",)) is None
    # a threshold of 0 flags nothing: every call then "holds epithelial RNA"
    assert check_epithelial(ranked, min_cpm=0.0).low == ()
