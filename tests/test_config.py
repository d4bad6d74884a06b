"""The pipeline config: schema validation with one-line errors naming the key, defaults, relative paths."""

from __future__ import annotations

import pytest

from dormsig.errors import ConfigError
from dormsig.pipeline import contrast_levels, load_config, validate_config


def test_defaults_are_filled():
    cfg = validate_config({"datasets": {"a": {"input": "x.csv"}}})
    assert cfg["contrasts"] == [{"high": "NOTCH2", "versus": "NOTCH1"}]
    assert cfg["score"] == {"method": "auto", "signatures": None, "index": "default", "reference": None}
    assert cfg["datasets"]["a"]["de"] is True and cfg["datasets"]["a"]["workflow"] == {"shards": 1}
    assert cfg["workflow"]["results"] == "results" and cfg["workflow"]["mem_mb"]["de"] == 8000
    assert cfg["rank"] == {"rule": "quantile", "quantile": 0.9}
    assert cfg["threads"] == 2 and cfg["seed"] == 0


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({}, "(top level)"),
        ({"datasets": {"a": {}}}, "datasets.a"),
        ({"datasets": {"a": {"input": 3}}}, "datasets.a.input"),
        ({"datasets": {"a": {"input": "x"}}, "rank": {"quantile": 1.5}}, "rank.quantile"),
        ({"datasets": {"a": {"input": "x"}}, "groups": {"method": "kmeans"}}, "groups.method"),
        ({"datasets": {"a": {"input": "x"}}, "typo": 1}, "(top level)"),
        ({"datasets": {"a": {"input": "x"}}, "threads": 0}, "threads"),
        ({"datasets": {"a": {"input": "x", "workflow": {"shards": 0}}}}, "datasets.a.workflow.shards"),
        ({"datasets": {"a": {"input": "x"}}, "workflow": {"threads": {"de": 0}}}, "workflow.threads.de"),
        ({"datasets": {"a/b": {"input": "x"}}}, "datasets"),
    ],
)
def test_schema_errors_name_the_key(cfg, key):
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, source="cfg.yaml")
    msg = str(info.value)
    assert msg.startswith("cfg.yaml: config key ") and f"'{key}'" in msg and "\n" not in msg


def test_load_config_resolves_paths_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "config.yaml"
    path.write_text("datasets:\n  ctc:\n    input: data/counts.tsv\n    sample_sheet: data/s.csv\n")
    cfg = load_config(path)
    assert cfg["datasets"]["ctc"]["input"] == str(tmp_path / "sub" / "data" / "counts.tsv")


def test_load_config_bad_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("datasets: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_contrast_levels():
    assert contrast_levels("NOTCH2", "NOTCH1") == ("group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high")
    assert contrast_levels("NOTCH2", "low") == ("group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low")


def test_contrast_object_names_one_contrast_everywhere():
    from dormsig.de import Contrast
    from dormsig.errors import DesignError

    c = Contrast.of_groups("NOTCH2", "NOTCH1")
    assert (c.factor, c.test, c.reference, c.name, c.label) == (
        "group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high", "NOTCH2_high_vs_NOTCH1_high", "NOTCH2_high vs NOTCH1_high")
    assert Contrast.of_groups("NOTCH2", "low", factor="dormsig_group") == Contrast("dormsig_group", "NOTCH2_high", "NOTCH2_low")
    with pytest.raises(DesignError, match="same level"):
        Contrast("g", "a", "a")


def test_deseq_takes_a_contrast():
    import anndata as ad
    import numpy as np
    import pandas as pd

    from dormsig.de import Contrast, deseq

    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(5, 0.2, size=(8, 60)).astype(np.int64)
    obs = pd.DataFrame({"cond": ["a"] * 4 + ["b"] * 4}, index=[f"s{i}" for i in range(8)])
    adata = ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(60)]))
    by_levels = deseq(adata.copy(), group_key="cond", test="b", reference="a", layer=None)
    by_contrast = deseq(adata.copy(), contrast=Contrast("cond", "b", "a"), layer=None)
    pd.testing.assert_frame_equal(by_levels, by_contrast)


def test_relative_paths_follow_base_dir(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"datasets:\n  ctc:\n    input: counts.tsv\nworkflow:\n  base_dir: {tmp_path / 'data'}\n")
    assert load_config(path)["datasets"]["ctc"]["input"] == str(tmp_path / "data" / "counts.tsv")
    path.write_text("datasets:\n  ctc:\n    input: counts.tsv\nworkflow:\n  base_dir: ../data\n")  # relative to the file
    assert load_config(path)["datasets"]["ctc"]["input"] == str(tmp_path / ".." / "data" / "counts.tsv")


def _cfg(**top):
    return validate_config({"datasets": {"ctc": {"input": "/x/counts.tsv", "covariates": ["patient"],
                                                 "design": "~ patient + group"}}, **top})


