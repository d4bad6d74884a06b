"""DE tables from anywhere (DESeq2, edgeR, limma, scanpy, Seurat, dormsig) made ready for enrichment.

:func:`read_de_table` parses a file whatever its layout: a header naming every column, R's
``write.table`` layout (gene names as row names, the header one field short: limma
``topTable``, ``write.table(res)`` of DESeq2, space-, tab- or comma-separated) and R's
``write.csv`` (an unnamed first column of row names or of row numbers).

:func:`as_de_table` is where every table enters enrichment, from a file or as a DataFrame: it
picks the gene column (the candidate whose values are most often human or mouse gene IDs; row
numbers are never genes), picks the ranking statistic, brings gene symbols to current ones as
:func:`dormsig.io.read` does (``H2AFX`` -> ``H2AX``; Ensembl and Entrez IDs -> symbols), keeps the
strongest row of duplicated genes, and decides whether the table was filtered (see
:func:`detect_partial`).
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dormsig.errors import FormatError, GeneIdError, InputError, MissingInputError

GENE_COLUMNS = ("gene", "genes", "symbol", "gene_symbol", "genesymbol", "gene.symbol", "gene_name", "genename",
                "hgnc_symbol", "mgi_symbol", "external_gene_name", "names", "name", "id", "gene_id", "geneid",
                "ensembl", "ensembl_gene_id", "entrez", "entrezid", "entrez_id", "feature", "features", "")
STAT_COLUMNS = ("stat", "wald", "wald_stat", "t", "t_stat", "tstat", "z", "zscore", "z_score", "score", "scores",
                "statistic")
LFC_COLUMNS = ("log2foldchange", "logfc", "log2fc", "avg_log2fc", "avg_logfc", "lfc", "log2_fold_change",
               "logfoldchanges", "log2foldchange_shrunk")
P_COLUMNS = ("pvalue", "p.value", "pval", "pvals", "p_val", "p_value", "p-value", "p")
PADJ_COLUMNS = ("padj", "fdr", "qvalue", "q.value", "q_value", "qval", "adj.p.val", "pvals_adj", "p_val_adj",
                "p.adjust", "adj_pval", "fdr_bh", "q")
#: Below this many genes a table is treated as filtered (GSEA's running sum needs the whole ranking).
MIN_FULL_GENES = 500
#: A full table has adjusted p-values (and p-values) reaching up towards 1.
PARTIAL_MAX_P = 0.25
_N_SCORE = 1000


def _key(name: Any) -> str:
    text = str(name).strip().strip('"').lower()
    return "" if text.startswith("unnamed:") else text


def _find(columns: Iterable[Any], names: Sequence[str]) -> Any | None:
    lower = {}
    for c in columns:
        lower.setdefault(_key(c), c)
    for n in names:
        if n in lower:
            return lower[n]
    return None


# --------------------------------------------------------------------------- reading files
def _fields(line: str, sep: str) -> list[str]:
    if sep == r"\s+":
        return re.split(sep, line.strip())
    return next(csv.reader([line], delimiter=sep))


def _read_raw(path: Path) -> tuple[pd.DataFrame, str]:
    """All columns as text, with R's row names (if any) in a column named ``""``; and the layout."""
    from dormsig.io.detect import head_lines, is_gzip
    from dormsig.io.tables import sniff_separator

    try:
        lines = head_lines(path, 20)
    except Exception as exc:  # undecodable, truncated gzip...
        raise FormatError(f"cannot read the DE table ({type(exc).__name__}: {exc})", path=path) from None
    n_skip = 0
    while n_skip < len(lines) and (not lines[n_skip].strip() or lines[n_skip].startswith("#")):
        n_skip += 1
    content = lines[n_skip:]
    if content and content[0].startswith("\ufeff"):  # a byte-order mark (files saved by Excel)
        content[0] = content[0][1:]
    if len(content) < 2:
        raise FormatError("DE table has no data lines (expected a header and one line per gene)", path=path)
    sep = sniff_separator(content)
    header = [h.strip().strip('"') for h in _fields(content[0], sep)]
    n_data = len(_fields(content[1], sep))
    if len(header) == n_data - 1:
        names, layout = ["", *header], "R write.table (gene names as row names)"
    elif len(header) == n_data:
        names, layout = header, "header names every column"
        if _key(names[0]) == "":
            names[0], layout = "", "R write.csv (unnamed first column)"
    else:
        raise FormatError(f"header has {len(header)} fields but line {n_skip + 2} has {n_data} "
                          f"(separator {sep!r}); is this a DE results table?", path=path)
    if len(set(names)) < len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise FormatError(f"DE table has duplicated column name(s) {dup}", path=path)
    try:
        raw = pd.read_csv(path, sep=sep, header=None, skiprows=n_skip + 1, names=names, dtype=str,
                          compression="gzip" if is_gzip(path) else None, engine="c", skip_blank_lines=True,
                          encoding="utf-8-sig")
    except Exception as exc:  # pandas' parser errors, encoding errors, truncated gzip
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise exc.__context__ from None
        msg = " ".join(str(exc).split())[:120]
        raise FormatError(f"cannot read the DE table ({type(exc).__name__}: {msg})", path=path) from None
    return raw, layout


