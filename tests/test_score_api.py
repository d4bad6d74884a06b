"""dormsig.tl.score: AnnData plumbing, invariances, backed/dask input, bad input, cohort methods."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import dormsig.tl as tl
from dormsig.errors import InputError, MatchError
from dormsig.tl import score_matrix

DATA = Path(__file__).parent / "data" / "score"


@pytest.fixture(scope="module")
def ctc_counts() -> ad.AnnData:
    with gzip.open(DATA / "aceto2014_ctc_GSE51827.tsv.gz", "rt") as fh:
        df = pd.read_csv(fh, sep="\t", index_col=0)
    return ad.AnnData(X=df.T.to_numpy(dtype=np.float64), obs=pd.DataFrame(index=df.columns),
                      var=pd.DataFrame(index=df.index))


def _sim(n_cells=150, n_genes=600, seed=3) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    counts = rng.negative_binomial(2, 0.5, size=(n_cells, n_genes)).astype(np.float32)
    counts[rng.random(counts.shape) < 0.6] = 0
    counts[5] = 0  # all-zero cell
    a = ad.AnnData(X=sp.csr_matrix(counts), obs=pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)]),
                   var=pd.DataFrame(index=[f"GENE{i}" for i in range(n_genes)]))
    a.layers["counts"] = a.X.copy()
    lib = np.maximum(counts.sum(1, keepdims=True), 1)
    a.X = sp.csr_matrix(np.log1p(counts / lib * 1e4).astype(np.float32))
    return a


SETS = {
    "A": {"up": [f"GENE{i}" for i in range(0, 30)], "down": [f"GENE{i}" for i in range(30, 45)]},
    "B": [f"GENE{i}" for i in range(100, 160)],
    "C": [f"GENE{i}" for i in range(200, 205)],
}
INDEX = {"name": "toy", "version": "1", "components": [{"set": "A", "sign": 1, "weight": 2.0},
                                                     {"set": "B", "sign": -1, "weight": 1.0}]}


def _score(a, method="ucell", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tl.score(a, SETS, method=method, index=kw.pop("index", INDEX), species="human", **kw)


def test_writes_obsm_obs_uns_and_matches_score_matrix():
    a = _sim()
    _score(a, max_rank=100, seed=4)
    table = a.obsm["dormsig_scores"]
    assert list(table.columns) == ["A", "B", "C", "dormancy_index"]
    idx = a.var_names.get_indexer
    ref = score_matrix(a.X, {"A": (idx(SETS["A"]["up"]), idx(SETS["A"]["down"])), "B": (idx(SETS["B"]), idx([])),
                             "C": (idx(SETS["C"]), idx([]))}, max_rank=100)
    np.testing.assert_array_equal(table[["A", "B", "C"]].to_numpy(), ref.to_numpy())
    np.testing.assert_allclose(table["dormancy_index"], (2 * ref["A"] - ref["B"]) / 3.0)
    np.testing.assert_array_equal(a.obs["dormsig_B"].to_numpy(), ref["B"].to_numpy())
    rec = a.uns["dormsig"]["score"]
    assert rec["method"] == "ucell" and rec["params"]["max_rank"] == 100 and rec["params"]["seed"] == 4
    assert rec["method_info"]["doi"] == "10.1016/j.csbj.2021.06.043"
    assert rec["index"]["name"] == "toy" and rec["index"]["computed"]
    assert not np.isnan(table.loc["cell5"]).any()  # all-zero cell: defined scores (0 for ucell)
    assert (table.loc["cell5", ["A", "B", "C"]] == 0).all()


def test_default_index_on_real_ctc(ctc_counts):
    from dormsig.signatures import load_index, load_library

    a = ctc_counts.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a)  # signatures=None: the sets of the default dormancy index
    ix = load_index()
    table = a.obsm["dormsig_scores"]
    assert list(table.columns) == [*ix.sets, "dormancy_index"]
    expected = sum(c.sign * c.weight * table[c.set] for c in ix.components) / sum(c.weight for c in ix.components)
    np.testing.assert_allclose(table["dormancy_index"], expected)
    rec = a.uns["dormsig"]["score"]
    assert rec["library_version"] == load_library().version
    assert rec["index"]["version"] == ix.version
    assert table.iloc[:, :-1].notna().any().all() and table.std().gt(0).all()


@pytest.mark.parametrize("method", ["ucell", "aucell", "singscore"])
def test_counts_and_log_normalised_give_same_scores(method):
    a = _sim()
    _score(a, method=method, max_rank=80)
    log_scores = a.obsm["dormsig_scores"].copy()
    _score(a, method=method, layer="counts", max_rank=80)
    np.testing.assert_allclose(a.obsm["dormsig_scores"].to_numpy(), log_scores.to_numpy(), atol=1e-12)


@pytest.mark.parametrize("method", ["ucell", "aucell", "singscore"])
def test_bit_identical_across_chunks_and_threads(method):
    a = _sim()
    _score(a, method=method, chunk_size=20000, threads=1)
    ref = a.obsm["dormsig_scores"].to_numpy().copy()
    for chunk, threads in ((1, 2), (7, 1), (64, 2)):
        _score(a, method=method, chunk_size=chunk, threads=threads)
        assert np.array_equal(a.obsm["dormsig_scores"].to_numpy(), ref)


def test_threads_restored():
    import numba

    before = numba.get_num_threads()
    _score(_sim(), threads=1)
    assert numba.get_num_threads() == before


def test_backed_and_dask_equal_in_memory(tmp_path):
    da = pytest.importorskip("dask.array")
    a = _sim()
    _score(a, method="ucell", max_rank=90)
    ref = a.obsm["dormsig_scores"].to_numpy().copy()
    path = tmp_path / "x.h5ad"
    ad.AnnData(X=a.X, obs=pd.DataFrame(index=a.obs_names), var=pd.DataFrame(index=a.var_names)).write_h5ad(path)
    b = ad.read_h5ad(path, backed="r")
    _score(b, method="ucell", max_rank=90, chunk_size=33)
    assert np.array_equal(b.obsm["dormsig_scores"].to_numpy(), ref)
    b.file.close()
    c = ad.AnnData(X=da.from_array(a.X.toarray(), chunks=(40, -1)), obs=pd.DataFrame(index=a.obs_names),
                   var=pd.DataFrame(index=a.var_names))
    _score(c, method="ucell", max_rank=90, chunk_size=50)
    assert np.array_equal(c.obsm["dormsig_scores"].to_numpy(), ref)


def test_copy_leaves_input_alone():
    a = _sim()
    out = _score(a, copy=True)
    assert "dormsig_scores" in out.obsm and "dormsig_scores" not in a.obsm and "dormsig" not in a.uns


@pytest.mark.parametrize("method", ["ucell", "aucell", "singscore"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_raises_input_error_naming_cell(method, value):
    # ucell checks in its kernel's own pass, the others before theirs: same message, first bad cell named
    a = _sim()
    x = a.X.toarray()
    x[7, 3] = value
    x[9, 4] = value
    a.X = sp.csr_matrix(x)
    with pytest.raises(InputError, match="cell7 has NaN or infinite"):
        _score(a, method=method)


def test_transposed_matrix_raises():
    a = _sim()
    t = ad.AnnData(X=a.X.T.tocsr(), obs=pd.DataFrame(index=a.var_names), var=pd.DataFrame(index=a.obs_names))
    with pytest.raises(InputError, match="transposed"):
        _score(t)


def test_no_gene_in_data_raises():
    a = _sim()
    with pytest.raises(MatchError):
        tl.score(a, {"X": ["NOPE1", "NOPE2"]}, index=None, species="human")


def test_small_set_warns_and_is_scored():
    a = _sim()
    with pytest.warns(UserWarning, match="min_genes"):
        tl.score(a, {"tiny": ["GENE1", "GENE2", "NOPE1", "NOPE2", "NOPE3", "NOPE4"], "big": [f"GENE{i}" for i in range(50, 90)]}, index=None,
                 species="human", min_genes=5)
    assert a.obsm["dormsig_scores"]["tiny"].notna().all()
    assert a.uns["dormsig"]["score"]["n_genes_matched"]["tiny"] == 2


def test_unknown_method():
    with pytest.raises(InputError, match="unknown scoring method"):
        _score(_sim(), method="nope")


def test_method_records():
    infos = tl.methods()
    assert set(infos) == {"ucell", "aucell", "singscore", "scanpy", "ssgsea", "gsva", "zmean"}
    assert {n for n, i in infos.items() if i.single_sample} == {"ucell", "aucell", "singscore"}
    assert all(i.cohort_dependent != i.single_sample for i in infos.values())


# -------------------------------------------------------------------------------------- cohort methods


def test_zmean_equals_numpy():
    a = _sim()
    _score(a, method="zmean")
    x = a.X.toarray().astype(np.float64)
    sd = x.std(0)
    z = np.divide(x - x.mean(0), sd, out=np.zeros_like(x), where=sd > 0)
    idx = a.var_names.get_indexer
    expected_a = z[:, idx(SETS["A"]["up"])].mean(1) - z[:, idx(SETS["A"]["down"])].mean(1)
    np.testing.assert_allclose(a.obsm["dormsig_scores"]["A"], expected_a, atol=1e-10)


def test_scanpy_matches_score_genes_and_does_not_touch_input():
    import scanpy as sc

    a = _sim()
    before_x = a.X.copy()
    before_obs = a.obs.copy()
    _score(a, method="scanpy", seed=11, index=None)
    assert (a.X != before_x).nnz == 0
    assert list(a.obs.columns) == [*before_obs.columns, "dormsig_A", "dormsig_B", "dormsig_C"]
    ref = ad.AnnData(X=before_x.copy(), obs=before_obs.copy(), var=a.var.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.score_genes(ref, SETS["B"], random_state=11, score_name="b")
        sc.tl.score_genes(ref, SETS["A"]["up"], random_state=11, score_name="au")
        sc.tl.score_genes(ref, SETS["A"]["down"], random_state=11, score_name="ad")
    np.testing.assert_allclose(a.obsm["dormsig_scores"]["B"], ref.obs["b"], atol=1e-6)
    np.testing.assert_allclose(a.obsm["dormsig_scores"]["A"], ref.obs["au"] - ref.obs["ad"], atol=1e-6)
    assert a.uns["dormsig"]["score"]["params"]["random_state"] == 11


def test_ssgsea_keeps_small_sets_and_matches_gseapy(ctc_counts):
    import gseapy

    a = ctc_counts[:12].copy()
    a.X = np.log1p(a.X)
    sets = {"small": ["ATF4", "XBP1", "HSPA5", "DDIT3", "EIF2AK3"], "bigger": list(a.var_names[:40])}
    tl.score(a, sets, method="ssgsea", index=None, species="human")
    df = pd.DataFrame(a.X.T, index=a.var_names, columns=a.obs_names)
    res = gseapy.ssgsea(df, sets, min_size=1, max_size=100000, outdir=None, no_plot=True, threads=1, seed=0)
    ref = res.res2d.pivot(index="Name", columns="Term", values="NES").astype(float).reindex(a.obs_names)
    assert a.obsm["dormsig_scores"]["small"].notna().all()  # not dropped by gseapy's min_size=15 default
    np.testing.assert_allclose(a.obsm["dormsig_scores"]["small"], ref["small"], atol=1e-10)
    assert a.uns["dormsig"]["score"]["method_info"]["cohort_dependent"]


def test_gsva_runs_and_matches_gseapy(ctc_counts):
    import gseapy

    a = ctc_counts[:10, :3000].copy()
    a.X = np.log1p(a.X)
    sets = {"s1": list(a.var_names[:25]), "s2": {"up": list(a.var_names[100:130]), "down": list(a.var_names[200:220])}}
    tl.score(a, sets, method="gsva", index=None, species="human")
    df = pd.DataFrame(a.X.T, index=a.var_names, columns=a.obs_names)
    res = gseapy.gsva(df, {"s1": sets["s1"], "u": sets["s2"]["up"], "d": sets["s2"]["down"]}, min_size=1,
                      max_size=100000, outdir=None, threads=1, seed=0)
    ref = res.res2d.pivot(index="Name", columns="Term", values="ES").astype(float).reindex(a.obs_names)
    np.testing.assert_allclose(a.obsm["dormsig_scores"]["s1"], ref["s1"], atol=1e-8)
    np.testing.assert_allclose(a.obsm["dormsig_scores"]["s2"], ref["u"] - ref["d"], atol=1e-8)


def test_library_names_and_library_object_give_same_scores(ctc_counts):
    from dormsig.signatures import load_library

    lib = load_library()
    names = ["DORMSIG_PERK_ATF4_CHOP_CORE", "DORMSIG_PROLIFERATION_CORE"]
    a, b = ctc_counts.copy(), ctc_counts.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a, names, index=None)
        tl.score(b, lib, index=None)
        c = ctc_counts.copy()
        tl.score(c, {n: {"up": list(lib[n].up), "down": list(lib[n].down)} for n in names}, index=None)
    np.testing.assert_array_equal(a.obsm["dormsig_scores"][names], b.obsm["dormsig_scores"][names])
    assert a.uns["dormsig"]["score"]["library_version"] == lib.version
    # a plain dict of the same genes (exact symbols) scores the same
    np.testing.assert_array_equal(a.obsm["dormsig_scores"][names], c.obsm["dormsig_scores"][names])


def test_singscore_dispersion_written():
    a = _sim()
    _score(a, method="singscore", index=None)
    disp = a.obsm["dormsig_singscore_dispersion"]
    assert list(disp.columns) == ["A", "B", "C"] and (disp.to_numpy() >= 0).all()
