"""Enrichment of gene sets in a DE ranking.

Two tests, chosen by the number of a set's genes found in the ranking (``n_matched``):

- ``n_matched >= min_size`` (5) in a full table: GSEA preranked (gseapy ``prerank``) on the
  ranking statistic, with ``min_size`` passed explicitly so that gseapy's default of 15 does not
  silently drop small sets; permutations and seed are recorded; the FDR is gseapy's.
- ``1 <= n_matched < min_size`` (marker sets of 1-4 genes), and every set of a filtered table:
  the exact rank-position test (:mod:`dormsig.de.rank_test`: the Wilcoxon rank-sum null of the
  set's positions, computed exactly for any set size). Effect size ``2 mean(u) - 1`` in (-1, 1)
  with ``u = (midrank - 0.5) / N``, positive = higher in the test group. The FDR is
  Benjamini-Hochberg over these sets.

A signature with up and down genes is tested as two sets, ``<name>|up`` and ``<name>|down``; a
down-only one as ``<name>|down``. Signature genes are matched to the table's genes with
:func:`dormsig.signatures.match` (aliases, previous symbols, Ensembl/Entrez IDs, mouse
orthologs), after the table's own IDs were brought to current symbols (:func:`as_de_table`).

Every table, whether a file, a DataFrame or an AnnData's DE result, goes through
:func:`~dormsig.de.de_table.as_de_table`: a filtered table (only significant genes) is detected
there, and then GSEA, whose running sum needs the whole ranking, is replaced by the rank test
within the filtered genes (method ``rank_position_partial``) with a warning.

Circularity: a set containing a gene that defined the groups (e.g. the NOTCH1 and NOTCH2 marker
sets when the groups are NOTCH2-high vs NOTCH1-high) is enriched by construction. Such sets are
flagged (``circular``, ``circular_genes``) and named in a warning; the grouping genes come from
``grouping_genes=`` or from the DE provenance (``uns["dormsig"]["groups"]``, or the
``.provenance.json`` written beside a table by ``dormsig de``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig._stats import bh_adjust
from dormsig.de.de_table import as_de_table, grouping_genes_from_provenance, read_de_table
from dormsig.de.rank_test import rank_position_pvalues, rank_position_test
from dormsig.errors import ConfigError, InputError, MatchError
from dormsig.provenance import record

__all__ = ["COLUMNS", "enrich", "read_de_table", "rank_position_test"]

COLUMNS = ("set", "method", "size", "n_matched", "NES", "effect", "pvalue", "fdr", "direction", "circular",
           "circular_genes", "pvalue_excl_grouping", "leading_edge")
_EXCL = " (without grouping genes)"
#: A full table must contain at least this fraction of the library's genes.
MIN_LIBRARY_FRACTION = 0.10
#: A filtered table must have at least this fraction of recognisable gene IDs.
MIN_RECOGNISED_FRACTION = 0.10

log = logging.getLogger("dormsig")


# --------------------------------------------------------------------------- inputs
def _as_table(de: Any, stat: str | None, key: str, partial: bool | None, harmonise: bool,
              species: str | None) -> tuple[pd.DataFrame, list[str]]:
    """The DE table (normalised by :func:`as_de_table`) and the grouping genes its provenance names."""
    grouping: list[str] = []
    if isinstance(de, AnnData):
        uns = de.uns.get("dormsig", {})
        try:
            frame = uns[key]["table"]
        except (KeyError, TypeError):
            raise InputError(f"enrich: adata has no DE table in uns['dormsig'][{key!r}]; run dormsig.de.deseq") from None
        groups = uns.get("groups") or uns.get("source_groups")
        grouping = grouping_genes_from_provenance(groups, uns.get(key))
        table = as_de_table(frame, stat_column=stat, partial=partial, harmonise=harmonise, species=species,
                            source=f"adata.uns['dormsig'][{key!r}]")
    elif isinstance(de, str | os.PathLike):
        table = read_de_table(de, stat_column=stat, partial=partial, harmonise=harmonise, species=species)
    elif isinstance(de, pd.DataFrame):
        table = as_de_table(de, stat_column=stat, partial=partial, harmonise=harmonise, species=species)
    else:
        raise InputError(f"enrich: expected a DE table (DataFrame or path) or an AnnData, got {type(de).__name__}")
    return table, grouping or list(table.attrs.get("grouping_genes") or [])


@contextlib.contextmanager
def _quiet_match() -> Iterator[None]:
    """Silence match()'s per-set warnings: enrich reports every set (n_matched, not_tested) itself."""
    logger = logging.getLogger("dormsig.signatures")

    def drop(_record: logging.LogRecord) -> bool:
        return False

    logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.removeFilter(drop)


