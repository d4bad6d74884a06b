"""dormsig.pl DE plots: return the axes and draw one point per plottable gene."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import anndata as ad  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from dormsig import pl  # noqa: E402
from dormsig.errors import InputError  # noqa: E402


@pytest.fixture()
def de() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    genes = [f"G{i}" for i in range(n)]
    df = pd.DataFrame({"gene": genes, "baseMean": rng.lognormal(3, 1, n), "log2FoldChange": rng.normal(0, 1, n),
                       "lfcSE": 0.3, "pvalue": rng.uniform(size=n)}, index=genes)
    df["stat"] = df["log2FoldChange"] / df["lfcSE"]
    df["padj"] = np.minimum(df["pvalue"] * 5, 1)
    df.loc["G0", ["log2FoldChange", "pvalue", "padj", "stat"]] = np.nan  # all-zero gene: not drawn
    df.loc["G1", "baseMean"] = 0.0
    return df


def _n_points(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections)


def test_volcano_and_ma(de):
    fig, axes = plt.subplots(1, 2)
    out = pl.volcano(de, ax=axes[0], label=["G5"])
    assert out is axes[0] and _n_points(out) == 299
    assert [t.get_text() for t in out.texts] == ["G5"]
    out = pl.ma(de, ax=axes[1])
    assert out is axes[1] and _n_points(out) == 298  # G0 (no LFC) and G1 (baseMean 0) are skipped
    plt.close(fig)


def test_running_sum_and_heatmap(de):
    ax = pl.running_sum(de, ["G2", "G3", "G4", "NOT_THERE"])
    assert len(ax.lines[0].get_xdata()) == 299
    assert len(ax.collections[0].get_segments()) == 3  # one tick per set gene present
    plt.close(ax.figure)
    rng = np.random.default_rng(1)
    adata = ad.AnnData(X=rng.normal(size=(12, 4)), var=pd.DataFrame(index=["A", "B", "C", "D"]),
                       obs=pd.DataFrame({"grp": ["x", "y", "z"] * 4}, index=[f"c{i}" for i in range(12)]))
    ax = pl.heatmap(adata, ["A", "C", "MISSING"], "grp")
    mesh = ax.collections[0]
    assert mesh.get_array().size == 2 * 3  # genes x groups
    expected = adata[adata.obs["grp"] == "x", "A"].X.mean()
    means = pd.DataFrame(adata.X, columns=adata.var_names).groupby(adata.obs["grp"].to_numpy()).mean()["A"]
    z = (expected - means.mean()) / means.std(ddof=0)
    assert mesh.get_array().reshape(2, 3)[0, 0] == pytest.approx(z)
    plt.close(ax.figure)
    with pytest.raises(InputError):
        pl.heatmap(adata, ["MISSING"], "grp")
