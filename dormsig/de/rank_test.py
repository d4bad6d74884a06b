"""The rank-position test of gene sets in a DE ranking, exact for every set size.

Null hypothesis: a set's ``k`` genes occupy a uniformly random ``k``-subset of the ``N``
positions of the ranking (a permutation null: the Wilcoxon rank-sum test of the set against the
other genes of the ranking). With ascending ranks ``r_i`` (1 = lowest statistic), the statistic
is ``U = sum(r_i) - k(k + 1)/2`` in ``0 .. D = k(N - k)``, and the number of ``k``-subsets with
each value of ``U`` is a coefficient of the Gaussian binomial (Mann and Whitney 1947)::

    [N choose k]_q = sum_u c_u q^u,      [N choose k+1]_q = [N choose k]_q (1 - q^(N-k)) / (1 - q^(k+1))

so one chain ``k = 0, 1, 2, ...`` gives the null distribution of every set size of a ranking.
The counts are computed in exact integer arithmetic: modulo primes below 2^63 (a numba
kernel, one prime per thread; a multiplication by ``1 - q^a`` is a shifted subtraction, a
division by ``1 - q^s`` a prefix sum with stride ``s``), then the tail count is rebuilt by the
Chinese remainder theorem from enough primes that their product exceeds ``C(N, k)``. The
p-value ``2 * tail / C(N, k)`` is an exact rational rounded once to a float (Python's
correctly rounded integer division): no cancellation, overflow or negative value is possible.
Each ``[N choose k]_q`` is symmetric about ``D/2``; only its lower half is computed and the
smaller tail is always used.

Ties (equal statistics) make midranks; the test is then made conservative rather than
approximate: the lower tail is taken at the largest ranks the set's genes can occupy inside
their tie blocks, the upper tail at the smallest, so the p-value bounds from above the exact
p-value of every way of breaking the ties (and is exact when there are no ties).

Cost: about ``(log2 C(N, K) / 62) * K * K (N - K) / 4`` modular additions for the largest set
size ``K`` (K = 121 in N = 1,000: 0.1 s; K = 500 in N = 2,000: about 10 s; see
``benchmarks/enrich_rank_test.py``).
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from numba import njit, prange

#: Default budget of modular additions for the exact null (about a minute on one core).
MAX_EXACT_WORK = 1e11
#: Moduli: primes below 2^63, so that a sum of two residues fits in uint64 (no division needed).
_PRIME_BITS = 63


def _is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3e24 (bases 2..41)."""
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    for p in small:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


@functools.lru_cache(maxsize=8)
def _primes(count: int) -> tuple[int, ...]:
    """The ``count`` largest primes below 2^63."""
    out: list[int] = []
    n = (1 << _PRIME_BITS) - 1
    while len(out) < count:
        if _is_prime(n):
            out.append(n)
        n -= 2
    return tuple(out)


def _n_primes(n_total: int, k: int) -> int:
    """Number of primes whose product exceeds C(N, k) (each is > 2^62)."""
    return math.comb(n_total, k).bit_length() // (_PRIME_BITS - 1) + 1


def _crt(residues: Sequence[int], moduli: Sequence[int]) -> int:
    """The integer in [0, prod(moduli)) with the given residues."""
    x, m = 0, 1
    for r, p in zip(residues, moduli, strict=True):
        t = (r - x) * pow(m, -1, p) % p  # x + m t = r (mod p)
        x, m = x + m * t, m * p
    return x


