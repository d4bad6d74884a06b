"""Declared paths (dormsig.io.paths.PathPlan): the rules, the messages, rollback, and run's staging cleanup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dormsig.errors import InputError, MissingInputError, OutputError
from dormsig.io.paths import PathPlan, check_output


@pytest.fixture
def files(tmp_path):
    (tmp_path / "in").mkdir()
    tenx = tmp_path / "in" / "tenx"
    tenx.mkdir()
    for name in ("matrix.mtx.gz", "barcodes.tsv.gz", "features.tsv.gz"):
        (tenx / name).write_bytes(b"x")
    (tmp_path / "in" / "sets.gmt").write_text("S\tna\tA\tB\n")
    (tmp_path / "in" / "counts.tsv").write_text("gene\tS1\nA\t1\n")
    (tmp_path / "out").mkdir()
    return tmp_path


def _plan(files, force=False):
    plan = PathPlan(force=force, cli=True)
    plan.input(files / "in" / "counts.tsv", "")
    plan.input(files / "in" / "sets.gmt", "--signatures", kind="file")
    plan.input(files / "in" / "tenx", "", kind="dir")
    return plan


def test_output_equal_to_an_input_is_refused_even_with_force(files):
    plan = _plan(files, force=True)
    target = files / "in" / "sets.gmt"
    with pytest.raises(OutputError) as info:
        plan.output(target, "--out")
    assert str(info.value) == f"--out {target}: refusing to overwrite an input (--signatures {target}); choose another path"


def test_output_inside_an_input_directory_is_refused(files):
    plan = _plan(files, force=True)
    with pytest.raises(OutputError, match="is inside an input directory"):
        plan.output(files / "in" / "tenx" / "barcodes.tsv.gz", "--out")
    with pytest.raises(OutputError, match="is inside an input directory"):
        plan.output(files / "in" / "tenx" / "sub" / "new.h5ad", "--out")


def test_directory_output_containing_an_input_is_refused(files):
    plan = _plan(files, force=True)
    with pytest.raises(OutputError, match="directory would be replaced but holds an input"):
        plan.output(files / "in", "--out (figures)", kind="dir")


def test_two_outputs_on_one_path_or_on_a_sidecar(files):
    plan = _plan(files)
    plan.output(files / "out" / "s.tsv", "--out")
    with pytest.raises(OutputError, match=r"two outputs cannot share a path \(it is also --out\)"):
        plan.output(files / "out" / "." / "s.tsv", "--h5ad-out")
    with pytest.raises(OutputError, match="it is the provenance sidecar of --out"):
        plan.output(files / "out" / "s.tsv.provenance.json", "--h5ad-out")
    plan.output(files / "out" / "s.tsv", "")  # the same declaration again (the command body): accepted


def test_output_on_an_inputs_sidecar_and_sidecar_on_an_input(files):
    plan = _plan(files)
    with pytest.raises(OutputError, match="would overwrite the provenance record of an input"):
        plan.output(files / "in" / "counts.tsv.provenance.json", "--out")
    side_input = files / "in" / "x.provenance.json"
    side_input.write_text("S\tna\tA\n")
    plan.input(side_input, "--signatures")
    with pytest.raises(OutputError, match="its provenance sidecar would overwrite an input"):
        plan.output(files / "in" / "x", "--out")


def test_links_resolve_to_the_input(files):
    target = files / "in" / "counts.tsv"
    (files / "out" / "sym.tsv").symlink_to(target)
    os.link(target, files / "out" / "hard.tsv")
    plan = _plan(files, force=True)
    for name in ("sym.tsv", "hard.tsv"):
        with pytest.raises(OutputError, match="refusing to overwrite an input"):
            plan.output(files / "out" / name, "--out")


def test_inputs_declared_after_outputs_are_checked_too(files):
    plan = PathPlan(force=True)
    plan.output(files / "in" / "counts.tsv", "--out")
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        plan.input(files / "in" / "counts.tsv", "datasets.ctc")


def test_input_checks(files):
    plan = PathPlan(cli=True)
    with pytest.raises(MissingInputError, match="--sample-sheet .*nope.csv: no such file or directory"):
        plan.input(files / "nope.csv", "--sample-sheet")
    with pytest.raises(InputError, match="is a directory; a file is expected"):
        plan.input(files / "in", "--de", kind="file")
    (files / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty.csv: file is empty"):
        plan.input(files / "empty.csv", "")


def test_existing_output_needs_force_and_nothing_is_created(files):
    existing = files / "out" / "x.tsv"
    existing.write_text("old")
    with pytest.raises(OutputError, match="output exists; pass --force to replace it"):
        PathPlan(cli=True).output(existing, "--out")
    with pytest.raises(OutputError, match=r"pass force=True \(CLI: --force\)"):
        check_output(existing)
    deep = files / "out" / "a" / "b" / "c.tsv"
    PathPlan().output(deep, "--out")
    assert not (files / "out" / "a").exists()  # checked, not created


def test_rollback_removes_what_was_written_and_created_only(files):
    keep = files / "out" / "keep.tsv"
    keep.write_text("earlier output, not touched by this command")
    plan = PathPlan(force=True)
    new = plan.output(files / "out" / "a" / "b" / "new.tsv", "--out")
    plan.output(keep, "--h5ad-out")
    replaced = plan.output(files / "out" / "replaced.tsv", "--x")
    new.parent.mkdir(parents=True)
    new.write_text("partial")
    Path(f"{new}.provenance.json").write_text("{}")
    replaced.write_text("new content")
    (files / "out" / "a" / "unrelated.txt").write_text("user file")
    plan.rollback()
    assert not new.exists() and not Path(f"{new}.provenance.json").exists()
    assert not (files / "out" / "a" / "b").exists()  # created by the command, now empty: removed
    assert (files / "out" / "a" / "unrelated.txt").exists()  # not the command's: kept (and so is its directory)
    assert keep.read_text() == "earlier output, not touched by this command"
    assert not replaced.exists()


def test_container_may_hold_inputs_but_not_be_a_file(files):
    plan = _plan(files)
    plan.container(files / "in", "--out")  # results written next to the inputs: allowed
    with pytest.raises(OutputError, match="exists and is not a directory"):
        plan.container(files / "in" / "counts.tsv", "--out")
    with pytest.raises(OutputError, match="is inside an input directory"):
        plan.container(files / "in" / "tenx" / "results", "--out")


# ----------------------------------------------------------------------------- run: staging never left behind
def _tiny_config(tmp_path: Path) -> dict:
    from dormsig.data import example_path
    from dormsig.pipeline import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"datasets:\n  ctc:\n    input: {example_path('aceto2014_ctc/GSE51827_data.txt.gz')}\n"
                   "contrasts:\n  - {high: NOTCH2, versus: NOTCH1}\n")
    return load_config(cfg)


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), InputError("boom"), MemoryError()])
def test_run_removes_staging_and_created_directories_on_any_error(tmp_path, monkeypatch, exc):
    import dormsig.pipeline as pipeline

    cfg = _tiny_config(tmp_path)
    seen = {}

    def fail(name, ds, cfg_, out, stage, outs, **kw):
        stage_file = stage / "data.h5ad"
        stage_file.write_text("a staged file")
        seen["stage"] = stage
        raise exc

    monkeypatch.setattr(pipeline, "_run_dataset", fail)
    out = tmp_path / "results" / "deeper"
    with pytest.raises(type(exc)):
        pipeline.run_pipeline(cfg, out)
    assert seen["stage"].name == ".ctc.partial"
    assert not seen["stage"].exists()
    assert not (tmp_path / "results").exists()  # created for the staging, removed with it


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_run_signalled_while_staging_leaves_nothing(tmp_path, sig):
    """The console script, interrupted (Ctrl-C) or terminated (a scheduler's time limit) in the middle of a run."""
    import signal
    import subprocess
    import sys
    import time

    from dormsig.data import example_path

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"datasets:\n  ctc:\n    input: {example_path('aceto2014_ctc/GSE51827_data.txt.gz')}\n"
                   "contrasts:\n  - {high: NOTCH2, versus: NOTCH1}\n")
    out = tmp_path / "results"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dormsig"), "run", str(cfg), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stage = out / ".ctc.partial"
    end = time.monotonic() + 300
    while time.monotonic() < end and proc.poll() is None and not (stage / "data.h5ad").exists():
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.5)
    proc.send_signal(getattr(signal, sig))
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == (130 if sig == "SIGINT" else 143), stderr
    assert stderr.strip().splitlines()[-1] == ("dormsig: interrupted" if sig == "SIGINT" else "dormsig: terminated")
    assert "Traceback" not in stderr
    assert not out.exists(), list(out.rglob("*"))  # staging and the directory made for it: gone


