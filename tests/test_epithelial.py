"""The tumour check: samples without tumour (epithelial) RNA are not called (real CTC data: platelet-rich
samples; real oligodendroglioma cells: no epithelial genes, the check steps aside)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import dormsig
from dormsig.errors import InputError
from dormsig.io import read
from dormsig.tl.epithelial import NO_TUMOUR_RNA, check_epithelial, tumour_gate
from dormsig.tl.reference import make_reference, rank_against

GENES = ["EPCAM", "KRT8", "KRT18", "KRT19"]
OLIGO = Path(__file__).parent / "data" / "compartment"


def _scored(adata=None):
    adata = dormsig.data.ctc() if adata is None else adata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dormsig.tl.score(adata)
    return adata


@pytest.fixture(scope="module")
def scored():
    return _scored()


@pytest.fixture(scope="module")
def cpm(scored):
    counts = scored.to_df("counts")
    return counts[GENES].sum(axis=1) / counts.sum(axis=1) * 1e6  # by hand


def test_samples_without_epithelial_rna_are_not_called(scored, cpm) -> None:
    adata = scored.copy()
    dormsig.tl.rank(adata)
    calls = adata.obs["dormsig_call"].astype(str)
    low = set(cpm.index[cpm < 1000])
    assert set(calls.index[calls == NO_TUMOUR_RNA]) == low and len(low) == 14
    # the three highest indices of the whole batch are platelet-rich, keratin-poor samples: not called now
    assert {"GSM1253385", "GSM1253384", "GSM1253380"} <= low
    # the mixed samples 100 CPM used to let through, platelet-dominated (the calls of that threshold)
    assert {"GSM1253383", "GSM1253382"} <= low
    # the threshold is the 0.9 quantile of the 15 samples that hold tumour RNA, not of all 29
    index = adata.obsm["dormsig_scores"]["dormancy_index"]
    kept = index[cpm >= 1000].to_numpy()
    assert adata.uns["dormsig"]["rank"]["threshold"] == pytest.approx(np.quantile(kept, 0.9), rel=1e-12)
    dormant = calls.index[calls == "dormant"]
    assert len(dormant) == int((kept > np.quantile(kept, 0.9)).sum()) >= 1
    assert (cpm[dormant] >= 1000).all()
    # ranks 1..15 among the called; none for the others
    ranks = adata.obs["dormsig_rank"]
    assert ranks[list(low)].isna().all() and sorted(ranks.dropna().astype(int)) == list(range(1, 16))
    rec = adata.uns["dormsig"]["rank"]["tumour_check"]
    assert rec["applied"] and rec["mode"] == "epithelial" and rec["n_excluded"] == 14
    assert adata.uns["dormsig"]["rank"]["params"]["tumour_check"] == "epithelial"
    s = check_epithelial(adata)
    assert s.applied and set(s.excluded) == low and "14 of 29" in s.message
    table = dormsig.get.score_table(adata)
    assert "ranked_index" not in table and table["call_rule"].iloc[0].endswith(">= 1000 CPM are called")


def test_without_the_check_the_platelet_samples_are_called_and_named(scored, cpm) -> None:
    adata = scored.copy()
    dormsig.tl.rank(adata, tumour_check="none")
    dormant = adata.obs["dormsig_call"].astype(str) == "dormant"
    expected = set(adata.obs_names[dormant & (cpm < 1000)])
    s = check_epithelial(adata)
    assert set(s.low) == expected and len(expected) >= 2 and not s.applied
    for name in s.low:
        assert s.cpm[name] == pytest.approx(cpm[name], abs=5e-4)  # stored to 3 decimals
    ranks = adata.obs.loc[list(s.low), "dormsig_rank"].to_numpy()
    assert np.all(np.diff(ranks) > 0)  # named highest dormancy index first
    assert s.message.startswith(f"epithelial check: {len(expected)} of {int(dormant.sum())} dormant calls")
    assert "not requested" in s.message
    assert check_epithelial(adata, min_cpm=0.0).low == ()


def test_auto_steps_aside_where_the_check_means_nothing(scored, cpm) -> None:
    # only samples without epithelial RNA (real): fewer than 5% hold it -> not applied, and said why
    sub = scored[cpm.index[cpm < 1000]].copy()
    gate = tumour_gate(sub)
    assert not gate.applied and gate.reason.startswith("only 0 of 14 observations hold epithelial RNA")
    with pytest.raises(InputError, match="no observation holds epithelial RNA"):
        tumour_gate(sub, "epithelial")
    # the user chose the cells: auto trusts the choice, "epithelial" still applies
    assert not tumour_gate(scored, among=np.ones(scored.n_obs, bool), cells_chosen=True).applied
    assert tumour_gate(scored, "epithelial", cells_chosen=True).applied
    # log-scale values without counts: no library to take a fraction of
    logged = scored.copy()
    del logged.layers["counts"]
    logged.uns["dormsig"].pop("normalise", None)
    logged.X = np.log2(np.asarray(scored.layers["counts"].todense() if hasattr(scored.layers["counts"], "todense")
                                  else scored.layers["counts"]) + 1.0) + 0.01
    assert "log-scale" in tumour_gate(logged).reason and not tumour_gate(logged).applied
    with pytest.raises(InputError, match="log-scale"):
        tumour_gate(logged, "epithelial")
    with pytest.raises(InputError, match="tumour_check must be one of"):
        tumour_gate(scored, "yes")


def test_oligodendroglioma_has_no_epithelial_genes_and_is_called_as_before() -> None:
    adata = read(OLIGO / "oligo_counts_subset.csv.gz", sample_sheet=OLIGO / "oligo_cells.csv")
    _scored(adata)
    gate = tumour_gate(adata)
    assert not gate.applied and gate.reason == "none of EPCAM, KRT8, KRT18, KRT19 is in the data"
    dormsig.tl.rank(adata)
    assert NO_TUMOUR_RNA not in set(adata.obs["dormsig_call"].astype(str))
    with pytest.raises(InputError, match="none of EPCAM"):
        dormsig.tl.rank(adata, tumour_check="epithelial")


def test_reference_carries_the_check_to_single_samples(scored, cpm) -> None:
    cohort = scored.copy()
    dormsig.tl.rank(cohort)
    ref = make_reference(cohort)
    assert dormsig.get.rank_rule(ref)["tumour_check"] == "epithelial"
    for name, expected_call in (("GSM1253385", NO_TUMOUR_RNA), ("GSM1253376", None)):
        one = _scored(dormsig.data.ctc()[[name]].copy())
        rank_against(one, ref)
        call = str(one.obs["dormsig_call"].iloc[0])
        assert call == (expected_call or str(cohort.obs.loc[name, "dormsig_call"]))
    # the reference's own uncalled samples set no threshold: the same threshold as the cohort's
    one = _scored(dormsig.data.ctc()[["GSM1253376"]].copy())
    rank_against(one, ref)
    assert one.uns["dormsig"]["rank"]["threshold"] == pytest.approx(cohort.uns["dormsig"]["rank"]["threshold"])
    # asked for none: the platelet sample is called against the reference
    one = _scored(dormsig.data.ctc()[["GSM1253385"]].copy())
    rank_against(one, ref, tumour_check="none")
    assert str(one.obs["dormsig_call"].iloc[0]) in ("dormant", "not_dormant")


def test_cli_says_it_and_takes_the_flags(tmp_path) -> None:
    from dormsig.cli import cli

    src = dormsig.data.example_path("aceto2014_ctc") / Path(dormsig.data.CTC_COUNTS).name
    out = tmp_path / "s.tsv"
    res = CliRunner().invoke(cli, ["score", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "tumour check: 14 of 29 samples/cells hold little tumour (epithelial) RNA" in res.output
    assert "pass --tumour-check none" in res.output
    import pandas as pd

    table = pd.read_csv(out, sep="\t", index_col=0)
    assert (table["call"] == NO_TUMOUR_RNA).sum() == 14
    out2 = tmp_path / "s2.tsv"
    res = CliRunner().invoke(cli, ["score", str(src), "--out", str(out2), "--tumour-check", "none"])
    assert res.exit_code == 0 and (pd.read_csv(out2, sep="\t")["call"] == NO_TUMOUR_RNA).sum() == 0
    assert "epithelial check: 3 of 3 dormant calls hold little tumour (epithelial) RNA" in res.output
