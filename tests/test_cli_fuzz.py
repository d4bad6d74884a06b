"""Every option of every command, driven with out-of-domain values (hypothesis).

Each command gets a minimal valid command line (tiny placeholder input files, outputs in an empty
directory); one option at a time is replaced by a value outside its domain, drawn from what its click
type declares (range, choices, non-empty name, input/output path). The command must stop before any
work: exit 2, one ``dormsig: error:`` line of at most 200 characters naming the option or the value,
and nothing written or created anywhere under the test directory.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dormsig.cli import cli, main
from dormsig.cli_types import (
    Float,
    IndexArg,
    InputPath,
    Int,
    Key,
    LazyChoice,
    Name,
    OutputPath,
    PathArg,
    SignaturesArg,
    label_of,
)

#: Types that declare a domain. A parameter of any other type (a bare string) has no domain to check.
DOMAIN_TYPES = (Int, Float, click.Choice, LazyChoice, Name, PathArg)


def _commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
        else:
            out.append(((*prefix, name), cmd))
    return out


COMMANDS = _commands()
OPTIONS = [(path, cmd, p) for path, cmd in COMMANDS for p in cmd.params
           if not (isinstance(p, click.Option) and (p.is_flag or p.name == "help"))]


def test_every_parameter_declares_its_domain():
    loose = [f"{' '.join(path)} {label_of(p) or p.name}" for path, _, p in OPTIONS
             if not isinstance(p.type, DOMAIN_TYPES)]
    assert not loose, f"parameters without a declared domain: {loose}"


# ----------------------------------------------------------------------------- a valid command line
class Sandbox:
    """A directory with placeholder inputs; ``snapshot()`` lists everything under it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inputs = root / "in"
        self.out = root / "out"
        self.inputs.mkdir()
        self.out.mkdir()
        (self.inputs / "data.tsv").write_text("gene\tS1\nNOTCH2\t1\n")
        (self.inputs / "empty.tsv").write_text("")
        (self.inputs / "a_dir").mkdir()
        (self.inputs / "a_file").write_text("x\n")

    def snapshot(self) -> dict[str, tuple]:
        """Every entry with its content's size and time (a directory's own mtime moves with the write probe)."""
        out = {}
        for p in sorted(self.root.rglob("*")):
            st_ = p.lstat()
            out[str(p.relative_to(self.root))] = (True,) if p.is_dir() else (False, st_.st_size, st_.st_mtime_ns)
        return out


def _valid(param: click.Parameter, box: Sandbox, k: int) -> str:
    t = param.type
    if isinstance(t, OutputPath):
        return str(box.out / (f"dir{k}" if t.kind == "container" else f"out{k}{(t.suffixes or ('.tsv',))[0]}"))
    if isinstance(t, InputPath | SignaturesArg):
        return str(box.inputs / "data.tsv")
    if isinstance(t, IndexArg):
        return "default"
    if isinstance(t, Int):
        return str(t.min if t.min is not None else 1)
    if isinstance(t, Float):
        return "0.5"
    if isinstance(t, click.Choice):
        return str(t.choices[0])
    if isinstance(t, LazyChoice):
        return t.choices[0]
    return "x"


def _base(cmd: click.Command, box: Sandbox) -> dict[str, list[str]]:
    """Required arguments and options, each with a valid value (in parameter order)."""
    base: dict[str, list[str]] = {}
    for k, p in enumerate(cmd.params):
        if p.required or isinstance(p, click.Argument):
            base[p.name] = [_valid(p, box, k)]
    return base


def _argv(path: tuple[str, ...], cmd: click.Command, values: dict[str, list[str]]) -> list[str]:
    argv = list(path)
    for p in cmd.params:
        if p.name not in values:
            continue
        for v in values[p.name]:
            argv += [v] if isinstance(p, click.Argument) else [label_of(p), v]
    return argv


