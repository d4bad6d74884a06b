"""Delimited count tables (CSV/TSV/TXT, optionally gzipped), in either orientation.

The first column holds the row identifiers. The header may lack a name for it (R
``write.table`` style: one field short). Non-numeric columns, and numeric columns with an
annotation name (``length``, ``chr``, ``start`` ...), are annotations: kept in ``var`` (or ``obs``
for a samples x genes table) and never counted. Whether rows are genes is decided from the
identifiers (Ensembl IDs, common gene symbols and gene families, accession-style sample names)
and otherwise refused: pass ``orientation=``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dormsig.errors import FormatError, InputError
from dormsig.io._build import Parsed, coerce_numeric_frame
from dormsig.io.detect import GZ_ERRORS, head_lines, is_gzip
from dormsig.io.shapes import (
    ROW_NUMBER_HEADERS,
    STAR_SPECIAL,
    convention,
    formatted_numbers,
    is_row_numbers,
    parse_formatted,
    shown,
    special_rows,
    split_line,
)

ORIENTATIONS = ("genes_x_samples", "samples_x_genes")

#: Column names (lower case, non-alphanumerics removed) that annotate genes and are never counts.
ANNOTATION_NAMES = {
    "length", "genelength", "efflength", "effectivelength", "txlength", "transcriptlength", "width",
    "chr", "chrom", "chromosome", "seqname", "seqnames", "contig", "start", "end", "stop", "strand",
    "pos", "position", "gc", "gccontent", "percentgc", "biotype", "genebiotype", "genetype", "type",
    "genename", "symbol", "genesymbol", "description", "entrez", "entrezid", "geneid", "ensembl",
    "ensemblid", "name", "hgnc", "hgncsymbol", "mgisymbol", "exons", "nexons", "transcripts", "tss",
}

ENSEMBL_RE = re.compile(r"^ENS[A-Z]*[GT]\d{6,}(\.\d+)?(_PAR_Y)?$", re.IGNORECASE)

# Gene families present in any transcriptome-wide gene list, and absent from sample names.
GENE_FAMILY_RE = re.compile(
    r"^(RP[LS]\d+[A-Z]?\d*|MRP[LS]\d+|MT-[A-Z0-9]+|HLA-[A-Z0-9]+|ZNF\d+|SLC\d+A\d+|KRT\d+[A-Z]?|"
    r"LINC\d{3,}|LOC\d{3,}|SNOR[AD]\d+[A-Z]?|MIR\d+[A-Z0-9-]*|C\d+ORF\d+|OR\d+[A-Z]+\d+[A-Z]?\d*|"
    r"HIST\d[A-Z0-9]+|H[1-4]C\d+|TMEM\d+[A-Z]?|FAM\d+[A-Z]\d*|CCDC\d+[A-Z]?|KIAA\d+|PCDH[ABG]?[A-Z0-9]*|"
    r"[A-Z0-9]+-AS\d|[A-Z0-9]+-IT\d)$",
    re.IGNORECASE,
)

# Broadly expressed human genes (case-insensitive, so mouse Actb matches too).
COMMON_GENES = frozenset(
    """
    ACTB ACTG1 GAPDH B2M TUBB TUBA1B EEF1A1 EEF2 TPT1 PPIA PGK1 HPRT1 TBP UBC UBB YWHAZ SDHA HMBS GUSB TFRC
    RPLP0 RPLP1 RPLP2 RPS3A RPSA FTL FTH1 MALAT1 NEAT1 XIST TP53 MYC KRAS EGFR ERBB2 ESR1 PGR GATA3 KRT8
    KRT18 KRT19 EPCAM CDH1 VIM PTPRC CD3E CD4 CD8A CD14 CD19 MS4A1 LYZ HBB HBA1 HBA2 ALB APOE CLU SPARC
    COL1A1 COL1A2 COL3A1 FN1 MKI67 TOP2A PCNA MCM2 CCND1 CDK4 CDK6 CDKN1A CDKN1B CDKN2A RB1 PTEN PIK3CA
    AKT1 MTOR NOTCH1 NOTCH2 NOTCH3 JAG1 HES1 HEY1 ATF4 DDIT3 XBP1 HSPA5 EIF2AK3 ERN1 ATF6 NR2F1 TGFB2
    SOX2 SOX9 NANOG POU5F1 CXCR4 CXCL12 ZEB1 SNAI1 SNAI2 TWIST1 AXL BHLHE41 DEC2 MAPK14 MAPK1 MAPK3
    A1BG A2M AAAS AACS AAMP AARS ABCA1 ABCB1 ABCC1 ABL1 ACACA ACLY ACO2 ACTA2 ACTN4 ADAM10 AHNAK ALDOA
    ANXA1 ANXA2 APP ARF1 ATP5F1A BAX BCL2 BRCA1 BRCA2 CALM1 CALR CANX CAV1 CD44 CD63 CD74 CD81 CFL1 CLTC
    CST3 CTNNB1 CTSB CTSD DDX5 DSTN EIF4A1 EIF4G1 ENO1 FLNA GNAS GSTP1 HNRNPA1 HSP90AA1 HSP90AB1 HSPA8
    HSPB1 IGFBP7 ITGB1 JUN FOS JUNB FOSB EGR1 KLF4 KLF6 LDHA LGALS1 LMNA MIF MYH9 NACA NCL NPM1 P4HB PABPC1
    PFN1 PKM PPIB PRDX1 PSAP S100A6 S100A10 S100A11 SERPINH1 SPTBN1 SRSF1 SQSTM1 TAGLN TAGLN2 TLN1 TMSB4X
    TMSB10 TPM1 TPM2 TXN UBA52 VCP VCL YBX1 ZFP36 MT2A MT1X SOD1 SOD2 CAT GPX1 NFKB1 RELA STAT1 STAT3 IRF1
    IL6 TNF IFNG CCL2 CXCL8 SPP1 MMP2 MMP9 TIMP1 TIMP2 VEGFA HIF1A EPAS1 ESR2 AR FOXA1 TFF1 TFF3 MUC1
    """.split()
)

# Accession or barcode-like sample names (GEO, SRA/ENA/DDBJ, BioSample, TCGA, 10x barcodes, BAM paths).
SAMPLE_RE = re.compile(
    r"^(GSM\d+|[SED]RR\d+|[SED]RX\d+|[SED]RS\d+|SAM[NED][A-Z]?\d+|TCGA-[A-Z0-9-]+|[ACGT]{8,}(-\d+)?|.*\.bam)$",
    re.IGNORECASE,
)

LABEL_COLUMN_GENE = {"gene", "genes", "geneid", "genename", "genesymbol", "symbol", "ensembl", "ensemblid",
                     "ensemblgeneid", "feature", "featureid", "transcript", "transcriptid", "targetid"}
LABEL_COLUMN_SAMPLE = {"sample", "samples", "sampleid", "samplename", "cell", "cells", "cellid", "barcode",
                       "barcodes", "cellbarcode", "run", "gsm"}


def _key(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _gene_hits(names: list[str]) -> int:
    return sum(
        1 for n in names if ENSEMBL_RE.match(n) or n.upper() in COMMON_GENES or GENE_FAMILY_RE.match(n)
    )


def _frac(pattern: re.Pattern, names: list[str]) -> float:
    return sum(1 for n in names if pattern.match(n)) / max(len(names), 1)


def infer_orientation(rows: list[str], cols: list[str], label_name: str | None = None) -> str | None:
    """``"genes_x_samples"``, ``"samples_x_genes"`` or ``None`` when the identifiers do not tell."""
    rows = [str(r) for r in rows]
    cols = [str(c) for c in cols]

    def genes_evidence(genes: list[str], samples: list[str]) -> bool:
        if _frac(ENSEMBL_RE, genes) >= 0.5 and _frac(ENSEMBL_RE, samples) < 0.1:
            return True
        if _frac(SAMPLE_RE, samples) >= 0.5 and _frac(SAMPLE_RE, genes) < 0.1:
            return True
        need = min(5, max(1, int(np.ceil(0.5 * len(genes)))))
        hits_g, hits_s = _gene_hits(genes), _gene_hits(samples)
        return hits_g >= need and hits_s < min(5, max(1, int(np.ceil(0.5 * len(samples))))) and hits_s * 10 <= hits_g

    rows_genes = genes_evidence(rows, cols)
    cols_genes = genes_evidence(cols, rows)
    if rows_genes != cols_genes:
        return "genes_x_samples" if rows_genes else "samples_x_genes"
    key = _key(label_name) if label_name else ""
    if key in LABEL_COLUMN_GENE:
        return "genes_x_samples"
    if key in LABEL_COLUMN_SAMPLE:
        return "samples_x_genes"
    return None


def sniff_separator(lines: list[str]) -> str:
    """Tab, comma or semicolon, whichever the header and first data line both contain; else whitespace."""
    for sep in ("\t", ";", ","):
        # ";" before ",": a European spreadsheet's lines hold decimal commas as well as ";" separators
        if all(len(split_line(ln, sep)) > 1 for ln in lines[:2]):
            if sep == "," and all(len(split_line(ln, ";")) > 1 for ln in lines[:2]):
                continue
            return sep
    for sep in ("\t", ",", ";"):
        # a one-sample table in R style has a header without any separator
        if sep in lines[0] or all(sep in ln for ln in lines[1:3]):
            return sep
    return r"\s+"


def _split(line: str, sep: str) -> list[str]:
    return split_line(line, sep)


def _check_complete_last_line(path: Path, df: pd.DataFrame, first_line: int) -> None:
    """A plain file cut mid-line parses as a short last row of NaNs: name it as truncation instead."""
    if is_gzip(path) or not df.iloc[-1].isna().any():
        return
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 1))
        last = handle.read(1)
    if last not in (b"\n", b"\r"):
        line = first_line + len(df) - 1
        n_fields = int(df.iloc[-1].notna().sum())
        raise InputError(
            f"line {line} is incomplete ({n_fields} of {df.shape[1]} fields, no line end): the file looks truncated",
            path=path,
        )


#: Column names of one sample's quantities in quantifier outputs (never sample names).
QUANT_COLUMNS = {"expectedcount", "tpm", "fpkm", "rpkm", "isopct", "numreads", "estcounts", "posteriormeancount",
                 "posteriorstandarddeviationofcount", "pme_tpm", "pmetpm", "pmefpkm", "effectivelength", "efflength"}
TRANSCRIPT_RE = re.compile(r"^(ENS[A-Z]*T\d{6,}(\.\d+)?(_PAR_Y)?|[NX][MR]_\d+(\.\d+)?)$")


def _read_frame(path: Path, sep: str, skip: int, n_names: int, *, as_text: bool) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path,
            sep=sep,
            header=None,
            skiprows=skip,
            names=list(range(n_names)),
            dtype=str if as_text else {0: str},
            compression="gzip" if is_gzip(path) else None,
            encoding="utf-8-sig",
            low_memory=False,
            engine="c",  # also for r"\s+", which pandas treats as whitespace-delimited (quotes honoured)
        )
    except GZ_ERRORS as exc:
        raise InputError(f"truncated or corrupt gzip file ({exc})", path=path) from None
    except pd.errors.ParserError as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise exc.__context__ from None  # Ctrl-C during parsing is an interruption, not a bad table
        raise InputError(f"malformed table ({' '.join(str(exc).split())})", path=path) from None
    except UnicodeDecodeError:
        raise FormatError("not a UTF-8 text file", path=path) from None


def read_table(path: str | os.PathLike, *, orientation: str | None = None, tx2gene=None) -> Parsed:
    """Parse a delimited count table into a :class:`~dormsig.io._build.Parsed`.

    Parameters
    ----------
    path
        ``.csv``/``.tsv``/``.txt`` (optionally ``.gz``) file.
    orientation
        ``"genes_x_samples"`` or ``"samples_x_genes"``; ``None`` infers it from the identifiers.
    tx2gene
        Transcript -> gene table (path, DataFrame or dict) for a table whose rows are transcripts:
        they are summed per gene. A transcript table without it is refused.

    Every decision taken about the file (see :mod:`dormsig.io.shapes`) is listed in
    ``info["decisions"]``.
    """
    path = Path(path)
    if orientation is not None and orientation not in ORIENTATIONS:
        raise InputError(f"orientation must be one of {ORIENTATIONS}, not {orientation!r}", path=path)
    decisions: list[str] = []
    lines = head_lines(path, 200)
    n_skip = 0
    while n_skip < len(lines) and (not lines[n_skip].strip() or lines[n_skip].startswith("#")):
        n_skip += 1
    content = lines[n_skip:]
    if not content:
        raise InputError("file is empty (no header line)", path=path)
    if len(content) < 2:
        raise InputError("file has a header but no data lines", path=path)
    sep = sniff_separator(content)
    header = [h.strip() for h in _split(content[0], sep)]
    n_data = len(_split(content[1], sep))
    if len(header) == n_data - 1:
        label_name = None  # R write.table: the identifier column has no name
        names = ["", *header]
    elif len(header) == n_data:
        label_name = header[0]
        names = header
    else:
        raise InputError(
            f"header has {len(header)} fields but line {n_skip + 2} has {n_data} (separator {sep!r})", path=path
        )
    if len(names) == 2 and _looks_numeric(names[1]):
        raise InputError(
            "the first line holds numbers, not sample names: the table has no header (htseq-count output? read"
            " it with format='htseq'; otherwise add a header line)", path=path)
    df = _read_frame(path, sep, n_skip + 1, len(names), as_text=sep == ";")
    if df.empty:
        raise InputError("file has a header but no data lines", path=path)
    first_line = n_skip + 2
    _check_complete_last_line(path, df, first_line)

    # --- columns without a name: trailing separators are dropped, anything else is refused
    empty_named = [j for j in range(1, len(names)) if not names[j]]
    trailing = [j for j in empty_named if df[j].isna().all()]
    holding = [j for j in empty_named if j not in trailing]
    if holding:
        raise InputError(f"column {holding[0] + 1} has no name in the header but holds values; name it (or delete it)",
                         path=path)
    if trailing:
        decisions.append(f"dropped {len(trailing)} empty column(s) without a name (trailing separators)")

    # --- R row numbers in the first column (write.csv with row.names=TRUE)
    label_col = 0
    if _is_row_numbers(df[0]) and (label_name is None or label_name.lower() in ROW_NUMBER_HEADERS):
        nxt = 1 if len(names) > 1 else None
        if nxt is not None and df[nxt].notna().all() and pd.to_numeric(df[nxt], errors="coerce").isna().mean() > 0.5:
            label_col, label_name = nxt, names[nxt] or None
            start = int(str(df[0].iloc[0]).strip())
            decisions.append(f"dropped the first column: row numbers {start}..{start + len(df) - 1} (R write.csv row"
                             f" names or a pandas index); identifiers from column {names[nxt]!r}")
            trailing.append(0)
    labels_raw = df[label_col]
    if labels_raw.isna().any():
        k = int(np.flatnonzero(labels_raw.isna().to_numpy())[0])
        raise InputError(f"missing identifier in the first column at line {first_line + k}", path=path)
    labels = labels_raw.astype(str).str.strip().tolist()

    # --- tool summary rows (htseq-count __*, STAR N_*): read counts, never genes
    special = special_rows(labels)

    count_cols: list[int] = []
    annot_cols: list[int] = []
    formatted: dict[int, pd.Series] = {}
    nums: dict[int, pd.Series] = {}  # to_numeric of each text column, computed once (tables have millions of cells)
    for j in range(len(names)):
        if j == label_col or j in trailing or (j == 0 and label_col == 0):
            continue
        col = df[j]
        name = names[j]
        if _key(name) in ANNOTATION_NAMES:
            annot_cols.append(j)
        elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            count_cols.append(j)
        elif col.dropna().empty:
            count_cols.append(j)  # an all-missing sample: reported as non-finite counts by the checks
        else:
            num = nums[j] = pd.to_numeric(col, errors="coerce")
            body, body_num = col[~special], num[~special]
            all_plain = body.notna().sum() > 0 and body_num.notna().sum() == body.notna().sum()
            if formatted_numbers(body, body_num) or (sep == ";" and all_plain):
                count_cols.append(j)
                formatted[j] = col  # text: parsed below with the table's number convention
            elif num.notna().mean() >= 0.5:
                count_cols.append(j)  # mostly numbers: a count column with bad cells (reported below)
            else:
                annot_cols.append(j)
    if not count_cols:
        raise InputError("no numeric count columns", path=path)
    if formatted:
        conv, reason = convention({names[j]: c[~special] for j, c in formatted.items()}, sep,
                                  {names[j]: nums[j][~special] for j in formatted})
        if conv is not None:
            changed = {j: int((nums[j].isna() & col.notna()).sum()) for j, col in formatted.items()}
            for j, col in formatted.items():
                try:
                    df[j] = parse_formatted(col, conv, nums[j])
                except InputError as exc:
                    raise InputError(str(exc), path=path) from None
            if sum(changed.values()):
                decisions.append(f"numbers read with {conv} ({reason}): {sum(changed.values())} value(s) in"
                                 f" {sum(1 for v in changed.values() if v)} column(s)")
    count_names = [names[j] for j in count_cols]
    quant = [n for n in count_names if _key(n) in QUANT_COLUMNS]
    if len(quant) >= 2:
        raise FormatError(f"columns {shown(quant, 4)} are one sample's quantities (RSEM/Salmon/kallisto output), not"
                          " samples; read the tool's output with its format (format='rsem', 'salmon', 'kallisto')",
                          path=path)

    if special.any():
        totals = df.loc[special, count_cols].apply(pd.to_numeric, errors="coerce").sum(axis=1)
        what = ", ".join(f"{labels[i]} {int(t):,}" for i, t in zip(np.flatnonzero(special), totals, strict=True))
        decisions.append(f"dropped {int(special.sum())} counting-tool summary row(s), not genes ({what} reads)")
        keep = ~special
        df = df.loc[keep].reset_index(drop=True)
        labels = [lab for lab, k in zip(labels, keep, strict=True) if k]
        row_lines = first_line + np.flatnonzero(keep)
    else:
        row_lines = None
    special_cols = [j for j in count_cols if names[j].startswith("__") or names[j] in STAR_SPECIAL]
    if special_cols:
        decisions.append(f"dropped {len(special_cols)} counting-tool summary column(s), not genes: "
                         f"{shown([names[j] for j in special_cols])}")
        count_cols = [j for j in count_cols if j not in special_cols]
        count_names = [names[j] for j in count_cols]

    if orientation is None:
        orientation = infer_orientation(labels, count_names, label_name)
        if orientation is None:
            raise FormatError(
                "cannot tell whether rows or columns are genes (no Ensembl IDs, known gene symbols or"
                " accession-style sample names); pass orientation='genes_x_samples' or 'samples_x_genes'",
                path=path,
            )
        inferred = True
    else:
        inferred = False
    if inferred:
        what_rows = "genes" if orientation == "genes_x_samples" else "samples"
        decisions.insert(0, f"rows are {what_rows} (inferred from the identifiers; pass orientation= to override)")
    if orientation == "genes_x_samples" and _is_row_numbers(labels) and label_col == 0:
        raise InputError(f"the first column holds row numbers 1..{len(labels)}, not gene identifiers (R write.csv"
                         " without a gene column?); write the table with the gene names", path=path)
    if orientation == "samples_x_genes" and _is_row_numbers(labels) and label_col == 0:
        decisions.append(f"rows have no names, only numbers 1..{len(labels)}: samples named by their row number")
    what = "count"
    first = first_line if row_lines is None else int(row_lines[0])
    matrix = coerce_numeric_frame(df[count_cols].set_axis(count_names, axis=1), path, first_line=first, what=what)
    annot = df[annot_cols].set_axis([names[j] for j in annot_cols], axis=1).reset_index(drop=True)
    info = {"orientation": orientation, "orientation_inferred": inferred, "separator": sep,
            "header_short": label_name is None and label_col == 0, "annotation_columns": [names[j] for j in annot_cols]}
    if label_name:
        info["id_column"] = label_name
    genes = labels if orientation == "genes_x_samples" else count_names
    counts = matrix.T if orientation == "genes_x_samples" else matrix
    n_tx = sum(1 for g in genes if TRANSCRIPT_RE.match(g))
    if n_tx >= 0.5 * len(genes):
        if tx2gene is None:
            raise InputError(f"{n_tx:,} of {len(genes):,} identifiers are transcripts ({genes[0]!r}...): pass tx2gene="
                             " (a transcript-to-gene table) to sum them per gene", path=path)
        counts, genes, tx_info = _sum_transcripts(counts, genes, tx2gene, path)
        decisions.append(f"summed {tx_info['n_transcripts']:,} transcripts into {len(genes):,} genes with tx2gene"
                         f" ({tx_info['n_transcripts_unmapped']:,} not in it)")
        info.update(tx_info)
        annot = None
    elif tx2gene is not None:
        raise InputError("tx2gene= applies only to transcript-level tables; the identifiers of this table are genes",
                         path=path)
    info["decisions"] = decisions
    if orientation == "genes_x_samples":
        return Parsed(counts=counts, obs_names=count_names, var_names=genes, var=annot, info=info)
    return Parsed(counts=counts, obs_names=labels, var_names=genes, obs=annot, info=info)


def _looks_numeric(text: str) -> bool:
    return bool(re.match(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", text.strip()))


def _is_row_numbers(labels) -> bool:
    values = list(labels)
    return all(isinstance(v, str) or isinstance(v, int | np.integer) for v in values) and is_row_numbers(values)


def _sum_transcripts(counts: np.ndarray, transcripts: list[str], tx2gene, path: Path):
    """(samples x genes) sums of a (samples x transcripts) matrix through tx2gene."""
    import scipy.sparse as sp

    from dormsig.io.quantifiers import _map_transcripts, load_tx2gene

    mapping = load_tx2gene(tx2gene)
    genes, how = _map_transcripts(pd.Series(transcripts), mapping)
    mapped = genes.notna().to_numpy()
    if not mapped.any():
        raise InputError(f"no transcript is in tx2gene (e.g. {transcripts[0]!r} vs {mapping.index[0]!r})", path=path)
    codes, gene_names = pd.factorize(genes[mapped], sort=True)
    indicator = sp.csr_matrix((np.ones(codes.size), (np.arange(codes.size), codes)),
                              shape=(codes.size, gene_names.size))
    summed = np.asarray(np.asarray(counts, dtype=np.float64)[:, mapped] @ indicator)
    info = {"level": "gene", "tx2gene_match": how, "n_transcripts": len(transcripts),
            "n_transcripts_unmapped": int((~mapped).sum())}
    return summed, [str(g) for g in gene_names], info
