"""The whole pipeline from one config: read -> groups -> DE -> enrichment -> score -> rank -> report.

Used by ``dormsig run`` and ``dormsig demo``. The Snakemake workflow runs the same steps as
separate CLI calls; both validate the config against ``dormsig/schemas/config.schema.yaml``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from dormsig.de.contrast import Contrast
from dormsig.errors import ConfigError, DesignError, DormsigError, MissingInputError

log = logging.getLogger("dormsig")

SCHEMA = files("dormsig") / "schemas" / "config.schema.yaml"


def schema() -> dict:
    """The config JSON schema (as a dict)."""
    return yaml.safe_load(SCHEMA.read_text())


def _fill_defaults(instance: Any, sch: dict) -> None:
    """Fill the schema's ``default`` values into the config, recursively (objects only)."""
    if not isinstance(instance, dict):
        return
    for key, sub in sch.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = yaml.safe_load(yaml.safe_dump(sub["default"]))
        if key in instance:
            _fill_defaults(instance[key], sub)
    extra = sch.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in sch.get("properties", {}):
                _fill_defaults(value, extra)


def validate_config(cfg: Any, *, source: str | os.PathLike = "config") -> dict:
    """Validate a config against the schema, fill defaults, and return it.

    Raises
    ------
    ConfigError
        One line naming the file, the key path and the problem.
    """
    import jsonschema

    sch = schema()
    validator = jsonschema.Draft202012Validator(sch)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        text = " ".join(err.message.split())
        text = text if len(text) <= 120 else text[:117] + "..."  # jsonschema may quote a whole value
        raise ConfigError(f"config key '{key}': {text}", path=source)
    _fill_defaults(cfg, sch)
    return cfg


def load_config(path: str | os.PathLike) -> dict:
    """Read a YAML config, validate it and resolve its relative paths against its directory."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError("is a directory; give the YAML config file", path=path)
    try:
        cfg = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file (a YAML config is text)", path=path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from None
    if cfg is not None and not isinstance(cfg, dict):
        raise ConfigError(f"a config is a YAML mapping (datasets:, contrasts: ...), not a {type(cfg).__name__}",
                          path=path)
    cfg = validate_config(cfg if cfg is not None else {}, source=path)
    base = path.resolve().parent
    for ds in cfg["datasets"].values():
        for key in ("input", "sample_sheet", "tx2gene"):
            if key in ds:
                ds[key] = _resolve(ds[key], base)
    return cfg


def _resolve(value: str | list[str], base: Path) -> str | list[str]:
    if isinstance(value, list):
        return [str(base / v) for v in value]
    return str(base / value)


def demo_config() -> dict:
    """The config of ``dormsig demo``: ``dormsig/data/aceto2014_ctc/run_config.yaml`` (CTC counts, both contrasts)."""
    from dormsig.data import example_path

    return load_config(example_path("aceto2014_ctc/run_config.yaml"))


def contrast_levels(high: str, versus: str) -> tuple[str, str, str]:
    """(group column, test level, reference level) of a contrast (see :class:`dormsig.de.contrast.Contrast`)."""
    c = Contrast.of_groups(high, versus)
    return c.factor, c.test, c.reference


def _design(design: str | None, group_key: str) -> str | None:
    """A dataset's design names the groups as ``group``; each contrast stores them in its own column."""
    return None if design is None else re.sub(r"\bgroup\b", group_key, design)


def _dataset_inputs(ds: dict) -> list[str]:
    inputs = ds["input"] if isinstance(ds["input"], list) else [ds["input"]]
    return [p for p in [*inputs, ds.get("sample_sheet"), ds.get("tx2gene")] if p is not None]


def _outputs(cfg: dict, out: Path) -> list[tuple[Path, str]]:
    """(path, kind) of everything a dataset writes into ``out``, in the order it is written."""
    files = [(out / "data.h5ad", "file")]
    for c in cfg["contrasts"]:
        key = contrast_levels(c["high"], c["versus"])[0].removeprefix("group_")
        files += [(out / f"de_{key}.tsv", "file"), (out / f"enrichment_{key}.tsv", "file")]
    return [*files, (out / "scores.tsv", "file"), (out / "scored.h5ad", "file"), (out / "report.html", "file"),
            (out / "report_figures", "dir")]


