"""dormsig.de.enrich and read_de_table: rank-position test by hand, GSEA against gseapy's ES and an
independent running sum, partial tables, small sets never dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dormsig.de import enrich, read_de_table
from dormsig.de.enrich import rank_position_test
from dormsig.pl.de_plots import running_sum_curve

DATA = Path(__file__).parent / "data" / "de"


def _hallmark() -> dict[str, list[str]]:
    sets = {}
    for line in (DATA / "h.all.v7.0.symbols.gmt").read_text().splitlines():
        parts = line.split("\t")
        sets[parts[0]] = parts[2:]
    return sets


def _ranking(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n)]
    return pd.DataFrame({"gene": genes, "stat": rng.normal(size=n)}, index=genes)


def test_rank_position_one_gene_is_exact_position():
    de = _ranking(1000)
    de["stat"] = np.arange(1000, 0, -1, dtype=float)  # G0 has the largest statistic
    effect, p, lead = rank_position_test(de.set_index("gene")["stat"], ["G9"])
    # ascending rank of G9 = 991: 10 of the 1000 positions are as high or higher -> p = 2 * 10 / 1000
    assert p == 2 * 10 / 1000
    assert effect == pytest.approx(2 * 0.9905 - 1) and lead == ["G9"]


def test_small_sets_use_rank_test_and_are_not_dropped():
    de = _ranking()
    top = de.sort_values("stat", ascending=False).index[:3].tolist()
    res = enrich(de, {"TOP3": top, "ONE": [top[0]], "ABSENT": ["NOPE"], "BIG": de.index[:50].tolist()},
                 permutations=100, seed=1).set_index("set")
    assert res.loc["TOP3", "method"] == "rank_position" and res.loc["TOP3", "direction"] == "up"
    assert res.loc["TOP3", "pvalue"] < 1e-6
    assert res.loc["ONE", "pvalue"] == 2 / 2000  # the top position of 2000: exact two-sided p
    assert res.loc["ABSENT", "method"] == "not_tested" and res.loc["ABSENT", "n_matched"] == 0
    assert res.loc["BIG", "method"] == "gsea_prerank" and np.isfinite(res.loc["BIG", "NES"])


def test_gsea_es_matches_independent_running_sum_and_seed_is_recorded():
    de = _ranking(3000, seed=2)
    hall = _hallmark()
    # plant a set at the top of the ranking and one random set
    order = de.sort_values("stat", ascending=False).index
    sets = {"PLANTED": order[:200:4].tolist(), "RANDOM": order[1::60].tolist()}
    import gseapy

    res = enrich(de, sets, permutations=200, seed=7).set_index("set")
    ref = gseapy.prerank(rnk=de[["gene", "stat"]], gene_sets=sets, min_size=5, permutation_num=200, seed=7,
                         outdir=None, no_plot=True, threads=1).res2d.set_index("Term")
    for name in sets:
        assert res.loc[name, "NES"] == pytest.approx(float(ref.loc[name, "NES"]), rel=1e-6)
        _, _, es = running_sum_curve(de.set_index("gene")["stat"], sets[name])
        assert float(ref.loc[name, "ES"]) == pytest.approx(es, abs=1e-6)
    assert res.loc["PLANTED", "direction"] == "up" and res.loc["PLANTED", "pvalue"] < 0.01
    assert res.attrs["provenance"]["params"]["seed"] == 7
    assert hall  # the Hallmark GMT parses


def test_read_de_table_full_and_partial(tmp_path):
    de = _ranking(3000)
    de["log2FoldChange"] = de["stat"] / 3
    de["pvalue"] = 0.5
    de["padj"] = 0.9
    full = tmp_path / "full.tsv"
    de.rename(columns={"gene": "symbol"}).to_csv(full, sep="\t", index=False)
    t = read_de_table(full)
    assert not t.attrs["partial"] and t.attrs["metric"] == "stat" and len(t) == 3000
    # a filtered list with only a log2FC and a p-value: metric sign(lfc) * -log10(p), partial
    sig = pd.DataFrame({"Gene": ["A", "B", "C", "D", "E", "F"], "logFC": [2, 1, -1, -2, 3, 0.5],
                        "P.Value": [1e-5, 1e-3, 1e-4, 1e-8, 1e-2, 0.04], "adj.P.Val": [0.01] * 6})
    part = tmp_path / "sig.csv"
    sig.to_csv(part, index=False)
    t = read_de_table(part)
    assert t.attrs["partial"] and t.loc["D", "stat"] == pytest.approx(-8)
    with pytest.warns(UserWarning, match="partial"):
        res = enrich(t, {"UPSET": ["A", "E"]})
    assert res.loc[0, "method"] == "rank_position_partial"
