"""Delimited count tables: orientation, short headers, annotation columns, real data, provenance."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
from io_fixtures import IO_DATA, file_sha256

from dormsig.data import CTC_COUNTS, example_path
from dormsig.errors import FormatError, InputError
from dormsig.io import read
from dormsig.io.tables import infer_orientation


def _read_by_hand(path, sep):
    """Independent parse with plain string splitting (handles the one-field-short header)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        rows = [line.rstrip("\r\n").split(sep) for line in handle if line.strip()]
    header, body = rows[0], rows[1:]
    if len(header) == len(body[0]):
        header = header[1:]
    genes = [r[0] for r in body]
    values = np.array([[float(x) for x in r[1:]] for r in body])
    return header, genes, values


def test_ctc_reads_without_options_into_29_x_16026_integer_counts():
    path = example_path(CTC_COUNTS)
    adata = read(path, harmonise=False)
    samples, genes, values = _read_by_hand(path, "\t")
    assert adata.shape == (29, 16026)
    assert list(adata.obs_names) == samples
    assert samples[0] == "GSM1253375" and samples[-1] == "GSM1253403"
    assert list(adata.var_names) == genes
    counts = adata.layers["counts"]
    assert isinstance(counts, np.ndarray)  # 29 samples: dense
    assert counts.dtype == np.int32
    # five cells are 0.999999999999999 in the file (R summation artefact): rounded and reported
    assert np.count_nonzero(values != np.rint(values)) == 5
    np.testing.assert_array_equal(counts, np.rint(values).T.astype(np.int64))
    info = adata.uns["dormsig"]["input"]
    assert info["n_values_rounded_to_integer"] == 5
    assert info["orientation"] == "genes_x_samples" and info["header_short"]
    # spot checks from the data notes: NOTCH1 and NOTCH2 detected in 18 of 29 samples, ATF4 in all
    assert int((counts[:, genes.index("NOTCH1")] > 0).sum()) == 18
    assert int((counts[:, genes.index("NOTCH2")] > 0).sum()) == 18
    assert int((counts[:, genes.index("ATF4")] > 0).sum()) == 29
    lib = counts.sum(axis=1)
    assert 31_000 < lib.min() < 32_000 and 11.0e6 < lib.max() < 11.2e6  # "31.5 k to 11.1 M reads"


def test_x_is_log1p_normalised_counts():
    adata = read(example_path(CTC_COUNTS), harmonise=False)
    counts = adata.layers["counts"].astype(float)
    lib = counts.sum(axis=1, keepdims=True)
    target = adata.uns["dormsig"]["normalise"]["params"]["target_sum"]
    np.testing.assert_allclose(adata.X, np.log1p(counts / lib * target), rtol=1e-6, atol=1e-6)


def test_airway_slice_orientation_and_values():
    path = IO_DATA / "airway_counts_2000genes.csv.gz"
    adata = read(path, harmonise=False)
    samples, genes, values = _read_by_hand(path, ",")
    assert adata.shape == (8, 2000)
    assert list(adata.obs_names) == samples == ["SRR1039508", "SRR1039509", "SRR1039512", "SRR1039513",
                                                 "SRR1039516", "SRR1039517", "SRR1039520", "SRR1039521"]
    assert adata.var_names[0] == "ENSG00000000003"
    assert adata.layers["counts"].dtype == np.int32
    np.testing.assert_array_equal(adata.layers["counts"], values.T.astype(np.int64))
    assert adata.layers["counts"][0, 0] == 679  # ENSG00000000003 in SRR1039508
    info = adata.uns["dormsig"]["input"]
    assert info["id_column"] == "gene_id" and not info["header_short"] and info["separator"] == ","


def test_oligodendroglioma_slice_keeps_float_counts_sparse():
    path = IO_DATA / "oligodendroglioma_300genes.counts.matrix.gz"
    adata = read(path, harmonise=False)
    cells, genes, values = _read_by_hand(path, "\t")
    assert adata.shape == (184, 300)
    assert list(adata.var_names) == genes and list(adata.obs_names) == cells
    counts = adata.layers["counts"]
    assert sp.isspmatrix_csr(counts) or isinstance(counts, sp.csr_array)  # 184 cells, mostly zeros
    assert np.count_nonzero(values) / values.size < 0.5
    assert counts.dtype == np.float64
    np.testing.assert_array_equal(counts.toarray(), values.T)
    assert counts[0, genes.index("A2M")] == 0.0
    assert adata.uns["dormsig"]["input"]["counts_dtype"] == "float"


def test_annotation_columns_go_to_var_and_are_not_counted():
    adata = read(IO_DATA / "tables" / "annotated_genes_x_samples.tsv", harmonise=False)
    assert list(adata.obs_names) == ["ctrl_1", "ctrl_2", "treated_1"]
    assert list(adata.var_names) == ["ENSG00000141510", "ENSG00000111640", "ENSG00000075624", "ENSG00000223972"]
    assert list(adata.var["gene_name"]) == ["TP53", "GAPDH", "ACTB", "DDX11L1"]
    assert list(adata.var["Length"]) == [2512, 1875, 1922, 1735]  # numeric, yet an annotation
    assert adata.var["gene_biotype"].iloc[3] == "transcribed_unprocessed_pseudogene"
    expected = np.array([[433, 80211, 50000, 0], [1287, 102344, 61000, 1], [56, 64000, 58000, 0]])
    np.testing.assert_array_equal(adata.layers["counts"], expected)
    assert adata.layers["counts"].dtype == np.int32
    assert list(adata.uns["dormsig"]["input"]["annotation_columns"]) == ["gene_name", "Length", "gene_biotype"]