_PROBE = re.compile(r"^(\d+(_[a-z])?_at|ILMN_\d+|A_\d+_P\d+|\d{7,8})$", re.IGNORECASE)
_OTHER_SPECIES = re.compile(r"^(ENS[A-Z]{2,}G\d+|FBgn\d+|WBGene\d+|Y[A-P][LR]\d{3}[CW]|AT[1-5CM]G\d+|CG\d+)",
                            re.IGNORECASE)


def _diagnosis(ids: Sequence[str]) -> str:
    """The likely reason why a table's gene IDs do not match the library (one clause)."""
    values = [str(v) for v in ids if str(v).strip()]
    if not values:
        return "the gene column is empty"
    examples = ", ".join(values[:3])
    nums = pd.to_numeric(pd.Series(values), errors="coerce")
    if nums.notna().mean() > 0.5:
        if (nums.dropna() % 1 != 0).any():
            return f"its values are numbers ({examples}), not gene names: wrong gene column? name it with --gene-column"
        return f"its values are integers ({examples}) that are not human/mouse Entrez IDs: wrong gene column?"
    if sum(bool(_PROBE.match(v)) for v in values) > 0.5 * len(values):
        return f"its values look like microarray probe IDs ({examples}): map the probes to gene symbols first"
    if sum(v.upper().startswith("ENST") or v.upper().startswith("ENSMUST") for v in values) > 0.5 * len(values):
        return f"its values are transcript IDs ({examples}): summarise them to genes first"
    if sum(bool(_OTHER_SPECIES.match(v)) for v in values) > 0.5 * len(values):
        return f"its IDs are not human or mouse genes ({examples}): wrong species? dormsig supports human and mouse"
    return (f"few of its values ({examples}) are human or mouse gene symbols or Ensembl/Entrez IDs: wrong gene "
            "column, wrong species, or IDs that are not gene symbols?")


def _ids_and_column(table: pd.DataFrame) -> tuple[str, str, list[str]]:
    src = str(table.attrs.get("source") or "DE table")
    col = table.attrs.get("gene_column")
    col = "<row names>" if col in ("", None) else str(col)
    ids = (table["gene_in_table"] if "gene_in_table" in table else table["gene"]).astype(str).tolist()
    return src, col, ids


def _check_coverage(table: pd.DataFrame, n_lib: int, n_hit: int, partial: bool) -> None:
    """Error when the table's genes cannot be the library's (wrong gene column, species or ID type).

    A full table must hold at least 10% of the library's genes. A filtered one naturally holds
    fewer, so it fails only when, in addition, fewer than 10% of its own IDs are human or mouse genes.
    """
    if not n_lib or n_hit >= MIN_LIBRARY_FRACTION * n_lib:
        return
    src, col, ids = _ids_and_column(table)
    recognised = (table.attrs.get("genes") or {}).get("n_recognised")
    ids_are_genes = recognised is None or recognised >= MIN_RECOGNISED_FRACTION * len(table)
    if partial and ids_are_genes:
        if n_hit == 0:
            warnings.warn(f"enrich: no gene of the {n_lib} library genes is among the {len(table)} genes of the "
                          "filtered table; every set is 'not_tested'", UserWarning, stacklevel=3)
        return
    msg = f"only {n_hit} of {n_lib} library genes ({100 * n_hit / n_lib:.1f}%) are in gene column {col!r}; "
    if recognised is not None and recognised >= 0.5 * len(table):
        msg += f"its {len(table)} IDs are genes: a filtered table or a targeted panel? pass partial=True (--partial)"
    else:
        msg += _diagnosis(ids)
    raise InputError(msg, path=src)


def _exact_sets(library, ranking: pd.Index) -> tuple[dict[str, tuple[int, list[str]]], int, int]:
    """Exact (case-sensitive) matching, for IDs that are not human or mouse genes (custom species, test data)."""
    present = set(map(str, ranking))
    sets: dict[str, tuple[int, list[str]]] = {}
    lib_genes: set[str] = set()
    for name, sig in library.items():
        lib_genes.update(sig.genes)
        parts = [("up", sig.up), ("down", sig.down)] if sig.up and sig.down else [("", sig.up or sig.down)]
        for part, genes in parts:
            label = f"{name}|{part}" if part else (str(name) if sig.up else f"{name}|down")
            sets[label] = (len(genes), [g for g in genes if g in present])
    return sets, len(lib_genes), len(lib_genes & present)


