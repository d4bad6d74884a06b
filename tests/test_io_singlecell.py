"""10x matrix.mtx (v2/v3) and .h5, .h5ad and .loom."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from io_fixtures import IO_DATA, write_10x_h5_v2, write_10x_h5_v3, write_loom_loompy_layout

from dormsig.io import detect_format, read

# tenx_v3 fixture as a dense genes x cells matrix (hand-written matrix.mtx entries)
V3_DENSE = np.array([
    [0, 0, 0, 0],      # ENSG00000243485 MIR1302-2HG
    [1, 0, 2, 0],      # TP53
    [5, 3, 0, 8],      # GAPDH
    [10, 0, 4, 1],     # ACTB
    [50, 60, 0, 2],    # CD3 antibody capture: dropped
])
V3_BARCODES = ["AAACCCAAGAAACACT-1", "AAACCCAAGAAACCAT-1", "AAACCCAAGAAACCCA-1", "AAACCCAAGAAACCCG-1"]


def test_10x_v3_mtx_directory():
    path = IO_DATA / "tenx_v3"
    assert detect_format(path) == "10x_mtx"
    adata = read(path, harmonise=False)
    assert list(adata.obs_names) == V3_BARCODES
    assert list(adata.var_names) == ["ENSG00000243485", "ENSG00000141510", "ENSG00000111640", "ENSG00000075624"]
    assert list(adata.var["gene_symbols"]) == ["MIR1302-2HG", "TP53", "GAPDH", "ACTB"]
    assert set(adata.var["feature_types"]) == {"Gene Expression"}
    counts = adata.layers["counts"]
    assert sp.issparse(counts) and counts.format == "csr" and counts.dtype == np.int32
    np.testing.assert_array_equal(counts.toarray(), V3_DENSE[:4].T)
    info = adata.uns["dormsig"]["input"]
    assert info["dropped_feature_types"] == {"Antibody Capture": 1}
    assert info["layout"] == "v3"
    # the matrix file itself also points to its directory
    same = read(path / "matrix.mtx.gz", harmonise=False)
    np.testing.assert_array_equal(same.layers["counts"].toarray(), counts.toarray())


def test_10x_v2_mtx_directory_duplicate_symbols():
    adata = read(IO_DATA / "tenx_v2", harmonise=False)
    assert list(adata.obs_names) == ["AAACATACAAAACG-1", "AAACATACAAAAGC-1", "AAACATACAAACAG-1"]
    # Ensembl IDs are unique where symbols are not (two TBCE)
    assert list(adata.var_names) == ["ENSG00000141510", "ENSG00000111640", "ENSG00000284770", "ENSG00000285053"]
    assert list(adata.var["gene_symbols"]) == ["TP53", "GAPDH", "TBCE", "TBCE"]
    assert "feature_types" not in adata.var
    expected = np.array([[2, 7, 0, 0], [0, 0, 1, 0], [0, 9, 0, 3]])
    np.testing.assert_array_equal(adata.layers["counts"].toarray(), expected)
    assert adata.uns["dormsig"]["input"]["layout"] == "v2"


def test_10x_h5_v3(tmp_path):
    path = write_10x_h5_v3(
        tmp_path / "filtered_feature_bc_matrix.h5", V3_DENSE,
        ids=["ENSG00000243485", "ENSG00000141510", "ENSG00000111640", "ENSG00000075624", "CD3"],
        names=["MIR1302-2HG", "TP53", "GAPDH", "ACTB", "CD3_TotalSeqB"],
        types=["Gene Expression"] * 4 + ["Antibody Capture"], barcodes=V3_BARCODES,
    )
    assert detect_format(path) == "10x_h5"
    adata = read(path, harmonise=False)
    assert list(adata.obs_names) == V3_BARCODES
    assert list(adata.var_names) == ["ENSG00000243485", "ENSG00000141510", "ENSG00000111640", "ENSG00000075624"]
    assert list(adata.var["gene_symbols"]) == ["MIR1302-2HG", "TP53", "GAPDH", "ACTB"]
    counts = adata.layers["counts"]
    assert sp.issparse(counts) and np.issubdtype(counts.dtype, np.integer)
    np.testing.assert_array_equal(counts.toarray(), V3_DENSE[:4].T)
    assert adata.uns["dormsig"]["input"]["dropped_feature_types"] == {"Antibody Capture": 1}


def _small_anndata(x, layers=None):
    ad = anndata.AnnData(
        X=x,
        obs=pd.DataFrame({"group": pd.Categorical(["a", "b", "a"])}, index=["c1", "c2", "c3"]),
        var=pd.DataFrame({"symbol": ["TP53", "GAPDH"]}, index=["ENSG00000141510", "ENSG00000111640"]),
    )
    for key, value in (layers or {}).items():
        ad.layers[key] = value
    return ad


COUNTS = np.array([[1, 10], [0, 20], [3, 0]])


def test_h5ad_with_counts_layer(tmp_path):
    path = tmp_path / "a.h5ad"
    _small_anndata(np.log1p(COUNTS.astype(float)), {"counts": sp.csr_matrix(COUNTS)}).write_h5ad(path)
    adata = read(path, harmonise=False)
    np.testing.assert_array_equal(np.asarray(adata.layers["counts"].todense()), COUNTS)
    assert np.issubdtype(adata.layers["counts"].dtype, np.integer)
    assert list(adata.obs["group"]) == ["a", "b", "a"] and list(adata.var["symbol"]) == ["TP53", "GAPDH"]
    assert adata.uns["dormsig"]["input"]["counts_source"] == "layers['counts']"
    assert adata.uns["dormsig"]["input"]["counts"] == "present"
    assert "normalise" in adata.uns["dormsig"]


def test_h5ad_integer_x_is_counts(tmp_path):
    path = tmp_path / "b.h5ad"
    _small_anndata(COUNTS.astype(np.float32)).write_h5ad(path)  # airway.h5ad style: integers stored as float32
    adata = read(path, harmonise=False)
    assert adata.layers["counts"].dtype == np.int32
    np.testing.assert_array_equal(adata.layers["counts"], COUNTS)
    assert adata.uns["dormsig"]["input"]["counts_source"] == "X (integer-valued)"


def test_h5ad_normalised_x_kept_and_counts_absent(tmp_path):
    path = tmp_path / "c.h5ad"
    logx = np.log1p(COUNTS.astype(np.float32) * 1.37)
    _small_anndata(logx).write_h5ad(path)
    adata = read(path, harmonise=False)
    assert "counts" not in adata.layers
    np.testing.assert_array_equal(adata.X, logx)
    assert adata.uns["dormsig"]["input"]["counts"] == "absent"
    assert "normalise" not in adata.uns["dormsig"]


def test_loom_loompy_layout(tmp_path):
    path = write_loom_loompy_layout(tmp_path / "v.loom", COUNTS.T, ["TP53", "GAPDH"], ["c1", "c2", "c3"],
                                    layers={"spliced": COUNTS.T, "unspliced": np.zeros_like(COUNTS.T)})
    assert detect_format(path) == "loom"
    adata = read(path, harmonise=False)
    assert list(adata.obs_names) == ["c1", "c2", "c3"] and list(adata.var_names) == ["TP53", "GAPDH"]
    assert list(adata.var["Accession"]) == ["ID0", "ID1"]
    np.testing.assert_array_equal(adata.layers["counts"], COUNTS)
    np.testing.assert_array_equal(adata.layers["spliced"], COUNTS)
    # the same file without its extension is recognised from its HDF5 layout
    bare = tmp_path / "loom_file"
    bare.write_bytes(path.read_bytes())
    assert detect_format(bare) == "loom"


def test_loom_written_by_anndata_matches_peer_reader(tmp_path):
    pytest.importorskip("loompy")
    path = tmp_path / "d.loom"
    _small_anndata(COUNTS.astype(np.float32)).write_loom(path)
    adata = read(path, harmonise=False)
    peer = anndata.io.read_loom(path, obs_names="obs_names", var_names="var_names")
    assert list(adata.obs_names) == list(peer.obs_names) == ["c1", "c2", "c3"]
    assert list(adata.var_names) == list(peer.var_names)
    np.testing.assert_array_equal(adata.layers["counts"], np.asarray(peer.X.todense()))
    np.testing.assert_array_equal(adata.layers["counts"], COUNTS)


@pytest.mark.filterwarnings("ignore:Variable names are not unique")
def test_10x_h5_matches_scanpy(tmp_path):
    sc = pytest.importorskip("scanpy")
    v3 = write_10x_h5_v3(
        tmp_path / "v3.h5", V3_DENSE, ids=["E1", "E2", "E3", "E4", "CD3"], names=["A", "B", "B", "C", "CD3"],
        types=["Gene Expression"] * 4 + ["Antibody Capture"], barcodes=V3_BARCODES,
    )
    v2 = write_10x_h5_v2(tmp_path / "v2.h5", V3_DENSE[:4], ids=["E1", "E2", "E3", "E4"], names=["A", "B", "B", "C"],
                         barcodes=V3_BARCODES)
    for path in (v3, v2):
        ours = read(path, harmonise=False)
        peer = sc.read_10x_h5(path)  # gex_only=True by default
        assert list(ours.obs_names) == list(peer.obs_names)
        assert list(ours.var["gene_ids"]) == list(peer.var["gene_ids"])
        assert list(ours.var["gene_symbols"]) == [n.split("-")[0] for n in peer.var_names]  # scanpy: B, B-1
        np.testing.assert_array_equal(ours.layers["counts"].toarray(), peer.X.toarray())
    assert ours.uns["dormsig"]["input"]["layout"] == "v2"


@pytest.mark.parametrize("n_cells", [150])
def test_many_sparse_cells_from_dense_table_become_csr(tmp_path, n_cells):
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.3, size=(n_cells, 40))
    df = pd.DataFrame(counts.T, index=[f"ENSG{k:011d}" for k in range(40)],
                      columns=[f"cell{k}" for k in range(n_cells)])
    path = tmp_path / "sc.tsv"
    df.to_csv(path, sep="\t")
    adata = read(path, harmonise=False)
    assert sp.issparse(adata.layers["counts"]) and adata.layers["counts"].format == "csr"
    np.testing.assert_array_equal(adata.layers["counts"].toarray(), counts)
    assert adata.layers["counts"].dtype == np.int32
