"""dormsig.signatures.as_library: one normaliser for every documented signature form."""

from __future__ import annotations

from pathlib import Path

import pytest

from dormsig.cli import _signature_arg
from dormsig.errors import MissingInputError, SignatureError
from dormsig.signatures import Library, Signature, as_library, load_library, write_gmt

GMT = Path(__file__).parent / "data" / "de" / "h.all.v7.0.symbols.gmt"


def test_none_is_the_shipped_library_and_names_select_from_it():
    lib = load_library()
    assert as_library(None) is lib
    name = next(iter(lib))
    other = list(lib)[1]
    assert list(as_library(name)) == [name]
    assert list(as_library(f"{name}, {other}")) == [name, other]  # the CLI's --signatures A,B
    assert list(as_library([other, name])) == [other, name]
    assert as_library([name]).version == lib.version


def test_files_and_paths(tmp_path):
    lib = as_library(GMT)
    assert "HALLMARK_UNFOLDED_PROTEIN_RESPONSE" in lib and len(lib) == 48  # 50 lines, _UP/_DN pairs merged
    assert lib["HALLMARK_KRAS_SIGNALING"].up and lib["HALLMARK_KRAS_SIGNALING"].down
    assert list(as_library(str(GMT))) == list(lib)
    sub = tmp_path / "two.gmt"
    write_gmt(lib.select(["HALLMARK_APOPTOSIS", "HALLMARK_HYPOXIA"]), sub, provenance=False)
    other = tmp_path / "other.gmt"
    other.write_text("MINE\tna\tNOTCH1\tNOTCH2\n")
    both = as_library([str(sub), str(other)])  # several files: all their sets
    assert list(both) == ["HALLMARK_APOPTOSIS", "HALLMARK_HYPOXIA", "MINE"]
    with pytest.raises(SignatureError, match="duplicate"):
        as_library([str(GMT), str(sub)])
    with pytest.raises(MissingInputError, match="signature file not found"):
        as_library("missing.gmt")
    with pytest.raises(MissingInputError):
        as_library(tmp_path / "nope.yaml")


def test_dict_forms_plain_signed_and_merged_up_down():
    lib = as_library({
        "SIGNED": {"up": ["CDKN1B", "TP53"], "down": ["MKI67"]},
        "PLAIN": ["NOTCH1", "NOTCH2"],
        "ONE": "CXCR4",
        "PAIR_UP": ["ATF4"],
        "PAIR_DN": ["MYC"],
    })
    assert list(lib) == ["SIGNED", "PLAIN", "ONE", "PAIR"]  # the caller's order
    assert lib["SIGNED"].up == ("CDKN1B", "TP53") and lib["SIGNED"].down == ("MKI67",)
    assert lib["PLAIN"].up == ("NOTCH1", "NOTCH2") and lib["ONE"].up == ("CXCR4",)
    assert lib["PAIR"].up == ("ATF4",) and lib["PAIR"].down == ("MYC",)
    # the bug of issue 11: the keys "up" and "down" were taken as two genes
    assert "up" not in lib["SIGNED"].genes and "down" not in lib["SIGNED"].genes


def test_objects_pass_through():
    sig = Signature(name="S", up=("A1BG",))
    assert list(as_library(sig)) == ["S"]
    lib = Library([sig])
    assert as_library(lib) is lib
    assert list(as_library([sig, Signature(name="T", up=("A2M",))])) == ["S", "T"]
    assert list(as_library({"RENAMED": sig})) == ["RENAMED"]


def test_unknown_names_and_bad_types_are_one_line_errors():
    with pytest.raises(SignatureError, match="unknown signature name") as err:
        as_library("NOT_A_SET,ALSO_NOT")
    assert "\n" not in str(err.value) and len(str(err.value)) <= 200
    with pytest.raises(SignatureError, match="cannot read signatures"):
        as_library(3.5)
    with pytest.raises(SignatureError, match="empty"):
        as_library([])


def test_cli_signature_argument_uses_as_library():
    assert _signature_arg(None) is None
    lib = _signature_arg(str(GMT))
    assert isinstance(lib, Library) and len(lib) == 48
    name = next(iter(load_library()))
    assert list(_signature_arg(name)) == [name]
