#!/usr/bin/env python
"""Build the curated signature library (top-level ``signatures/``) from the curation material.

The generated YAML files are the reviewed data: run this script, read the diff, commit both.
Running it twice on the same inputs gives byte-identical files.

Inputs (read-only; default ``--curation-root /work/shared/data``):

- ``signature_curation/signatures.yaml``: per-set metadata, per-gene evidence, bibliography
- ``signature_curation/aliases.tsv``: seed, curated and previous-symbol aliases per gene
- ``quiescore_brca/wiecek2023_quiescence_signatures.symbols.gmt``: Wiecek 2023 CORE lists (3 up / 15 down)
- ``gene_ids/human_genes.tsv.gz``: NCBI Gene (org.Hs.eg.db 3.16) symbols and aliases, to find symbol
  exceptions and to check the curated aliases; the result is written to ``signatures/exceptions.yaml``.

Usage::

    python scripts/build_signatures.py [--curation-root DIR] [--out signatures]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import re
import sys
from collections import OrderedDict
from pathlib import Path

import yaml

# Run from a source checkout without installing: dormsig.genes checks the curated aliases.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LIBRARY_NAME = "dormsig"
LIBRARY_VERSION = "2026.12.0"

MIT = "MIT (dormsig curation; gene names are facts taken from the cited sources)"
LICENCES = {
    "HALLMARK": (
        "CC-BY-4.0 (MSigDB Hallmark gene sets; cite Liberzon et al. Cell Syst 2015 and Subramanian et al. PNAS 2005)"
    ),
    "REACTOME": (
        "CC0-1.0 (Reactome annotation files such as ReactomePathways.gmt are CC0 per "
        "https://reactome.org/pages/about/license-agreement/; attribution given anyway)"
    ),
    "WIECEK2023": (
        "GPL-3.0 (list as distributed with the QuieScore R package, dkornai/QuieScore and "
        "secrierlab/CancerG0Arrest; published in Wiecek et al. Genome Biol 2023, CC BY 4.0 article)"
    ),
    "TIROSH2016": (
        "BSD-3-Clause (regev_lab_cell_cycle_genes.txt as distributed with scanpy); gene list from Tirosh et al. Science 2016"
    ),
}

# Curation set name -> (library set name, part). Sets with the same library name are merged into one
# bidirectional programme. Every other curation set keeps its name minus a trailing _UP/_DOWN.
MERGE = {
    "WIECEK2023_G0_ARREST_UP": ("WIECEK2023_G0_ARREST", "up"),
    "WIECEK2023_G0_ARREST_DOWN": ("WIECEK2023_G0_ARREST", "down"),
    "DORMANCY_KIM2012_UP": ("DORMANCY_KIM2012", "up"),
    "DORMANCY_KIM2012_DOWN": ("DORMANCY_KIM2012", "down"),
    "TGFB2_P38_DORMANCY_BRAGADO2013_UP": ("TGFB2_P38_DORMANCY_BRAGADO2013", "up"),
    "TGFB2_P38_DORMANCY_BRAGADO2013_DOWN": ("TGFB2_P38_DORMANCY_BRAGADO2013", "down"),
}

# Where a merged programme needs its own description.
MERGED_DESCRIPTION = {
    "WIECEK2023_G0_ARREST": (
        "Wiecek 2023 G0-arrest (QuieScore) signature: 27 genes up and 112 genes down in G0-arrested "
        "(quiescent) versus proliferating cells, common to the models studied."
    ),
    "DORMANCY_KIM2012": (
        "49-gene dormancy signature as tabulated in Gelman 2023 Table 2 (very probably Kim et al. 2012; attribution "
        "unverified): 21 genes up and 26 genes down in dormancy. P2HA1 (up) and IGFR1 (down) are not HGNC symbols "
        "and were excluded."
    ),
    "TGFB2_P38_DORMANCY_BRAGADO2013": (
        "TGFB2 -> TGFBR1/TGFBR3 -> SMAD1/5 and p38a/b -> DEC2 (BHLHE41), p27 (CDKN1B) up, CDK4 down. Pathway members "
        "named in the Bragado 2013 abstract; p38 is regulated by phosphorylation, its mRNA may not change."
    ),
}

# For bidirectional programmes the per-part direction is recorded; the set direction says how the
# programme (up part high, down part low) relates to dormancy.
PART_DIRECTION_TO_SET = {"up_in_dormancy": "up_in_dormancy", "down_in_dormancy": "up_in_dormancy"}

# Direction conflicts and other caveats, keyed by library set name. Every set affected by a
# conflict says so, so the conflict stays visible wherever the set is used.
UPR_CONFLICT = (
    "DIRECTION CONFLICT: the seed reports ER-stress/UPR genes up in Notch2-high (dormant) cells, but the Kim 2012 / "
    "Gelman 2023 49-gene dormancy signature (DORMANCY_KIM2012) lists ASNS, ATF3 and ATF4 as DOWN in dormancy. "
    "Score this set and DORMANCY_KIM2012 separately; never merge them."
)
CAVEATS: dict[str, list[str]] = {
    "DORMSIG_PERK_ATF4_CHOP_CORE": [
        UPR_CONFLICT + " Genes in both: ASNS, ATF3, ATF4.",
        "PERK/ATF4/CHOP are named in the founding brief, not in the seed abstract text that was read; they are also "
        "Reactome members (R-HSA-381042).",
        "PPP1R15A, TRIB3, CHAC1, ATF5 belong to the ATF4 module shared by all eIF2alpha kinases (integrated stress "
        "response), not to PERK alone.",
    ],
    "REACTOME_PERK_REGULATES_GENE_EXPRESSION": [UPR_CONFLICT + " Genes in both: ASNS, ATF3, ATF4, CXCL8."],
    "REACTOME_ATF4_ACTIVATES_GENES_IN_ER_STRESS": [UPR_CONFLICT + " Genes in both: ASNS, ATF3, ATF4, CXCL8."],
    "HALLMARK_UNFOLDED_PROTEIN_RESPONSE": [
        UPR_CONFLICT + " Genes in both: ASNS, ATF3, ATF4.",
        "Mixes the PERK, IRE1 and ATF6 arms; does not contain DDIT3 (CHOP).",
    ],
    "DORMANCY_KIM2012": [
        "DIRECTION CONFLICT: ASNS, ATF3 and ATF4 are DOWN here but UP in the seed's UPR/PERK programme "
        "(DORMSIG_PERK_ATF4_CHOP_CORE, REACTOME_PERK_REGULATES_GENE_EXPRESSION, REACTOME_ATF4_ACTIVATES_GENES_IN_ER_STRESS, "
        "HALLMARK_UNFOLDED_PROTEIN_RESPONSE); CXCL8 is also down here and in the Reactome PERK/ATF4 sets. Score separately.",
        "Built on ER+ and ER- breast-cancer models, not on MDA-MB231 (triple-negative) Notch2-high cells.",
        "Attribution to Kim et al. 2012 is unverified (Gelman 2023 Table 2 ref [84] not resolved).",
    ],
    "DORMSIG_NOTCH_CANONICAL_TARGETS": [
        "Notch targets do not tell the receptors apart: HES/HEY genes read out CSL/RBPJ activity from any Notch "
        "receptor, so this set cannot separate NOTCH2 (dormancy) from NOTCH1 (excluded by the seed) signalling. "
        "Only DORMSIG_NOTCH2_DORMANCY and DORMSIG_NOTCH1_CONTRAST carry the Notch2-vs-Notch1 claim.",
    ],
    "HALLMARK_NOTCH_SIGNALING": [
        "Mixes receptors (NOTCH1, NOTCH2, NOTCH3), ligands, targets and Wnt crosstalk; not receptor-specific.",
    ],
    "DORMSIG_NOTCH_RECEPTORS_LIGANDS": ["For axis plots, not a dormancy score."],
    "DORMSIG_NOTCH1_CONTRAST": [
        "Not a dormancy score: the seed excludes Notch1 from SNO-induced dormancy. Use as the contrast to "
        "DORMSIG_NOTCH2_DORMANCY (Notch1-high vs Notch2-high).",
    ],
    "DORMSIG_ENDOSTEAL_NICHE_LIGANDS": [
        "Score in stromal/osteoblastic (SNO) niche cells, never in tumour cells (score_in: stromal).",
        "JAG1/DLL1/DLL4 niche expression taken from the founding brief, not verified; Notch-pathway membership is "
        "Reactome-verified.",
        "PLAUR, ITGAM and CEACAM1 are CD177 ligands on SNOs; in the seed CD177, ITGAM and CEACAM1, but not PLAUR, "
        "correlated with better overall survival.",
    ],
    "DORMSIG_HSC_MIMICRY_EXTENDED": [
        "The curation's mouse-only marker Ly6a (Sca-1, no human 1:1 ortholog) is not part of this human set; mouse "
        "data are scored through orthologs of the 5 human genes.",
        "KIT is an HSC identity marker (LSK gating) not shown in breast-cancer cells.",
    ],
    "DORMSIG_CD177_MARKER": [
        "Co-marker claim rests on the seed abstract, whose stored text stops at 'Notc' (Notch2HIGH assumed).",
        "CD177 is absent from the Aceto 2014 CTC counts (GSE51827).",
    ],
    "DORMSIG_AUTOPHAGY_CORE": [
        "Activity pathway: hydroxychloroquine blocks autophagic flux, so LC3B-II/p62 accumulate as protein; mRNA "
        "scores are weak proxies. ULK2 left out (not in the Reactome Macroautophagy snapshot used).",
    ],
    "REACTOME_MACROAUTOPHAGY": [
        "Activity pathway (see DORMSIG_AUTOPHAGY_CORE); includes mTORC1/AMPK/ESCRT/dynein components.",
    ],
    "HALLMARK_MTORC1_SIGNALING": [
        "Baseline direction in dormant DTCs is not fixed by the seed documents; everolimus lowers mTORC1 output, so "
        "this set should fall on treatment.",
        "Contains CXCR4, PPP1R15A, TRIB3, DDIT3, DDIT4 and ASNS, which are also in HSC/UPR sets.",
    ],
    "REACTOME_MTOR_SIGNALLING": ["Pathway components, not a transcriptional readout; no fixed direction."],
    "WIECEK2023_G0_ARREST": [
        "Licence: the lists come from the QuieScore R package (GPL-3.0).",
        "MTRNR2L12, HMGB1P5 and HMGB1P6 have no mouse ortholog (HCOP); KIAA1109 was renamed BLTP1.",
    ],
    "WIECEK2023_G0_ARREST_CORE": ["Licence: the lists come from the QuieScore R package (GPL-3.0)."],
    "HYPOXIA_DORMANCY_FLUEGEN2017": ["HIF1A is required but not listed as high; GLUT1 (SLC2A1) explicitly NOT high."],
    "AGUIRRE_GHISO_DORMANCY_TF_CORE": ["Convenience union for low-depth scRNA-seq; overlaps the sets it is built from."],
    "REACTOME_IRE1A_ACTIVATES_CHAPERONES": ["Kept separate from the PERK arm; the seed claims no direction for IRE1."],
    "REACTOME_ATF6_ACTIVATES_CHAPERONE_GENES": ["Kept separate from the PERK arm; the seed claims no direction for ATF6."],
}
PROLIFERATION_CAVEAT = (
    "The genes define the proliferation programme (high score = proliferating); the programme is DOWN in dormancy, "
    "so a dormancy index uses it with sign -1."
)

DOWN_CAVEAT = (
    "The genes are DOWN in dormancy (high score = less dormant), so a dormancy index uses this set with sign -1."
)

# Genes the curation lists in a set but that dormsig scores in another set, so that the components of
# the notch2_niche index are disjoint (each gene counted once). The seed's claim and the curation's
# evidence for each moved gene are kept in the set's caveats.
MOVED = {
    "DORMSIG_CD177_MARKER": OrderedDict(
        NOTCH2="DORMSIG_NOTCH2_DORMANCY", CXCR4="DORMSIG_HSC_MIMICRY_CORE", CD34="DORMSIG_HSC_MIMICRY_CORE"
    ),
}
MOVED_DESCRIPTION = {
    "DORMSIG_CD177_MARKER": (
        "CD177, the seed's new dormancy marker: Notch2HIGH cells overexpressed CD177 protein, and high CD177 "
        "correlates with better overall survival. The seed's co-markers (CD177HIGH cells were also CXCR4HIGH, "
        "CD34HIGH and Notch2HIGH) are scored in DORMSIG_HSC_MIMICRY_CORE and DORMSIG_NOTCH2_DORMANCY, not here."
    ),
}

# One-part halves of a two-part published programme: (new name, parent, parent part, direction, description).
# UCell scores a two-part set as max(0, U(up) - U(down)), which ties every sample where the down part wins at 0;
# an index that takes the halves as separate components (signs +1 and -1) keeps that information.
HALVES = [
    ("WIECEK2023_G0_ARREST_UPREGULATED", "WIECEK2023_G0_ARREST", "up", "up_in_dormancy",
     "The 27 genes of WIECEK2023_G0_ARREST that go up in G0 arrest (QuieScore UPREGULATED_COMMON), as a one-part "
     "set; the quiescence index uses it with sign +1."),
    ("WIECEK2023_G0_ARREST_DOWNREGULATED", "WIECEK2023_G0_ARREST", "down", "down_in_dormancy",
     "The 112 genes of WIECEK2023_G0_ARREST that go down in G0 arrest (QuieScore DOWNREGULATED_COMMON), as a "
     "one-part set (high score = less arrested); the quiescence index uses it with sign -1."),
]
HALF_CAVEAT = (
    "Half of {parent} (same genes as its {part} part), shipped so that an index can combine the two halves with "
    "signs instead of a two-part score that UCell clips at 0. Do not add it to {parent} in the same index."
)

# Sets scored in niche cells rather than tumour cells.
SCORE_IN = {"DORMSIG_ENDOSTEAL_NICHE_LIGANDS": "stromal"}

# Aliases that must not be used to read gene names (they are official symbols of other genes or ambiguous).
ALIAS_NOTES = {
    "eIF2a (protein; NOT the EIF2A gene)": ("eIF2a", "protein name; NOT the EIF2A gene"),
    "LC3 (ambiguous: LC3A/B/C)": ("LC3", "ambiguous: LC3A/B/C"),
}
DROP_ALIASES = {"eIF2a", "LC3"}

# Why a shipped symbol is absent from the NCBI Gene 2022-09 snapshot (build fails on an unexplained one).
SYMBOL_EXCEPTION_REASONS = {
    "NHERF1": "current HGNC symbol (renamed from SLC9A3R1 in 2022, after the NCBI Gene 2022-09-12 snapshot that "
    "dormsig.genes ships, where it is still SLC9A3R1)",
}


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with readable multi-line strings and list indentation."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):  # noqa: D102
        return super().increase_indent(flow, False)


def _str_presenter(dumper, data):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)
_Dumper.add_representer(OrderedDict, lambda d, data: d.represent_dict(data.items()))


def dump_yaml(obj, path: Path, header: str) -> None:
    text = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)
    path.write_text(header + text)


def stem(name: str) -> str:
    return re.sub(r"_(UP|DOWN)$", "", name)


def read_gmt(path: Path) -> dict[str, list[str]]:
    out = {}
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) > 2:
            out[fields[0]] = [g for g in fields[2:] if g]
    return out


def read_aliases(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Official human symbol -> [(alias, alias_type)] for seed/curated/previous aliases."""
    out: dict[str, list[tuple[str, str]]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["species"] != "human" or row["alias_type"] not in ("seed_alias", "curated_alias", "previous_symbol"):
                continue
            out.setdefault(row["official_symbol"], []).append((row["alias"], row["alias_type"]))
    return out


def read_ncbi(path: Path) -> tuple[set[str], dict[str, set[str]]]:
    """NCBI symbols and alias (upper case) -> symbols that list it."""
    symbols: set[str] = set()
    alias_to: dict[str, set[str]] = {}
    with gzip.open(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            symbols.add(row["symbol"])
            for alias in (row["aliases"] or "").split(";"):
                if alias:
                    alias_to.setdefault(alias.upper(), set()).add(row["symbol"])
    return symbols, alias_to


def source_entry(key: str, src: dict) -> OrderedDict:
    entry = OrderedDict(citation=" ".join(src["cite"].split()))
    if src.get("doi"):
        entry["doi"] = src["doi"]
    pmid = re.search(r"PMID (\d+)", src["cite"])
    if pmid:
        entry["pmid"] = pmid.group(1)
    if key == "REACTOME":
        entry["url"] = "https://reactome.org/content/detail/<stable ID>"
    if src.get("note"):
        entry["note"] = " ".join(str(src["note"]).split())
    entry["licence"] = LICENCES.get(key, "publication (facts cited, not copied)")
    return entry


def set_licence(name: str, source_keys: list[str]) -> str:
    db = [k for k in ("HALLMARK", "REACTOME", "WIECEK2023", "TIROSH2016") if k in source_keys]
    # A database set copied whole carries the database's licence; a dormsig selection is dormsig's.
    if len(source_keys) == 1 and db and not name.startswith("DORMSIG_"):
        return LICENCES[db[0]]
    if db:
        return MIT + "; membership evidence from " + ", ".join(
            f"{k} ({LICENCES[k].split(' ')[0]})" for k in db
        )
    return MIT


def gene_records(genes: list[dict], aliases: dict, set_sources: list[str]) -> tuple[list, list[str]]:
    """Per-gene YAML records (human genes only) and the list of human symbols, in curation order."""
    records, symbols = [], []
    for gene in genes:
        human = gene["human"]
        if human is None:  # mouse-only marker (Ly6a): documented in the caveats
            continue
        detail = " ".join(str(gene["detail"]).split())
        rec = OrderedDict(gene=human, source=gene["source"], evidence=gene["evidence"], detail=detail)
        names, notes = [], []
        for alias, _kind in aliases.get(human, []):
            if alias in ALIAS_NOTES:
                short, note = ALIAS_NOTES[alias]
                notes.append(f"alias {short}: {note}")
                continue
            if alias not in DROP_ALIASES:
                names.append(alias)
        if names:
            rec["aliases"] = names
        if notes:
            rec["detail"] = detail + "; " + "; ".join(notes)
        records.append(rec)
        symbols.append(human)
    return records, symbols


def compact(records: list[OrderedDict]):
    """Genes sharing one evidence record are written as plain names under ``<part>_evidence``.

    Genes that also carry aliases stay mappings (gene + aliases) so that the aliases are kept.
    """
    keyset = {(r["source"], r["evidence"], r["detail"]) for r in records}
    if len(records) > 12 and len(keyset) == 1:
        source, evidence, detail = keyset.pop()
        entries = [
            OrderedDict(gene=r["gene"], aliases=r["aliases"]) if "aliases" in r else r["gene"] for r in records
        ]
        return OrderedDict(source=source, evidence=evidence, detail=detail), entries
    return None, records


# How a set's direction orients its genes with respect to dormancy (0: no dormancy claim).
DIRECTION_SIGN = {"up_in_dormancy": 1, "up_in_dormancy_weak_prior": 1, "down_in_dormancy": -1}


def direction_conflicts(programmes: dict) -> dict[str, list[str]]:
    """Per set, one caveat line listing genes whose dormancy direction differs in another set."""
    calls: dict[str, dict[str, int]] = {}  # gene -> set -> +1/-1
    for name, prog in programmes.items():
        sign = DIRECTION_SIGN.get(prog["direction"], 0)
        if not sign:
            continue
        for part, part_sign in (("up", 1), ("down", -1)):
            for gene in prog["parts"].get(part, ([], []))[1]:
                calls.setdefault(gene, {})[name] = sign * part_sign
    out: dict[str, list[str]] = {}
    for name in programmes:
        items = []
        for gene in sorted(calls):
            mine = calls[gene].get(name)
            if mine is None:
                continue
            others = sorted(s for s, v in calls[gene].items() if v == -mine)
            if others:
                here = "up" if mine > 0 else "down"
                there = "down" if mine > 0 else "up"
                items.append(f"{gene} ({here} in dormancy here; {there} in {', '.join(others)})")
        if items:
            out[name] = [
                "Direction conflicts with other sets of this library (kept, not merged away): " + "; ".join(items) + "."
            ]
    return out


def default_min_genes(sizes: list[int]) -> int:
    # A part of n genes needs min(n, min_genes) matched genes: 1-3 gene marker sets stay usable,
    # large database sets need ~10% of their genes before they are trusted.
    return max(3, math.ceil(0.1 * max(sizes)))


def build(root: Path, out: Path) -> None:
    cur = yaml.safe_load((root / "signature_curation/signatures.yaml").read_text())
    aliases = read_aliases(root / "signature_curation/aliases.tsv")
    ncbi_symbols, ncbi_alias = read_ncbi(root / "gene_ids/human_genes.tsv.gz")
    wiecek = read_gmt(root / "quiescore_brca/wiecek2023_quiescence_signatures.symbols.gmt")
    sources = cur["sources"]

    programmes: OrderedDict[str, dict] = OrderedDict()
    for cset in cur["sets"]:
        name, part = MERGE.get(cset["name"], (stem(cset["name"]), "up"))
        prog = programmes.setdefault(
            name,
            {"curation_names": [], "parts": {}, "sources": [], "category": cset["category"], "part_direction": {}},
        )
        prog["curation_names"].append(cset["name"])
        records, symbols = gene_records(cset["genes"], aliases, cset["sources"])
        prog["parts"][part] = (records, symbols)
        prog["part_direction"][part] = cset["direction"]
        for key in cset["sources"]:
            if key not in prog["sources"]:
                prog["sources"].append(key)
        if name in MERGED_DESCRIPTION:
            prog["description"] = MERGED_DESCRIPTION[name]
            prog["direction"] = PART_DIRECTION_TO_SET[cset["direction"]]
        else:
            prog["description"] = " ".join(cset["description"].split())
            prog["direction"] = cset["direction"]
        if cset["name"] == "WIECEK2023_G0_ARREST_UP":
            # The CORE lists (3 up / 15 down) are not in the curation; they come from QuieScore directly.
            programmes["WIECEK2023_G0_ARREST_CORE"] = {"placeholder": True}

    # WIECEK2023_G0_ARREST_CORE: place it right after the full signature.
    core_parts = {}
    for part, key in (("up", "WIECEK2023_G0ARREST_UPREGULATED_CORE"), ("down", "WIECEK2023_G0ARREST_DOWNREGULATED_CORE")):
        rds = "upregulated_core.rda" if part == "up" else "downregulated_core.rda"
        recs = [
            OrderedDict(gene=g, source="WIECEK2023", evidence="paper", detail=f"QuieScore data/{rds}")
            for g in wiecek[key]
        ]
        core_parts[part] = (recs, list(wiecek[key]))
    programmes["WIECEK2023_G0_ARREST_CORE"] = {
        "curation_names": [],
        "parts": core_parts,
        "sources": ["WIECEK2023"],
        "category": "f_published",
        "part_direction": {"up": "up_in_dormancy", "down": "down_in_dormancy"},
        "description": (
            "Wiecek 2023 G0-arrest CORE signature (QuieScore): 3 genes up and 15 genes down in G0 arrest; a subset "
            "of WIECEK2023_G0_ARREST for low-depth data."
        ),
        "direction": "up_in_dormancy",
    }
    # Halves of two-part programmes, right after the CORE set.
    ordered: OrderedDict[str, dict] = OrderedDict()
    for name, prog in programmes.items():
        ordered[name] = prog
        if name == "WIECEK2023_G0_ARREST_CORE":
            for half, parent, part, direction, description in HALVES:
                records, symbols = programmes[parent]["parts"][part]
                ordered[half] = {
                    "curation_names": [],
                    "parts": {"up": ([OrderedDict(r) for r in records], list(symbols))},
                    "sources": list(programmes[parent]["sources"]),
                    "category": programmes[parent]["category"],
                    "part_direction": {"up": direction},
                    "description": description,
                    "direction": direction,
                    "caveats": [HALF_CAVEAT.format(parent=parent, part=part)],
                }
    programmes = ordered

    # Genes moved out of a set so that index components are disjoint (the evidence goes to a caveat).
    for name, moves in MOVED.items():
        records, symbols = programmes[name]["parts"]["up"]
        gone = [r for r in records if r["gene"] in moves]
        assert [r["gene"] for r in gone] == [g for g in symbols if g in moves], name
        notes = "; ".join(f"{r['gene']} -> {moves[r['gene']]} ({r['detail']})" for r in gone)
        programmes[name]["parts"]["up"] = (
            [r for r in records if r["gene"] not in moves], [g for g in symbols if g not in moves]
        )
        programmes[name]["description"] = MOVED_DESCRIPTION[name]
        programmes[name]["caveats"] = [
            "Co-markers listed by the curation in this set are scored in their own sets, so that the notch2_niche "
            "index counts each gene once (evidence kept here): " + notes + "."
        ]

    # The full Wiecek list must still match QuieScore (KIAA1109 was renamed BLTP1).
    full_up = programmes["WIECEK2023_G0_ARREST"]["parts"]["up"][1]
    qs_up = ["BLTP1" if g == "KIAA1109" else g for g in wiecek["WIECEK2023_G0ARREST_UPREGULATED_COMMON"]]
    assert full_up == qs_up, "curated Wiecek up list differs from QuieScore"
    assert programmes["WIECEK2023_G0_ARREST"]["parts"]["down"][1] == wiecek["WIECEK2023_G0ARREST_DOWNREGULATED_COMMON"]

    conflicts = direction_conflicts(programmes)
    used_sources: set[str] = set()
    exceptions: OrderedDict[str, str] = OrderedDict()
    sets_dir = out / "sets"
    sets_dir.mkdir(parents=True, exist_ok=True)
    for old in sets_dir.glob("*.yaml"):
        old.unlink()
    summary = []
    for name, prog in programmes.items():
        doc = OrderedDict()
        doc["name"] = name
        doc["version"] = LIBRARY_VERSION
        doc["description"] = prog["description"]
        doc["species"] = "human"
        doc["category"] = prog["category"]
        doc["direction"] = prog["direction"]
        if len(prog["parts"]) == 2:
            doc["part_directions"] = OrderedDict((p, prog["part_direction"][p]) for p in ("up", "down"))
        doc["score_in"] = SCORE_IN.get(name, "tumour")
        sizes = [len(prog["parts"][p][1]) for p in prog["parts"]]
        doc["min_genes"] = default_min_genes(sizes)
        doc["licence"] = set_licence(name, prog["sources"])
        doc["sources"] = list(prog["sources"])
        caveats = list(CAVEATS.get(name, [])) + prog.get("caveats", []) + conflicts.get(name, [])
        if prog["direction"] == "down_in_dormancy":
            caveats.insert(0, PROLIFERATION_CAVEAT if prog["category"] == "e_proliferation" else DOWN_CAVEAT)
        doc["caveats"] = caveats
        if prog["curation_names"] and prog["curation_names"] != [name]:
            doc["curation_names"] = prog["curation_names"]
        set_exceptions = OrderedDict()
        for part in ("up", "down"):
            records, symbols = prog["parts"].get(part, ([], []))
            for sym in symbols:
                if sym not in ncbi_symbols:
                    if sym not in SYMBOL_EXCEPTION_REASONS:
                        sys.exit(f"{name}: {sym} is not an NCBI symbol and has no documented reason")
                    set_exceptions[sym] = SYMBOL_EXCEPTION_REASONS[sym]
                    exceptions[sym] = SYMBOL_EXCEPTION_REASONS[sym]
            for rec in records:
                used_sources.add(rec["source"])
            default, entries = compact(records)
            if default is not None:
                doc[f"{part}_evidence"] = default
            doc[part] = entries
        if set_exceptions:
            doc["symbol_exceptions"] = set_exceptions
        used_sources.update(prog["sources"])
        header = (
            f"# {name}: generated by scripts/build_signatures.py from the curation material; "
            "edit the script, not this file.\n"
        )
        dump_yaml(doc, sets_dir / f"{name}.yaml", header)
        summary.append((name, doc["category"], doc["direction"], len(prog["parts"].get("up", ([], []))[1]),
                        len(prog["parts"].get("down", ([], []))[1]), doc["score_in"], ", ".join(doc["sources"])))

    bib = OrderedDict((k, source_entry(k, sources[k])) for k in sources if k in used_sources)
    dump_yaml(bib, out / "sources.yaml", "# Bibliography of the signature library; keys are used by sets/*.yaml.\n")

    library = OrderedDict(
        name=LIBRARY_NAME,
        version=LIBRARY_VERSION,
        species="human",
        description=(
            "Curated gene sets for scoring breast-cancer dormancy in bone marrow (HSC mimicry, PERK-ATF4-CHOP UPR, "
            "CD177, Notch2/Notch1, proliferation, published dormancy/quiescence signatures, autophagy/mTOR)."
        ),
        curation=(
            "Built by scripts/build_signatures.py from signature_curation v" + str(cur["version"])
            + " (SIGNATURES.md), QuieScore lists and NCBI Gene 2022-09-12 (org.Hs.eg.db 3.16)."
        ),
        sets=list(programmes),
    )
    dump_yaml(library, out / "library.yaml", "# The dormsig signature library: version and set order.\n")

    # Curated aliases checked with dormsig.genes (NCBI Gene 2022 + HGNC 2024 renames, no curated aliases);
    # disagreements are documented, never silently used on data.
    from dormsig.genes import resolve

    pairs = [(symbol, ALIAS_NOTES.get(alias, (alias, ""))[0]) for symbol, items in sorted(aliases.items())
             for alias, kind in items if kind != "previous_symbol"]
    table = resolve([a for _, a in pairs], "human", use_curated_aliases=False)
    disagreements = OrderedDict()
    for (symbol, alias), got, how, cand in zip(pairs, table["symbol"], table["how"], table["candidates"], strict=True):
        if got == symbol:
            continue
        if how == "ambiguous":
            why = f"ambiguous: NCBI alias of {cand.replace(';', ', ')}"
        elif how == "unmapped":
            why = "not an NCBI alias (protein or literature name)"
        else:
            why = f"NCBI {how} of {got}, not of {symbol}"
        kind = dict(aliases[symbol]).get(alias, "curated_alias")
        disagreements[alias] = OrderedDict(symbol=symbol, kind=kind, why=why)
    exc_doc = OrderedDict(
        reference="NCBI Gene 2022-09-12 (org.Hs.eg.db 3.16), as shipped in dormsig.genes",
        symbol_exceptions=exceptions,
        curated_alias_disagreements=disagreements,
    )
    dump_yaml(exc_doc, out / "exceptions.yaml", "# Documented exceptions to the symbol and alias checks (generated).\n")

    write_readme(out, summary, programmes, disagreements, exceptions)
    for row in summary:
        print("\t".join(map(str, row)))
    print(f"{len(summary)} sets, {len(bib)} sources, {len(disagreements)} alias disagreements", file=sys.stderr)


README_HEAD = """\
# The dormsig signature library

Curated gene sets for scoring breast-cancer dormancy in bone marrow, version **{version}**
(recorded in the provenance of every score). Generated by `scripts/build_signatures.py` from the
curation material (`signature_curation/` v0.1.0: SIGNATURES.md, signatures.yaml, aliases.tsv), the
QuieScore lists (Wiecek 2023) and NCBI Gene 2022-09-12; **this README is generated too**: edit the
script, rerun it, review the diff.

```
signatures/
  library.yaml              name, version, set order
  sources.yaml              bibliography: key -> citation, DOI/PMID, licence
  sets/<NAME>.yaml          one signature per file (reviewable data)
  index/<name>.yaml         dormancy indices with their evidence (not generated: see below)
  exceptions.yaml           documented exceptions to the symbol and alias checks
```
Python: `dormsig.signatures.load_library()`, `show(name)`, `match(...)`, `load_index(...)`.
Inside an installed wheel the directory is `dormsig/_signatures`.

## The model: one programme, an `up` and a `down` part, and a direction

- `up`: genes whose **higher** expression raises the programme's score; `down`: genes whose
  **lower** expression raises it (either may be empty). A method scores e.g. `S(up) - S(down)`.
- `direction` (the curation's vocabulary) says how the programme relates to dormancy:
  `up_in_dormancy`, `down_in_dormancy`, `up_in_dormancy_weak_prior`, `not_associated_with_dormancy`
  (Notch1 contrast), `niche_cells_not_tumour`, `context_not_perk_arm`, `context`,
  `pathway_required_for_dormant_cell_survival` (autophagy: activity, not necessarily mRNA),
  `target_pathway_no_fixed_direction` (mTOR). Two-part programmes also record `part_directions`.
- So proliferation sets keep their genes in `up` with `direction: down_in_dormancy` (the dormancy
  index uses them with sign -1), while WIECEK2023_G0_ARREST (27 up / 112 down), its CORE (3 / 15),
  DORMANCY_KIM2012 (21 / 26) and TGFB2_P38_DORMANCY_BRAGADO2013 (9 / 1) are single programmes with
  both parts (`direction: up_in_dormancy`).
- `score_in`: `tumour`, or `stromal` for the niche-ligand set (score it in SNO/stromal cells, never in
  tumour cells).
- `min_genes`: a part of n genes needs `min(n, min_genes)` genes in the data. Below that the set is
  **kept** with status `below_min_genes` and a `MatchWarning` (so 1-3 gene marker sets stay usable on
  shallow data); a set with no gene in the data raises `MatchError` (or, with `on_empty="warn"`, is
  reported as `no_overlap`, never dropped silently). Shipped value: `max(3, ceil(10% of the largest
  part))`; user sets: 3.
- Per gene: `source` (a key of `sources.yaml`), `evidence` (`seed` = named in the seed documents,
  `paper` = named in a cited paper, `database` = member of a named database set and release),
  `detail` (abstract / table / database set) and, where the curation gave them, `aliases` (seed,
  literature and previous symbols; used only to read signature text, never to rename data genes).
  Large database sets give one `<part>_evidence` record for all their genes.
- `caveats`: known problems, including every **direction conflict** with another set (below).
- `curation_names`: the curation set names (e.g. `DORMSIG_PROLIFERATION_CORE_DOWN`); `Library.select`
  and `library[...]` accept them.

Required fields of a shipped file: {required}. A user YAML needs `name` and `up` or `down`
(or `genes`); it may list `sources:` as keys of this bibliography or define them inline.

## User gene sets

`read_signatures(path_or_obj)` reads GMT (name, description, genes; tab-separated), GMX (column-wise),
YAML, JSON and plain dicts (`{{"name": ["A", "B"]}}` or `{{"name": {{"up": [...], "down": [...]}}}}`).
In flat formats `<NAME>_UP` and `<NAME>_DN`/`<NAME>_DOWN` are merged into one programme `<NAME>`;
a lone suffixed set keeps its genes in the part the suffix names. `write_gmt` writes one-part sets as
`<NAME>` and two-part ones as `<NAME>_UP` + `<NAME>_DN`, so an export reads back unchanged.
Errors (a GMT line without genes, a missing field, an unknown source key, a gene in both parts, a set
with no gene in the data) raise a one-line `SignatureError`/`MatchError` naming the file, line or set.

## Sets

| set | category | direction | up | down | min_genes | score in | sources |
|---|---|---|---|---|---|---|---|
"""

README_CONFLICTS = """
## Direction conflicts (kept visible, never merged away)

The main one: the seed reports ER-stress/UPR genes **up** in Notch2-high (dormant) cells, while the
Kim 2012 / Gelman 2023 49-gene dormancy list has **ASNS, ATF3 and ATF4 down** in dormancy. The PERK/UPR
sets and DORMANCY_KIM2012 are separate sets; score them separately. Every gene that is up in dormancy
in one set and down in another is listed here and in the `caveats` of each affected set:

"""

README_INDEX = """
## The dormancy indices

`index/<name>.yaml` are **not** generated by this script: they are reviewed data, and their `evidence:`
blocks are written by `benchmarks/validate_indices.py --write` from the labelled validation datasets
(docs/evidence.md has the full table and the design, which was fixed before the evaluation).

- `quiescence` (default of `load_index()`): proliferation down plus G0 arrest, one weight per arm:
  DORMSIG_PROLIFERATION_CORE (-1, 1.0), WIECEK2023_G0_ARREST_UPREGULATED (+1, 0.5),
  WIECEK2023_G0_ARREST_DOWNREGULATED (-1, 0.5).
- `notch2_niche`: the seed's hypothesis: DORMSIG_HSC_MIMICRY_CORE (+1, 1.0), DORMSIG_PERK_ATF4_CHOP_CORE
  (+1, 1.0), DORMSIG_CD177_MARKER (+1, 1.0), DORMSIG_NOTCH2_DORMANCY (+1, 0.5), DORMSIG_NOTCH1_CONTRAST (-1, 0.5).

The components of a shipped index are disjoint (no gene in two components; tested). A user index is a
YAML file of the same shape (`name`, `version`, `description`, `citation`, `components: [{set, sign,
weight}]`, optional `evidence`) passed to `load_index(path)`; unknown set names raise `SignatureError`
listing the valid ones. The scoring module does the arithmetic.
"""

README_TAIL = """
## Licences of the derived content

Each set's `licence` field says which applies; `sources.yaml` repeats it per source.

- dormsig curation (set definitions, evidence text): MIT, like the package. Gene names are facts
  taken from the cited papers (seed abstract, Sosa 2015, Bragado 2013, Fluegen 2017, Gelman 2023 /
  Kim 2012, Arai 2004, Zhang 2003, Ding 2013).
- MSigDB Hallmark gene sets (HALLMARK_*, and Hallmark membership evidence): **CC BY 4.0**; cite
  Liberzon et al. Cell Syst 2015 (doi:10.1016/j.cels.2015.12.004) and Subramanian et al. PNAS 2005.
- Reactome (REACTOME_* and Reactome membership evidence): the Reactome licence page
  (https://reactome.org/pages/about/license-agreement/) puts annotation files such as
  `ReactomePathways.gmt` under **CC0** (CC BY 4.0 applies to its software, dumps and diagrams). The
  curation material itself has no licence statement; attribution is given anyway.
- Wiecek 2023 G0-arrest lists (WIECEK2023_*): taken from the QuieScore R package, **GPL-3.0**
  (published in Genome Biol 2023, a CC BY 4.0 article). Note for redistribution: a GPL-3 data file
  inside an MIT package; the lists are short factual gene lists, but keep the attribution and licence
  with them.
- Tirosh 2016 cell-cycle lists (TIROSH_*): as distributed with scanpy (BSD-3-Clause).

## Versions and differences from the curation

- Hallmark gene lists are MSigDB **v7.5.1** (as in the curation) with symbols updated to HGNC
  January 2024; against the MSigDB v7.0 copy in the project data, the only differences are symbol
  renames (H2AFX -> H2AX, WARS -> WARS1, SLC9A3R1 -> NHERF1, ...) and three v7.0 GenBank clone IDs
  (AC092881.1, AC027237.1, AC091021.1) standing for CNOT2, KIF23 and SS18 (tested).
- Reactome gene lists are a 2021-10 snapshot (release number not recorded).
- Names drop the curation's `_UP`/`_DOWN` suffixes; the curation's `_UP`/`_DOWN` pairs (Wiecek 2023,
  Kim 2012, Bragado 2013) are merged into two-part programmes; WIECEK2023_G0_ARREST_CORE (3 up /
  15 down) is added from QuieScore.
- The library is human (`species: human`); mouse data are scored through HCOP orthologs (the
  curation's rule: an ortholog with fewer than 3 HCOP sources is used only if it has the same name).
  The curation's mouse-only marker Ly6a (Sca-1) is therefore not shipped (caveat in
  DORMSIG_HSC_MIMICRY_EXTENDED). Translation agrees with the curation's mouse GMT for >99% of genes
  (tested; the rest are one-to-many HCOP choices).
- The aliases `eIF2a` (a protein name; `EIF2A` is another gene) and `LC3` (ambiguous) are kept only as
  notes in the evidence detail, not as aliases.
- Left out, as in the curation: P2HA1 and IGFR1 (not HGNC symbols), NRARP, SESN2, ULK2, GO-based sets,
  unverified HSC markers (PROM1, THY1, CD44, SPP1, SLAMF1, PROCR, ITGA6). The seed paper's own
  differential-expression lists and GEO accession were not found; see SIGNATURES.md section 4.

## Rebuilding

```
python scripts/build_signatures.py --curation-root /work/shared/data
```
The test suite checks that a rebuild reproduces every file byte for byte (when the curation
material is available), that every gene is a current official symbol (or a documented exception),
that every source key resolves, that no set has duplicates or a gene in both parts, that GMT export
round-trips, and that the curated aliases agree with NCBI Gene or are listed above.
"""

REQUIRED_FIELDS = (
    "name", "version", "description", "species", "category", "direction", "licence", "sources", "up", "down",
    "min_genes",
)


def write_readme(out: Path, summary, programmes, disagreements, exceptions) -> None:
    """signatures/README.md: the model, the set table, direction conflicts, exceptions, licences."""
    text = README_HEAD.format(version=LIBRARY_VERSION, required=", ".join(f"`{f}`" for f in REQUIRED_FIELDS))
    for name, category, direction, n_up, n_down, score_in, sources in summary:
        min_genes = default_min_genes([len(programmes[name]["parts"][p][1]) for p in programmes[name]["parts"]])
        text += f"| `{name}` | {category} | {direction} | {n_up} | {n_down} | {min_genes} | {score_in} | {sources} |\n"
    text += README_CONFLICTS
    calls: dict[str, dict[str, int]] = {}
    for name, prog in programmes.items():
        sign = DIRECTION_SIGN.get(prog["direction"], 0)
        for part, part_sign in (("up", 1), ("down", -1)):
            for gene in prog["parts"].get(part, ([], []))[1]:
                if sign:
                    calls.setdefault(gene, {})[name] = sign * part_sign
    text += "| gene | up in dormancy in | down in dormancy in |\n|---|---|---|\n"
    for gene in sorted(calls):
        ups = sorted(n for n, v in calls[gene].items() if v > 0)
        downs = sorted(n for n, v in calls[gene].items() if v < 0)
        if ups and downs:
            text += f"| {gene} | {', '.join(ups)} | {', '.join(downs)} |\n"
    text += README_INDEX
    text += "\n## Documented exceptions\n\n"
    text += "Symbols that are not NCBI Gene 2022-09-12 symbols (all other genes are current official symbols, tested):\n\n"
    for sym, why in exceptions.items():
        text += f"- `{sym}`: {why}\n"
    text += (
        "\nCurated aliases that NCBI Gene does not give for the same gene. They are kept to read literature "
        "names in signature text (`use_curated_aliases=True`) and are never applied to data genes:\n\n"
        "| alias | gene | why |\n|---|---|---|\n"
    )
    for alias, entry in disagreements.items():
        text += f"| `{alias}` | {entry['symbol']} | {entry['why']} |\n"
    text += README_TAIL
    (out / "README.md").write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curation-root", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "signatures")
    args = parser.parse_args(argv)
    build(args.curation_root, args.out)


if __name__ == "__main__":
    main()
