"""FastInference against PyDESeq2's DefaultInference and against R DESeq2 reference outputs.

Data (tests/data/inference/, see its README): PyDESeq2's synthetic test sets with DESeq2 1.34
outputs (owkin/PyDESeq2, MIT), a 3,000-gene subset of airway with R DESeq2 1.38 results, and a
subset of the Aceto 2014 CTC counts.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydeseq2 import utils as pd_utils
from pydeseq2.dds import DeseqDataSet
from pydeseq2.default_inference import DefaultInference
from pydeseq2.ds import DeseqStats
from scipy.stats import spearmanr

from dormsig.de.inference import FastInference

DATA = Path(__file__).parent / "data" / "inference"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")


def _run(counts: pd.DataFrame, meta: pd.DataFrame, design: str, contrast: list[str] | np.ndarray, inference):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(counts=counts, metadata=meta, design=design, refit_cooks=True, inference=inference, quiet=True)
        dds.deseq2()
        ds = DeseqStats(dds, contrast=contrast, inference=inference, quiet=True)
        ds.summary()
    return dds, ds


# ---------------------------------------------------------------- R DESeq2 references (PyDESeq2's own test sets)

R_CASES = {
    "single_factor": ("~condition", None, None),
    "multi_factor": ("~group + condition", None, None),
    "continuous": ("~group + condition + measurement", "continuous/test_counts.csv", "continuous/test_metadata.csv"),
    "wide": ("~group + condition", "wide/test_counts.csv", "wide/test_metadata.csv"),
}


def _load_r_case(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    design, cpath, mpath = R_CASES[name]
    counts = pd.read_csv(DATA / (cpath or "synthetic_counts.csv"), index_col=0).T
    meta = pd.read_csv(DATA / (mpath or "synthetic_metadata.csv"), index_col=0)
    return counts, meta


@pytest.mark.parametrize("name", list(R_CASES))
def test_matches_r_and_pydeseq2_on_reference_sets(name: str) -> None:
    counts, meta = _load_r_case(name)
    design = R_CASES[name][0]
    contrast: list[str] | np.ndarray = ["condition", "B", "A"]
    if name == "continuous":
        # the R reference tests the slope of the continuous covariate
        contrast = np.array([0.0, 0.0, 0.0, 1.0])
    fdds, fds = _run(counts, meta, design, contrast, FastInference(threads=1))
    ddds, dds_ = _run(counts, meta, design, contrast, DefaultInference(n_cpus=1))
    r_res = pd.read_csv(DATA / name / "r_test_res.csv", index_col=0)
    r_disp = pd.read_csv(DATA / name / "r_test_dispersions.csv", index_col=0)["x"]
    r_sf = pd.read_csv(DATA / name / "r_test_size_factors.csv", index_col=0)["x"]

    # size factors are not touched by the inference object
    np.testing.assert_array_equal(fdds.obs["size_factors"], ddds.obs["size_factors"])
    np.testing.assert_allclose(fdds.obs["size_factors"], r_sf.values, rtol=1e-6)

    res = fds.results_df
    # PyDESeq2's own tests accept rtol 0.02 against R; we must be at least that close
    np.testing.assert_allclose(fdds.var["dispersions"], r_disp.values, rtol=0.02)
    np.testing.assert_allclose(res.log2FoldChange, r_res.log2FoldChange, rtol=0.02)
    np.testing.assert_allclose(res.lfcSE, r_res.lfcSE, rtol=0.02)
    np.testing.assert_allclose(res.pvalue, r_res.pvalue, rtol=0.02)

    # and essentially identical to DefaultInference
    np.testing.assert_allclose(fdds.var["genewise_dispersions"], ddds.var["genewise_dispersions"], rtol=1e-4)
    np.testing.assert_allclose(fdds.var["dispersions"], ddds.var["dispersions"], rtol=1e-4)
    np.testing.assert_allclose(res.log2FoldChange, dds_.results_df.log2FoldChange, rtol=0, atol=1e-5)
    np.testing.assert_allclose(res.pvalue, dds_.results_df.pvalue, rtol=1e-3)


# ---------------------------------------------------------------- real data: airway subset (~ cell + dex)


@pytest.fixture(scope="module")
def airway() -> dict:
    counts = pd.read_csv(DATA / "airway_subset_counts.csv.gz", index_col=0).T
    meta = pd.read_csv(DATA / "airway_coldata.csv", index_col=0)
    counts = counts.iloc[:, :400]  # keep the DefaultInference run short
    contrast = ["dex", "trt", "untrt"]
    fast = _run(counts, meta, "~cell + dex", contrast, FastInference(threads=2, chunk_size=400))
    default = _run(counts, meta, "~cell + dex", contrast, DefaultInference(n_cpus=1))
    r_res = pd.read_csv(DATA / "airway_subset_r_results.csv.gz", index_col=0).loc[counts.columns]
    return {"fast": fast, "default": default, "r": r_res}


def test_airway_end_to_end_matches_pydeseq2(airway: dict) -> None:
    fres, dres = airway["fast"][1].results_df, airway["default"][1].results_df
    ok = fres.pvalue.notna() & dres.pvalue.notna()
    assert (fres.pvalue.isna() == dres.pvalue.isna()).all()
    assert spearmanr(fres.pvalue[ok], dres.pvalue[ok])[0] >= 0.9999
    d = np.abs(fres.log2FoldChange - dres.log2FoldChange)
    assert np.nanquantile(d, 0.9) < 1e-3
    np.testing.assert_array_equal(airway["fast"][0].var["non_zero"], airway["default"][0].var["non_zero"])


def test_airway_as_close_to_r_as_pydeseq2(airway: dict) -> None:
    r = airway["r"]
    for col in ["log2FoldChange", "pvalue"]:
        f = airway["fast"][1].results_df[col]
        p = airway["default"][1].results_df[col]
        err_f = np.nanmedian(np.abs(f - r[col]) / (np.abs(r[col]) + 1e-12))
        err_p = np.nanmedian(np.abs(p - r[col]) / (np.abs(r[col]) + 1e-12))
        assert err_f <= 1.05 * err_p + 1e-9, (col, err_f, err_p)
    f, p = airway["fast"][1].results_df.pvalue, airway["default"][1].results_df.pvalue
    ok = r.pvalue.notna() & f.notna() & p.notna()
    assert spearmanr(r.pvalue[ok], f[ok])[0] >= spearmanr(r.pvalue[ok], p[ok])[0] - 1e-3


def test_airway_stagewise_identical_inputs(airway: dict) -> None:
    """Each method given the same inputs as DefaultInference returns the same outputs."""
    dds = airway["default"][0]
    x = dds.obsm["design_matrix"].values
    sf = dds.obs["size_factors"].values
    nz = dds.non_zero_idx
    y = dds.X[:, nz]
    fast, default = FastInference(threads=2, chunk_size=300), DefaultInference(n_cpus=1)

    disp = dds.var["dispersions"].values[nz]
    fb, fmu, fh, fc = fast.irls(y, sf, x, disp, min_mu=0.5, beta_tol=1e-8)
    db, dmu, dh, dc = default.irls(y, sf, x, disp, min_mu=0.5, beta_tol=1e-8)
    np.testing.assert_allclose(fb, db, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fmu, dmu, rtol=1e-8)
    np.testing.assert_allclose(fh, dh, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(fc, dc)

    np.testing.assert_allclose(fast.lin_reg_mu(y, sf, x, 0.5), default.lin_reg_mu(y, sf, x, 0.5), rtol=1e-10)

    # MAP dispersions from identical mu, trend and prior
    mu = dds.layers["_mu_hat"][:, nz] if "_mu_hat" in dds.layers else dmu
    kw = dict(min_disp=1e-8, max_disp=10.0, prior_disp_var=float(dds.uns["prior_disp_var"]), cr_reg=True, prior_reg=True)
    fa, _ = fast.alpha_mle(y, x, mu, dds.var["fitted_dispersions"].values[nz], **kw)
    da, _ = default.alpha_mle(y, x, mu, dds.var["fitted_dispersions"].values[nz], **kw)
    rel = np.abs(fa / da - 1)
    assert np.quantile(rel, 0.99) < 1e-4, np.quantile(rel, 0.99)

    contrast = np.array([0, 0, 0, 0, 1.0])
    lfc = dds.varm["LFC"].values
    mu_all = np.exp(x @ lfc.T) * sf[:, None]
    ridge = np.diag(np.repeat(1e-6, x.shape[1]))
    for alt in [None, "greater", "less", "greaterAbs", "lessAbs"]:
        null = 0.0 if alt is None else 0.2
        fp, fs, fse = fast.wald_test(x, dds.var["dispersions"].values, lfc, mu_all, ridge, contrast, null, alt)
        dp, ds_, dse = default.wald_test(x, dds.var["dispersions"].values, lfc, mu_all, ridge, contrast, null, alt)
        np.testing.assert_allclose(fse, dse, rtol=1e-9)
        np.testing.assert_allclose(fs, ds_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fp, dp, rtol=1e-9, atol=1e-300)


# ---------------------------------------------------------------- real data: CTC clusters vs single CTCs


def test_ctc_matches_pydeseq2() -> None:
    counts = pd.read_csv(DATA / "ctc_subset_counts.csv.gz", index_col=0).T
    counts = counts.round().astype(int)  # five samples are stored as floats (1.0000000001-style)
    # genes detected in at least half the samples: shallow genes mostly exercise PyDESeq2's
    # slow per-gene fallbacks (identical in both implementations) and would only cost time
    counts = counts.loc[:, (counts > 0).sum(axis=0) >= 15].iloc[:, :150]
    meta = pd.read_csv(DATA / "ctc_metadata.csv", index_col=0).loc[counts.index]
    contrast = ["type", "CL", "SC"]
    fdds, fds = _run(counts, meta, "~type", contrast, FastInference(threads=2))
    ddds, dds_ = _run(counts, meta, "~type", contrast, DefaultInference(n_cpus=1))
    f, d = fds.results_df, dds_.results_df
    ok = f.pvalue.notna() & d.pvalue.notna()
    # A few of these very overdispersed genes (29 samples, library sizes 31 k to 11 M) sit
    # where PyDESeq2's L-BFGS-B outcome changes under 1e-15 perturbations of its inputs
    # (which genes depends on the CPU: BTN3A2 and ATOX1 on an AMD EPYC, genewise dispersions
    # 7.39 vs 6.00 and 10.0 vs 6.98); the bulk must agree to optimiser precision, and the
    # genes whose dispersion agrees must agree in p-value too.
    gw_f, gw_d = fdds.var["genewise_dispersions"], ddds.var["genewise_dispersions"]
    same = np.abs(gw_f / gw_d - 1) < 1e-4
    assert same.mean() >= 0.95 and (~same).sum() <= 4
    # Where they differ, FastInference's dispersion is the better optimum of PyDESeq2's own objective (Cox-Reid
    # adjusted NB likelihood at the same means): measured here, ATOX1 99.163 vs 100.761 and BTN3A2 102.642 vs
    # 103.081 (neither optimiser reaches the grid minimum on these flat likelihoods: alpha 11.7 and 7.65).
    x = fdds.obsm["design_matrix"].to_numpy(float)
    np.testing.assert_allclose(fdds.layers["_mu_hat"], ddds.layers["_mu_hat"], rtol=1e-10)  # same means
    for j in np.flatnonzero(~same.to_numpy()):
        y, mu = counts.iloc[:, j].to_numpy(float), fdds.layers["_mu_hat"][:, j]

        def loss(a: float, y=y, mu=mu) -> float:
            return pd_utils.nb_nll(y, mu, a) + 0.5 * np.linalg.slogdet((x.T * (mu / (1 + mu * a))) @ x)[1]

        # (on another CPU other genes may differ: never worse than PyDESeq2's optimum beyond 1e-6 relative)
        ref = loss(gw_d.iloc[j])
        assert loss(gw_f.iloc[j]) <= ref + 1e-6 * abs(ref), (counts.columns[j], gw_f.iloc[j], gw_d.iloc[j])
    assert spearmanr(f.pvalue[ok & same], d.pvalue[ok & same])[0] >= 0.999
    assert np.nanquantile(np.abs(f.log2FoldChange - d.log2FoldChange), 0.9) < 1e-6
    rel_p = np.abs(np.log(f.pvalue[ok]) - np.log(d.pvalue[ok]))
    assert np.mean(rel_p < 1e-4) >= 0.95


# ---------------------------------------------------------------- unit checks


def test_alpha_mle_exact_optimum_on_hand_case() -> None:
    """The kernel's dispersion is a stationary point of PyDESeq2's own objective."""
    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(12), np.repeat([0.0, 1.0], 6)])
    mu = np.exp(x @ np.array([3.0, 0.5]))
    r = 1 / 0.3
    y = rng.negative_binomial(r, r / (r + mu)).astype(float)
    a, conv = FastInference(threads=1).alpha_mle(y[:, None], x, mu[:, None], np.array([0.1]), 1e-8, 10.0)
    assert conv[0]
    t = np.log(a[0])

    def loss(t: float) -> float:
        w = mu / (1 + mu * np.exp(t))
        return pd_utils.nb_nll(y, mu, np.exp(t)) + 0.5 * np.linalg.slogdet((x.T * w) @ x)[1]

    eps = 1e-5
    assert abs((loss(t + eps) - loss(t - eps)) / (2 * eps)) < 1e-6
    ref, _ = pd_utils.fit_alpha_mle(y, x, mu, 0.1, 1e-8, 10.0)
    assert abs(a[0] / ref - 1) < 1e-4


def test_threads_and_chunks_do_not_change_results() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(8), np.repeat([0.0, 1.0], 4)])
    y = rng.poisson(20, size=(8, 37)).astype(float)
    sf = np.ones(8)
    disp = np.full(37, 0.1)
    a = FastInference(threads=1, chunk_size=5).irls(y, sf, x, disp, 0.5, 1e-8)
    b = FastInference(threads=2, chunk_size=1000).irls(y, sf, x, disp, 0.5, 1e-8)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="threads"):
        FastInference(threads=0)
    with pytest.raises(ValueError, match="chunk_size"):
        FastInference(chunk_size=0)


def test_lfc_shrink_same_as_pydeseq2() -> None:
    counts, meta = _load_r_case("single_factor")
    res = []
    for inf in (FastInference(threads=1), DefaultInference(n_cpus=1)):
        dds, ds = _run(counts, meta, "~condition", ["condition", "B", "A"], inf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.lfc_shrink(coeff="condition[T.B]")
        res.append(ds.results_df)
    np.testing.assert_allclose(res[0].log2FoldChange, res[1].log2FoldChange, rtol=1e-6)
    np.testing.assert_allclose(res[0].lfcSE, res[1].lfcSE, rtol=1e-6)