def read_de_table(
    path: str | os.PathLike,
    *,
    gene_column: str | None = None,
    stat_column: str | None = None,
    partial: bool | None = None,
    stat: str | None = None,
    harmonise: bool = True,
    species: str | None = None,
) -> pd.DataFrame:
    """Read a DE table produced elsewhere (DESeq2, edgeR, limma, scanpy, Seurat) for :func:`enrich`.

    Parameters
    ----------
    path
        CSV/TSV/space-separated text (optionally gzipped): a header naming every column, or R's
        ``write.table``/``write.csv`` layouts with gene names as row names.
    gene_column, stat_column
        Override the detected columns (``stat`` is an alias of ``stat_column``); see :func:`as_de_table`.
    partial
        Whether the table was filtered (e.g. to significant genes); ``None``: :func:`detect_partial`.
    harmonise, species
        Map gene IDs to current official symbols (``species`` detected when ``None``).

    Returns
    -------
    pandas.DataFrame
        See :func:`as_de_table`. If ``<path>.provenance.json`` (written by ``dormsig de``) records
        the gene(s) that defined the groups, they are in ``attrs["grouping_genes"]``.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError("DE table not found", path=path)
    if path.is_dir():
        raise FormatError("is a directory, not a DE table", path=path)
    raw, layout = _read_raw(path)
    table = as_de_table(raw, gene_column=gene_column, stat_column=stat_column or stat, partial=partial,
                        harmonise=harmonise, species=species, source=str(path))
    table.attrs["layout"] = layout
    side = path.with_name(path.name + ".provenance.json")
    if side.is_file():
        try:
            doc = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = None
        genes = grouping_genes_from_provenance(doc.get("groups"), doc.get("de")) if isinstance(doc, dict) else []
        if genes:
            table.attrs["grouping_genes"] = genes
    return table


def grouping_genes_from_provenance(groups: Any, de: Any = None) -> list[str]:
    """The gene(s) whose expression defined the DE groups, from the ``groups`` (and ``de``) records.

    Empty when the groups came from an ``obs`` column, or when the DE record used another grouping.
    """
    if not isinstance(groups, Mapping):
        return []
    params = groups.get("params") or {}
    if params.get("from_column") not in (None, "None"):
        return []
    if isinstance(de, Mapping):
        key = (de.get("params") or {}).get("group_key")
        if key is not None and groups.get("key") not in (None, key):
            return []
    high, versus = params.get("high"), params.get("versus")
    return [str(g) for g in (high, versus) if g not in (None, "None", "low")]


# --------------------------------------------------------------------------- any DataFrame
def _is_row_numbers(values: pd.Series) -> bool:
    nums = pd.to_numeric(values, errors="coerce")
    if nums.isna().any() or len(nums) == 0:
        return False
    arr = nums.to_numpy()
    return bool(np.all(arr == np.round(arr)) and np.all(np.diff(arr) == 1) and arr[0] in (0, 1))


def _gene_score(values: pd.Series) -> float:
    """Fraction of (a sample of) the values that are human or mouse gene IDs: symbols, Ensembl, Entrez."""
    from dormsig.genes.detect import species_evidence

    sample = pd.Series(values.dropna().astype(str).str.strip().unique())
    sample = sample[sample != ""]
    if sample.empty:
        return 0.0
    if len(sample) > _N_SCORE:
        sample = sample.sample(_N_SCORE, random_state=0)
    ev = species_evidence(list(sample))
    hits = ev.get("ensembl_human", 0) + ev.get("ensembl_mouse", 0)
    hits += max(ev.get("entrez_human_fraction", 0.0), ev.get("entrez_mouse_fraction", 0.0)) * ev.get("n_entrez", 0)
    hits += max(ev.get("symbol_human_fraction", 0.0), ev.get("symbol_mouse_fraction", 0.0)) * ev.get("n_symbol", 0)
    return float(hits / len(sample))


def _gene_candidates(df: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """(label, values) of the columns that may hold gene IDs: named ones first, then unnamed, then text."""
    out: list[tuple[str, pd.Series]] = []
    named = [c for c in df.columns if _key(c) in GENE_COLUMNS and _key(c) != ""]
    named.sort(key=lambda c: GENE_COLUMNS.index(_key(c)))
    out += [(str(c), df[c]) for c in named]
    if not isinstance(df.index, pd.RangeIndex) and not pd.api.types.is_numeric_dtype(df.index):
        out.append(("index" if df.index.name is None else str(df.index.name),
                    pd.Series(df.index.astype(str), index=df.index)))
    out += [(str(c), df[c]) for c in df.columns if _key(c) == "" and c not in named]
    numeric_like = {c for c in df.columns if pd.to_numeric(df[c], errors="coerce").notna().mean() > 0.5}
    out += [(str(c), df[c]) for c in df.columns
            if c not in named and _key(c) != "" and c not in numeric_like and df[c].dtype == object]
    seen, unique = set(), []
    for label, values in out:
        if label not in seen and not _is_row_numbers(values):
            seen.add(label)
            unique.append((label, values))
    return unique


def _choose_gene_column(df: pd.DataFrame, gene_column: str | None, source: str) -> tuple[str, pd.Series]:
    if gene_column is not None:
        if gene_column in df.columns:
            return gene_column, df[gene_column]
        if gene_column in ("index", df.index.name):
            return gene_column, pd.Series(df.index.astype(str), index=df.index)
        raise FormatError(f"gene column {gene_column!r} not found; columns: {_shown(df.columns)}", path=source)
    candidates = _gene_candidates(df)
    if not candidates:
        raise FormatError(f"no gene column: every column is numeric ({_shown(df.columns)}); name it with "
                          "--gene-column (gene_column=)", path=source)
    if len(candidates) == 1:
        return candidates[0]
    scores = [_gene_score(values) for _, values in candidates]
    best = int(np.argmax(scores))
    # A conventionally named column wins unless another holds clearly more gene IDs.
    return candidates[0] if scores[0] >= 0.5 * scores[best] and scores[0] > 0 else candidates[best]


def _shown(columns: Iterable[Any], n: int = 8) -> str:
    cols = [str(c) if str(c) else "<row names>" for c in columns]
    return ", ".join(cols[:n]) + (f", ... ({len(cols)} columns)" if len(cols) > n else "")


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype(np.float64)


def _choose_statistic(df: pd.DataFrame, stat_column: str | None, source: str) -> tuple[pd.Series, str, str | None]:
    """(statistic, metric description, column it came from)."""
    lfc, pcol = _find(df.columns, LFC_COLUMNS), _find(df.columns, P_COLUMNS)
    if stat_column is not None:
        if stat_column not in df.columns:
            raise FormatError(f"statistic column {stat_column!r} not found; columns: {_shown(df.columns)}",
                              path=source)
        values = _numeric(df[stat_column])
        if values.notna().sum() == 0:
            raise InputError(f"statistic column {stat_column!r} has no numeric value; name another ranking "
                             "column with stat=", path=source)
        return values, str(stat_column), str(stat_column)
    scol = _find(df.columns, STAT_COLUMNS)
    if scol is not None:
        values = _numeric(df[scol])
        if values.notna().sum() == 0:
            raise InputError(f"statistic column {str(scol)!r} is empty (all NA or not numbers); name another "
                             "ranking column with stat=, e.g. a log fold change", path=source)
        return values, str(scol), str(scol)
    if lfc is not None and pcol is not None:
        sign, p = np.sign(_numeric(df[lfc])), _numeric(df[pcol])
        if (sign.notna() & p.notna()).sum() == 0:
            raise InputError(f"columns {str(lfc)!r} and {str(pcol)!r} have no gene with both values; name a ranking "
                             "column with stat=", path=source)
        # p = 0 (underflow in the DE tool) ranks at the extreme, beyond 1e-300.
        return sign * -np.log10(p.clip(lower=1e-300)), f"sign({lfc}) * -log10({pcol})", None
    if lfc is not None:
        values = _numeric(df[lfc])
        if values.notna().sum() == 0:
            raise InputError(f"log fold-change column {str(lfc)!r} is empty (all NA or not numbers); name a "
                             "ranking column with stat=", path=source)
        return values, str(lfc), str(lfc)
    raise FormatError(f"no statistic (stat/t/z/score) nor log fold change (log2FoldChange/logFC) column in "
                      f"{_shown(df.columns, 5)}; name the ranking column with stat=", path=source)


def detect_partial(table: pd.DataFrame) -> tuple[bool, str]:
    """Whether a DE table was filtered (to significant or strongly changed genes), and why.

    A full table ranks every tested gene: its adjusted p-values and p-values reach up towards 1
    and some statistics lie near 0. Called filtered: every adjusted p-value (or p-value) is
    <= 0.25; no statistic within 10% of the median absolute statistic of 0 (at least 100 genes);
    fewer than :data:`MIN_FULL_GENES` genes.
    """
    n = len(table)
    for col, label in (("padj", "adjusted p-value"), ("pvalue", "p-value")):
        if col in table and table[col].notna().any() and table[col].max() <= PARTIAL_MAX_P:
            return True, f"every {label} is <= {PARTIAL_MAX_P} (max {table[col].max():.3g})"
    stat = table["stat"].abs()
    if n >= 100:
        near = float(0.1 * stat.median())
        if near > 0 and not (stat < near).any():
            return True, f"no gene has a statistic near 0 (|stat| < {near:.3g}; min {stat.min():.3g})"
    if n < MIN_FULL_GENES:
        return True, f"only {n} genes (fewer than {MIN_FULL_GENES})"
    return False, ""


def _harmonise(genes: pd.Series, species: str | None) -> tuple[pd.Series, dict[str, Any]]:
    """Current official symbols for the IDs (unmapped ones kept), as :func:`dormsig.io.read` does."""
    from dormsig.genes import detect_species, resolve

    ids = genes.astype(str).tolist()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            species = species or detect_species(ids)
        res = resolve(ids, species)
    except GeneIdError as exc:
        return genes, {"species": None, "note": f"not harmonised: {exc}"[:300], "n_recognised": 0}
    how = res["how"].to_numpy(dtype=object)
    mapped = res["symbol"].notna().to_numpy()
    new = pd.Series(np.where(mapped, res["symbol"].to_numpy(dtype=object), np.asarray(ids, dtype=object)),
                    index=genes.index, dtype=object)
    renamed = [f"{a}->{b}" for a, b in zip(ids, new, strict=True) if a != b]
    info = {
        "species": species,
        "n_recognised": int(sum(h not in ("unmapped", "ambiguous") for h in how)),
        "n_renamed": len(renamed),
        "renamed_examples": renamed[:10],
        "n_unmapped": int(sum(h == "unmapped" for h in how)),
        "n_ambiguous": int(sum(h == "ambiguous" for h in how)),
    }
    return new, info


def as_de_table(
    df: pd.DataFrame,
    *,
    gene_column: str | None = None,
    stat_column: str | None = None,
    partial: bool | None = None,
    harmonise: bool = True,
    species: str | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Make any DE table ready for :func:`dormsig.de.enrich`.

    Parameters
    ----------
    df
        A DE results table: one row per gene, a gene column (or gene names as the index) and a
        statistic (``stat``/Wald, ``t``, ``z``, ``score``), or a log fold change and a p-value
        (ranked by ``sign(log2FC) * -log10(p)``), or only a log fold change.
    gene_column, stat_column
        Override the detected columns (``"index"`` names the index).
    partial
        Whether the table was filtered; ``None``: ``df.attrs["partial"]`` if set, else
        :func:`detect_partial`.
    harmonise, species
        Map gene IDs to current official symbols (``species`` detected when ``None``).
    source
        Name used in messages (the file path).

    Returns
    -------
    pandas.DataFrame
        Indexed by gene, sorted by decreasing statistic, with columns ``gene``, ``stat`` (+
        ``log2FoldChange``, ``pvalue``, ``padj`` when present, ``gene_in_table`` when IDs were
        renamed). ``attrs``: ``source``, ``gene_column``, ``metric``, ``partial``,
        ``partial_reason``, ``genes`` (harmonisation summary), ``n_dropped`` (genes without a
        statistic), ``n_duplicates``.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a DE table (DataFrame), got {type(df).__name__}")
    source = source or str(df.attrs.get("source") or "DE table")
    if df.attrs.get("dormsig_de_table") and gene_column is None and stat_column in (None, "stat",
                                                                                      df.attrs.get("metric")):
        out = df.copy()
        out.attrs = dict(df.attrs)
        if partial is not None:
            out.attrs.update(partial=bool(partial), partial_reason="given")
        return out
    if df.shape[0] == 0:
        raise InputError("DE table has no rows", path=source)
    gcol, genes = _choose_gene_column(df, gene_column, source)
    values, metric, scol = _choose_statistic(df, stat_column, source)
    out = pd.DataFrame({"gene": genes.astype(object).where(genes.notna(), "").astype(str).str.strip().to_numpy(),
                        "stat": values.to_numpy()}, index=range(len(df)))
    for names, dst in ((LFC_COLUMNS, "log2FoldChange"), (P_COLUMNS, "pvalue"), (PADJ_COLUMNS, "padj")):
        src = _find(df.columns, names)
        if src is not None and src != scol:
            out[dst] = _numeric(df[src]).to_numpy()
    # Infinite statistics (p = 0 turned into -log10) keep their place at the ends of the ranking.
    finite = np.isfinite(out["stat"])
    n_inf = int((np.isinf(out["stat"])).sum())
    if n_inf:
        lo, hi = out.loc[finite, "stat"].min(), out.loc[finite, "stat"].max()
        out.loc[out["stat"] == np.inf, "stat"] = (hi if np.isfinite(hi) else 0.0) + 1.0
        out.loc[out["stat"] == -np.inf, "stat"] = (lo if np.isfinite(lo) else 0.0) - 1.0
    keep = out["stat"].notna() & (out["gene"] != "") & (out["gene"].str.lower() != "nan")
    n_dropped = int((~keep).sum())
    out = out[keep]
    if out.empty:
        raise InputError(f"no gene has both a name in column {gcol!r} and a numeric {metric!r}; check "
                         "gene_column= and stat=", path=source)
    info: dict[str, Any] = {"species": species, "n_recognised": None}
    if harmonise:
        new, info = _harmonise(out["gene"], species)
        if (new != out["gene"]).any():
            out.insert(1, "gene_in_table", out["gene"].to_numpy())
            out["gene"] = new.to_numpy()
    # Duplicated genes (several probes, or IDs merged by harmonisation): keep the strongest statistic.
    n_before = len(out)
    out = out.loc[out["stat"].abs().sort_values(ascending=False, kind="stable").index].drop_duplicates("gene")
    out = out.set_index(pd.Index(out["gene"].to_numpy(), dtype=object))
    out = out.sort_values("stat", ascending=False, kind="stable")
    if partial is None and "partial" in df.attrs:
        partial, reason = bool(df.attrs["partial"]), str(df.attrs.get("partial_reason") or "given")
    elif partial is None:
        partial, reason = detect_partial(out)
    else:
        reason = "given"
    out.attrs = {
        "dormsig_de_table": True, "source": source, "gene_column": gcol, "metric": metric,
        "partial": bool(partial), "partial_reason": reason, "genes": info, "n_genes": len(out),
        "n_dropped": n_dropped, "n_duplicates": n_before - len(out), "n_infinite": n_inf,
    }
    for key in ("grouping_genes", "provenance"):
        if key in df.attrs:
            out.attrs[key] = df.attrs[key]
    return out
