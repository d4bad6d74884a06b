"""DE options through the command line (design formula, size factors, alpha, inference) against R DESeq2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DORMSIG = str(Path(sys.executable).with_name("dormsig"))
REF = Path(__file__).parent / "data" / "de" / "r_reference"


@pytest.fixture(scope="module")
def sim_cont(tmp_path_factory) -> Path:
    """The simulated counts read as a user would: `dormsig read` of the genes x samples table + sample sheet."""
    tmp = tmp_path_factory.mktemp("opts")
    counts = pd.read_csv(REF / "sim_cont_counts.csv.gz", index_col=0)
    counts.to_csv(tmp / "counts.tsv", sep="\t")
    path = tmp / "sim_cont.h5ad"
    res = subprocess.run([DORMSIG, "read", "-q", str(tmp / "counts.tsv"), "--species", "human", "--sample-sheet",
                          str(REF / "sim_cont_coldata.csv"), "--out", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return path


def test_cli_design_poscounts_alpha_match_r(sim_cont: Path, tmp_path: Path) -> None:
    """`dormsig de --design '~ age + condition' --size-factors poscounts --alpha 0.1` gives R's
    DESeq(sfType = "poscounts") + results(alpha = 0.1) (R script: r_reference/make_references.R)."""
    out = tmp_path / "de.tsv"
    res = subprocess.run([DORMSIG, "de", str(sim_cont), "--out", str(out), "--group-key", "condition", "--test", "B",
                          "--reference", "A", "--design", "~ age + condition", "--size-factors", "poscounts",
                          "--alpha", "0.1", "--no-shrink", "--threads", "2"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    ours = pd.read_csv(out, sep="\t").set_index("gene")
    r = pd.read_csv(REF / "sim_cont_poscounts_r_results.csv.gz", index_col=0).loc[ours.index]
    np.testing.assert_allclose(ours["baseMean"], r["baseMean"], rtol=1e-6)
    np.testing.assert_allclose(ours["log2FoldChange"], r["log2FoldChange"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours["pvalue"], r["pvalue"], rtol=1e-3)
    same_na = ours["padj"].isna() == r["padj"].isna()
    assert same_na.all(), "independent filtering at alpha 0.1 kept other genes than R"
    np.testing.assert_allclose(ours["padj"].dropna(), r["padj"].dropna(), rtol=1e-3)
    # the options are recorded beside the output
    rec = json.loads(Path(str(out) + ".provenance.json").read_text())
    params = rec["params"]
    assert (params["design"], params["size_factors"], params["alpha"], params["inference"]) == (
        "~ age + condition", "poscounts", 0.1, "r")


def test_cli_default_size_factors_are_rs_ratio(sim_cont: Path, tmp_path: Path) -> None:
    # without --size-factors the same data give R's median-of-ratios fit (sim_cont_r_results), not poscounts
    out = tmp_path / "de.tsv"
    res = subprocess.run([DORMSIG, "de", "-q", str(sim_cont), "--out", str(out), "--group-key", "condition",
                          "--test", "B", "--reference", "A", "--covariate", "age", "--alpha", "0.1", "--no-shrink"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    ours = pd.read_csv(out, sep="\t").set_index("gene")
    ratio = pd.read_csv(REF / "sim_cont_r_results.csv.gz", index_col=0).loc[ours.index]
    pos = pd.read_csv(REF / "sim_cont_poscounts_r_results.csv.gz", index_col=0).loc[ours.index]
    np.testing.assert_allclose(ours["baseMean"], ratio["baseMean"], rtol=1e-6)
    assert not np.allclose(ours["baseMean"], pos["baseMean"], rtol=1e-6)


@pytest.mark.parametrize("design", ["age + condition", "~", "~ age +"])
def test_cli_bad_design_is_one_line(sim_cont: Path, tmp_path: Path, design: str) -> None:
    res = subprocess.run([DORMSIG, "de", str(sim_cont), "--out", str(tmp_path / "x.tsv"), "--group-key", "condition",
                          "--test", "B", "--reference", "A", "--design", design], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "--design" in res.stderr
    assert not (tmp_path / "x.tsv").exists()


def test_cli_lrt_matches_r(tmp_path: Path) -> None:
    """`dormsig de --lrt` (8 conditions, ~ batch + condition vs ~ batch) gives R's LRT statistics."""
    counts = pd.read_csv(REF / "sim_wide_counts.csv.gz", index_col=0)
    counts.to_csv(tmp_path / "counts.tsv", sep="\t")
    h5ad = tmp_path / "sim_wide.h5ad"
    assert subprocess.run([DORMSIG, "read", "-q", str(tmp_path / "counts.tsv"), "--species", "human", "--sample-sheet",
                           str(REF / "sim_wide_coldata.csv"), "--out", str(h5ad)]).returncode == 0
    out = tmp_path / "lrt.tsv"
    res = subprocess.run([DORMSIG, "de", "-q", str(h5ad), "--out", str(out), "--group-key", "condition", "--test", "c3",
                          "--reference", "c0", "--covariate", "batch", "--lrt", "--reduced", "~ batch", "--alpha", "0.1",
                          "--no-shrink"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    ours = pd.read_csv(out, sep="\t").set_index("gene")
    r = pd.read_csv(REF / "sim_wide_lrt_r_results.csv.gz", index_col=0).loc[ours.index]
    np.testing.assert_allclose(ours["stat"], r["stat"], rtol=2e-3, atol=1e-3)
    assert (ours["padj"].isna() == r["padj"].isna()).all()
    rec = json.loads(Path(str(out) + ".provenance.json").read_text())
    assert rec["de"]["method"].startswith("likelihood-ratio test")


def test_progress_says_roughly_how_long_is_left(monkeypatch, caplog) -> None:
    import logging

    from dormsig.de import run as run_mod

    clock = iter([0.0, 1.0, 10.0, 12.0, 15.0, 35.0, 46.0, 47.0])
    monkeypatch.setattr(run_mod.time, "perf_counter", lambda: next(clock))
    tell = run_mod._stage_logger("B vs A", shrink=True)
    with caplog.at_level(logging.INFO, logger="dormsig"):
        for stage in ("size factors and gene-wise dispersions", "optim refit of 10 genes", "gene-wise dispersions",
                      "MAP dispersions", "optim refit of 9 genes", "Wald test", "apeglm shrinkage"):
            tell(stage)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "DE B vs A: size factors and gene-wise dispersions (1 s)"  # nothing to go on yet
    # 35 s at the final refit, which starts at 67% of a fit: about 17 s left
    assert lines[4] == "DE B vs A: optim refit of 9 genes (35 s, about 17 s left)"
    assert lines[-1].endswith("(47 s, about 5 s left)")


def test_cli_report_shows_every_contrast(sim_cont: Path, tmp_path: Path) -> None:
    tables = []
    for test, ref in (("B", "A"), ("A", "B")):
        out = tmp_path / f"de_{test}_vs_{ref}.tsv"
        res = subprocess.run([DORMSIG, "de", "-q", str(sim_cont), "--out", str(out), "--group-key", "condition",
                              "--test", test, "--reference", ref, "--covariate", "age", "--no-shrink"],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        tables += ["--de", str(out)]
    res = subprocess.run([DORMSIG, "report", "-q", "--adata", str(sim_cont), *tables, "--out", str(tmp_path / "r.html")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    html = (tmp_path / "r.html").read_text()
    # both contrasts, named from the tables' provenance (not their file names)
    assert "B vs A" in html and "A vs B" in html
    assert (tmp_path / "r_figures" / "volcano_B_vs_A.png").exists()
    assert (tmp_path / "r_figures" / "volcano_A_vs_B.png").exists()
