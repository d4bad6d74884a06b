"""Map gene identifiers (symbols, aliases, Ensembl, Entrez) to current official symbols.

Rules, in order, for a symbol query (exact case first, then case-insensitively):

1. an official symbol maps to itself, even when it is also another gene's alias;
2. a previous symbol (HGNC 2024 renames of NCBI 2022 symbols; previous symbols listed in the
   curation) maps to the current symbol;
3. an NCBI alias of exactly one gene maps to it (``how="alias"``); an alias of several genes
   is ``"ambiguous"``, left unresolved and listed in ``candidates``;
4. only with ``use_curated_aliases=True`` (reading signature text, never data): the seed and
   curated literature aliases of ``signature_curation/aliases.tsv`` resolve names that NCBI
   does not know or calls ambiguous (``how="curated_alias"``), e.g. ``p27`` -> ``CDKN1B``.

The case-insensitive pass accepts a match only when it is unique; otherwise the query is
ambiguous.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from dormsig.errors import GeneIdError
from dormsig.genes import tables
from dormsig.genes.detect import ID_TYPES, classify, strip_ensembl

SPECIES = ("human", "mouse")
HOWS = ("official", "previous", "alias", "ensembl", "entrez", "curated_alias", "unmapped", "ambiguous")


def check_species(species: str) -> str:
    """Validate a species name (``"human"`` or ``"mouse"``, case-insensitive)."""
    s = str(species).strip().lower()
    if s not in SPECIES:
        raise GeneIdError(f"species {species!r}: must be one of {', '.join(SPECIES)}")
    return s


def _multimap(keys: Iterable[str], values: Iterable[str], *, upper: bool = False) -> dict[str, tuple[str, ...]]:
    """key -> sorted tuple of distinct values."""
    out: dict[str, set[str]] = defaultdict(set)
    for k, v in zip(keys, values, strict=True):
        out[k.upper() if upper else k].add(v)
    return {k: tuple(sorted(v)) for k, v in out.items()}


@dataclass(frozen=True)
class _Index:
    """Lookup dictionaries for one species."""

    official: frozenset[str]
    official_ci: dict[str, tuple[str, ...]]
    previous: dict[str, tuple[str, ...]]
    previous_ci: dict[str, tuple[str, ...]]
    alias: dict[str, tuple[str, ...]]
    alias_ci: dict[str, tuple[str, ...]]
    curated: dict[str, tuple[str, ...]]
    curated_ci: dict[str, tuple[str, ...]]
    ensembl: dict[str, tuple[str, ...]]
    entrez: dict[str, tuple[str, ...]] = field(default_factory=dict)


@lru_cache(maxsize=2)
def _index(species: str) -> _Index:
    # Hundreds of thousands of small containers: the cyclic GC would rescan the heap many times.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_index(species)
    finally:
        if gc_was_enabled:
            gc.enable()


def _build_index(species: str) -> _Index:
    if species == "human":
        genes, aliases = tables.human_genes(), tables.human_aliases()
        ens = tables.human_ensembl()
        official = tables.official("human")
        with_entrez = genes[genes["entrez_id"] != ""]
        entrez = _multimap(with_entrez["entrez_id"], with_entrez["symbol"])
    else:
        genes, aliases = tables.mouse_genes(), tables.mouse_aliases()
        ens = genes[genes["ensembl_id"] != ""]
        official = tables.official("mouse")
        ment = tables.mouse_entrez()
        entrez = _multimap(ment["entrez_id"], ment["symbol"])
    by_kind = {k: aliases[aliases["kind"].isin(kinds)] for k, kinds in
               (("previous", ["previous"]), ("alias", ["alias"]), ("curated", ["seed_alias", "curated_alias"]))}
    return _Index(
        official=official,
        official_ci=_multimap(official, official, upper=True),
        previous=_multimap(by_kind["previous"]["alias"], by_kind["previous"]["symbol"]),
        previous_ci=_multimap(by_kind["previous"]["alias"], by_kind["previous"]["symbol"], upper=True),
        alias=_multimap(by_kind["alias"]["alias"], by_kind["alias"]["symbol"]),
        alias_ci=_multimap(by_kind["alias"]["alias"], by_kind["alias"]["symbol"], upper=True),
        curated=_multimap(by_kind["curated"]["alias"], by_kind["curated"]["symbol"]),
        curated_ci=_multimap(by_kind["curated"]["alias"], by_kind["curated"]["symbol"], upper=True),
        ensembl=_multimap(ens["ensembl_id"], ens["symbol"]),
        entrez=entrez,
    )


def official_symbols(species: str = "human") -> frozenset[str]:
    """Current official symbols: HGNC/NCBI for human; MGI for mouse (HCOP 2024, then Ensembl 100 GRCm38)."""
    return _index(check_species(species)).official


def _one(targets: tuple[str, ...], how: str) -> tuple[str | None, str, str]:
    if len(targets) == 1:
        return targets[0], how, ""
    return None, "ambiguous", ";".join(targets)


def _resolve_symbol(q: str, ix: _Index, curated: bool) -> tuple[str | None, str, str]:
    for key, off, prev, ali, cur in (
        (q, None, ix.previous, ix.alias, ix.curated),
        (q.upper(), ix.official_ci, ix.previous_ci, ix.alias_ci, ix.curated_ci),
    ):
        if off is None:
            if q in ix.official:
                return q, "official", ""
        elif key in off:
            return _one(off[key], "official")
        if key in prev:
            return _one(prev[key], "previous")
        if key in ali:
            targets = ali[key]
            if len(targets) == 1:
                return targets[0], "alias", ""
            # Curated aliases may break an NCBI tie, but only when reading signature text.
            if curated and key in cur and len(cur[key]) == 1:
                return cur[key][0], "curated_alias", ""
            return None, "ambiguous", ";".join(targets)
        if curated and key in cur:
            return _one(cur[key], "curated_alias")
    return None, "unmapped", ""


def resolve(
    names: Sequence[str],
    species: str = "human",
    *,
    id_type: str | None = None,
    use_curated_aliases: bool = False,
) -> pd.DataFrame:
    """Map identifiers to current official symbols.

    Parameters
    ----------
    names
        Gene symbols, aliases, Ensembl gene IDs (version suffix allowed) or Entrez IDs.
    species
        ``"human"`` or ``"mouse"``.
    id_type
        Force one type (``"symbol"``, ``"ensembl"``, ``"entrez"``) for every name; ``None``
        classifies each name on its own, so mixed lists work.
    use_curated_aliases
        Also use the seed/curated literature aliases (``p27``, ``Ki-67``, ``BiP``...). Only for
        reading signature text: never to rename the genes of a dataset.

    Returns
    -------
    pandas.DataFrame
        One row per query, in order (duplicates kept, ``RangeIndex``), columns ``query``,
        ``symbol`` (``None`` when unmapped or ambiguous), ``how`` (one of :data:`HOWS`),
        ``candidates`` (``";"``-joined symbols when ambiguous, else ``""``) and ``official``
        (``symbol`` is a current official symbol; ``False`` for the Ensembl clone-based names,
        e.g. ``RP11-34P13.3``, given to Ensembl IDs that have no official symbol).
    """
    species = check_species(species)
    if id_type is not None and id_type not in ID_TYPES:
        raise GeneIdError(f"id_type {id_type!r}: must be one of {', '.join(ID_TYPES)} or None")
    if isinstance(names, str):
        names = [names]
    ix = _index(species)
    queries = [str(n) for n in names]
    rows = []
    cache: dict[str, tuple[str | None, str, str]] = {}
    for q in queries:
        if q in cache:
            rows.append(cache[q])
            continue
        s = q.strip()
        kind = id_type or classify(s)
        if kind == "ensembl":
            targets = ix.ensembl.get(strip_ensembl(s))
            res = _one(targets, "ensembl") if targets else (None, "unmapped", "")
        elif kind == "entrez":
            targets = ix.entrez.get(s)
            res = _one(targets, "entrez") if targets else (None, "unmapped", "")
        else:
            res = _resolve_symbol(s, ix, use_curated_aliases) if s else (None, "unmapped", "")
        cache[q] = res
        rows.append(res)
    out = pd.DataFrame(rows, columns=["symbol", "how", "candidates"], dtype=object)
    out.insert(0, "query", pd.Series(queries, dtype=object))
    if out.empty:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in ("query", "symbol", "how", "candidates")})
    out["symbol"] = out["symbol"].astype(object).where(out["symbol"].notna(), None)
    out["official"] = [s is not None and s in ix.official for s in out["symbol"]]
    return out
