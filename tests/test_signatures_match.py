"""Matching signatures to data genes: hand-built cases, real CTC symbols, airway Ensembl IDs, mouse orthologs."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pytest

from dormsig.errors import MatchError, SignatureError
from dormsig.signatures import MatchWarning, Signature, load_library, match, read_signatures

DATA = Path(__file__).parent / "data" / "signatures"


def lines(name: str) -> list[str]:
    with gzip.open(DATA / name, "rt") as handle:
        return handle.read().split()


@pytest.fixture(scope="module")
def lib():
    return load_library()


@pytest.fixture(scope="module")
def ctc_genes():
    return lines("aceto2014_ctc_genes.txt.gz")


@pytest.fixture(scope="module")
def airway_ids():
    return lines("airway_ensembl_ids.txt.gz")


def test_hand_case_below_min_genes_kept_with_warning(lib):
    data = ["CXCR4", "CD34", "GAPDH", "ACTB", "NOTCH2"]
    with pytest.warns(MatchWarning, match=r"DORMSIG_HSC_MIMICRY_CORE \(up 2 of 3, need 3\)"):
        rep = match(lib.select(["DORMSIG_HSC_MIMICRY_CORE", "DORMSIG_NOTCH2_DORMANCY"]), data, species="human")
    hsc = rep["DORMSIG_HSC_MIMICRY_CORE"]
    assert hsc.status == "below_min_genes"
    assert rep.matched("DORMSIG_HSC_MIMICRY_CORE") == (("CXCR4", "CD34"), ())
    assert hsc.up.missing == ("TEK",) and hsc.up.missing_reason == ("not in data",)
    assert hsc.coverage == pytest.approx(2 / 3)
    # A one-gene set is fully usable with its one gene.
    assert rep["DORMSIG_NOTCH2_DORMANCY"].status == "ok"
    # min_genes override: 2 is enough.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep2 = match(lib.select(["DORMSIG_HSC_MIMICRY_CORE"]), data, species="human", min_genes=2)
    assert rep2["DORMSIG_HSC_MIMICRY_CORE"].status == "ok"


def test_no_overlap_raises_or_warns(lib):
    data = ["GAPDH", "ACTB", "TP53", "MYC"]
    user = read_signatures({"MY_SET": ["CD177", "TEK", "KIT", "CD34", "NANOG", "SOX2", "POU5F1"]})
    with pytest.raises(MatchError) as info:
        match(user, data, species="human")
    assert str(info.value).startswith("gene set 'MY_SET': none of its 7 genes is in the data")
    assert "missing: CD177, TEK, KIT, CD34, NANOG, ..." in str(info.value)
    with pytest.warns(MatchWarning, match="no gene in the data for: MY_SET"):
        rep = match(user, data, species="human", on_empty="warn")
    assert rep["MY_SET"].status == "no_overlap"
    assert "MY_SET" in rep.to_frame().index and rep.usable == []
    assert len(rep.to_library()) == 0  # to_library drops no_overlap sets
    with pytest.raises(SignatureError, match="on_empty"):
        match(user, data, on_empty="ignore")


def test_signature_side_aliases_and_data_side_old_symbols():
    user = Signature(name="U", up=("TIE2", "PERK", "p27"), down=("CXCL8",))
    data = ["TEK", "EIF2AK3", "CDKN1B", "IL8", "GAPDH"]  # IL8: the data use the old symbol of CXCL8
    rep = match(user, data, species="human")
    s = rep["U"]
    assert s.up.matched == ("TEK", "EIF2AK3", "CDKN1B")
    assert s.up.how == ("alias", "alias", "alias")
    assert s.down.matched == ("IL8",) and s.down.how == ("alias",)
    assert s.status == "ok"


def test_ensembl_data_known_ids(lib):
    # Ensembl IDs checked by hand on ensembl.org: CXCR4, CD34, TEK.
    data = ["ENSG00000121966", "ENSG00000174059.16", "ENSG00000120156", "ENSG00000111640"]
    rep = match(lib.select(["DORMSIG_HSC_MIMICRY_CORE"]), data)
    assert rep.data_species == "human" and rep.id_type == "ensembl"
    assert rep.matched("DORMSIG_HSC_MIMICRY_CORE") == (("ENSG00000121966", "ENSG00000174059.16", "ENSG00000120156"), ())
    assert rep["DORMSIG_HSC_MIMICRY_CORE"].up.how == ("ensembl",) * 3


def test_mouse_data_through_orthologs(lib):
    data = ["Cxcr4", "Cd34", "Tek", "Gapdh", "Actb", "Mki67", "Top2a"]
    rep = match(lib.select(["DORMSIG_HSC_MIMICRY_CORE"]), data)
    assert rep.data_species == "mouse"
    assert rep.matched("DORMSIG_HSC_MIMICRY_CORE") == (("Cxcr4", "Cd34", "Tek"), ())
    assert set(rep["DORMSIG_HSC_MIMICRY_CORE"].up.how) == {"ortholog"}


def test_ortholog_translation_agrees_with_curation_mouse_gmt(lib):
    """Independent reference: the curation's own HCOP mapping of every set (curation_mouse.gmt)."""
    ref = {}
    for line in (DATA / "curation_mouse.gmt").read_text().splitlines():
        f = line.split("\t")
        ref[f[0]] = [g for g in f[2:] if g]
    # The shipped CD177 set is CD177 alone (co-markers scored in their own sets; test_signatures_library).
    ref["DORMSIG_CD177_MARKER_UP"] = [g for g in ref["DORMSIG_CD177_MARKER_UP"] if g not in ("Notch2", "Cxcr4", "Cd34")]
    universe = sorted({g for genes in ref.values() for g in genes} | {"Ifit1", "Pnp"})
    rep = match(lib, universe, species="mouse", on_empty="warn")
    total = agree = 0
    diffs = set()
    for cname, mouse in ref.items():
        sig = lib[cname]
        part = "down" if cname.endswith("_DOWN") and sig.down else "up"
        got = set(rep[sig.name].up.matched if part == "up" else rep[sig.name].down.matched)
        total += len(set(mouse) | got)
        agree += len(set(mouse) & got)
        diffs |= set(mouse) ^ got
    assert agree / total > 0.99
    # Every mouse symbol the curation used (and that matching produces) is a current MGI symbol (HCOP list).
    from dormsig.genes import official_symbols

    assert set(universe) - {"Ifit1", "Pnp"} <= official_symbols("mouse")
    # Ly6a is a mouse-only marker the curation added; the other two are one-to-many HCOP choices.
    assert diffs <= {"Ly6a", "Ifit1", "Ifit1bl1", "Pnp", "Pnp2"}
    # CXCL8 has no confident mouse ortholog (curation rule: rejects Cxcl15).
    kim = rep["DORMANCY_KIM2012"]
    assert "CXCL8" in kim.down.missing


