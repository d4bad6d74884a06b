"""Generate the small bad-input files of the corpus from the bundled Aceto 2014 CTC example.

``generate(directory)`` writes every generated file into ``directory`` and returns a dict
``{name: path}``. Static, byte-exact files (a truncated ``.gz``, a truncated ``.h5ad``) live next
to this module in ``static/`` and are added to the dict too. Nothing here reads ``/work/shared``.
"""

from __future__ import annotations

import gzip
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

STATIC = Path(__file__).resolve().parent / "static"

#: genes kept in the small tables: the groups genes, the dormancy index sets, then the first genes
N_FIRST_GENES = 400


def _index_genes() -> list[str]:
    from dormsig.signatures import load_index, load_library

    lib = load_library()
    genes: list[str] = []
    for comp in load_index().components:
        sig = lib[comp.set]
        genes += list(sig.up) + list(sig.down)
    return genes


def base_table() -> pd.DataFrame:
    """Genes x samples integer counts: NOTCH1/NOTCH2, the index genes and the first genes."""
    from dormsig.data import example_path

    full = pd.read_csv(example_path("aceto2014_ctc/GSE51827_data.txt.gz"), sep="\t", index_col=0)
    full = full.round().astype(np.int64)  # 5 cells are 0.999999...; the corpus wants exact integers
    keep = list(dict.fromkeys(["NOTCH1", "NOTCH2", *_index_genes(), *full.index[:N_FIRST_GENES]]))
    keep = [g for g in keep if g in full.index]
    return full.loc[keep]


def samples_sheet() -> pd.DataFrame:
    from dormsig.data import example_path

    return pd.read_csv(example_path("aceto2014_ctc/samples.csv"))


def _write_tsv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, sep="\t", index_label="gene")
    return path


def _mouse_case(symbol: str) -> str:
    return symbol[:1] + symbol[1:].lower()


def _h5ad(df: pd.DataFrame, sheet: pd.DataFrame, path: Path) -> Path:
    """An .h5ad as ``dormsig read`` writes it (counts layer, log1p X, dormsig provenance)."""
    from dormsig.io import read, write_h5ad

    tsv = path.with_suffix(".src.tsv")
    _write_tsv(df, tsv)
    sheet_path = path.with_suffix(".src.csv")
    sheet.to_csv(sheet_path, index=False)
    adata = read(tsv, sample_sheet=sheet_path)
    write_h5ad(adata, path)
    tsv.unlink()
    sheet_path.unlink()
    return path


def _reference(h5ad: Path, path: Path, *, version: str) -> Path:
    """A reference as ``dormsig reference`` writes it, then its recorded library version changed."""
    import anndata as ad

    from dormsig.io import write_h5ad
    from dormsig.tl import rank, score
    from dormsig.tl.reference import make_reference

    adata = ad.read_h5ad(h5ad)
    score(adata)
    rank(adata)
    ref = make_reference(adata)
    ref.uns["dormsig"]["score"]["library_version"] = version
    write_h5ad(ref, path)
    return path


