"""The exact rank-position test (dormsig.de.rank_test) against independent references.

References: exhaustive enumeration (N <= 16), exact Python-integer arithmetic (a separate,
unoptimised implementation, every u), stored exact tail probabilities for every set size
1-500 in 1,000 genes and 121/132/200 in 2,000 (tests/data/enrich/make_rank_reference.py),
R's pwilcox (tests/data/enrich/make_r_pwilcox_reference.R) and Monte Carlo.
"""

from __future__ import annotations

import itertools
import math
import sys
from decimal import Decimal, getcontext
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dormsig.de.rank_test import exact_work, rank_position_pvalues, rank_position_test, tail_counts

DATA = Path(__file__).parent / "data" / "enrich"
getcontext().prec = 40


def _enumerate(n: int, k: int) -> list[int]:
    """#{k-subsets of 1..n with U = u} for every u, by listing the subsets."""
    counts = [0] * (k * (n - k) + 1)
    base = k * (k + 1) // 2
    for subset in itertools.combinations(range(1, n + 1), k):
        counts[sum(subset) - base] += 1
    return counts


def _exact_rows(n: int, k_max: int):
    """Counts of U for k = 0..k_max by the Gaussian-binomial chain in Python integers (full support)."""
    row = [1]
    for k in range(k_max + 1):
        yield k, row
        d_next = (k + 1) * (n - k - 1)
        x = row + [0] * (d_next + 1 - len(row))
        shift, stride = n - k, k + 1
        for u in range(d_next, shift - 1, -1):
            x[u] -= x[u - shift]
        for u in range(stride, d_next + 1):
            x[u] += x[u - stride]
        row = x


def _p_from_ranks(ranks: list[int], n: int) -> float:
    """Two-sided exact p of a set at these ascending ranks, by enumeration (no ties)."""
    k = len(ranks)
    counts = _enumerate(n, k)
    u = sum(ranks) - k * (k + 1) // 2
    total = math.comb(n, k)
    lower, upper = sum(counts[: u + 1]), sum(counts[u:])
    return min(1.0, 2 * min(lower, upper) / total)


