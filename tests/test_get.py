"""dormsig.get: results read back from an AnnData, an h5ad and a run's directory, with one name per quantity."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest

import dormsig
from dormsig import _keys as K
from dormsig.errors import InputError
from dormsig.signatures import match


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    adata = dormsig.data.ctc()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dormsig.tl.score(adata, index="default")
        dormsig.tl.rank(adata, rule="quantile", quantile=0.8)
    path = tmp_path_factory.mktemp("get") / "scored.h5ad"
    adata.write_h5ad(path)
    return adata, path


def test_match_report_round_trips_through_h5ad(scored) -> None:
    adata, path = scored
    direct = match(list(adata.uns["dormsig"]["score"]["sets"]), adata.var_names, on_empty="warn")
    for got in (dormsig.get.match_report(adata), dormsig.get.match_report(path), dormsig.get.match_report(path.parent)):
        assert got.names == direct.names
        for name in got.names:
            assert got[name].status == direct[name].status
            assert (got[name].n_present, got[name].missing) == (direct[name].n_present, direct[name].missing)
        # detection as the scoring assessed it: the stored record comes back field for field
        stored = dormsig.get.provenance(adata, "score")["match"]
        back = got.to_dict()
        assert back["sets"] == stored["sets"] and back["params"] == stored["params"]


def test_rank_rule_and_score_table(scored) -> None:
    adata, path = scored
    assert dormsig.get.rank_rule(path) == {"rule": "quantile", "quantile": 0.8, "seed": 0,
                                           "tumour_check": "epithelial", "min_epithelial_cpm": 1000.0}
    table = dormsig.get.score_table(path)
    # one name per quantity: the index once, the rank said to be within the batch, the percentile's base named
    assert list(table.columns).count(K.INDEX) == 1 and "dormsig_index" not in table.columns
    assert {"rank_in_batch", "percentile", "percentile_of", "call", "call_rule"} <= set(table.columns)
    assert set(table["percentile_of"]) == {"batch"}
    # the calls follow the rule the table states
    threshold = adata.uns["dormsig"]["rank"]["threshold"]
    called = table["call"] != "no_tumour_rna"  # the tumour check (samples without epithelial RNA)
    assert (~called).sum() == 14
    np.testing.assert_array_equal(table["call"] == "dormant", called & (table[K.INDEX] > threshold))
    assert table["call_rule"].iloc[0] == (f"dormant if dormancy_index > {threshold:.6g} (quantile 0.8 of these "
                                          "samples); only samples with EPCAM+KRT8+KRT18+KRT19 >= 1000 CPM are called")
    np.testing.assert_array_equal(table.loc[called, "rank_in_batch"].to_numpy(),
                                  (-table.loc[called, K.INDEX]).rank(method="min").astype(int).to_numpy())
    assert table.loc[~called, "rank_in_batch"].isna().all()


def test_getters_say_what_is_missing(tmp_path) -> None:
    bare = ad.AnnData(np.zeros((2, 2)))
    with pytest.raises(InputError, match="run dormsig.tl.score"):
        dormsig.get.match_report(bare)
    with pytest.raises(InputError, match="run dormsig.tl.rank"):
        dormsig.get.rank_rule(bare)
    (tmp_path / "de_a_vs_b.tsv").write_text("gene\tbaseMean\tlog2FoldChange\tlfcSE\tstat\tpvalue\tpadj\nX\t1\t0\t1\t0\t1\t1\n")
    (tmp_path / "de_c_vs_d.tsv").write_text((tmp_path / "de_a_vs_b.tsv").read_text())
    assert dormsig.get.contrasts(tmp_path) == ["a_vs_b", "c_vs_d"]
    with pytest.raises(InputError, match="2 contrasts"):
        dormsig.get.de_table(tmp_path)
    assert list(dormsig.get.de_table(tmp_path, "c_vs_d")["gene"]) == ["X"]
