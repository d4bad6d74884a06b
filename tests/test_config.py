"""The pipeline config: schema validation with one-line errors naming the key, defaults, relative paths."""

from __future__ import annotations

import pytest

from dormsig.errors import ConfigError
from dormsig.pipeline import contrast_levels, load_config, validate_config


def test_defaults_are_filled():
    cfg = validate_config({"datasets": {"a": {"input": "x.csv"}}})
    assert cfg["contrasts"] == [{"high": "NOTCH2", "versus": "NOTCH1"}]
    assert cfg["score"] == {"method": "auto", "signatures": None, "index": "default"}
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
