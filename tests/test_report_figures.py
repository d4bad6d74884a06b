"""The report's figures from dormsig.pl: the signature heatmap and volcano labels that do not overlap."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import anndata as ad  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from dormsig import pl  # noqa: E402
from dormsig.errors import InputError  # noqa: E402


@pytest.fixture()
def adata() -> ad.AnnData:
    rng = np.random.default_rng(0)
    genes = ["A", "B", "C", "D", "E", "Z"]
    x = rng.poisson(4, (9, 6)).astype(float)
    x[:, 5] = 0  # Z: no counts
    a = ad.AnnData(np.log1p(x), var=pd.DataFrame(index=genes),
                   obs=pd.DataFrame({"grp": pd.Categorical(["hi", "lo", "mid"] * 3, categories=["lo", "mid", "hi"]),
                                     "idx": np.arange(9.0)}, index=[f"s{i}" for i in range(9)]))
    a.layers["counts"] = x
    return a


def test_heatmap_is_observations_by_genes_z_scored_per_gene(adata):
    sets = {"S1": ["A", "B", "Z", "MISSING"], "S2": ["C", "A"]}
    rows = pl.heatmap_genes(adata, sets)
    assert rows.genes == ["A", "B", "C"] and rows.sets == ["S1", "S1", "S2"]
    assert rows.no_counts == ["Z"] and rows.absent == ["MISSING"] and rows.n_dropped == 1
    ax = pl.signature_heatmap(adata, sets, groupby="grp", sort_by="idx")
    image = ax.images[0].get_array()
    assert image.shape == (3, 9)  # genes x observations, not x groups
    # columns: groups in category order (lo, mid, hi), decreasing idx inside each group
    order = [7, 4, 1, 8, 5, 2, 6, 3, 0]
    col = adata.X[:, 0]
    z = (col - col.mean()) / col.std()
    np.testing.assert_allclose(image[0], z[order])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B", "C"]
    # one set-colour patch per run of rows (S1: 2 rows, S2: 1 row), one group patch per group
    patches = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert sorted(round(p.get_height(), 6) for p in patches if p.get_x() < 0) == [1.0, 2.0]
    assert sorted(round(p.get_width()) for p in patches if p.get_x() >= 0) == [3, 3, 3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["S1", "S2"]
    plt.close(ax.figure)


def test_heatmap_keeps_every_set_under_the_limit(adata):
    rows = pl.heatmap_genes(adata, {"S1": ["A", "B", "C", "D"], "S2": ["E"]}, max_genes=2)
    var = adata.X.var(axis=0)
    top_s1 = ["A", "B", "C", "D"][int(np.argmax(var[:4]))]
    assert rows.genes == [top_s1, "E"] and len(rows.over_limit) == 3
    with pytest.raises(InputError, match="no gene of the sets has counts"):
        pl.signature_heatmap(adata, ["Z", "MISSING"])


def _crowded_de(n: int = 400, seed: int = 0) -> pd.DataFrame:
    # many significant genes piled at nearly the same spot: labels placed naively would overlap
    rng = np.random.default_rng(seed)
    p = np.concatenate([10 ** -rng.uniform(8, 8.3, 30), rng.uniform(size=n - 30)])
    lfc = np.concatenate([rng.normal(2, 0.05, 30), rng.normal(0, 1, n - 30)])
    padj = np.minimum(p * n / (np.argsort(np.argsort(p)) + 1), 1)
    return pd.DataFrame({"gene": [f"GENE{i}" for i in range(n)], "baseMean": 10.0, "log2FoldChange": lfc,
                         "pvalue": p, "padj": padj})


def test_volcano_labels_the_top_genes_by_padj_without_overlap():
    de = _crowded_de()
    fig, ax = plt.subplots(figsize=(6, 4.8))
    pl.volcano(de, ax=ax, label=12)
    fig.canvas.draw()
    texts = [t for t in ax.texts]
    names = [t.get_text() for t in texts]
    top = de.sort_values(["padj", "pvalue"])["gene"].head(12).tolist()
    assert names and set(names) <= set(top)
    assert names == [g for g in top if g in names]  # placed most significant first
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the text, not the line to its point
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (names[i], names[j])
    assert len(names) >= 8  # room is found for most of them
    plt.close(fig)


def test_pvalue_histogram_leaves_out_genes_zero_in_both_groups():
    de = pd.DataFrame({"pvalue": [0.01, 0.02, 0.3, 0.7, 1.0, 1.0, np.nan],
                       "contrast_all_zero": [False, False, False, False, False, True, False]})
    ax = pl.pvalue_histogram(de, bins=4)
    heights = [p.get_height() for p in ax.patches]
    assert heights == [2, 1, 1, 1]  # 0.01, 0.02 | 0.3 | 0.7 | 1.0 (the all-zero gene's p = 1 left out)
    assert ax.lines[0].get_ydata()[0] == pytest.approx(5 / 4)
    assert ax.get_ylabel() == "genes (5 tested)"
    plt.close(ax.figure)