def run_pipeline(cfg: dict, out: str | os.PathLike, *, force: bool = False, threads: int | None = None,
                 seed: int | None = None, cells: str | None = None, plan: Any = None) -> list[Path]:
    """Run every dataset of a validated config into ``out/<dataset>/``; return the report paths.

    ``cells`` (``COLUMN=VALUE``, the CLI's ``--cells``) overrides each dataset's ``cells`` key.
    Every input and output is declared in ``plan`` (a :class:`dormsig.io.paths.PathPlan`; a new one when
    None) before anything is read or created. Each dataset is computed in a hidden staging directory;
    the datasets are moved into place together, only when all of them are complete. On any error or
    interrupt the staging directories (and any directory created for them) are removed.
    """
    from dormsig._paths import PathPlan
    from dormsig.io.write import OutputSet

    out = Path(out)
    threads = threads or cfg.get("threads", 2)
    seed = cfg.get("seed", 0) if seed is None else seed
    plan = plan if plan is not None else PathPlan(force=force)
    for name, ds in cfg["datasets"].items():
        for p in _dataset_inputs(ds):
            if not Path(p).exists():
                raise MissingInputError(f"input of dataset '{name}' does not exist", path=p)
            plan.input(p, f"datasets.{name}")
    for key in ("signatures", "index"):
        value = cfg["score"].get(key)
        if isinstance(value, str) and Path(value).is_file():
            plan.input(value, f"score.{key}", kind="file")
    jobs = []
    for name, ds in cfg["datasets"].items():
        dest = out / name
        shared = [e.typed for e in plan.inputs if not e.label.startswith("datasets.")]  # config, signatures...
        outs = OutputSet("pipeline", {"dataset": name, "config": cfg, "threads": threads, "seed": seed},
                         _dataset_inputs(ds), plan=plan, recorded=[*_dataset_inputs(ds), *shared])
        for path, kind in _outputs(cfg, dest):
            outs.add(path, "--out", kind=kind)
        stage = plan.output(out / f".{name}.partial", "--out (staging)", kind="dir", sidecar=False, scratch=True)
        jobs.append((name, ds, dest, stage, outs))
    reports = []
    try:
        for name, ds, dest, stage, outs in jobs:
            shutil.rmtree(stage, ignore_errors=True)  # a run killed by SIGKILL cannot clean up after itself
            stage.mkdir(parents=True)
            try:
                ds_run = {**ds, "cells": cells} if cells is not None else ds
                reports.append(_run_dataset(name, ds_run, cfg, dest, stage, outs, threads=threads, seed=seed))
            except DormsigError as exc:
                if len(jobs) > 1:  # say which dataset failed
                    exc.args = (f"dataset '{name}': {exc}",)
                raise
        for _name, _ds, dest, stage, outs in jobs:
            _promote(stage, dest, outs.paths)
            outs.finish()
    except BaseException:
        for *_, stage, _ in jobs:
            shutil.rmtree(stage, ignore_errors=True)
        plan.rollback()
        raise
    return reports


