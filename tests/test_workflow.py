"""The Snakemake workflow: lint, dry runs (plain, sharded, as a module, a user's config), real runs equal to `dormsig run`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "workflows"
SNAKEFILE = WORKFLOW / "Snakefile"
BIN = str(Path(sys.executable).parent)
# The venv's bin first, so that the rules find this dormsig even when pytest is run without activating it.
PATH = os.pathsep.join([BIN, os.environ.get("PATH", "")])
DORMSIG = shutil.which("dormsig", path=PATH)
needs_cli = pytest.mark.skipif(DORMSIG is None, reason="the dormsig command is not installed")

SCRIPTS = WORKFLOW / "scripts"
sys.path.insert(0, str(SCRIPTS))


def _snakemake(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": PATH}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _example(tmp_path: Path, n_genes: int | None = None) -> tuple[Path, Path]:
    """Copy the bundled CTC example into tmp_path/data (so that nothing is written into the package).

    ``n_genes``: only the most-counted genes (and NOTCH1, NOTCH2), which keeps a real run short.
    """
    import pandas as pd

    import dormsig.data

    src = dormsig.data.example_path("aceto2014_ctc")
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    sheet = shutil.copy(src / Path(dormsig.data.CTC_SAMPLES).name, data)
    if n_genes is None:
        return Path(shutil.copy(src / Path(dormsig.data.CTC_COUNTS).name, data)), Path(sheet)
    counts = pd.read_csv(src / Path(dormsig.data.CTC_COUNTS).name, sep="\t", index_col=0)
    keep = counts.sum(axis=1).nlargest(n_genes).index.union(["NOTCH1", "NOTCH2"])
    counts.loc[keep].to_csv(data / "counts.tsv", sep="\t")
    return data / "counts.tsv", Path(sheet)


def _config(tmp_path: Path, *, n_genes: int | None = None, top: dict | None = None, **datasets: dict) -> Path:
    """A user config in tmp_path/config.yaml, its dataset paths relative to it (as the schema promises)."""
    counts, sheet = _example(tmp_path, n_genes)
    if not datasets:
        datasets = {"ctc": {}}
    config = {
        "datasets": {
            name: {"input": str(counts.relative_to(tmp_path)), "sample_sheet": str(sheet.relative_to(tmp_path)), **opts}
            for name, opts in datasets.items()
        },
        **(top or {}),
        "workflow": {"dormsig": DORMSIG or "dormsig", "threads": {"de": 1, "score": 1}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _dry(tmp_path: Path, config: Path, *extra: str) -> str:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    proc = _snakemake("-s", str(SNAKEFILE), "-d", str(work), "--configfile", str(config), "-n", *extra, cwd=tmp_path)
    return proc.stdout + proc.stderr


def _text(html: str) -> str:
    """The words of an HTML fragment (figures dropped: their bytes are not the point)."""
    import html as html_lib
    import re

    return html_lib.unescape(" ".join(re.sub(r"<figure.*?</figure>|<[^>]+>", " ", html, flags=re.S).split()))


def _copy_workflow(tmp_path: Path, link_package: bool = True) -> Path:
    """A copy of workflows/ outside the repository (the catalog convention); the example's paths need ../../dormsig."""
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOW, copy, ignore=shutil.ignore_patterns(".snakemake", "results", "logs"))
    if link_package:
        (tmp_path / "dormsig").symlink_to(REPO / "dormsig")
    return copy


def test_lint(tmp_path):
    # Lint the shipped config as is (run inside a copy so no .snakemake/ lands in the repository).
    proc = _snakemake("--lint", cwd=_copy_workflow(tmp_path))
    out = proc.stdout + proc.stderr
    assert "Lints for" not in out, out
    assert "Congratulations" in out


def test_shipped_config_dry_run_runs_every_contrast(tmp_path):
    proc = _snakemake("-n", cwd=_copy_workflow(tmp_path))
    out = proc.stdout + proc.stderr
    for rule in ("read_input", "define_groups", "differential_expression", "enrichment", "dormsig_score_samples",
                 "html_report"):
        assert rule in out
    for contrast in ("NOTCH2_high_vs_NOTCH1_high", "NOTCH2_high_vs_NOTCH2_low"):
        assert f"results/aceto2014_ctc/de_{contrast}.tsv" in out
        assert f"results/aceto2014_ctc/enrichment_{contrast}.tsv" in out
    assert "results/aceto2014_ctc/report.html" in out


