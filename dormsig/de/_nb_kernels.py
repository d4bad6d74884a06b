"""Numba kernels for negative-binomial GLM fitting, one gene per parallel iteration.

These are the numerical cores of :class:`dormsig.de.inference.FastInference`. Each kernel
loops over genes with ``numba.prange`` and does per gene exactly what the corresponding
PyDESeq2 0.5 function in ``pydeseq2.utils`` does (same start, same update, same stopping
rule), so that the results agree to floating-point accuracy. Genes for which PyDESeq2 would
leave its fast path (diverging IRLS, non-convergence) are flagged so that the caller can
hand them to PyDESeq2's own per-gene routine.

Arrays are gene-major: ``counts`` and ``mu`` are ``(n_genes, n_samples)`` C-contiguous
float64, so that each gene reads one contiguous row. No I/O here.
"""

from __future__ import annotations

import math

import llvmlite.binding as llvm_binding
import numpy as np
from numba import njit, prange, types
from numba.extending import get_cython_function_address

# scipy's own gammaln and digamma, so that the likelihood (and with it PyDESeq2's
# deviance-based stopping rule) and L-BFGS-B's first gradient test are evaluated bit for bit
# as PyDESeq2 evaluates them; libm's lgamma differs in the last bits, which matters at
# alpha ~ 1e-8 where terms of size 1e9 cancel. The functions are bound by symbol name (not
# by address) so that numba can cache the compiled kernels on disk.
_SIG = types.double(types.double)
for _sym, _name in (("dormsig_scipy_gammaln", "gammaln"), ("dormsig_scipy_psi", "__pyx_fuse_1psi")):
    llvm_binding.add_symbol(_sym, get_cython_function_address("scipy.special.cython_special", _name))
_gammaln = types.ExternalFunction("dormsig_scipy_gammaln", _SIG)
_psi = types.ExternalFunction("dormsig_scipy_psi", _SIG)

# --------------------------------------------------------------------------- special functions


@njit(cache=True)
def _digamma(x: float) -> float:
    """Digamma function for x > 0 (recurrence to x >= 6, then the asymptotic series)."""
    res = 0.0
    while x < 6.0:
        res -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    res += (
        math.log(x)
        - 0.5 / x
        - f
        * (
            1.0 / 12.0
            - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f * (1.0 / 132.0))))
        )
    )
    return res


@njit(cache=True)
def _trigamma(x: float) -> float:
    """Trigamma function for x > 0 (recurrence to x >= 6, then the asymptotic series)."""
    res = 0.0
    while x < 6.0:
        res += 1.0 / (x * x)
        x += 1.0
    f = 1.0 / (x * x)
    res += (
        1.0 / x
        + 0.5 * f
        + (1.0 / x)
        * f
        * (1.0 / 6.0 - f * (1.0 / 30.0 - f * (1.0 / 42.0 - f * (1.0 / 30.0 - f * (5.0 / 66.0)))))
    )
    return res


@njit(cache=True)
def _psi_diff(y: float, r: float) -> tuple[float, float]:
    """Return (digamma(r) - digamma(y + r), trigamma(r) - trigamma(y + r)).

    For small integer ``y`` the differences are exact finite sums; this avoids the
    cancellation of two nearly equal numbers when ``r = 1 / alpha`` is large.
    """
    if y == 0.0:
        return 0.0, 0.0
    if y < 30.0 and y == math.floor(y):
        d1 = 0.0
        d2 = 0.0
        k = 0.0
        while k < y:
            q = 1.0 / (r + k)
            d1 -= q
            d2 += q * q
            k += 1.0
        return d1, d2
    return _digamma(r) - _digamma(y + r), _trigamma(r) - _trigamma(y + r)


# --------------------------------------------------------------------------- small dense algebra


@njit(cache=True)
def _cholesky(a: np.ndarray, out: np.ndarray) -> bool:
    """Lower Cholesky factor of a small SPD matrix into ``out``; False if not positive definite."""
    p = a.shape[0]
    for j in range(p):
        s = a[j, j]
        for k in range(j):
            s -= out[j, k] * out[j, k]
        if not s > 0.0:
            return False
        d = math.sqrt(s)
        out[j, j] = d
        for i in range(j + 1, p):
            t = a[i, j]
            for k in range(j):
                t -= out[i, k] * out[j, k]
            out[i, j] = t / d
        for i in range(j):
            out[i, j] = 0.0
    return True