def _sets(library, ranking: pd.Index, species: str | None) -> tuple[dict[str, tuple[int, list[str]]], int, int]:
    """``{set name: (size, matched ranking genes)}`` plus the library's distinct and matched gene counts."""
    from dormsig.signatures import match

    with _quiet_match():
        report = match(library, list(ranking), species=species, min_genes=1, on_empty="warn")
    sets: dict[str, tuple[int, list[str]]] = {}
    lib_genes: set[tuple[str, str]] = set()
    hit_genes: set[tuple[str, str]] = set()
    for name, sig in library.items():
        m = report[name]
        lib_genes.update((sig.species, g) for g in sig.genes)
        hit_genes.update((sig.species, g) for part in (m.up, m.down) for g in part.matched_genes)
        if sig.up and sig.down:
            sets[f"{name}|up"] = (len(sig.up), list(m.up.matched))
            sets[f"{name}|down"] = (len(sig.down), list(m.down.matched))
        elif sig.up:
            sets[str(name)] = (len(sig.up), list(m.up.matched))
        else:
            sets[f"{name}|down"] = (len(sig.down), list(m.down.matched))
    return sets, len(lib_genes), len(hit_genes)


def _current_symbols(genes: Sequence[str], species: str | None) -> list[str]:
    from dormsig.genes import resolve

    if not genes or species is None:
        return list(genes)
    res = resolve(list(genes), species)
    return [s if s is not None else q for q, s in zip(res["query"], res["symbol"], strict=True)]


def _gseapy_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gseapy")
    except PackageNotFoundError:  # pragma: no cover - a dependency
        return "unknown"


def _gsea(ranking: pd.Series, sets: dict[str, list[str]], min_size: int, max_size: int, permutations: int,
          seed: int, threads: int | None) -> dict[str, dict[str, Any]]:
    """GSEA preranked (gseapy) of ``sets``: per set NES, pvalue, fdr, direction, leading_edge.

    A permutation p-value is never reported below ``1 / (permutations + 1)`` (Phipson and Smyth
    2010): gseapy's 0 means "none of the permutations was as extreme", not p = 0. gseapy's log
    (e.g. its note on tied statistics, recorded in the provenance as ``ties``) goes to the debug log.
    """
    import gseapy

    rnk = pd.DataFrame({"gene": ranking.index, "stat": ranking.to_numpy()})
    with contextlib.redirect_stderr(io.StringIO()) as captured:  # gseapy logs to its own stderr handler
        res = gseapy.prerank(
            rnk=rnk, gene_sets=sets, min_size=min_size, max_size=max_size, permutation_num=permutations,
            seed=seed, threads=threads or 1, outdir=None, no_plot=True, verbose=False,
        ).res2d
    if captured.getvalue().strip():
        log.debug("gseapy: %s", " ".join(captured.getvalue().split()))
    floor = 1.0 / (permutations + 1)
    out = {}
    for _, r in res.iterrows():
        out[str(r["Term"])] = {
            "NES": float(r["NES"]), "pvalue": max(float(r["NOM p-val"]), floor),
            "fdr": min(1.0, max(float(r["FDR q-val"]), floor)), "direction": "up" if float(r["ES"]) >= 0 else "down",
            "leading_edge": str(r.get("Lead_genes", "")),
        }
    return out


