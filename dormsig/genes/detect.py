"""Detect the identifier type (Ensembl, Entrez, symbol) and the species of a list of gene IDs."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence

from dormsig.errors import GeneIdError

#: Ensembl gene IDs, with an optional version (``.16``) and GENCODE ``_PAR_Y`` suffix.
ENSEMBL_RE = re.compile(r"^(ENS(?:MUS)?G\d{11})(?:\.\d+)?(?:_PAR_Y)?$")
ENTREZ_RE = re.compile(r"^\d+$")
ID_TYPES = ("ensembl", "entrez", "symbol")

# Below these fractions a list is not called a species at all.
_MIN_MATCH = 0.05
_MIN_MARGIN = 0.05


def classify(name: str) -> str:
    """The identifier type of one ID: ``"ensembl"``, ``"entrez"`` or ``"symbol"``."""
    name = str(name).strip()
    if ENSEMBL_RE.match(name):
        return "ensembl"
    if ENTREZ_RE.match(name):
        return "entrez"
    return "symbol"


def strip_ensembl(name: str) -> str:
    """``ENSG00000141510.16`` -> ``ENSG00000141510`` (also drops ``_PAR_Y``)."""
    m = ENSEMBL_RE.match(str(name).strip())
    return m.group(1) if m else str(name).strip()


def id_type_counts(ids: Iterable[str]) -> dict[str, int]:
    """How many IDs look like each identifier type."""
    counts = Counter(classify(i) for i in ids)
    return {t: int(counts.get(t, 0)) for t in ID_TYPES}


def detect_id_type(ids: Sequence[str]) -> str:
    """The identifier type of most IDs: ``"ensembl"``, ``"entrez"`` or ``"symbol"``.

    Every ID is classified (cheap even for 60,000 IDs). A mixed list gets the majority type and
    a ``UserWarning`` giving the counts; :func:`dormsig.genes.resolve` with ``id_type=None``
    still classifies each ID on its own, so minority IDs are not lost.

    Raises
    ------
    GeneIdError
        When the list is empty.
    """
    ids = [str(i) for i in ids]
    if not ids:
        raise GeneIdError("gene IDs: empty list, cannot detect the identifier type")
    counts = id_type_counts(ids)
    best = max(ID_TYPES, key=lambda t: (counts[t], -ID_TYPES.index(t)))
    if counts[best] < len(ids):
        warnings.warn(f"gene IDs of mixed types {counts}; using the majority type {best!r}", UserWarning, stacklevel=2)
    return best


def _looks_mouse_case(name: str) -> bool:
    # MGI symbols carry lower-case letters ("Cd34", "mt-Co1"); HGNC only in "orf" (C1orf112).
    return any(c.islower() for c in name.replace("orf", ""))


def species_evidence(ids: Sequence[str]) -> dict:
    """The numbers :func:`detect_species` decides on (also recorded in provenance)."""
    from dormsig.genes import tables  # the tables load on first use only

    ids = [str(i).strip() for i in ids]
    kinds = [classify(i) for i in ids]
    ev: dict = {"n": len(ids), "id_type_counts": dict(Counter(kinds))}
    ens = [i for i, k in zip(ids, kinds, strict=True) if k == "ensembl"]
    ev["ensembl_human"] = sum(i.startswith("ENSG") for i in ens)
    ev["ensembl_mouse"] = sum(i.startswith("ENSMUSG") for i in ens)
    entrez = [i for i, k in zip(ids, kinds, strict=True) if k == "entrez"]
    if entrez:
        human_ids = set(tables.human_genes()["entrez_id"])
        mouse_ids = set(tables.mouse_entrez()["entrez_id"])
        ev["entrez_human_fraction"] = sum(i in human_ids for i in entrez) / len(entrez)
        ev["entrez_mouse_fraction"] = sum(i in mouse_ids for i in entrez) / len(entrez)
    syms = [i for i, k in zip(ids, kinds, strict=True) if k == "symbol"]
    if syms:
        human, mouse = tables.official("human"), tables.official("mouse")
        ev["symbol_human_fraction"] = sum(s in human for s in syms) / len(syms)
        ev["symbol_mouse_fraction"] = sum(s in mouse for s in syms) / len(syms)
        lettered = [s for s in syms if any(c.isalpha() for c in s)]
        ev["symbol_mouse_case_fraction"] = (
            sum(_looks_mouse_case(s) for s in lettered) / len(lettered) if lettered else 0.0
        )
    ev["n_symbol"], ev["n_ensembl"], ev["n_entrez"] = len(syms), len(ens), len(entrez)
    return ev


def detect_species(ids: Sequence[str]) -> str:
    """``"human"`` or ``"mouse"``, from Ensembl prefixes or from symbols.

    Ensembl IDs decide by prefix (``ENSG`` vs ``ENSMUSG``). Symbols decide by the fraction found
    among current human (HGNC/NCBI) and mouse (MGI, via HCOP) official symbols; when both
    fractions are close the case pattern decides (MGI symbols are title-case, ``Cd34``). Entrez
    IDs decide by the fractions found among human (NCBI) and mouse (Ensembl 100) Entrez IDs.

    Raises
    ------
    GeneIdError
        When the evidence does not decide (pass ``species=`` explicitly).
    """
    ids = [str(i) for i in ids]
    if not ids:
        raise GeneIdError("gene IDs: empty list, cannot detect the species")
    ev = species_evidence(ids)
    majority = max(("ensembl", "entrez", "symbol"), key=lambda t: ev[f"n_{t}"])
    if majority == "ensembl":
        if ev["ensembl_human"] != ev["ensembl_mouse"]:
            return "human" if ev["ensembl_human"] > ev["ensembl_mouse"] else "mouse"
    elif majority == "entrez":
        # Human and mouse Entrez IDs are disjoint numbers, but a list may also hold retired IDs.
        h, m = ev["entrez_human_fraction"], ev["entrez_mouse_fraction"]
        if max(h, m) >= 0.5 and abs(h - m) >= 0.2:
            return "human" if h > m else "mouse"
    else:
        h, m = ev["symbol_human_fraction"], ev["symbol_mouse_fraction"]
        if max(h, m) >= _MIN_MATCH and abs(h - m) >= _MIN_MARGIN:
            return "human" if h > m else "mouse"
        if max(h, m) >= _MIN_MATCH:
            mc = ev["symbol_mouse_case_fraction"]
            if mc >= 0.6:
                return "mouse"
            if mc <= 0.1:
                return "human"
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in ev.items() if k != "id_type_counts"}
    raise GeneIdError(f"gene IDs: cannot tell human from mouse ({shown}); pass species= explicitly")
