"""The shipped signature library against independent references (curation GMTs, QuieScore, MSigDB v7.0, NCBI)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml

from dormsig.errors import SignatureError
from dormsig.signatures import (
    DormancyIndex,
    IndexComponent,
    Library,
    load_index,
    load_library,
    read_gmt,
    show,
)
from dormsig.signatures.library import read_library_dir, shipped_path

DATA = Path(__file__).parent / "data" / "signatures"
ROOT = Path(__file__).resolve().parent.parent


def gmt(path: Path) -> dict[str, list[str]]:
    out = {}
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        out[fields[0]] = [g for g in fields[2:] if g]
    return out


@pytest.fixture(scope="module")
def lib() -> Library:
    return load_library()


@pytest.fixture(scope="module")
def exceptions() -> dict:
    return yaml.safe_load((shipped_path() / "exceptions.yaml").read_text())


def test_shipped_library_is_the_repository_signatures_dir(lib):
    assert shipped_path() == ROOT / "signatures"
    assert lib.version == "2026.12.0"
    assert lib.name == "dormsig"
    assert len(lib) == 33
    assert lib.provenance()["version"] == "2026.12.0"
    assert len(lib.provenance()["sha256"]) == 64


def test_required_sets_present(lib):
    required = [
        "DORMSIG_HSC_MIMICRY_CORE", "DORMSIG_HSC_MIMICRY_EXTENDED", "DORMSIG_PERK_ATF4_CHOP_CORE",
        "REACTOME_PERK_REGULATES_GENE_EXPRESSION", "REACTOME_ATF4_ACTIVATES_GENES_IN_ER_STRESS",
        "HALLMARK_UNFOLDED_PROTEIN_RESPONSE", "REACTOME_IRE1A_ACTIVATES_CHAPERONES", "REACTOME_ATF6_ACTIVATES_CHAPERONE_GENES",
        "DORMSIG_CD177_MARKER", "DORMSIG_NOTCH2_DORMANCY", "DORMSIG_NOTCH1_CONTRAST", "DORMSIG_NOTCH_CANONICAL_TARGETS",
        "DORMSIG_PROLIFERATION_CORE", "WIECEK2023_G0_ARREST", "WIECEK2023_G0_ARREST_CORE", "DORMANCY_KIM2012",
        "NR2F1_DORMANCY_PROGRAM_SOSA2015", "TGFB2_P38_DORMANCY_BRAGADO2013", "HYPOXIA_DORMANCY_FLUEGEN2017",
        "DORMSIG_AUTOPHAGY_CORE", "HALLMARK_MTORC1_SIGNALING", "HALLMARK_G2M_CHECKPOINT", "HALLMARK_E2F_TARGETS",
        "HALLMARK_NOTCH_SIGNALING", "DORMSIG_ENDOSTEAL_NICHE_LIGANDS",
    ]
    assert not set(required) - set(lib)
    assert lib["DORMSIG_HSC_MIMICRY_CORE"].up == ("CXCR4", "CD34", "TEK")
    assert (len(lib["WIECEK2023_G0_ARREST"].up), len(lib["WIECEK2023_G0_ARREST"].down)) == (27, 112)
    assert (len(lib["WIECEK2023_G0_ARREST_CORE"].up), len(lib["WIECEK2023_G0_ARREST_CORE"].down)) == (3, 15)
    assert (len(lib["DORMANCY_KIM2012"].up), len(lib["DORMANCY_KIM2012"].down)) == (21, 26)
    assert lib["TGFB2_P38_DORMANCY_BRAGADO2013"].down == ("CDK4",)
    assert lib["DORMSIG_ENDOSTEAL_NICHE_LIGANDS"].score_in == "stromal"
    assert {s.score_in for n, s in lib.items() if n != "DORMSIG_ENDOSTEAL_NICHE_LIGANDS"} == {"tumour"}
    # IRE1 and ATF6 arms are separate sets and not part of the PERK core.
    assert "ERN1" not in lib["DORMSIG_PERK_ATF4_CHOP_CORE"].up and "ATF6" not in lib["DORMSIG_PERK_ATF4_CHOP_CORE"].up


def test_every_curation_set_is_shipped_unchanged(lib):
    """Each of the 33 curation sets equals its library part (gene order too); _UP/_DOWN pairs merged."""
    human = gmt(DATA / "curation_human.gmt")
    assert len(human) == 33
    seen = set()
    for cname, genes in human.items():
        sig = lib[cname]  # curation names are accepted as aliases
        part = "down" if cname in ("WIECEK2023_G0_ARREST_DOWN", "DORMANCY_KIM2012_DOWN",
                                   "TGFB2_P38_DORMANCY_BRAGADO2013_DOWN") else "up"
        if cname == "DORMSIG_CD177_MARKER_UP":
            # Co-markers moved to their own sets so that index components are disjoint (evidence in a caveat).
            moved = {"NOTCH2": "DORMSIG_NOTCH2_DORMANCY", "CXCR4": "DORMSIG_HSC_MIMICRY_CORE", "CD34": "DORMSIG_HSC_MIMICRY_CORE"}
            assert all(g in lib[moved[g]].up and f"{g} -> {moved[g]}" in " ".join(sig.caveats) for g in moved)
            genes = [g for g in genes if g not in moved]
        assert list(sig.part(part)) == genes, cname
        seen.add(sig.name)
    halves = {"WIECEK2023_G0_ARREST_UPREGULATED", "WIECEK2023_G0_ARREST_DOWNREGULATED"}
    assert seen | {"WIECEK2023_G0_ARREST_CORE"} | halves == set(lib)


def test_wiecek_sets_match_quiescore(lib):
    qs = gmt(DATA / "wiecek2023_quiescore.symbols.gmt")
    renamed = {"KIAA1109": "BLTP1"}  # HGNC rename, listed in the curation's aliases
    assert list(lib["WIECEK2023_G0_ARREST"].up) == [renamed.get(g, g) for g in qs["WIECEK2023_G0ARREST_UPREGULATED_COMMON"]]
    assert list(lib["WIECEK2023_G0_ARREST"].down) == qs["WIECEK2023_G0ARREST_DOWNREGULATED_COMMON"]
    assert list(lib["WIECEK2023_G0_ARREST_CORE"].up) == qs["WIECEK2023_G0ARREST_UPREGULATED_CORE"]
    assert list(lib["WIECEK2023_G0_ARREST_CORE"].down) == qs["WIECEK2023_G0ARREST_DOWNREGULATED_CORE"]
    assert "GPL-3.0" in lib["WIECEK2023_G0_ARREST"].licence


def test_hallmark_sets_equal_msigdb_v7_0_after_symbol_updates(lib):
    """v7.0 genes resolve (NCBI previous symbols/aliases) to the shipped v7.5.1 genes; only clone IDs differ."""
    from dormsig.genes import resolve

    v70 = gmt(DATA / "hallmark_v7.0_subset.gmt")
    # v7.0 listed GenBank clone IDs where v7.5.1 has the gene (fixed upstream in later releases).
    clone_fixes = {
        "HALLMARK_UNFOLDED_PROTEIN_RESPONSE": ({"AC092881.1"}, {"CNOT2"}),
        "HALLMARK_G2M_CHECKPOINT": ({"AC027237.1", "AC091021.1"}, {"KIF23", "SS18"}),
    }
    for name, genes in v70.items():
        clones, fixed = clone_fixes.get(name, (set(), set()))
        res = resolve([g for g in genes if g not in clones], "human")
        assert res["symbol"].notna().all(), res[res["symbol"].isna()]
        shipped = set(lib[name].up)
        assert set(res["symbol"]) == shipped - fixed, name
        assert len(genes) == len(shipped)
        assert "CC-BY-4.0" in lib[name].licence


def test_every_gene_is_a_current_official_symbol(lib, exceptions):
    from dormsig.genes import official_symbols

    official = official_symbols("human")
    documented = set(exceptions["symbol_exceptions"])
    assert documented == {"NHERF1"}
    bad = {}
    for sig in lib.values():
        allowed = documented | {g for g, _ in sig.symbol_exceptions}
        for gene in sig.genes:
            if gene not in official and gene not in allowed:
                bad.setdefault(sig.name, []).append(gene)
    assert not bad
    # Every per-set exception is in the library-wide list with its reason.
    for sig in lib.values():
        for gene, reason in sig.symbol_exceptions:
            assert gene in documented and reason


def test_sources_resolve_and_cite(lib):
    for sig in lib.values():
        keys = {s.key for s in sig.sources}
        assert keys, sig.name
        for ev in sig.evidence:
            assert ev.source in keys
        assert {ev.gene for ev in sig.evidence} == set(sig.genes), f"{sig.name}: gene without evidence"
        for src in sig.sources:
            assert src.citation
            assert src.doi or src.pmid or src.url, src.key
    assert lib.sources["SEED2026"].doi == "10.1038/s41413-026-00535-3"
    assert lib.sources["WIECEK2023"].doi == "10.1186/s13059-023-02963-4"
    assert "CC0" in lib.sources["REACTOME"].licence


def test_no_duplicates_and_no_gene_in_both_parts_in_shipped_files():
    # Read the YAML directly (the loader would raise): an independent check of the data files.
    for file in sorted((shipped_path() / "sets").glob("*.yaml")):
        doc = yaml.safe_load(file.read_text())
        parts = {}
        for part in ("up", "down"):
            genes = [e if isinstance(e, str) else e["gene"] for e in doc[part]]
            assert len(genes) == len(set(genes)), file.name
            parts[part] = set(genes)
        assert not parts["up"] & parts["down"], file.name


def test_curated_aliases_agree_with_ncbi_or_are_documented(lib, exceptions):
    """Every alias shown for a shipped gene resolves to it through NCBI, or is listed as a documented disagreement."""
    from dormsig.genes import resolve

    documented = exceptions["curated_alias_disagreements"]
    pairs = {(a, ev.gene) for sig in lib.values() for ev in sig.evidence for a in ev.aliases}
    aliases = sorted({a for a, _ in pairs})
    res = dict(zip(resolve(aliases, "human")["query"], resolve(aliases, "human")["symbol"], strict=True))
    undocumented = sorted((a, g) for a, g in pairs if res[a] != g and a not in documented)
    assert not undocumented
    # The documented list does not rot: each entry really disagrees with NCBI, and README lists it.
    readme = (shipped_path() / "README.md").read_text()
    for alias, entry in documented.items():
        got = resolve([alias], "human")["symbol"].iloc[0]
        assert got != entry["symbol"], alias
        assert f"`{alias}`" in readme, alias
    # Cross-check against the curation's own alias table (independent copy).
    with open(DATA / "curation_aliases_human.tsv", newline="") as handle:
        curated = [r for r in csv.DictReader(handle, delimiter="\t") if r["alias_type"] == "curated_alias"]
    assert len(curated) == 110
    names = [r["alias"].split(" (")[0] for r in curated]  # "eIF2a (protein; NOT the EIF2A gene)" -> eIF2a
    got = resolve(names, "human")["symbol"].tolist()
    for name, row, symbol in zip(names, curated, got, strict=True):
        assert symbol == row["official_symbol"] or name in documented, name
    # PROVENANCE.md found 88 of the 110 to be NCBI aliases of the stated gene; ambiguity aside, we agree
    # within the one previous-symbol case (CREB2 is ATF2's previous symbol in HGNC).
    not_alias = [n for n in names if n in documented and not (
        documented[n]["why"].startswith("ambiguous") and documented[n]["symbol"] in documented[n]["why"])]
    assert len(not_alias) == 23


def test_direction_conflicts_are_visible(lib):
    """Genes up in dormancy in one set and down in another: every affected set names gene and other set."""
    sign = {"up_in_dormancy": 1, "up_in_dormancy_weak_prior": 1, "down_in_dormancy": -1}
    calls: dict[str, dict[str, int]] = {}
    for sig in lib.values():
        s = sign.get(sig.direction, 0)
        for part, p in (("up", 1), ("down", -1)):
            for gene in sig.part(part):
                if s:
                    calls.setdefault(gene, {})[sig.name] = s * p
    n_conflicts = 0
    for gene, per_set in calls.items():
        for name, value in per_set.items():
            others = [o for o, v in per_set.items() if v == -value]
            for other in others:
                text = " ".join(lib[name].caveats)
                assert re.search(rf"\b{re.escape(gene)} \(", text) and other in text, (gene, name, other)
                n_conflicts += 1
    assert n_conflicts > 0
    # The seed's UPR vs the Kim 2012 list: kept as separate sets, both say so.
    assert "ATF4" in lib["DORMSIG_PERK_ATF4_CHOP_CORE"].up and "ATF4" in lib["DORMANCY_KIM2012"].down
    assert "DORMANCY_KIM2012" in " ".join(lib["DORMSIG_PERK_ATF4_CHOP_CORE"].caveats)
    readme = (shipped_path() / "README.md").read_text()
    assert "DIRECTION CONFLICT" in readme or "Direction conflicts" in readme


def test_notch_targets_caveat_and_index_default():
    lib = load_library()
    assert "do not tell the receptors apart" in " ".join(lib["DORMSIG_NOTCH_CANONICAL_TARGETS"].caveats)
    assert load_index().name == "quiescence"  # the index with evidence (tests/test_index_evidence.py)
    index = load_index("notch2_niche")
    assert [(c.set, c.sign, c.weight) for c in index.components] == [
        ("DORMSIG_HSC_MIMICRY_CORE", 1, 1.0),
        ("DORMSIG_PERK_ATF4_CHOP_CORE", 1, 1.0),
        ("DORMSIG_CD177_MARKER", 1, 1.0),
        ("DORMSIG_NOTCH2_DORMANCY", 1, 0.5),
        ("DORMSIG_NOTCH1_CONTRAST", -1, 0.5),
    ]
    assert index.citation and "10.1038/s41413-026-00535-3" in index.citation
    assert lib["DORMSIG_PROLIFERATION_CORE"].direction == "down_in_dormancy"


def test_user_index_and_validation(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nversion: '1'\ncomponents:\n  - {set: WIECEK2023_G0_ARREST, sign: 1, weight: 2}\n"
        "  - {set: TIROSH_G2M_PHASE, sign: -1}\n"
    )
    index = load_index(path)
    assert index.components[1] == IndexComponent("TIROSH_G2M_PHASE", -1, 1.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nversion: '1'\ncomponents:\n  - {set: NO_SUCH_SET, sign: 1}\n")
    with pytest.raises(SignatureError, match=r"unknown set\(s\) NO_SUCH_SET; valid names: DORMSIG_HSC_MIMICRY_CORE"):
        load_index(bad)
    missing = tmp_path / "missing.yaml"
    missing.write_text("name: x\ncomponents: []\n")
    with pytest.raises(SignatureError, match=r"missing.yaml: missing required field 'version'"):
        load_index(missing)
    with pytest.raises(SignatureError, match="sign must be"):
        IndexComponent("A", 2)
    with pytest.raises(SignatureError, match="weight must be a positive"):
        IndexComponent("A", 1, 0.0)
    with pytest.raises(SignatureError, match="listed twice"):
        DormancyIndex("x", "1", (IndexComponent("A", 1), IndexComponent("A", -1)))
    with pytest.raises(SignatureError, match="unknown dormancy index 'nope'; shipped: notch2_niche, quiescence"):
        load_index("nope")
    # A user index over a user library.
    from dormsig.signatures import Signature

    user = Library([Signature("WIECEK2023_G0_ARREST", up=("A",)), Signature("TIROSH_G2M_PHASE", up=("B",))], name="u")
    assert load_index(path, library=user) == index
    with pytest.raises(SignatureError, match=r"unknown set\(s\) TIROSH_G2M_PHASE; valid names: WIECEK2023_G0_ARREST$"):
        load_index(path, library=user.select(["WIECEK2023_G0_ARREST"]))


def test_select_show_and_frame(lib):
    sub = lib.select(["DORMANCY_KIM2012", "DORMSIG_CD177_MARKER_UP"])
    assert list(sub) == ["DORMANCY_KIM2012", "DORMSIG_CD177_MARKER"]
    assert sub.version == lib.version
    with pytest.raises(SignatureError, match=r"unknown signature\(s\) NOPE; valid names: DORMSIG_HSC_MIMICRY_CORE, "):
        lib.select(["NOPE"])
    text = show("DORMSIG_HSC_MIMICRY_CORE")
    assert "TEK [TIE2, TIE-2, CD202B]" in text and "doi:10.1038/s41413-026-00535-3" in text
    assert "UP (3 genes)" in text
    text = show("WIECEK2023_G0_ARREST")
    assert "UP (27 genes)" in text and "DOWN (112 genes)" in text and "GPL-3.0" in text
    frame = lib.to_frame()
    assert frame.loc["DORMANCY_KIM2012", "n_down"] == 26
    assert frame["n_up"].sum() + frame["n_down"].sum() == sum(len(s.genes) for s in lib.values())


def test_library_dir_consistency_checks(tmp_path):
    import shutil

    copy = tmp_path / "lib"
    shutil.copytree(shipped_path(), copy)
    assert len(read_library_dir(copy)) == 33
    # A file not listed in library.yaml is caught.
    shutil.copy(copy / "sets" / "DORMSIG_CD177_MARKER.yaml", copy / "sets" / "EXTRA.yaml")
    with pytest.raises(SignatureError, match="not listed in library.yaml: EXTRA"):
        read_library_dir(copy)
    (copy / "sets" / "EXTRA.yaml").unlink()
    # A required field missing: the message names the field and the file.
    file = copy / "sets" / "DORMSIG_CD177_MARKER.yaml"
    text = file.read_text()
    file.write_text(re.sub(r"(?m)^licence:.*\n", "", text))
    with pytest.raises(SignatureError, match=r"DORMSIG_CD177_MARKER.yaml.*missing required field 'licence'"):
        read_library_dir(copy)
    # An unknown source key on a gene names the key and the file.
    file.write_text(text.replace("source: SEED2026", "source: NOSUCHKEY", 1))
    with pytest.raises(SignatureError, match=r"DORMSIG_CD177_MARKER.yaml.*unknown source key 'NOSUCHKEY'"):
        read_library_dir(copy)


def test_build_script_reproduces_the_shipped_files(tmp_path):
    """The YAML files are generated: rebuilding from the curation gives identical bytes."""
    root = Path("/work/shared/data")
    if not (root / "signature_curation" / "signatures.yaml").exists():
        pytest.skip("curation material not available")
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_signatures", ROOT / "scripts" / "build_signatures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "signatures"
    module.build(root, out)
    for file in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = file.relative_to(out)
        assert file.read_bytes() == (shipped_path() / rel).read_bytes(), rel


def test_curation_gmt_reads_into_the_same_programmes(lib):
    """Reading the curation GMT merges Kim/Wiecek/TGFB2 _UP/_DOWN pairs into the shipped programmes."""
    cur = read_gmt(DATA / "curation_human.gmt")
    assert len(cur) == 30
    for name in ("WIECEK2023_G0_ARREST", "DORMANCY_KIM2012", "TGFB2_P38_DORMANCY_BRAGADO2013"):
        assert cur[name].up == lib[name].up and cur[name].down == lib[name].down
    # Lone _DOWN sets keep their genes in the down part (GMT suffix convention).
    assert cur["DORMSIG_PROLIFERATION_CORE"].down == lib["DORMSIG_PROLIFERATION_CORE"].up
