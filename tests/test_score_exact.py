"""Exactness of dormsig's rank kernels against independent references.

- ucell   == pyUCell 0.8 ``compute_ucell_scores`` (within 1e-6)
- aucell  == decoupler 2.2 ``mt.aucell`` (within 1e-6)
- singscore == a direct numpy transcription of Foroutan et al. 2018 / the R package, and a case by hand
on real data (oligodendroglioma Smart-seq2 cells, breast-cancer CTC bulk samples) and simulated data
with ties and zeros. pyucell and decoupler are test dependencies only.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import rankdata
from score_fixtures import hallmark_subset, oligo_frame

from dormsig.tl import score_matrix

DATA = Path(__file__).parent / "data" / "score"


_gmt = hallmark_subset


@pytest.fixture(scope="module")
def oligo() -> ad.AnnData:
    df = oligo_frame()
    return ad.AnnData(X=sp.csr_matrix(df.T.to_numpy(dtype=np.float32)), obs=pd.DataFrame(index=df.columns),
                      var=pd.DataFrame(index=df.index))


@pytest.fixture(scope="module")
def ctc() -> ad.AnnData:
    with gzip.open(DATA / "aceto2014_ctc_GSE51827.tsv.gz", "rt") as fh:
        df = pd.read_csv(fh, sep="\t", index_col=0)
    assert df.shape == (16026, 29)
    return ad.AnnData(X=df.T.to_numpy(dtype=np.float64), obs=pd.DataFrame(index=df.columns),
                      var=pd.DataFrame(index=df.index))


@pytest.fixture(scope="module")
def simulated() -> ad.AnnData:
    """Small counts: many ties and zeros, one all-zero cell, signed sets."""
    rng = np.random.default_rng(7)
    counts = rng.negative_binomial(1, 0.6, size=(120, 2500)).astype(np.float32)
    counts[3] = 0  # an all-zero cell
    counts[:, 17] = 0  # an all-zero gene (removed for the decoupler comparison)
    x = np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e4)
    names = [f"G{i}" for i in range(2500)]
    return ad.AnnData(X=sp.csr_matrix(x), obs=pd.DataFrame(index=[f"c{i}" for i in range(120)]),
                      var=pd.DataFrame(index=names))


def _sets_present(adata, sets: dict[str, list[str]]) -> dict[str, list[str]]:
    var = set(adata.var_names)
    return {k: [g for g in dict.fromkeys(v) if g in var] for k, v in sets.items()}


def _index_sets(adata, sets: dict[str, list[str]], down: dict[str, list[str]] | None = None):
    idx = adata.var_names.get_indexer
    return {k: (idx(v), idx((down or {}).get(k, []))) for k, v in sets.items()}


def _sim_sets(adata) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    names = list(adata.var_names)
    up = {"s5": names[0:5], "s40": names[100:140], "s300": names[500:800], "with_zero_gene": names[15:30]}
    down = {"s40": names[1000:1020]}
    return up, down


# ------------------------------------------------------------------------------------------------- UCell


def _pyucell(adata, up, down, max_rank):
    pyucell = pytest.importorskip("pyucell")
    a = adata.copy()
    sig = {k: [f"{g}+" for g in v] + [f"{g}-" for g in down.get(k, [])] for k, v in up.items()}
    pyucell.compute_ucell_scores(a, sig, max_rank=max_rank, n_jobs=1, missing_genes="skip")
    return a.obs[[f"{k}_UCell" for k in up]].to_numpy(dtype=np.float64)


@pytest.mark.parametrize("max_rank", [1500, 200])
def test_ucell_equals_pyucell_oligodendroglioma(oligo, max_rank):
    sets = _sets_present(oligo, _gmt())
    ours = score_matrix(oligo.X, _index_sets(oligo, sets), method="ucell", max_rank=max_rank).to_numpy()
    ref = _pyucell(oligo, sets, {}, max_rank)
    assert ours.std() > 0.01  # the comparison is not between constants
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


def test_ucell_equals_pyucell_ctc(ctc):
    sets = _sets_present(ctc, _gmt())
    ours = score_matrix(ctc.X, _index_sets(ctc, sets), method="ucell").to_numpy()
    np.testing.assert_allclose(ours, _pyucell(ctc, sets, {}, 1500), atol=1e-6, rtol=0)


def test_ucell_equals_pyucell_simulated_signed(simulated):
    up, down = _sim_sets(simulated)
    ours = score_matrix(simulated.X, _index_sets(simulated, up, down), method="ucell", max_rank=300)
    ref = _pyucell(simulated, up, down, 300)
    np.testing.assert_allclose(ours.to_numpy(), ref, atol=1e-6, rtol=0)
    assert (ours.loc[3] == 0).all()  # all-zero cell: every gene at max_rank -> 0, not NaN


# ------------------------------------------------------------------------------------------------ AUCell


def _decoupler(adata, sets, n_up=None):
    dc = pytest.importorskip("decoupler")
    net = pd.DataFrame([(k, g) for k, v in sets.items() for g in v], columns=["source", "target"])
    a = ad.AnnData(X=adata.X.copy(), obs=adata.obs.copy(), var=adata.var.copy())
    kw = {} if n_up is None else {"n_up": n_up}
    dc.mt.aucell(a, net, tmin=1, **kw)
    return a.obsm["score_aucell"][list(sets)].to_numpy(dtype=np.float64)


def _no_empty(adata):
    """decoupler drops all-zero genes and cells before ranking: compare on a matrix without them."""
    x = sp.csr_matrix(adata.X)
    keep_g = x.getnnz(axis=0) > 0
    keep_c = x.getnnz(axis=1) > 0
    return adata[keep_c, keep_g].copy()


def test_aucell_equals_decoupler_oligodendroglioma(oligo):
    a = _no_empty(oligo)
    sets = _sets_present(a, _gmt())
    ours = score_matrix(a.X, _index_sets(a, sets), method="aucell").to_numpy()
    assert ours.std() > 0.01
    np.testing.assert_allclose(ours, _decoupler(a, sets), atol=1e-6, rtol=0)


@pytest.mark.parametrize("n_up", [None, 150])
def test_aucell_equals_decoupler_ctc(ctc, n_up):
    sets = _sets_present(ctc, _gmt())
    ours = score_matrix(ctc.X, _index_sets(ctc, sets), method="aucell", n_up=n_up).to_numpy()
    np.testing.assert_allclose(ours, _decoupler(ctc, sets, n_up), atol=1e-6, rtol=0)


def test_aucell_equals_decoupler_simulated_ties(simulated):
    a = _no_empty(simulated)
    up, _ = _sim_sets(simulated)
    sets = _sets_present(a, up)
    ours = score_matrix(a.X, _index_sets(a, sets), method="aucell", n_up=400).to_numpy()
    np.testing.assert_allclose(ours, _decoupler(a, sets, 400), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------------------------- singscore


def _singscore_reference(x: np.ndarray, up: list[int], down: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Foroutan et al. 2018 / R singscore::simpleScore, written out per sample with numpy."""
    n_genes = x.shape[1]
    scores, disp = [], []

    def part(r, n):
        low, high = (n + 1) / 2, (2 * n_genes - n + 1) / 2
        return (r.mean() - low) / (high - low)

    def mad(r):
        return 1.4826 * np.median(np.abs(r - np.median(r)))

    for row in x:
        ranks = rankdata(row, method="min")  # R rank(ties.method = "min"), increasing
        s = part(ranks[up], len(up)) - 0.5
        d = mad(ranks[up])
        if down:
            s += (1 - part(ranks[down], len(down))) - 0.5
            d += mad(ranks[down])
        scores.append(s)
        disp.append(d)
    return np.array(scores), np.array(disp)


