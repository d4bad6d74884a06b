"""dormsig.de._nbinom against R 4.2.2: dnbinom(log = TRUE) bit for bit, and R's long double sum()."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dormsig.de._nbinom import dnbinom_mu_log, dnorm_log, ld_sum, ld_sum_fast, lgammafn, stirlerr

DATA = Path(__file__).parent / "data" / "de" / "r_dnbinom"
_hex = np.vectorize(float.fromhex)


def test_dnbinom_bit_equal_to_r() -> None:
    """4,000 (count, size, mu) from the CTC data (make_grid.py; R values from make_dnbinom.R)."""
    d = pd.read_csv(DATA / "dnbinom.csv.gz")
    x, size, mu, ref = (_hex(d[c].to_numpy()) for c in ["x", "size", "mu", "logd"])
    ours = np.array([dnbinom_mu_log(a, b, c) for a, b, c in zip(x, size, mu, strict=True)])
    assert (x == 0).sum() > 1000 and (x > 0).sum() > 1000
    assert (ours == ref).all(), np.abs(ours - ref).max()


def test_lgamma_and_stirlerr_against_closed_forms() -> None:
    assert lgammafn(1.0) == 0.0 and lgammafn(2.0) == 0.0
    for x in (0.3, 1.5, 2.25, 7.5, 10.5, 15.7):
        assert abs(lgammafn(x) - float(np.log(np.abs(math.gamma(x))))) < 1e-14 * max(1, abs(lgammafn(x)))
    # stirlerr(n) = lgamma(n+1) - (n+1/2) log n + n - log sqrt(2 pi), either side of R's 15 switch
    for n in (0.5, 3.3, 14.9, 15.2, 40.0, 100.0, 1000.0):
        exact = math.lgamma(n + 1) - (n + 0.5) * np.log(n) + n - 0.5 * np.log(2 * np.pi)
        assert abs(stirlerr(n) - exact) < 1e-12


def test_long_double_sum() -> None:
    """Values from R 4.2.2: sum(c(1, 2^-53, 2^-53)) is 1 + 2^-52 (a double sum gives 1);
    sum(c(1, 2^-64, 2^-64, -1)) is 0 (1 + 2^-64 ties to even in 64 bits); sum(c(1, 2^-60, 2^-60)) is 1."""
    assert ld_sum(np.array([1.0, 2.0 ** -53, 2.0 ** -53])) == 1.0 + 2.0 ** -52
    assert np.array([1.0, 2.0 ** -53, 2.0 ** -53]).cumsum()[-1] == 1.0
    assert ld_sum(np.array([1.0, 2.0 ** -64, 2.0 ** -64, -1.0])) == 0.0
    assert ld_sum(np.array([1.0, 2.0 ** -60, 2.0 ** -60])) == 1.0
    assert ld_sum(np.array([1.0, 2.0 ** -63, 2.0 ** -64, -1.0])) == 2.0 ** -62  # 1 + 3*2^-64 -> 1 + 2^-62
    assert ld_sum(np.array([1e300, 1.0, -1e300])) == 0.0
    assert dnorm_log(0.0, 1.0) == -0.918938533204672741780329736406


def test_fast_sum_equals_emulated_long_double_sum() -> None:
    """The compensated shortcut gives R's long-double result whenever it claims to (and falls back rarely)."""
    rng = np.random.default_rng(3)
    n_ok = 0
    for i in range(20000):
        v = -np.abs(rng.normal(0, 5, 29)) * rng.choice([1, 1e-3, 1e-6], 29)
        if i % 2:
            v[::3] *= -1
        if i % 5 == 0:
            v = np.round(v * 2.0 ** 20) / 2.0 ** 20  # short mantissas: exact ties
        h, ok = ld_sum_fast(v, 0, 0.0, 0.0, 0.0)
        if ok:
            n_ok += 1
            assert h == ld_sum(v)
    assert n_ok > 0.9 * 20000