def _run_dataset(name: str, ds: dict, cfg: dict, out: Path, stage: Path, outs: Any, *, threads: int,
                 seed: int) -> Path:
    from dormsig.de import enrich
    from dormsig.de.groups import define_groups
    from dormsig.de.run import run_de
    from dormsig.io import read, write_h5ad, write_table
    from dormsig.report import write_report
    from dormsig.report.findings import FindingsContext
    from dormsig.signatures import as_library
    from dormsig.tl import rank, score
    from dormsig.tl.cells import parse_cells, select_cells
    from dormsig.tl.compartment import check_compartments, compartment_message
    from dormsig.tl.epithelial import check_epithelial
    from dormsig.tl.reference import score_table

    inputs = ds["input"] if isinstance(ds["input"], list) else [ds["input"]]
    data_path = out / "data.h5ad"
    contrasts = [(c, *contrast_levels(c["high"], c["versus"])) for c in cfg["contrasts"]]
    de_paths = {key: (out / f"de_{key.removeprefix('group_')}.tsv", out / f"enrichment_{key.removeprefix('group_')}.tsv")
                for _, key, _, _ in contrasts}
    scores_path, scored_path, report_path = out / "scores.tsv", out / "scored.h5ad", out / "report.html"

    def staged(path: Path) -> Path:
        return stage / path.relative_to(out)

    progress = _Progress(name, total=3 + len(contrasts))  # read, each contrast, score, report
    progress.step(f"reading {', '.join(map(str, inputs))}")
    read_opts = {k: ds[k] for k in ("sample_sheet", "format", "orientation", "species", "tx2gene") if k in ds}
    adata = read(inputs[0] if len(inputs) == 1 else inputs, **read_opts)
    cells = None
    if ds.get("cells"):  # checked before any long step
        cells = parse_cells(ds["cells"], what=f"cells of dataset '{name}'")
        select_cells(adata, cells, what=f"cells of dataset '{name}'")
    write_h5ad(adata, staged(data_path))

    de_tables: dict[str, Any] = {}
    enrichments: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for contrast, path_key, test, reference in contrasts:
        key = path_key
        label = f"{test} vs {reference}"
        try:
            if ds.get("group_column"):
                key, test, reference = ds["group_column"], contrast["high"], contrast["versus"]
            else:
                define_groups(adata, high=contrast["high"], versus=contrast["versus"], by=cfg["groups"]["by"],
                              method=cfg["groups"]["method"], key_added=key)
            progress.step(f"DE {label}")
            table, _ = run_de(adata, group_key=key, test=test, reference=reference,
                              covariates=tuple(ds.get("covariates", ())), sample_key=ds.get("sample_key"),
                              min_cells=cfg["de"]["min_cells"], shrink=cfg["de"]["shrink"],
                              design=_design(ds.get("design"), key), size_factors=cfg["de"]["size_factors"],
                              alpha=cfg["de"]["alpha"], inference=cfg["de"]["inference"], threads=threads)
        except DesignError as exc:
            # A contrast the data cannot support is reported (log, provenance, report), never silently skipped.
            log.warning("[%s] contrast %s skipped: %s", name, label, exc)
            skipped[label] = str(exc)
            continue
        de_path, enr_path = de_paths[path_key]
        write_table(table, staged(de_path), index=False)
        # sets containing the genes that defined the groups are flagged as circular
        grouping = None if ds.get("group_column") else [g for g in (contrast["high"], contrast["versus"]) if g != "low"]
        enr = enrich(table, seed=seed, permutations=cfg["de"]["enrichment_permutations"], threads=threads,
                     grouping_genes=grouping)
        write_table(enr, staged(enr_path), index=False)
        de_tables[label], enrichments[label] = table, enr

    progress.step(f"scoring ({cfg['score']['method']})")
    signatures = cfg["score"]["signatures"]
    score(adata, None if signatures is None else as_library(signatures), method=cfg["score"]["method"], index=cfg["score"]["index"], threads=threads, seed=seed,
          cells=cells)
    used = adata.uns["dormsig"]["score"].get("index") or {}
    log.info("[%s] dormancy index: %s %s%s", name, used.get("name", "none"), used.get("version", ""),
             "" if used.get("computed", True) else " (not computed: a component has no gene in the data)")
    if "dormancy_index" in adata.obsm["dormsig_scores"]:
        rank(adata, rule=cfg["rank"]["rule"], quantile=cfg["rank"]["quantile"], seed=seed)
        compartment = check_compartments(adata)
        (log.warning if compartment.n_calls_outside and not cells else log.info)(
            "[%s] %s", name, compartment_message(compartment, advice="config"))
        outs.extra["compartment"] = compartment.to_dict()
        epithelial = check_epithelial(adata)
        if epithelial is not None:
            (log.warning if epithelial.low else log.info)("[%s] %s", name, epithelial.message)
            outs.extra["epithelial"] = epithelial.to_dict()
    write_table(score_table(adata), staged(scores_path), index=True)
    adata.uns.setdefault("dormsig", {})["skipped_contrasts"] = skipped or {"none": ""}
    write_h5ad(adata, staged(scored_path))

    progress.step("report")
    groupby = contrasts[0][1] if contrasts and contrasts[0][1] in adata.obs else None
    context = FindingsContext(tissue=ds.get("tissue"), block=(ds.get("sample_key") or next(iter(ds.get("covariates") or []), None)),
                              contrast=(contrasts[0][2], contrasts[0][3]) if contrasts else None)
    # every contrast of the run, in the config's order
    write_report(staged(report_path), adata=adata, de=de_tables, enrichment=enrichments,
                 groupby=groupby, title=f"dormsig report: {name}", findings=context)
    outs.extra["skipped_contrasts"] = skipped
    progress.close()
    return report_path


class _Progress:
    """A progress bar on a terminal; plain log lines when stderr is not a terminal (CI, Snakemake logs)."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, total, 0
        self.bar = None
        if sys.stderr.isatty() and log.isEnabledFor(logging.INFO):
            import click

            self.bar = click.progressbar(length=total, label=name, file=sys.stderr, show_pos=True,
                                         item_show_func=lambda item: item)
            self.bar.__enter__()

    def step(self, what: str) -> None:
        if self.bar is None:
            log.info("[%s] %s", self.name, what)
        else:
            self.bar.update(1 if self.done else 0, what)
        self.done += 1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.total - self.bar.pos)
            self.bar.__exit__(None, None, None)


def _promote(stage: Path, out: Path, registered: list[Path]) -> None:
    """Move a finished dataset from its staging directory into ``out``; drop stale outputs of earlier runs."""
    out.mkdir(parents=True, exist_ok=True)
    for path in registered:  # e.g. the DE table of a contrast skipped this time but run last time
        if not (stage / path.relative_to(out)).exists():
            for old in (path, Path(f"{path}.provenance.json")):
                old.unlink(missing_ok=True)
    for item in sorted(stage.iterdir()):
        target = out / item.name
        if target.is_dir() and item.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    shutil.rmtree(stage, ignore_errors=True)


__all__ = ["DormsigError", "demo_config", "load_config", "run_pipeline", "schema", "validate_config"]