def test_samples_x_genes_detected_from_gene_symbols():
    adata = read(IO_DATA / "tables" / "samples_x_genes.csv", harmonise=False)
    assert list(adata.obs_names) == ["cell_a", "cell_b", "cell_c", "cell_d"]
    assert list(adata.var_names) == ["TP53", "GAPDH", "ACTB", "NOTCH1", "NOTCH2", "ATF4"]
    np.testing.assert_array_equal(adata.layers["counts"][:, 1], [14613, 102, 345, 9544])  # GAPDH
    assert adata.uns["dormsig"]["input"]["orientation"] == "samples_x_genes"


def test_orientation_override(tmp_path):
    path = IO_DATA / "tables" / "samples_x_genes.csv"
    flipped = read(path, orientation="genes_x_samples", harmonise=False)
    assert flipped.shape == (6, 4)
    assert list(flipped.obs_names) == ["TP53", "GAPDH", "ACTB", "NOTCH1", "NOTCH2", "ATF4"]
    assert flipped.uns["dormsig"]["input"]["orientation_inferred"] is False
    # an ambiguous table is refused, and reads once the orientation is given
    amb = tmp_path / "amb.csv"
    amb.write_text("id,x,y\nfoo,1,2\nbar,3,4\nbaz,5,6\n")
    with pytest.raises(FormatError, match="orientation"):
        read(amb, harmonise=False)
    ad = read(amb, orientation="genes_x_samples", harmonise=False)
    assert list(ad.obs_names) == ["x", "y"] and list(ad.var_names) == ["foo", "bar", "baz"]
    np.testing.assert_array_equal(ad.layers["counts"], [[1, 3, 5], [2, 4, 6]])
    with pytest.raises(InputError, match="orientation must be"):
        read(amb, orientation="rows", harmonise=False)


def test_infer_orientation_rules():
    ens = [f"ENSG{k:011d}" for k in range(10)]
    assert infer_orientation(ens, ["a", "b"]) == "genes_x_samples"
    assert infer_orientation(["a", "b"], ens) == "samples_x_genes"
    assert infer_orientation(["x1", "x2", "x3"], ["GSM1", "GSM2"]) == "genes_x_samples"
    assert infer_orientation(["AAACCCAAGAAACACT-1", "AAACCCAAGAAACCAT-1"], ["u", "v", "w"]) == "samples_x_genes"
    assert infer_orientation(["q", "r"], ["s", "t"]) is None
    assert infer_orientation(["q", "r"], ["s", "t"], label_name="gene_id") == "genes_x_samples"
    assert infer_orientation(["q", "r"], ["s", "t"], label_name="Sample") == "samples_x_genes"


def test_duplicated_gene_ids_are_kept_unique_for_harmonise(tmp_path):
    path = tmp_path / "dup.tsv"
    path.write_text("gene\tS1\tS2\nTP53\t1\t2\nGAPDH\t3\t4\nTP53\t5\t6\n")
    adata = read(path, harmonise=False)
    assert list(adata.var_names) == ["TP53", "GAPDH", "TP53__1"]
    assert list(adata.var["id_in_file"]) == ["TP53", "GAPDH", "TP53"]
    np.testing.assert_array_equal(adata.layers["counts"], [[1, 3, 5], [2, 4, 6]])
    assert adata.uns["dormsig"]["input"]["n_duplicated_gene_ids"] == 1


def test_float_integral_values_become_integers_and_gz_semicolon(tmp_path):
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("gene_id;S1;S2\nENSG00000141510;1.0;2.0\nENSG00000111640;3.0;0.0\n")
    adata = read(path, harmonise=False)
    assert adata.layers["counts"].dtype == np.int32
    np.testing.assert_array_equal(adata.layers["counts"], [[1, 3], [2, 0]])


def test_provenance_and_input_unchanged(tmp_path):
    src = IO_DATA / "tables" / "annotated_genes_x_samples.tsv"
    path = tmp_path / src.name
    shutil.copy(src, path)
    before = file_sha256(path)
    mtime = path.stat().st_mtime_ns
    adata = read(path, harmonise=False)
    assert file_sha256(path) == before and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]  # nothing written beside it
    info = adata.uns["dormsig"]["input"]
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["path"] == str(path)
    assert info["format"] == "table" and info["step"] == "input"
    assert info["params"]["harmonise"] is False
    assert info["n_obs"] == 3 and info["n_vars"] == 4


def test_r_write_table_defaults_space_separated_quoted(tmp_path):
    # write.table(m, "x.txt") in R: sep=" ", quoted names, no name for the row-name column
    path = tmp_path / "x.txt"
    path.write_text('"GSM1253375" "GSM1253376"\n"TP53" 0 1\n"GAPDH" 14613 102\n"A1BG-AS1" 0 0\n')
    adata = read(path, harmonise=False)
    assert list(adata.obs_names) == ["GSM1253375", "GSM1253376"]
    assert list(adata.var_names) == ["TP53", "GAPDH", "A1BG-AS1"]
    np.testing.assert_array_equal(adata.layers["counts"], [[0, 14613, 0], [1, 102, 0]])
