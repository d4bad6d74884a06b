"""Sample sheets: headered and headerless files, DataFrames, and mismatches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from io_fixtures import IO_DATA

from dormsig.data import CTC_COUNTS, CTC_SAMPLES, example_path
from dormsig.errors import InputError
from dormsig.io import read, read_sample_sheet

TABLE = IO_DATA / "tables" / "annotated_genes_x_samples.tsv"  # samples ctrl_1, ctrl_2, treated_1


def test_ctc_sheet_with_header_joined():
    adata = read(example_path(CTC_COUNTS), sample_sheet=example_path(CTC_SAMPLES), harmonise=False)
    assert list(adata.obs.columns) == ["patient", "id", "type"]
    assert adata.obs.loc["GSM1253375", "patient"] == "Patient#1" and adata.obs.loc["GSM1253375", "type"] == "CL"
    assert int((adata.obs["type"] == "CL").sum()) == 14 and int((adata.obs["type"] == "SC").sum()) == 15
    assert adata.obs["patient"].nunique() == 10
    info = adata.uns["dormsig"]["input"]["sample_sheet"]
    assert info["sample_column"] == "sample" and list(info["columns"]) == ["patient", "id", "type"]


def test_headerless_sheet_detected_from_sample_names(tmp_path):
    # the GEO metadata file of GSE51827 has no header: GSM, patient, id, type
    sheet = tmp_path / "GSE51827_metadata.txt"
    lines = [ln.split(",") for ln in example_path(CTC_SAMPLES).read_text().splitlines()[1:]]
    sheet.write_text("".join("\t".join(f) + "\n" for f in lines))
    adata = read(example_path(CTC_COUNTS), sample_sheet=sheet, harmonise=False)
    assert list(adata.obs.columns) == ["column_2", "column_3", "column_4"]
    assert adata.obs.loc["GSM1253403", "column_4"] in {"CL", "SC"}
    direct = read_sample_sheet(sheet)  # without sample names: first row has the shape of its column
    assert direct.index.name == "column_1" and len(direct) == 29
    named = read_sample_sheet(sheet, columns=["sample", "patient", "id", "type"])
    assert list(named.columns) == ["patient", "id", "type"] and named.index[0] == "GSM1253375"


def test_sheet_with_header_and_types(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("sample,condition,batch\ntreated_1,dex,2\nctrl_1,none,1\nctrl_2,none,1\n")
    df = read_sample_sheet(sheet)
    assert list(df.columns) == ["condition", "batch"] and df["batch"].dtype.kind == "i"
    adata = read(TABLE, sample_sheet=sheet, harmonise=False)
    assert list(adata.obs["condition"]) == ["none", "none", "dex"]  # aligned to the data's order
    np.testing.assert_array_equal(adata.obs["batch"], [1, 1, 2])


def test_sheet_as_dataframe_and_sample_column():
    df = pd.DataFrame({"group": ["a", "b", "c"], "name": ["ctrl_1", "ctrl_2", "treated_1"]})
    adata = read(TABLE, sample_sheet=df, sample_column="name", harmonise=False)
    assert list(adata.obs["group"]) == ["a", "b", "c"]
    indexed = df.set_index("name")
    adata2 = read(TABLE, sample_sheet=indexed, harmonise=False)
    assert list(adata2.obs["group"]) == ["a", "b", "c"]


def test_sheet_matching_no_sample(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("sample,x\nA,1\nB,2\n")
    with pytest.raises(InputError, match="matches no sample") as err:
        read(TABLE, sample_sheet=sheet, harmonise=False)
    assert str(sheet) in str(err.value) and "\n" not in str(err.value)


def test_sheet_partial_mismatch_names_both_sides(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("sample,x\nctrl_1,1\nctrl_2,2\nextra_9,3\n")
    with pytest.raises(InputError) as err:
        read(TABLE, sample_sheet=sheet, harmonise=False)
    msg = str(err.value)
    assert "missing from the sheet: treated_1" in msg and "missing from the data: extra_9" in msg


def test_sheet_mismatch_lists_at_most_five(tmp_path):
    samples = [f"GSM{k}" for k in range(1253375, 1253404)]
    sheet = tmp_path / "s.csv"
    sheet.write_text("sample,x\n" + "".join(f"{s},1\n" for s in samples[:20]) + "GSM1\n")
    with pytest.raises(InputError) as err:
        read(example_path(CTC_COUNTS), sample_sheet=sheet, harmonise=False)
    msg = str(err.value)
    assert "9 data sample(s) missing from the sheet: GSM1253395, GSM1253396, GSM1253397, GSM1253398," \
           " GSM1253399 (+4 more)" in msg
    assert "1 sheet sample(s) missing from the data: GSM1" in msg


def test_sheet_errors(tmp_path):
    dup = tmp_path / "dup.csv"
    dup.write_text("sample,x\nctrl_1,1\nctrl_1,2\n")
    with pytest.raises(InputError, match="more than once"):
        read_sample_sheet(dup)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_sample_sheet(empty)
    with pytest.raises(InputError, match="no column 'nope'"):
        read(TABLE, sample_sheet=dup, sample_column="nope", harmonise=False)


def test_sample_names_stay_text(tmp_path):
    sheet = tmp_path / "s.tsv"
    sheet.write_text("id\tdose\n01\t0.5\n02\t1\n")
    df = read_sample_sheet(sheet)
    assert list(df.index) == ["01", "02"] and df["dose"].tolist() == [0.5, 1.0]