def test_demo_and_workflow_example_are_one_analysis():
    """dormsig demo's config and the workflow's example: the same steps on the same files, with the same options."""
    from dormsig.pipeline import demo_config, load_config
    from dormsig.plan import plan

    def comparable(cfg):
        return [(s.kind, s.contrast, {k: [str(Path(p).resolve()) for p in v] if k == "data" else v
                                      for k, v in s.inputs.items()}, s.outputs, s.params, s.args)
                for s in plan(cfg)]

    demo, example = demo_config(), load_config(WORKFLOW / "config" / "config.yaml")
    assert demo["datasets"].keys() == example["datasets"].keys()
    for ds in (*demo["datasets"].values(), *example["datasets"].values()):
        ds["sample_sheet"] = str(Path(ds["sample_sheet"]).resolve())
        ds["input"] = str(Path(ds["input"]).resolve())
    assert comparable(demo) == comparable(example)
    de = next(s for s in plan(demo) if s.kind == "de")
    assert de.params["covariates"] == ("patient",)  # design ~ patient + group
    assert len([s for s in plan(demo) if s.kind == "de"]) == 2


def _job_counts(out: str) -> dict[str, int]:
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and not parts[0].startswith("-"):
            counts[parts[0]] = int(parts[1])
    return counts


def test_dry_run_two_datasets_sharded_and_without_de(tmp_path):
    config = _config(tmp_path, a={}, b={"workflow": {"shards": 3}, "de": False},
                     top={"contrasts": [{"high": "NOTCH2", "versus": "NOTCH1"}, {"high": "NOTCH2", "versus": "low"}]})
    out = _dry(tmp_path, config, "--quiet", "rules")
    counts = _job_counts(out)
    # Dataset a: the chain with both contrasts; dataset b: 3 split + 3 score jobs and a gather, no DE.
    assert counts["read_input"] == 2
    assert counts["define_groups"] == 2
    assert counts["differential_expression"] == 2
    assert counts["enrichment"] == 2
    assert counts["dormsig_score_samples"] == 1
    assert counts["split_shard"] == 3
    assert counts["score_shard"] == 3
    assert counts["gather_shards"] == 1
    assert counts["html_report"] == 2
    assert counts["all"] == 1


def test_dry_run_shell_commands_follow_the_plan(tmp_path):
    config = _config(tmp_path, ctc={"covariates": ["type"]}, top={"groups": {"by": "patient"}})
    out = _dry(tmp_path, config, "--printshellcmds")
    text = "\n".join(" ".join(line.split()) for line in out.splitlines())
    assert "read " in text and "--sample-sheet" in text
    grouped = "results/ctc/groups/NOTCH2_high_vs_NOTCH1_high.h5ad"
    assert (f"groups results/ctc/data.h5ad --out {grouped} --high NOTCH2 --versus NOTCH1 --by patient "
            "--method quantile --key-added group_NOTCH2_vs_NOTCH1") in text
    assert (f"de {grouped} --out results/ctc/de_NOTCH2_high_vs_NOTCH1_high.tsv --group-key group_NOTCH2_vs_NOTCH1 "
            "--test NOTCH2_high --reference NOTCH1_high --covariate type --min-cells 10 --shrink --size-factors ratio "
            "--alpha 0.05 --inference r --threads 1") in text
    assert ("enrich results/ctc/de_NOTCH2_high_vs_NOTCH1_high.tsv --out results/ctc/enrichment_NOTCH2_high_vs_NOTCH1_high.tsv "
            "--seed 0 --permutations 1000 --grouping-genes NOTCH2,NOTCH1") in text
    assert (f"score {grouped} --out results/ctc/scores.tsv --h5ad-out results/ctc/scored.h5ad --method auto "
            "--index default --seed 0") in text
    assert ("report --adata results/ctc/scored.h5ad --de results/ctc/de_NOTCH2_high_vs_NOTCH1_high.tsv "
            "--enrichment results/ctc/enrichment_NOTCH2_high_vs_NOTCH1_high.tsv --groupby group_NOTCH2_vs_NOTCH1 "
            "--title 'dormsig report: ctc' --block type --out results/ctc/report.html") in text
    assert "2> logs/ctc/score.log" in text


def test_config_schema_rejects_bad_config(tmp_path):
    config = _config(tmp_path, ctc={"workflow": {"shards": 0}})
    work = tmp_path / "work"
    work.mkdir()
    proc = _snakemake("-s", str(SNAKEFILE), "-d", str(work), "--configfile", str(config), "-n", cwd=tmp_path,
                      check=False)
    assert proc.returncode != 0
    assert "config key 'datasets.ctc.workflow.shards'" in proc.stdout + proc.stderr


