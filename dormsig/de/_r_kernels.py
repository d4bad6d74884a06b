"""Numba kernels that reproduce R DESeq2's C++ fitting routines (``src/DESeq2.cpp``, DESeq2 1.38).

One gene per ``prange`` iteration, no I/O, no pandas: the driver is :mod:`dormsig.de.r_inference`.

- :func:`fit_beta`: ``fitBeta`` with ``useQR = TRUE``: IRLS on the ridge-augmented weighted design,
  deviance-based stopping rule, a break (marked as not converged) as soon as a coefficient leaves
  ``|beta| <= 30`` on the natural-log scale, fitted means floored at ``minmu``; returns the
  sandwich covariance ``(X'WX + L)^-1 X'WX (X'WX + L)^-1`` and the hat diagonals.
- :func:`fit_disp`: ``fitDisp``: Armijo line search on log(alpha) of the Cox-Reid adjusted
  (optionally log-normal-prior penalised) NB log likelihood.
- :func:`fit_disp_grid`: ``fitDispGrid``: coarse then fine grid of 20 points each.
"""

from __future__ import annotations

import math

import llvmlite.binding as _llvm
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from dormsig.de._lbfgsb import _nb_value_and_fd_grad, nb_gene_parts
from dormsig.de._nb_kernels import _gammaln, _psi_diff

LARGE = 30.0  # R: |beta| above this (natural log) stops IRLS and sends the gene to optim

# --------------------------------------------------------------------------- LAPACK without numba's wrappers

# The routines numba's np.linalg.qr and '@' call (scipy's cython_lapack / cython_blas), registered under our
# own symbol names so that cached kernels can call them directly with buffers kept across IRLS iterations
# (numba's qr queries the workspace, allocates and copies at every call: ~15% of an IRLS iteration).
for _sym, (_mod, _fn) in {"dormsig_dgeqrf": ("scipy.linalg.cython_lapack", "dgeqrf"),
                          "dormsig_dorgqr": ("scipy.linalg.cython_lapack", "dorgqr"),
                          "dormsig_dgemv": ("scipy.linalg.cython_blas", "dgemv"),
                          "dormsig_dgetrf": ("scipy.linalg.cython_lapack", "dgetrf"),
                          "dormsig_dgesv": ("scipy.linalg.cython_lapack", "dgesv")}.items():
    _llvm.add_symbol(_sym, get_cython_function_address(_mod, _fn))


def _fortran_codegen(symbol: str):
    """Call ``symbol`` (a Fortran-convention routine returning nothing) with every argument by reference:
    an array as its data pointer, an integer as a C int (a uint8 as a char), a float as a double."""
    i8p = ir.IntType(8).as_pointer()

    def codegen(context, builder, sig, args):
        ptrs = []
        for ty, val in zip(sig.args, args, strict=True):
            if isinstance(ty, types.Array):
                ptrs.append(builder.bitcast(context.make_array(ty)(context, builder, val).data, i8p))
                continue
            if isinstance(ty, types.Integer) and ty.bitwidth == 8:
                slot = cgutils.alloca_once(builder, ir.IntType(8))
                builder.store(val, slot)
            elif isinstance(ty, types.Integer):
                slot = cgutils.alloca_once(builder, ir.IntType(32))
                builder.store(context.cast(builder, val, ty, types.int32), slot)
            else:
                slot = cgutils.alloca_once(builder, ir.DoubleType())
                builder.store(context.cast(builder, val, ty, types.float64), slot)
            ptrs.append(builder.bitcast(slot, i8p))
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p] * len(ptrs)),
                                            symbol)
        builder.call(fn, ptrs)
        return context.get_dummy_value()

    return codegen


@intrinsic
def _dgeqrf(typingctx, m, n, a, lda, tau, work, lwork, info):
    return types.void(m, n, a, lda, tau, work, lwork, info), _fortran_codegen("dormsig_dgeqrf")


@intrinsic
def _dorgqr(typingctx, m, n, k, a, lda, tau, work, lwork, info):
    return types.void(m, n, k, a, lda, tau, work, lwork, info), _fortran_codegen("dormsig_dorgqr")


@intrinsic
def _dgetrf(typingctx, m, n, a, lda, ipiv, info):
    return types.void(m, n, a, lda, ipiv, info), _fortran_codegen("dormsig_dgetrf")


