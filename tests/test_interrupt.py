"""Interrupted and concurrent CLI runs (subprocesses of the ``dormsig`` console script).

- SIGKILL in the middle of writing: the final output and its sidecar are absent; the only leftover
  allowed is the atomic writer's hidden ``.<name>.<random>.tmp``; a rerun succeeds without --force.
- SIGINT in the middle of writing: exit 130, one "interrupted" line, nothing left at all.
- Two runs at once on the same input, different outputs: both succeed, outputs identical to a
  sequential run (byte for byte).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DORMSIG = Path(sys.executable).parent / "dormsig"
N_GENES, N_SAMPLES = 8000, 100  # a ~6 MB table: reading and writing take a second or two


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def big_table(tmp_path_factory) -> Path:
    """Genes x samples counts with real human symbols (so that harmonisation has work to do)."""
    from dormsig.genes.tables import _read

    symbols = _read("human_genes.tsv.gz")["symbol"].drop_duplicates().iloc[:N_GENES].tolist()
    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(2, 0.2, size=(N_GENES, N_SAMPLES))
    counts[rng.random(counts.shape) < 0.5] = 0
    df = pd.DataFrame(counts, index=symbols, columns=[f"GSM{1000000 + k}" for k in range(N_SAMPLES)])
    path = tmp_path_factory.mktemp("big") / "big.tsv"
    df.to_csv(path, sep="\t", index_label="gene")
    return path


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(DORMSIG), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_tmp(proc: subprocess.Popen, directory: Path, name: str, timeout: float = 240) -> Path | None:
    """Poll until the atomic writer's temporary file for ``name`` appears (or the process ends)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        found = sorted(directory.glob(f".{name}.*.tmp"))
        if found:
            return found[0]
        time.sleep(0.005)
    return None


def _read_args(table: Path, out: Path) -> list[str]:
    return ["read", str(table), "--out", str(out)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_while_writing_leaves_no_output_and_rerun_succeeds(big_table, tmp_path, sig):
    before = _sha(big_table)
    out = tmp_path / "big.h5ad"
    proc = _start(_read_args(big_table, out), tmp_path)
    tmp = _wait_for_tmp(proc, tmp_path, out.name)
    assert tmp is not None, f"the run ended before writing started: {proc.communicate()}"
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert not out.exists() and not Path(f"{out}.provenance.json").exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        # only hidden temporary files of the atomic writer may remain
        assert all(n.startswith(f".{out.name}.") and n.endswith(".tmp") for n in leftovers), leftovers
    else:
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1] == "dormsig: interrupted"
        assert leftovers == [], leftovers  # the writer removed its temporary file
    assert _sha(big_table) == before
    # a rerun needs no --force: the final output does not exist
    rerun = subprocess.run([str(DORMSIG), *_read_args(big_table, out)], cwd=tmp_path, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert out.exists() and Path(f"{out}.provenance.json").exists()
    side = json.loads(Path(f"{out}.provenance.json").read_text())
    assert side["output"]["sha256"] == _sha(out)
    assert side["inputs"] == {str(big_table): before}


def _reading(proc: subprocess.Popen, path: Path) -> bool:
    """True once the process has ``path`` open (Linux /proc)."""
    fd_dir = Path(f"/proc/{proc.pid}/fd")
    try:
        return any(os.path.realpath(fd) == str(path.resolve()) for fd in fd_dir.iterdir())
    except OSError:
        return False


def test_sigint_before_writing_exits_130(big_table, tmp_path):
    """SIGINT while the input is being read (after the path checks, before anything is written or created)."""
    out = tmp_path / "sub" / "early.h5ad"
    proc = _start(_read_args(big_table, out), tmp_path)
    end = time.monotonic() + 120
    while time.monotonic() < end and proc.poll() is None and not _reading(proc, big_table):
        time.sleep(0.005)
    time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    assert not out.parent.exists(), "writing had already started"  # directories are made only to write
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "dormsig: interrupted"
    assert not out.parent.exists()  # no output, no directory left behind


def test_concurrent_runs_do_not_interfere(big_table, tmp_path):
    seq = tmp_path / "seq"
    par = tmp_path / "par"
    seq.mkdir()
    par.mkdir()
    first = subprocess.run([str(DORMSIG), *_read_args(big_table, seq / "a.h5ad")], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    procs = [_start(_read_args(big_table, par / f"{k}.h5ad"), tmp_path) for k in ("a", "b")]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    expected = _sha(seq / "a.h5ad")
    assert _sha(par / "a.h5ad") == expected  # byte-identical to the sequential run
    assert _sha(par / "b.h5ad") == expected
    for name in ("a", "b"):
        side = json.loads((par / f"{name}.h5ad.provenance.json").read_text())
        assert side["output"] == {"path": str(par / f"{name}.h5ad"), "sha256": expected}
    umask = os.umask(0)
    os.umask(umask)
    for p in par.iterdir():  # finished outputs get the usual permissions, not mkstemp's 0600
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p
    assert sorted(p.name for p in par.iterdir()) == ["a.h5ad", "a.h5ad.provenance.json", "b.h5ad",
                                                     "b.h5ad.provenance.json"]


@pytest.fixture(scope="module")
def small_config(tmp_path_factory) -> Path:
    """A `dormsig run` config over a small table (the corpus's base table) and its sample sheet."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
    from generate import base_table, samples_sheet

    d = tmp_path_factory.mktemp("run_cfg")
    base_table().to_csv(d / "counts.tsv", sep="\t", index_label="gene")
    samples_sheet().to_csv(d / "samples.csv", index=False)
    (d / "config.yaml").write_text(
        "datasets:\n  ctc:\n    input: counts.tsv\n    sample_sheet: samples.csv\n"
        "contrasts: [{high: NOTCH2, versus: NOTCH1}]\n"
    )
    return d / "config.yaml"


def test_killed_pipeline_can_be_rerun_without_force(small_config, tmp_path):
    out = tmp_path / "results"
    proc = _start(["run", str(small_config), "--out", str(out)], tmp_path)
    # The pipeline stages a dataset in a hidden directory and moves it into place only when complete.
    data = out / ".ctc.partial" / "data.h5ad"
    end = time.monotonic() + 240
    while time.monotonic() < end and proc.poll() is None and not data.exists():
        time.sleep(0.01)
    assert proc.poll() is None, "the pipeline ended before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    # interrupted: no report, and no finished-looking output (sidecars are written at the very end)
    assert not (out / "ctc" / "report.html").exists()
    assert not (out / "ctc" / "data.h5ad").exists()
    rerun = subprocess.run([str(DORMSIG), "run", str(small_config), "--out", str(out)], capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert (out / "ctc" / "report.html").exists() and (out / "ctc" / "data.h5ad.provenance.json").exists()
    assert not (out / ".ctc.partial").exists()


def test_sigint_stops_the_pipeline(small_config, tmp_path):
    """SIGINT during the DE step: exit 130 and no report. (Start dormsig from a shell with ``&`` and the
    shell makes it ignore SIGINT: that is POSIX job control, not dormsig.)"""
    out = tmp_path / "results"
    proc = _start(["run", str(small_config), "--out", str(out)], tmp_path)
    # The pipeline stages a dataset in a hidden directory and moves it into place only when complete.
    data = out / ".ctc.partial" / "data.h5ad"
    end = time.monotonic() + 240
    while time.monotonic() < end and proc.poll() is None and not data.exists():
        time.sleep(0.01)
    time.sleep(0.5)  # into the DE step
    assert proc.poll() is None, "the pipeline ended before SIGINT"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 130, stderr[-2000:]
    assert not (out / "ctc" / "report.html").exists()