def test_user_configfile_replaces_the_example(tmp_path):
    """Run from a copied workflow directory: --configfile replaces the example, relative paths follow the user's file."""
    copy = _copy_workflow(tmp_path / "elsewhere", link_package=False)  # the example's data paths do not exist here
    user = tmp_path / "project"
    user.mkdir()
    _config(user, mine={})
    proc = _snakemake("-n", "--configfile", "../../project/config.yaml", cwd=copy)
    out = proc.stdout + proc.stderr
    assert "aceto2014_ctc" not in out
    assert "results/mine/report.html" in out
    assert f"{user}/data/samples.csv" in out  # resolved against the user's config file, not the workflow's config/


def _outer_snakefile(tmp_path: Path) -> Path:
    outer = tmp_path / "Snakefile"
    outer.write_text(textwrap.dedent(f"""\
        configfile: "config.yaml"


        module dormsig:
            snakefile:
                {str(SNAKEFILE)!r}
            config:
                config


        use rule * from dormsig as dormsig_*


        # The single scoring rule, reused on someone else's file.
        use rule dormsig_score_samples from dormsig as score_mine with:
            input:
                h5ad="mine/data.h5ad",
            output:
                scores="mine/scores.tsv",
                h5ad="mine/scored.h5ad",
                scores_provenance="mine/scores.tsv.provenance.json",
                h5ad_provenance="mine/scored.h5ad.provenance.json",
            log:
                "mine/score.log",


        rule all:
            input:
                rules.dormsig_all.input,
                "mine/scores.tsv",
            default_target: True
        """))
    return outer


