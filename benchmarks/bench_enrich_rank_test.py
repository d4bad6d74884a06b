"""Benchmark the exact rank-position test (run by hand, not in CI).

For each (N ranked genes, set size k) the time of one exact two-sided p-value for a set near the
middle of the ranking (p ~ 0.5: its tail reaches almost the centre of the null distribution, the
costly case) and for a significant set (p ~ 1e-6), then a whole filtered-table enrichment
(airway top table, Hallmark sets).
The machine load is printed beside the times.

    python benchmarks/bench_enrich_rank_test.py
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dormsig.de.rank_test import rank_position_pvalues, tail_counts

CASES = [(1000, 1), (20000, 4), (1000, 121), (1000, 132), (1000, 200), (2000, 200), (1000, 500), (2000, 500),
         (5000, 300)]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _block(genes: list[str], k: int, z: float) -> list[str]:
    """k consecutive genes of the ranking whose rank sum is z standard deviations above the null mean."""
    n = len(genes)
    sigma = math.sqrt(k * (n - k) * (n + 1) / 12)
    start = max(0, int(round((n - k) / 2 - z * sigma / k)))
    return genes[start:start + k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=None, help="Comma-separated N:k pairs (default: a fixed list).")
    args = ap.parse_args()
    cases = CASES if not args.cases else [tuple(map(int, c.split(":"))) for c in args.cases.split(",")]
    tail_counts(20, {5: [10]})  # compile the kernel once, outside the timings
    print(f"load average before: {_load()}")
    print(f"{'N':>6} {'k':>5} {'primes':>6} {'p~0.5 s':>9} {'p~1e-6 s':>9}  p-values")
    for n, k in cases:
        genes = [f"G{i}" for i in range(n)]
        ranking = pd.Series(np.arange(n, 0, -1, dtype=float), index=genes)
        t0 = time.perf_counter()
        (_, p_mid, _, _), = rank_position_pvalues(ranking, [_block(genes, k, 0.67)])
        t1 = time.perf_counter()
        (_, p_strong, _, _), = rank_position_pvalues(ranking, [_block(genes, k, 4.9)])
        t2 = time.perf_counter()
        primes = math.comb(n, min(k, n - k)).bit_length() // 62 + 1
        print(f"{n:>6} {k:>5} {primes:>6} {t1 - t0:>9.2f} {t2 - t1:>9.2f}  {p_mid:.3g}, {p_strong:.3g}")
    gmt = Path(__file__).resolve().parents[1] / "tests" / "data" / "de" / "h.all.v7.0.symbols.gmt"
    top = Path(__file__).resolve().parents[1] / "tests" / "data" / "enrich" / "airway_dex_deseq2_top_writetable.txt"
    if gmt.is_file() and top.is_file():
        import warnings

        from dormsig.de import enrich

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            res = enrich(top, gmt)
            t1 = time.perf_counter()
        print(f"enrich(airway top table, 876 genes, Hallmark): {t1 - t0:.2f} s for {len(res)} sets "
              f"(max n_matched {int(res['n_matched'].max())})")
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
