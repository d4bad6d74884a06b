"""Gene-identifier harmonisation: detection, symbol/alias/Ensembl/Entrez mapping, orthologs.

Tables shipped in ``dormsig/genes/data/`` (built by ``scripts/build_gene_tables.py``):
NCBI Gene via org.Hs.eg.db 3.16.0 (2022-09-12) updated to HGNC January-2024 symbols through
HCOP, HCOP human-mouse orthologs (January 2024), and the signature curation's aliases.
"""

from __future__ import annotations

from dormsig.genes.detect import detect_id_type, detect_species, id_type_counts
from dormsig.genes.harmonise import harmonise
from dormsig.genes.orthologs import to_species
from dormsig.genes.resolve import HOWS, official_symbols, resolve
from dormsig.genes.tables import table_versions

__all__ = [
    "HOWS",
    "detect_id_type",
    "detect_species",
    "harmonise",
    "id_type_counts",
    "official_symbols",
    "resolve",
    "table_versions",
    "to_species",
]