def test_counts_equal_exhaustive_enumeration_for_every_n_k_u():
    for n in range(1, 17):
        queries = {k: list(range(min(k, n - k) * (n - min(k, n - k)) // 2 + 1)) for k in range(n + 1)}
        got = tail_counts(n, queries)
        for k in range(n + 1):
            cum = np.cumsum(_enumerate(n, k))
            assert all(got[k][u] == cum[u] for u in queries[k]), (n, k)


def test_counts_equal_exact_integers_for_every_set_size_in_300_genes():
    n = 300
    rows = dict(_exact_rows(n, 150))
    queries = {}
    for k in range(1, 151):
        half = k * (n - k) // 2
        queries[k] = sorted({*range(0, half + 1, max(1, half // 40)), half})
    got = tail_counts(n, queries)
    for k, us in queries.items():
        cum = list(itertools.accumulate(rows[k]))
        assert all(got[k][u] == cum[u] for u in us), k
        assert sum(rows[k]) == math.comb(n, k)


def test_precision_against_exact_reference_for_set_sizes_1_to_500():
    """Every set size 1-500 in 1,000 genes (and 121/132/200 in 2,000), tails from 1e-300 to 0.5."""
    ref = pd.read_csv(DATA / "rank_sum_reference.csv", dtype={"lower_tail": str})
    assert set(ref.loc[ref["n_total"] == 1000, "k"]) == set(range(1, 501))
    max_abs = max_rel = 0.0
    for n, group in ref.groupby("n_total"):
        queries = {int(k): [int(u) for u in g["u"]] for k, g in group.groupby("k")}
        got = tail_counts(int(n), queries)
        for k, u, exact in zip(group["k"], group["u"], group["lower_tail"], strict=True):
            p = got[int(k)][int(u)] / math.comb(int(n), int(k))  # one correctly rounded division
            err = abs(Decimal(p) - Decimal(exact))
            max_abs = max(max_abs, float(err))
            max_rel = max(max_rel, float(err / Decimal(exact)))
            assert 0.0 <= p <= 1.0
    print(f"rank test vs exact reference ({len(ref)} tails): max abs error {max_abs:.3g}, max rel error {max_rel:.3g}",
          file=sys.stderr)
    assert max_rel <= 2.0**-52  # the rounding of the final division, nothing else


def test_matches_r_pwilcox():
    ref = pd.read_csv(DATA / "r_pwilcox_reference.csv", float_precision="round_trip")
    for k, n_other, u, p_r in ref.itertuples(index=False):
        n = k + n_other
        d = k * n_other
        if u <= d // 2:
            p = tail_counts(n, {k: [u]})[k][u] / math.comb(n, k)
        else:  # R's table includes the upper half: P(U <= u) = 1 - P(U <= D - u - 1)
            p = 1 - tail_counts(n, {k: [d - u - 1]})[k][d - u - 1] / math.comb(n, k)
        assert p == pytest.approx(p_r, rel=1e-12, abs=1e-300), (k, n_other, u)  # R: doubles (choose(100, 50) is off by 1e-14)


@pytest.mark.parametrize("k", [121, 132, 200, 500])
def test_monte_carlo_agrees_for_the_issue_sizes(k):
    n, draws = 1000, 20000
    rng = np.random.default_rng(k)
    u = np.concatenate([rng.random((2000, n)).argpartition(k, axis=1)[:, :k].sum(axis=1)
                        for _ in range(draws // 2000)]) + k - k * (k + 1) // 2  # argpartition gives 0-based ranks
    points = [t for t in (int(np.quantile(u, q)) for q in (0.01, 0.1, 0.3, 0.5)) if t <= k * (n - k) // 2]
    counts = tail_counts(n, {k: points})[k]  # one chain for all points
    for t in points:
        exact = counts[t] / math.comb(n, k)
        empirical = float((u <= t).mean())
        assert abs(empirical - exact) <= 5 * math.sqrt(exact * (1 - exact) / draws) + 1 / draws, (t, exact, empirical)


@pytest.mark.parametrize(("n", "k"), [(1000, 121), (1000, 132), (1000, 200), (1000, 500), (2000, 121), (2000, 200)])
def test_issue_sizes_give_valid_exact_pvalues_at_top_middle_and_bottom(n, k):
    genes = [f"G{i}" for i in range(n)]
    ranking = pd.Series(np.arange(n, 0, -1, dtype=float), index=genes)  # G0 highest
    top, bottom = genes[:k], genes[-k:]
    middle = genes[(n - k) // 2:(n - k) // 2 + k]
    res = rank_position_pvalues(ranking, [top, bottom, middle])
    expected = max(2 / math.comb(n, k), sys.float_info.min)  # only one subset is as extreme on each side
    assert res[0][1] == pytest.approx(expected, rel=1e-15) and res[1][1] == res[0][1]
    assert res[0][0] > 0.99 * (1 - k / n) and res[1][0] < -0.99 * (1 - k / n)
    assert res[2][1] == 1.0 or res[2][1] > 0.9
    assert all(0 < p <= 1 and math.isfinite(p) and exact for _, p, _, exact in res)


def test_one_gene_is_its_exact_position():
    n = 50
    genes = [f"G{i}" for i in range(n)]
    ranking = pd.Series(np.linspace(3, -3, n), index=genes)
    for i, g in enumerate(genes):
        r = n - i  # ascending rank
        effect, p, lead = rank_position_test(ranking, [g])
        assert p == min(1.0, 2 * min(r, n - r + 1) / n)
        assert effect == pytest.approx(2 * (r - 0.5) / n - 1)


def test_small_sets_equal_enumeration_and_are_symmetric():
    rng = np.random.default_rng(3)
    n = 14
    genes = [f"G{i}" for i in range(n)]
    ranking = pd.Series(rng.permutation(n).astype(float), index=genes)
    ranks = ranking.rank().astype(int)
    for k in (1, 2, 3, 5, 7, 13):
        for _ in range(5):
            chosen = list(rng.choice(genes, size=k, replace=False))
            _, p, _ = rank_position_test(ranking, chosen)
            assert p == pytest.approx(_p_from_ranks([int(ranks[g]) for g in chosen], n), rel=1e-15)
            _, p_flip, _ = rank_position_test(-ranking, chosen)
            assert p_flip == pytest.approx(p, rel=1e-15)


def test_ties_give_a_conservative_pvalue():
    """With tied statistics the p-value bounds every tie-breaking's exact p-value from above."""
    n = 12
    genes = [f"G{i}" for i in range(n)]
    values = np.array([5, 4, 4, 4, 3, 2, 2, 1, 0, 0, 0, -1], dtype=float)
    ranking = pd.Series(values, index=genes)
    chosen = ["G1", "G2", "G5", "G8"]  # two in the tie block of 4s, one of the 2s, one of the 0s
    _, p, _ = rank_position_test(ranking, chosen)
    lo = pd.Series(values).rank(method="min").astype(int).to_numpy()
    hi = pd.Series(values).rank(method="max").astype(int).to_numpy()
    idx = [genes.index(g) for g in chosen]
    # every way of giving the members distinct positions inside their tie blocks
    options = [range(lo[i], hi[i] + 1) for i in idx]
    worst = max(_p_from_ranks(list(r), n) for r in itertools.product(*options) if len(set(r)) == len(r))
    assert p >= worst - 1e-15
    # no ties: exact
    ranking_untied = pd.Series(np.arange(n, 0, -1, dtype=float), index=genes)
    _, p_exact, _ = rank_position_test(ranking_untied, chosen)
    assert p_exact == pytest.approx(_p_from_ranks([n - genes.index(g) for g in chosen], n), rel=1e-15)


def test_random_sets_never_give_pvalues_outside_0_1():
    rng = np.random.default_rng(11)
    n = 600
    genes = [f"G{i}" for i in range(n)]
    ranking = pd.Series(rng.normal(size=n), index=genes)
    sets = [list(rng.choice(genes, size=int(k), replace=False)) for k in rng.integers(1, 400, size=60)]
    sets.append(genes)  # the whole ranking: nothing to test against, p = 1
    res = rank_position_pvalues(ranking, sets)
    assert all(0 < p <= 1 for _, p, _, _ in res) and res[-1][1] == 1.0
    assert rank_position_pvalues(ranking, [["absent"]])[0][1] != rank_position_pvalues(ranking, [["absent"]])[0][1]


def test_stored_reference_is_itself_exact_for_small_sizes():
    """The stored reference (independent script) agrees with enumeration where enumeration is possible."""
    ref = pd.read_csv(DATA / "rank_sum_reference.csv", dtype={"lower_tail": str})
    rows = dict(_exact_rows(1000, 3))
    for k in (1, 2, 3):
        cum = list(itertools.accumulate(rows[k]))
        for u, value in ref.loc[(ref["n_total"] == 1000) & (ref["k"] == k), ["u", "lower_tail"]].itertuples(index=False):
            exact = Fraction(cum[int(u)], math.comb(1000, k))
            assert abs(Decimal(exact.numerator) / Decimal(exact.denominator) - Decimal(value)) <= Decimal(value) * Decimal("1e-29")


def test_sizes_beyond_the_work_budget_get_a_flagged_normal_approximation():
    n, k = 1000, 121
    genes = [f"G{i}" for i in range(n)]
    ranking = pd.Series(np.arange(n, 0, -1, dtype=float), index=genes)
    chosen = genes[375:375 + k]  # 2.6 standard deviations from the centre: p ~ 0.01
    small = genes[:3]
    (e1, p_exact, _, ok), (_, p_small, _, ok_small) = rank_position_pvalues(ranking, [chosen, small])
    assert ok and ok_small
    (e2, p_approx, _, ok2), (_, p_small2, _, ok_small2) = rank_position_pvalues(ranking, [chosen, small], max_work=1e5)
    assert not ok2 and ok_small2 and p_small2 == p_small  # only the large size leaves the exact path
    assert e2 == e1 and p_approx == pytest.approx(p_exact, rel=0.1)
    assert exact_work(n, {k: [1000]}) < exact_work(n, {k: [5000]}) < exact_work(n, {2 * k: [5000]})
