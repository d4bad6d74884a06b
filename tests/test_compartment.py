"""Scoring tumour cells only (cells= / --cells), the compartment check and the report's findings.

Real data: 184 Smart-seq2 cells of 4 oligodendrogliomas (Tirosh et al. Nature 2016), whose
malignant / microglia-macrophage / oligodendrocyte annotation was made by the authors from
inferred copy-number changes, i.e. independently of marker genes. tests/data/compartment/README.md
says what was shipped and how.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dormsig.errors import InputError
from dormsig.io import read
from dormsig.report.findings import (
    ComponentResult,
    FindingsContext,
    ProgrammeComparison,
    caveat_sentences,
    compare_programme,
    component_sentence,
    findings_sentences,
    summary_sentence,
    verdict,
)
from dormsig.signatures import load_library
from dormsig.signatures.library import read_library_dir, shipped_path
from dormsig.tl import rank, score
from dormsig.tl.cells import parse_cells, select_cells
from dormsig.tl.compartment import check_compartments, compartment_message, load_markers

DATA = Path(__file__).parent / "data" / "compartment"
SHARED = Path("/work/shared/data/sc_oligodendroglioma_tirosh2016")
NON_TUMOUR = {"immune", "myeloid", "microglia", "endothelial", "fibroblast", "oligodendrocyte"}


@pytest.fixture(scope="module")
def oligo():
    adata = read(DATA / "oligo_counts_subset.csv.gz", sample_sheet=DATA / "oligo_cells.csv")
    assert adata.shape == (184, 1784)
    return adata


# ------------------------------------------------------------------------------------------- marker sets


def test_marker_sets_load_strictly_with_a_citation_per_gene():
    lib = read_library_dir(shipped_path() / "compartments")  # strict: every required field, known sources
    from dormsig.genes import official_symbols

    official = official_symbols()
    assert set(lib) == {"COMPARTMENT_IMMUNE", "COMPARTMENT_MYELOID", "COMPARTMENT_MICROGLIA",
                        "COMPARTMENT_ENDOTHELIAL", "COMPARTMENT_FIBROBLAST", "COMPARTMENT_OLIGODENDROCYTE",
                        "COMPARTMENT_PLATELET"}
    for sig in lib.values():
        assert not sig.down and len(sig.up) >= 6
        assert [g for g in sig.up if g not in official] == []
        cited = {e.gene: e for e in sig.evidence}
        assert set(cited) == set(sig.up)  # one record per gene
        for e in cited.values():
            assert e.kind == "paper" and e.detail and e.source in {s.key for s in sig.sources}
            assert next(s for s in sig.sources if s.key == e.source).doi
    assert lib["COMPARTMENT_IMMUNE"].up[0] == "PTPRC"


def test_marker_sets_are_disjoint_from_the_dormancy_programme():
    markers = {g for s in load_markers().values() for g in s.up}
    dormancy = load_library()
    # The seed's programme (HSC mimicry, UPR, CD177, Notch), proliferation and G0 arrest share no gene with them.
    for name, sig in dormancy.items():
        if sig.category[:1] in "abcde" or name.startswith("WIECEK2023"):
            assert not markers & set(sig.up + sig.down), name
    # The only overlaps with the whole library are the two documented in signatures/compartments/README.md.
    assert markers & {g for s in dormancy.values() for g in s.up + s.down} == {"CORO1A", "COL1A1"}
    # CXCR4 and CD34 (HSC mimicry) are expressed by leukocytes but are not markers.
    assert not markers & {"CXCR4", "CD34", "TEK", "CD177", "NOTCH1", "NOTCH2"}


# ------------------------------------------------------------------------------------------- selections


def test_parse_and_select_cells():
    obs = pd.DataFrame({"cell_type": ["malignant_1", "malignant_2", "T cell", "malignant_1"],
                        "tumour": [True, True, False, True]}, index=list("abcd"))
    adata = ad.AnnData(np.ones((4, 2)), obs=obs)
    assert parse_cells("cell_type = malignant_1, malignant_2").values == ("malignant_1", "malignant_2")
    assert parse_cells({"cell_type": ["x", "y"]}) == parse_cells("cell_type=x,y") == parse_cells(("cell_type", ["x", "y"]))
    assert select_cells(adata, "cell_type=malignant_*").tolist() == [True, True, False, True]
    assert select_cells(adata, "cell_type=malignant_2,T cell").tolist() == [False, True, True, False]
    assert select_cells(adata, "tumour=yes").tolist() == [True, True, False, True]
    assert select_cells(adata, "tumour=no").tolist() == [False, False, True, False]
    for spec, message in [("cell_type", "expected COLUMN=VALUE"), ("type=x", "no column 'type'"),
                          ("cell_type=B cell", "no value 'B cell' \\(values: T cell, malignant_1, malignant_2\\)"),
                          ("cell_type=B*", "no value 'B\\*'"), ("tumour=maybe", "yes/no")]:
        with pytest.raises(InputError, match=message):
            select_cells(adata, spec, what="--cells")


# ------------------------------------------------------------------------------------------- the rule, by hand


def _toy() -> ad.AnnData:
    """5 cells x genes with library sizes of exactly 10,000 counts, so 1 count = 100 CPM."""
    genes = ["PTPRC", "LAPTM5", "CORO1A", "CD53", "CD37", "CD52", "EPCAM", "KRT18", "C1QA", "C1QB", "C1QC", "CD14",
             "FILLER"]
    counts = pd.DataFrame(0, index=[f"c{i}" for i in range(5)], columns=genes)
    counts.loc["c0", ["PTPRC", "LAPTM5", "CORO1A"]] = 5         # 3 of 6 immune markers: immune
    counts.loc["c1", ["PTPRC", "LAPTM5"]] = 5                   # 2 of 6: not enough
    counts.loc["c2", ["EPCAM", "KRT18"]] = 50                   # epithelial only
    counts.loc["c3", ["C1QA", "C1QB", "CD14", "PTPRC", "LAPTM5", "CORO1A"]] = 2  # myeloid 3/4 beats immune 3/6
    counts.loc["c4", ["PTPRC", "LAPTM5", "CORO1A", "CD53"]] = [1, 1, 1, 0]  # at 100 CPM: exactly at the threshold
    counts["FILLER"] = 10000 - counts.drop(columns="FILLER").sum(axis=1)
    adata = ad.AnnData(np.log1p(counts.to_numpy(dtype=float)), obs=pd.DataFrame(index=counts.index),
                       var=pd.DataFrame(index=genes))
    adata.layers["counts"] = sp.csr_matrix(counts.to_numpy(dtype=float))
    adata.obs["dormsig_call"] = pd.Categorical(["dormant", "dormant", "dormant", "not_dormant", "dormant"])
    return adata


def test_rule_by_hand():
    adata = _toy()
    markers = {"COMPARTMENT_MYELOID": ["C1QA", "C1QB", "C1QC", "CD14", "LYZ"],
               "COMPARTMENT_IMMUNE": ["PTPRC", "LAPTM5", "CORO1A", "CD53", "CD37", "CD52"],
               "COMPARTMENT_ENDOTHELIAL": ["PECAM1", "VWF", "CDH5"]}  # 0 markers in the data: skipped
    s = check_compartments(adata, markers=markers)
    frac = adata.obsm["dormsig_compartment_fraction"]
    # by hand: immune fractions 3/6, 2/6, 0, 3/6, 3/6; myeloid (4 markers in the data) 0, 0, 0, 3/4, 0
    np.testing.assert_allclose(frac["immune"], [0.5, 2 / 6, 0, 0.5, 0.5])
    np.testing.assert_allclose(frac["myeloid"], [0, 0, 0, 0.75, 0])
    assert adata.obs["dormsig_compartment"].tolist() == ["immune", "none", "none", "myeloid", "immune"]
    assert s.skipped == {"COMPARTMENT_ENDOTHELIAL": "0 of 3 markers in the data (< 2)"}
    assert (s.n_calls, s.calls, s.calls_anchor, s.overall) == (4, {"immune": 2}, {"immune": 2},
                                                              {"myeloid": 1, "immune": 2})
    assert s.message.startswith("compartment check: 2 of 4 dormant calls express markers of a non-tumour "
                                "compartment: 2 immune (PTPRC+ in 2); 3 of 5 ")
    # A threshold just above 100 CPM: cell c4 (1 count in 10,000 per marker) loses its label.
    s2 = check_compartments(adata, markers=markers, min_cpm=100.01)
    assert adata.obs["dormsig_compartment"].tolist()[4] == "none" and s2.calls == {"immune": 1}
    rec = adata.uns["dormsig"]["compartment"]
    assert rec["params"]["min_cpm"] == 100.01 and rec["n_calls_outside"] == 1 and rec["calls"] == {"immune": 1}
    # log1p-normalised X alone gives the same labels (turned back into per-million values).
    del adata.layers["counts"]
    adata.uns["dormsig"]["normalise"] = {"target_sum": 10000.0}
    check_compartments(adata, markers=markers)
    assert adata.obs["dormsig_compartment"].tolist()[:4] == ["immune", "none", "none", "myeloid"]


# ------------------------------------------------------------------------------------------- real data


def _check_against_annotation(adata) -> None:
    check_compartments(adata)
    label = adata.obs["dormsig_compartment"].astype(str)
    ct = adata.obs["cell_type"].astype(str)
    oligo = ct == "Oligodendrocytes (non-malignant)"
    micro = ct == "Microglia/Macrophage"
    malignant = ct.str.startswith("malignant")
    assert (label[oligo] == "oligodendrocyte").all()  # 23 of 23
    assert label[micro].isin({"immune", "myeloid", "microglia"}).all()  # 19 of 19
    assert (label[malignant] == "none").all()  # 142 of 142


def test_compartments_agree_with_the_copy_number_annotation(oligo):
    _check_against_annotation(oligo.copy())


@pytest.mark.skipif(not SHARED.exists(), reason="shared data not available")
def test_compartments_agree_on_the_full_matrix():
    adata = read(SHARED / "oligodendroglioma_expression_downsampled.counts.matrix.gz")
    ann = pd.read_csv(SHARED / "oligodendroglioma_annotations_downsampled.txt", sep="\t", header=None, index_col=0)[1]
    adata.obs["cell_type"] = ann.reindex(adata.obs_names).to_numpy()
    _check_against_annotation(adata)


def test_check_names_the_non_malignant_calls_and_cells_removes_them(oligo):
    adata = oligo.copy()
    score(adata)
    rank(adata)
    s = check_compartments(adata)
    dormant = adata.obs["dormsig_call"] == "dormant"
    flagged = dormant & (adata.obs["dormsig_compartment"] != "none")
    non_malignant = dormant & (adata.obs["malignant"] == "no")
    assert non_malignant.sum() >= 10  # microglia are called dormant: CXCR4 drives HSC mimicry
    assert flagged.equals(non_malignant)  # the check names exactly the non-malignant calls
    assert s.n_calls_outside == int(non_malignant.sum()) and s.n_calls == int(dormant.sum())
    assert f"{s.n_calls_outside} of {s.n_calls} dormant calls" in s.message
    assert "--cells COLUMN=VALUE" in compartment_message(s, advice="cli")
    assert "cells='COLUMN=VALUE'" in compartment_message(s)

    restricted = oligo.copy()
    score(restricted, cells="malignant=yes")
    rank(restricted)
    s2 = check_compartments(restricted)
    mal = (restricted.obs["malignant"] == "yes").to_numpy()
    calls = restricted.obs["dormsig_call"].astype(str)
    assert (calls[~mal] == "not_scored").all() and calls[mal].isin({"dormant", "not_dormant"}).all()
    assert restricted.obsm["dormsig_scores"].loc[~mal].isna().all().all()
    assert restricted.obs.loc[~mal, "dormsig_rank"].isna().all()
    assert s2.n_calls_outside == 0 and s2.n_calls == int((calls == "dormant").sum()) > 0
    assert "none of the" in s2.message and "scored only malignant=yes" in s2.message
    assert restricted.uns["dormsig"]["score"]["cells"]["n_selected"] == 142
    # ucell is single-sample: the malignant cells' scores are unchanged; the threshold is their own quantile.
    full = adata.obsm["dormsig_scores"].loc[mal]
    pd.testing.assert_frame_equal(restricted.obsm["dormsig_scores"].loc[mal], full)
    index = full["dormancy_index"].to_numpy()
    assert restricted.uns["dormsig"]["rank"]["threshold"] == pytest.approx(float(np.quantile(index, 0.9)))
    # and the result is what scoring the malignant cells alone gives
    alone = oligo[mal].copy()
    score(alone)
    pd.testing.assert_frame_equal(alone.obsm["dormsig_scores"], restricted.obsm["dormsig_scores"].loc[mal])


def test_rank_restricts_an_unrestricted_score(oligo):
    adata = oligo.copy()
    score(adata)
    rank(adata, cells="cell_type=malignant_*", rule="permutation", n_permutations=20, seed=1)
    mal = (adata.obs["malignant"] == "yes").to_numpy()
    assert adata.obs.loc[~mal, "dormsig_pvalue"].isna().all() and adata.obs.loc[mal, "dormsig_pvalue"].notna().all()
    assert (adata.obs.loc[~mal, "dormsig_call"] == "not_scored").all()
    assert adata.uns["dormsig"]["rank"]["cells"]["values"] == ["malignant_*"]


def test_cohort_method_sees_only_the_selection(oligo):
    adata = oligo.copy()
    out = score(adata, method="zmean", cells="malignant=yes", copy=True)
    assert "dormsig_scores" not in adata.obsm  # copy=True leaves the input alone
    mal = (oligo.obs["malignant"] == "yes").to_numpy()
    alone = oligo[mal].copy()
    score(alone, method="zmean")
    pd.testing.assert_frame_equal(alone.obsm["dormsig_scores"], out.obsm["dormsig_scores"].loc[mal])
    assert out.obs["dormsig_scored"].sum() == 142


# ------------------------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from dormsig.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_cli_score_with_and_without_cells(tmp_path):
    h5ad = tmp_path / "oligo.h5ad"
    assert _cli("read", str(DATA / "oligo_counts_subset.csv.gz"), "--sample-sheet", str(DATA / "oligo_cells.csv"),
                "--out", str(h5ad)).returncode == 0
    # the 1,784-gene subset holds the most-counted genes (43% zeros): it would pass for bulk, so say it is cells
    plain = _cli("score", str(h5ad), "--out", str(tmp_path / "all.tsv"), "--data-kind", "single_cell")
    assert plain.returncode == 0
    calls = pd.read_csv(tmp_path / "all.tsv", sep="\t", index_col=0)["call"]
    cells = pd.read_csv(DATA / "oligo_cells.csv", index_col=0)["malignant"].reindex(calls.index)
    n_calls, n_normal = int((calls == "dormant").sum()), int(((calls == "dormant") & (cells == "no")).sum())
    assert n_normal > 0
    assert f"{n_normal} of {n_calls} dormant calls express markers of a non-tumour compartment" in plain.stdout
    assert "--cells COLUMN=VALUE" in plain.stdout and "cells='" not in plain.stdout
    side = json.loads(Path(f"{tmp_path / 'all.tsv'}.provenance.json").read_text())
    # independent reference: the authors' annotation (copy-number based) of the dormant calls; how many
    # there are follows the index (11 of 19 with quiescence 2026.12.1: non-cycling cells look quiescent)
    assert side["compartment"]["n_calls_outside"] == n_normal

    only = _cli("score", str(h5ad), "--out", str(tmp_path / "malignant.tsv"), "--cells", "malignant=yes",
                "--data-kind", "single_cell")
    assert only.returncode == 0, only.stderr
    assert "none of the" in only.stdout and "142 of 184" in only.stdout
    table = pd.read_csv(tmp_path / "malignant.tsv", sep="\t", index_col=0)
    assert (table["call"] == "not_scored").sum() == 42

    bad = _cli("score", str(h5ad), "--out", str(tmp_path / "bad.tsv"), "--cells", "malignent=yes")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
    assert "--cells: obs has no column 'malignent'" in bad.stderr
    assert not (tmp_path / "bad.tsv").exists()


# ------------------------------------------------------------------------------------------- findings


def _comparison(*results: ComponentResult, **kw) -> ProgrammeComparison:
    base = dict(groupby="g", test="NOTCH2_high", reference="NOTCH1_high", unit="samples", method="ucell",
                results=results, grouping_genes=("NOTCH2", "NOTCH1"))
    base.update(kw)
    return ProgrammeComparison(**base)


def test_findings_words_from_typed_results():
    up = ComponentResult("PERK-ATF4-CHOP", 1, ("ATF4",), 7, 6, 0.21, 0.12, 0.71, 0.004, 0.02, 0.0)
    against = ComponentResult("proliferation", -1, ("MKI67",), 7, 6, 0.3, 0.1, 0.8, 0.001, 0.01, 0.0)
    flat = ComponentResult("HSC mimicry", 1, ("CXCR4",), 7, 6, 0.1, 0.1, 0.05, 0.9, 0.9, 0.2)
    floor = ComponentResult("CD177", 1, ("CD177",), 7, 6, 0.0, 0.0, 0.0, 1.0, float("nan"), 0.9,
                            note="its score sits at its lowest value in 90% of the observations (genes not detected)")
    circ = ComponentResult("NOTCH2 over NOTCH1", 1, ("NOTCH2", "NOTCH1"), 7, 6, 0.4, -0.3, 1.0, 0.001,
                           circular=("NOTCH2", "NOTCH1"))
    c = _comparison(up, against, flat, floor, circ, tissue="circulating tumour cells (CTCs) from blood",
                    block="patient", blocks_test=4, blocks_ref=5)
    assert [verdict(r) for r in c.results] == ["as predicted", "against", "no detectable difference",
                                                "not assessed", "circular"]
    assert component_sentence(up, c) == (
        "PERK-ATF4-CHOP rose, as the seed predicts (median score 0.21 in NOTCH2_high vs 0.12 in NOTCH1_high; "
        "Cliff's delta +0.71; Mann-Whitney p = 0.004, BH q = 0.020).")
    assert component_sentence(against, c).startswith("proliferation rose, against the seed's prediction (lower")
    assert component_sentence(floor, c) == (
        "CD177 could not be assessed: its score sits at its lowest value in 90% of the observations (genes not "
        "detected); the difference it shows (Cliff's delta +0.00, Mann-Whitney p = 1.000) rests on the few "
        "observations where its genes are detected.")
    assert "built in and is not evidence" in component_sentence(circ, c)
    assert summary_sentence(c) == (
        "Of the 3 components of the seed's programme that could be assessed without circularity, 1 moved as the "
        "seed predicts (PERK-ATF4-CHOP), 1 moved against it (proliferation) and 1 did not differ detectably "
        "(HSC mimicry) (BH q < 0.05). Not counted: CD177, NOTCH2 over NOTCH1.")
    caveats = " ".join(caveat_sentences(c))
    assert "no compartment check was run" in caveats
    assert "defined by NOTCH2 and NOTCH1 expression, and NOTCH2 over NOTCH1 contains those genes" in caveats
    assert "4 and 5 levels of 'patient'" in caveats and "weak evidence" in caveats
    assert "these are circulating tumour cells (CTCs) from blood, not bone-marrow DTCs" in caveats


def test_compare_programme_numbers_by_hand():
    """Cliff's delta against a brute-force count of pairs; circularity and floors found from the data."""
    rng = np.random.default_rng(3)
    n = 24
    genes = ["CXCR4", "CD34", "TEK", "ATF4", "DDIT3", "EIF2AK3", "ASNS", "TRIB3", "CD177", "NOTCH2", "NOTCH1",
             "MKI67", "TOP2A", "CCNB1", "CDK1"] + [f"G{i}" for i in range(200)]
    x = rng.poisson(5, size=(n, len(genes))).astype(float)
    x[:, genes.index("CD177")] = 0
    x[:, genes.index("CXCR4")] = x[:, genes.index("CD34")] = x[:, genes.index("TEK")] = 0
    group = np.array(["NOTCH2_high"] * 12 + ["NOTCH1_high"] * 12)
    x[:12, genes.index("DDIT3")] += 40  # PERK-ATF4-CHOP up in the NOTCH2 group
    adata = ad.AnnData(x, obs=pd.DataFrame({"g": group, "patient": np.repeat(list("abcdef"), 4)},
                                           index=[f"s{i}" for i in range(n)]), var=pd.DataFrame(index=genes))
    c = compare_programme(adata, "g", "NOTCH2_high", "NOTCH1_high",
                          context=FindingsContext(block="patient", tissue="a cell line"))
    res = {r.label: r for r in c.results}
    from dormsig.tl.score import score_matrix

    perk = load_library()["DORMSIG_PERK_ATF4_CHOP_CORE"]
    idx = [genes.index(g) for g in perk.up if g in genes]
    assert c.method == "singscore"  # 24 samples: bulk, so the default method is singscore
    s = score_matrix(x, {"p": (idx, [])}, method="singscore")["p"].to_numpy()
    a, b = s[:12], s[12:]
    delta = (np.sum(a[:, None] > b[None, :]) - np.sum(a[:, None] < b[None, :])) / (12 * 12)
    assert res["PERK-ATF4-CHOP"].delta == pytest.approx(delta)
    assert res["PERK-ATF4-CHOP"].median_test == pytest.approx(np.median(a))
    assert res["HSC mimicry"].note and "lowest value in 100%" in res["HSC mimicry"].note
    assert res["NOTCH2 over NOTCH1"].circular == ("NOTCH2", "NOTCH1")
    assert res["CD177"].circular == (("NOTCH2",) if "NOTCH2" in load_library()["DORMSIG_CD177_MARKER"].up else ())
    assert (c.blocks_test, c.blocks_ref, c.unit) == (3, 3, "samples")
    assert findings_sentences(c)[0] == "NOTCH2_high (12 samples) compared with NOTCH1_high (12 samples) in 'g':"