def generate(directory: str | Path) -> dict[str, Path]:
    """Write the corpus's generated inputs into ``directory``; return ``{name: path}``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    f: dict[str, Path] = {}
    base = base_table()
    sheet = samples_sheet()

    def text(name: str, content: str | bytes) -> None:
        p = d / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        f[name] = p

    f["good.tsv"] = _write_tsv(base, d / "good.tsv")
    good_text = f["good.tsv"].read_text()
    lines = good_text.splitlines()
    f["samples.csv"] = d / "samples.csv"
    sheet.to_csv(f["samples.csv"], index=False)

    # --- empty, truncated, malformed text
    text("empty.tsv", "")
    text("blank_lines.tsv", "\n\n\n")
    text("header_only.tsv", lines[0] + "\n")
    text("truncated_mid_line.tsv", "\n".join(lines[:50]) + "\n" + lines[50][: len(lines[50]) // 2])
    text("ragged_row.tsv", "\n".join(lines[:10] + [lines[10] + "\t7\t8"] + lines[11:]) + "\n")
    text("binary_garbage.tsv", bytes(range(256)) * 8)
    (d / "good.tsv.gz").write_bytes(gzip.compress(good_text.encode(), mtime=0))
    f["good.tsv.gz"] = d / "good.tsv.gz"
    text("not_really_gzip.tsv.gz", b"\x1f\x8b" + b"this is not a gzip stream" * 4)
    # wrong delimiter: the header is tab-separated but the data lines use commas
    text("mixed_delimiters.tsv", lines[0] + "\n" + "\n".join(ln.replace("\t", ",") for ln in lines[1:]) + "\n")
    # wrong delimiter: pipes, which no sniffer treats as a separator
    text("pipe_delimited.csv", "\n".join(ln.replace("\t", "|") for ln in lines) + "\n")
    text("crlf.tsv", "\r\n".join(lines) + "\r\n")

    # --- bad values (line numbers are 1-based file lines; line 1 is the header)
    def with_cell(name: str, row: int, col: int, value: str) -> None:
        rows = [ln.split("\t") for ln in lines]
        rows[row][col] = value
        text(name, "\n".join("\t".join(r) for r in rows) + "\n")

    with_cell("non_numeric.tsv", 5, 3, "abc")
    with_cell("negative.tsv", 5, 3, "-4")
    with_cell("nan.tsv", 5, 3, "NaN")
    with_cell("inf.tsv", 5, 3, "inf")
    with_cell("empty_cell.tsv", 5, 3, "")
    noninteger = base.astype(float)
    noninteger.iloc[:, :] = noninteger.to_numpy() + 0.25
    _write_tsv(noninteger, d / "non_integer.tsv")
    f["non_integer.tsv"] = d / "non_integer.tsv"

    # --- duplicates
    dup_genes = pd.concat([base, base.loc[["NOTCH2"]]])
    f["dup_genes.tsv"] = _write_tsv(dup_genes, d / "dup_genes.tsv")
    dup_samples = base.copy()
    dup_samples.columns = [*base.columns[:-1], base.columns[0]]
    f["dup_samples.tsv"] = _write_tsv(dup_samples, d / "dup_samples.tsv")

    # --- zeros
    zero_sample = base.copy()
    zero_sample.iloc[:, 0] = 0
    f["zero_sample.tsv"] = _write_tsv(zero_sample, d / "zero_sample.tsv")
    zero_gene = base.copy()
    zero_gene.loc["NOTCH2"] = 0
    f["zero_notch2.tsv"] = _write_tsv(zero_gene, d / "zero_notch2.tsv")
    all_zero = base * 0
    f["all_zero.tsv"] = _write_tsv(all_zero, d / "all_zero.tsv")

    # --- identifiers
    from dormsig.genes.tables import _read as read_gene_table

    ens = read_gene_table("human_ensembl.tsv.gz")
    f["no_notch1.tsv"] = _write_tsv(base.drop(index="NOTCH1"), d / "no_notch1.tsv")
    f["no_notch2.tsv"] = _write_tsv(base.drop(index="NOTCH2"), d / "no_notch2.tsv")
    mouse = base.rename(index=_mouse_case)
    f["mouse_symbols.tsv"] = _write_tsv(mouse, d / "mouse_symbols.tsv")
    to_ens = ens.drop_duplicates("symbol").set_index("symbol")["ensembl_id"]
    in_ens = base.loc[[g for g in base.index if g in to_ens.index]]
    ids = [str(to_ens[g]).split(".")[0] for g in in_ens.index]
    # every other ID carries a version suffix; NOTCH2 appears twice, with two different versions
    ids = [f"{i}.{k % 7 + 1}" if k % 2 else i for k, i in enumerate(ids)]
    n2 = str(to_ens["NOTCH2"]).split(".")[0]
    ids[list(in_ens.index).index("NOTCH2")] = f"{n2}.5"
    ens_tab = pd.concat([in_ens.set_axis(ids), in_ens.loc[["NOTCH2"]].set_axis([f"{n2}.99"])])
    f["ensembl_mixed_versions.tsv"] = _write_tsv(ens_tab, d / "ensembl_mixed_versions.tsv")
    nogenes = base.set_axis([f"feature_{k}" for k in range(len(base))])
    nogenes.index = [f"ENSG{k:011d}" for k in range(len(base))]  # valid-looking IDs of no gene
    f["unknown_ensembl.tsv"] = _write_tsv(nogenes, d / "unknown_ensembl.tsv")

    # --- sample sheets
    nomatch = sheet.copy()
    nomatch["sample"] = [f"XX{k}" for k in range(len(nomatch))]
    nomatch.to_csv(d / "sheet_nomatch.csv", index=False)
    f["sheet_nomatch.csv"] = d / "sheet_nomatch.csv"
    text("sheet_empty.csv", "")
    dup_sheet = pd.concat([sheet, sheet.iloc[[0]]])
    dup_sheet.to_csv(d / "sheet_dup.csv", index=False)
    f["sheet_dup.csv"] = d / "sheet_dup.csv"
    one_patient = sheet.assign(patient="P1")
    one_patient.to_csv(d / "sheet_one_patient.csv", index=False)
    f["sheet_one_patient.csv"] = d / "sheet_one_patient.csv"

    # --- signatures
    genes = list(base.index)
    text("sig_absent.gmt", "ABSENT_SET\tna\tNOTAGENE1\tNOTAGENE2\tNOTAGENE3\n")
    text("sig_mouse.gmt", "MOUSE_SET\tna\t" + "\t".join(_mouse_case(g) for g in genes[2:12]) + "\n")
    text("sig_human.gmt", "HUMAN_SET\tna\t" + "\t".join(genes[2:12]) + "\n")
    text("sig_malformed.gmt", "ONLY_A_NAME\n")
    text("sig_empty.gmt", "")
    text("sig_updown_same.gmt", f"BOTH_UP\tna\t{genes[2]}\t{genes[3]}\t{genes[4]}\n"
         f"BOTH_DN\tna\t{genes[2]}\t{genes[10]}\t{genes[11]}\n")

    # --- configs
    text("config_bad_schema.yaml", "datasets:\n  ctc:\n    input: good.tsv\n    colour: blue\n")
    text("config_not_yaml.yaml", "datasets: [unclosed\n  : :\n")
    text("config_missing_input.yaml", "datasets:\n  ctc:\n    input: does_not_exist.tsv\n")
    text("config_bad_contrast.yaml", "datasets:\n  ctc:\n    input: good.tsv\ncontrasts: [{high: NOTCH2}]\n")

    # --- h5ad inputs for groups / DE / reference
    f["good.h5ad"] = _h5ad(base, sheet, d / "good.h5ad")
    f["one_patient.h5ad"] = _h5ad(base, one_patient, d / "one_patient.h5ad")
    f["non_integer.h5ad"] = _h5ad(noninteger, sheet, d / "non_integer.h5ad")
    f["no_notch1.h5ad"] = _h5ad(base.drop(index="NOTCH1"), sheet, d / "no_notch1.h5ad")
    f["no_notch2.h5ad"] = _h5ad(base.drop(index="NOTCH2"), sheet, d / "no_notch2.h5ad")
    f["zero_notch2.h5ad"] = _h5ad(zero_gene, sheet, d / "zero_notch2.h5ad")

    # a reference built with another signature library version (edited in the stored record)
    f["ref_other_version.h5ad"] = _reference(f["good.h5ad"], d / "ref_other_version.h5ad", version="1999.1.0")

    # a regular file used as a directory (we may run as root: permissions do not stop us)
    text("a_regular_file", "not a directory\n")

    real_shapes(d, f, base, sheet)
    paths_and_options(d, f, base, sheet)

    for p in STATIC.iterdir():
        if p.is_file() and p.name != "README.md":
            shutil.copyfile(p, d / p.name)
            f[p.name] = d / p.name
    return f


# ============================================================================ real-world file shapes
DATE_GENES = ["DEC1", "MARC1", "MARC2", *[f"MARCH{k}" for k in range(1, 12)], *[f"SEPT{k}" for k in
              (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14)]]
MONTH = {"DEC": "Dec", "MARCH": "Mar", "MARC": "Mar", "SEPT": "Sep"}


def excel_date(symbol: str) -> str:
    """How Excel (US locale, default d-mmm display) shows a gene symbol it took for a date: MARCH1 -> 1-Mar."""
    m = re.match(r"^(MARCH|MARC|SEPT|DEC)(\d+)$", symbol)
    return f"{int(m.group(2))}-{MONTH[m.group(1)]}" if m else symbol


def _excel_number(v: int) -> str:
    """Excel's "#,##0" display, quoted as Excel quotes a field holding the separator."""
    return f'"{v:,}"' if abs(v) >= 1000 else str(v)