# --------------------------------------------------------------------------- enrich
def enrich(
    de: Any,
    signatures: Any = None,
    *,
    stat: str | None = None,
    seed: int = 0,
    permutations: int = 1000,
    threads: int | None = None,
    min_size: int = 5,
    max_size: int = 2000,
    partial: bool | None = None,
    grouping_genes: Sequence[str] | None = None,
    harmonise: bool = True,
    species: str | None = None,
    key: str = "dormsig_de",
    key_added: str = "dormsig_enrich",
) -> pd.DataFrame:
    """Test gene sets for enrichment at the top or bottom of a DE ranking.

    Parameters
    ----------
    de
        A DE table (from :func:`dormsig.de.deseq`, :func:`read_de_table`, or any DataFrame with a
        gene column or gene index and a statistic), a path to a table, or an AnnData holding one in
        ``uns["dormsig"][key]["table"]``. Every form goes through :func:`as_de_table`.
    signatures
        Anything :func:`dormsig.signatures.as_library` accepts: ``None`` (the dormsig library),
        set names, a GMT/YAML/JSON file, a ``Library``, ``{name: genes}`` or
        ``{name: {"up": [...], "down": [...]}}``.
    stat
        Ranking column (higher = up in the test group); ``None``: detected (``stat``/Wald, ``t``,
        ``z``, ``score``; else ``sign(log2FC) * -log10(p)``; else the log fold change).
    seed, permutations, threads
        For gseapy's permutations (gene-set permutation as in GSEA preranked).
    min_size, max_size
        In a full table, sets with ``min_size <= n_matched <= max_size`` go to GSEA and smaller
        ones (>= 1 gene) to the rank-position test; in a filtered table every set with
        ``1 <= n_matched <= max_size`` gets the rank test. Larger sets and sets without genes in
        the ranking are reported with NaN statistics (method ``"not_tested"``), never dropped.
    partial
        Whether the table was filtered; ``None``: detected (:func:`dormsig.de.de_table.detect_partial`).
    grouping_genes
        Genes that defined the compared groups (e.g. ``["NOTCH2", "NOTCH1"]``); sets containing
        them are flagged as circular. ``None``: taken from the DE provenance when there is one.
    harmonise, species
        Bring the table's gene IDs to current symbols (species detected when ``None``).

    Returns
    -------
    pandas.DataFrame
        One row per set: set, method, size, n_matched, NES (GSEA), effect (rank test), pvalue,
        fdr, direction ("up"/"down" in the test group), circular (bool), circular_genes,
        leading_edge (";"-joined). ``attrs["provenance"]`` holds the parameters, the seed, the
        gseapy version, the table's source, layout and gene harmonisation, and the library; with
        an AnnData input the table and record are also stored in ``uns["dormsig"][key_added]``.

    Raises
    ------
    InputError
        The table has no gene or statistic column, or fewer than 10% of the library's genes are
        in a full table (or fewer than 10% of a filtered table's IDs are genes): the message
        names the likely cause (wrong gene column, wrong species, probe or transcript IDs).
    """
    from dormsig.signatures import as_library

    if min_size < 2:
        raise ConfigError(f"enrich: min_size must be >= 2 for GSEA, got {min_size}")
    table, recorded_grouping = _as_table(de, stat, key, partial, harmonise, species)
    ranking = pd.Series(table["stat"].to_numpy(dtype=np.float64), index=table.index)
    is_partial = bool(table.attrs.get("partial", False))
    data_species = (table.attrs.get("genes") or {}).get("species") or species
    library = as_library(signatures)
    if not len(library):
        raise InputError("enrich: no gene sets given")
    try:
        sets, n_lib, n_hit = _sets(library, ranking.index, data_species)
        matching = "dormsig.signatures.match"
    except MatchError:  # IDs of no species dormsig knows (custom organism, test data): exact names
        sets, n_lib, n_hit = _exact_sets(library, ranking.index)
        matching = "exact names"
    _check_coverage(table, n_lib, n_hit, is_partial)
    if is_partial:
        warnings.warn(
            f"enrich: the DE table looks filtered ({table.attrs.get('partial_reason')}; {ranking.size} genes); GSEA "
            "is not valid on a partial ranking, so every set gets the exact rank-position test within these genes "
            "(pass partial=False / --no-partial if the table is complete)",
            UserWarning,
            stacklevel=2,
        )

    grouping = list(grouping_genes) if grouping_genes is not None else recorded_grouping
    grouping_now = set(_current_symbols([str(g) for g in grouping], data_species)) | {str(g) for g in grouping}

    rows: dict[str, dict[str, Any]] = {}
    gsea_sets: dict[str, list[str]] = {}
    rank_sets: dict[str, list[str]] = {}
    for name, (size, matched) in sets.items():
        matched = list(dict.fromkeys(matched))
        circ = [g for g in matched if g in grouping_now]
        rows[name] = {"set": name, "method": "not_tested", "size": size, "n_matched": len(matched), "NES": np.nan,
                      "effect": np.nan, "pvalue": np.nan, "fdr": np.nan, "direction": "", "circular": bool(circ),
                      "circular_genes": ";".join(circ), "pvalue_excl_grouping": np.nan, "leading_edge": ""}
        if not matched or len(matched) > max_size:
            continue
        if len(matched) >= min_size and not is_partial:
            gsea_sets[name] = matched
            rows[name]["method"] = "gsea_prerank"
        else:
            rank_sets[name] = matched

    method = "rank_position_partial" if is_partial else "rank_position"
    approx = []
    for name, (effect, p, lead, exact) in zip(rank_sets, rank_position_pvalues(ranking, rank_sets.values()),
                                               strict=True):
        rows[name].update(method=method if exact else f"{method}_normal_approx", effect=effect, pvalue=p,
                          direction="up" if effect >= 0 else "down", leading_edge=";".join(lead))
        if not exact:
            approx.append(name)
    if approx:
        warnings.warn(f"enrich: {len(approx)} set(s) too large for the exact rank test in {ranking.size} genes got its "
                      f"normal approximation (method '..._normal_approx'): {', '.join(approx[:5])}"
                      + (" ..." if len(approx) > 5 else ""), UserWarning, stacklevel=2)

    # Circular sets are also tested without the grouping genes, so that the flag can be acted on.
    excl = {name: [g for g in genes if g not in grouping_now] for name, genes in {**gsea_sets, **rank_sets}.items()
            if rows[name]["circular"]}
    excl_rank = {n: g for n, g in excl.items() if g and (n in rank_sets or len(g) < min_size)}
    excl_gsea = {f"{n}{_EXCL}": g for n, g in excl.items() if g and n not in excl_rank}
    for name, (_, p, _, _) in zip(excl_rank, rank_position_pvalues(ranking, excl_rank.values()), strict=True):
        rows[name]["pvalue_excl_grouping"] = p

    if gsea_sets:
        for name, r in _gsea(ranking, gsea_sets, min_size, max_size, permutations, seed, threads).items():
            rows[name].update(r)
    if excl_gsea:  # a separate run: gseapy's FDR depends on the sets run together
        for name, r in _gsea(ranking, excl_gsea, min_size, max_size, permutations, seed, threads).items():
            rows[name.removesuffix(_EXCL)]["pvalue_excl_grouping"] = r["pvalue"]
    if gsea_sets:
        for name in gsea_sets:  # a set gseapy skipped (should not happen with explicit min_size)
            if np.isnan(rows[name]["pvalue"]):
                rows[name]["method"] = "not_tested"

    out = pd.DataFrame(list(rows.values()), columns=list(COLUMNS))
    rank_rows = out["method"].str.startswith("rank_position").to_numpy()  # exact or approximated
    out.loc[rank_rows, "fdr"] = bh_adjust(out.loc[rank_rows, "pvalue"].to_numpy())
    out = out.sort_values(["pvalue", "set"], na_position="last").reset_index(drop=True)

    circular = out.loc[out["circular"], "set"].tolist()
    if circular:
        shown = ", ".join(circular[:6]) + (f" and {len(circular) - 6} more" if len(circular) > 6 else "")
        warnings.warn(
            f"enrich: {len(circular)} set(s) contain the gene(s) that defined the groups "
            f"({', '.join(sorted(grouping_now & set(ranking.index)))}), so their enrichment is circular (column "
            f"'circular'): {shown}",
            UserWarning,
            stacklevel=2,
        )

    rec = record(
        "enrich",
        method="gseapy prerank (n_matched >= min_size, full tables) + exact rank-position test (smaller sets, "
               "filtered tables)",
        params={"stat": stat, "metric": table.attrs.get("metric"), "seed": seed, "permutations": permutations,
                "threads": threads, "min_size": min_size, "max_size": max_size, "partial": partial,
                "harmonise": harmonise, "species": species, "grouping_genes": grouping_genes},
        table={k: table.attrs.get(k) for k in ("source", "layout", "gene_column", "metric", "n_genes", "n_dropped",
                                               "n_duplicates", "n_infinite", "genes")},
        n_genes_ranked=int(ranking.size),
        partial_universe=is_partial,
        partial_reason=table.attrs.get("partial_reason", ""),
        library={"name": library.name, "version": library.version, "path": library.path},
        library_genes=n_lib,
        matching=matching,
        library_genes_in_table=n_hit,
        n_sets=len(sets),
        n_gsea=len(gsea_sets),
        n_rank_test=int(rank_rows.sum()),
        rank_test="exact Wilcoxon rank-sum null (Gaussian binomial, integer arithmetic); conservative on ties",
        rank_test_approximated=approx,
        grouping_genes=sorted(grouping_now) if grouping else [],
        circular_sets=circular,
        gseapy_version=_gseapy_version(),
        ties=float(ranking.duplicated(keep=False).mean()),
    )
    out.attrs["provenance"] = rec
    if isinstance(de, AnnData):
        from dormsig.provenance import attach

        attach(de, key_added, rec)
        de.uns["dormsig"][key_added]["table"] = out
    return out
