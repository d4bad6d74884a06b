"""Generate the small bad-input files of the corpus from the bundled Aceto 2014 CTC example.

``generate(directory)`` writes every generated file into ``directory`` and returns a dict
``{name: path}``. Static, byte-exact files (a truncated ``.gz``, a truncated ``.h5ad``) live next
to this module in ``static/`` and are added to the dict too. Nothing here reads ``/work/shared``.
"""

from __future__ import annotations

import gzip
import shutil
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

    for p in STATIC.iterdir():
        if p.is_file() and p.name != "README.md":
            shutil.copyfile(p, d / p.name)
            f[p.name] = d / p.name
    return f
