"""The whole pipeline from one config: read -> groups -> DE -> enrichment -> score -> rank -> report.

Used by ``dormsig run`` and ``dormsig demo``, which execute the steps of :func:`dormsig.plan.plan` in
process. The Snakemake workflow (``workflows/Snakefile``) validates its config with :func:`validate_config`
and runs the same steps as ``dormsig`` commands; one schema: ``dormsig/schemas/config.schema.yaml``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from dormsig import _interrupt
from dormsig.de.contrast import Contrast
from dormsig.errors import ConfigError, DesignError, DormsigError, MissingInputError
from dormsig.plan import Step

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
    return resolve_paths(cfg, base_dir(cfg, path))


def base_dir(cfg: dict, config_file: str | os.PathLike | None) -> Path:
    """What relative paths refer to: ``workflow.base_dir`` (itself relative to the config file), else the file's directory.

    Without a config file (a config built in Python), the working directory.
    """
    parent = Path(config_file).resolve().parent if config_file is not None else Path.cwd()
    return parent / os.path.expanduser(cfg["workflow"]["base_dir"] or "")


def resolve_paths(cfg: dict, base: str | os.PathLike) -> dict:
    """Make the config's relative paths absolute against ``base`` (the config file's directory), in place.

    Dataset files always; ``score.reference``; ``score.signatures`` and ``score.index`` when they name
    an existing file there (else they are library names). The Snakefile calls this too.
    """
    base = Path(base)
    for ds in cfg["datasets"].values():
        for key in ("input", "sample_sheet", "tx2gene"):
            if key in ds:
                ds[key] = _resolve(ds[key], base)
    score = cfg.get("score", {})
    if score.get("reference"):
        score["reference"] = _resolve(score["reference"], base)
    for key in ("signatures", "index"):
        value = score.get(key)
        if isinstance(value, str) and not Path(value).is_absolute() and (base / value).is_file():
            score[key] = str(base / value)
    return cfg


def _resolve(value: str | list[str], base: Path) -> str | list[str]:
    if isinstance(value, list):
        return [str(base / os.path.expanduser(v)) for v in value]
    return str(base / os.path.expanduser(value))


def demo_config() -> dict:
    """The config of ``dormsig demo``: ``dormsig/data/aceto2014_ctc/run_config.yaml`` (CTC counts, both contrasts)."""
    from dormsig.data import example_path

    return load_config(example_path("aceto2014_ctc/run_config.yaml"))


def contrast_levels(high: str, versus: str) -> tuple[str, str, str]:
    """(group column, test level, reference level) of a contrast (see :class:`dormsig.de.contrast.Contrast`)."""
    c = Contrast.of_groups(high, versus)
    return c.factor, c.test, c.reference


def _dataset_inputs(ds: dict) -> list[str]:
    inputs = ds["input"] if isinstance(ds["input"], list) else [ds["input"]]
    return [p for p in [*inputs, ds.get("sample_sheet"), ds.get("tx2gene")] if p is not None]


def _outputs(steps: list[Step], out: Path) -> list[tuple[Path, str]]:
    """(path, kind) of everything a dataset writes into ``out`` (the results directory), in the order written."""
    files = []
    for step in steps:
        for name, rel in step.outputs.items():
            if name not in step.intermediate:
                files.append((out / rel, "dir" if name == "figures" else "file"))
    return files


def run_pipeline(cfg: dict, out: str | os.PathLike, *, force: bool = False, threads: int | None = None,
                 seed: int | None = None, cells: str | None = None, plan: Any = None) -> list[Path]:
    """Run every dataset of a validated config into ``out/<dataset>/``; return the report paths.

    The steps are :func:`dormsig.plan.plan`'s (the Snakemake workflow runs the same ones as CLI calls).
    ``cells`` (``COLUMN=VALUE``, the CLI's ``--cells``) overrides each dataset's ``cells`` key.
    Every input and output is declared in ``plan`` (a :class:`dormsig.io.paths.PathPlan`; a new one when
    None) before anything is read or created. Each dataset is computed in a hidden staging directory;
    the datasets are moved into place together, only when all of them are complete. On any error or
    interrupt the staging directories (and any directory created for them) are removed.
    """
    from dormsig._paths import PathPlan
    from dormsig.io.write import OutputSet
    from dormsig.plan import plan as make_plan

    out = Path(out)
    threads = threads or cfg.get("threads", 2)
    cfg = {**cfg, "seed": cfg.get("seed", 0) if seed is None else seed}
    if cells is not None:
        cfg["datasets"] = {name: {**ds, "cells": cells} for name, ds in cfg["datasets"].items()}
    steps = make_plan(cfg)
    paths = plan if plan is not None else PathPlan(force=force)
    for name, ds in cfg["datasets"].items():
        for p in _dataset_inputs(ds):
            if not Path(p).exists():
                raise MissingInputError(f"input of dataset '{name}' does not exist", path=p)
            paths.input(p, f"datasets.{name}")
    for key in ("signatures", "index", "reference"):
        value = cfg["score"].get(key)
        if isinstance(value, str) and Path(value).is_file():
            paths.input(value, f"score.{key}", kind="file")
        elif key == "reference" and value:
            raise MissingInputError("score.reference does not exist", path=value)
    jobs = []
    for name, ds in cfg["datasets"].items():
        ds_steps = [s for s in steps if s.dataset == name]
        dest = out / name
        shared = [e.typed for e in paths.inputs if not e.label.startswith("datasets.")]  # config, signatures...
        outs = OutputSet("pipeline", {"dataset": name, "config": cfg, "threads": threads, "seed": cfg["seed"]},
                         _dataset_inputs(ds), plan=paths, recorded=[*_dataset_inputs(ds), *shared])
        for path, kind in _outputs(ds_steps, out):
            outs.add(path, "--out", kind=kind)
        stage = paths.output(out / f".{name}.partial", "--out (staging)", kind="dir", sidecar=False, scratch=True)
        jobs.append((name, ds_steps, dest, stage, outs))
    reports = []
    try:
        for name, ds_steps, dest, stage, outs in jobs:
            shutil.rmtree(stage, ignore_errors=True)  # a run killed by SIGKILL cannot clean up after itself
            stage.mkdir(parents=True)
            try:
                reports.append(_run_dataset(name, ds_steps, cfg, dest, stage, outs, threads=threads))
            except DormsigError as exc:
                if len(jobs) > 1:  # say which dataset failed
                    exc.args = (f"dataset '{name}': {exc}",)
                raise
        for _name, _steps, dest, stage, outs in jobs:
            _promote(stage, dest, outs.paths)
            outs.finish()
    except BaseException:
        for *_, stage, _ in jobs:
            shutil.rmtree(stage, ignore_errors=True)
        paths.rollback()
        raise
    return reports


def _run_dataset(name: str, steps: list[Step], cfg: dict, out: Path, stage: Path, outs: Any, *, threads: int) -> Path:
    """Execute one dataset's steps of the plan of ``cfg`` in process, keeping the AnnData in memory between them."""
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
    from dormsig.tl.epithelial import OFF_ADVICE, check_epithelial
    from dormsig.tl.reference import rank_against, score_table

    def staged(rel: str) -> Path:  # a step's output path (relative to the results dir) inside the staging dir
        return stage / Path(rel).relative_to(out.name)

    progress = _Progress(name, total=sum(s.kind not in ("groups", "enrich") for s in steps))
    adata, cells = None, None
    de_tables: dict[str, Any] = {}
    enrichments: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    tables: dict[str, Any] = {}  # contrast -> DE table
    labels = {s.contrast: f"{s.params['test']} vs {s.params['reference']}" for s in steps if s.kind == "de"}
    for step in steps:
        p = step.params
        if step.kind == "read":
            inputs = step.inputs["data"]
            progress.step(f"reading {', '.join(map(str, inputs))}")
            adata = read(inputs[0] if len(inputs) == 1 else inputs, **p)
            cells_spec = cfg["datasets"][name].get("cells")
            if cells_spec:  # checked before any long step
                cells = parse_cells(cells_spec, what=f"cells of dataset '{name}'")
                select_cells(adata, cells, what=f"cells of dataset '{name}'")
            write_h5ad(adata, staged(step.outputs["h5ad"]))
        elif step.contrast in skipped:
            continue
        elif step.kind in ("groups", "de"):
            label = labels[step.contrast]
            try:
                if step.kind == "groups":
                    define_groups(adata, **p)
                    continue
                progress.step(f"DE {label}")
                table, _ = run_de(adata, **p, threads=threads)
            except DesignError as exc:
                # A contrast the data cannot support is reported (log, provenance, report), never silently skipped.
                log.warning("[%s] contrast %s skipped: %s", name, label, exc)
                skipped[step.contrast] = str(exc)
                continue
            write_table(table, staged(step.outputs["tsv"]), index=False)
            tables[step.contrast] = table
            de_tables[label] = table
        elif step.kind == "enrich":
            table = tables[step.contrast]
            enr = enrich(table, seed=p["seed"], permutations=p["permutations"], threads=threads,
                         grouping_genes=p["grouping_genes"])
            write_table(enr, staged(step.outputs["tsv"]), index=False)
            enrichments[labels[step.contrast]] = enr
        elif step.kind == "score":
            progress.step(f"scoring ({p['method']})")
            method, max_rank, ref = p["method"], None, None
            if p["reference"]:  # as 'dormsig score --reference': score as the reference was scored
                import anndata

                ref = anndata.read_h5ad(p["reference"])
                ref_rec = ref.uns.get("dormsig", {}).get("score", {})
                if method == "auto":
                    method = str(ref_rec.get("method", method))
                    stored = ref_rec.get("params", {}).get("max_rank")
                    max_rank = int(stored) if method == "ucell" and stored is not None and str(stored) != "None" else None
            signatures = p["signatures"]
            score(adata, None if signatures is None else as_library(signatures), method=method, index=p["index"],
                  threads=threads, seed=p["seed"], cells=cells, max_rank=max_rank)
            used = adata.uns["dormsig"]["score"].get("index") or {}
            log.info("[%s] dormancy index: %s %s%s", name, used.get("name", "none"), used.get("version", ""),
                     "" if used.get("computed", True) else " (not computed: a component has no gene in the data)")
            if ref is not None:  # the reference's tumour check, unless the dataset asks for one
                rank_against(adata, ref, source=f"score.reference {p['reference']}",
                             tumour_check=None if p["tumour_check"] == "auto" else p["tumour_check"],
                             min_epithelial_cpm=p["min_epithelial_cpm"])
            elif "dormancy_index" in adata.obsm["dormsig_scores"]:
                rank(adata, rule=p["rule"], quantile=p["quantile"], seed=p["seed"], tumour_check=p["tumour_check"],
                     min_epithelial_cpm=p["min_epithelial_cpm"])
            if "dormsig_call" in adata.obs:
                compartment = check_compartments(adata)
                (log.warning if compartment.n_calls_outside and not cells else log.info)(
                    "[%s] %s", name, compartment_message(compartment, advice="config"))
                outs.extra["compartment"] = compartment.to_dict()
                epithelial = check_epithelial(adata)
                if epithelial is not None:
                    (log.warning if epithelial.low else log.info)("[%s] %s", name, epithelial.message.replace(
                        OFF_ADVICE, f"set tumour_check: none for dataset '{name}'"))
                    outs.extra["epithelial"] = epithelial.to_dict()
            write_table(score_table(adata), staged(step.outputs["scores"]), index=True)
            adata.uns.setdefault("dormsig", {})["skipped_contrasts"] = skipped or {"none": ""}
            write_h5ad(adata, staged(step.outputs["h5ad"]))
        elif step.kind == "report":
            progress.step("report")
            groupby = p["groupby"] if p["groupby"] in adata.obs else None
            context = FindingsContext(tissue=p["tissue"], block=p["block"], contrast=p["contrast"])
            # every contrast of the run, in the config's order
            report_path = staged(step.outputs["html"])
            write_report(report_path, adata=adata, de=de_tables, enrichment=enrichments, groupby=groupby,
                         title=p["title"], findings=context)
            report_path = out / report_path.relative_to(stage)
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
        _interrupt.checkpoint()  # a Ctrl-C dropped inside a library callback stops the run here
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
    _interrupt.checkpoint()  # an interrupted run moves nothing into place
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


__all__ = ["DormsigError", "demo_config", "base_dir", "load_config", "resolve_paths", "run_pipeline", "schema", "validate_config"]
