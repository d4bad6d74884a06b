"""Lazy loaders for the identifier tables shipped in ``dormsig/genes/data/``.

The tables are built by ``scripts/build_gene_tables.py`` (sources, releases and licences in
``dormsig/genes/data/README.md``). Each loader reads its gzip TSV once per process.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data"

TABLES = (
    "human_genes.tsv.gz",
    "human_ensembl.tsv.gz",
    "human_aliases.tsv.gz",
    "mouse_genes.tsv.gz",
    "mouse_entrez.tsv.gz",
    "mouse_aliases.tsv.gz",
    "orthologs_human_mouse.tsv.gz",
)


def _read(name: str) -> pd.DataFrame:
    # keep_default_na=False: gene symbols such as "NA" or "NULL" must stay strings.
    return pd.read_csv(DATA_DIR / name, sep="\t", dtype=str, keep_default_na=False, na_values=[])


@lru_cache(maxsize=1)
def manifest() -> dict:
    """The build manifest: source releases, row counts and sha256 of every table."""
    return json.loads((DATA_DIR / "manifest.json").read_text())


def table_versions() -> dict:
    """Compact description of the tables in use, for provenance records."""
    man = manifest()
    return {
        "version": man["version"],
        "sources": man["sources"],
        "sha256": {name: info["sha256"][:16] for name, info in man["tables"].items()},
    }


@lru_cache(maxsize=1)
def human_genes() -> pd.DataFrame:
    """entrez_id, symbol (current), ncbi_symbol (NCBI 2022), gene_type."""
    return _read("human_genes.tsv.gz")


@lru_cache(maxsize=1)
def human_ensembl() -> pd.DataFrame:
    """ensembl_id, symbol, source, official (one row per pair; several rows = ambiguous ID).

    ``official == "0"`` marks Ensembl clone-based gene names (``RP11-34P13.3``) kept for IDs
    that have no HGNC/NCBI symbol.
    """
    return _read("human_ensembl.tsv.gz")


@lru_cache(maxsize=1)
def human_aliases() -> pd.DataFrame:
    """alias, symbol, kind (previous/alias/seed_alias/curated_alias), source."""
    return _read("human_aliases.tsv.gz")


@lru_cache(maxsize=1)
def mouse_genes() -> pd.DataFrame:
    """ensembl_id (may be empty), symbol, source: MGI symbols from HCOP, then Ensembl 100 (GRCm38)."""
    return _read("mouse_genes.tsv.gz")


@lru_cache(maxsize=1)
def mouse_entrez() -> pd.DataFrame:
    """entrez_id, symbol: mouse NCBI Gene IDs from Ensembl 100 (GRCm38)."""
    return _read("mouse_entrez.tsv.gz")


@lru_cache(maxsize=1)
def mouse_aliases() -> pd.DataFrame:
    """alias, symbol, kind, source: curated mouse literature aliases."""
    return _read("mouse_aliases.tsv.gz")


@lru_cache(maxsize=1)
def orthologs() -> pd.DataFrame:
    """human_symbol, mouse_symbol, n_support (number of HCOP sources, int)."""
    df = _read("orthologs_human_mouse.tsv.gz")
    df["n_support"] = df["n_support"].astype(int)
    return df


@lru_cache(maxsize=2)
def official(species: str) -> frozenset[str]:
    """Current official symbols of ``"human"`` (HGNC/NCBI) or ``"mouse"`` (MGI) as shipped."""
    genes = human_genes() if species == "human" else mouse_genes()
    return frozenset(genes["symbol"])