def test_module_import_dry_run(tmp_path):
    _config(tmp_path)
    _outer_snakefile(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.h5ad").write_bytes(b"")
    proc = _snakemake("-n", "--quiet", "rules", cwd=tmp_path)
    counts = _job_counts(proc.stdout + proc.stderr)
    assert counts["dormsig_read_input"] == 1
    assert counts["dormsig_differential_expression"] == 1
    assert counts["dormsig_dormsig_score_samples"] == 1
    assert counts["score_mine"] == 1
    assert counts["dormsig_html_report"] == 1


def test_split_blocks_cover_every_observation_once():
    from split_h5ad import block

    for n_obs, n in [(10, 3), (7, 7), (5, 1), (100, 8)]:
        ranges = [range(*block(n_obs, i, n).indices(n_obs)) for i in range(n)]
        assert [i for r in ranges for i in r] == list(range(n_obs))
        assert max(map(len, ranges)) - min(map(len, ranges)) <= 1
    with pytest.raises(ValueError):
        block(10, 3, 3)


def _dormsig_run(config: Path, out: Path) -> None:
    env = {**os.environ, "PATH": PATH}
    proc = subprocess.run([DORMSIG, "run", str(config), "--out", str(out), "--threads", "2"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr


def _assert_same_tables(run: Path, smk: Path) -> list[str]:
    """dormsig run's and the workflow's DE, enrichment and score tables: the same files, equal to 1e-12."""
    import pandas as pd

    names = sorted(p.name for p in run.glob("*.tsv"))
    assert names == sorted(p.name for p in smk.glob("*.tsv"))
    for name in names:
        pd.testing.assert_frame_equal(pd.read_csv(run / name, sep="\t"), pd.read_csv(smk / name, sep="\t"),
                                      rtol=1e-12, atol=1e-12, obj=name)
    return names


@pytest.mark.slow
@needs_cli
def test_real_run_copied_workflow_equals_dormsig_run(tmp_path):
    """A copied workflow run outside the repository on a user's config: the tables of `dormsig run` on that config.

    Real CTC counts (the 2000 most-counted genes), design ~ patient + group, two contrasts: NOTCH2 high vs low
    and NOTCH2-high vs double-low samples (a contrast type added by one schema key and one branch of the plan).
    """
    copy = _copy_workflow(tmp_path / "elsewhere", link_package=False)
    user = tmp_path / "project"
    user.mkdir()
    contrasts = [{"high": "NOTCH2", "versus": "low"}, {"high": "NOTCH2", "versus": "NOTCH1", "reference": "double_low"}]
    config = _config(user, n_genes=2000, ctc={"covariates": ["patient"], "tissue": "circulating tumour cells"},
                     top={"contrasts": contrasts, "de": {"enrichment_permutations": 100}})
    _snakemake("--configfile", str(config), "--cores", "2", cwd=copy)
    _dormsig_run(config, tmp_path / "run")
    results = copy / "results" / "ctc"
    names = _assert_same_tables(tmp_path / "run" / "ctc", results)
    assert names == ["de_NOTCH2_high_vs_NOTCH2_low.tsv", "de_NOTCH2_high_vs_double_low.tsv",
                     "enrichment_NOTCH2_high_vs_NOTCH2_low.tsv", "enrichment_NOTCH2_high_vs_double_low.tsv", "scores.tsv"]
    for name in (*names, "data.h5ad", "scored.h5ad", "report.html"):
        assert (results / f"{name}.provenance.json").exists(), name
    html = (results / "report.html").read_text()
    assert "NOTCH2_high vs double_low" in html and "NOTCH2_high vs NOTCH2_low" in html and "no DE run" not in html
    # the findings say the same in both reports: the tissue and the patient blocking reach the workflow's too
    findings = [_text(h.split('id="findings"')[1].split("</section>")[0])
                for h in (html, (tmp_path / "run" / "ctc" / "report.html").read_text())]
    assert findings[0] == findings[1] and "Tissue: these are circulating tumour cells" in findings[0]
    assert "levels of 'patient'" in findings[0]
    assert (copy / "logs" / "ctc" / "de_NOTCH2_high_vs_double_low.log").exists()
    # A second run has nothing to do.
    proc = _snakemake("--configfile", str(config), "-n", cwd=copy)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    # Snakemake's own report collects the outputs wrapped in report() with their captions.
    _snakemake("--configfile", str(config), "--report", str(tmp_path / "snakemake_report.zip"), cwd=copy)
    assert (tmp_path / "snakemake_report.zip").stat().st_size > 0


@pytest.mark.slow
@needs_cli
def test_real_run_as_module_and_sharded(tmp_path):
    """The workflow imported as a module outside the repository, sharded scoring: the scores of `dormsig run`."""
    import anndata as ad
    import pandas as pd

    import dormsig.data

    config = _config(tmp_path, ctc={"de": False, "workflow": {"shards": 2}})
    _outer_snakefile(tmp_path)
    (tmp_path / "mine").mkdir()
    dormsig.data.ctc().write_h5ad(tmp_path / "mine" / "data.h5ad")
    _snakemake("--cores", "2", "--configfile", str(config), cwd=tmp_path)
    _dormsig_run(config, tmp_path / "run")
    assert _assert_same_tables(tmp_path / "run" / "ctc", tmp_path / "results" / "ctc") == ["scores.tsv"]
    mine = pd.read_csv(tmp_path / "mine" / "scores.tsv", sep="\t", index_col=0)
    gathered = pd.read_csv(tmp_path / "results" / "ctc" / "scores.tsv", sep="\t", index_col=0)
    assert len(gathered) == 29 and not (tmp_path / "results" / "ctc" / "shards").exists()
    scored = ad.read_h5ad(tmp_path / "results" / "ctc" / "scored.h5ad")
    assert list(scored.obs_names) == list(gathered.index)
    # Single-sample scores: two shards give the scores of one job (the same samples, scored alone).
    common = [c for c in gathered.columns if c in mine.columns and pd.api.types.is_float_dtype(gathered[c])
              and not c.endswith(("rank", "percentile"))]
    assert common
    assert (gathered.loc[mine.index.intersection(gathered.index), common]
            .sub(mine.loc[mine.index.intersection(gathered.index), common]).abs().max().max()) < 1e-9


def test_split_then_gather_equals_unsharded(tmp_path):
    import anndata as ad
    import numpy as np
    import pandas as pd
    from gather_shards import gather
    from split_h5ad import split

    rng = np.random.default_rng(0)
    n = 11
    full = ad.AnnData(rng.poisson(3, (n, 6)).astype(np.float32))
    full.obs_names = [f"c{i}" for i in range(n)]
    full.obs["dormsig_group"] = pd.Categorical(rng.choice(["NOTCH2_high", "NOTCH1_high"], n))
    full.write_h5ad(tmp_path / "full.h5ad")
    scored, tables = [], []
    for i in range(3):
        split(str(tmp_path / "full.h5ad"), str(tmp_path / f"g{i}.h5ad"), i, 3)
        part = ad.read_h5ad(tmp_path / f"g{i}.h5ad")
        assert part.uns["dormsig"]["shard"]["n_shards"] == 3
        # A single-sample "score": each cell's own row sum.
        table = pd.DataFrame({"set_a": np.asarray(part.X.sum(axis=1)).ravel()}, index=part.obs_names)
        part.obsm["dormsig_scores"] = table
        part.write_h5ad(tmp_path / f"s{i}.h5ad")
        table.to_csv(tmp_path / f"s{i}.tsv", sep="\t")
        scored.append(str(tmp_path / f"s{i}.h5ad"))
        tables.append(str(tmp_path / f"s{i}.tsv"))
    gather(tables, scored, str(tmp_path / "scores.tsv"), str(tmp_path / "scored.h5ad"))
    out = ad.read_h5ad(tmp_path / "scored.h5ad")
    assert list(out.obs_names) == list(full.obs_names)
    np.testing.assert_array_equal(out.X, full.X)
    assert isinstance(out.obs["dormsig_group"].dtype, pd.CategoricalDtype)
    expected = full.X.sum(axis=1)
    np.testing.assert_allclose(out.obsm["dormsig_scores"]["set_a"].to_numpy(), expected)
    got = pd.read_csv(tmp_path / "scores.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(got["set_a"].to_numpy(), expected, rtol=1e-6)
    assert (tmp_path / "scores.tsv.provenance.json").exists() and (tmp_path / "scored.h5ad.provenance.json").exists()
    assert "shard" not in out.uns["dormsig"] and out.uns["dormsig"]["gather"]["params"]["n_shards"] == 3


def test_slurm_profile_is_valid(tmp_path):
    # The SLURM plugin is not installed in CI: run the profile with the local executor and no conda,
    # which still checks every key of the profile and its resources.
    copy = _copy_workflow(tmp_path)
    profile = yaml.safe_load((WORKFLOW / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    proc = _snakemake("--profile", "profiles/slurm", "--executor", "local", "--sdm", "env-modules", "-n",
                      "--cores", "1", cwd=copy)
    out = proc.stdout + proc.stderr
    assert "slurm_account=my_account" in out and "slurm_partition=main" in out
    de_job = out.split("rule differential_expression:")[1].split("\n\n")[0]
    assert "runtime=240" in de_job and "mem_mb=8000" in de_job


@pytest.mark.slow
def test_gather_reranks_like_one_unsharded_run(tmp_path):
    """Score three shards of the CTC example separately, gather: equal to scoring and ranking all at once."""
    import warnings

    import anndata as ad
    import numpy as np
    import pandas as pd
    from gather_shards import gather
    from split_h5ad import split

    import dormsig.data
    import dormsig.get
    import dormsig.tl

    full = dormsig.data.ctc()
    full.write_h5ad(tmp_path / "full.h5ad")
    h5ads, tables = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dormsig.tl.score(full, index="default")
        dormsig.tl.rank(full)
        for i in range(3):
            split(str(tmp_path / "full.h5ad"), str(tmp_path / f"g{i}.h5ad"), i, 3)
            part = ad.read_h5ad(tmp_path / f"g{i}.h5ad")
            dormsig.tl.score(part, index="default")
            dormsig.tl.rank(part)
            part.write_h5ad(tmp_path / f"s{i}.h5ad")
            dormsig.get.score_table(part).sort_values("rank_in_batch").to_csv(tmp_path / f"s{i}.tsv", sep="\t")
            h5ads.append(str(tmp_path / f"s{i}.h5ad"))
            tables.append(str(tmp_path / f"s{i}.tsv"))
        gather(tables, h5ads, str(tmp_path / "scores.tsv"), str(tmp_path / "scored.h5ad"))
    got = ad.read_h5ad(tmp_path / "scored.h5ad")
    assert list(got.obs_names) == list(full.obs_names)
    np.testing.assert_allclose(got.obsm["dormsig_scores"].to_numpy(), full.obsm["dormsig_scores"].to_numpy(),
                               rtol=1e-10, equal_nan=True)
    np.testing.assert_array_equal(got.obs["dormsig_rank"].to_numpy(), full.obs["dormsig_rank"].to_numpy())
    np.testing.assert_array_equal(got.obs["dormsig_call"].astype(str), full.obs["dormsig_call"].astype(str))
    table = pd.read_csv(tmp_path / "scores.tsv", sep="\t", index_col=0)
    assert list(table.index) == list(full.obs_names)
    np.testing.assert_array_equal(table["rank_in_batch"].to_numpy(), full.obs["dormsig_rank"].to_numpy())
    pd.testing.assert_frame_equal(table, dormsig.get.score_table(full).set_axis(table.index), check_dtype=False)