def test_report_has_the_findings_and_compartment_sections(oligo, tmp_path):
    from dormsig.de import define_groups
    from dormsig.report import SECTIONS, write_report

    adata = oligo.copy()
    define_groups(adata, high="NOTCH2", versus="NOTCH1", key_added="grp")
    score(adata)
    rank(adata)
    check_compartments(adata)
    out = write_report(tmp_path / "r.html", adata=adata, groupby="grp",
                       findings=FindingsContext(tissue="oligodendroglioma cells", block="cell_type"))
    text = out.read_text()
    headings = [h for _, h in SECTIONS]
    assert headings[1] == "What the data show about the NOTCH2-niche programme"
    assert "<h2>What the data show about the NOTCH2-niche programme</h2>" in text
    assert "<h2>Where the dormant calls fall</h2>" in text
    assert "compared with NOTCH1_high" in text and "Not counted:" in text
    assert "dormant calls express markers of a non-tumour compartment" in text
    assert "these are oligodendroglioma cells, not bone-marrow DTCs" in text


def test_config_takes_cells_and_tissue():
    from dormsig.errors import ConfigError
    from dormsig.pipeline import demo_config, validate_config

    cfg = validate_config({"datasets": {"x": {"input": "a.csv", "cells": "malignant=yes", "tissue": "bone marrow"}}})
    assert cfg["datasets"]["x"]["cells"] == "malignant=yes"
    with pytest.raises(ConfigError, match="datasets.x.cells"):
        validate_config({"datasets": {"x": {"input": "a.csv", "cells": ["malignant"]}}})
    assert "circulating tumour cells" in demo_config()["datasets"]["aceto2014_ctc"]["tissue"]
