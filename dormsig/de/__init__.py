"""Differential expression: groups, pseudobulk, the pydeseq2 driver and enrichment."""

from __future__ import annotations

from dormsig.de.contrast import Contrast
from dormsig.de.deseq import deseq
from dormsig.de.enrich import enrich, read_de_table
from dormsig.de.groups import define_groups
from dormsig.de.pseudobulk import pseudobulk
from dormsig.de.run import run_de
from dormsig.de.wilcoxon import rank_genes_wilcoxon

__all__ = ["Contrast", "define_groups", "pseudobulk", "deseq", "run_de", "enrich", "read_de_table", "rank_genes_wilcoxon"]
