"""Human <-> mouse orthologs through HGNC HCOP (January 2024)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import pandas as pd

from dormsig.errors import GeneIdError
from dormsig.genes import tables
from dormsig.genes.resolve import check_species, resolve


@lru_cache(maxsize=2)
def _ortholog_map(source: str) -> dict[str, list[tuple[str, int]]]:
    """source symbol -> [(target symbol, n_support), ...], best first."""
    o = tables.orthologs()
    src, tgt = ("human_symbol", "mouse_symbol") if source == "human" else ("mouse_symbol", "human_symbol")
    out: dict[str, list[tuple[str, int]]] = {}
    for s, t, n in zip(o[src], o[tgt], o["n_support"], strict=True):
        out.setdefault(s, []).append((t, int(n)))
    for s, targets in out.items():
        # Most supporting sources first; on a tie the same-named gene (CD34 -> Cd34), then alphabetical.
        targets.sort(key=lambda tn, s=s: (-tn[1], tn[0].upper() != s.upper(), tn[0]))
    return out


def to_species(
    symbols: Sequence[str],
    source: str,
    target: str,
    *,
    use_curated_aliases: bool = False,
    min_support: int = 1,
) -> pd.DataFrame:
    """Translate gene symbols between human and mouse.

    Each query is first resolved in the source species (so previous symbols and unique
    aliases work both ways, e.g. the NCBI-2022 ``SLC9A3R1`` and the HGNC-2024 ``NHERF1`` give
    the same mouse gene), then looked up in HCOP. The ortholog with the most supporting
    sources is chosen; other orthologs are listed, never hidden.

    Parameters
    ----------
    symbols
        Source-species symbols (or Ensembl/Entrez IDs, resolved first).
    source, target
        ``"human"`` or ``"mouse"`` (different from each other).
    use_curated_aliases
        Passed to :func:`dormsig.genes.resolve` (signature text only).
    min_support
        Ignore orthologs with fewer HCOP supporting sources.

    Returns
    -------
    pandas.DataFrame
        ``query``, ``source_symbol`` (resolved), ``symbol`` (best ortholog or ``None``),
        ``n_support`` (its number of HCOP sources, 0 when none), ``how`` (``"one2one"``,
        ``"one2many"`` or ``"none"``) and ``candidates`` (all orthologs, best first, ``";"``-joined).
    """
    source, target = check_species(source), check_species(target)
    if source == target:
        raise GeneIdError(f"to_species: source and target are both {source!r}")
    if isinstance(symbols, str):
        symbols = [symbols]
    res = resolve(symbols, source, use_curated_aliases=use_curated_aliases)
    omap = _ortholog_map(source)
    rows = []
    for query, sym in zip(res["query"], res["symbol"], strict=True):
        key = sym if sym is not None else str(query).strip()
        hits = [tn for tn in omap.get(key, []) if tn[1] >= min_support]
        if not hits:
            rows.append((query, sym, None, 0, "none", ""))
            continue
        best, n = hits[0]
        how = "one2one" if len(hits) == 1 else "one2many"
        rows.append((query, sym, best, n, how, ";".join(t for t, _ in hits)))
    out = pd.DataFrame(rows, columns=["query", "source_symbol", "symbol", "n_support", "how", "candidates"])
    out["n_support"] = out["n_support"].astype(int)
    for col in ("source_symbol", "symbol"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out