def test_run_interrupt_dropped_in_a_callback_still_stops_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """Python drops the KeyboardInterrupt the signal handler raises when it lands in a ctypes callback (numba
    compiling a kernel on a fresh install: seen in CI, the run went on and exited 0). The signal is noted and
    the run's next checkpoint stops it: exit 130, nothing left in --out, no traceback printed."""
    import signal

    import dormsig.de.run as de_run
    from dormsig import _interrupt, cli
    from dormsig.data import example_path

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"datasets:\n  ctc:\n    input: {example_path('aceto2014_ctc/GSE51827_data.txt.gz')}\n"
                   "contrasts:\n  - {high: NOTCH2, versus: NOTCH1}\n")
    out = tmp_path / "results"
    original = de_run.deseq

    def dropped(*args, **kwargs):
        try:  # the handler runs inside a callback whose exception Python prints and drops
            cli._on_sigint(signal.SIGINT, None)
        except KeyboardInterrupt as exc:
            import sys
            import types

            sys.unraisablehook(types.SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=exc, exc_traceback=None,
                                                     err_msg="Exception ignored on calling ctypes callback function",
                                                     object=None))
        return original(*args, **kwargs)

    monkeypatch.setattr(de_run, "deseq", dropped)
    monkeypatch.setattr("sys.unraisablehook", __import__("sys").unraisablehook)  # restored after the test
    try:
        code = cli.main(["run", str(cfg), "--out", str(out)])
    finally:
        _interrupt.clear()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    err = capsys.readouterr().err
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "dormsig: interrupted" and "Traceback" not in err
    assert "Exception ignored" not in err
    assert not out.exists() or not any(out.rglob("*")), list(out.rglob("*"))
