"""What the command line accepts, declared once: click types with their domain, declared paths, messages.

- Value types (:class:`Int`, :class:`Float`, :class:`Name`, :class:`Key`, :class:`LazyChoice`) refuse
  an out-of-domain value while the command line is parsed, before any work (exit 2, one line).
- Path types (:class:`InputPath`, :class:`OutputPath`, :class:`SignaturesArg`, :class:`IndexArg`)
  declare what each parameter is; :func:`plan_paths` turns the parameters of the running command into
  one :class:`~dormsig.io.paths.PathPlan`, which refuses an output equal to, inside or containing an
  input, two outputs on one path, and an existing output without ``--force``.
- :func:`for_people` turns a library message into a command-line message: option names instead of
  Python arguments, long lists cut with a count, at most :data:`MAX_MESSAGE` characters.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import click

from dormsig._paths import PathPlan

MAX_MESSAGE = 200
N_SHOWN = 5


# --------------------------------------------------------------------------- values
class Int(click.IntRange):
    """An integer in ``[min, max]`` (either bound optional)."""

    name = "integer"


class Float(click.FloatRange):
    """A finite number in a range (NaN and infinity refused: ``nan < 1`` is False, so a plain range lets NaN in)."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(rv, param, ctx)


class Name(click.ParamType):
    """A non-empty name (gene, group level, column): no leading/trailing blanks, no control characters."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        if not text.strip():
            self.fail("must not be empty", param, ctx)
        if text != text.strip() or any(ord(c) < 32 for c in text):
            self.fail(f"{text!r} has blanks at its ends or control characters", param, ctx)
        return text


class CellsArg(Name):
    """``--cells COLUMN=VALUE``: an obs column and value(s) (syntax checked here, the column per dataset)."""

    name = "COLUMN=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx)
        column, sep, val = text.partition("=")
        if not sep or not column.strip() or not val.strip():
            self.fail(f"{text!r} is not COLUMN=VALUE (e.g. cell_type=malignant)", param, ctx)
        return text


class Design(Name):
    """A design formula over obs columns, R style: ``~ term + term`` (the columns are checked by ``deseq``)."""

    name = "formula"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx)
        terms = text.lstrip()[1:].split("+") if text.lstrip().startswith("~") else []
        if not terms or not all(t.strip() for t in terms):
            self.fail(f"{text!r} is not a design formula like '~ patient + dormsig_group'", param, ctx)
        return text


class Scheduler(Name):
    """``--scheduler``: a local dask scheduler (threads, processes, synchronous) or a dask.distributed address."""

    name = "threads|processes|synchronous|ADDRESS"
    LOCAL = ("threads", "processes", "synchronous")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx)
        if text in self.LOCAL:
            return text
        host = text.split("://", 1)[1] if "://" in text else text
        port = host.rsplit(":", 1)[1] if ":" in host else ""
        if not host.split(":", 1)[0] or not port.isdigit() or not 0 < int(port) < 65536:
            self.fail(f"{text!r} is neither threads, processes, synchronous nor a scheduler address "
                      "(e.g. tcp://10.0.0.5:8786)", param, ctx)
        return text


class Key(Name):
    """A key stored in an .h5ad (``obs`` column): a name without ``/`` (HDF5 would nest it) and not ``_index``."""

    name = "key"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx)
        if "/" in text:
            self.fail(f"{text!r} contains '/', which an .h5ad cannot store in a key", param, ctx)
        if text == "_index":
            self.fail("'_index' is reserved by the .h5ad format", param, ctx)
        return text


class LazyChoice(click.ParamType):
    """One of a set of choices computed on first use (e.g. the registered scoring methods)."""

    name = "choice"

    def __init__(self, choices: Callable[[], Sequence[str]], *, case_sensitive: bool = True,
                 aliases: Callable[[], dict[str, str]] | None = None, what: str = "value") -> None:
        self._choices = choices
        self._aliases = aliases
        self.case_sensitive = case_sensitive
        self.what = what

    @property
    def choices(self) -> list[str]:
        return list(self._choices())

    def accepted(self) -> dict[str, str]:
        """Every accepted spelling -> the canonical choice."""
        out = {c: c for c in self.choices}
        if self._aliases is not None:
            out.update(self._aliases())
        if not self.case_sensitive:
            out = {k.lower(): v for k, v in out.items()}
        return out

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(self.choices) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        key = text if self.case_sensitive else text.strip().lower()
        accepted = self.accepted()
        if key not in accepted:
            self.fail(f"unknown {self.what} {text!r}; choose one of {', '.join(self.choices)}", param, ctx)
        return accepted[key]


def _formats() -> list[str]:
    from dormsig.io.detect import FORMATS

    return list(FORMATS)


def _format_aliases() -> dict[str, str]:
    from dormsig.io.detect import ALIASES

    return dict(ALIASES)


def _methods() -> list[str]:
    from dormsig.tl._registry import available

    return available()


FORMAT = LazyChoice(_formats, case_sensitive=False, aliases=_format_aliases, what="format")
METHOD = LazyChoice(_methods, what="scoring method")
#: ``auto`` follows the data: singscore on bulk samples, ucell on single cells (dormsig.tl.score)
METHOD_OR_AUTO = LazyChoice(lambda: ["auto", *_methods()], what="scoring method")
SEED = Int(min=0, max=2**32 - 1)
THREADS = Int(min=1, max=1024)
PERMUTATIONS = Int(min=1, max=10_000_000)
QUANTILE = Float(min=0, max=1, min_open=True, max_open=True)
FRACTION = Float(min=0, max=1)
DESIGN = Design()


# --------------------------------------------------------------------------- paths
class PathArg(click.ParamType):
    """Base of the declared path types: refuses an empty path; the checks are in :func:`plan_paths`."""

    name = "path"
    role = "input"

    def __init__(self, kind: str = "any") -> None:
        self.kind = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        if not text.strip():
            self.fail("the path is empty", param, ctx)
        if "\x00" in text:
            self.fail("the path contains a NUL character", param, ctx)
        return text

    def declare(self, plan: PathPlan, value: str, label: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class InputPath(PathArg):
    """A path the command reads (``kind``: ``"file"``, ``"dir"`` or ``"any"``)."""

    name = "input"

    def declare(self, plan: PathPlan, value: str, label: str) -> None:
        from dormsig.io.detect import input_members

        plan.input(value, label, kind=self.kind, members=input_members(value) if Path(value).exists() else ())


class OutputPath(PathArg):
    """A path the command writes (``kind="file"``) or a directory it writes into (``kind="container"``)."""

    name = "output"
    role = "output"

    def __init__(self, kind: str = "file", suffixes: tuple[str, ...] = ()) -> None:
        super().__init__(kind)
        self.suffixes = suffixes  # what the writer writes, decided by the name: refuse any other

    def check_suffix(self, value: str, label: str) -> None:
        """Refuse a name that promises another format than the one written (after the plan's own checks)."""
        if self.suffixes and not str(value).lower().endswith(self.suffixes):
            what = {TABLE: "a text table", H5AD: "an AnnData .h5ad", HTML: "an HTML page"}.get(self.suffixes, "a file")
            raise click.BadParameter(f"{Path(value).name!r}: this option writes {what}, so its name must end in "
                                     f"{', '.join(self.suffixes)}", param_hint=label)

    def declare(self, plan: PathPlan, value: str, label: str) -> None:
        if self.kind == "container":
            plan.container(value, label)
        else:
            plan.output(value, label, kind=self.kind)


TABLE = (".tsv", ".csv", ".txt", ".tsv.gz", ".csv.gz")
H5AD = (".h5ad",)
HTML = (".html", ".htm")
SIGNATURE_SUFFIXES = (".gmt", ".gmx", ".yaml", ".yml", ".json", ".txt", ".gz")


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.lower().endswith(SIGNATURE_SUFFIXES)


class SignaturesArg(PathArg):
    """``--signatures``: a GMT/GMX/YAML/JSON file (an input) or comma-separated names of the shipped library."""

    name = "signatures"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx)
        if Path(text).is_file() and os.path.getsize(text) > 0:
            from dormsig.errors import DormsigError
            from dormsig.signatures import read_signatures

            try:  # read now: a malformed file stops the command before any work
                read_signatures(text)
            except DormsigError as exc:
                self.fail(str(exc) if Path(text).name in str(exc) else f"{text}: {exc}", param, ctx)
            return text
        if Path(text).exists() or _looks_like_path(text):
            return text  # missing, empty or a directory: refused by plan_paths with the option named
        names = [v.strip() for v in text.split(",")]
        if any(not n for n in names):
            self.fail(f"{text!r} has an empty set name (stray comma?)", param, ctx)
        from dormsig.signatures import load_library

        lib = load_library()
        missing = [n for n in names if n not in lib]
        if missing:
            self.fail(f"no file of that name, and the library {lib.version} has no set named "
                      f"{cut_list(missing)}; list them with 'dormsig signatures list'", param, ctx)
        return text

    def declare(self, plan: PathPlan, value: str, label: str) -> None:
        if Path(value).exists() or _looks_like_path(value):
            plan.input(value, label, kind="file")


