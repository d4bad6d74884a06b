"""R's ``dnbinom(x, mu =, size =, log = TRUE)``, ``dnorm(log = TRUE)`` and ``sum()`` in numba, rounding as R 4.2 does.

R DESeq2 refits divergent genes with ``optim(method = "L-BFGS-B")`` and no gradient, so R's optim
differentiates the objective by central differences (step 1e-3): an objective that differs from R's
in the last bits gives a gradient that differs by ~1e-10, and the optimiser's path drifts from R's.
This module computes the objective with R's own formulas, written from the published algorithms and
R's documented behaviour:

- ``dnbinom_mu`` (R >= 4.0): ``x == 0``: ``size * log(size / (size + mu))`` when ``size < mu``, else
  ``size * log1p(-mu / (size + mu))``; otherwise ``log(size / (size + x)) + dbinom_raw(size, x + size,
  size / (size + mu), mu / (size + mu))``, with Catherine Loader's saddle-point binomial density
  (Loader 2000, "Fast and accurate computation of binomial probabilities"): Stirling's-series error
  ``stirlerr`` (tabulated at half integers up to 15, the series above 15, and below 15 from
  ``lgamma``) and the deviance term ``bd0`` (a series when ``|x - np| < 0.1 (x + np)``).
- R's ``lgammafn`` below 16 (the ``stirlerr`` of a non-integer size): W. Fullerton's (SLATEC, public
  domain) Chebyshev series for gamma on [1, 2] (22 terms) times ``(y + i)``, and ``log``; above 10
  Stirling's formula with the SLATEC ``lgammacor`` series (5 terms).
- ``sum()`` of doubles accumulates in x87 long double (64-bit significand) and rounds once at the
  end: emulated exactly with a double-double accumulator rounded to 64 significant bits after each
  addition (:func:`ld_add`, :func:`ld_sum`); :func:`ld_sum_fast` gets the same result from a
  compensated sum and a bound on the long double's rounding errors, and says when it cannot decide
  (~3% of the sums of the DESeq2 objective, then summed by :func:`ld_sum`).
- ``dnorm(x, 0, s, log = TRUE) = -(log(sqrt(2 pi)) + 0.5 * z * z + log(s))`` with ``z = x / s``.

``log``, ``log1p`` and ``pow`` are the C library's, as in R.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["dnbinom_mu_log", "dnorm_log", "ld_add", "ld_sum", "ld_sum_fast", "lgammafn", "nb_parts", "nb_log_from_parts",
           "stirlerr"]

M_LN_SQRT_2PI = 0.918938533204672741780329736406  # log(sqrt(2*pi))
M_LN_2PI = 1.837877066409345483560659472811  # log(2*pi)

# stirlerr(n) at n = 0, 0.5, ..., 15: lgamma(n + 1) - (n + 1/2) log(n) + n - log(sqrt(2 pi)), computed
# with 60-digit decimal arithmetic and rounded to double
_SFERR_HALVES = np.array([
    0.0, 0.15342640972002736, 0.08106146679532726, 0.05481412105191765, 0.0413406959554093,
    0.03316287351993629, 0.02767792568499834, 0.023746163656297496, 0.020790672103765093,
    0.018488450532673187, 0.016644691189821193, 0.015134973221917378, 0.013876128823070748,
    0.012810465242920227, 0.01189670994589177, 0.011104559758206917, 0.010411265261972096,
    0.009799416126158804, 0.009255462182712733, 0.008768700134139386, 0.00833056343336287,
    0.00793411456431402, 0.007573675487951841, 0.007244554301320383, 0.00694284010720953,
    0.006665247032707682, 0.006408994188004207, 0.006171712263039458, 0.0059513701127588475,
    0.0057462165130101155, 0.005554733551962801])
_S0 = 1.0 / 12.0
_S1 = 1.0 / 360.0
_S2 = 1.0 / 1260.0
_S3 = 1.0 / 1680.0
_S4 = 1.0 / 1188.0

# SLATEC (W. Fullerton, public domain) Chebyshev coefficients: GAMCS (gamma on [1, 2]) and ALGMCS
# (the log-gamma correction above 10); R uses the first 22 and 5
_GAMCS = np.array([
    +.8571195590989331421920062399942e-2, +.4415381324841006757191315771652e-2,
    +.5685043681599363378632664588789e-1, -.4219835396418560501012500186624e-2,
    +.1326808181212460220584006796352e-2, -.1893024529798880432523947023886e-3,
    +.3606925327441245256578082217225e-4, -.6056761904460864218485548290365e-5,
    +.1055829546302283344731823509093e-5, -.1811967365542384048291855891166e-6,
    +.3117724964715322277790254593169e-7, -.5354219639019687140874081024347e-8,
    +.9193275519859588946887786825940e-9, -.1577941280288339761767423273953e-9,
    +.2707980622934954543266540433089e-10, -.4646818653825730144081661058933e-11,
    +.7973350192007419656460767175359e-12, -.1368078209830916025799499172309e-12,
    +.2347319486563800657233471771688e-13, -.4027432614949066932766570534699e-14,
    +.6910051747372100912138336975257e-15, -.1185584500221992907052387126192e-15])
_ALGMCS = np.array([
    +.1666389480451863247205729650822e+0, -.1384948176067563840732986059135e-4,
    +.9810825646924729426157171547487e-8, -.1809129475572494194263306266719e-10,
    +.6221098041892605227126015543416e-13])


@njit(cache=True)
def _cheb(x, a):
    """Clenshaw's recurrence for a Chebyshev series at ``x`` in [-1, 1] (halved first coefficient)."""
    twox = x * 2.0
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    n = a.size
    for i in range(1, n + 1):
        b2 = b1
        b1 = b0
        b0 = twox * b1 - b2 + a[n - i]
    return (b0 - b2) * 0.5


