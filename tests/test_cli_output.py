"""What the command line prints: the read summary, nothing with -q, other libraries' logs only with -v."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dormsig.data import DATA_DIR

DORMSIG = str(Path(sys.executable).with_name("dormsig"))
CTC = DATA_DIR / "aceto2014_ctc"


def _read(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    out = tmp_path / f"ctc{len(list(tmp_path.iterdir()))}.h5ad"
    return subprocess.run([DORMSIG, "read", *flags, str(CTC / "GSE51827_data.txt.gz"), "--sample-sheet",
                           str(CTC / "samples.csv"), "--out", str(out)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("read")
    return {flag: _read(tmp, *([flag] if flag else [])) for flag in ("", "-q", "-v")}


def test_read_prints_its_gene_summary(runs) -> None:
    res = runs[""]
    assert res.returncode == 0, res.stderr
    assert "15,738 of 16,026 gene IDs map to current human symbols" in res.stderr
    assert "29 samples/cells x 16008 genes" in res.stdout
    # log lines name the command's options, not the Python arguments behind them
    assert "pass --orientation to override" in res.stderr and "orientation=" not in res.stderr


def test_quiet_prints_nothing_on_success(runs) -> None:
    res = runs["-q"]
    assert res.returncode == 0, res.stderr
    assert (res.stdout, res.stderr) == ("", "")


def test_library_logs_only_with_verbose(runs) -> None:
    # anndata logs "... storing 'patient' as categorical" through a handler of its own
    assert "storing" not in runs[""].stderr
    assert "storing 'patient' as categorical" in runs["-v"].stderr


def test_quiet_still_prints_errors(tmp_path: Path) -> None:
    res = subprocess.run([DORMSIG, "read", "-q", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x.h5ad")],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.startswith("dormsig: error:") and "missing.csv" in res.stderr
