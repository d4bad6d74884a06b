"""dormsig's DESeq2 against R DESeq2 1.38.3 on multi-factor designs, gene by gene.

References: tests/data/de/r_reference/ (inputs from make_inputs.py, R results from make_references.R,
Debian r-bioc-deseq2). R's ``results()`` defaults (independent filtering for alpha = 0.1) are used on
both sides. Targets (issue 11): Pearson r of log2FC >= 0.999 over genes with baseMean >= 10, Jaccard
>= 0.95 of the padj < 0.05 sets, the same sign for every gene significant in both, and for genes
refitted by the optimiser (divergent IRLS) p-values within a factor of 2 of R's or both not significant.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from dormsig.de import deseq

REF = Path(__file__).parent / "data" / "de" / "r_reference"

# tag: (input, group column, test, reference, covariates)
DESIGNS = {
    "ctc_n2_vs_n1": ("ctc", "group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high", ["patient"]),
    "ctc_n2_high_vs_low": ("ctc", "group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low", ["patient"]),
    # the demo's contrasts since the tumour check: samples without epithelial RNA are their own level
    "ctc_tumour_n2_vs_n1": ("ctc", "tumour_group_NOTCH2_vs_NOTCH1", "NOTCH2_high", "NOTCH1_high", ["patient"]),
    "ctc_tumour_n2_high_vs_low": ("ctc", "tumour_group_NOTCH2_high_vs_low", "NOTCH2_high", "NOTCH2_low", ["patient"]),
    "sim_wide_c3_vs_c0": ("sim_wide", "condition", "c3", "c0", ["batch"]),
    "sim_wide_c5_vs_c1": ("sim_wide", "condition", "c5", "c1", ["batch"]),
    "sim_cont": ("sim_cont", "condition", "B", "A", ["age"]),
    "oligo_pb": ("oligo_pb", "cell_class", "malignant", "oligodendrocyte", ["patient"]),
}

#: Measured values, with a small margin, kept as the bar so that a regression fails. On the CTC designs
#: ~3,000-6,000 of 16,008 genes diverge in IRLS (whole patients or groups at zero) and are refitted by
#: L-BFGS-B along nearly flat directions, where the stopping point depends on the optimiser's path.
#: dormsig's L-BFGS-B follows R's (v2.3, dormsig.de._lbfgsb), its objective and finite-difference
#: gradient are R's bit for bit (dormsig.de._nbinom), it runs for every fit as R's optim does, and the
#: dispersion trend is R's glm (dispFit equals R's to 4e-15 given R's gene-wise estimates, test below).
#: What remains: gene-wise dispersions of the refitted genes (their means come from those flat fits) and
#: L-BFGS-B linear algebra that rounds differently (dense B instead of R's compact products).
#: Measured (2026-12-01, third session):
#: | tag                       | r(log2FC) | Jaccard | refitted | p > 2x apart, significant on one side |
#: | ctc_n2_vs_n1              | 0.999886  | 0.9960  | 6,151    | 31 (0.50%)                            |
#: | ctc_n2_high_vs_low        | 0.999997  | 1.0000  | 3,293    | 1 (0.03%)                             |
#: | ctc_tumour_n2_vs_n1       | 0.999670  | 0.9972  | 5,795    | 56 (0.97%; 3 v 3 samples)             |
#: | ctc_tumour_n2_high_vs_low | 0.999878  | 1.0000  | 4,948    | 4 (0.08%)                             |
#: The tumour_* designs are the demo's since the tumour check (dormsig.tl.epithelial). The issue's target
#: for refitted genes (within 2x or both non-significant) is not met on the CTC designs, and R does not meet
#: it against itself: R DESeq2 on the same counts with the samples in reverse order (the same fit, sums in
#: another order) differs from R's stored run by the same criterion in 33 of 6,152 refitted genes
#: (ctc_n2_vs_n1) and 59 of 5,794 (ctc_tumour_n2_vs_n1), r(log2FC) 0.99954 and 0.99972
#: (benchmarks/r_self_consistency.R/.py, 2026-12-02). Which genes, and how many, also depend on the CPU
#: (dormsig on an AMD EPYC: 40 and 68). The bar for those two designs is therefore 1.5x R's own count
#: (a broken refit gives hundreds); the other two keep 0.3% (R's self-distance not measured there).
R_MIN = {"ctc_n2_vs_n1": 0.9998, "ctc_n2_high_vs_low": 0.99995, "ctc_tumour_n2_vs_n1": 0.9995,
         "ctc_tumour_n2_high_vs_low": 0.9998}
R_SELF_MISMATCH = {"ctc_n2_vs_n1": 33, "ctc_tumour_n2_vs_n1": 59}  # R vs R with the samples reversed
REFIT_P_MISMATCH_MAX = {"ctc_n2_high_vs_low": 0.003, "ctc_tumour_n2_high_vs_low": 0.003}  # of the refitted genes


def _refit_bar(tag: str, n_refit: int) -> float:
    if tag in R_SELF_MISMATCH:
        return 1.5 * R_SELF_MISMATCH[tag]
    return max(2, REFIT_P_MISMATCH_MAX.get(tag, 0.002) * n_refit)

_CACHE: dict[str, pd.DataFrame] = {}


def _fit(tag: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    name, group, test, reference, covariates = DESIGNS[tag]
    if tag not in _CACHE:
        counts = pd.read_csv(REF / f"{name}_counts.csv.gz", index_col=0).T
        coldata = pd.read_csv(REF / f"{name}_coldata.csv", index_col=0).loc[counts.index]
        adata = ad.AnnData(counts.to_numpy(np.float64), obs=coldata, var=pd.DataFrame(index=counts.columns))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _CACHE[tag] = deseq(adata, group_key=group, test=test, reference=reference, covariates=covariates,
                                layer=None, alpha=0.1, threads=2)
    r = pd.read_csv(REF / f"{tag}_r_results.csv.gz", index_col=0)
    return _CACHE[tag], r.loc[_CACHE[tag].index]


@pytest.mark.parametrize("tag", list(DESIGNS))
def test_concordance_with_r(tag: str) -> None:
    ours, r = _fit(tag)
    assert np.allclose(ours["baseMean"], r["baseMean"].fillna(0), rtol=1e-6, atol=1e-8)
    m = (r["baseMean"] >= 10) & r["log2FoldChange"].notna() & ours["log2FoldChange"].notna()
    assert np.corrcoef(r.loc[m, "log2FoldChange"], ours.loc[m, "log2FoldChange"])[0, 1] >= R_MIN.get(tag, 0.999)
    sig_r = set(r.index[r["padj"] < 0.05])
    sig_o = set(ours.index[ours["padj"] < 0.05])
    assert len(sig_r & sig_o) / max(1, len(sig_r | sig_o)) >= 0.95
    both = sorted(sig_r & sig_o)
    assert (np.sign(r.loc[both, "log2FoldChange"]) == np.sign(ours.loc[both, "log2FoldChange"])).all()
    # genes the optimiser refitted (divergent IRLS): p within a factor of 2, or not significant on both sides
    refit = ours.index[ours["optim"].fillna(False).astype(bool)]
    p_r, p_o = r.loc[refit, "pvalue"], ours.loc[refit, "pvalue"]
    ok = (p_r.isna() & p_o.isna()) | (((p_o / p_r) <= 2) & ((p_r / p_o) <= 2)) | (
        (r.loc[refit, "padj"].fillna(1) >= 0.05) & (ours.loc[refit, "padj"].fillna(1) >= 0.05))
    bad = ok[~ok].index
    assert len(bad) <= _refit_bar(tag, len(refit)), r.loc[
        bad[:5], ["log2FoldChange", "pvalue"]].join(ours.loc[bad[:5], ["log2FoldChange", "pvalue"]], rsuffix="_dormsig")
    # where the two disagree on significance, they disagree rarely
    flip = (r.loc[refit, "padj"].fillna(1) < 0.05) != (ours.loc[refit, "padj"].fillna(1) < 0.05)
    assert flip.sum() <= max(2, 0.01 * len(refit))


@pytest.mark.parametrize("tag", ["ctc_n2_vs_n1", "oligo_pb"])
def test_no_zero_pvalue_from_a_singular_fit(tag: str) -> None:
    ours, r = _fit(tag)
    zero = ours.index[ours["pvalue"] == 0]
    assert (r.loc[zero, "pvalue"] < 1e-200).all()
    # no standard error collapses towards 0 (p = 0 from a singular fit); exactly 0 only where R has 0 (R's
    # "replaced counts now all zero" rule: LFC 0, SE 0, p 1)
    se = ours["lfcSE"].dropna()
    assert (se[se <= 1e-3] == 0).all() and (r.loc[se.index[se == 0], "lfcSE"] == 0).all()


def test_ctc_genes_named_in_issue_11() -> None:
    """ADRA2A/ABCG2: zero in both groups -> LFC 0, p = 1 with R's standard error; CXCR4, NOTCH1 as R."""
    ours, r = _fit("ctc_n2_vs_n1")
    for g in ("ADRA2A", "ABCG2"):
        assert ours.loc[g, "log2FoldChange"] == 0 and ours.loc[g, "pvalue"] == 1
        assert ours.loc[g, "lfcSE"] == pytest.approx(r.loc[g, "lfcSE"], rel=1e-3)
    for g in ("CXCR4", "NOTCH1"):
        assert ours.loc[g, "log2FoldChange"] == pytest.approx(r.loc[g, "log2FoldChange"], abs=0.5)
        assert ours.loc[g, "lfcSE"] == pytest.approx(r.loc[g, "lfcSE"], rel=1e-2)
        assert ours.loc[g, "pvalue"] < 1e-6
    assert {"betaConv", "betaIter", "optim"} <= set(ours.columns)