@njit(cache=True)
def lgammafn(x):
    """``log(gamma(x))`` for ``0 < x``, as R computes it (Chebyshev series up to 10, Stirling above)."""
    if x <= 10.0:
        n = int(x)
        y = x - n
        n -= 1
        value = _cheb(y * 2.0 - 1.0, _GAMCS) + 0.9375
        if n < 0:  # 0 < x < 1: gamma(x) = gamma(1 + y) / x
            value = value / x
        else:
            for i in range(1, n + 1):
                value *= y + i
        return math.log(abs(value))
    tmp = 10.0 / x
    cor = _cheb(tmp * tmp * 2.0 - 1.0, _ALGMCS) / x
    return M_LN_SQRT_2PI + (x - 0.5) * math.log(x) - x + cor


@njit(cache=True)
def stirlerr(n):
    """``log(n!) - log(sqrt(2 pi n) (n / e)^n)`` (Loader's Stirling-series error), as R 4.2."""
    if n <= 15.0:
        nn = n + n
        if nn == int(nn):
            return _SFERR_HALVES[int(nn)]
        return lgammafn(n + 1.0) - (n + 0.5) * math.log(n) + n - M_LN_SQRT_2PI
    nn = n * n
    if n > 500.0:
        return (_S0 - _S1 / nn) / n
    if n > 80.0:
        return (_S0 - (_S1 - _S2 / nn) / nn) / n
    if n > 35.0:
        return (_S0 - (_S1 - (_S2 - _S3 / nn) / nn) / nn) / n
    return (_S0 - (_S1 - (_S2 - (_S3 - _S4 / nn) / nn) / nn) / nn) / n


@njit(cache=True)
def bd0(x, np_):
    """Loader's deviance term ``x log(x / np) + np - x``, by its series when ``x`` is near ``np``."""
    if abs(x - np_) < 0.1 * (x + np_):
        v = (x - np_) / (x + np_)
        s = (x - np_) * v
        if abs(s) < 2.2250738585072014e-308:
            return s
        ej = 2.0 * x * v
        v = v * v
        for j in range(1, 1000):
            ej *= v
            s1 = s + ej / ((j << 1) + 1)
            if s1 == s:
                return s1
            s = s1
    return x * math.log(x / np_) + np_ - x


@njit(cache=True)
def nb_parts(x, size):
    """The parts of ``dnbinom(x, mu, size, log = TRUE)`` that do not depend on ``mu`` (``x > 0``):
    ``(log(size / (size + x)), stirlerr(n) - stirlerr(size) - stirlerr(n - size), 0.5 * lf, n)`` with
    ``n = x + size`` and ``lf = log(2 pi) + log(size) + log1p(-size / n)``."""
    n = x + size
    lp = math.log(size / n)
    a = stirlerr(n) - stirlerr(size) - stirlerr(n - size)
    lf = M_LN_2PI + math.log(size) + math.log1p(-size / n)
    return lp, a, 0.5 * lf, n


@njit(cache=True)
def nb_log_from_parts(x, size, mu, lp, a, half_lf, n):
    """``dnbinom(x, mu = mu, size = size, log = TRUE)`` from :func:`nb_parts` (same rounding as R)."""
    if x == 0.0:
        if size < mu:
            return size * math.log(size / (size + mu))
        return size * math.log1p(-mu / (size + mu))
    p = size / (size + mu)
    q = mu / (size + mu)
    if p == 0.0 or q == 0.0:  # mu = inf or 0: dbinom_raw's edge cases (density 0)
        return -math.inf
    lc = a - bd0(size, n * p) - bd0(n - size, n * q)
    return lp + (lc - half_lf)