def test_plan_names_each_contrast_once():
    from dormsig.plan import plan

    cfg = _cfg(contrasts=[{"high": "NOTCH2", "versus": "NOTCH1"}, {"high": "NOTCH2", "versus": "low"},
                          {"high": "NOTCH2", "versus": "NOTCH1", "reference": "double_low"}])
    steps = plan(cfg)
    assert [s.kind for s in steps] == ["read", *["groups", "de", "enrich"] * 3, "score", "report"]
    de = [s for s in steps if s.kind == "de"]
    assert [s.contrast for s in de] == ["NOTCH2_high_vs_NOTCH1_high", "NOTCH2_high_vs_NOTCH2_low",
                                        "NOTCH2_high_vs_double_low"]
    assert [(s.params["group_key"], s.params["test"], s.params["reference"]) for s in de] == [
        ("group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high"), ("group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low"),
        ("group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "double_low")]
    # the design names the groups `group`; each contrast's DE names its own column
    assert de[1].params["design"] == "~ patient + group_NOTCH2_high_vs_low"
    assert de[2].outputs == {"tsv": "ctc/de_NOTCH2_high_vs_double_low.tsv"}
    groups = [s for s in steps if s.kind == "groups"]
    assert groups[0].inputs["h5ad"] == "ctc/data.h5ad" and groups[1].inputs["h5ad"] == groups[0].outputs["h5ad"]
    score = next(s for s in steps if s.kind == "score")
    assert score.inputs["h5ad"] == groups[-1].outputs["h5ad"]  # every contrast's group column
    report = steps[-1]
    assert report.inputs["de"] == [s.outputs["tsv"] for s in de] and report.params["groupby"] == "group_NOTCH2_vs_NOTCH1"
    with pytest.raises(ConfigError, match="listed twice"):
        plan(_cfg(contrasts=[{"high": "NOTCH2", "versus": "low"}] * 2))


def test_plan_without_de_scores_the_read_data():
    from dormsig.plan import plan

    cfg = _cfg()
    cfg["datasets"]["ctc"]["de"] = False
    steps = plan(cfg)
    assert [s.kind for s in steps] == ["read", "score", "report"]
    assert steps[1].inputs["h5ad"] == "ctc/data.h5ad" and steps[2].params["groupby"] is None


def test_plan_args_are_the_params_as_the_cli_parses_them(tmp_path):
    """What the workflow puts on the command line is what dormsig run passes in process."""
    from dormsig.cli import cli
    from dormsig.plan import plan

    cfg = _cfg(contrasts=[{"high": "NOTCH2", "versus": "low"}], groups={"by": "patient"},
               de={"shrink": False, "alpha": 0.1, "size_factors": "poscounts", "inference": "fast"},
               score={"signatures": ["DORMSIG_HSC_MIMICRY_CORE"], "index": "default"}, seed=7)
    cfg["datasets"]["ctc"]["cells"] = "type=SC"
    src = tmp_path / "in.h5ad"
    src.write_bytes(b"")
    renamed = {"test": "test_level", "covariates": "covariate", "index": "index_name"}
    checked = set()
    for step in plan(cfg):
        if step.kind not in ("groups", "de", "enrich", "score"):
            continue
        out = tmp_path / ("o.h5ad" if step.kind == "groups" else "o.tsv")
        parsed = cli.commands[step.kind].make_context(step.kind, [str(src), "--out", str(out), *step.args]).params
        for key, value in step.params.items():
            if key in ("reference", "signatures") and step.kind == "score":
                continue  # signatures: compared below; no reference in this config
            got = parsed[renamed.get(key, key)]
            if key == "grouping_genes":
                got = got.split(",")
            assert got == value, (step.kind, key)
            checked.add((step.kind, key))
        if step.kind == "score":
            assert parsed["signatures"] == "DORMSIG_HSC_MIMICRY_CORE"
    assert {("de", "design"), ("de", "inference"), ("groups", "by"), ("score", "cells"), ("enrich", "seed")} <= checked




def test_tumour_check_threshold_is_one_default_everywhere():
    """The schema, the CLI option and the library share one default (``_keys.MIN_EPITHELIAL_CPM``)."""
    from click.testing import CliRunner

    from dormsig import _keys as K
    from dormsig.cli import cli
    from dormsig.tl import epithelial

    cfg = validate_config({"datasets": {"a": {"input": "x.csv"}}})
    assert cfg["datasets"]["a"]["min_epithelial_cpm"] == K.MIN_EPITHELIAL_CPM
    assert epithelial.MIN_CPM == K.MIN_EPITHELIAL_CPM
    helptext = CliRunner().invoke(cli, ["score", "--help"], terminal_width=200).output
    assert f"[default: {K.MIN_EPITHELIAL_CPM};" in " ".join(helptext.split())
