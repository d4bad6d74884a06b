"""Scoring follows the data: singscore / uncapped ranks on bulk, UCell on cells; floor and shared-gene warnings.

Real data only: the bundled Aceto 2014 CTC counts (29 bulk samples x 16k genes) and the Tirosh 2016
oligodendroglioma cells (184 cells, 4,000-gene subset in tests/data/score). Expected numbers are counted
by hand from the raw counts (numpy) or come from pyUCell.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dormsig import tl
from dormsig.tl import _data

DATA = Path(__file__).parent / "data"

#: The seed's marker sets as the library 2026.11.0 shipped them (the CD177 set repeated CXCR4/CD34).
HSC = ["CXCR4", "CD34", "TEK"]
CD177 = ["CD177", "NOTCH2", "CXCR4", "CD34"]


@pytest.fixture(scope="module")
def ctc() -> ad.AnnData:
    from dormsig.data import ctc as load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load()


@pytest.fixture(scope="module")
def oligo() -> ad.AnnData:
    df = pd.read_csv(DATA / "score" / "oligodendroglioma_tirosh2016_4000genes.tsv.gz", sep="\t", index_col=0)
    return ad.AnnData(X=sp.csr_matrix(df.T.to_numpy(dtype=np.float32)), obs=pd.DataFrame(index=df.columns),
                      var=pd.DataFrame(index=df.index))


def _quiet_score(adata, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(adata, *args, **kwargs)
    return adata.obsm["dormsig_scores"], adata.uns["dormsig"]["score"]


def _counts(adata, genes) -> np.ndarray:
    c = adata.layers["counts"] if "counts" in adata.layers else adata.X
    c = c[:, adata.var_names.get_indexer(genes)]
    return c.toarray() if sp.issparse(c) else np.asarray(c)


def test_data_kind_is_the_de_rule(ctc, oligo):
    from dormsig.de.deseq import looks_single_cell

    for adata, kind in ((ctc, "bulk"), (oligo, "single_cell")):
        prof = _data.profile(adata)
        counts = adata.layers["counts"] if "counts" in adata.layers else adata.X
        counts = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
        assert prof.kind == kind
        assert (prof.kind == "single_cell") == looks_single_cell(adata, counts)
        assert prof.median_library == pytest.approx(float(np.median(counts.sum(axis=1))))
        assert prof.zero_fraction == pytest.approx(float((counts == 0).mean()))
    assert _data.profile(ctc, kind="single_cell").kind == "single_cell"


def test_old_default_put_the_seed_sets_at_zero_on_ctc(ctc):
    """Before: UCell max_rank=1500 on bulk (issue 12: HSC mimicry 0 in 28 of 29 samples, CD177 set in 27)."""
    a = ctc.copy()
    table, rec = _quiet_score(a, {"HSC": HSC, "CD177": CD177}, method="ucell", max_rank=1500, index=None)
    assert rec["params"]["max_rank"] == 1500
    assert int((table["HSC"] == 0).sum()) == 28 and int((table["CD177"] == 0).sum()) == 27
    assert rec["floor"]["HSC"]["fraction"] == pytest.approx(28 / 29)


def test_default_on_bulk_is_singscore_and_no_index_component_is_constant(ctc):
    from dormsig.signatures import load_index

    a = ctc.copy()
    table, rec = _quiet_score(a)  # the defaults: method="auto", the default index
    assert rec["method"] == "singscore" and rec["params"]["method_requested"] == "auto"
    assert rec["params"]["data_kind"] == "bulk" and "singscore" in rec["params"]["method_reason"]
    assert rec["data"]["kind"] == "bulk" and rec["data"]["n_obs"] == 29
    for comp in load_index().components:
        values = table[comp.set].to_numpy()
        assert np.unique(values).size > 5 and values.std() > 0, comp.set
        assert rec["floor"][comp.set]["fraction"] < 1
    assert table["dormancy_index"].nunique() == 29


def test_no_component_of_any_shipped_index_is_constant_on_ctc(ctc):
    """Every component of every shipped index that has a gene in the CTC counts varies across the 29 samples."""
    from dormsig.signatures import list_indices, load_index

    for name in list_indices():
        a = ctc.copy()
        table, rec = _quiet_score(a, index=name)
        for comp in load_index(name).components:
            if table[comp.set].isna().all():  # no gene in the data (CD177 alone): NaN, reported, not constant
                assert rec["n_genes_matched"][comp.set] == 0, (name, comp.set)
                continue
            assert table[comp.set].nunique() > 5, (name, comp.set)


def test_floor_warning_names_the_set_on_real_ctc(ctc):
    """HSC mimicry: CXCR4, CD34 and TEK all have zero counts in 19 of the 29 samples (counted from the counts)."""
    a = ctc.copy()
    n_none = int((_counts(a, HSC).sum(axis=1) == 0).sum())
    assert n_none == 19
    with pytest.warns(UserWarning, match=rf"floor score .* HSC {n_none}/29"):
        tl.score(a, {"HSC": HSC, "PROLIF": ["MKI67", "TOP2A", "PCNA", "MCM2", "CCNB1"]}, index=None)
    rec = a.uns["dormsig"]["score"]
    assert rec["floor"]["HSC"]["fraction"] == pytest.approx(n_none / 29)
    assert rec["floor"]["PROLIF"]["fraction"] < 0.5
    assert any("HSC 19/29" in w for w in rec["warnings"])
    assert not any("PROLIF" in w and "floor" in w for w in rec["warnings"])
    # the 19 floored samples are exactly those without a count of the three genes
    at_floor = np.isclose(a.obsm["dormsig_scores"]["HSC"], rec["floor"]["HSC"]["value"], atol=1e-12, rtol=0)
    np.testing.assert_array_equal(at_floor, _counts(a, HSC).sum(axis=1) == 0)


def test_floor_warning_on_real_single_cells(oligo):
    """UCell (the single-cell default) of CXCR4 alone is 0 where CXCR4 has no count (168 of the 184 cells) or
    ranks beyond max_rank=1500 in its cell (counted by hand: 1 more)."""
    a = oligo.copy()
    x = a.X.toarray()
    c = x[:, a.var_names.get_loc("CXCR4")]
    rank = (x > c[:, None]).sum(axis=1) + ((x == c[:, None]).sum(axis=1) + 1) / 2  # ties averaged, as UCell
    n_zero = int((c == 0).sum())
    n_floor = int(((c == 0) | (rank >= 1501)).sum())
    assert (n_zero, n_floor) == (168, 169)
    with pytest.warns(UserWarning, match=rf"CXCR4_SET {n_floor}/184 at 0"):
        tl.score(a, {"CXCR4_SET": ["CXCR4"], "UPR": ["ATF4", "DDIT3", "XBP1", "HSPA5", "HERPUD1"]}, index=None)
    rec = a.uns["dormsig"]["score"]
    assert rec["method"] == "ucell" and rec["params"]["max_rank"] == 1500 and rec["params"]["data_kind"] == "single_cell"
    assert rec["floor"]["CXCR4_SET"]["fraction"] == pytest.approx(n_floor / 184)


def test_ucell_on_bulk_ranks_all_genes_and_equals_pyucell(ctc):
    pyucell = pytest.importorskip("pyucell")
    sets = {"HSC": HSC, "PERK": ["EIF2AK3", "ATF4", "DDIT3", "PPP1R15A", "TRIB3"], "PROLIF": ["MKI67", "TOP2A", "PCNA"]}
    a = ctc.copy()
    table, rec = _quiet_score(a, sets, method="ucell", index=None)
    assert rec["params"]["max_rank"] == a.n_vars and "number of genes" in rec["params"]["max_rank_reason"]
    ref = ad.AnnData(X=a.X.copy(), obs=pd.DataFrame(index=a.obs_names), var=pd.DataFrame(index=a.var_names))
    pyucell.compute_ucell_scores(ref, {k: [f"{g}+" for g in v] for k, v in sets.items()}, max_rank=a.n_vars,
                                 n_jobs=1, missing_genes="skip")
    expected = ref.obs[[f"{k}_UCell" for k in sets]].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(table[list(sets)].to_numpy(), expected, atol=1e-6, rtol=0)
    # uncapped, a set is 0 only in the samples where none of its genes has a count
    for name, genes in sets.items():
        np.testing.assert_array_equal(table[name].to_numpy() == 0, _counts(a, genes).sum(axis=1) == 0)


def test_uncapped_ucell_and_singscore_agree_on_one_sided_sets(ctc):
    """Why singscore is the bulk default: same ranking for one-sided sets, no clipping of signed sets."""
    from scipy.stats import spearmanr

    a = ctc.copy()
    sets = {"HSC": HSC, "PROLIF": ["MKI67", "TOP2A", "PCNA", "MCM2", "CCNB1"],
            "SIGNED": {"up": ["CDKN1B", "TXNIP", "KLF4", "SESN1"], "down": ["MKI67", "TOP2A", "PCNA", "MCM2"]}}
    uc, _ = _quiet_score(a, sets, method="ucell", index=None)
    uc = uc.copy()
    ss, _ = _quiet_score(a, sets, method="singscore", index=None)
    for name in ("HSC", "PROLIF"):
        assert spearmanr(uc[name], ss[name]).statistic > 0.97
    # UCell's max(0, up - down) ties the proliferating samples at 0; singscore keeps them apart
    assert (uc["SIGNED"] == 0).sum() >= 5 and ss["SIGNED"].nunique() == 29


def test_shared_genes_between_index_components_are_warned(ctc):
    a = ctc.copy()
    index = {"name": "seed_2026_11", "version": "test",
             "components": [{"set": "HSC", "sign": 1}, {"set": "CD177", "sign": 1}, {"set": "PROLIF", "sign": -1}]}
    with pytest.warns(UserWarning, match=r"share genes.*CXCR4 \(HSC, CD177\); CD34 \(HSC, CD177\)"):
        tl.score(a, {"HSC": HSC, "CD177": CD177, "PROLIF": ["MKI67", "TOP2A", "PCNA"]}, index=index)
    shared = a.uns["dormsig"]["score"]["index"]["shared_genes"]
    assert {g: list(v) for g, v in shared.items()} == {"CXCR4": ["HSC", "CD177"], "CD34": ["HSC", "CD177"]}


def test_explicit_choices_are_kept_and_recorded(ctc):
    a = ctc.copy()
    _, rec = _quiet_score(a, {"HSC": HSC}, method="ucell", max_rank=3000, index=None, data_kind="single_cell")
    assert rec["params"]["max_rank"] == 3000 and rec["params"]["max_rank_reason"] == "given"
    assert rec["params"]["method_reason"] == "given" and rec["data"]["reason"] == "given (data_kind)"
    _, rec = _quiet_score(a, {"HSC": HSC}, index=None, data_kind="single_cell")
    assert rec["method"] == "ucell" and rec["params"]["max_rank"] == 1500
    with pytest.raises(Exception, match="data_kind"):
        tl.score(a, {"HSC": HSC}, index=None, data_kind="tissue")


def test_report_shows_present_detected_missing_and_the_warnings(ctc, tmp_path):
    from dormsig.report import write_report

    a = ctc.copy()
    _quiet_score(a, {"HSC": HSC, "PROLIF": ["MKI67", "TOP2A", "PCNA"]}, index=None)
    text = write_report(tmp_path / "r.html", adata=a).read_text()
    for column in ("n_present", "n_detected", "n_missing", "undetected"):
        assert f"<th>{column}</th>" in text
    assert "<h3>Warnings</h3>" in text and "HSC 19/29" in text and "TEK" in text


def test_cli_scores_a_small_batch_as_its_reference_was_scored(oligo, tmp_path):
    """A reference of 184 cells is scored with ucell/1500; 10 of those cells alone would look like bulk
    (<= 50 observations): with --reference the CLI scores them as the reference was, and ranks them."""
    import subprocess
    import sys

    from dormsig.io import write_h5ad

    cells = oligo.copy()
    write_h5ad(cells, tmp_path / "cells.h5ad")
    write_h5ad(cells[:10].copy(), tmp_path / "few.h5ad")

    def cli(*args):
        res = subprocess.run([sys.executable, "-m", "dormsig.cli", *args], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return res

    cli("reference", str(tmp_path / "cells.h5ad"), "--out", str(tmp_path / "ref.h5ad"))
    res = cli("score", str(tmp_path / "few.h5ad"), "--reference", str(tmp_path / "ref.h5ad"),
              "--out", str(tmp_path / "few.tsv"))
    assert "10 samples/cells scored with ucell" in res.stdout
    few = pd.read_csv(tmp_path / "few.tsv", sep="\t", index_col=0)
    assert few["percentile"].notna().all() and set(few["percentile_of"]) == {"reference"}
    ref = ad.read_h5ad(tmp_path / "ref.h5ad")
    assert ref.uns["dormsig"]["score"]["method"] == "ucell" and ref.uns["dormsig"]["score"]["params"]["max_rank"] == 1500
    # single-sample scores: the same numbers alone as among the 184 cells
    np.testing.assert_allclose(few["dormancy_index"], ref.obsm["dormsig_scores"]["dormancy_index"].iloc[:10], atol=1e-12)


def test_a_small_cells_selection_is_still_scored_as_cells(oligo):
    """40 cells of one tumour (cells=) alone would look like bulk (<= 50 observations): the kind of data
    is decided on all 184 cells."""
    ann = pd.read_csv(DATA / "de" / "oligo_annotations.txt", sep="\t", header=None, index_col=0)[1]
    a = oligo.copy()
    a.obs["type"] = ann.reindex(a.obs_names).to_numpy()
    assert int((a.obs["type"] == "malignant_93").sum()) == 40
    _, rec = _quiet_score(a, cells="type=malignant_93")
    assert rec["method"] == "ucell" and rec["params"]["data_kind"] == "single_cell"
    assert rec["data"]["reason"].startswith("all 184 observations") and rec["data"]["n_obs"] == 40
    sub = a[a.obs["type"] == "malignant_93"].copy()
    _, alone = _quiet_score(sub)
    assert alone["method"] == "singscore"  # what the selection alone would have been given
