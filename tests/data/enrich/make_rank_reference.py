"""Exact reference tail probabilities of the rank-sum null, for tests/test_enrich_rank_test.py.

Independent of dormsig's implementation: Python integers only (no modular arithmetic, no numba,
no symmetry shortcut). For N ranked genes and set sizes k the counts of k-subsets by
U = (rank sum) - k(k+1)/2 are the coefficients c_u of the Gaussian binomial [N choose k]_q,
built by the chain [N, k+1] = [N, k] (1 - q^(N-k)) / (1 - q^(k+1)) over the full support. A
polynomial is held as one integer, sum_u c_u 2^(b u) (Kronecker substitution, b bits per
coefficient, b > log2 C(N, K)): multiplying by 1 - q^a is X - (X << a b); dividing by 1 - q^s
multiplies by 1 + q^s + q^2s + ... (by doubling), modulo q^(D+1), which is exact because the
quotient is a polynomial of degree D with coefficients in [0, 2^b). Each row is checked:
its coefficients sum to C(N, k) and are symmetric.

For each k the script writes the exact lower-tail probability P(U <= u) = count / C(N, k)
(30 significant digits) at u = 0 and at the first u where it reaches 1e-300, 1e-100, 1e-30,
1e-12, 1e-6, 1e-3, 0.05 and 0.5.

Run: python tests/data/enrich/make_rank_reference.py  (a few minutes on one core)
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
import sys
from decimal import Decimal, getcontext
from fractions import Fraction
from pathlib import Path

getcontext().prec = 40
TARGETS = [Fraction(1, 10**300), Fraction(1, 10**100), Fraction(1, 10**30), Fraction(1, 10**12),
           Fraction(1, 10**6), Fraction(1, 1000), Fraction(1, 20), Fraction(1, 2)]
RUNS = [(1000, range(1, 501)), (2000, [121, 132, 200])]


def chain(n: int, k_max: int):
    """Yield (k, [c_0, ..., c_D]) for k = 0..k_max, exact Python integers."""
    b = (math.comb(n, k_max).bit_length() + 8) // 8 * 8  # whole bytes per coefficient
    x = 1  # [N, 0]_q = 1
    for k in range(k_max + 1):
        d = k * (n - k)
        raw = x.to_bytes((d + 1) * b // 8, "little")
        step = b // 8
        yield k, [int.from_bytes(raw[i:i + step], "little") for i in range(0, len(raw), step)]
        if k == k_max:
            return
        d_next = (k + 1) * (n - k - 1)
        mask = (1 << ((d_next + 1) * b)) - 1
        y = x - (x << ((n - k) * b))  # times (1 - q^(N-k))
        span = k + 1
        while span <= d_next:  # times 1 + q^s + q^2s + ... (doubling), modulo q^(D+1)
            y = (y + (y << (span * b))) & mask
            span *= 2
        x = y & mask


def main(out: Path) -> None:
    with open(out, "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["n_total", "k", "u", "lower_tail"])
        for n, ks in RUNS:
            wanted = set(ks)
            for k, counts in chain(n, max(wanted)):
                if k not in wanted:
                    continue
                total = math.comb(n, k)
                assert sum(counts) == total and counts == counts[::-1] and len(counts) == k * (n - k) + 1
                cums = list(itertools.accumulate(counts[: k * (n - k) // 2 + 1]))
                # first u with P(U <= u) >= target: cum * den >= num * total
                points = {0} | {bisect.bisect_left(cums, -(-(t.numerator * total) // t.denominator)) for t in TARGETS}
                for u in sorted(p for p in points if p < len(cums)):
                    w.writerow([n, k, u, f"{Decimal(cums[u]) / Decimal(total):.30e}"])
                print(n, k, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(Path(__file__).with_name("rank_sum_reference.csv"))