class IndexArg(PathArg):
    """``--index``: a shipped dormancy index name (or ``default``) or a YAML file (an input)."""

    name = "index"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx)
        if Path(text).is_file() and os.path.getsize(text) > 0:
            from dormsig.errors import DormsigError
            from dormsig.signatures import load_index

            try:  # read now: an index naming unknown sets stops the command before any work
                load_index(text)
            except DormsigError as exc:
                self.fail(str(exc) if Path(text).name in str(exc) else f"{text}: {exc}", param, ctx)
            return text
        if Path(text).exists() or _looks_like_path(text):
            return text
        from dormsig.signatures.index import list_indices

        known = ["default", *list_indices()]
        if text not in known:
            self.fail(f"no file of that name and no shipped index {text!r}; choose one of {', '.join(known)}",
                      param, ctx)
        return text

    def declare(self, plan: PathPlan, value: str, label: str) -> None:
        if Path(value).exists() or _looks_like_path(value):
            plan.input(value, label, kind="file")


def label_of(param: click.Parameter) -> str:
    """The option as the user sees it (``--out``); ``""`` for a positional argument (its path names it)."""
    if isinstance(param, click.Argument):
        return ""
    longs = [o for o in param.opts if o.startswith("--")]
    return (longs or param.opts)[0]