@njit(cache=True)
def _chol_solve(lo: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Solve ``L L^T x = b`` given the lower factor ``L``."""
    p = lo.shape[0]
    for i in range(p):
        s = b[i]
        for k in range(i):
            s -= lo[i, k] * out[k]
        out[i] = s / lo[i, i]
    for i in range(p - 1, -1, -1):
        s = out[i]
        for k in range(i + 1, p):
            s -= lo[k, i] * out[k]
        out[i] = s / lo[i, i]


@njit(cache=True)
def _chol_inverse(lo: np.ndarray, out: np.ndarray) -> None:
    """Inverse of ``L L^T`` given the lower factor ``L``."""
    p = lo.shape[0]
    e = np.zeros(p)
    col = np.empty(p)
    for j in range(p):
        e[:] = 0.0
        e[j] = 1.0
        _chol_solve(lo, e, col)
        for i in range(p):
            out[i, j] = col[i]


@njit(cache=True)
def _gram(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """``out = X^T diag(w) X``."""
    n, p = x.shape
    for j in range(p):
        for k in range(j + 1):
            s = 0.0
            for i in range(n):
                s += x[i, j] * w[i] * x[i, k]
            out[j, k] = s
            out[k, j] = s


# --------------------------------------------------------------------------- NB likelihood


@njit(cache=True)
def _pairwise_block(a: np.ndarray, start: int, n: int) -> float:
    """numpy's pairwise-sum leaf (n <= 128): eight accumulators, then the remainder."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    r = np.empty(8)
    for j in range(8):
        r[j] = a[start + j]
    i = 8
    while i < n - (n % 8):
        for j in range(8):
            r[j] += a[start + i + j]
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        res += a[start + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise_sum(a: np.ndarray, n: int) -> float:
    """numpy's pairwise summation of ``a[:n]`` (same rounding as ``ndarray.sum``).

    numpy splits recursively at ``n // 2`` rounded down to a multiple of 8 down to blocks of
    at most 128; the recursion is unrolled here with an explicit stack.
    """
    if n <= 128:
        return _pairwise_block(a, 0, n)
    ts = np.empty(128, dtype=np.int64)
    tn = np.empty(128, dtype=np.int64)
    tp = np.empty(128, dtype=np.int64)
    res = np.empty(128)
    k = 0
    r = 0
    ts[0], tn[0], tp[0] = 0, n, 0
    k = 1
    while k > 0:
        k -= 1
        s0, m, ph = ts[k], tn[k], tp[k]
        if m <= 128:
            res[r] = _pairwise_block(a, s0, m)
            r += 1
        elif ph == 0:
            n2 = m // 2
            n2 -= n2 % 8
            ts[k], tn[k], tp[k] = s0, m, 1  # combine after both halves
            ts[k + 1], tn[k + 1], tp[k + 1] = s0 + n2, m - n2, 0
            ts[k + 2], tn[k + 2], tp[k + 2] = s0, n2, 0
            k += 3
        else:
            res[r - 2] = res[r - 2] + res[r - 1]
            r -= 1
    return res[0]


@njit(cache=True)
def _nb_nll(y: np.ndarray, mu: np.ndarray, alpha: float) -> float:
    """Negative log-likelihood of NB(mu, alpha), as ``pydeseq2.utils.nb_nll`` (scalar alpha).

    Same operations in the same order (and the same gammaln) as PyDESeq2.
    """
    n = y.shape[0]
    r = 1.0 / alpha
    lgr = _gammaln(r)
    terms = np.empty(n)
    for i in range(n):
        logbinom = _gammaln(y[i] + r) - _gammaln(y[i] + 1.0) - lgr
        terms[i] = (-logbinom + (y[i] + r) * math.log(r + mu[i])) - y[i] * math.log(mu[i])
    return n * r * math.log(alpha) + _pairwise_sum(terms, n)


# --------------------------------------------------------------------------- IRLS


@njit(parallel=True, cache=True)
def irls_kernel(
    counts: np.ndarray,
    size_factors: np.ndarray,
    x: np.ndarray,
    disp: np.ndarray,
    beta_init: np.ndarray,
    min_mu: float,
    beta_tol: float,
    max_beta: float,
    maxiter: int,
    ridge: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """IRLS for a NB GLM with log link, per gene, as ``pydeseq2.utils.irls_solver``.

    Parameters
    ----------
    counts
        ``(G, n)`` counts.
    size_factors
        ``(n,)`` size factors.
    x
        ``(n, p)`` design matrix.
    disp
        ``(G,)`` dispersions.
    beta_init
        ``(G, p)`` starting coefficients.
    min_mu, beta_tol, max_beta, maxiter
        As in PyDESeq2.
    ridge
        Diagonal ridge added to ``X^T W X`` (PyDESeq2 uses 1e-6).

    Returns
    -------
    beta, mu, hat_diagonals, fallback
        ``(G, p)``, ``(G, n)`` unthresholded means, ``(G, n)`` hat diagonals, and a
        ``(G,)`` mask of genes where PyDESeq2 switches to its optimiser (|beta| > max_beta
        or ``maxiter`` reached); their other outputs are meaningless.
    """
    n_genes, n = counts.shape
    p = x.shape[1]
    beta_out = np.empty((n_genes, p))
    mu_out = np.empty((n_genes, n))
    hat_out = np.empty((n_genes, n))
    fallback = np.zeros(n_genes, dtype=np.bool_)
    for g in prange(n_genes):
        y = counts[g]
        a = disp[g]
        beta = beta_init[g].copy()
        mu = np.empty(n)
        w = np.empty(n)
        wz = np.empty(n)
        hmat = np.empty((p, p))
        lo = np.empty((p, p))
        rhs = np.empty(p)
        beta_hat = np.empty(p)
        for i in range(n):
            eta = 0.0
            for j in range(p):
                eta += x[i, j] * beta[j]
            mu[i] = max(size_factors[i] * math.exp(eta), min_mu)
        dev = 1000.0
        dev_ratio = 1.0
        it = 0
        while dev_ratio > beta_tol:
            for i in range(n):
                w[i] = mu[i] / (1.0 + mu[i] * a)
                z = math.log(mu[i] / size_factors[i]) + (y[i] - mu[i]) / mu[i]
                wz[i] = w[i] * z
            _gram(x, w, hmat)
            for j in range(p):
                hmat[j, j] += ridge
                s = 0.0
                for i in range(n):
                    s += x[i, j] * wz[i]
                rhs[j] = s
            ok = _cholesky(hmat, lo)
            it += 1
            if not ok:
                fallback[g] = True
                break
            _chol_solve(lo, rhs, beta_hat)
            diverging = False
            for j in range(p):
                if abs(beta_hat[j]) > max_beta:
                    diverging = True
            if diverging or it >= maxiter:
                fallback[g] = True
                break
            for j in range(p):
                beta[j] = beta_hat[j]
            for i in range(n):
                eta = 0.0
                for j in range(p):
                    eta += x[i, j] * beta[j]
                mu[i] = max(size_factors[i] * math.exp(eta), min_mu)
            old_dev = dev
            dev = -2.0 * _nb_nll(y, mu, a)
            dev_ratio = abs(dev - old_dev) / (abs(dev) + 0.1)
        # hat diagonals W^1/2 X (X^T W X + ridge)^-1 X^T W^1/2 with the thresholded mu
        for i in range(n):
            w[i] = mu[i] / (1.0 + mu[i] * a)
        _gram(x, w, hmat)
        for j in range(p):
            hmat[j, j] += ridge
        if _cholesky(hmat, lo):
            _chol_inverse(lo, hmat)
            for i in range(n):
                s = 0.0
                for j in range(p):
                    for k in range(p):
                        s += x[i, j] * hmat[j, k] * x[i, k]
                hat_out[g, i] = w[i] * s
        else:
            fallback[g] = True
        for j in range(p):
            beta_out[g, j] = beta[j]
        for i in range(n):
            eta = 0.0
            for j in range(p):
                eta += x[i, j] * beta[j]
            mu_out[g, i] = size_factors[i] * math.exp(eta)
    return beta_out, mu_out, hat_out, fallback


# --------------------------------------------------------------------------- dispersion MLE


@njit(cache=True)
def _alpha_objective(
    t: float,
    y: np.ndarray,
    mu: np.ndarray,
    x: np.ndarray,
    t_hat: float,
    prior_var: float,
    cr_reg: bool,
    prior_reg: bool,
    want_derivs: bool,
    m: np.ndarray,
    d: np.ndarray,
    e: np.ndarray,
    lo: np.ndarray,
    minv: np.ndarray,
    w: np.ndarray,
) -> tuple[float, float, float, bool]:
    """Objective of ``pydeseq2.utils.fit_alpha_mle`` in log-alpha, with 1st and 2nd derivatives.

    Returns ``(f, df/dt, d2f/dt2, ok)`` where ``t = log(alpha)``; ``ok`` is False when the
    Cox-Reid matrix is not positive definite.
    """
    n = y.shape[0]
    p = x.shape[1]
    a = math.exp(t)
    r = 1.0 / a
    f = _nb_nll(y, mu, a)
    g = 0.0
    h = 0.0
    if want_derivs:
        fr = 0.0
        frr = 0.0
        for i in range(n):
            d1, d2 = _psi_diff(y[i], r)
            rm = r + mu[i]
            fr += d1 + math.log1p(mu[i] * a) + (y[i] - mu[i]) / rm
            frr += d2 - mu[i] / (r * rm) + (mu[i] - y[i]) / (rm * rm)
        g = -r * fr
        h = r * r * frr + r * fr
    if cr_reg:
        for i in range(n):
            w[i] = mu[i] / (1.0 + mu[i] * a)
        _gram(x, w, m)
        if not _cholesky(m, lo):
            return f, g, h, False
        logdet = 0.0
        for j in range(p):
            logdet += 2.0 * math.log(lo[j, j])
        f += 0.5 * logdet
        if want_derivs:
            _chol_inverse(lo, minv)
            for i in range(n):
                w[i] = w[i] * w[i]
            _gram(x, w, d)
            for i in range(n):
                w[i] = mu[i] / (1.0 + mu[i] * a)
                w[i] = w[i] * w[i] * w[i]
            _gram(x, w, e)
            tr_md = 0.0
            tr_me = 0.0
            tr_mdmd = 0.0
            # P = Minv D; tr(P) ; tr(P P) ; tr(Minv E)
            for j in range(p):
                for k in range(p):
                    tr_md += minv[j, k] * d[k, j]
                    tr_me += minv[j, k] * e[k, j]
            for j in range(p):
                for k in range(p):
                    pjk = 0.0
                    pkj = 0.0
                    for q in range(p):
                        pjk += minv[j, q] * d[q, k]
                        pkj += minv[k, q] * d[q, j]
                    tr_mdmd += pjk * pkj
            ga = -0.5 * tr_md
            gaa = 0.5 * (-tr_mdmd + 2.0 * tr_me)
            g += a * ga
            h += a * a * gaa + a * ga
    if prior_reg:
        f += (t - t_hat) ** 2 / (2.0 * prior_var)
        if want_derivs:
            g += (t - t_hat) / prior_var
            h += 1.0 / prior_var
    return f, g, h, True


@njit(cache=True)
def _pydeseq2_dloss(
    t: float,
    y: np.ndarray,
    mu: np.ndarray,
    x: np.ndarray,
    t_hat: float,
    prior_var: float,
    cr_reg: bool,
    prior_reg: bool,
    m: np.ndarray,
    lo: np.ndarray,
    minv: np.ndarray,
    w: np.ndarray,
) -> float:
    """d loss / d log-alpha computed as ``pydeseq2.utils.fit_alpha_mle``'s ``dloss`` does.

    Near alpha = 1e-8 this gradient is dominated by rounding (a sum of O(1e-16) terms times
    1e16), and L-BFGS-B's first test compares it with 1e-5; evaluating it with the same
    functions in the same order makes that test decide as it does in PyDESeq2.
    """
    n = y.shape[0]
    p = x.shape[1]
    a = math.exp(t)
    r = 1.0 / a
    terms = np.empty(n)
    for i in range(n):
        terms[i] = ((_psi(r) - _psi(y[i] + r)) + math.log(1.0 + mu[i] * a)) + (y[i] - mu[i]) / (mu[i] + r)
    dnb = -(r**2 * _pairwise_sum(terms, n))
    reg = 0.0
    if cr_reg:
        for i in range(n):
            w[i] = mu[i] / (1.0 + mu[i] * a)
        _gram(x, w, m)
        if _cholesky(m, lo):
            _chol_inverse(lo, minv)
            for i in range(n):
                w[i] = -(w[i] * w[i])
            _gram(x, w, m)
            prod = np.empty(p * p)
            for j in range(p):
                for k in range(p):
                    prod[j * p + k] = minv[j, k] * m[j, k]
            reg += 0.5 * _pairwise_sum(prod, p * p) * a
    if prior_reg:
        reg += (t - t_hat) / prior_var
    return a * dnb + reg


@njit(parallel=True, cache=True)
def alpha_mle_kernel(
    counts: np.ndarray,
    mu: np.ndarray,
    x: np.ndarray,
    log_alpha_hat: np.ndarray,
    log_min: float,
    log_max: float,
    prior_var: float,
    cr_reg: bool,
    prior_reg: bool,
    maxiter: int,
    step_tol: float,
    pgtol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise the (Cox-Reid adjusted, optionally prior-regularised) NB NLL in log-alpha.

    Projected Newton with Armijo backtracking, started at ``log_alpha_hat`` clipped to the
    bounds, as PyDESeq2's L-BFGS-B is. Converged when the Newton step is below
    ``step_tol`` (interior) or the gradient points out of the box at a bound; like
    L-BFGS-B, a start whose gradient is at most ``pgtol`` in absolute value is kept.

    Returns
    -------
    log_alpha, converged
        ``(G,)`` estimates and ``(G,)`` convergence flags.
    """
    n_genes, n = counts.shape
    p = x.shape[1]
    out = np.empty(n_genes)
    conv = np.zeros(n_genes, dtype=np.bool_)
    for gidx in prange(n_genes):
        y = counts[gidx]
        mg = mu[gidx]
        m = np.empty((p, p))
        d = np.empty((p, p))
        e = np.empty((p, p))
        lo = np.empty((p, p))
        minv = np.empty((p, p))
        w = np.empty(n)
        t_hat = log_alpha_hat[gidx]
        t = min(max(t_hat, log_min), log_max)
        ok_all = True
        done = False
        for it in range(maxiter):
            f, g, h, ok = _alpha_objective(
                t, y, mg, x, t_hat, prior_var, cr_reg, prior_reg, True, m, d, e, lo, minv, w
            )
            if not (ok and math.isfinite(f) and math.isfinite(g)):
                ok_all = False
                break
            if (t <= log_min and g > 0.0) or (t >= log_max and g < 0.0):
                done = True
                break
            if it == 0:
                # L-BFGS-B's first test: a start whose projected gradient is below pgtol is returned
                g0 = _pydeseq2_dloss(t, y, mg, x, t_hat, prior_var, cr_reg, prior_reg, m, lo, minv, w)
                if (t <= log_min and g0 > 0.0) or (t >= log_max and g0 < 0.0) or abs(g0) <= pgtol:
                    done = True
                    break
            if h > 0.0 and math.isfinite(h):
                step = -g / h
                if abs(step) < step_tol:
                    done = True
                    break
            else:
                step = -g
            # Newton in log-alpha can overshoot far from the optimum: cap the step
            if step > 1.0:
                step = 1.0
            elif step < -1.0:
                step = -1.0
            accepted = False
            for _ls in range(50):
                t_new = min(max(t + step, log_min), log_max)
                if t_new == t:
                    break
                f_new, _g, _h, ok_new = _alpha_objective(
                    t_new, y, mg, x, t_hat, prior_var, cr_reg, prior_reg, False, m, d, e, lo, minv, w
                )
                if ok_new and f_new <= f + 1e-4 * g * (t_new - t):
                    accepted = True
                    break
                step *= 0.5
            if not accepted:
                # no descent possible: at the floating-point noise floor of f
                done = abs(g) < 1e-6 * max(1.0, abs(f))
                break
            if abs(t_new - t) < step_tol:
                t = t_new
                done = True
                break
            t = t_new
        out[gidx] = t
        conv[gidx] = done and ok_all
    return out, conv
