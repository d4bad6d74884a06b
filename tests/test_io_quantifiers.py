"""featureCounts, STAR, Salmon, kallisto and RSEM outputs against hand-computed expectations."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from io_fixtures import IO_DATA, file_sha256

from dormsig.errors import FormatError, InputError
from dormsig.io import detect_format, read
from dormsig.io.quantifiers import bam_sample_name, infer_strand

GENES3 = ["ENSG00000111640", "ENSG00000141510", "ENSG00000223972"]  # GAPDH, TP53, DDX11L1 (sorted)


def test_featurecounts():
    path = IO_DATA / "featurecounts" / "counts.txt"
    assert detect_format(path) == "featurecounts"
    adata = read(path, harmonise=False)
    assert list(adata.obs_names) == ["S1", "S2", "S3"]
    assert list(adata.obs["bam"]) == ["/data/align/S1.Aligned.sortedByCoord.out.bam", "/data/align/S2.bam",
                                      "run3/S3.bam"]
    assert list(adata.var_names) == ["ENSG00000223972.5", "ENSG00000227232.5", "ENSG00000141510.18",
                                     "ENSG00000111640.15"]
    expected = np.array([[0, 12, 433, 80211], [1, 7, 1287, 102344], [0, 30, 56, 64000]])
    np.testing.assert_array_equal(adata.layers["counts"], expected)
    assert adata.layers["counts"].dtype == np.int32
    # the annotation columns are in var, never counted
    assert list(adata.var["length"]) == [1735, 1351, 2512, 1875]
    assert adata.var["chr"].iloc[0] == "chr1;chr1;chr1" and adata.var["strand"].iloc[1] == "-;-"
    # column sums equal the 'Assigned' line of featureCounts' own summary
    summary = pd.read_csv(IO_DATA / "featurecounts" / "counts.txt.summary", sep="\t", index_col=0)
    np.testing.assert_array_equal(adata.layers["counts"].sum(axis=1), summary.loc["Assigned"].to_numpy())
    assert adata.uns["dormsig"]["input"]["tool"] == "featureCounts"


def test_bam_sample_names():
    assert bam_sample_name("/a/b/S1.bam") == "S1"
    assert bam_sample_name("S2_Aligned.sortedByCoord.out.bam") == "S2"
    assert bam_sample_name("C:\\x\\S3.BAM") == "S3"


def test_star_reverse_inferred_list_and_directory():
    files = sorted((IO_DATA / "star_reverse").iterdir())
    adata = read(files, harmonise=False)
    assert list(adata.obs_names) == ["S1", "S2"]  # "S1_" and "S2." prefixes
    assert list(adata.var_names) == ["ENSG00000223972", "ENSG00000227232", "ENSG00000141510", "ENSG00000111640"]
    np.testing.assert_array_equal(adata.layers["counts"], [[0, 11, 433, 80211], [2, 7, 1287, 102344]])
    info = adata.uns["dormsig"]["input"]
    assert info["strand"] == "reverse"
    inf = info["strand_inference"]
    assert inf["strand_inferred"] is True
    assert inf["sum_forward"] == 1469 and inf["sum_reverse"] == 184295 and inf["sum_unstranded"] == 185761
    assert inf["fraction_forward"] == pytest.approx(1469 / (1469 + 184295))
    assert info["star_excluded_rows"]["S1"] == {"N_unmapped": 2674, "N_multimapping": 10382,
                                                "N_noFeature": 16011, "N_ambiguous": 1288}
    same = read(IO_DATA / "star_reverse", harmonise=False)  # a directory of files
    np.testing.assert_array_equal(same.layers["counts"], adata.layers["counts"])


def test_star_explicit_strand_and_unstranded_inference():
    files = sorted((IO_DATA / "star_reverse").iterdir())
    fwd = read(files, strand="forward", harmonise=False)
    np.testing.assert_array_equal(fwd.layers["counts"], [[0, 1, 8, 790], [0, 0, 10, 660]])
    assert fwd.uns["dormsig"]["input"]["strand_inference"]["strand_inferred"] is False
    uns = read(files, strand="unstranded", harmonise=False)
    np.testing.assert_array_equal(uns.layers["counts"], [[0, 12, 440, 81000], [2, 7, 1300, 103000]])
    one = read(IO_DATA / "star_unstranded" / "S9" / "ReadsPerGene.out.tab", harmonise=False)
    assert list(one.obs_names) == ["S9"]  # no prefix: the directory name
    assert one.uns["dormsig"]["input"]["strand"] == "unstranded"
    np.testing.assert_array_equal(one.layers["counts"], [[0, 20, 500, 80000]])
    with pytest.raises(InputError, match="strand must be"):
        read(files, strand="yes", harmonise=False)


def test_infer_strand_rule():
    assert infer_strand(90, 10) == "forward"
    assert infer_strand(10, 90) == "reverse"
    assert infer_strand(52, 48) == "unstranded"
    assert infer_strand(70, 30) is None
    assert infer_strand(0, 0) is None


def test_star_ambiguous_strandedness_refused(tmp_path):
    path = tmp_path / "X_ReadsPerGene.out.tab"
    path.write_text("N_unmapped\t1\t1\t1\nN_multimapping\t1\t1\t1\nN_noFeature\t1\t1\t1\nN_ambiguous\t1\t1\t1\n"
                    "G1\t100\t70\t30\n")
    with pytest.raises(InputError, match="strandedness"):
        read(path, harmonise=False)
    assert read(path, strand="forward", harmonise=False).layers["counts"][0, 0] == 70


@pytest.mark.parametrize("tx2gene_kind", ["path", "dataframe", "dict"])
def test_salmon_directory_with_tx2gene(tx2gene_kind):
    t2g_path = IO_DATA / "tx2gene.tsv"
    table = pd.read_csv(t2g_path, sep="\t")
    tx2gene = {"path": t2g_path, "dataframe": table, "dict": dict(zip(table.TXNAME, table.GENEID, strict=True))}[
        tx2gene_kind]
    adata = read(IO_DATA / "salmon", tx2gene=tx2gene, harmonise=False)
    assert list(adata.obs_names) == ["S1", "S2"]
    assert list(adata.var_names) == GENES3
    counts = adata.layers["counts"]
    assert counts.dtype == np.float64  # estimated counts stay floats
    np.testing.assert_array_equal(counts, [[8523.125, 280.75, 0.0], [9501.0, 112.5, 3.0]])
    np.testing.assert_array_equal(adata.layers["tpm"], [[970000, 25000, 0], [960000, 34000, 1000]])
    info = adata.uns["dormsig"]["input"]
    assert info["tx2gene_match"] == "version_stripped"
    assert info["n_transcripts_unmapped"] == 1 and info["unmapped_counts"] == 37.0


def test_salmon_list_and_transcript_level_and_refusal():
    files = [IO_DATA / "salmon" / "S2" / "quant.sf", IO_DATA / "salmon" / "S1" / "quant.sf"]
    adata = read(files, tx2gene=IO_DATA / "tx2gene.tsv", harmonise=False)
    assert list(adata.obs_names) == ["S2", "S1"]
    tx = read(files, tx2gene=False, harmonise=False)
    assert tx.shape == (2, 6) and tx.var_names[3] == "ENST00000229239.10"
    np.testing.assert_array_equal(tx.layers["counts"][1], [0, 250.5, 30.25, 8123.125, 400, 17])
    assert tx.uns["dormsig"]["input"]["level"] == "transcript"
    with pytest.raises(InputError, match="tx2gene"):
        read(files, harmonise=False)
    with pytest.raises(InputError, match="no transcript"):
        read(files, tx2gene={"ENST1": "ENSG1"}, harmonise=False)


def test_kallisto_gencode_target_names():
    adata = read(IO_DATA / "kallisto", tx2gene=IO_DATA / "tx2gene.tsv", harmonise=False)
    assert detect_format(IO_DATA / "kallisto") == "kallisto"
    assert list(adata.obs_names) == ["S1", "S2"] and list(adata.var_names) == GENES3
    np.testing.assert_array_equal(adata.layers["counts"], [[2050.5, 100, 5], [2510.25, 84, 0]])
    np.testing.assert_array_equal(adata.layers["tpm"], [[957000, 40000, 3000], [968000, 32000, 0]])


def test_rsem_genes_results():
    adata = read(IO_DATA / "rsem", harmonise=False)
    assert list(adata.obs_names) == ["S1", "S2"] and list(adata.var_names) == GENES3
    assert adata.layers["counts"].dtype == np.float64  # expected counts: not rounded
    np.testing.assert_array_equal(adata.layers["counts"], [[8523.13, 280.75, 0.0], [9501.0, 112.5, 3.0]])
    np.testing.assert_array_equal(adata.layers["tpm"][1], [960512.40, 37487.60, 2000.00])
    assert adata.var["transcript_ids"].iloc[0] == "ENST00000229239,ENST00000396856"
    one = read(IO_DATA / "rsem" / "S1.genes.results", harmonise=False)
    assert list(one.obs_names) == ["S1"]


def test_quantifier_inputs_unchanged(tmp_path):
    d = tmp_path / "salmon"
    shutil.copytree(IO_DATA / "salmon", d)
    before = {p: file_sha256(p) for p in d.rglob("*") if p.is_file()}
    read(d, tx2gene=IO_DATA / "tx2gene.tsv", harmonise=False)
    assert {p: file_sha256(p) for p in d.rglob("*") if p.is_file()} == before


def test_wrong_format_option_is_a_format_error():
    with pytest.raises(FormatError, match="not a featureCounts"):
        read(IO_DATA / "tables" / "annotated_genes_x_samples.tsv", format="featurecounts", harmonise=False)
    with pytest.raises(InputError, match="strand= applies only"):
        read(IO_DATA / "featurecounts" / "counts.txt", strand="forward", harmonise=False)


def test_star_one_subdirectory_per_sample(tmp_path):
    for sample, src in (("S1", "S1_ReadsPerGene.out.tab"), ("S2", "S2.ReadsPerGene.out.tab")):
        (tmp_path / sample).mkdir()
        shutil.copy(IO_DATA / "star_reverse" / src, tmp_path / sample / "ReadsPerGene.out.tab")
    assert detect_format(tmp_path) == "star"
    adata = read(tmp_path, harmonise=False)
    assert list(adata.obs_names) == ["S1", "S2"]
    np.testing.assert_array_equal(adata.layers["counts"], [[0, 11, 433, 80211], [2, 7, 1287, 102344]])