@intrinsic
def _dgesv(typingctx, n, nrhs, a, lda, ipiv, b, ldb, info):
    return types.void(n, nrhs, a, lda, ipiv, b, ldb, info), _fortran_codegen("dormsig_dgesv")


@njit(cache=True)
def _all_finite(a: np.ndarray) -> bool:
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if not math.isfinite(a[i, j]):
                return False
    return True


@njit(cache=True)
def _slogdet_f(a: np.ndarray) -> tuple[float, float]:
    """``np.linalg.slogdet(a)`` as numba computes it (dgetrf, the sign from the pivots, the sum of the
    logs of the diagonal in order), factorising the Fortran-order ``a`` in place (no copy)."""
    n = a.shape[0]
    if not _all_finite(a):
        return np.linalg.slogdet(a)  # raises LinAlgError, as numba's slogdet
    ipiv = np.empty(n, dtype=np.int32)
    info = np.zeros(1, dtype=np.int32)
    _dgetrf(n, n, a, n, ipiv, info)
    if info[0] > 0:
        return 0.0, -np.inf
    sgn = 1
    for k in range(n):
        sgn = sgn + (ipiv[k] != (k + 1))
    sgn = sgn & 1
    if sgn == 0:
        sgn = -1
    acc = 0.0
    for k in range(n):
        v = a[k, k]
        if v < 0.0:
            sgn = -sgn
            v = -v
        acc = acc + np.log(v)
    return sgn + 0.0, acc


@njit(cache=True)
def _trace_solve_f(a: np.ndarray, b: np.ndarray) -> float:
    """``np.trace(np.linalg.solve(a, b))`` as numba computes it (dgesv on Fortran-order copies, the
    diagonal summed in order), on Fortran-order ``a`` and ``b`` overwritten in place (no copies)."""
    n = a.shape[0]
    if not (_all_finite(a) and _all_finite(b)):
        return np.trace(np.linalg.solve(a, b))  # raises LinAlgError, as numba's solve
    ipiv = np.empty(n, dtype=np.int32)
    info = np.zeros(1, dtype=np.int32)
    _dgesv(n, b.shape[1], a, n, ipiv, b, n, info)
    if info[0] > 0:
        raise np.linalg.LinAlgError("Matrix is singular to machine precision.")
    acc = 0.0
    for k in range(n):
        acc += b[k, k]
    return acc


@intrinsic
def _dgemv(typingctx, trans, m, n, alpha, a, lda, x, incx, beta, y, incy):
    return types.void(trans, m, n, alpha, a, lda, x, incx, beta, y, incy), _fortran_codegen("dormsig_dgemv")


@njit(cache=True)
def _nb_loglik_consts(y: np.ndarray, alpha: float, out: np.ndarray) -> None:
    """The ``mu``-free part of the NB log-likelihood term of each sample with ``y > 0`` (``r = 1 / alpha``):
    ``(lgamma(y + r) - lgamma(r)) - lgamma(y + 1)``, computed once per gene for :func:`_nb_loglik_c`."""
    r = 1.0 / alpha
    gr = _gammaln(r)
    for j in range(y.size):
        if y[j] != 0.0:
            out[j] = _gammaln(y[j] + r) - gr - _gammaln(y[j] + 1.0)


@njit(cache=True)
def _nb_loglik_c(y: np.ndarray, mu: np.ndarray, alpha: float, const: np.ndarray) -> float:
    """``sum(dnbinom(y, mu = mu, size = 1 / alpha, log = TRUE))`` (fitBeta's deviance) from the constants
    of :func:`_nb_loglik_consts`: per sample ``(const - r log1p(mu alpha)) + y (log mu - log(r + mu))``."""
    r = 1.0 / alpha
    s = 0.0
    for j in range(y.size):
        m = mu[j]
        if y[j] == 0.0:
            s -= r * math.log1p(m * alpha)
        else:
            s += const[j] - r * math.log1p(m * alpha) + y[j] * (math.log(m) - math.log(r + m))
    return s


