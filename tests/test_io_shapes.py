"""Real-world table shapes (dormsig.io.shapes and the table reader): hand-computed cases.

The corpus (tests/corpus) runs the same shapes on real-shaped files made from the CTC counts; here
each rule is pinned down on a few values whose right reading is known by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dormsig.errors import FormatError, GeneIdError, InputError
from dormsig.io import read, read_summary
from dormsig.io.shapes import (
    EU,
    US,
    check_species,
    convention,
    date_parts,
    formatted_numbers,
    is_row_numbers,
    parse_formatted,
    restore_dates,
    special_rows,
    split_line,
)


def _col(*values):
    return pd.Series(list(values), name="S1", dtype=object)


# ----------------------------------------------------------------------------- numbers
def test_split_line_honours_quotes():
    assert split_line('A1BG,"12,345",7', ",") == ["A1BG", "12,345", "7"]


@pytest.mark.parametrize(("values", "sep", "conv", "expected"), [
    (("12,345", "999", "1,234,567"), "\t", US, [12345, 999, 1234567]),      # multi-group: only US reads it
    (("3,5", "0,125", "12"), "\t", EU, [3.5, 0.125, 12]),                   # non-3-digit decimals: only EU
    (("1.234,5", "7"), "\t", EU, [1234.5, 7]),                              # '.' thousands + ',' decimal
    (("12,345", "17"), ",", US, [12345, 17]),                               # quoted in a CSV: thousands
    (("12,345", "17"), ";", EU, [12.345, 17]),                              # a ';' file: decimal comma
    (("12,345", "999", "0"), "\t", US, [12345, 999, 0]),                    # Excel #,##0: below 1000 plain
    (("12 345", "8"), "\t", US, [12345, 8]),                                # space-grouped (French/ISO)
])
def test_number_conventions(values, sep, conv, expected):
    col = _col(*values)
    assert formatted_numbers(col)
    got, _ = convention({"S1": col}, sep)
    assert got == conv
    np.testing.assert_allclose(parse_formatted(col, got).to_numpy(), expected)


def test_ambiguous_and_contradicting_conventions_are_refused_with_the_column():
    with pytest.raises(InputError, match=r"column 'S1': '1,500' may mean 1500 or 1\.5"):
        convention({"S1": _col("1,500", "1234")}, "\t")  # 1234 unformatted: no #,##0 pattern
    with pytest.raises(InputError, match="column 'A' uses thousands ',' .* column 'B' thousands '.'"):
        convention({"A": _col("1,234,567"), "B": _col("3,5")}, "\t")


def test_plain_numbers_and_text_are_not_formatted():
    assert not formatted_numbers(_col("12", "3.5", "1e3"))
    assert not formatted_numbers(_col("protein_coding", "12,345"))


def test_table_with_thousands_reads_the_numbers_and_reports(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes('\ufeffgene,S1,S2,,\r\nNOTCH2,"12,345",7,,\r\nNOTCH1,999,"1,000",,\r\nTP53,5,8,,\r\n'.encode())
    adata = read(p, harmonise=False)
    assert list(adata.obs_names) == ["S1", "S2"]
    np.testing.assert_array_equal(adata.layers["counts"], [[12345, 999, 5], [7, 1000, 8]])
    lines = read_summary(adata)
    assert "dropped 2 empty column(s) without a name (trailing separators)" in lines
    assert any(ln.startswith("numbers read with thousands ','") and "2 value(s) in 2 column(s)" in ln for ln in lines)


# ----------------------------------------------------------------------------- row numbers, empty names, summary rows
def test_row_numbers():
    assert is_row_numbers(["1", "2", "3", "4"]) and is_row_numbers(["0", "1", "2"])
    assert not is_row_numbers(["1", "2", "9"])  # Entrez IDs 1 (A1BG), 2 (A2M), 9 (NAT1)
    assert not is_row_numbers(["1", "2"])


def test_r_write_csv_row_numbers_are_dropped(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text('"","gene","S1","S2"\n"1","CXCR4",5,6\n"2","NOTCH2",7,8\n"3","TP53",1,0\n')
    adata = read(p, harmonise=False)
    assert list(adata.var_names) == ["CXCR4", "NOTCH2", "TP53"]
    np.testing.assert_array_equal(adata.layers["counts"][:, 0], [5, 6])
    assert any("row numbers 1..3" in ln for ln in read_summary(adata))


def test_row_numbers_as_the_only_gene_ids_are_refused(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text('"","GSM1","GSM2"\n"1",5,6\n"2",7,8\n"3",1,0\n')
    with pytest.raises(InputError, match=r"the first column holds row numbers 1\.\.3, not gene identifiers"):
        read(p, harmonise=False)


def test_unnamed_column_with_values_is_refused(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("gene\tS1\t\tS3\nNOTCH2\t1\t2\t3\nTP53\t4\t5\t6\nGAPDH\t7\t8\t9\n")
    with pytest.raises(InputError, match="column 3 has no name in the header but holds values"):
        read(p, harmonise=False)


def test_htseq_and_star_summary_rows():
    mask = special_rows(["TP53", "__no_feature", "__ambiguous", "N_unmapped", "NOTCH2"])
    np.testing.assert_array_equal(mask, [False, True, True, True, False])


def test_htseq_file_reader(tmp_path):
    lines = ["ENSG00000141510\t433", "ENSG00000111640\t80211", "__no_feature\t12", "__ambiguous\t3",
             "__too_low_aQual\t0", "__not_aligned\t5", "__alignment_not_unique\t40"]
    (tmp_path / "S1.htseq.counts").write_text("\n".join(lines) + "\n")
    adata = read(tmp_path / "S1.htseq.counts", harmonise=False)
    assert adata.obs_names.tolist() == ["S1"] and adata.var_names.tolist() == ["ENSG00000141510", "ENSG00000111640"]
    assert adata.layers["counts"].sum() == 433 + 80211
    assert adata.uns["dormsig"]["input"]["htseq_excluded_rows"]["S1"]["__alignment_not_unique"] == 40


def test_transcript_ids_need_tx2gene(tmp_path):
    p = tmp_path / "tx.tsv"
    p.write_text("id\tS1\tS2\nENST00000269305.9\t4\t5\nENST00000413465.6\t1\t1\nENST00000229239\t9\t9\n")
    with pytest.raises(InputError, match="3 of 3 identifiers are transcripts"):
        read(p, harmonise=False)
    t2g = {"ENST00000269305": "ENSG00000141510", "ENST00000413465": "ENSG00000141510",
           "ENST00000229239": "ENSG00000111640"}
    adata = read(p, tx2gene=t2g, harmonise=False)
    assert adata.var_names.tolist() == ["ENSG00000111640", "ENSG00000141510"]
    np.testing.assert_allclose(adata.layers["counts"], [[9, 5], [9, 6]])


def test_rsem_isoforms_are_refused(tmp_path):
    p = tmp_path / "S1.isoforms.results"
    p.write_text("transcript_id\tgene_id\tlength\teffective_length\texpected_count\tTPM\tFPKM\tIsoPct\n"
                 "ENST00000269305\tENSG00000141510\t2579\t2404.00\t250.50\t10.00\t9.00\t100.00\n")
    with pytest.raises(FormatError, match="read the sample's .genes.results instead"):
        read(p)


# ----------------------------------------------------------------------------- Excel dates
@pytest.mark.parametrize(("text", "parts"), [("1-Mar", ("mar", 1)), ("Sep-02", ("sep", 2)), ("01-Dec-2019", ("dec", 1)),
                                            ("2019-09-02", ("sep", 2)), ("MARCH1", None), ("Dec", None)])
def test_date_parts(text, parts):
    assert date_parts(text) == parts


def test_restore_dates_when_one_gene_fits():
    names = ["2-Sep", "3-Mar", "1-Mar", "1-Mar", "1-Dec", "2-Mar", "MARCHF2", "TP53"]
    out, restored, unresolved = restore_dates(names, "human")
    # 2-Mar: MARCHF2 is already in the table, so it can only be MARC2 (now MTARC2)
    assert restored == {"2-Sep": "SEPTIN2", "3-Mar": "MARCHF3", "1-Dec": "DELEC1", "2-Mar": "MTARC2"}
    assert unresolved == ["1-Mar", "1-Mar"]  # MARCH1 or MARC1: cannot tell which row is which
    assert out == ["SEPTIN2", "MARCHF3", "1-Mar", "1-Mar", "DELEC1", "MTARC2", "MARCHF2", "TP53"]
    out, restored, _ = restore_dates(["2-Sep", "Actb"], "mouse")
    assert restored == {"2-Sep": "Septin2"}


def test_read_keeps_ambiguous_dates_apart(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("gene,S1,S2\n1-Mar,5,6\n1-Mar,100,200\n2-Sep,7,8\nTP53,1,1\nGAPDH,9,9\nACTB,3,3\n")
    with pytest.warns(UserWarning, match="Excel dates that fit several genes"):
        adata = read(p)
    assert "SEPTIN2" in adata.var_names
    kept = sorted(int(adata[:, v].layers["counts"].sum()) for v in adata.var_names if v.startswith("1-Mar"))
    assert kept == [11, 300]  # two rows, never summed into 311


# ----------------------------------------------------------------------------- species
def test_species_counts_and_contradictions():
    human = ["ENSG00000141510", "ENSG00000111640", "ENSG00000075624", "TP53"]
    mouse = ["ENSMUSG00000059552", "ENSMUSG00000057666", "Trp53", "Actb"]
    assert check_species(human, "human")["ensembl_human"] == 3
    with pytest.raises(GeneIdError, match="gene IDs mix species: 4 human and 4 mouse of 8"):
        check_species(human + mouse, None)
    with pytest.raises(GeneIdError, match="species='human' given, but 4 gene IDs are mouse and 0 human"):
        check_species(mouse, "human")