def _values(value: Any) -> Iterable[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [v for v in value if v is not None]
    return [value]


def declared(command: click.Command) -> list[tuple[click.Parameter, PathArg]]:
    """The path parameters of a command, inputs first (so that outputs are checked against every input)."""
    params = [(p, p.type) for p in command.params if isinstance(p.type, PathArg)]
    return sorted(params, key=lambda pt: pt[1].role != "input")


def plan_paths(ctx: click.Context, values: dict[str, Any], *, force: bool) -> PathPlan:
    """Declare (and so check) every path parameter of the running command; nothing is created."""
    plan = PathPlan(force=force, cli=True)
    for param, ptype in declared(ctx.command):
        for value in _values(values.get(param.name)):
            ptype.declare(plan, value, label_of(param))
    for param, ptype in declared(ctx.command):  # collisions with inputs are named first
        if isinstance(ptype, OutputPath):
            for value in _values(values.get(param.name)):
                ptype.check_suffix(value, label_of(param))
    return plan


# --------------------------------------------------------------------------- messages
#: Prefixes of library messages that name Python functions rather than what the user typed.
_PY_PREFIX = re.compile(
    r"^(?:deseq|define_groups|pseudobulk|harmonise|enrich|FastInference|score|rank|run_de|read|"
    r"adata\.var_names|adata\.obs_names|gene IDs|AnnData)(?:\([^)]*\))?:\s*"
)
_PY_INNER = re.compile(r"(?<=: )(?:deseq|define_groups|pseudobulk|harmonise|enrich|FastInference)(?:\([^)]*\))?:\s*")
_PY_WORDS = [
    (re.compile(r"\badata\.var_names\b"), "the gene names"),
    (re.compile(r"\badata\.obs_names\b"), "the sample names"),
    (re.compile(r"\bAnnData var_names\b"), "the gene names"),
    (re.compile(r"\bvar_names\b"), "the gene names"),
    (re.compile(r"\bobs_names\b"), "the sample names"),
    (re.compile(r"pass force=True \(CLI: --force\)"), "pass --force"),
    (re.compile(r"\s*\(CLI: [^)]*\)"), ""),
    (re.compile(r"dormsig\.de\.pseudobulk\(sample_key=\.\.\.\)"), "--sample-key"),
    (re.compile(r"\(?dormsig\.pp\.harmonise_genes\)?"), "'dormsig read'"),
]
#: Python argument names whose option has another name.
_ARG_ALIASES = {"n_permutations": "--permutations", "stat_column": "--stat", "key_added": "--key-added",
                "allow_cells_as_replicates": "--allow-cells-as-replicates"}


def cut_list(items: Sequence[Any], n: int = N_SHOWN) -> str:
    """``a, b, c, d, e (+12 more)``."""
    items = [str(i) for i in items]
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _cut_lists(text: str, n: int = N_SHOWN) -> str:
    """Cut Python list reprs and long comma-separated runs to ``n`` items with a count."""

    def repl_list(m: re.Match) -> str:
        inner = m.group(1)
        parts = [p.strip() for p in re.split(r",\s*", inner) if p.strip()]
        return "[" + cut_list(parts, n) + "]" if len(parts) > n else m.group(0)

    text = re.sub(r"\[([^\[\]]*)\]", repl_list, text)

    def repl_run(m: re.Match) -> str:
        lead = m.group(0)[: len(m.group(0)) - len(m.group(0).lstrip())]
        parts = [p.strip() for p in m.group(0).split(",")]
        return lead + cut_list(parts, n) if len(parts) > n + 1 else m.group(0)

    item = r"\s*[^\s,;:()\[\]]+"  # one name: no blanks (sets, genes, samples, columns)
    run = r"(?:" + item + r",){" + str(n + 1) + r",}" + item
    return re.sub(run, repl_run, text)


def for_people(message: str, command: click.Command | None = None, *, subject: str | None = None) -> str:
    """A library message as a command-line message (one line, at most :data:`MAX_MESSAGE` characters).

    ``subject``: the input path as typed, put in front when the message names no path of its own.
    """
    text = " ".join(str(message).split())
    text = _PY_PREFIX.sub("", text)
    text = _PY_INNER.sub("", text)  # "dataset 'b': define_groups: gene ..." -> "dataset 'b': gene ..."
    for pattern, repl in _PY_WORDS:
        text = pattern.sub(repl, text)
    if command is not None:
        text = as_flags(text, command)
    names_a_file = re.match(r"^(--\S+ )?\S+: ", text) or _FILE_TOKEN.search(text)
    if subject and not names_a_file and subject not in text:
        text = f"{subject}: {text}"
    full = text
    text = _shorten_paths(_cut_lists(full))
    if len(text) > MAX_MESSAGE:  # a tighter cut before cutting the sentence itself
        text = _shorten_paths(_cut_lists(full, 2))
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1].rstrip() + "…"
    return text


