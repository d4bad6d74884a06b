"""DE tables as R users write them (real DESeq2 outputs, tests/data/enrich/README.md), read for enrichment:
layouts, gene column, symbol harmonisation, filtered-table detection, bad input."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dormsig.de import enrich, read_de_table
from dormsig.de.de_table import as_de_table, detect_partial
from dormsig.errors import FormatError, InputError

DATA = Path(__file__).parent / "data" / "enrich"
CTC_FULL = DATA / "ctc_notch2_vs_notch1_deseq2_writetable.tsv.gz"
CTC_TOP = DATA / "ctc_notch2_vs_notch1_deseq2_padj0.1.csv"
CTC_TOP_NUMBERED = DATA / "ctc_notch2_vs_notch1_deseq2_padj0.1_rownumbers.csv"
CTC_LIMMA = DATA / "ctc_notch2_vs_notch1_limma_shaped_toptable.txt"
AIRWAY_TOP = DATA / "airway_dex_deseq2_top_writetable.txt"


def test_r_write_table_layout_reads_row_names_as_genes():
    t = read_de_table(CTC_FULL)
    raw = pd.read_csv(CTC_FULL, sep="\t")  # pandas puts R's row names in the index
    assert t.attrs["layout"].startswith("R write.table") and t.attrs["gene_column"] == ""
    assert t.attrs["metric"] == "stat" and not t.attrs["partial"]
    # a few old symbols become the same current symbol (harmonised as in read): the strongest row is kept
    assert len(raw) == 14048 and len(t) + t.attrs["n_duplicates"] == 14048 and t.attrs["n_duplicates"] < 20
    assert t.loc["NOTCH1", "stat"] == raw.loc["NOTCH1", "stat"] == pytest.approx(-7.6442)
    assert t.loc["NOTCH1", "padj"] == pytest.approx(2.9649e-12)
    assert list(t["stat"]) == sorted(t["stat"], reverse=True)


def test_old_symbols_are_brought_to_current_ones_as_read_does():
    t = read_de_table(CTC_FULL)
    for old, new in (("H2AFX", "H2AX"), ("CASC5", "KNL1"), ("FAM64A", "PIMREG"), ("ERO1L", "ERO1A")):
        assert new in t.index and old not in t.index
        assert t.loc[new, "gene_in_table"] == old
    assert t.attrs["genes"]["species"] == "human" and t.attrs["genes"]["n_renamed"] >= 4
    # and the sets find them (they missed before: issue 11)
    res = enrich(t, {"RENAMED": ["H2AX", "KNL1", "PIMREG", "ERO1A"]}, permutations=10).set_index("set")
    assert res.loc["RENAMED", "n_matched"] == 4
    raw = read_de_table(CTC_FULL, harmonise=False)
    assert "H2AFX" in raw.index and "H2AX" not in raw.index


def test_write_csv_layouts_row_names_and_row_numbers():
    named = read_de_table(CTC_TOP)
    numbered = read_de_table(CTC_TOP_NUMBERED)
    assert named.attrs["gene_column"] == "" and numbered.attrs["gene_column"] == "gene"  # row numbers are not genes
    assert len(named) == len(numbered) == 839
    pd.testing.assert_series_equal(named["stat"], numbered["stat"])
    assert named.index[0] == "NOTCH1" or "NOTCH1" in named.index


def test_limma_toptable_shape_uses_t_and_row_names():
    t = read_de_table(CTC_LIMMA)
    assert t.attrs["metric"] == "t" and t.attrs["gene_column"] == ""
    ref = read_de_table(CTC_TOP)
    assert t.loc["RILP", "stat"] == ref.loc["RILP", "stat"] == pytest.approx(-11.128)
    assert t.loc["RILP", "log2FoldChange"] == pytest.approx(-30)


def test_space_separated_quoted_write_table_with_ensembl_ids():
    t = read_de_table(AIRWAY_TOP)
    assert t.attrs["layout"].startswith("R write.table") and t.attrs["partial"]
    assert "every adjusted p-value" in t.attrs["partial_reason"]
    assert "SPARCL1" in t.index and t.loc["SPARCL1", "gene_in_table"] == "ENSG00000152583"
    assert t.loc["SPARCL1", "stat"] == pytest.approx(24.856)


def test_filtered_dataframe_is_detected_and_gets_the_rank_test():
    full = read_de_table(CTC_FULL)
    assert not full.attrs["partial"]
    frame = pd.DataFrame(full[full["padj"] < 0.05]).reset_index(drop=True)  # a DataFrame, no attrs
    frame.attrs = {}
    partial, reason = detect_partial(as_de_table(frame))
    assert partial and "adjusted p-value" in reason
    with pytest.warns(UserWarning, match="looks filtered"):
        res = enrich(frame, {"TOP": frame.sort_values("stat").gene.tolist()[-8:], "ALL": frame.gene.tolist()[:60]})
    assert (res["method"] == "rank_position_partial").all() and res.set_index("set").loc["TOP", "pvalue"] < 1e-6
    # a statistic-only filtered table (|stat| > 2, no p-values) is caught by the gap around 0
    strong = pd.DataFrame({"gene": full.index, "stat": full["stat"].to_numpy()})
    strong = strong[strong["stat"].abs() > 2]
    assert as_de_table(strong).attrs["partial"]


def test_signed_dict_form_is_accepted():
    t = read_de_table(CTC_FULL)
    up = t.index[:6].tolist()
    down = t.index[-6:].tolist()
    res = enrich(t, {"SIGNED": {"up": up, "down": down}}, permutations=50).set_index("set")
    assert list(res.index) == ["SIGNED|down", "SIGNED|up"] or set(res.index) == {"SIGNED|up", "SIGNED|down"}
    assert res.loc["SIGNED|up", "n_matched"] == 6 and res.loc["SIGNED|up", "direction"] == "up"
    assert res.loc["SIGNED|down", "n_matched"] == 6 and res.loc["SIGNED|down", "direction"] == "down"


def test_sets_containing_the_grouping_genes_are_flagged_circular(tmp_path):
    sets = {"NOTCH1_ONLY": ["NOTCH1"], "NOTCH2_ONLY": ["NOTCH2"], "UPR": ["HSPA5", "XBP1", "ATF4", "DDIT3"]}
    with pytest.warns(UserWarning, match="circular"):
        res = enrich(CTC_FULL, sets, grouping_genes=["NOTCH2", "NOTCH1"], permutations=10).set_index("set")
    assert res.loc["NOTCH1_ONLY", "circular"] and res.loc["NOTCH1_ONLY", "circular_genes"] == "NOTCH1"
    assert res.loc["NOTCH2_ONLY", "circular"] and not res.loc["UPR", "circular"]
    assert np.isnan(res.loc["NOTCH1_ONLY", "pvalue_excl_grouping"])  # nothing left without NOTCH1
    assert res.attrs["provenance"]["circular_sets"] == ["NOTCH1_ONLY", "NOTCH2_ONLY"] or \
        set(res.attrs["provenance"]["circular_sets"]) == {"NOTCH1_ONLY", "NOTCH2_ONLY"}
    # from the provenance that `dormsig de` writes beside its table
    copy = tmp_path / CTC_FULL.name
    shutil.copy(CTC_FULL, copy)
    groups = {"step": "groups", "key": "dormsig_group", "params": {"high": "NOTCH2", "versus": "NOTCH1",
                                                                   "from_column": None}}
    copy.with_name(copy.name + ".provenance.json").write_text(json.dumps({"groups": groups,
                                                                          "de": {"params": {"group_key": "dormsig_group"}}}))
    with pytest.warns(UserWarning, match="circular"):
        res2 = enrich(copy, sets, permutations=10).set_index("set")
    assert res2.loc["NOTCH1_ONLY", "circular"] and res2.loc["NOTCH2_ONLY", "circular"]


def test_circular_gsea_set_is_retested_without_the_grouping_genes():
    t = read_de_table(CTC_FULL)
    big = ["NOTCH1", *t.index[:30].tolist()]
    with pytest.warns(UserWarning, match="circular"):
        res = enrich(t, {"BIG": big}, grouping_genes=["NOTCH1"], permutations=100, seed=1).set_index("set")
    assert res.loc["BIG", "method"] == "gsea_prerank" and res.loc["BIG", "circular"]
    assert 0 < res.loc["BIG", "pvalue_excl_grouping"] <= 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gene_column": "log2FoldChange"}, "numbers"),  # the symptom, forced
        ({"gene_column": "nope"}, "gene column 'nope' not found"),
        ({"stat": "nope"}, "statistic column 'nope' not found"),
    ],
)
def test_bad_columns_are_named(kwargs, message):
    with pytest.raises((InputError, FormatError), match=message):
        t = read_de_table(CTC_TOP, **kwargs)
        enrich(t)


def test_no_statistic_and_all_nan_statistic(tmp_path):
    raw = pd.read_csv(CTC_TOP, index_col=0)
    no_stat = tmp_path / "no_stat.csv"
    raw[["baseMean", "lfcSE"]].to_csv(no_stat)
    with pytest.raises(FormatError, match=r"no statistic .* stat=") as err:
        read_de_table(no_stat)
    assert len(str(err.value)) - len(str(no_stat)) <= 180  # one line, the path as given + the message
    nan_stat = tmp_path / "nan_stat.tsv"
    raw.assign(stat="NA").to_csv(nan_stat, sep="\t")
    with pytest.raises(InputError, match=r"statistic column 'stat' is empty") as err:
        read_de_table(nan_stat)
    assert len(str(err.value)) - len(str(nan_stat)) <= 180


def test_ids_that_are_not_genes_are_refused_with_the_likely_cause(tmp_path):
    raw = pd.read_csv(CTC_FULL, sep="\t")
    probes = raw.copy()
    probes.index = [f"{1000 + i}_at" for i in range(len(raw))]
    path = tmp_path / "probes.tsv"
    probes.to_csv(path, sep="\t")
    with pytest.raises(InputError, match="probe IDs"):
        enrich(path)
    fly = raw.copy()
    fly.index = [f"FBgn{i:07d}" for i in range(len(raw))]
    fly.to_csv(path, sep="\t")
    with pytest.raises(InputError, match="wrong species"):
        enrich(path)


def test_custom_ids_with_matching_custom_sets_still_work():
    """IDs of no known species (a custom organism) are matched by exact name, not refused."""
    rng = np.random.default_rng(0)
    genes = [f"Contig{i}" for i in range(3000)]
    de = pd.DataFrame({"gene": genes, "stat": rng.normal(size=3000)})
    top = de.sort_values("stat").gene.tolist()[-3:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = enrich(de, {"TOP": top, "SOME": genes[:40]}, permutations=20).set_index("set")
    assert res.loc["TOP", "n_matched"] == 3 and res.loc["TOP", "pvalue"] < 1e-6


def test_anndata_input_takes_the_grouping_genes_from_its_provenance():
    """An AnnData whose groups were defined on NOTCH2/NOTCH1 (define_groups) flags the NOTCH sets by itself."""
    import anndata as ad

    from dormsig.de import define_groups
    from dormsig.pp import normalise

    counts = pd.read_csv(Path(__file__).parent / "data" / "de" / "ctc_counts_subset.csv.gz", index_col=0).T
    adata = ad.AnnData(X=counts.to_numpy(dtype=np.float64), var=pd.DataFrame(index=counts.columns),
                       obs=pd.DataFrame(index=counts.index))
    adata.layers["counts"] = adata.X.copy()
    normalise(adata)
    define_groups(adata, "NOTCH2", "NOTCH1")
    table = read_de_table(CTC_FULL)  # the R result of the same contrast stands in for dormsig.de.deseq's
    adata.uns["dormsig"]["dormsig_de"] = {"params": {"group_key": "dormsig_group"}, "table": table}
    with pytest.warns(UserWarning, match="circular"):
        res = enrich(adata, {"NOTCH1_ONLY": ["NOTCH1"], "UPR": ["HSPA5", "XBP1", "ATF4", "DDIT3"]}, permutations=10)
    res = res.set_index("set")
    assert res.loc["NOTCH1_ONLY", "circular"] and not res.loc["UPR", "circular"]
    assert list(adata.uns["dormsig"]["dormsig_enrich"]["grouping_genes"]) == ["NOTCH1", "NOTCH2"]
    # groups taken from a column: no gene defined them, nothing is flagged
    adata.uns["dormsig"]["groups"]["params"]["from_column"] = "type"
    res = enrich(adata, {"NOTCH1_ONLY": ["NOTCH1"]}, permutations=10)
    assert not res["circular"].any()


def test_byte_order_mark_and_gzip_do_not_change_the_table(tmp_path):
    import gzip

    text = CTC_TOP_NUMBERED.read_text()
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    gz = tmp_path / "top.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    ref = read_de_table(CTC_TOP_NUMBERED)
    for path in (bom, gz):
        t = read_de_table(path)
        assert t.attrs["gene_column"] == "gene"
        pd.testing.assert_frame_equal(t, ref, check_like=False)