def _full_counts() -> pd.DataFrame:
    from dormsig.data import example_path

    full = pd.read_csv(example_path("aceto2014_ctc/GSE51827_data.txt.gz"), sep="\t", index_col=0)
    return full.round().astype(np.int64)


def _mouse_ensembl(base: pd.DataFrame) -> pd.DataFrame:
    """The CTC counts with each gene renamed to its mouse ortholog's Ensembl ID (HCOP 1:1 best, Ensembl 100)."""
    from dormsig.genes.tables import mouse_genes, orthologs

    orth = orthologs().sort_values("n_support", ascending=False).drop_duplicates("human_symbol")
    orth = orth.drop_duplicates("mouse_symbol").set_index("human_symbol")["mouse_symbol"]
    ens = mouse_genes().drop_duplicates("symbol").set_index("symbol")["ensembl_id"]
    ens = ens[ens.notna() & ens.astype(str).str.startswith("ENSMUSG")]
    rows = [(g, ens[orth[g]]) for g in base.index if g in orth.index and orth[g] in ens.index]
    out = base.loc[[g for g, _ in rows]]
    out.index = [e for _, e in rows]
    return out[~out.index.duplicated()]


def _human_ensembl(base: pd.DataFrame) -> pd.DataFrame:
    from dormsig.genes.tables import _read as read_gene_table

    to_ens = read_gene_table("human_ensembl.tsv.gz").drop_duplicates("symbol").set_index("symbol")["ensembl_id"]
    out = base.loc[[g for g in base.index if g in to_ens.index]]
    out.index = [str(to_ens[g]).split(".")[0] for g in out.index]
    return out[~out.index.duplicated()]