# not oligo_pb: with 7+ samples per group R replaces Cook's outliers and re-estimates those genes' gene-wise
# dispersions after the trend was fitted, so its stored dispGeneEst are not the trend's inputs
@pytest.mark.parametrize("tag", ["ctc_n2_vs_n1", "ctc_tumour_n2_high_vs_low", "sim_wide_c3_vs_c0"])
def test_dispersion_trend_is_r_glm(tag: str) -> None:
    """R's parametricDispersionFit run on R's own gene-wise estimates gives R's dispFit: dormsig's Gamma
    GLM (identity link, IRLS from the current coefficients) is R's glm, not an approximation of it
    (pydeseq2's L-BFGS-B fit of the same model, used before, gave dispFit 3e-5 relative from R's)."""
    from dormsig.de.r_dds import r_gamma_identity_glm

    r = pd.read_csv(REF / f"{tag}_r_results.csv.gz", index_col=0)
    r = r[r["baseMean"] > 0]
    means, disps = r["baseMean"].to_numpy(), r["dispGeneEst"].to_numpy()
    use = disps > 100 * 1e-8
    means, disps = means[use], disps[use]
    coefs = np.array([0.1, 1.0])
    for _ in range(11):  # R's loop: refit on the genes whose ratio to the current trend is in (1e-4, 15)
        ratio = disps / (coefs[0] + coefs[1] / means)
        good = (ratio > 1e-4) & (ratio < 15)
        new, converged = r_gamma_identity_glm(1 / means[good], disps[good], start=coefs)
        old, coefs = coefs, new
        if np.sum(np.log(coefs / old) ** 2) < 1e-6 and converged:
            break
    fitted = coefs[0] + coefs[1] / r["baseMean"].to_numpy()
    np.testing.assert_allclose(fitted, r["dispFit"].to_numpy(), rtol=1e-12)
