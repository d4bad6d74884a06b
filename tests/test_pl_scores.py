"""Score plots: artists, plotted values against numpy, and user errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import anndata as ad  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from dormsig.errors import InputError  # noqa: E402
from dormsig.pl.score_plots import CALL_COLOURS, match_coverage, scores, waterfall  # noqa: E402


def _scored(n: int = 12, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    adata = ad.AnnData(np.zeros((n, 2), dtype=np.float32))
    adata.obs_names = [f"s{i}" for i in range(n)]
    adata.obs["group"] = pd.Categorical(np.where(np.arange(n) < n // 2, "A", "B"))
    table = pd.DataFrame(
        {"setA": rng.random(n), "setB": rng.random(n), "dormancy_index": rng.normal(size=n)},
        index=adata.obs_names,
    )
    adata.obsm["dormsig_scores"] = table
    adata.obs["dormsig_call"] = np.where(table["dormancy_index"] > 0.3, "dormant", "not_dormant")
    return adata


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_scores_artists_and_medians():
    adata = _scored()
    ax = scores(adata, "group")
    # 3 scores x 2 groups boxes, one point collection per group.
    assert len(ax.patches) == 6
    assert sum(isinstance(c, PathCollection) for c in ax.collections) == 2
    # The index is the top row.
    assert [t.get_text() for t in ax.get_yticklabels()] == ["setB", "setA", "dormancy_index"]
    # Median lines of the horizontal boxes sit at numpy's medians (boxes drawn group by group, key by key).
    # (median lines span the box height, 0.8 * 0.8 / n_groups; caps are half as tall).
    medians = [line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1
               and np.isclose(abs(np.diff(line.get_ydata())[0]), 0.32)]
    assert len(medians) == 6
    frame = adata.obsm["dormsig_scores"]
    expected = [np.median(frame.loc[adata.obs["group"] == g, k]) for g in ("A", "B")
                for k in ("dormancy_index", "setA", "setB")]
    assert np.allclose(sorted(set(np.round(medians, 12))), sorted(set(np.round(expected, 12))))
    # Every point is drawn once.
    n_points = sum(c.get_offsets().shape[0] for c in ax.collections if isinstance(c, PathCollection))
    assert n_points == 3 * adata.n_obs


def test_scores_single_group_and_keys():
    adata = _scored()
    ax = scores(adata, None, keys=["setA"])
    assert len(ax.patches) == 1
    assert len(ax.collections) == 1
    assert ax.get_legend() is None
    fig, ax2 = plt.subplots()
    assert scores(adata, "group", ax=ax2, strip=False) is ax2
    assert len(ax2.collections) == 0


def test_scores_errors():
    adata = _scored()
    with pytest.raises(InputError, match="no column 'nope'"):
        scores(adata, "nope")
    with pytest.raises(InputError, match="missing_set"):
        scores(adata, "group", keys=["missing_set"])
    with pytest.raises(InputError, match="no dormsig scores"):
        scores(ad.AnnData(np.zeros((3, 2))), None)


def test_waterfall_bars_sorted_and_coloured():
    adata = _scored(15, seed=3)
    ax = waterfall(adata)
    heights = np.array([p.get_height() for p in ax.patches])
    assert heights.size == adata.n_obs
    index = adata.obsm["dormsig_scores"]["dormancy_index"].to_numpy()
    assert np.allclose(heights, np.sort(index)[::-1])
    colours = [to_hex(p.get_facecolor()) for p in ax.patches]
    n_dormant = int((adata.obs["dormsig_call"] == "dormant").sum())
    assert colours.count(CALL_COLOURS["dormant"].lower()) == n_dormant
    assert colours.count(CALL_COLOURS["not_dormant"].lower()) == adata.n_obs - n_dormant


def test_waterfall_threshold_and_many_samples():
    adata = _scored(2500, seed=1)
    adata.uns["dormsig"] = {"rank": {"method": "fixed", "params": {"threshold": 0.3}}}
    ax = waterfall(adata)
    assert len(ax.patches) == 0  # too many bars: one line collection per call instead
    assert sum(isinstance(c, LineCollection) for c in ax.collections) == 2
    assert any(np.allclose(line.get_ydata(), 0.3) for line in ax.lines)


def test_waterfall_without_calls():
    adata = _scored(5)
    del adata.obs["dormsig_call"]
    ax = waterfall(adata)
    assert len(ax.patches) == 5
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["not called"]


def test_match_coverage_bars_and_labels():
    frame = pd.DataFrame({
        "set": ["a", "b", "c"], "part": ["up", "down", "all"], "n_total": [10, 4, 8], "n_matched": [9, 1, 0],
        "coverage": [0.9, 0.25, 0.0], "missing": [["X"], ["Y", "Z", "W"], []], "status": ["ok", "low", "failed"],
    })
    ax = match_coverage(frame)
    assert len(ax.patches) == 3
    # Bars run top-down in frame order.
    widths = [p.get_width() for p in sorted(ax.patches, key=lambda p: -p.get_y())]
    assert np.allclose(widths, [0.9, 0.25, 0.0])
    assert [t.get_text() for t in ax.texts] == ["9/10", "1/4", "0/8"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (up)", "b (down)", "c"]


def test_match_coverage_computes_coverage_and_checks_columns():
    frame = pd.DataFrame({"set": ["a"], "n_total": [4], "n_matched": [3]})
    ax = match_coverage(frame)
    assert np.isclose(ax.patches[0].get_width(), 0.75)
    with pytest.raises(InputError, match="n_matched"):
        match_coverage(pd.DataFrame({"set": ["a"], "n_total": [4]}))


def test_scores_subsamples_points_but_not_boxes():
    adata = _scored(400, seed=2)
    ax = scores(adata, "group", keys=["setA"], max_points=50)
    offsets = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]
    assert [o.shape[0] for o in offsets] == [50, 50]
    frame = adata.obsm["dormsig_scores"]
    # The points are a subset of each group's values; the boxes (medians) use all 200 values.
    for g, o in zip(("A", "B"), offsets, strict=True):
        values = frame.loc[adata.obs["group"] == g, "setA"].to_numpy()
        assert set(np.round(o[:, 0], 12)) <= set(np.round(values, 12))
    medians = sorted(line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1
                     and np.isclose(abs(np.diff(line.get_ydata())[0]), 0.32))
    expected = sorted(np.median(frame.loc[adata.obs["group"] == g, "setA"]) for g in ("A", "B"))
    assert np.allclose(medians, expected)