@njit(cache=True)
def dnbinom_mu_log(x, size, mu):
    """R's ``dnbinom(x, size = size, mu = mu, log = TRUE)`` for integer ``x >= 0``, ``0 < size < 1e10 x``."""
    if x == 0.0:
        return nb_log_from_parts(x, size, mu, 0.0, 0.0, 0.0, 0.0)
    if x < 1e-10 * size:  # R's formula for a huge size (Poisson limit); DESeq2's alpha >= 1e-8 never gets here
        p = math.log(size / (1.0 + size / mu)) if size < mu else math.log(mu / (1.0 + mu / size))
        return x * p - mu - math.lgamma(x + 1.0) + math.log1p(x * (x - 1.0) / (2.0 * size))
    lp, a, half_lf, n = nb_parts(x, size)
    return nb_log_from_parts(x, size, mu, lp, a, half_lf, n)


@njit(cache=True)
def dnorm_log(x, sigma):
    """R's ``dnorm(x, 0, sigma, log = TRUE)`` for finite ``x`` and ``sigma > 0``."""
    z = abs(x / sigma)
    return -(M_LN_SQRT_2PI + 0.5 * z * z + math.log(sigma))


@njit(cache=True)
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@intrinsic
def _bits(typingctx, x):
    """The IEEE bits of a double as int64 (a bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, i):
    """The double whose IEEE bits are ``i`` (a bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@njit(cache=True)
def ld_add(hi, lo, d):
    """``(hi + lo) + d`` rounded to a 64-bit significand (x87 long double, round to nearest even).

    The accumulator is the exact pair ``hi + lo`` (``hi`` its double rounding); returns the new pair.
    """
    s, e = _two_sum(hi, d)
    t = e + lo  # rounds only far below the long double's quantum; its error matters for ties alone
    a, b = _two_sum(s, t)  # a + b = s + t exactly, |b| <= ulp(a) / 2
    if b == 0.0:
        return a, 0.0  # what t dropped is far below half the quantum: no rounding
    bits = _bits(a)
    expo = (bits >> 52) & 0x7FF  # biased exponent of a
    if expo == 0x7FF or expo < 64:  # inf/nan, or too small for the 64-bit quantum below
        return a + b, 0.0
    if bits & 0xFFFFFFFFFFFFF == 0 and (b < 0.0) == (a > 0.0) and b != 0.0:
        expo -= 1  # |a| a power of two, the exact value just below it
    q = _from_bits((expo - 63) << 52)  # the long double's quantum: 2^(exponent - 63)
    big = 1.5 * 4503599627370496.0 * q  # 1.5 * 2^52 * q: b + big rounds b to a multiple of q, ties to even
    r = (b + big) - big
    if abs(b - r) == 0.5 * q:  # a tie in b: the part of e + lo that t dropped decides
        c = _two_sum(e, lo)[1]
        if c > 0.0 and r < b:
            r += q
        elif c < 0.0 and r > b:
            r -= q
    return _two_sum(a, r)


@njit(cache=True)
def ld_sum_fast(v, start, s, c, bnd):
    """R's long-double ``sum()`` of ``v[start:]`` continued from a compensated state, without
    emulating every rounding when that cannot matter.

    ``(s, c, bnd)`` is the state before ``v[start]`` (``(0, 0, 0)`` to sum all): ``s + c`` the exact
    sum so far to ~1e-30 (compensated summation) and ``bnd`` a bound on how far R's long double
    accumulator can be from it (half its quantum, ``|partial sum| 2^-64``, per addition, doubled).
    Returns ``(double result, ok)``: ``ok`` False when the exact sum is within that bound of a
    rounding boundary of the result, where only :func:`ld_sum` (every rounding emulated) decides.
    """
    for j in range(start, v.size):
        d = v[j]
        t = s + d
        bb = t - s
        c += (s - (t - bb)) + (d - bb)
        s = t
        bnd += abs(t) + abs(d) * 1e-10
    bnd *= 1.0842021724855044e-19  # 2^-63
    h = s + c
    r = (s - h) + c  # the exact sum minus h, to ~1e-30 relative
    bits = _bits(h)
    expo = (bits >> 52) & 0x7FF
    if expo < 54 or expo == 0x7FF:
        return h, False
    half = _from_bits((expo - 53) << 52)  # half an ulp of h: the distance to the rounding boundaries
    if bits & 0xFFFFFFFFFFFFF == 0 and (r < 0.0) == (h > 0.0):
        half *= 0.5  # |h| a power of two and the sum below it in magnitude: the spacing halves
    return h, abs(r) + bnd < half


@njit(cache=True)
def ld_sum(v):
    """R's ``sum()`` of a double vector: long double accumulation, one rounding to double at the end."""
    hi = 0.0
    lo = 0.0
    for i in range(v.size):
        hi, lo = ld_add(hi, lo, v[i])
    return hi
