"""The steps of a pipeline run, from one validated config: what ``dormsig run`` and the Snakefile execute.

``plan(config)`` returns one :class:`Step` per (dataset, kind, contrast): read -> groups -> de -> enrich
(per contrast) -> score -> report. A step names its inputs and outputs (paths relative to the results
directory; inputs outside it are absolute), the keyword arguments of the library call (``params``, what
``dormsig run`` passes in process) and the same settings as ``dormsig <command>`` options (``args``, what
the Snakemake rules put on the command line). Adding a contrast type is a :class:`~dormsig.de.contrast.Contrast`
constructor or config key (schema) plus one branch in :func:`contrasts`; the file names, rules and
report follow (e.g. ``reference: double_low`` for NOTCH2-high vs double-low samples).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dormsig import _keys as K
from dormsig.de.contrast import Contrast
from dormsig.errors import ConfigError

#: Kinds of step, in the order a dataset runs them
KINDS = ("read", "groups", "de", "enrich", "score", "report")


@dataclass(frozen=True)
class Step:
    """One step of one dataset.

    Attributes
    ----------
    dataset, kind
        Dataset name and one of :data:`KINDS`.
    contrast
        :attr:`Contrast.name` of a groups/de/enrich step, else None.
    inputs, outputs
        Name -> path (a list for several files); relative to the results directory when produced by a
        step, absolute for the dataset's own files.
    params
        Keyword arguments of the library function (``dormsig run`` in process).
    args
        The same settings as options of ``dormsig <kind>`` (the workflow), without inputs, outputs and threads.
    intermediate
        Outputs only the workflow writes (``dormsig run`` keeps them in memory).
    """

    dataset: str
    kind: str
    contrast: str | None
    inputs: dict[str, Any]
    outputs: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    intermediate: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[str, str, str | None]:
        return self.dataset, self.kind, self.contrast


def contrasts(cfg: dict, ds: dict) -> list[tuple[dict, Contrast]]:
    """The (config entry, :class:`Contrast`) of every contrast a dataset runs (none when its ``de`` is false)."""
    if not ds.get("de", True):
        return []
    out = []
    for entry in cfg["contrasts"]:
        if ds.get("group_column"):  # sorted populations: the levels are the sample sheet's
            c = Contrast(ds["group_column"], entry["high"], entry["versus"])
        else:
            c = Contrast.of_groups(entry["high"], entry["versus"])
        if entry.get("reference"):  # another level of the same groups, e.g. NOTCH2_high vs double_low
            c = Contrast(c.factor, c.test, entry["reference"])
        out.append((entry, c))
    names = [c.name for _, c in out]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"config key 'contrasts': {name} is listed twice; list each contrast once")
    return out


def design_for(design: str | None, factor: str) -> str | None:
    """A dataset's design names the groups ``group``; each contrast has its own column."""
    return None if design is None else re.sub(r"\bgroup\b", factor, design)


def _opt(args: list[str], flag: str, value: Any) -> None:
    if value is None or value == "" or value == []:
        return
    if isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    args += [flag, str(value)]


def _rel(dataset: str, name: str) -> str:
    return f"{dataset}/{name}"


def score_params(cfg: dict, ds: dict | None = None) -> tuple[dict, tuple[str, ...]]:
    """(keyword arguments, ``dormsig score`` options) of the score step; ``ds`` None: no dataset keys."""
    sc = cfg["score"]
    ds = ds or {}
    params = {"method": sc["method"], "signatures": sc["signatures"], "index": sc["index"], "seed": cfg["seed"],
              "cells": ds.get("cells"), "reference": sc.get("reference"), **cfg["rank"], **_tumour(ds)}
    args: list[str] = []
    _opt(args, "--method", sc["method"])
    _opt(args, "--signatures", sc["signatures"])
    _opt(args, "--index", sc["index"])
    _opt(args, "--seed", cfg["seed"])
    _opt(args, "--cells", ds.get("cells"))
    args += ["--rule", cfg["rank"]["rule"], "--quantile", str(cfg["rank"]["quantile"])]
    _tumour_args(args, ds)
    return params, tuple(args)


def _tumour(ds: dict) -> dict:
    """The dataset's tumour check (groups and calls use the same one)."""
    return {"tumour_check": ds.get("tumour_check", "auto"), "min_epithelial_cpm": float(ds.get("min_epithelial_cpm", K.MIN_EPITHELIAL_CPM))}


def _tumour_args(args: list[str], ds: dict) -> None:
    t = _tumour(ds)
    args += ["--tumour-check", t["tumour_check"], "--min-epithelial-cpm", str(t["min_epithelial_cpm"])]


def plan(cfg: dict) -> list[Step]:
    """Every step of every dataset of a validated config (:func:`dormsig.pipeline.validate_config`), in order."""
    steps: list[Step] = []
    for name, ds in cfg["datasets"].items():
        steps += _dataset_steps(cfg, name, ds)
    return steps


