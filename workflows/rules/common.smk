# Shared set-up: the config validated by dormsig's schema, its relative paths resolved, and the plan
# (dormsig.plan.plan) that every rule looks its inputs, outputs and options up in.
import os
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError

import dormsig.pipeline
import dormsig.plan
from dormsig.errors import DormsigError


def _config_file():
    """The config file last given (--configfile, the example, or the importing workflow's), or None."""
    return Path(workflow.configfiles[-1]).resolve() if workflow.configfiles else None


try:
    dormsig.pipeline.validate_config(config, source=_config_file() or "config")
    # Relative paths: against the config file's directory (or workflow.base_dir), as `dormsig run` does.
    dormsig.pipeline.resolve_paths(config, dormsig.pipeline.base_dir(config, _config_file()))
    PLAN = dormsig.plan.plan(config)
except DormsigError as exc:
    raise WorkflowError(str(exc)) from None

WF = config["workflow"]
DORMSIG = WF["dormsig"]
RESULTS = WF["results"]
LOGS = WF["logs"]
ENV = "../envs/dormsig.yaml"
STEPS = {s.key: s for s in PLAN}
DATASETS = sorted(config["datasets"])
CONTRASTS = sorted({s.contrast for s in PLAN if s.contrast})


def _alternation(names):
    # A regex matching exactly these names; "(?!)" never matches, for an empty list.
    import re

    return "|".join(re.escape(n) for n in names) or "(?!)"


def n_shards(name):
    return config["datasets"][name]["workflow"]["shards"]


SHARDED = _alternation([d for d in DATASETS if n_shards(d) > 1])
UNSHARDED = _alternation([d for d in DATASETS if n_shards(d) == 1])


wildcard_constraints:
    dataset=_alternation(DATASETS),
    contrast=_alternation(CONTRASTS),
    shard=r"\d+",


def out(name, dataset="{dataset}"):
    """A per-dataset result path, e.g. out("scores.tsv") -> results/{dataset}/scores.tsv."""
    return f"{RESULTS}/{dataset}/{name}"


def logfile(step, dataset="{dataset}"):
    return f"{LOGS}/{dataset}/{step}.log"


def sidecar(path):
    """The provenance file the dormsig CLI writes beside every output."""
    return f"{path}.provenance.json"


def threads(kind):
    return WF["threads"].get(kind) or config["threads"]


def res(path):
    """A plan path in the file system: results-relative paths under RESULTS, absolute ones as they are."""
    if isinstance(path, list):
        return [res(p) for p in path]
    return path if os.path.isabs(path) else f"{RESULTS}/{path}"


def step(wc, kind):
    """The plan's step of this job (None for the reusable scoring rule used without a {dataset})."""
    return STEPS.get((wc.get("dataset"), kind, wc.get("contrast")))


def step_input(kind, name):
    """Input function: the plan's input `name` of the step of kind `kind`."""
    return lambda wc: res(step(wc, kind).inputs[name])


def step_args(kind):
    """Params function: the plan's `dormsig <kind>` options of this job, shell-quoted."""

    def args(wc):
        s = step(wc, kind)
        return shlex.join(s.args if s is not None else dormsig.plan.score_params(config)[1])

    return args


def all_targets():
    """Every file `dormsig run` writes (the plan's outputs, except intermediates and the figure directory)."""
    return [res(p) for s in PLAN for name, p in s.outputs.items() if name not in s.intermediate and name != "figures"]


def score_reference(wc):
    """The reference h5ad of reference-based calls (config score.reference), as a (possibly empty) input list."""
    ref = config["score"]["reference"]
    return [ref] if ref else []


def report_tables(wc, input):
    """The report's --de and --enrichment options, one pair per contrast in the plan's order."""
    pairs = [f"--de {shlex.quote(d)}" for d in input.de] + [f"--enrichment {shlex.quote(e)}" for e in input.enrichment]
    return " ".join(pairs)
