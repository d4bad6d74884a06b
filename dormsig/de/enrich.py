"""Enrichment of gene sets in a DE ranking.

Two tests, chosen by the number of a set's genes found in the ranking (``n_matched``):

- ``n_matched >= min_size`` (5): GSEA preranked (gseapy ``prerank``) on the Wald statistic,
  with ``min_size`` passed explicitly so that gseapy's default of 15 does not silently drop
  small sets; permutations and seed are recorded; the FDR is gseapy's.
- ``1 <= n_matched < min_size`` (marker sets of 1-3 genes): a rank-position test. Each gene's
  normalised position in the ranking, ``u = (rank - 0.5) / N`` with rank 1 = lowest statistic,
  is uniform under the null; the p-value of the mean position is exact for one gene
  (``p = 2 min(u, 1 - u)``) and uses the Irwin-Hall distribution (sum of k uniforms, i.e.
  sampling with replacement, accurate for k << N) for more. Effect size = ``2 mean(u) - 1`` in
  (-1, 1), positive = higher in the test group. The FDR is Benjamini-Hochberg over these sets.

A set with up and down genes (a ``Signature``) is tested as two sets, ``<name>|up`` and
``<name>|down``.

Partial rankings (a DE table filtered to significant genes, see :func:`read_de_table`): the
middle of the ranking is missing, so GSEA's running sum is meaningless; every set is tested with
the rank-position test within the filtered list (method ``rank_position_partial``), and a warning
says that the universe is partial.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig._stats import bh_adjust
from dormsig.errors import ConfigError, FormatError, InputError, MissingInputError
from dormsig.provenance import record

COLUMNS = ("set", "method", "size", "n_matched", "NES", "effect", "pvalue", "fdr", "direction", "leading_edge")

_GENE_COLUMNS = ("gene", "genes", "symbol", "gene_symbol", "genesymbol", "gene_name", "names", "name", "id",
                 "gene_id", "feature", "")
_STAT_COLUMNS = ("stat", "wald", "t", "z", "score", "scores", "statistic")
_LFC_COLUMNS = ("log2foldchange", "logfc", "log2fc", "avg_log2fc", "lfc", "log2_fold_change", "logfoldchanges")
_P_COLUMNS = ("pvalue", "p.value", "pval", "pvals", "p_val", "p")
_PADJ_COLUMNS = ("padj", "fdr", "qvalue", "adj.p.val", "pvals_adj", "p_val_adj", "q")


def _find(columns: Iterable[str], names: tuple[str, ...]) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def read_de_table(
    path: str | os.PathLike,
    *,
    gene_column: str | None = None,
    stat_column: str | None = None,
    partial: bool | None = None,
    stat: str | None = None,
) -> pd.DataFrame:
    """Read a DE table produced elsewhere (DESeq2, edgeR, limma, scanpy, Seurat) for :func:`enrich`.

    Parameters
    ----------
    path
        CSV/TSV (optionally gzipped) with a gene column and a statistic or log fold-change column.
    gene_column, stat_column
        Override the detected columns (``stat`` is an alias of ``stat_column``). Detection: gene = gene/symbol/names/... or the first column;
        statistic = stat/Wald/t/z/score; else ``sign(log2FC) * -log10(pvalue)`` when both are
        present; else the log2 fold change.
    partial
        Whether the table was filtered (e.g. to significant genes only). ``None`` guesses: True when
        every adjusted p-value is <= 0.25 or the table has fewer than 2,000 genes.

    Returns
    -------
    pandas.DataFrame
        Indexed by gene with columns gene, stat (+ log2FoldChange, pvalue, padj when present);
        ``df.attrs`` records the source columns, the ranking metric and ``partial``.
    """
    path = Path(path)
    stat_column = stat_column or stat
    if not path.exists():
        raise MissingInputError("DE table not found", path=path)
    name = path.name.lower().removesuffix(".gz")
    sep = "\t" if name.endswith((".tsv", ".txt", ".tab")) else ","
    try:
        raw = pd.read_csv(path, sep=sep)
    except Exception as exc:
        raise FormatError(f"cannot read the DE table ({type(exc).__name__}: {exc})", path=path) from None
    if raw.shape[1] < 2:
        raise FormatError(f"DE table has {raw.shape[1]} column(s); expected a gene column and a statistic", path=path)
    gcol = gene_column or _find(raw.columns, _GENE_COLUMNS) or raw.columns[0]
    if gcol not in raw.columns:
        raise FormatError(f"gene column {gcol!r} not found (columns: {list(raw.columns)})", path=path)
    lfc = _find(raw.columns, _LFC_COLUMNS)
    pcol = _find(raw.columns, _P_COLUMNS)
    padj = _find(raw.columns, _PADJ_COLUMNS)
    scol = stat_column or _find(raw.columns, _STAT_COLUMNS)
    out = pd.DataFrame({"gene": raw[gcol].astype(str).str.strip()})
    if scol is not None:
        if scol not in raw.columns:
            raise FormatError(f"statistic column {scol!r} not found (columns: {list(raw.columns)})", path=path)
        out["stat"] = pd.to_numeric(raw[scol], errors="coerce")
        metric = scol
    elif lfc is not None and pcol is not None:
        p = pd.to_numeric(raw[pcol], errors="coerce").clip(lower=1e-300)
        out["stat"] = np.sign(pd.to_numeric(raw[lfc], errors="coerce")) * -np.log10(p)
        metric = f"sign({lfc}) * -log10({pcol})"
    elif lfc is not None:
        out["stat"] = pd.to_numeric(raw[lfc], errors="coerce")
        metric = lfc
    else:
        raise FormatError(
            f"no statistic or log fold-change column found (columns: {list(raw.columns)}); pass stat_column=",
            path=path,
        )
    for src, dst in ((lfc, "log2FoldChange"), (pcol, "pvalue"), (padj, "padj")):
        if src is not None and dst not in out:
            out[dst] = pd.to_numeric(raw[src], errors="coerce").to_numpy()
    out = out[out["stat"].notna() & (out["gene"] != "")]
    if out.empty:
        raise FormatError("DE table has no gene with a numeric statistic", path=path)
    # Duplicated genes (e.g. several probes): keep the strongest statistic.
    out = out.loc[out["stat"].abs().sort_values(ascending=False).index].drop_duplicates("gene")
    out = out.set_index(out["gene"].to_numpy()).sort_values("stat", ascending=False)
    if partial is None:
        partial = bool(("padj" in out and out["padj"].notna().any() and out["padj"].max() <= 0.25) or len(out) < 2000)
    out.attrs.update({"source": str(path), "gene_column": str(gcol), "metric": metric, "partial": bool(partial)})
    return out


def _as_ranking(de: Any, stat: str | None, key: str) -> tuple[pd.Series, bool, str]:
    if isinstance(de, AnnData):
        try:
            de = de.uns["dormsig"][key]["table"]
        except KeyError:
            raise InputError(f"enrich: adata has no DE table in uns['dormsig'][{key!r}]; run dormsig.de.deseq") from None
    if isinstance(de, str | os.PathLike):
        de = read_de_table(de)
    if not isinstance(de, pd.DataFrame):
        raise InputError(f"enrich: expected a DE DataFrame, an AnnData or a path, got {type(de).__name__}")
    if stat is None:
        stat = "stat" if "stat" in de.columns else "log2FoldChange"
    if stat not in de.columns:
        raise InputError(f"enrich: DE table has no column {stat!r} (columns: {list(de.columns)})")
    genes = de["gene"].astype(str) if "gene" in de.columns else de.index.astype(str).to_series(index=de.index)
    rnk = pd.Series(pd.to_numeric(de[stat], errors="coerce").to_numpy(), index=genes.to_numpy())
    rnk = rnk[rnk.notna()]
    rnk = rnk.loc[rnk.abs().sort_values(ascending=False).index]
    rnk = rnk[~rnk.index.duplicated()].sort_values(ascending=False)
    if rnk.empty:
        raise InputError(f"enrich: no gene has a finite {stat!r}")
    return rnk, bool(de.attrs.get("partial", False)), str(de.attrs.get("metric", stat))


def _as_sets(signatures: Any) -> dict[str, list[str]]:
    """Flatten signatures into ``{name: genes}``; up/down signatures give ``name|up``/``name|down``."""
    if signatures is None:
        from dormsig.signatures import load_library

        signatures = load_library()
    if isinstance(signatures, list | tuple) and signatures and all(isinstance(s, str) for s in signatures):
        # names of library sets (CLI --signatures A,B)
        from dormsig.signatures import load_library

        lib = load_library()
        missing = [s for s in signatures if s not in lib]
        if missing:
            raise InputError(f"enrich: unknown signature name(s) {missing}; see 'dormsig signatures list'")
        signatures = {s: lib[s] for s in signatures}
    if isinstance(signatures, str | os.PathLike):
        from dormsig.signatures import read_signatures

        path = Path(signatures)
        if not path.exists():
            raise MissingInputError("signature file not found", path=path)
        signatures = read_signatures(path)
    if not isinstance(signatures, Mapping):
        raise InputError(f"enrich: signatures must be a mapping {{name: genes}} or a path, not {type(signatures).__name__}")
    sets: dict[str, list[str]] = {}
    for name, sig in signatures.items():
        up = getattr(sig, "up", None)
        if up is not None:
            down = tuple(getattr(sig, "down", ()) or ())
            if up and down:
                sets[f"{name}|up"] = list(up)
                sets[f"{name}|down"] = list(down)
            else:
                sets[str(name)] = list(up or down)
        elif isinstance(sig, str):
            sets[str(name)] = [sig]
        else:
            sets[str(name)] = [str(g) for g in sig]
    return sets


def _irwin_hall_cdf(s: float, k: int) -> float:
    """P(U_1 + ... + U_k <= s) for iid uniform(0, 1)."""
    if s <= 0:
        return 0.0
    if s >= k:
        return 1.0
    return sum((-1) ** j * math.comb(k, j) * (s - j) ** k for j in range(int(math.floor(s)) + 1)) / math.factorial(k)


def rank_position_test(ranking: pd.Series, genes: Iterable[str]) -> tuple[float, float, list[str]]:
    """Two-sided rank-position test of a few genes in a ranking (see module notes).

    Returns ``(effect, pvalue, genes_in_direction)``; effect in (-1, 1), positive = top of the ranking.
    """
    values = ranking.to_numpy(dtype=np.float64)
    n = values.size
    order = pd.Series(values, index=ranking.index).rank(method="average", ascending=True)
    genes = [g for g in genes if g in order.index]
    k = len(genes)
    u = (order.loc[genes].to_numpy() - 0.5) / n
    s = float(u.sum())
    cdf = _irwin_hall_cdf(s, k)
    p = min(1.0, 2 * min(cdf, 1 - cdf))
    effect = 2 * float(u.mean()) - 1
    sign = 1 if effect >= 0 else -1
    lead = [g for g in genes if np.sign(ranking[g]) == sign]
    lead.sort(key=lambda g: -sign * ranking[g])
    return effect, p, lead


def enrich(
    de: Any,
    signatures: Any = None,
    *,
    stat: str | None = "stat",
    seed: int = 0,
    permutations: int = 1000,
    threads: int | None = None,
    min_size: int = 5,
    max_size: int = 2000,
    key: str = "dormsig_de",
    key_added: str = "dormsig_enrich",
) -> pd.DataFrame:
    """Test gene sets for enrichment at the top or bottom of a DE ranking.

    Parameters
    ----------
    de
        A DE table (from :func:`dormsig.de.deseq`, :func:`read_de_table` or any DataFrame with a
        ``gene`` column or gene index and ``stat``), an AnnData holding one in
        ``uns["dormsig"][key]["table"]``, or a path to a table.
    signatures
        ``None``: the dormsig library (:func:`dormsig.signatures.load_library`); a mapping
        ``{name: genes}`` or ``{name: Signature}``; or a GMT/signature file.
    stat
        Ranking column (Wald statistic by default; higher = up in the test group); ``None``: ``stat``
        when present, else ``log2FoldChange``.
    seed, permutations, threads
        For gseapy's permutations (gene-set permutation as in GSEA preranked).
    min_size, max_size
        Sets with ``min_size <= n_matched <= max_size`` go to GSEA; smaller ones (>= 1 gene) to the
        rank-position test; larger ones and sets without genes in the ranking are reported with
        NaN statistics (method ``"not_tested"``), never dropped.

    Returns
    -------
    pandas.DataFrame
        One row per set: set, method, size, n_matched, NES (GSEA), effect (rank test), pvalue, fdr,
        direction ("up"/"down" in the test group), leading_edge (";"-joined). ``attrs["provenance"]``
        holds the parameters, the seed and the gseapy version; with an AnnData input the table and
        record are also stored in ``uns["dormsig"][key_added]``.
    """
    ranking, partial, metric = _as_ranking(de, stat, key)
    sets = _as_sets(signatures)
    if not sets:
        raise InputError("enrich: no gene sets given")
    if min_size < 2:
        raise ConfigError(f"enrich: min_size must be >= 2 for GSEA, got {min_size}")
    if partial:
        warnings.warn(
            f"enrich: the DE table is partial ({ranking.size} genes, filtered); GSEA is not valid on a partial "
            "ranking, so all sets use the rank-position test within the filtered genes",
            UserWarning,
            stacklevel=2,
        )
    rows: dict[str, dict[str, Any]] = {}
    gsea_sets: dict[str, list[str]] = {}
    for name, genes in sets.items():
        uniq = list(dict.fromkeys(genes))
        matched = [g for g in uniq if g in ranking.index]
        row = {"set": name, "method": "not_tested", "size": len(uniq), "n_matched": len(matched), "NES": np.nan,
               "effect": np.nan, "pvalue": np.nan, "fdr": np.nan, "direction": "", "leading_edge": ""}
        rows[name] = row
        if not matched or len(matched) > max_size:
            continue
        if len(matched) >= min_size and not partial:
            gsea_sets[name] = matched
            row["method"] = "gsea_prerank"
        else:
            effect, p, lead = rank_position_test(ranking, matched)
            row.update(method="rank_position_partial" if partial else "rank_position", effect=effect, pvalue=p,
                       direction="up" if effect >= 0 else "down", leading_edge=";".join(lead))

    if gsea_sets:
        import gseapy

        rnk = pd.DataFrame({"gene": ranking.index, "stat": ranking.to_numpy()})
        res = gseapy.prerank(
            rnk=rnk, gene_sets=gsea_sets, min_size=min_size, max_size=max_size, permutation_num=permutations,
            seed=seed, threads=threads or 1, outdir=None, no_plot=True, verbose=False,
        ).res2d
        for _, r in res.iterrows():
            row = rows[str(r["Term"])]
            nes = float(r["NES"])
            row.update(NES=nes, pvalue=float(r["NOM p-val"]), fdr=float(r["FDR q-val"]),
                       direction="up" if float(r["ES"]) >= 0 else "down",
                       leading_edge=str(r.get("Lead_genes", "")))
        for name in gsea_sets:  # a set gseapy skipped (should not happen with explicit min_size)
            if np.isnan(rows[name]["pvalue"]):
                rows[name]["method"] = "not_tested"

    table = pd.DataFrame(list(rows.values()), columns=list(COLUMNS))
    rank_rows = table["method"].str.startswith("rank_position").to_numpy()
    table.loc[rank_rows, "fdr"] = bh_adjust(table.loc[rank_rows, "pvalue"].to_numpy())
    table = table.sort_values(["pvalue", "set"], na_position="last").reset_index(drop=True)

    import gseapy

    rec = record(
        "enrich",
        method="gseapy prerank (n_matched >= min_size) + rank-position test (smaller sets)",
        params={"stat": stat, "metric": metric, "seed": seed, "permutations": permutations, "threads": threads,
                "min_size": min_size, "max_size": max_size},
        n_genes_ranked=int(ranking.size),
        partial_universe=partial,
        n_sets=len(sets),
        n_gsea=len(gsea_sets),
        n_rank_test=int(rank_rows.sum()),
        gseapy_version=getattr(gseapy, "__version__", "unknown"),
    )
    table.attrs["provenance"] = rec
    if isinstance(de, AnnData):
        from dormsig.provenance import attach

        attach(de, key_added, rec)
        de.uns["dormsig"][key_added]["table"] = table
    return table