def test_ctc_symbols_match_exactly_where_independent_intersection_says(lib, ctc_genes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatchWarning)
        rep = match(lib, ctc_genes, on_empty="warn")
    var = set(ctc_genes)
    assert rep.data_species == "human" and rep.id_type == "symbol" and rep.n_vars == 16026
    for s in rep:
        sig = lib[s.name]
        for part in ("up", "down"):
            pm = getattr(s, part)
            exact = [g for g in sig.part(part) if g in var]
            # exact matches are exactly the independent intersection; the rest came through aliases
            assert [g for g, h in zip(pm.matched_genes, pm.how, strict=True) if h == "exact"] == exact
            assert all(h == "alias" for h in pm.how if h != "exact")
            assert set(pm.matched) <= var
    # PROVENANCE.md: CD177 is absent from this table; NOTCH1, NOTCH2, CXCR4, DDIT3, ATF4 are present.
    assert rep["DORMSIG_CD177_MARKER"].up.missing == ("CD177",)
    assert rep["DORMSIG_HSC_MIMICRY_CORE"].up.n_matched == 3
    assert rep["WIECEK2023_G0_ARREST_CORE"].up.n_matched == 3
    assert rep["WIECEK2023_G0_ARREST_CORE"].down.missing == ("ALYREF",)
    assert rep["DORMSIG_CD177_MARKER"].status == "no_overlap"  # CD177 alone since 2026.12.0
    assert {s.status for s in rep if s.name != "DORMSIG_CD177_MARKER"} == {"ok"}


def test_airway_ensembl_full_library(lib, airway_ids):
    rep = match(lib, airway_ids, on_empty="warn")
    assert rep.id_type == "ensembl" and rep.n_vars == 64102
    frame = rep.to_frame()
    assert (frame["status"] == "ok").all()
    assert frame.loc["DORMSIG_PERK_ATF4_CHOP_CORE", "n_matched"] == 14
    assert frame.loc["DORMANCY_KIM2012", "n_up_matched"] == 21 and frame.loc["DORMANCY_KIM2012", "n_down_matched"] == 26
    assert all(h == "ensembl" for s in rep for h in s.up.how + s.down.how)
    # Every matched var name is an airway ID, and no ID is used twice within a set.
    ids = set(airway_ids)
    for s in rep:
        assert set(s.up.matched + s.down.matched) <= ids
        assert len(set(s.up.matched + s.down.matched)) == s.n_matched


def test_report_serialisation(lib, ctc_genes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatchWarning)
        rep = match(lib.select(["WIECEK2023_G0_ARREST", "DORMSIG_HSC_MIMICRY_CORE"]), ctc_genes)
    d = rep.to_dict()
    json.dumps(d)  # JSON-able
    assert d["library"] == {"name": "dormsig", "version": "2026.12.0"}
    assert d["sets"]["WIECEK2023_G0_ARREST"]["up"]["n_total"] == 27
    frame = rep.to_frame()
    assert list(frame.columns[:4]) == ["status", "n_up", "n_up_matched", "n_down"]
    sub = rep.to_library()
    assert sub["WIECEK2023_G0_ARREST"].down == rep.matched("WIECEK2023_G0_ARREST")[1]
    with pytest.raises(SignatureError, match="unknown set 'NOPE'"):
        rep.matched("NOPE")


def test_empty_data_is_an_error(lib):
    with pytest.raises(MatchError, match="no genes"):
        match(lib, [])


def test_shipped_names_select_from_the_library():
    rep = match("DORMSIG_CD177_MARKER", ["CD177", "NOTCH2", "CXCR4", "CD34"], species="human")
    assert rep.names == ["DORMSIG_CD177_MARKER"] and rep["DORMSIG_CD177_MARKER"].n_matched == 1
    with pytest.raises(SignatureError, match="unknown signature"):
        match(["NOT_A_SET"], ["CD177"], species="human")
