"""The Snakemake workflow: lint, dry runs (plain, sharded, as a module), real runs through the dormsig CLI."""

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


def _example(tmp_path: Path) -> tuple[Path, Path]:
    """Copy the bundled CTC example into tmp_path (so that nothing is written into the package)."""
    import dormsig.data

    src = dormsig.data.example_path("aceto2014_ctc")
    data = tmp_path / "data"
    data.mkdir()
    counts = shutil.copy(src / Path(dormsig.data.CTC_COUNTS).name, data)
    sheet = shutil.copy(src / Path(dormsig.data.CTC_SAMPLES).name, data)
    return Path(counts), Path(sheet)


def _config(tmp_path: Path, **datasets: dict) -> Path:
    counts, sheet = _example(tmp_path)
    if not datasets:
        datasets = {"ctc": {}}
    config = {
        "dormsig": DORMSIG or "dormsig",
        # Relative to this config file, as the schema promises.
        "datasets": {
            name: {"input": str(counts.relative_to(tmp_path)), "sample_sheet": str(sheet.relative_to(tmp_path)), **opts}
            for name, opts in datasets.items()
        },
        "threads": {"de": 1, "score": 1},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _dry(tmp_path: Path, config: Path, *extra: str) -> str:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    proc = _snakemake("-s", str(SNAKEFILE), "-d", str(work), "--configfile", str(config), "-n", *extra, cwd=tmp_path)
    return proc.stdout + proc.stderr


def test_lint(tmp_path):
    # Lint the shipped config as is (run inside a copy so no .snakemake/ lands in the repository).
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOW, copy, ignore=shutil.ignore_patterns(".snakemake", "results", "logs"))
    # The shipped config points into the package; make that relative path valid inside the copy.
    (tmp_path / "dormsig").symlink_to(REPO / "dormsig")
    proc = _snakemake("--lint", cwd=copy)
    out = proc.stdout + proc.stderr
    assert "Lints for" not in out, out
    assert "Congratulations" in out


def test_shipped_config_dry_run(tmp_path):
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOW, copy, ignore=shutil.ignore_patterns(".snakemake", "results", "logs"))
    (tmp_path / "dormsig").symlink_to(REPO / "dormsig")
    proc = _snakemake("-n", cwd=copy)
    out = proc.stdout + proc.stderr
    for rule in ("read_input", "define_groups", "differential_expression", "enrichment", "dormsig_score_samples",
                 "html_report"):
        assert rule in out
    assert "results/aceto2014_ctc/report.html" in out


def _job_counts(out: str) -> dict[str, int]:
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and not parts[0].startswith("-"):
            counts[parts[0]] = int(parts[1])
    return counts


def test_dry_run_two_datasets_sharded_and_without_de(tmp_path):
    config = _config(tmp_path, a={}, b={"shards": 3, "de": False})
    out = _dry(tmp_path, config, "--quiet", "rules")
    counts = _job_counts(out)
    # Dataset a: the plain chain; dataset b: 3 split + 3 score jobs and a gather, no DE.
    assert counts["read_input"] == 2
    assert counts["define_groups"] == 2
    assert counts["differential_expression"] == 1
    assert counts["enrichment"] == 1
    assert counts["dormsig_score_samples"] == 1
    assert counts["split_shard"] == 3
    assert counts["score_shard"] == 3
    assert counts["gather_shards"] == 1
    assert counts["html_report"] == 2
    assert counts["all"] == 1


def test_dry_run_shell_commands_follow_the_cli_contract(tmp_path):
    config = _config(tmp_path, ctc={"by": "patient", "covariate": "type"})
    out = _dry(tmp_path, config, "--printshellcmds")
    lines = [" ".join(line.split()) for line in out.splitlines()]
    text = "\n".join(lines)
    assert "read " in text and "--sample-sheet" in text
    assert "groups results/ctc/data.h5ad --out results/ctc/grouped.h5ad --high NOTCH2 --versus NOTCH1 --by patient" in text
    assert ("de results/ctc/grouped.h5ad --out results/ctc/de.tsv --group-key dormsig_group --test NOTCH2_high "
            "--reference NOTCH1_high --covariate type") in text
    assert "enrich results/ctc/de.tsv --out results/ctc/enrichment.tsv" in text
    assert "score results/ctc/grouped.h5ad --out results/ctc/scores.tsv --h5ad-out results/ctc/scored.h5ad --method auto" in text
    assert ("report --adata results/ctc/scored.h5ad --de results/ctc/de.tsv --enrichment results/ctc/enrichment.tsv "
            "--groupby dormsig_group --out results/ctc/report.html") in text
    assert "2> logs/ctc/score.log" in text


def test_config_schema_rejects_bad_config(tmp_path):
    config = _config(tmp_path, ctc={"shards": 0})
    work = tmp_path / "work"
    work.mkdir()
    proc = _snakemake("-s", str(SNAKEFILE), "-d", str(work), "--configfile", str(config), "-n", cwd=tmp_path,
                      check=False)
    assert proc.returncode != 0
    assert "shards" in proc.stdout + proc.stderr


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


@pytest.mark.slow
@needs_cli
def test_real_run(tmp_path):
    config = _config(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    _snakemake("-s", str(SNAKEFILE), "-d", str(work), "--configfile", str(config), "--cores", "2", cwd=tmp_path)
    results = work / "results" / "ctc"
    for name in ("data.h5ad", "grouped.h5ad", "de.tsv", "enrichment.tsv", "scores.tsv", "scored.h5ad", "report.html"):
        assert (results / name).stat().st_size > 0, name
        assert (results / f"{name}.provenance.json").exists(), name
    html = (results / "report.html").read_text()
    assert "Differential expression" in html and "no DE run" not in html
    assert (work / "logs" / "ctc" / "score.log").exists()
    # A second run has nothing to do.
    proc = _snakemake("-s", str(SNAKEFILE), "-d", str(work), "--configfile", str(config), "-n", cwd=tmp_path)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    # Snakemake's own report collects the outputs wrapped in report() with their captions.
    _snakemake("-s", str(SNAKEFILE), "-d", str(work), "--configfile", str(config), "--report",
               str(tmp_path / "snakemake_report.zip"), cwd=tmp_path)
    assert (tmp_path / "snakemake_report.zip").stat().st_size > 0


@pytest.mark.slow
@needs_cli
def test_real_run_as_module_and_sharded(tmp_path):
    import anndata as ad
    import pandas as pd

    import dormsig.data

    config = _config(tmp_path, ctc={"de": False, "shards": 2})
    _outer_snakefile(tmp_path)
    (tmp_path / "mine").mkdir()
    dormsig.data.ctc().write_h5ad(tmp_path / "mine" / "data.h5ad")
    _snakemake("--cores", "2", "--configfile", str(config), cwd=tmp_path)
    mine = pd.read_csv(tmp_path / "mine" / "scores.tsv", sep="\t", index_col=0)
    gathered = pd.read_csv(tmp_path / "results" / "ctc" / "scores.tsv", sep="\t", index_col=0)
    assert len(gathered) == 29 and not (tmp_path / "results" / "ctc" / "shards").exists()
    scored = ad.read_h5ad(tmp_path / "results" / "ctc" / "scored.h5ad")
    assert list(scored.obs_names) == list(gathered.index)
    # UCell scores are single-sample: two shards give the scores of one job (the same samples, scored alone).
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
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOW, copy, ignore=shutil.ignore_patterns(".snakemake", "results", "logs"))
    (tmp_path / "dormsig").symlink_to(REPO / "dormsig")
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
