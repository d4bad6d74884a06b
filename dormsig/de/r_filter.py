"""R DESeq2's independent filtering (``results()``'s ``pvalueAdjustment``) with R's ``lowess``.

pydeseq2 chooses the baseMean cutoff with a simplified lowess (another neighbourhood size, one
robustness pass fewer, no ``delta`` interpolation); where the number of rejections is flat over the
cutoffs, that moves the cutoff by a grid step (sim_wide LRT: 30 genes filtered that R keeps). This
module follows R: genefilter's ``filtered_p`` on 50 quantiles of baseMean, R's ``lowess(f = 1/5)``
(Cleveland's algorithm as R's ``clowess``: ``iter = 3`` robustness passes, ``delta`` = 1% of the
range), and the first cutoff whose rejections exceed the fit's maximum minus its residual RMS.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control


def _lowest(x: np.ndarray, y: np.ndarray, xs: float, nleft: int, nright: int, userw: bool,
            rw: np.ndarray) -> float | None:
    """Local weighted linear fit at ``xs`` on points ``nleft..nright`` (0-based, inclusive); None if no weight."""
    n = x.size
    rng = x[-1] - x[0]
    h = max(xs - x[nleft], x[nright] - xs)
    h9, h1 = 0.999 * h, 0.001 * h
    w = np.zeros(n)
    a = 0.0
    j = nleft
    while j < n:
        r = abs(x[j] - xs)
        if r <= h9:
            w[j] = 1.0 if r <= h1 else (1.0 - (r / h) ** 3) ** 3
            if userw:
                w[j] *= rw[j]
            a += w[j]
        elif x[j] > xs:
            break
        j += 1
    nrt = j - 1
    if a <= 0.0:
        return None
    sl = slice(nleft, nrt + 1)
    w[sl] /= a
    if h > 0.0:
        a = float(np.sum(w[sl] * x[sl]))
        b = xs - a
        c = float(np.sum(w[sl] * (x[sl] - a) ** 2))
        if np.sqrt(c) > 0.001 * rng:
            b /= c
            w[sl] *= b * (x[sl] - a) + 1.0
    return float(np.sum(w[sl] * y[sl]))


def r_lowess(x: np.ndarray, y: np.ndarray, f: float = 2 / 3, iterations: int = 3,
             delta: float | None = None) -> np.ndarray:
    """R's ``lowess(x, y, f, iter, delta)`` fitted values, in the order of ``x`` sorted (R sorts too)."""
    order = np.argsort(x, kind="stable")
    x = np.asarray(x, dtype=np.float64)[order]
    y = np.asarray(y, dtype=np.float64)[order]
    n = x.size
    if n < 2:
        return y.copy()
    delta = 0.01 * (x[-1] - x[0]) if delta is None else delta
    ns = max(2, min(n, int(f * n + 1e-7)))
    ys = np.zeros(n)
    rw = np.ones(n)
    res = np.zeros(n)
    for it in range(1, iterations + 2):
        nleft, nright, last, i = 0, ns - 1, -1, 0
        while True:
            if nright < n - 1:
                d1, d2 = x[i] - x[nleft], x[nright + 1] - x[i]
                if d1 > d2:
                    nleft += 1
                    nright += 1
                    continue
            fit = _lowest(x, y, x[i], nleft, nright, it > 1, rw)
            ys[i] = y[i] if fit is None else fit
            if last < i - 1:  # interpolate the points skipped within delta
                denom = x[i] - x[last]
                for j in range(last + 1, i):
                    alpha = (x[j] - x[last]) / denom
                    ys[j] = alpha * ys[i] + (1.0 - alpha) * ys[last]
            last = i
            cut = x[last] + delta
            i = last + 1
            while i < n:
                if x[i] > cut:
                    break
                if x[i] == x[last]:
                    ys[i] = ys[last]
                    last = i
                i += 1
            i = max(last + 1, i - 1)
            if last >= n - 1:
                break
        res = y - ys
        sc = float(np.sum(np.abs(res))) / n
        if it > iterations:
            break
        ar = np.sort(np.abs(res))
        m1 = n // 2
        cmad = 3.0 * (ar[m1] + ar[n - m1 - 1]) if n % 2 == 0 else 6.0 * ar[m1]
        if cmad < 1e-7 * sc:
            break
        c9, c1 = 0.999 * cmad, 0.001 * cmad
        r = np.abs(res)
        rw = np.where(r <= c1, 1.0, np.where(r <= c9, (1.0 - (r / cmad) ** 2) ** 2, 0.0))
    out = np.empty(n)
    out[order] = ys
    return out


def independent_filtering(base_mean: pd.Series, p_values: pd.Series, alpha: float) -> pd.Series:
    """R ``pvalueAdjustment(independentFiltering = TRUE)``: BH on the genes above R's baseMean cutoff."""
    bm = base_mean.to_numpy(np.float64)
    p = p_values.to_numpy(np.float64)
    lower = float(np.mean(bm == 0))
    upper = 0.95 if lower < 0.95 else 1.0
    theta = np.linspace(lower, upper, 50)
    cutoffs = np.quantile(bm, theta)
    padj = np.full((bm.size, theta.size), np.nan)
    for k, cutoff in enumerate(cutoffs):
        use = (bm >= cutoff) & ~np.isnan(p)
        if use.any():
            padj[use, k] = false_discovery_control(p[use], method="bh")
    with np.errstate(invalid="ignore"):
        num_rej = np.sum(padj < alpha, axis=0)
    fit = r_lowess(theta, num_rej.astype(np.float64), f=1 / 5)
    if num_rej.max() <= 10:
        j = 0
    else:
        pos = num_rej > 0
        residual = num_rej[pos] - fit[pos] if pos.any() else np.zeros(1)
        thresh = fit.max() - np.sqrt(np.mean(residual ** 2))
        above = np.flatnonzero(num_rej > thresh)
        j = int(above[0]) if above.size else 0
    return pd.Series(padj[:, j], index=p_values.index)


def r_stats_class():
    """pydeseq2's ``DeseqStats`` with R's independent filtering (imported lazily: pydeseq2 is heavy)."""
    from pydeseq2.ds import DeseqStats

    class RDeseqStats(DeseqStats):
        """``DeseqStats`` whose ``padj`` follows R's ``results()`` (see module notes)."""

        def _independent_filtering(self) -> None:
            if not hasattr(self, "p_values"):
                self.run_wald_test()
            self.padj = independent_filtering(self.base_mean, self.p_values, self.alpha)

    return RDeseqStats