def _dataset_steps(cfg: dict, name: str, ds: dict) -> list[Step]:
    steps = []
    data = _rel(name, K.DATA_FILE)
    inputs = ds["input"] if isinstance(ds["input"], list) else [ds["input"]]
    read_params = {k: ds[k] for k in ("sample_sheet", "format", "orientation", "species", "tx2gene") if k in ds}
    read_args: list[str] = []
    for key in read_params:
        _opt(read_args, f"--{key.replace('_', '-')}", read_params[key])
    steps.append(Step(name, "read", None,
                      {"data": inputs, **{k: ds[k] for k in ("sample_sheet", "tx2gene") if ds.get(k)}},
                      {"h5ad": data}, read_params, tuple(read_args)))

    current = data  # the h5ad holding every group column defined so far
    de_tables, enr_tables = [], []
    for entry, c in contrasts(cfg, ds):
        if not ds.get("group_column"):
            grouped = _rel(name, f"groups/{c.name}.h5ad")
            gp = {"high": entry["high"], "versus": entry["versus"], "by": cfg["groups"]["by"],
                  "method": cfg["groups"]["method"], "key_added": c.factor}
            args: list[str] = []
            for key, value in gp.items():
                _opt(args, f"--{key.replace('_', '-')}", value)
            gp.update(_tumour(ds))
            _tumour_args(args, ds)
            steps.append(Step(name, "groups", c.name, {"h5ad": current}, {"h5ad": grouped}, gp, tuple(args),
                              intermediate=frozenset({"h5ad"})))
            current = grouped
        de = cfg["de"]
        dp = {"group_key": c.factor, "test": c.test, "reference": c.reference,
              "covariates": tuple(ds.get("covariates", ())), "sample_key": ds.get("sample_key"),
              "min_cells": de["min_cells"], "shrink": de["shrink"], "design": design_for(ds.get("design"), c.factor),
              "size_factors": de["size_factors"], "alpha": de["alpha"], "inference": de["inference"]}
        args = ["--group-key", c.factor, "--test", c.test, "--reference", c.reference]
        for cov in dp["covariates"]:
            args += ["--covariate", cov]
        _opt(args, "--sample-key", dp["sample_key"])
        _opt(args, "--design", dp["design"])
        args += ["--min-cells", str(dp["min_cells"]), "--shrink" if dp["shrink"] else "--no-shrink",
                 "--size-factors", dp["size_factors"], "--alpha", str(dp["alpha"]), "--inference", dp["inference"]]
        de_path = _rel(name, K.DE_FILE.format(contrast=c.name))
        steps.append(Step(name, "de", c.name, {"h5ad": current}, {"tsv": de_path}, dp, tuple(args)))
        # sets holding the genes that defined the groups are flagged as circular
        grouping = None if ds.get("group_column") else [g for g in (entry["high"], entry["versus"]) if g != "low"]
        ep = {"seed": cfg["seed"], "permutations": de["enrichment_permutations"], "grouping_genes": grouping}
        args = ["--seed", str(cfg["seed"]), "--permutations", str(ep["permutations"])]
        _opt(args, "--grouping-genes", grouping)
        enr_path = _rel(name, K.ENRICHMENT_FILE.format(contrast=c.name))
        steps.append(Step(name, "enrich", c.name, {"tsv": de_path}, {"tsv": enr_path}, ep, tuple(args)))
        de_tables.append(de_path)
        enr_tables.append(enr_path)

    sp, sargs = score_params(cfg, ds)
    score_inputs = {"h5ad": current, **({"reference": sp["reference"]} if sp["reference"] else {})}
    steps.append(Step(name, "score", None, score_inputs,
                      {"scores": _rel(name, K.SCORES_FILE), "h5ad": _rel(name, K.SCORED_FILE)}, sp, sargs))

    first = next(iter(contrasts(cfg, ds)), None)
    rp = {"groupby": None if first is None else first[1].factor, "title": f"dormsig report: {name}",
          "tissue": ds.get("tissue"), "contrast": None if first is None else (first[1].test, first[1].reference),
          "block": ds.get("sample_key") or next(iter(ds.get("covariates") or []), None)}
    args = []
    _opt(args, "--groupby", rp["groupby"])
    args += ["--title", rp["title"]]
    _opt(args, "--tissue", rp["tissue"])
    _opt(args, "--block", rp["block"])
    steps.append(Step(name, "report", None, {"h5ad": _rel(name, K.SCORED_FILE), "de": de_tables,
                                             "enrichment": enr_tables},
                      {"html": _rel(name, K.REPORT_FILE), "figures": _rel(name, "report_figures")}, rp, tuple(args)))
    return steps


__all__ = ["KINDS", "Step", "contrasts", "design_for", "plan", "score_params"]
