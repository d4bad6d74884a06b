"""`dormsig enrich` on real DE tables written by R: what it prints, exit codes, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

DATA = Path(__file__).parent / "data" / "enrich"
DORMSIG = shutil.which("dormsig") or str(Path(sys.executable).parent / "dormsig")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DORMSIG, *map(str, args)], capture_output=True, text=True)


def test_limma_shaped_write_table_is_enriched_not_all_not_tested(tmp_path):
    """Issue 11: a write.table result (header one field short) was read with logFC as the genes, exit 0."""
    out = tmp_path / "enr.tsv"
    result = run("enrich", DATA / "ctc_notch2_vs_notch1_limma_shaped_toptable.txt", "--out", out,
                 "--grouping-genes", "NOTCH2,NOTCH1")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, sep="\t")
    assert (table["method"] == "rank_position_partial").sum() >= 20  # filtered table: rank test, no GSEA
    assert "looks filtered" in result.stderr and "circular" in result.stderr
    assert "Traceback" not in result.stderr and "UserWarning" not in result.stderr
    assert "839 genes (filtered table: rank test)" in result.stdout
    notch1 = table.set_index("set").loc["DORMSIG_NOTCH1_CONTRAST"]
    assert bool(notch1["circular"]) and notch1["circular_genes"] == "NOTCH1"
    side = json.loads(Path(f"{out}.provenance.json").read_text())
    assert side["enrich"]["table"]["layout"].startswith("R write.table")
    assert side["enrich"]["table"]["metric"] == "t"


def _one_line_exit_2(result: subprocess.CompletedProcess, out: Path, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    assert not out.exists()


def test_bad_tables_exit_2_with_one_line(tmp_path):
    raw = pd.read_csv(DATA / "ctc_notch2_vs_notch1_deseq2_padj0.1.csv", index_col=0)
    out = tmp_path / "enr.tsv"
    no_stat = tmp_path / "no_stat.csv"
    raw[["baseMean", "lfcSE"]].to_csv(no_stat)
    _one_line_exit_2(run("enrich", no_stat, "--out", out), out, str(no_stat), "--stat")
    nan_stat = tmp_path / "nan_stat.csv"
    raw.assign(stat="NA").to_csv(nan_stat)
    _one_line_exit_2(run("enrich", nan_stat, "--out", out), out, "'stat'", "--stat")
    _one_line_exit_2(run("enrich", DATA / "ctc_notch2_vs_notch1_deseq2_padj0.1.csv", "--out", out,
                         "--gene-column", "log2FoldChange"), out, "wrong gene column")