# ----------------------------------------------------------------------------- out-of-domain values
_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def out_of_domain(param: click.Parameter, box: Sandbox, base: dict[str, list[str]]) -> st.SearchStrategy[str]:
    """Values the parameter's type must refuse (derived from the type, independently of its code)."""
    t = param.type
    if isinstance(t, Int):
        below = st.integers(max_value=t.min - 1) if t.min is not None else st.nothing()
        above = st.integers(min_value=t.max + 1) if t.max is not None else st.nothing()
        junk = st.sampled_from(["1.5", "abc", "", "1e3", "--", "0x10", " "])
        return st.one_of(below.map(str), above.map(str), junk)
    if isinstance(t, Float):
        lo, hi = t.min, t.max
        below = st.floats(max_value=lo, allow_nan=False, allow_infinity=False).filter(
            lambda x: x < lo or (t.min_open and x == lo)) if lo is not None else st.nothing()
        above = st.floats(min_value=hi, allow_nan=False, allow_infinity=False).filter(
            lambda x: x > hi or (t.max_open and x == hi)) if hi is not None else st.nothing()
        junk = st.sampled_from(["nan", "NaN", "inf", "-inf", "abc", "", "1,5"])
        return st.one_of(below.map(repr), above.map(repr), junk)
    if isinstance(t, click.Choice):
        allowed = {c.lower() for c in t.choices} if not t.case_sensitive else set(t.choices)
        return _texts.filter(lambda v: (v.lower() if not t.case_sensitive else v) not in allowed)
    if isinstance(t, LazyChoice):
        accepted = t.accepted()
        return _texts.filter(lambda v: (v if t.case_sensitive else v.strip().lower()) not in accepted)
    if isinstance(t, Key):
        return st.one_of(st.sampled_from(["", "  ", "a/b", "_index", " lead", "tab\there"]),
                         _texts.filter(lambda v: "/" in v or not v.strip()))
    if isinstance(t, Name):
        return st.one_of(st.sampled_from(["", "   ", "trail ", "\nx"]), st.text(alphabet=" \t", max_size=4))
    if isinstance(t, OutputPath):
        inputs = [v for name, vals in base.items() for v in vals
                  if name != param.name and Path(v).is_relative_to(box.inputs)]
        if t.kind == "container":
            bad = [str(box.inputs / "a_file"), str(box.inputs / "a_file" / "sub")]
        else:
            bad = [str(box.inputs / "a_dir"), str(box.inputs / "a_file" / "x.tsv"), ""]
            if t.suffixes:  # a name that promises another format than the writer's
                bad.append(str(box.out / "named.wrong"))
        return st.sampled_from(bad + inputs)
    if isinstance(t, SignaturesArg):
        return st.one_of(st.sampled_from(["A,,B", ",", str(box.inputs / "missing.gmt"), str(box.inputs / "a_dir"),
                                          str(box.inputs / "empty.tsv")]),
                         st.from_regex(r"NO_SUCH_SET_[A-Z]{1,6}", fullmatch=True))
    if isinstance(t, IndexArg):
        return st.one_of(st.from_regex(r"nosuchindex[a-z]{0,5}", fullmatch=True),
                         st.just(str(box.inputs / "missing.yaml")))
    if isinstance(t, InputPath):
        bad = [str(box.inputs / "missing.tsv"), str(box.inputs / "empty.tsv"), ""]
        if t.kind == "file":
            bad.append(str(box.inputs / "a_dir"))
        return st.sampled_from(bad)
    raise AssertionError(f"no out-of-domain strategy for {type(t).__name__}")  # pragma: no cover


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("path", "cmd", "param"), OPTIONS,
                         ids=[f"{' '.join(p)}:{label_of(x) or x.name}" for p, _, x in OPTIONS])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_out_of_domain_value_is_refused_before_any_work(path, cmd, param, data):
    with tempfile.TemporaryDirectory() as tmp:
        box = Sandbox(Path(tmp))
        values = _base(cmd, box)
        value = data.draw(out_of_domain(param, box, values), label=label_of(param) or param.name)
        values[param.name] = [value]
        argv = _argv(path, cmd, values)
        before = box.snapshot()
        cwd = os.getcwd()
        os.chdir(box.out)  # a relative output would land here
        try:
            rc, stdout, stderr = _run(argv)
        finally:
            os.chdir(cwd)
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert rc == 2, (argv, stderr)
        assert len(lines) == 1 and lines[0].startswith("dormsig: error: "), (argv, stderr)
        message = lines[0].removeprefix("dormsig: error: ")
        assert len(message) <= 200, message
        label = label_of(param) or param.human_readable_name  # an argument: its metavar (NAME, INPUTS)
        shown = value.strip() if value.strip() else None
        assert (label and label in message) or (shown and shown in message) or "is empty" in message, (argv, message)
        assert box.snapshot() == before, argv  # nothing written, nothing created
        assert "Traceback" not in stderr and not stdout.strip()


def test_strategies_really_are_out_of_domain():
    """The float strategy must not produce values inside the range (guards the test itself)."""
    q = Float(min=0, max=1, min_open=True, max_open=True)
    for bad in ("0", "1", "-0.5", "1.5", "nan", "inf"):
        with pytest.raises(click.BadParameter):
            q.convert(bad, None, None)
    assert math.isclose(q.convert("0.25", None, None), 0.25)


# ----------------------------------------------------------------------------- messages for people
def test_for_people_names_options_cuts_lists_and_stays_short():
    from dormsig.cli_types import for_people

    read = cli.commands["read"]
    assert for_people("x.tsv: cannot tell human from mouse; pass species= explicitly", read) == \
        "x.tsv: cannot tell human from mouse; pass --species explicitly"
    assert for_people("deseq(g: A vs B): 'nokey' is not an obs column", cli.commands["de"], subject="in.h5ad") == \
        "in.h5ad: 'nokey' is not an obs column"
    msg = for_people("unknown set(s) X; valid names: " + ", ".join(f"SET_{k}" for k in range(31)))
    assert msg == "unknown set(s) X; valid names: SET_0, SET_1, SET_2, SET_3, SET_4 (+26 more)"
    long_path = "/very/long/" + "directory/" * 20 + "counts.tsv"
    msg = for_people(f"{long_path}: header has 30 fields but line 2 has 1 (separator '\\t')")
    assert len(msg) <= 200 and msg.endswith("header has 30 fields but line 2 has 1 (separator '\\t')")
    assert msg.startswith("…/counts.tsv: ")