def test_singscore_equals_reference_simulated(simulated):
    up, down = _sim_sets(simulated)
    res = score_matrix(simulated.X, _index_sets(simulated, up, down), method="singscore")
    x = simulated.X.toarray()
    for k in up:
        ui = list(simulated.var_names.get_indexer(up[k]))
        di = list(simulated.var_names.get_indexer(down.get(k, [])))
        s, d = _singscore_reference(x, ui, di)
        np.testing.assert_allclose(res[k].to_numpy(), s, atol=1e-12)
        np.testing.assert_allclose(res.attrs["extra"]["dispersion"][k].to_numpy(), d, atol=1e-9)


def test_singscore_equals_reference_ctc(ctc):
    sets = _sets_present(ctc, _gmt())
    res = score_matrix(ctc.X, _index_sets(ctc, sets), method="singscore")
    for k, genes in sets.items():
        s, d = _singscore_reference(ctc.X, list(ctc.var_names.get_indexer(genes)), [])
        np.testing.assert_allclose(res[k].to_numpy(), s, atol=1e-12)
        np.testing.assert_allclose(res.attrs["extra"]["dispersion"][k].to_numpy(), d, atol=1e-9)


def test_singscore_by_hand():
    # 6 genes, one sample: values 0, 5, 5, 2, 0, 9 -> increasing ranks with ties at the minimum:
    # zeros -> 1, 1; 2 -> 3; 5 -> 4, 4; 9 -> 6.
    x = sp.csr_matrix(np.array([[0.0, 5.0, 5.0, 2.0, 0.0, 9.0]]))
    # up = genes 1, 5 (ranks 4, 6): mean 5; bounds (n+1)/2 = 1.5, (2N-n+1)/2 = 5.5 -> (5-1.5)/4 = 0.875
    # down = genes 0, 3 (ranks 1, 3): mean 2 -> (2-1.5)/4 = 0.125 -> 1 - 0.125 = 0.875
    # centred total = (0.875 - 0.5) + (0.875 - 0.5) = 0.75
    # dispersion: mad([4, 6]) = 1.4826 * 1 ; mad([1, 3]) = 1.4826 * 1 -> 2.9652
    res = score_matrix(x, {"s": (np.array([1, 5]), np.array([0, 3]))}, method="singscore")
    assert res.loc[0, "s"] == pytest.approx(0.75, abs=1e-12)
    assert res.attrs["extra"]["dispersion"].loc[0, "s"] == pytest.approx(2.9652, abs=1e-12)
    up_only = score_matrix(x, {"s": (np.array([1, 5]), np.array([], int))}, method="singscore")
    assert up_only.loc[0, "s"] == pytest.approx(0.375, abs=1e-12)


