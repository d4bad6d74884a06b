"""The shipped dormancy indices: disjoint components, and evidence that the validation harness reproduces.

The evidence test recomputes, on a real labelled dataset shipped in tests/data/validation (GSE83142
label-retaining vs proliferating cells, whole), the values stored in the index YAMLs by
``benchmarks/validate_indices.py --write``, and checks the harness's reference scorer against the value
the validation pack's authors computed independently (pack README: Wiecek z-score AUROC 0.924).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dormsig.errors import SignatureError
from dormsig.signatures import IndexEvidence, list_indices, load_index, load_library
from dormsig.signatures.index import evidence_from_dict, index_from_dict

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "validation"
PACK_DATASETS = {"gse83142_lrc", "gse75367_ctc", "musc_activation", "fibroblast_gqs", "gse124109_ref_depth",
                 "nsclc_ccle_g0", "fibroblast_pd_aux"}


@pytest.fixture(scope="module")
def lib():
    return load_library()


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("validate_indices", ROOT / "benchmarks" / "validate_indices.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lrc_result(harness):
    return harness.run(DATA, datasets=("gse83142_lrc",), n_boot=0)


def test_shipped_indices_and_default():
    assert list_indices() == ["notch2_niche", "quiescence"]
    default = load_index()
    assert default.name == "quiescence" and default.evidence is not None
    assert [(c.set, c.sign, c.weight) for c in default.components] == [
        ("DORMSIG_PROLIFERATION_CORE", -1, 0.5),
        ("WIECEK2023_G0_ARREST_DOWNREGULATED", -1, 1.0),
    ]
    assert default.version == "2026.12.1"  # 2026.12.0 had the G0-arrest up half and proliferation weight 1


@pytest.mark.parametrize("name", ["quiescence", "notch2_niche"])
def test_index_components_are_disjoint(lib, name):
    index = load_index(name)
    # Independent of DormancyIndex.overlaps: count every gene (up and down parts) over all components.
    genes = [g for c in index.components for g in lib[c.set].genes]
    assert len(genes) == len(set(genes)), sorted({g for g in genes if genes.count(g) > 1})
    assert index.overlaps(lib) == {}


def test_overlaps_names_shared_genes(lib):
    """The disjointness check can fail: the old CD177 co-markers and HSC sets share CXCR4 and CD34."""
    index = index_from_dict({"name": "x", "version": "1", "components": [
        {"set": "DORMSIG_HSC_MIMICRY_CORE", "sign": 1}, {"set": "DORMSIG_HSC_MIMICRY_EXTENDED", "sign": 1},
        {"set": "DORMSIG_PROLIFERATION_CORE", "sign": -1}]})
    assert index.overlaps(lib) == {("DORMSIG_HSC_MIMICRY_CORE", "DORMSIG_HSC_MIMICRY_EXTENDED"): ("CD34", "CXCR4", "TEK")}


def test_cd177_set_is_cd177_alone_and_halves_equal_wiecek_parts(lib):
    assert lib["DORMSIG_CD177_MARKER"].up == ("CD177",)
    caveats = " ".join(lib["DORMSIG_CD177_MARKER"].caveats)
    assert "CXCR4 -> DORMSIG_HSC_MIMICRY_CORE (abstract: CD177HIGH cells were also CXCR4HIGH)" in caveats
    assert "NOTCH2 -> DORMSIG_NOTCH2_DORMANCY" in caveats and "CD34 -> DORMSIG_HSC_MIMICRY_CORE" in caveats
    assert lib["WIECEK2023_G0_ARREST_UPREGULATED"].up == lib["WIECEK2023_G0_ARREST"].up
    assert lib["WIECEK2023_G0_ARREST_DOWNREGULATED"].up == lib["WIECEK2023_G0_ARREST"].down
    assert lib["WIECEK2023_G0_ARREST_DOWNREGULATED"].direction == "down_in_dormancy"
    assert "GPL-3.0" in lib["WIECEK2023_G0_ARREST_UPREGULATED"].licence


@pytest.mark.parametrize("name", ["quiescence", "notch2_niche"])
def test_evidence_covers_the_pack(name):
    ev = load_index(name).evidence
    assert isinstance(ev, IndexEvidence)
    assert {r.dataset for r in ev.results} == PACK_DATASETS
    assert "357b911" in ev.design and "method auto as users get it" in ev.method
    assert ev.library_version == load_library().version
    if name == "quiescence":  # chosen on two datasets, the others held out, and it says so
        assert "training datasets gse83142_lrc and gse124109_ref_depth only" in ev.design
    frame = load_index(name).evidence_table()
    assert list(frame.columns[:4]) == ["dataset", "metric", "value", "n"] and len(frame) == len(ev.results)


@pytest.mark.parametrize("name", ["quiescence", "notch2_niche"])
def test_shipped_evidence_matches_the_harness_on_real_data(lrc_result, name):
    """The YAML values are what the harness computes on the shipped GSE83142 cells (rounded to 4 decimals)."""
    table = lrc_result["table"]
    row = next(r for r in load_index(name).evidence.results if r.dataset == "gse83142_lrc")
    assert row.metric == "auroc" and row.n == lrc_result["n"]["LRC"] == 48

    def same(stored, computed):
        if stored is None:
            return not math.isfinite(computed)
        return abs(stored - computed) <= 5e-5

    assert same(row.value, table.loc[f"index:{name}", "LRC"]), (row.value, table.loc[f"index:{name}", "LRC"])
    assert same(row.proliferation, table.loc["DORMSIG_PROLIFERATION_CORE", "LRC"])
    assert same(row.wiecek, table.loc["WIECEK2023_G0_ARREST", "LRC"])
    assert same(row.wiecek_zscore, table.loc["ref:wiecek_z", "LRC"])


def test_harness_reference_scorer_agrees_with_the_pack_authors(lrc_result):
    """Independent reference: the pack README's Wiecek z-score (0.924) and -prolif (0.607) AUROCs on these cells.

    The small difference for Wiecek comes from gene identifiers (the harness maps old symbols such as
    WHSC1 to current ones, so one or two more genes match)."""
    table = lrc_result["table"]
    assert abs(table.loc["ref:wiecek_z", "LRC"] - 0.924) < 0.01
    assert abs(table.loc["ref:-prolif8_z", "LRC"] - 0.607) < 0.002
    # The quiescence index is the combination of its set scores (checked inside the harness too).
    assert 0.5 < table.loc["index:quiescence", "LRC"] < 1.0
    # notch2_niche has no index here: CD177 is not in this matrix; the other components are reported apart.
    assert not np.isfinite(table.loc["index:notch2_niche", "LRC"])
    assert np.isfinite(table.loc["present:notch2_niche", "LRC"])
    assert lrc_result["info"]["gse83142_lrc"]["index:notch2_niche"]["missing_components"] == ["DORMSIG_CD177_MARKER"]


def test_goal_shortfall_on_real_data(lrc_result, harness, lib):
    """The goal of issue 12 is not reached, and the shortfall is the one docs/evidence.md states.

    On the label-retaining cells the index beats proliferation alone but not the best single published
    set scored the same way (HALLMARK_E2F_TARGETS), nor Wiecek 2023 scored as published (z-scores)."""
    table = lrc_result["table"]["LRC"]
    q = table["index:quiescence"]
    published = harness.published_rows(lib)
    same_method = table[[r for r in published if not r.startswith("ref:")]]
    assert same_method.idxmax() == "HALLMARK_E2F_TARGETS"
    assert q == pytest.approx(0.8445, abs=5e-4) and same_method.max() == pytest.approx(0.9286, abs=5e-4)
    assert table["DORMSIG_PROLIFERATION_CORE"] < q < same_method.max() < table["ref:wiecek_z"] + 1e-9
    # Over the stored evidence (all 6 goal datasets): better than proliferation alone on average.
    rows = [r for r in load_index("quiescence").evidence.results if r.role and not r.role.startswith(("extra",
                                                                                                      "specificity"))]
    for metric in ("auroc", "spearman"):
        mine = [r for r in rows if r.metric == metric]
        assert np.mean([r.value for r in mine]) > np.mean([r.proliferation for r in mine])


def test_design_choice_reads_only_the_training_columns(harness):
    """choose_candidate: the best two-arm design on LRC and REF; held-out columns and one-arm designs never matter."""
    metrics = list(harness.METRICS)
    rows = [f"cand:{n}" for n in harness.CANDIDATES]
    cols = [m.key for m in metrics]
    table = pd.DataFrame(0.5, index=rows, columns=cols)
    table.loc["cand:P.5 D1", ["LRC", "REF"]] = [0.845, 0.551]  # 2*0.845-1 = 0.69; mean with 0.551 = 0.6205
    table.loc["cand:P1 D1 (no G0 up half)", ["LRC", "REF"]] = [0.824, 0.549]  # 0.5985
    table.loc["cand:D1 (G0 down half alone)", ["LRC", "REF"]] = [0.99, 0.99]  # one arm: excluded
    assert harness.choose_candidate(table, metrics) == "P.5 D1"
    table.loc["cand:P1 D1 (no G0 up half)", [c for c in cols if c not in harness.TRAIN]] = 1.0  # held out
    assert harness.choose_candidate(table, metrics) == "P.5 D1"
    table.loc["cand:P1 D1 (no G0 up half)", "REF"] = 0.6  # training: 0.624 > 0.6205
    assert harness.choose_candidate(table, metrics) == "P1 D1 (no G0 up half)"
    # The shipped index is the chosen design, component for component.
    comps, both_arms, _ = harness.CANDIDATES["P.5 D1"]
    assert both_arms and [(c.set, c.sign, c.weight) for c in load_index("quiescence").components] == comps


def test_auroc_and_spearman_by_hand(harness):
    # positives at scores 2 and 4, negatives at 1 and 3: pairs (2>1, 2<3, 4>1, 4>3) -> 3/4
    assert harness.auroc(np.array([1.0, 2, 3, 4]), np.array([0, 1, 0, 1], bool)) == 0.75
    # a tie between a positive and a negative counts one half: (1 + 0.5) / 2
    assert harness.auroc(np.array([1.0, 2, 2]), np.array([0, 1, 0], bool)) == 0.75
    assert math.isnan(harness.auroc(np.array([1.0, np.nan]), np.array([0, 1], bool)))
    assert harness.spearman(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1.0)


def test_evidence_block_round_trip_and_errors():
    ev = load_index("quiescence").evidence
    assert evidence_from_dict(ev.to_dict()) == ev
    with pytest.raises(SignatureError, match="non-empty 'results'"):
        evidence_from_dict({"results": []}, where="x.yaml")
    with pytest.raises(SignatureError, match="x.yaml: evidence result 1 needs dataset, metric, value and n"):
        evidence_from_dict({"results": [{"dataset": "d", "metric": "auroc"}]}, where="x.yaml")
    with pytest.raises(SignatureError, match="metric must be auroc or spearman, got 'f1'"):
        evidence_from_dict({"results": [{"dataset": "d", "metric": "f1", "value": 1, "n": 3}]}, where="x.yaml")
    with pytest.raises(SignatureError, match=r"unknown field\(s\) colour"):
        evidence_from_dict({"results": [{"dataset": "d", "metric": "auroc", "value": 1, "n": 3, "colour": 1}]})
    doc = load_index("quiescence").to_dict()
    doc["evidence"]["results"][0]["ci95"] = [0.1]
    with pytest.raises(SignatureError, match=r"ci95 must be \[low, high\]"):
        index_from_dict(doc, where="q.yaml")


def test_cli_and_report_say_which_index_and_show_its_evidence(tmp_path):
    """Calls use the index with evidence by default; the CLI line and the report name it."""
    import warnings

    from click.testing import CliRunner

    from dormsig.cli import cli
    from dormsig.data import ctc, example_path
    from dormsig.report import write_report
    from dormsig.tl import rank, score

    result = CliRunner().invoke(cli, ["score", str(example_path("aceto2014_ctc/GSE51827_data.txt.gz")),
                                      "--out", str(tmp_path / "s.tsv")])
    assert result.exit_code == 0, result.output
    assert "(dormancy index quiescence 2026.12.1)" in result.output
    # the evidence in one line, from the YAML: the index, proliferation alone and Wiecek as published
    assert ("index quiescence 2026.12.1 on labelled public data: gse83142_lrc auroc 0.84 (proliferation alone 0.73, "
            "Wiecek z-score 0.93)") in result.output
    adata = ctc()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score(adata)
        rank(adata)
    assert adata.uns["dormsig"]["score"]["index"]["name"] == "quiescence"
    html = write_report(tmp_path / "r.html", adata=adata).read_text()
    assert "Dormancy index <code>quiescence</code> version 2026.12.1" in html
    assert "Evidence: agreement with experimentally labelled public data" in html
    assert "gse83142_lrc" in html and "fibroblast_pd_aux" in html