def real_shapes(d: Path, f: dict[str, Path], base: pd.DataFrame, sheet: pd.DataFrame) -> None:
    """Files as spreadsheets, R, pandas and counting tools really write them, from the CTC counts."""

    def put(name: str, content: str | bytes) -> None:
        p = d / name
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        f[name] = p

    samples = list(base.columns)
    genes = list(base.index)
    # the sample with most counts >= 1000: the column a spreadsheet formats with thousands separators
    wide = str((base >= 1000).sum().idxmax())

    # --- Excel "CSV UTF-8": BOM, CRLF, two empty trailing columns, one column formatted #,##0
    rows = ["gene," + ",".join(samples) + ",,"]
    for g in genes:
        rows.append(g + "," + ",".join(_excel_number(int(v)) if s == wide else str(int(v))
                                       for s, v in base.loc[g].items()) + ",,")
    put("excel_thousands.csv", "\ufeff" + "\r\n".join(rows) + "\r\n")
    # every column formatted (the whole range selected before choosing the number format)
    rows = ["gene," + ",".join(samples)] + [g + "," + ",".join(_excel_number(int(v)) for v in base.loc[g])
                                            for g in genes]
    put("excel_thousands_all.csv", "\ufeff" + "\r\n".join(rows) + "\r\n")
    # the same, exported as tab-separated text: "12,345" without quotes
    rows = ["gene\t" + "\t".join(samples)] + [g + "\t" + "\t".join(_excel_number(int(v)).strip('"')
                                                                   for v in base.loc[g]) for g in genes]
    put("excel_thousands.txt", "\r\n".join(rows) + "\r\n")
    # the same tab-separated export, but one value below 1000 is written plainly as 1234: is "1,500" 1500 or 1.5?
    amb = base.copy()
    rows = ["gene\t" + "\t".join(samples)]
    for k, g in enumerate(genes):
        vals = [_excel_number(int(v)).strip('"') for v in amb.loc[g]]
        if k == 3:
            vals[samples.index(wide)] = "1234"
        rows.append(g + "\t" + "\t".join(vals))
    put("ambiguous_thousands.txt", "\n".join(rows) + "\n")
    # European Excel: ';' separator, decimal comma, '.' thousands separator (estimated counts + 0.25)
    est = base.astype(float) + 0.25

    def eu(v: float) -> str:
        whole, frac = f"{v:.2f}".split(".")
        return f"{int(whole):,}".replace(",", ".") + "," + frac

    rows = ["gene;" + ";".join(samples)] + [g + ";" + ";".join(eu(v) for v in est.loc[g]) for g in genes]
    put("excel_european.csv", "\ufeff" + "\r\n".join(rows) + "\r\n")
    # two conventions in one file: decimal commas in one column, US thousands in another
    rows = ["gene\t" + "\t".join(samples[:3])]
    for g in genes:
        v = [int(x) for x in base.loc[g, samples[:3]]]
        rows.append(f"{g}\t{v[0]},5\t{v[1]:,}\t{v[2]}")
    rows[5] = rows[5].split("\t")[0] + "\t1,5\t1,234,567\t3"
    put("two_conventions.txt", "\n".join(rows) + "\n")

    # --- R write.csv(df) with the default row.names = TRUE: "", then 1..n before the gene column
    quoted = ",".join(f'"{s}"' for s in samples)
    rows = [f'"","gene",{quoted}'] + [f'"{k}","{g}",' + ",".join(str(int(v)) for v in base.loc[g])
                                      for k, g in enumerate(genes, start=1)]
    put("r_write_csv.csv", "\n".join(rows) + "\n")
    # R write.csv of a matrix whose gene names were lost: row numbers are the only identifiers
    rows = ['""' + "," + quoted] + [f'"{k}",' + ",".join(str(int(v)) for v in base.loc[g])
                                    for k, g in enumerate(genes, start=1)]
    put("r_rownumbers_only.csv", "\n".join(rows) + "\n")
    # pandas DataFrame.to_csv() of a frame with a gene column and the default RangeIndex
    df = base.reset_index().rename(columns={"index": "gene"})
    df.to_csv(d / "pandas_index.csv")
    f["pandas_index.csv"] = d / "pandas_index.csv"

    # --- htseq-count: one file per sample (gene<TAB>count, no header) ending with its five summary lines
    htseq = d / "htseq"
    htseq.mkdir(exist_ok=True)
    special = ["__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned", "__alignment_not_unique"]
    for k, s in enumerate(samples[:4]):
        lines = [f"{g}\t{int(v)}" for g, v in base[s].items()]
        lines += [f"{name}\t{(k + 1) * 1000 + j * 17}" for j, name in enumerate(special)]
        (htseq / f"{s}.htseq.counts").write_text("\n".join(lines) + "\n")
    f["htseq"] = htseq
    f["htseq_one.counts"] = htseq / f"{samples[0]}.htseq.counts"
    # several htseq outputs pasted into one table with a header (the special rows come along)
    merged = base[samples[:4]].copy()
    for j, name in enumerate(special):
        merged.loc[name] = [(k + 1) * 1000 + j * 17 for k in range(4)]
    merged.to_csv(d / "htseq_merged.tsv", sep="\t", index_label="gene_id")
    f["htseq_merged.tsv"] = d / "htseq_merged.tsv"

    # --- RSEM per-transcript output, and a transcript-level table
    tx = [("ENST00000456328", "ENSG00000223972", 1657, 1482.0), ("ENST00000269305", "ENSG00000141510", 2579, 2404.0),
          ("ENST00000413465", "ENSG00000141510", 1024, 849.0), ("ENST00000229239", "ENSG00000111640", 1875, 1700.0),
          ("ENST00000396856", "ENSG00000111640", 1421, 1246.0), ("ENST00000371953", "ENSG00000171862", 9027, 8852.0)]
    counts = [12.0, 250.5, 30.25, 8000.0, 523.0, 77.0]
    lines = ["transcript_id\tgene_id\tlength\teffective_length\texpected_count\tTPM\tFPKM\tIsoPct"]
    total = sum(c / e for c, (_, _, _, e) in zip(counts, tx, strict=True))
    for (t, g, n, e), c in zip(tx, counts, strict=True):
        tpm = c / e / total * 1e6
        lines.append(f"{t}\t{g}\t{n}\t{e:.2f}\t{c:.2f}\t{tpm:.2f}\t{tpm * 0.9:.2f}\t{100.0:.2f}")
    put("S1.isoforms.results", "\n".join(lines) + "\n")
    put("S1_transcripts.tsv", "\n".join(lines) + "\n")  # the same file under a neutral name
    rng = np.random.default_rng(7)
    tx_counts = pd.DataFrame(rng.poisson(200, size=(len(tx), 6)), index=[t for t, *_ in tx],
                             columns=samples[:6])
    tx_counts.to_csv(d / "transcripts_x_samples.tsv", sep="\t", index_label="transcript_id")
    f["transcripts_x_samples.tsv"] = d / "transcripts_x_samples.tsv"
    put("tx2gene.tsv", "TXNAME\tGENEID\n" + "".join(f"{t}\t{g}\n" for t, g, *_ in tx))

    # --- empty column names
    hdr = ["gene", *samples]
    hdr[4] = ""
    rows = ["\t".join(hdr)] + ["\t".join([g, *map(str, base.loc[g].astype(int))]) for g in genes]
    put("unnamed_sample_column.tsv", "\n".join(rows) + "\n")

    # --- Excel date-mangled symbols: the 2014 symbols MARCH1..11, MARC1/2, SEPT1..14, DEC1 as Excel shows them
    full = _full_counts()
    dated = pd.concat([base, full.loc[[g for g in DATE_GENES if g in full.index and g not in base.index]]])
    out = dated.copy()
    out.index = [excel_date(g) for g in dated.index]
    rows = ["gene," + ",".join(samples)] + [f"{g}," + ",".join(map(str, r)) for g, r in
                                           zip(out.index, dated.to_numpy(), strict=True)]
    put("excel_dates.csv", "\r\n".join(rows) + "\r\n")
    dated.to_csv(d / "dates_truth.tsv", sep="\t", index_label="gene")  # the same table before Excel
    f["dates_truth.tsv"] = d / "dates_truth.tsv"

    # --- species: mouse Ensembl IDs (CTC counts on mouse orthologs), a human+mouse xenograft table
    mouse = _mouse_ensembl(base)
    mouse.to_csv(d / "mouse_ensembl.tsv", sep="\t", index_label="gene_id")
    f["mouse_ensembl.tsv"] = d / "mouse_ensembl.tsv"
    human = _human_ensembl(base)
    pd.concat([human, mouse]).to_csv(d / "xenograft_ensembl.tsv", sep="\t", index_label="gene_id")
    f["xenograft_ensembl.tsv"] = d / "xenograft_ensembl.tsv"
    mixed_sym = pd.concat([base.iloc[: len(base) // 2], base.iloc[len(base) // 2:].rename(index=_mouse_case)])
    mixed_sym = mixed_sym[~mixed_sym.index.duplicated()]
    mixed_sym.to_csv(d / "xenograft_symbols.tsv", sep="\t", index_label="gene")
    f["xenograft_symbols.tsv"] = d / "xenograft_symbols.tsv"


# ============================================================================ paths, options, results
def paths_and_options(d: Path, f: dict[str, Path], base: pd.DataFrame, sheet: pd.DataFrame) -> None:
    """Inputs for the path, option, result and leftover cases."""
    import anndata as ad

    from dormsig.io import write_h5ad

    def put(name: str, content: str | bytes) -> None:
        p = d / name
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        f[name] = p

    # a 10x v3 directory (from the I/O fixtures) for outputs written into it
    tenx = d / "tenx"
    if tenx.exists():
        shutil.rmtree(tenx)
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "io" / "tenx_v3", tenx)
    f["tenx"] = tenx
    for name in ("barcodes.tsv.gz", "features.tsv.gz", "matrix.mtx.gz"):
        f[f"tenx/{name}"] = tenx / name
    # a directory where a file is expected
    (d / "a_directory").mkdir(exist_ok=True)
    f["a_directory"] = d / "a_directory"
    put("binary.bin", bytes(range(256)) * 4)
    put("latin1.yaml", "datasets:\n  ctc:\n    input: good.tsv\n# Zürich, Genève\n".encode("latin-1"))
    put("list.yaml", "- datasets\n- contrasts\n")
    # a provenance sidecar that is a JSON list, and one in Latin-1
    put("out_list.tsv", "sample\tx\nA\t1\n")
    put("out_list.tsv.provenance.json", "[1, 2, 3]\n")
    put("out_latin1.tsv", "sample\tx\nA\t1\n")
    put("out_latin1.tsv.provenance.json", '{"inputs": {"/tmp/Zürich.tsv": "00"}}'.encode("latin-1"))
    # sample sheets: duplicated column names; a trailing empty column (Excel) that must be dropped
    put("sheet_dup_columns.csv", "sample,patient,patient\n" + "".join(
        f"{s},P{k % 3},Q{k % 2}\n" for k, s in enumerate(base.columns)))
    put("sheet_excel.csv", "\ufeff" + "sample,patient,type,,\r\n" + "".join(
        f"{r.sample},{r.patient},{r.type},,\r\n" for r in sheet.itertuples()))
    # a GMT that scoring can use, written by the user (the file --out must never replace)
    genes = list(base.index)
    put("user_sets.gmt", "USER_SET_A\tna\t" + "\t".join(genes[2:14]) + "\nUSER_SET_B\tna\t" + "\t".join(
        genes[20:32]) + "\n")
    # an .h5ad with duplicated cell names (read as is, backed or not)
    good = ad.read_h5ad(f["good.h5ad"])
    dup = good.copy()
    names = list(dup.obs_names)
    names[1] = names[0]
    dup.obs_names = names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_h5ad(dup, d / "dup_cells.h5ad")
    f["dup_cells.h5ad"] = d / "dup_cells.h5ad"
    # one sample alone, for cohort-dependent methods
    write_h5ad(good[:1].copy(), d / "one_sample.h5ad")
    f["one_sample.h5ad"] = d / "one_sample.h5ad"
    write_h5ad(good[:2].copy(), d / "two_samples.h5ad")
    f["two_samples.h5ad"] = d / "two_samples.h5ad"
    # all-zero counts as an .h5ad (for references)
    f["all_zero.h5ad"] = _h5ad(base * 0, sheet, d / "all_zero.h5ad")
    # a reference built before references were checked: every sample called dormant
    ref = ad.read_h5ad(f["ref_other_version.h5ad"])
    ref.uns["dormsig"]["score"]["library_version"] = _library_version()
    ref.obs["dormsig_call"] = pd.Categorical(["dormant"] * ref.n_obs, categories=["not_dormant", "dormant"])
    write_h5ad(ref, d / "ref_all_dormant.h5ad")
    f["ref_all_dormant.h5ad"] = d / "ref_all_dormant.h5ad"
    # a 10x .h5 whose barcodes are fewer than the matrix columns, and the same file named .loom
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from io_fixtures import write_10x_h5_v3

    counts = base.iloc[:50, :6].to_numpy()
    ids = [f"ENSG{k:011d}" for k in range(50)]
    write_10x_h5_v3(d / "tenx_short_barcodes.h5", counts, ids, list(base.index[:50]), ["Gene Expression"] * 50,
                    [f"AAACCTGAGAAACCA{k}-1" for k in range(5)])
    f["tenx_short_barcodes.h5"] = d / "tenx_short_barcodes.h5"
    write_10x_h5_v3(d / "really_10x.loom", counts, ids, list(base.index[:50]), ["Gene Expression"] * 50,
                    [f"AAACCTGAGAAACCA{k}-1" for k in range(6)])
    f["really_10x.loom"] = d / "really_10x.loom"
    # DE and enrichment tables as the commands write them (for report), and a count table in their place
    de = pd.DataFrame({"gene": genes[:60], "baseMean": np.linspace(10, 600, 60), "log2FoldChange": np.linspace(-2, 2, 60),
                       "lfcSE": 0.3, "stat": np.linspace(-6, 6, 60), "pvalue": np.linspace(1e-6, 0.9, 60)})
    de["padj"] = np.minimum(de["pvalue"] * 3, 1.0)
    de.to_csv(d / "de.tsv", sep="\t", index=False)
    f["de.tsv"] = d / "de.tsv"
    # configs: a run whose scoring fails after the data were staged (no gene of the set in the data)
    # (the contrast names a gene the data lack: the run fails after the data were read and staged)
    put("config_fails_late.yaml", "datasets:\n  ctc:\n    input: good.tsv\n    sample_sheet: samples.csv\n"
        "contrasts:\n  - {high: NOTAGENE, versus: NOTCH1}\n")
    # dataset a completes (its contrast is skipped: no such level) and b fails: nothing of a may stay
    put("config_two_datasets.yaml", "datasets:\n  a:\n    input: good.tsv\n    sample_sheet: samples.csv\n"
        "    group_column: type\n  b:\n    input: no_notch1.tsv\ncontrasts:\n  - {high: NOTCH2, versus: NOTCH1}\n")


    # --- outputs that would land on inputs through a sidecar, a figures directory, a symlink, a run directory
    sheet.to_csv(d / "sheet_out.provenance.json", index=False)  # a sample sheet, oddly named
    f["sheet_out.provenance.json"] = d / "sheet_out.provenance.json"
    f["sheet_out"] = d / "sheet_out"  # not created: `--out` whose sidecar is the file above
    figs = d / "r_figures"
    figs.mkdir(exist_ok=True)
    shutil.copyfile(f["good.h5ad"], figs / "good.h5ad")
    f["r_figures/good.h5ad"] = figs / "good.h5ad"
    f["r"] = d / "r"  # not created: `--out {f:r}.html` puts the report's figures in r_figures/
    link = d / "good_link.tsv"
    if not link.exists():
        link.symlink_to(f["good.tsv"])
    f["good_link.tsv"] = link
    put("config_tenx.yaml", "datasets:\n  pbmc:\n    input: tenx\ncontrasts:\n  - {high: NOTCH2, versus: NOTCH1}\n")
    prev = d / "prev" / "ctc"
    prev.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(f["good.tsv"], prev / "scores.tsv")  # an earlier run's output, now used as the input
    f["prev"] = d / "prev"
    f["prev/ctc/scores.tsv"] = prev / "scores.tsv"
    anonymous = base.copy()
    anonymous.index = [f"feature_{k:04d}" for k in range(len(base))]  # no gene of either species
    anonymous.to_csv(d / "no_species.tsv", sep="\t", index_label="gene")
    f["no_species.tsv"] = d / "no_species.tsv"
    put("index_unknown_set.yaml", "name: my_index\nversion: '1'\ncomponents:\n  - {set: NO_SUCH_SET, sign: 1, weight: 1.0}\n")
    put("config_prev.yaml", "datasets:\n  ctc:\n    input: prev/ctc/scores.tsv\n")


def _library_version() -> str:
    from dormsig.signatures import load_library

    return load_library().version