def test_ucell_by_hand():
    # one cell, 6 genes: 0, 5, 5, 2, 0, 9 -> decreasing ranks among nonzeros: 9 -> 1, 5 -> 2.5, 2.5, 2 -> 4
    # set {1, 3} with max_rank 5: rank sum 6.5, n = 2: 1 - (6.5 - 3) / (10 - 3) = 0.5
    # set {0, 5}: zero counts as max_rank: 5 + 1 = 6 -> 1 - (6 - 3) / 7 = 4/7
    x = sp.csr_matrix(np.array([[0.0, 5.0, 5.0, 2.0, 0.0, 9.0]]))
    res = score_matrix(x, {"a": (np.array([1, 3]), np.array([], int)), "b": (np.array([0, 5]), np.array([], int))},
                       method="ucell", max_rank=5)
    assert res.loc[0, "a"] == pytest.approx(0.5)
    assert res.loc[0, "b"] == pytest.approx(4 / 7)


@pytest.mark.parametrize("seed", range(8))
def test_ucell_equals_rankdata_negative_values_explicit_zeros(seed):
    """UCell's rank arithmetic (distinct values: few or many) against scipy's rankdata, row by row,
    on data pyUCell is not run on: negative values, explicit zeros in the CSR data, many ties, signed sets."""
    rng = np.random.default_rng(seed)
    n, g = 40, 400
    if seed % 2:  # many distinct values (> 32 per row: the sorting path), ties still
        x = np.round(rng.normal(size=(n, g)) * 10, 1)
    else:  # few levels, as count data (the insertion path)
        x = rng.integers(-3, 6, size=(n, g)) * rng.choice([1.0, 0.5], size=(n, g))
    x[rng.random((n, g)) < 0.5] = 0
    m = sp.csr_matrix(x)
    m.data[rng.random(m.data.size) < 0.1] = 0  # stored zeros: still zeros
    up = rng.choice(g, 100, replace=False)  # ~70 set genes nonzero per row
    dn = rng.choice(np.setdiff1d(np.arange(g), up), 40, replace=False)
    max_rank = [20, 100, 400][seed % 3]
    ours = score_matrix(m, {"a": (up, dn), "b": (up[:5], np.zeros(0, np.int64))}, method="ucell",
                        max_rank=max_rank).to_numpy()
    dense = m.toarray()
    ref = np.zeros((n, 2))
    for i, row in enumerate(dense):
        r = np.full(g, float(max_rank))
        r[row != 0] = rankdata(-row[row != 0])
        r = np.minimum(r, max_rank)

        def part(ix, r=r):
            k = len(ix)
            return 1 - (r[ix].sum() - k * (k + 1) / 2) / (k * max_rank - k * (k + 1) / 2)

        ref[i] = max(0.0, part(up) - part(dn)), max(0.0, part(up[:5]))
    np.testing.assert_allclose(ours, ref, atol=1e-12, rtol=0)


def test_aucell_by_hand():
    # values 0, 5, 5, 2, 0, 9; tie order = identity (gene order): ordinal decreasing ranks:
    # 9 -> 1, 5 (gene 1) -> 2, 5 (gene 2) -> 3, 2 -> 4, 0 (gene 0) -> 5, 0 (gene 4) -> 6
    # n_up = 4, set {2, 4}: ranks 3, 6 -> AUC = (4 - 3) / max_auc, max_auc = (4-1) + (4-2) = 5 -> 0.2
    from dormsig.tl.methods import aucell

    x = sp.csr_matrix(np.array([[0.0, 5.0, 5.0, 2.0, 0.0, 9.0]]))
    orig = aucell.tie_positions
    try:
        aucell.tie_positions = lambda n, seed: np.arange(n)
        res = score_matrix(x, {"s": (np.array([2, 4]), np.array([], int))}, method="aucell", n_up=4)
    finally:
        aucell.tie_positions = orig
    assert res.loc[0, "s"] == pytest.approx(0.2)
