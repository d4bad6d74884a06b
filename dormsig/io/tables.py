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
    for sep in ("\t", ",", ";"):
        if all(sep in ln for ln in lines[:2]):
            return sep
    for sep in ("\t", ",", ";"):
        # a one-sample table in R style has a header without any separator
        if sep in lines[0] or all(sep in ln for ln in lines[1:3]):
            return sep
    return r"\s+"


def _split(line: str, sep: str) -> list[str]:
    return re.split(sep, line.strip()) if sep == r"\s+" else line.split(sep)


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


def read_table(path: str | os.PathLike, *, orientation: str | None = None) -> Parsed:
    """Parse a delimited count table into a :class:`~dormsig.io._build.Parsed`.

    Parameters
    ----------
    path
        ``.csv``/``.tsv``/``.txt`` (optionally ``.gz``) file.
    orientation
        ``"genes_x_samples"`` or ``"samples_x_genes"``; ``None`` infers it from the identifiers.
    """
    path = Path(path)
    if orientation is not None and orientation not in ORIENTATIONS:
        raise InputError(f"orientation must be one of {ORIENTATIONS}, not {orientation!r}", path=path)
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
    header = [h.strip().strip('"') for h in _split(content[0], sep)]
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
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            header=None,
            skiprows=n_skip + 1,
            names=list(range(len(names))),
            dtype={0: str},
            compression="gzip" if is_gzip(path) else None,
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
    if df.empty:
        raise InputError("file has a header but no data lines", path=path)
    first_line = n_skip + 2
    _check_complete_last_line(path, df, first_line)
    labels = df[0]
    if labels.isna().any():
        k = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise InputError(f"missing identifier in the first column at line {first_line + k}", path=path)
    labels = labels.str.strip().tolist()

    count_cols: list[int] = []
    annot_cols: list[int] = []
    for j in range(1, len(names)):
        col = df[j]
        name = names[j]
        if col.isna().all() and not name:
            continue  # a trailing separator: empty, unnamed column
        if _key(name) in ANNOTATION_NAMES:
            annot_cols.append(j)
        elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            count_cols.append(j)
        elif pd.to_numeric(col, errors="coerce").notna().mean() >= 0.5:
            count_cols.append(j)  # mostly numbers: a count column with bad cells (reported below)
        else:
            annot_cols.append(j)
    if not count_cols:
        raise InputError("no numeric count columns", path=path)

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
    what = "count"
    matrix = coerce_numeric_frame(df[count_cols].set_axis(count_names, axis=1), path, first_line=first_line, what=what)
    annot = df[annot_cols].set_axis([names[j] for j in annot_cols], axis=1).reset_index(drop=True)
    info = {"orientation": orientation, "orientation_inferred": inferred, "separator": sep,
            "header_short": label_name is None, "annotation_columns": [names[j] for j in annot_cols]}
    if label_name:
        info["id_column"] = label_name
    if orientation == "genes_x_samples":
        return Parsed(counts=matrix.T, obs_names=count_names, var_names=labels, var=annot, info=info)
    return Parsed(counts=matrix, obs_names=labels, var_names=count_names, obs=annot, info=info)