def as_flags(text: str, command: click.Command) -> str:
    """Python argument names in a library message as the command's options: "pass species=" -> "pass --species"."""
    flags = {p.name: label_of(p) for p in command.params if isinstance(p, click.Option)}
    for name, alias in _ARG_ALIASES.items():
        if any(label_of(p) == alias for p in command.params if isinstance(p, click.Option)):
            flags[name] = alias
    for p in command.params:
        if isinstance(p, click.Option):
            flags.setdefault(label_of(p).lstrip("-").replace("-", "_"), label_of(p))
    # "by='x' is not" -> "--by 'x' is not"
    text = re.sub(r"\b([a-z][a-z0-9_]*)=", lambda m: f"{flags[m.group(1)]} " if m.group(1) in flags
                  else m.group(0), text)
    return " ".join(text.split())


_FILE_TOKEN = re.compile(r"[\w.-]+\.[A-Za-z0-9]{1,8}(?::\d+)?: ")
_PATH = re.compile(r"(?<![\w.])((?:~|\.{1,2})?/(?:[^\s/:,'\"()]+/)+)([^\s/:,'\"()]+)")


def _shorten_paths(text: str) -> str:
    """Name a path in full once; later mentions, and all of them in an over-long message, by file name."""
    seen: set[str] = set()

    def later(m: re.Match) -> str:
        full = m.group(0)
        if full in seen:
            return m.group(2)
        seen.add(full)
        return full

    text = _PATH.sub(later, text)
    if len(text) > MAX_MESSAGE:
        text = _PATH.sub(lambda m: f"…/{m.group(2)}", text)
    return text
