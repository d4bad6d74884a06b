# Shared set-up: config validation, path resolution, per-dataset options and target lists.
import os
import re
from pathlib import Path

from snakemake.utils import validate


validate(config, "../schemas/config.schema.yaml")

DORMSIG = config["dormsig"]
RESULTS = config["results"]
LOGS = config["logs"]
DATASETS = sorted(config["datasets"])
ENV = "../envs/dormsig.yaml"


def _base_dir():
    """Directory that relative dataset paths refer to."""
    if config.get("base_dir"):
        return Path(config["base_dir"]).resolve()
    if workflow.configfiles:
        return Path(workflow.configfiles[-1]).resolve().parent
    return Path.cwd()


BASE_DIR = _base_dir()


def resolve(path):
    """An absolute path for a path from the config (absolute, or relative to BASE_DIR)."""
    p = Path(os.path.expanduser(path))
    return os.path.normpath(p if p.is_absolute() else BASE_DIR / p)


def dataset(name):
    return config["datasets"][name]


def n_shards(name):
    return int(dataset(name).get("shards", 1))


def _alternation(names):
    # A regex matching exactly these names; "(?!)" never matches, for an empty list.
    return "|".join(re.escape(n) for n in names) or "(?!)"


SHARDED = _alternation([d for d in DATASETS if n_shards(d) > 1])
UNSHARDED = _alternation([d for d in DATASETS if n_shards(d) == 1])


wildcard_constraints:
    dataset=_alternation(DATASETS),
    shard=r"\d+",


def out(name, dataset="{dataset}"):
    """A per-dataset result path, e.g. out("de.tsv") -> results/{dataset}/de.tsv."""
    return f"{RESULTS}/{dataset}/{name}"


def logfile(step, dataset="{dataset}"):
    return f"{LOGS}/{dataset}/{step}.log"


def sidecar(path):
    """The provenance file the dormsig CLI writes beside every output."""
    return f"{path}.provenance.json"


def opt(flag, value):
    """A CLI option, shell-quoted, or nothing when the value is unset."""
    if value is None or value == "":
        return ""
    return f"{flag} {shlex_quote(str(value))}"


def shlex_quote(text):
    import shlex

    return shlex.quote(text)


def de_levels(name):
    """Test and reference levels of the group column (dormsig groups names them <gene>_high)."""
    d = dataset(name)
    return d.get("test", f"{d['high']}_high"), d.get("reference", f"{d['versus']}_high")


def score_reference(wc):
    """The reference h5ad of reference-based calls, as a (possibly empty) input list."""
    ref = config["score"].get("reference")
    return [resolve(ref)] if ref else []


def report_inputs(wc):
    """Inputs of the report: the scored h5ad, plus DE and enrichment when the dataset runs DE."""
    inputs = {"h5ad": out("scored.h5ad", wc.dataset)}
    if dataset(wc.dataset)["de"]:
        inputs["de"] = out("de.tsv", wc.dataset)
        inputs["enrichment"] = out("enrichment.tsv", wc.dataset)
    return inputs


def all_targets():
    return [out("report.html", d) for d in DATASETS]