@njit(cache=True, parallel=True)
def _chain_residues(n, top, reach, need_k, need_start, need_u, primes):  # pragma: no cover - compiled
    """Per prime, walk [N, 0]_q .. [N, top]_q (lower halves, mod p); return the prefix sums at the queries.

    ``need_k[i]`` is a set size, its queried ``u`` are ``need_u[need_start[i]:need_start[i + 1]]``
    (sorted); ``reach[k]`` is the largest ``u`` needed at step ``k`` or later.
    """
    n_primes = primes.size
    out = np.zeros((n_primes, need_u.size), dtype=np.uint64)
    zero = np.uint64(0)
    for ip in prange(n_primes):
        p = primes[ip]
        a = np.zeros(reach[0] + 1, dtype=np.uint64)  # [N, k]_q, lower half, mod p
        a[0] = np.uint64(1)
        have = 1  # valid coefficients in a[:have]
        iq = 0
        for k in range(top + 1):
            if iq < need_k.size and need_k[iq] == k:
                total = zero
                u = 0
                for j in range(need_start[iq], need_start[iq + 1]):
                    while u <= need_u[j]:
                        total += a[u]
                        total -= p if total >= p else zero
                        u += 1
                    out[ip, j] = total
                iq += 1
            if k == top:
                break
            d = k * (n - k)
            length = min(reach[k + 1], (k + 1) * (n - k - 1) // 2) + 1
            # Upper half by symmetry (c_u = c_(D - u)), zero beyond the support.
            for u in range(have, min(length, d + 1)):
                a[u] = a[d - u]
            for u in range(max(have, d + 1), length):
                a[u] = zero
            # Times (1 - q^shift), descending so that a[u - shift] is still the old value.
            shift = n - k
            for u in range(length - 1, shift - 1, -1):
                x = a[u] + (p - a[u - shift])
                a[u] = x - (p if x >= p else zero)
            # Divided by (1 - q^stride): prefix sums along each residue class, ascending.
            stride = k + 1
            for u in range(stride, length):
                x = a[u] + a[u - stride]
                a[u] = x - (p if x >= p else zero)
            have = length
    return out


def tail_counts(n_total: int, queries: dict[int, Sequence[int]]) -> dict[int, dict[int, int]]:
    """Exact ``#{k-subsets of 1..N with U <= u}`` for each ``k`` and ``u`` in ``queries``.

    Parameters
    ----------
    n_total
        ``N``, the number of ranked genes.
    queries
        ``{k: [u, ...]}`` with ``0 <= k <= N`` and ``0 <= u <= k (N - k) / 2`` (the lower half;
        use the symmetry ``P(U <= u) = 1 - P(U <= D - u - 1)`` for the rest).

    Returns
    -------
    dict
        ``{k: {u: count}}``; divide by ``math.comb(N, k)`` for the probability.
    """
    n = int(n_total)
    need: dict[int, set[int]] = {}
    for k, us in queries.items():
        if not 0 <= k <= n:
            raise ValueError(f"set size {k} must be between 0 and N = {n}")
        kk = min(k, n - k)  # [N, k]_q = [N, N - k]_q: walk the chain to the smaller one
        for u in us:
            if not 0 <= u <= kk * (n - kk) // 2:
                raise ValueError(f"u = {u} is outside the lower half 0..{kk * (n - kk) // 2} for k = {k}, N = {n}")
            need.setdefault(kk, set()).add(int(u))
    out: dict[int, dict[int, int]] = {k: {} for k in queries}
    if not need:
        return out
    top = max(need)
    primes = _primes(_n_primes(n, top))
    reach = np.zeros(top + 2, dtype=np.int64)
    for k in range(top, -1, -1):
        reach[k] = max(reach[k + 1], max(need.get(k, {0})))
    need_k = np.array(sorted(need), dtype=np.int64)
    flat = [sorted(need[k]) for k in need_k]
    need_start = np.cumsum([0] + [len(f) for f in flat]).astype(np.int64)
    need_u = np.array([u for f in flat for u in f], dtype=np.int64)
    res = _chain_residues(n, top, reach, need_k, need_start, need_u, np.array(primes, dtype=np.uint64))
    index = {(int(k), u): j for k, f, s in zip(need_k, flat, need_start[:-1], strict=True) for j, u in enumerate(f, s)}
    for k, us in queries.items():
        kk = min(k, n - k)
        for u in us:
            out[k][int(u)] = _crt([int(r) for r in res[:, index[(kk, int(u))]]], primes)
    return out


def _tie_bounds(lo: np.ndarray, hi: np.ndarray) -> tuple[int, int]:
    """Smallest and largest rank sums a set can have over the ways of breaking its ties.

    ``lo``/``hi`` are the members' ``min``/``max`` ranks (the ends of their tie blocks): within a
    block the c members take either its c lowest or its c highest positions.
    """
    nth = pd.Series(lo).groupby(lo).cumcount().to_numpy()
    return int((lo + nth).sum()), int((hi - nth).sum())


def exact_work(n_total: int, queries: dict[int, Iterable[int]]) -> int:
    """Modular additions :func:`tail_counts` needs for ``queries`` (``{k: [u, ...]}``)."""
    need: dict[int, int] = {}
    for k, us in queries.items():
        kk = min(k, n_total - k)
        need[kk] = max(need.get(kk, 0), max(us, default=0))
    if not need:
        return 0
    top, reach, total = max(need), 0, 0
    for k in range(top, 0, -1):  # the chain step that builds [N, k] works on min(reach, D_k / 2) + 1 values
        reach = max(reach, need.get(k, 0))
        total += min(reach, k * (n_total - k) // 2) + 1
    return 2 * _n_primes(n_total, top) * total


def rank_position_pvalues(
    ranking: pd.Series, gene_sets: Iterable[Iterable[str]], *, max_work: float = MAX_EXACT_WORK
) -> list[tuple[float, float, list[str], bool]]:
    """Two-sided exact rank-position test of several gene sets in one ranking.

    Parameters
    ----------
    ranking
        Statistic per gene (index = unique genes, no NaN); higher = up in the test group.
    gene_sets
        Genes of each set (genes absent from ``ranking`` are ignored).
    max_work
        Budget of modular additions (:func:`exact_work`; 1e11 is about a minute on one core).
        Set sizes whose exact null would exceed it (e.g. 3,000 genes of a 15,000-gene table)
        get the normal approximation with continuity correction instead, flagged ``exact=False``.

    Returns
    -------
    list of tuple
        Per set ``(effect, pvalue, leading_genes, exact)``: ``effect = 2 mean(u) - 1`` with
        ``u = (midrank - 0.5) / N`` (in (-1, 1), positive = top of the ranking); the exact
        two-sided p-value ``min(1, 2 min(P(U <= U_obs), P(U >= U_obs)))`` (NaN for a set with
        no gene in the ranking; at least 2.2e-308, the smallest normal float); the set's genes on
        the side of the effect, strongest first; whether the p-value is exact.
    """
    n = len(ranking)
    values = pd.Series(ranking.to_numpy(dtype=np.float64))
    mid = values.rank(method="average").to_numpy()
    lo = values.rank(method="min").to_numpy().astype(np.int64)
    hi = values.rank(method="max").to_numpy().astype(np.int64)
    position = pd.Series(np.arange(n), index=ranking.index)
    work = []
    queries: dict[int, set[int]] = {}
    for genes in gene_sets:
        genes = [g for g in dict.fromkeys(genes) if g in position.index]
        idx = position.loc[genes].to_numpy(dtype=np.int64) if genes else np.zeros(0, dtype=np.int64)
        k, tail = idx.size, None
        if 0 < k < n:
            r_min, r_max = _tie_bounds(lo[idx], hi[idx])
            base, d = k * (k + 1) // 2, k * (n - k)
            # Lower tail at the largest U the ties allow, upper tail at the smallest (conservative);
            # P(U >= u) = P(U <= D - u) by symmetry.
            tail = min(r_max - base, d - (r_min - base))
            if 2 * tail >= d:
                tail = None  # the smaller tail holds at least half the mass: p = 1
            else:
                queries.setdefault(k, set()).add(tail)
        work.append((genes, idx, k, tail))
    # The largest set sizes first out of the exact computation when it would not fit the budget.
    exact = dict(queries)
    while exact and exact_work(n, exact) > max_work:
        del exact[max(exact, key=lambda k: min(k, n - k))]
    counts = tail_counts(n, {k: sorted(us) for k, us in exact.items()})
    out = []
    for genes, idx, k, tail in work:
        if k == 0:
            out.append((math.nan, math.nan, [], True))
            continue
        effect = float(2 * ((mid[idx] - 0.5) / n).mean() - 1)
        if tail is None:
            p = 1.0
        elif k in exact:
            # An exact rational, rounded once (int / int is correctly rounded in Python); below the
            # smallest normal float (2.2e-308, e.g. 2 / C(2000, 500)) it is reported as that float.
            p = min(1.0, max(2 * counts[k][tail] / math.comb(n, k), sys.float_info.min))
        else:
            z = (tail + 0.5 - k * (n - k) / 2) / math.sqrt(k * (n - k) * (n + 1) / 12)
            p = min(1.0, max(2 * 0.5 * math.erfc(-z / math.sqrt(2)), sys.float_info.min))
        sign = 1 if effect >= 0 else -1
        lead = [g for g in genes if np.sign(ranking[g]) == sign]
        lead.sort(key=lambda g: -sign * ranking[g])
        out.append((effect, p, lead, tail is None or k in exact))
    return out


def rank_position_test(ranking: pd.Series, genes: Iterable[str]) -> tuple[float, float, list[str]]:
    """Two-sided exact rank-position test of one gene set: ``(effect, pvalue, leading_genes)``.

    See :func:`rank_position_pvalues`.
    """
    effect, p, lead, _ = rank_position_pvalues(ranking, [list(genes)])[0]
    return effect, p, lead
