"""The command line: exit codes, one-line errors, provenance sidecars, --force, atomic outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from dormsig.cli import cli, main
from dormsig.provenance import sha256

DORMSIG = shutil.which("dormsig") or str(Path(sys.executable).parent / "dormsig")
COMMANDS = ["read", "groups", "de", "enrich", "score", "reference", "rank", "report", "run", "demo", "verify"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DORMSIG, *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"dormsig {command}" in result.output


def test_main_exit_codes():
    assert main(["--version"]) == 0
    assert main(["no-such-command"]) == 2
    assert main(["signatures", "show", "NOT_A_SET"]) == 2


def test_subprocess_bad_input_is_one_line_exit_2(tmp_path):
    missing = tmp_path / "nope.csv"
    result = run("read", str(missing), "--out", str(tmp_path / "o.h5ad"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert str(missing) in result.stderr
    assert not (tmp_path / "o.h5ad").exists()


def test_signatures_list_show_export(tmp_path):
    result = run("signatures", "list")
    assert result.returncode == 0 and "DORMSIG_PERK_ATF4_CHOP_CORE" in result.stdout
    shown = run("signatures", "show", "DORMSIG_CD177_MARKER").stdout
    assert "CD177" in shown and "10.1038/s41413-026-00535-3" in shown
    out = tmp_path / "lib.gmt"
    assert run("signatures", "export", "--format", "gmt", "--out", str(out)).returncode == 0
    lines = out.read_text().splitlines()
    assert any(line.startswith("WIECEK2023_G0_ARREST_UP\t") for line in lines)
    assert any(line.startswith("WIECEK2023_G0_ARREST_DN\t") for line in lines)
    side = json.loads(Path(f"{out}.provenance.json").read_text())
    assert side["output"]["sha256"] == sha256(out)
    assert side["signature_library_version"]
    # An existing output needs --force, and is left untouched without it.
    before = sha256(out)
    again = run("signatures", "export", "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr and sha256(out) == before
    assert run("signatures", "export", "--out", str(out), "--force").returncode == 0


def test_methods_lists_metadata():
    result = run("methods")
    assert result.returncode == 0
    for name in ("ucell", "aucell", "singscore", "scanpy", "ssgsea", "gsva", "zmean"):
        assert name in result.stdout


def test_config_that_fails_the_schema_names_the_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("datasets:\n  a:\n    input: x.csv\nrank:\n  rule: magic\n")
    result = run("run", str(cfg), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "'rank.rule'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_method_lists_valid_ones(ctc_counts_tsv, tmp_path):
    result = run("score", str(ctc_counts_tsv), "--method", "magic", "--out", str(tmp_path / "s.tsv"))
    assert result.returncode == 2 and "ucell" in result.stderr
    assert not (tmp_path / "s.tsv").exists()


@pytest.fixture(scope="module")
def ctc_counts_tsv(tmp_path_factory) -> Path:
    """The bundled CTC counts, a few samples, as a plain TSV (an input written by another tool)."""
    from dormsig.data import example_path

    df = pd.read_csv(example_path("aceto2014_ctc/GSE51827_data.txt.gz"), sep="\t")
    path = tmp_path_factory.mktemp("ctc") / "ctc.tsv"
    df.iloc[:, :6].to_csv(path, sep="\t", index_label="gene")
    return path


def test_score_one_sample_alone_equals_in_batch_and_reference(ctc_counts_tsv, tmp_path):
    df = pd.read_csv(ctc_counts_tsv, sep="\t", index_col=0)
    single = tmp_path / "one.tsv"
    df.iloc[:, [2]].to_csv(single, sep="\t")
    ref = tmp_path / "ref.h5ad"
    assert run("reference", str(ctc_counts_tsv), "--out", str(ref)).returncode == 0
    batch_out, one_out = tmp_path / "batch.tsv", tmp_path / "one_scores.tsv"
    r1 = run("score", str(ctc_counts_tsv), "--reference", str(ref), "--out", str(batch_out))
    r2 = run("score", str(single), "--reference", str(ref), "--out", str(one_out))
    assert r1.returncode == 0, r1.stderr
    assert r2.returncode == 0, r2.stderr
    batch = pd.read_csv(batch_out, sep="\t", index_col=0)
    one = pd.read_csv(one_out, sep="\t", index_col=0)
    sample = df.columns[2]
    # one name per quantity; the rank is within the batch scored together, the percentile in the reference
    assert "dormsig_index" not in one.columns and "rank_in_batch" in one.columns
    assert set(one["percentile_of"]) == {"reference"}
    numeric = [c for c in one.columns if pd.api.types.is_numeric_dtype(one[c]) and c != "rank_in_batch"]
    assert "dormancy_index" in numeric and "percentile" in numeric
    pd.testing.assert_series_equal(one.loc[sample, numeric], batch.loc[sample, numeric], check_names=False)
    assert one.loc[sample, "call"] == batch.loc[sample, "call"]
    assert one.loc[sample, "call_rule"].startswith("dormant if dormancy_index >")
    # verify: the output still matches its inputs; change an input and it no longer does.
    assert run("verify", str(one_out)).returncode == 0
    with open(single, "a") as handle:
        handle.write("EXTRA_GENE\t5\n")
    changed = run("verify", str(one_out))
    assert changed.returncode == 3 and "CHANGED" in changed.stdout
