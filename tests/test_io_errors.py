"""Bad input: each raises a dormsig.errors subclass with a one-line message naming the file, and writes nothing."""

from __future__ import annotations

import gzip

import anndata
import numpy as np
import pytest
from io_fixtures import IO_DATA

from dormsig.errors import DormsigError, FormatError, InputError, MissingInputError
from dormsig.io import read


def _raises(exc_type, path, match, **kwargs):
    parent = path.parent if path.exists() else None
    before = sorted(parent.iterdir()) if parent else None
    with pytest.raises(exc_type, match=match) as err:
        read(path, harmonise=False, **kwargs)
    msg = str(err.value)
    assert isinstance(err.value, DormsigError)
    assert "\n" not in msg and str(path) in msg, msg
    if parent:
        assert sorted(parent.iterdir()) == before  # nothing written
    return msg


def test_missing_path(tmp_path):
    msg = _raises(MissingInputError, tmp_path / "nope.csv", "no such file")
    assert isinstance(FileNotFoundError(), OSError) and "nope.csv" in msg


def test_empty_file(tmp_path):
    for name in ("empty.csv", "empty.tsv.gz"):
        path = tmp_path / name
        if name.endswith(".gz"):
            with gzip.open(path, "wt"):
                pass
        else:
            path.write_text("")
        _raises(InputError, path, "empty")


def test_header_only(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("gene,S1,S2\n")
    _raises(InputError, path, "no data lines")


def test_no_numeric_columns(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("gene\tname\tdescription\nTP53\ttumor protein p53\tx\nGAPDH\tgapdh\ty\n")
    _raises(InputError, path, "no numeric count columns")


def test_negative_count_names_sample_and_gene(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("gene_id\tS1\tS2\nENSG00000141510\t4\t5\nENSG00000111640\t3\t-2\n")
    msg = _raises(InputError, path, "negative")
    assert "'S2'" in msg and "'ENSG00000111640'" in msg and "-2" in msg


@pytest.mark.parametrize("cell", ["NA", "", "inf", "nan"])
def test_non_finite_count(tmp_path, cell):
    path = tmp_path / "t.csv"
    path.write_text(f"gene_id,S1,S2\nENSG00000141510,1,2\nENSG00000111640,{cell},3\n")
    msg = _raises(InputError, path, "non-finite")
    assert "'S1'" in msg and "'ENSG00000111640'" in msg


def test_non_numeric_cell_names_column_and_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("gene_id,S1,S2\nENSG00000141510,1,2\nENSG00000111640,3,4\nENSG00000075624,5,abc\n")
    msg = _raises(InputError, path, "non-numeric value 'abc'")
    assert "column 'S2'" in msg and "line 4" in msg


def test_non_numeric_cell_in_quantifier(tmp_path):
    path = tmp_path / "S1_ReadsPerGene.out.tab"
    path.write_text("N_unmapped\t1\t1\t1\nN_multimapping\t1\t1\t1\nN_noFeature\t1\t1\t1\nN_ambiguous\t1\t1\t1\n"
                    "G1\t10\t1\t9\nG2\t5\tx\t5\n")
    msg = _raises(InputError, path, "non-numeric value 'x'")
    assert "'forward'" in msg and "line 6" in msg


def test_duplicated_sample_names(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("gene_id\tS1\tS2\tS1\nENSG00000141510\t1\t2\t3\n")
    _raises(InputError, path, "duplicated sample names: 'S1'")
    fc = tmp_path / "fc.txt"
    fc.write_text("# Program:featureCounts v2.0.6; Command:\"featureCounts\"\n"
                  "Geneid\tChr\tStart\tEnd\tStrand\tLength\ta/S1.bam\tb/S1.bam\nG1\tchr1\t1\t10\t+\t10\t1\t2\n")
    _raises(InputError, fc, "duplicated sample names: 'S1'")


def test_truncated_gz(tmp_path):
    data = (IO_DATA / "airway_counts_2000genes.csv.gz").read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    _raises(InputError, path, "truncated or corrupt gzip")


def test_corrupt_gz_10x(tmp_path):
    import shutil

    d = tmp_path / "tenx"
    shutil.copytree(IO_DATA / "tenx_v3", d)
    data = (d / "matrix.mtx.gz").read_bytes()
    (d / "matrix.mtx.gz").write_bytes(data[: len(data) - 12])
    with pytest.raises(InputError, match="truncated or corrupt gzip"):
        read(d, harmonise=False)


def test_truncated_h5ad(tmp_path):
    good = tmp_path / "good.h5ad"
    anndata.AnnData(X=np.ones((5, 4), dtype=np.float32)).write_h5ad(good)
    data = good.read_bytes()
    path = tmp_path / "cut.h5ad"
    path.write_bytes(data[: len(data) // 2])
    _raises(InputError, path, "h5ad")
    junk = tmp_path / "junk.h5ad"
    junk.write_bytes(b"not an hdf5 file at all" * 10)
    _raises(InputError, junk, "h5ad")


def test_unknown_format(tmp_path):
    for name, content in (("x.bam", b"BAM\x01\x00\x00"), ("x.xlsx", b"PK\x03\x04\x00\x00junk"),
                          ("notes", b"just some words\nno delimiters here\n")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(FormatError) as err:
            read(path, harmonise=False)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FormatError, match="unknown format 'parquet'"):
        read(IO_DATA / "tables" / "samples_x_genes.csv", format="parquet", harmonise=False)
    empty_dir = tmp_path / "d"
    empty_dir.mkdir()
    _raises(FormatError, empty_dir, "no recognised input")


def test_ragged_header(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("gene_id\tS1\nENSG00000141510\t1\t2\t3\n")
    _raises(InputError, path, "header has 2 fields but line 2 has 4")


def test_option_for_other_format(tmp_path):
    with pytest.raises(InputError, match="tx2gene= applies only"):
        read(IO_DATA / "tables" / "samples_x_genes.csv", tx2gene=False, harmonise=False)
    with pytest.raises(InputError, match="orientation= applies only"):
        read(IO_DATA / "tenx_v3", orientation="genes_x_samples", harmonise=False)
