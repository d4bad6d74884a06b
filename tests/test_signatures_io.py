"""Signature I/O: GMT/GMX/YAML/JSON/dict readers, GMT writer, and one-line errors on bad input."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dormsig.errors import MissingInputError, OutputError, SignatureError
from dormsig.signatures import (
    Library,
    Signature,
    load_library,
    read_gmt,
    read_gmx,
    read_signatures,
    write_gmt,
)
from dormsig.signatures.io import gmt_lines


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_gmt_suffix_pairs_merge_and_plain_sets(tmp_path):
    path = write(
        tmp_path / "user.gmt",
        "# comment\n"
        "PROG_UP\tdesc up\tA\tB\tC\n"
        "\n"
        "PROG_DN\tdesc dn\tD\tE\n"
        "PLAIN\thttp://x\tF\tG\t\n"
        "OTHER_DOWN\tna\tH\n"
        "LONE_UP\tna\tI\tJ\n",
    )
    lib = read_gmt(path)
    assert list(lib) == ["PROG", "PLAIN", "OTHER", "LONE"]
    assert lib["PROG"].up == ("A", "B", "C") and lib["PROG"].down == ("D", "E")
    assert lib["PLAIN"].up == ("F", "G") and lib["PLAIN"].down == ()
    assert lib["OTHER"].down == ("H",) and lib["OTHER"].up == ()
    assert lib["LONE"].up == ("I", "J")
    assert lib["PROG"].species == "human"
    assert lib.path == str(path)


def test_gmt_line_without_genes_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.gmt", "A\tna\tX\tY\nEMPTY\tna\t\t\n")
    with pytest.raises(SignatureError) as info:
        read_gmt(path)
    msg = str(info.value)
    assert msg == f"{path}: line 2: gene set 'EMPTY' has no genes"
    assert "\n" not in msg


def test_gmt_other_errors(tmp_path):
    with pytest.raises(SignatureError, match=r"line 2: duplicate gene set 'A' \(first on line 1\)"):
        read_gmt(write(tmp_path / "dup.gmt", "A\tna\tX\nA\tna\tY\n"))
    with pytest.raises(SignatureError, match=r"both.gmt:1, .*both.gmt:2: signature 'P': gene\(s\) in both up and down: X"):
        read_gmt(write(tmp_path / "both.gmt", "P_UP\tna\tX\tY\nP_DN\tna\tX\n"))
    with pytest.raises(SignatureError, match="expected tab-separated"):
        read_gmt(write(tmp_path / "spaces.gmt", "A na X Y\n"))
    with pytest.raises(SignatureError, match="clashes"):
        read_gmt(write(tmp_path / "clash.gmt", "P\tna\tX\nP_UP\tna\tY\n"))
    with pytest.raises(MissingInputError):
        read_gmt(tmp_path / "nope.gmt")
    with pytest.warns(UserWarning, match="lists 1 gene"):
        lib = read_gmt(write(tmp_path / "twice.gmt", "A\tna\tX\tY\tX\n"))
    assert lib["A"].up == ("X", "Y")


def test_gmx_is_read_column_wise(tmp_path):
    path = write(tmp_path / "sets.gmx", "S1_UP\tS1_DN\tS2\nna\tna\tdesc\nA\tC\tE\nB\t\tF\n\t\tG\n")
    lib = read_gmx(path)
    assert lib["S1"].up == ("A", "B") and lib["S1"].down == ("C",)
    assert lib["S2"].up == ("E", "F", "G") and lib["S2"].description == "desc"
    with pytest.raises(SignatureError, match=r"column 2: gene set 'B' has no genes"):
        read_gmx(write(tmp_path / "bad.gmx", "A\tB\nna\tna\nX\t\n"))


def test_dict_formats():
    lib = read_signatures({"mine": ["CXCR4", "CD34"], "bi": {"up": ["A1"], "down": ["B1"]}, "X_UP": ["U"], "X_DN": ["D"]})
    assert lib["mine"].up == ("CXCR4", "CD34")
    assert lib["bi"].up == ("A1",) and lib["bi"].down == ("B1",)
    assert lib["X"].up == ("U",) and lib["X"].down == ("D",)
    with pytest.raises(SignatureError, match=r"gene set 'e' has no genes"):
        read_signatures({"e": []})
    with pytest.raises(SignatureError, match=r"\(p\): signature 'p': gene\(s\) in both up and down: A"):
        read_signatures({"p": {"up": ["A"], "down": ["A"]}})
    with pytest.raises(SignatureError, match=r"signature 'p': duplicate gene\(s\) in up: A"):
        Signature(name="p", up=["A", "B", "A"])


def test_yaml_and_json_files(tmp_path):
    single = write(
        tmp_path / "one.yaml",
        "name: MY_SET\ndescription: test\nup: [CXCR4, {gene: CD34, source: SEED2026, detail: abstract}]\n"
        "down: [MKI67]\nsources: [SEED2026]\n",
    )
    lib = read_signatures(single)
    sig = lib["MY_SET"]
    assert sig.up == ("CXCR4", "CD34") and sig.down == ("MKI67",)
    assert sig.sources[0].doi == "10.1038/s41413-026-00535-3"  # key resolved against the shipped bibliography
    assert sig.evidence_for("CD34")[0].detail == "abstract"
    multi = write(
        tmp_path / "multi.json",
        json.dumps({"version": "3", "sources": {"ME": {"citation": "Me et al.", "doi": "10.1/x"}},
                    "signatures": [{"name": "S", "genes": ["A", "B"], "sources": ["ME"]}]}),
    )
    lib = read_signatures(multi)
    assert lib.version == "3" and lib["S"].sources[0].doi == "10.1/x"
    flat = write(tmp_path / "flat.yaml", "A_SET: [X, Y]\nB_SET:\n  up: [Z]\n  down: [W]\n")
    assert read_signatures(flat)["B_SET"].down == ("W",)
    with pytest.raises(SignatureError, match=r"nosrc.yaml.*unknown source key 'NOPE'"):
        read_signatures(write(tmp_path / "nosrc.yaml", "name: S\nup: [A]\nsources: [NOPE]\n"))
    with pytest.raises(SignatureError, match=r"cites unknown source key 'OTHER'"):
        read_signatures(write(tmp_path / "gsrc.yaml", "name: S\nup: [{gene: A, source: OTHER}]\n"))
    with pytest.raises(SignatureError, match=r"noname.yaml \(signature 1\): missing required field 'name'"):
        read_signatures(write(tmp_path / "noname.yaml", "signatures:\n  - {up: [A]}\n"))
    with pytest.raises(SignatureError, match=r"nogenes.yaml.*missing required field 'up' \(or 'down'\)"):
        read_signatures(write(tmp_path / "nogenes.yaml", "signatures:\n  - {name: S}\n"))
    with pytest.raises(SignatureError, match="cannot parse YAML"):
        read_signatures(write(tmp_path / "broken.yaml", "a: [b\n"))
    with pytest.raises(SignatureError, match="pass format="):
        read_signatures(write(tmp_path / "sets.txt", "A\tna\tB\n"))
    assert read_signatures(tmp_path / "sets.txt", format="gmt")["A"].up == ("B",)


def test_mouse_user_sets_are_detected(tmp_path):
    lib = read_signatures({"m": ["Cxcr4", "Cd34", "Tek", "Kit"]})
    assert lib["m"].species == "mouse"
    assert read_signatures({"m": ["Cxcr4"]}, species="human")["m"].species == "human"


def test_gmt_export_round_trips(tmp_path):
    lib = load_library()
    path = write_gmt(lib, tmp_path / "lib.gmt")
    assert (tmp_path / "lib.gmt.provenance.json").exists()
    back = read_gmt(path)
    assert list(back) == list(lib)
    for name, sig in lib.items():
        assert back[name].up == sig.up and back[name].down == sig.down, name
    text = path.read_text().splitlines()
    assert sum(line.startswith("WIECEK2023_G0_ARREST_UP\t") for line in text) == 1
    assert sum(line.startswith("WIECEK2023_G0_ARREST_DN\t") for line in text) == 1
    assert len(text) == len(lib) + 4  # four two-part programmes take two lines each
    with pytest.raises(OutputError, match="output exists"):
        write_gmt(lib, path)
    write_gmt(lib, path, force=True, provenance=False)
    # A down-only set is written as NAME_DN and read back into the down part.
    down_only = Library([Signature(name="Q", down=("A", "B"))])
    assert gmt_lines(down_only) == ["Q_DN\tna\tA\tB"]
    p2 = write_gmt(down_only, tmp_path / "q.gmt")
    assert read_gmt(p2)["Q"].down == ("A", "B")


def test_signature_object_inputs():
    sig = Signature(name="S", up=("A",))
    assert list(read_signatures(sig)) == ["S"]
    assert list(read_signatures([sig])) == ["S"]
    lib = load_library()
    assert read_signatures(lib) is lib
    with pytest.raises(SignatureError, match="unknown direction"):
        Signature(name="S", up=("A",), direction="sideways")
    with pytest.raises(SignatureError, match="has no genes"):
        Signature(name="S")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Signature(name="S", up="A").up == ("A",)


def test_user_gmt_with_no_gene_in_data_names_file_and_set(tmp_path):
    from dormsig.errors import MatchError
    from dormsig.signatures import match

    path = write(tmp_path / "mine.gmt", "MINE\tna\tFOO1\tBAR2\n")
    with pytest.raises(MatchError) as info:
        match(path, ["CXCR4", "CD34", "GAPDH"], species="human")
    assert str(info.value).startswith(f"{path}: gene set 'MINE': none of its 2 genes is in the data")


gene = st.from_regex(r"[A-Z][A-Z0-9]{1,6}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(
    sets=st.dictionaries(
        st.from_regex(r"[A-Z][A-Z0-9]{2,8}", fullmatch=True).filter(lambda n: not re.search(r"_(UP|DN|DOWN)$", n)),
        st.tuples(st.lists(gene, max_size=6, unique=True), st.lists(gene, max_size=6, unique=True)),
        min_size=1,
        max_size=5,
    )
)
def test_gmt_round_trip_property(tmp_path_factory, sets):
    sigs = []
    for name, (up, down) in sets.items():
        down = [g for g in down if g not in up]
        if not up and not down:
            continue
        sigs.append(Signature(name=name, up=tuple(up), down=tuple(down), species="human"))
    if not sigs:
        return
    lib = Library(sigs)
    path = tmp_path_factory.mktemp("rt") / "x.gmt"
    write_gmt(lib, path, provenance=False)
    back = read_gmt(path, species="human")
    assert [(s.name, s.up, s.down) for s in back.values()] == [(s.name, s.up, s.down) for s in sigs]
