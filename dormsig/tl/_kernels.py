"""Numba kernels for the single-sample rank methods (no I/O, no AnnData).

Every kernel takes one CSR block of cells (``data``, ``indices``, ``indptr``) and the gene
sets in a flat layout, and is parallel over cells (``prange``; UCell over blocks of ``_ROWS``
cells that share work buffers). Each cell is computed from its own row only, so results are
identical whatever the chunking or the number of threads.

Zeros are never materialised: a row's stored nonzeros are sorted once, and the rank of a zero
follows analytically from the counts of positive/negative values (and, for ordinal ties, from
the tie-break order of the genes).

Set layout
----------
``slot``      int64[n_genes]: position of a gene among the distinct set genes, or -1.
``set_slots`` int64[...]: the slots of the genes of each half-set, concatenated.
``set_ptr``   int64[n_half + 1]: half-set ``h`` is ``set_slots[set_ptr[h]:set_ptr[h + 1]]``.
Half-sets are ordered ``up_0, down_0, up_1, down_1, ...``; an empty half-set is allowed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _nonzero_row(data, indices, start, end):
    """Values and columns of the truly nonzero entries of one row (explicit zeros dropped)."""
    m = 0
    for k in range(start, end):
        if data[k] != 0:
            m += 1
    vals = np.empty(m, dtype=np.float64)
    cols = np.empty(m, dtype=np.int64)
    j = 0
    for k in range(start, end):
        if data[k] != 0:
            vals[j] = data[k]
            cols[j] = indices[k]
            j += 1
    return vals, cols


#: Up to this many distinct set values in a row, positions are found by a branch-free linear count
#: (count data: one value per count level, rarely more than ~20); above it, by bisection.
_FEW = 32


@njit(cache=True, inline="always")
def _position(dist, m, v):
    """Number of the ``m`` ascending distinct values ``dist`` that are below ``v``."""
    if m <= _FEW:
        lo = 0
        for lv in range(m):
            lo += dist[lv] < v  # no branch to mispredict: values fall at random levels
        return lo
    lo, hi = 0, m
    while lo < hi:
        mid = (lo + hi) // 2
        if dist[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _distinct_into(values, k, dist):
    """Write the distinct values of ``values[:k]`` ascending into ``dist`` and return their number: by
    insertion while few (count data), by sorting once more than ``_FEW`` appear (continuous data)."""
    m = 0
    for j in range(k):
        v = values[j]
        pos = _position(dist, m, v)
        if pos < m and dist[pos] == v:
            continue
        if m == _FEW:
            srt = np.sort(values[:k])
            m = 0
            for i in range(k):
                if m == 0 or srt[i] != dist[m - 1]:
                    dist[m] = srt[i]
                    m += 1
            return m
        for lv in range(m, pos, -1):
            dist[lv] = dist[lv - 1]
        dist[pos] = v
        m += 1
    return m


#: Slots of the per-row table of distinct values (at most half used; rows with more distinct values
#: than that are counted by search instead)
_TABLE = 256


@njit(cache=True, inline="always")
def _slot_of(b):
    """Table slot of a value's bits: multiplicative (Fibonacci) hashing, top 8 bits."""
    return np.int64((np.uint64(b) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(56))


def value_bits(data: np.ndarray) -> np.ndarray:
    """``data`` (float32/float64, contiguous) viewed as unsigned integers of the same width, no copy."""
    return data.view(np.uint32 if data.dtype == np.float32 else np.uint64)


#: Rows per ``prange`` iteration of :func:`ucell_kernel`: its work buffers are made once per block, not
#: once per row (numba's allocations go through shared counters that the threads would contend for)
_ROWS = 64


@njit(parallel=True, cache=True, nogil=True)
def ucell_kernel(data, bits, indices, indptr, slot, set_slots, set_ptr, max_rank, w_neg, out, bad):
    """UCell (Andreatta & Carmona 2021) as in pyUCell 0.8.

    Genes are ranked by decreasing value among the nonzero entries of the cell (ties get the
    average rank); zeros and ranks above ``max_rank`` count as ``max_rank``. A half-set of
    ``n`` genes with rank sum ``R`` scores ``1 - (R - n(n+1)/2) / (n max_rank - n(n+1)/2)``;
    a set scores ``max(0, up - w_neg * down)``.

    ``bits`` is ``data`` viewed as unsigned integers of its width (:func:`value_bits`), the keys
    of the table of distinct values. ``out`` is float64[n_cells, n_sets] and is filled in place;
    ``bad`` (uint8[n_cells]) is set to 1 for the rows holding a NaN or infinite value (checked in
    the same pass, so the caller needs no pass of its own) and 0 elsewhere.
    """
    n_cells = indptr.size - 1
    n_slots = set_slots.max() + 1 if set_slots.size else 0
    n_sets = (set_ptr.size - 1) // 2
    n_blocks = (n_cells + _ROWS - 1) // _ROWS
    for blk in prange(n_blocks):
        rank = np.empty(n_slots)
        sv = np.empty(n_slots)
        ss = np.empty(n_slots, dtype=np.int64)
        dist = np.empty(n_slots)
        eq = np.empty(n_slots + 1, dtype=np.int64)
        btw = np.empty(n_slots + 1, dtype=np.int64)
        above = np.empty(n_slots, dtype=np.int64)
        keys = np.empty(_TABLE, dtype=bits.dtype)
        vals = np.empty(_TABLE)
        counts = np.zeros(_TABLE, dtype=np.int64)  # all zero between rows: only used slots are reset
        used = np.empty(_TABLE // 2, dtype=np.int64)
        for i in range(blk * _ROWS, min(n_cells, (blk + 1) * _ROWS)):
            start, end = indptr[i], indptr[i + 1]
            rank[:] = float(max_rank)
            # one pass over the row: the nonzero set genes, and how often each distinct nonzero value occurs
            # (a small open-addressing table keyed by the value's bits; count data hold few distinct values)
            n_used = 0
            k = 0
            finite = True
            for q in range(start, end):
                v = data[q]
                if v == 0:
                    continue
                if not math.isfinite(v):
                    finite = False
                s = slot[indices[q]]
                if s >= 0:
                    sv[k] = v
                    ss[k] = s
                    k += 1
                if n_used >= 0:
                    h = _slot_of(bits[q])
                    while counts[h] and keys[h] != bits[q]:
                        h = (h + 1) & (_TABLE - 1)
                    if counts[h] == 0:
                        if n_used == _TABLE // 2:  # too many distinct values: count them by search below
                            n_used = -1
                            counts[:] = 0
                            continue
                        keys[h] = bits[q]
                        vals[h] = v
                        used[n_used] = h
                        n_used += 1
                    counts[h] += 1
            bad[i] = 0 if finite else 1
            if k > 0:
                m = _distinct_into(sv, k, dist)
                # how many nonzeros equal each distinct set value (eq) or lie between it and the one below
                # (btw; btw[m]: above all, btw[0]: below all, unused)
                eq[:m + 1] = 0
                btw[:m + 1] = 0
                if n_used >= 0:
                    for u in range(n_used):
                        h = used[u]
                        lo = _position(dist, m, vals[h])
                        if lo < m and dist[lo] == vals[h]:
                            eq[lo] += counts[h]
                        else:
                            btw[lo] += counts[h]
                else:
                    for q in range(start, end):
                        v = data[q]
                        if v == 0:
                            continue
                        lo = _position(dist, m, v)
                        if lo < m and dist[lo] == v:
                            eq[lo] += 1
                        else:
                            btw[lo] += 1
                # above[l]: nonzeros greater than dist[l] (suffix sums)
                run = btw[m]
                above[m - 1] = run
                for lv in range(m - 1, 0, -1):
                    run += eq[lv] + btw[lv]
                    above[lv - 1] = run
                for j in range(k):
                    lv = _position(dist, m, sv[j])
                    r = float(above[lv]) + (float(eq[lv]) + 1.0) / 2.0  # values above + average position among ties
                    if r <= max_rank:
                        rank[ss[j]] = r
            for u in range(max(n_used, 0)):
                counts[used[u]] = 0
            for j in range(n_sets):
                up = 0.0
                down = 0.0
                for d in range(2):
                    h = 2 * j + d
                    n = set_ptr[h + 1] - set_ptr[h]
                    if n == 0:
                        continue
                    total = 0.0
                    for q in range(set_ptr[h], set_ptr[h + 1]):
                        total += rank[set_slots[q]]
                    s_min = n * (n + 1) / 2.0
                    s_max = n * float(max_rank)
                    if s_max != s_min:
                        if d == 0:
                            up = 1.0 - (total - s_min) / (s_max - s_min)
                        else:
                            down = 1.0 - (total - s_min) / (s_max - s_min)
                score = up - w_neg * down
                out[i, j] = score if score > 0 else 0.0


@njit(parallel=True, cache=True, nogil=True)
def aucell_kernel(data, indices, indptr, n_genes, slot, slot_gene, tie_pos, set_slots, set_ptr, n_up, out):
    """AUCell (Aibar et al. 2017) as in decoupler 2.2.

    Genes are ranked by decreasing value with ordinal ranks; ties (zeros included) are broken
    by ``tie_pos`` (a permutation of the genes: lower position ranks first). A half-set scores
    the area under its recovery curve up to rank ``n_up`` divided by the largest possible
    area: ``sum_{r_g <= n_up} (n_up - r_g) / sum_{t=1}^{min(n, n_up - 1)} (n_up - t)``.
    A set scores ``up - down``.
    """
    n_cells = indptr.size - 1
    n_slots = slot_gene.size
    n_sets = (set_ptr.size - 1) // 2
    for i in prange(n_cells):
        vals, cols = _nonzero_row(data, indices, indptr[i], indptr[i + 1])
        m = vals.size
        pos = np.empty(m, dtype=np.int64)
        n_pos = 0
        for k in range(m):
            pos[k] = tie_pos[cols[k]]
            if vals[k] > 0:
                n_pos += 1
        n_zero = n_genes - m
        # order by tie position, then a stable sort by decreasing value gives ordinal ranks
        by_pos = np.argsort(pos)
        pos_sorted = pos[by_pos]
        neg_vals = -vals[by_pos]
        order = np.argsort(neg_vals, kind="mergesort")
        rank = np.full(n_slots, -1, dtype=np.int64)
        for p in range(m):
            k = by_pos[order[p]]
            s = slot[cols[k]]
            if s >= 0:
                rank[s] = p + 1 + (n_zero if vals[k] < 0 else 0)
        for s in range(n_slots):
            if rank[s] < 0:  # a zero: after the positives, among zeros by tie position
                tp = tie_pos[slot_gene[s]]
                nz_before = np.searchsorted(pos_sorted, tp, side="left")
                rank[s] = n_pos + (tp - nz_before) + 1
        for j in range(n_sets):
            part = np.zeros(2)
            for d in range(2):
                h = 2 * j + d
                n = set_ptr[h + 1] - set_ptr[h]
                if n == 0:
                    continue
                top = min(n, n_up - 1)
                max_auc = 0.0
                for t in range(1, top + 1):
                    max_auc += n_up - t
                auc = 0.0
                for q in range(set_ptr[h], set_ptr[h + 1]):
                    r = rank[set_slots[q]]
                    if r <= n_up:
                        auc += n_up - r
                part[d] = auc / max_auc
            out[i, j] = part[0] - part[1]


@njit(cache=True)
def _mad(x):
    """R's ``mad``: median absolute deviation times 1.4826."""
    med = np.median(x)
    return 1.4826 * np.median(np.abs(x - med))


@njit(parallel=True, cache=True, nogil=True)
def singscore_kernel(data, indices, indptr, n_genes, slot, set_slots, set_ptr, centre, out, disp):
    """singscore (Foroutan et al. 2018) as in the R package ``simpleScore``.

    Genes are ranked by increasing value with ties at the minimum rank (R ``rank``,
    ``ties.method = "min"``). For a half-set of ``n`` genes with mean rank ``m`` the score is
    ``(m - (n + 1)/2) / ((2N - n + 1)/2 - (n + 1)/2)`` (``N`` genes); a down half-set uses one
    minus that; with ``centre`` each part is shifted by -0.5 and the set score is the sum.
    ``disp`` receives the summed MAD (R ``mad``) of the ranks of the parts.
    """
    n_cells = indptr.size - 1
    n_slots = set_slots.max() + 1 if set_slots.size else 0
    n_sets = (set_ptr.size - 1) // 2
    for i in prange(n_cells):
        start, end = indptr[i], indptr[i + 1]
        srt = np.sort(data[start:end])
        n_implicit_zero = n_genes - (end - start)
        n_neg = np.searchsorted(srt, 0.0, side="left")
        rank = np.full(n_slots, float(n_neg + 1))  # zeros: after the negatives
        for k in range(start, end):
            s = slot[indices[k]]
            if s >= 0:
                v = data[k]
                if v == 0:
                    continue
                below = np.searchsorted(srt, v, side="left")  # explicit zeros included when v > 0
                rank[s] = below + (n_implicit_zero if v > 0 else 0) + 1
        for j in range(n_sets):
            total = 0.0
            dtot = 0.0
            for d in range(2):
                h = 2 * j + d
                n = set_ptr[h + 1] - set_ptr[h]
                if n == 0:
                    continue
                r = np.empty(n)
                for q in range(n):
                    r[q] = rank[set_slots[set_ptr[h] + q]]
                low = (n + 1) / 2.0
                high = (2.0 * n_genes - n + 1) / 2.0
                norm = (r.mean() - low) / (high - low)
                if d == 1:
                    norm = 1.0 - norm
                if centre:
                    norm -= 0.5
                total += norm
                dtot += _mad(r)
            out[i, j] = total
            disp[i, j] = dtot


@njit(cache=True)
def nan_row(data, indptr):
    """Index of the first row holding a NaN or infinite value, or -1."""
    for i in range(indptr.size - 1):
        for k in range(indptr[i], indptr[i + 1]):
            if not np.isfinite(data[k]):
                return i
    return -1