@njit(cache=True)
def _solve_ridge_ls(x: np.ndarray, w: np.ndarray, z: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """argmin ||sqrt(w) (z - x b)||^2 + b' diag(lam) b through the QR of the augmented matrix (as R)."""
    m, p = x.shape
    a = np.zeros((m + p, p))
    bz = np.zeros(m + p)
    for j in range(m):
        sw = math.sqrt(w[j])
        for k in range(p):
            a[j, k] = sw * x[j, k]
        bz[j] = sw * z[j]
    for k in range(p):
        a[m + k, k] = math.sqrt(lam[k])
    q, r = np.linalg.qr(a)
    gamma = q.T @ bz
    beta = np.zeros(p)
    for k in range(p - 1, -1, -1):  # back substitution
        acc = gamma[k]
        for q in range(k + 1, p):
            acc -= r[k, q] * beta[q]
        beta[k] = acc / r[k, k]
    return beta


@njit(cache=True)
def _qr_workspace(mm: int, p: int) -> tuple[int, int]:
    """The workspace sizes LAPACK asks for (as numba's qr asks at every call): dgeqrf's, dorgqr's."""
    a = np.zeros((p, mm)).T
    tau = np.zeros(p)
    work = np.zeros(1)
    info = np.zeros(1, dtype=np.int32)
    _dgeqrf(mm, p, a, mm, tau, work, -1, info)
    lw1 = max(1, int(work[0]))
    _dorgqr(mm, p, p, a, mm, tau, work, -1, info)
    lw2 = max(1, int(work[0]))
    return lw1, lw2


@njit(cache=True)
def _solve_ridge_ls_into(x: np.ndarray, w: np.ndarray, z: np.ndarray, lam: np.ndarray, qf: np.ndarray,
                         bz: np.ndarray, tau: np.ndarray, rr: np.ndarray, gamma: np.ndarray, work: np.ndarray,
                         lw1: int, lw2: int, info: np.ndarray) -> np.ndarray:
    """:func:`_solve_ridge_ls` into buffers kept across iterations, with the LAPACK/BLAS calls numba's
    ``np.linalg.qr`` and ``q.T @ bz`` make (dgeqrf, dorgqr with the workspace sizes LAPACK asks for,
    dgemv 't'), on the same Fortran-order matrix: the same bits. ``qf`` is (m + p) x p Fortran order,
    ``bz`` (m + p) with zeros below ``m``."""
    m, p = x.shape
    mm = m + p
    finite = True
    for j in range(m):
        sw = math.sqrt(w[j])
        for k in range(p):
            qf[j, k] = sw * x[j, k]
            finite &= math.isfinite(qf[j, k])
        bz[j] = sw * z[j]
    if not finite:  # numba's qr raises LinAlgError here: keep that behaviour
        return _solve_ridge_ls(x, w, z, lam)
    for k in range(p):
        for c in range(p):
            qf[m + k, c] = math.sqrt(lam[k]) if c == k else 0.0
    _dgeqrf(mm, p, qf, mm, tau, work, lw1, info)
    for c in range(p):  # R in the upper triangle, before dorgqr overwrites it with Q
        for k in range(c + 1):
            rr[k, c] = qf[k, c]
    _dorgqr(mm, p, p, qf, mm, tau, work, lw2, info)
    for k in range(p):
        gamma[k] = 0.0
    _dgemv(np.uint8(116), mm, p, 1.0, qf, mm, bz, 1, 0.0, gamma, 1)  # 't': gamma = Q' bz
    beta = np.zeros(p)
    for k in range(p - 1, -1, -1):  # back substitution
        acc = gamma[k]
        for c in range(k + 1, p):
            acc -= rr[k, c] * beta[c]
        beta[k] = acc / rr[k, k]
    return beta


@njit(parallel=True, cache=True)
def fit_beta(
    y: np.ndarray,  # genes x samples
    x: np.ndarray,  # samples x coefficients
    nf: np.ndarray,  # samples (size factors)
    alpha: np.ndarray,  # genes
    beta_init: np.ndarray,  # genes x coefficients (natural log)
    lam: np.ndarray,  # coefficients, natural-log-scale ridge
    tol: float,
    maxit: int,
    minmu: float,
):
    """R ``fitBeta`` (QR path) for every gene; returns beta, covariance, hat diagonals, iterations."""
    n_genes, m = y.shape
    p = x.shape[1]
    beta_out = np.empty((n_genes, p))
    sigma_out = np.empty((n_genes, p, p))
    hat_out = np.empty((n_genes, m))
    iters = np.zeros(n_genes, dtype=np.int64)
    lw1, lw2 = _qr_workspace(m + p, p)
    for i in prange(n_genes):
        yi = y[i]
        a = alpha[i]
        beta = beta_init[i].copy()
        mu = np.empty(m)
        # alpha is fixed per gene: the likelihood's lgamma terms once, the ridge rows of the QR once
        const = np.zeros(m)
        _nb_loglik_consts(yi, a, const)
        qf = np.empty((p, m + p)).T  # Fortran order, as numba's qr copies its argument
        bz = np.zeros(m + p)
        tau = np.empty(p)
        rr = np.zeros((p, p))
        gamma = np.empty(p)
        work = np.empty(max(lw1, lw2))
        info = np.zeros(1, dtype=np.int32)
        eta = x @ beta
        for j in range(m):
            mu[j] = max(nf[j] * math.exp(eta[j]), minmu)
        dev_old = 0.0
        it = 0
        z = np.empty(m)
        w = np.empty(m)
        for t in range(maxit):
            it += 1
            for j in range(m):
                w[j] = mu[j] / (1.0 + a * mu[j])
                z[j] = math.log(mu[j] / nf[j]) + (yi[j] - mu[j]) / mu[j]
            new = _solve_ridge_ls_into(x, w, z, lam, qf, bz, tau, rr, gamma, work, lw1, lw2, info)
            diverged = False
            for k in range(p):
                if not abs(new[k]) <= LARGE:  # also catches NaN
                    diverged = True
            beta = new
            if diverged:
                it = maxit
                break
            eta = x @ beta
            for j in range(m):
                mu[j] = max(nf[j] * math.exp(eta[j]), minmu)
            dev = -2.0 * _nb_loglik_c(yi, mu, a, const)
            conv = abs(dev - dev_old) / (abs(dev) + 0.1)
            if math.isnan(conv):
                it = maxit
                break
            if t > 0 and conv < tol:
                break
            dev_old = dev
        iters[i] = it
        beta_out[i] = beta
        # covariance and hat matrix at the last (floored) means, as R recomputes w after the loop
        for j in range(m):
            w[j] = mu[j] / (1.0 + a * mu[j])
        xtwx = np.zeros((p, p))
        for j in range(m):
            for k in range(p):
                for q in range(p):
                    xtwx[k, q] += x[j, k] * w[j] * x[j, q]
        reg = xtwx.copy()
        for k in range(p):
            reg[k, k] += lam[k]
        inv = np.linalg.inv(reg)
        sigma_out[i] = inv @ xtwx @ inv
        for j in range(m):
            xj = x[j]
            hat_out[i, j] = w[j] * (xj @ inv @ xj)
    return beta_out, sigma_out, hat_out, iters


@njit(parallel=True, cache=True)
def sandwich(x: np.ndarray, mu: np.ndarray, alpha: np.ndarray, lam: np.ndarray, minmu: float) -> np.ndarray:
    """Per-gene covariance ``(X'WX + L)^-1 X'WX (X'WX + L)^-1`` with means floored at ``minmu`` (genes x p x p)."""
    n_genes, m = mu.shape
    p = x.shape[1]
    out = np.empty((n_genes, p, p))
    for i in prange(n_genes):
        xtwx = np.zeros((p, p))
        for j in range(m):
            mj = max(mu[i, j], minmu)
            wj = 1.0 / (1.0 / mj + alpha[i])
            for k in range(p):
                for q in range(p):
                    xtwx[k, q] += x[j, k] * wj * x[j, q]
        reg = xtwx.copy()
        for k in range(p):
            reg[k, k] += lam[k]
        inv = np.linalg.inv(reg)
        out[i] = inv @ xtwx @ inv
    return out


# --------------------------------------------------------------------------- dispersion


@njit(cache=True)
def _row_nonzeros(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of each design row's non-zero entries (``nz[j, :nnz[j]]``, in order)."""
    m, p = x.shape
    nz = np.zeros((m, p), dtype=np.int64)
    nnz = np.zeros(m, dtype=np.int64)
    for j in range(m):
        for k in range(p):
            if x[j, k] != 0.0:
                nz[j, nnz[j]] = k
                nnz[j] += 1
    return nz, nnz


@njit(cache=True)
def _add_xwx(b: np.ndarray, x: np.ndarray, j: int, wj: float, nz: np.ndarray, nnz: np.ndarray, xmax: float) -> None:
    """``b[k, q] += x[j, k] * wj * x[j, q]`` for all k, q. A pair with a zero entry adds a zero (``wj`` and the
    products finite) to an accumulator that started at +0 and so is never -0: it changes no bit, and is
    skipped (DESeq2's indicator designs: ~3 non-zero entries of ~13 per row)."""
    p = x.shape[1]
    if math.isfinite(wj) and math.isfinite(wj * xmax * xmax):
        for a in range(nnz[j]):
            k = nz[j, a]
            for c in range(nnz[j]):
                q = nz[j, c]
                b[k, q] += x[j, k] * wj * x[j, q]
    else:
        for k in range(p):
            for q in range(p):
                b[k, q] += x[j, k] * wj * x[j, q]


@njit(cache=True)
def _log_posterior(a: float, y: np.ndarray, mu: np.ndarray, x: np.ndarray, prior_mean: float,
                   prior_var: float, use_prior: bool, nz: np.ndarray, nnz: np.ndarray, xmax: float) -> float:
    alpha = math.exp(a)
    r = 1.0 / alpha
    gr = _gammaln(r)
    m, p = x.shape
    b = np.zeros((p, p)).T  # Fortran order: factorised in place by _slogdet_f
    ll = 0.0
    for j in range(m):
        wj = 1.0 / (1.0 / mu[j] + alpha)
        _add_xwx(b, x, j, wj, nz, nnz, xmax)
        ll += (_gammaln(y[j] + r) - gr - y[j] * math.log(mu[j] + r) - r * math.log1p(mu[j] * alpha))
    sign, logdet = _slogdet_f(b)
    cr = -0.5 * logdet if sign > 0 else -np.inf
    prior = -0.5 * (a - prior_mean) ** 2 / prior_var if use_prior else 0.0
    return ll + prior + cr


@njit(cache=True)
def _dlog_posterior(a: float, y: np.ndarray, mu: np.ndarray, x: np.ndarray, prior_mean: float,
                    prior_var: float, use_prior: bool, nz: np.ndarray, nnz: np.ndarray, xmax: float) -> float:
    alpha = math.exp(a)
    r = 1.0 / alpha
    m, p = x.shape
    b = np.zeros((p, p)).T  # Fortran order: solved in place by _trace_solve_f
    db = np.zeros((p, p)).T
    ll = 0.0
    for j in range(m):
        inv = 1.0 / mu[j] + alpha
        wj = 1.0 / inv
        dwj = -1.0 / (inv * inv)
        _add_xwx(b, x, j, wj, nz, nnz, xmax)
        _add_xwx(db, x, j, dwj, nz, nnz, xmax)
        d1, _ = _psi_diff(y[j], r)  # digamma(r) - digamma(y + r)
        ma = mu[j] * alpha
        ll += d1 + math.log1p(ma) - ma / (1.0 + ma) + y[j] / (mu[j] + r)
    ll *= r * r
    cr = -0.5 * _trace_solve_f(b, db)
    prior = -(a - prior_mean) / prior_var if use_prior else 0.0
    return (ll + cr) * alpha + prior


@njit(parallel=True, cache=True)
def fit_disp(
    y: np.ndarray,  # genes x samples
    x: np.ndarray,
    mu: np.ndarray,  # genes x samples (already floored at minmu)
    log_alpha: np.ndarray,  # start
    prior_mean: np.ndarray,
    prior_var: float,
    min_log_alpha: float,
    kappa_0: float,
    tol: float,
    maxit: int,
    use_prior: bool,
):
    """R ``fitDisp``: returns (log_alpha, iterations, initial log posterior, last log posterior)."""
    n = y.shape[0]
    out = np.empty(n)
    iters = np.zeros(n, dtype=np.int64)
    init_lp = np.empty(n)
    last_lp = np.empty(n)
    eps = 1.0e-4
    nz, nnz = _row_nonzeros(x)
    xmax = np.abs(x).max()
    for i in prange(n):
        yi, mi, pm = y[i], mu[i], prior_mean[i]
        a = log_alpha[i]
        lp = _log_posterior(a, yi, mi, x, pm, prior_var, use_prior, nz, nnz, xmax)
        dlp = _dlog_posterior(a, yi, mi, x, pm, prior_var, use_prior, nz, nnz, xmax)
        kappa = kappa_0
        init_lp[i] = lp
        accepted = 0
        it = 0
        for _ in range(maxit):
            it += 1
            a_propose = a + kappa * dlp
            if a_propose < -30.0:
                kappa = (-30.0 - a) / dlp
            if a_propose > 10.0:
                kappa = (10.0 - a) / dlp
            theta_kappa = -_log_posterior(a + kappa * dlp, yi, mi, x, pm, prior_var, use_prior, nz, nnz, xmax)
            theta_hat_kappa = -lp - kappa * eps * dlp * dlp
            if theta_kappa <= theta_hat_kappa:
                accepted += 1
                a = a + kappa * dlp
                lpnew = _log_posterior(a, yi, mi, x, pm, prior_var, use_prior, nz, nnz, xmax)
                change = lpnew - lp
                if change < tol:
                    lp = lpnew
                    break
                if a < min_log_alpha:
                    break
                lp = lpnew
                dlp = _dlog_posterior(a, yi, mi, x, pm, prior_var, use_prior, nz, nnz, xmax)
                kappa = min(kappa * 1.1, kappa_0)
                if accepted % 5 == 0:
                    kappa = kappa / 2.0
            else:
                kappa = kappa / 2.0
        iters[i] = it
        last_lp[i] = lp
        out[i] = a
    return out, iters, init_lp, last_lp


@njit(parallel=True, cache=True)
def fit_disp_grid(y: np.ndarray, x: np.ndarray, mu: np.ndarray, grid: np.ndarray, prior_mean: np.ndarray,
                  prior_var: float, use_prior: bool) -> np.ndarray:
    """R ``fitDispGrid``: best of a coarse grid, then of a fine grid of the same size around it."""
    n = y.shape[0]
    g = grid.size
    delta = grid[1] - grid[0]
    out = np.empty(n)
    nz, nnz = _row_nonzeros(x)
    xmax = np.abs(x).max()
    for i in prange(n):
        best, a_hat = -np.inf, grid[0]
        for t in range(g):
            v = _log_posterior(grid[t], y[i], mu[i], x, prior_mean[i], prior_var, use_prior, nz, nnz, xmax)
            if v > best:
                best, a_hat = v, grid[t]
        fine = np.linspace(a_hat - delta, a_hat + delta, g)
        best, a_fine = -np.inf, fine[0]
        for t in range(g):
            v = _log_posterior(fine[t], y[i], mu[i], x, prior_mean[i], prior_var, use_prior, nz, nnz, xmax)
            if v > best:
                best, a_fine = v, fine[t]
        out[i] = a_fine
    return out


# --------------------------------------------------------------------------- optim refit


@njit(cache=True)
def _box_objective(y, x, nf, alpha, b, lam, ln2, grad, hess, want):
    """R's optim objective on the log2 scale (-loglik at unfloored means + ridge), with gradient and
    Hessian when ``want``; returns +inf where the likelihood is not finite."""
    m, p = x.shape
    r = 1.0 / alpha
    f = 0.0
    for k in range(p):
        f += 0.5 * lam * b[k] * b[k]
        if want:
            grad[k] = lam * b[k]
            for q in range(p):
                hess[k, q] = lam if k == q else 0.0
    for j in range(m):
        eta = 0.0
        for k in range(p):
            eta += x[j, k] * b[k]
        mu = nf[j] * math.exp(eta * ln2)
        if not (mu > 0.0) or not math.isfinite(mu):
            return np.inf
        yj = y[j]
        ll = -r * math.log1p(mu * alpha)
        if yj > 0.0:
            ll += _gammaln(yj + r) - _gammaln(r) - _gammaln(yj + 1.0) + yj * (math.log(mu) - math.log(r + mu))
        f -= ll
        if want:
            d1 = r * (yj - mu) / (r + mu) * ln2  # d ll / d (x'b)
            d2 = mu * r * (yj + r) / ((r + mu) * (r + mu)) * ln2 * ln2  # -d2 ll / d (x'b)^2
            for k in range(p):
                grad[k] -= d1 * x[j, k]
                for q in range(p):
                    hess[k, q] += d2 * x[j, k] * x[j, q]
    return f if math.isfinite(f) else np.inf


@njit(parallel=True, cache=True)
def fit_beta_box(y: np.ndarray, x: np.ndarray, nf: np.ndarray, alpha: np.ndarray, start: np.ndarray, lam: float,
                 large: float, maxit: int):
    """Minimise R ``fitNbinomGLMsOptim``'s objective within ``[-large, large]`` (log2 scale) by projected Newton.

    The objective (NB deviance at fixed dispersion plus a ridge) is strictly convex, so its box-
    constrained minimum is unique: the answer R's L-BFGS-B approaches, reached here to machine
    precision (R stops at a relative decrease of 2.2e-9, which leaves coefficients sliding towards a
    bound a little short of it). Returns (beta log2, converged, iterations).
    """
    n, p = y.shape[0], x.shape[1]
    ln2 = math.log(2.0)
    out = np.empty((n, p))
    conv = np.zeros(n, dtype=np.bool_)
    iters = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        b = np.minimum(np.maximum(start[i].copy(), -large), large)
        g = np.empty(p)
        h = np.empty((p, p))
        dummy_g = np.empty(p)
        dummy_h = np.empty((1, 1))
        f = _box_objective(y[i], x, nf, alpha[i], b, lam, ln2, g, h, True)
        it = 0
        ok = False
        while it < maxit:
            it += 1
            # active set: at a bound with the gradient pushing outwards
            free = np.ones(p, dtype=np.bool_)
            pg = 0.0
            for k in range(p):
                if (b[k] <= -large and g[k] > 0.0) or (b[k] >= large and g[k] < 0.0):
                    free[k] = False
                else:
                    pg = max(pg, abs(g[k]))
            if pg < 1e-9 * (1.0 + abs(f)):
                ok = True
                break
            idx = np.flatnonzero(free)
            nf_ = idx.size
            hf = np.empty((nf_, nf_))
            gf = np.empty(nf_)
            for a_ in range(nf_):
                gf[a_] = g[idx[a_]]
                for c_ in range(nf_):
                    hf[a_, c_] = h[idx[a_], idx[c_]]
            d = np.zeros(p)
            for a_ in range(nf_):  # keeps the solve defined when lam = 0 and a direction is flat
                hf[a_, a_] += 1e-10 * (1.0 + hf[a_, a_])
            step = np.linalg.solve(hf, -gf)
            for a_ in range(nf_):
                d[idx[a_]] = step[a_]
            t = 1.0
            accepted = False
            for _ in range(60):
                nb = np.minimum(np.maximum(b + t * d, -large), large)
                fn = _box_objective(y[i], x, nf, alpha[i], nb, lam, ln2, dummy_g, dummy_h, False)
                dec = 0.0
                for k in range(p):
                    dec += g[k] * (nb[k] - b[k])
                if fn <= f + 1e-4 * dec:
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                ok = True  # no descent left at machine precision
                break
            change = f - fn
            b = nb
            f = _box_objective(y[i], x, nf, alpha[i], b, lam, ln2, g, h, True)
            if change <= 1e-14 * (1.0 + abs(f)):
                ok = True
                break
        out[i] = b
        conv[i] = ok
        iters[i] = it
    return out, conv, iters


@njit(cache=True)
def optim_value_and_fd_grad(b: np.ndarray, y: np.ndarray, x: np.ndarray, nf: np.ndarray, alpha: float,
                            const: np.ndarray, lam: float, prior_const: float, large: float, eps: float):
    """R DESeq2's optim objective and R ``optim``'s L-BFGS-B gradient (central differences, step
    shortened at a bound), computed as R rounds them: :func:`dormsig.de._lbfgsb._nb_value_and_fd_grad`
    (bit-equal to R 4.2). ``const`` and ``prior_const`` are not used (R's ``dnbinom`` and ``dnorm`` are
    evaluated in full); kept for the callers' signature."""
    return _nb_value_and_fd_grad(b, y, x, nf, alpha, nb_gene_parts(y, alpha), lam, large, eps)


# --------------------------------------------------------------------------- apeglm shrinkage


@njit(cache=True)
def _ape_terms(b, y, x, size, offset, s_ns, s_sh, k_sh, grad, hess, nz, nnz, xmax):
    """apeglm MAP objective (pydeseq2 ``nbinomFn``: Gaussian prior on unshrunk coefficients, Cauchy on
    the shrunk one, NB likelihood), with gradient and Hessian; natural-log coefficients."""
    m, p = x.shape
    f = 0.0
    for k in range(p):
        grad[k] = 0.0
        for q in range(p):
            hess[k, q] = 0.0
        if k == k_sh:
            t = b[k] * b[k] + s_sh * s_sh
            f += math.log1p((b[k] / s_sh) ** 2)
            grad[k] += 2.0 * b[k] / t
            hess[k, k] += 2.0 * (s_sh * s_sh - b[k] * b[k]) / (t * t)
        else:
            f += b[k] * b[k] / (2.0 * s_ns * s_ns)
            grad[k] += b[k] / (s_ns * s_ns)
            hess[k, k] += 1.0 / (s_ns * s_ns)
    ls = math.log(size)
    for j in range(m):
        xb = 0.0
        for k in range(p):
            xb += x[j, k] * b[k]
        a = xb + offset[j]
        # logaddexp(a, log size)
        mx = max(a, ls)
        lae = mx + math.log(math.exp(a - mx) + math.exp(ls - mx))
        f -= y[j] * xb - (y[j] + size) * lae
        e = 1.0 / (1.0 + size * math.exp(-a)) if -a < 700.0 else 0.0  # mu / (mu + size)
        d1 = y[j] - (y[j] + size) * e
        d2 = (y[j] + size) * e * (1.0 - e)
        for k in range(p):
            grad[k] -= d1 * x[j, k]
        if math.isfinite(d2) and math.isfinite(d2 * xmax * xmax):
            # as _add_xwx: pairs with a zero design entry add zeros to accumulators that are never -0
            for a_ in range(nnz[j]):
                k = nz[j, a_]
                for c_ in range(nnz[j]):
                    q = nz[j, c_]
                    hess[k, q] += d2 * x[j, k] * x[j, q]
        else:
            for k in range(p):
                for q in range(p):
                    hess[k, q] += d2 * x[j, k] * x[j, q]
    return f


@njit(parallel=True, cache=True)
def ape_shrink(y: np.ndarray, x: np.ndarray, size: np.ndarray, offset: np.ndarray, s_ns: float, s_sh: float,
               k_sh: int, maxit: int):
    """apeglm MAP per gene by damped Newton from pydeseq2's start; returns (beta, inverse Hessian, converged)."""
    n, p = y.shape[0], x.shape[1]
    out = np.empty((n, p))
    inv_h = np.empty((n, p, p))
    conv = np.zeros(n, dtype=np.bool_)
    nz, nnz = _row_nonzeros(x)
    xmax = np.abs(x).max()
    for i in prange(n):
        b = np.empty(p)
        for k in range(p):
            b[k] = 0.1 * (-1.0) ** k
        g = np.empty(p)
        h = np.empty((p, p))
        g2 = np.empty(p)
        h2 = np.empty((p, p))
        f = _ape_terms(b, y[i], x, size[i], offset, s_ns, s_sh, k_sh, g, h, nz, nnz, xmax)
        ok = False
        for _ in range(maxit):
            gmax = 0.0
            for k in range(p):
                gmax = max(gmax, abs(g[k]))
            if gmax < 1e-8 * max(1.0, abs(f)):
                ok = True
                break
            # damped Newton: shift the Hessian until positive definite (the Cauchy term can be concave)
            shift = 0.0
            d = np.zeros(p)
            for _try in range(60):
                hh = h.copy()
                for k in range(p):
                    hh[k, k] += shift
                try_ok = True
                eig = np.linalg.eigvalsh(hh)
                if eig.min() <= 1e-12 * max(1.0, abs(eig.max())):
                    try_ok = False
                if try_ok:
                    d = np.linalg.solve(hh, -g)
                    break
                shift = max(2.0 * shift, 1e-6 * max(1.0, abs(eig.max())) + abs(eig.min()))
            t = 1.0
            accepted = False
            dec = 0.0
            for k in range(p):
                dec += g[k] * d[k]
            for _ls in range(60):
                nb = b + t * d
                fn = _ape_terms(nb, y[i], x, size[i], offset, s_ns, s_sh, k_sh, g2, h2, nz, nnz, xmax)
                if math.isfinite(fn) and fn <= f + 1e-4 * t * dec:
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                ok = True
                break
            change = f - fn
            b = nb
            f = fn
            g[:] = g2
            h[:, :] = h2
            if change <= 1e-15 * max(1.0, abs(f)):
                ok = True
                break
        out[i] = b
        inv_h[i] = np.linalg.pinv(h)
        conv[i] = ok
    return out, inv_h, conv
