"""The bundled example data and its helpers."""

from __future__ import annotations

import gzip
import hashlib

import pytest

import dormsig.data
from dormsig.errors import MissingInputError


def test_example_files_and_checksum():
    folder = dormsig.data.example_path("aceto2014_ctc")
    assert {p.name for p in folder.iterdir()} >= {"GSE51827_data.txt.gz", "samples.csv", "README.md"}
    raw = gzip.decompress(dormsig.data.example_path(dormsig.data.CTC_COUNTS).read_bytes())
    # unmodified copy of GEO GSE51827 counts (sha256 stated in the README)
    assert hashlib.sha256(raw).hexdigest() == "242fbc90e342b767018bbab41dbb55b51d2aac1d61aba138b41cc8b506c424ae"
    header = raw.split(b"\n", 2)
    assert len(header[0].split(b"\t")) == 29 and len(header[1].split(b"\t")) == 30  # short header kept
    assert dormsig.data.example_path(dormsig.data.CTC_SAMPLES).read_text().startswith("sample,patient,id,type\n")


def test_ctc_loader():
    adata = dormsig.data.ctc(harmonise=False)
    assert adata.shape == (29, 16026)
    assert list(adata.obs.columns) == ["patient", "id", "type"]
    assert adata.obs["type"].value_counts().to_dict() == {"SC": 15, "CL": 14}
    assert adata.uns["dormsig"]["input"]["format"] == "table"
    same = dormsig.data.load_example("aceto2014_ctc", harmonise=False)
    assert (same.layers["counts"] == adata.layers["counts"]).all()


def test_unknown_example():
    with pytest.raises(MissingInputError, match="no bundled example"):
        dormsig.data.example_path("nope")
    with pytest.raises(MissingInputError, match="no bundled example"):
        dormsig.data.load_example("nope")
