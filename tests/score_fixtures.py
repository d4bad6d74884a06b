"""Shared real data of the scoring tests: the Hallmark subset and the oligodendroglioma cells (tests/data/score)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SCORE_DATA = Path(__file__).parent / "data" / "score"


def hallmark_subset() -> dict[str, list[str]]:
    """The Hallmark v7.0 subset GMT as {set: genes}."""
    out = {}
    for line in (SCORE_DATA / "hallmark_v7.0_subset.gmt").read_text().splitlines():
        f = line.split("\t")
        out[f[0]] = [g for g in f[2:] if g]
    return out


def oligo_frame() -> pd.DataFrame:
    """184 oligodendroglioma cells x 4,000 genes (genes as rows), as stored."""
    return pd.read_csv(SCORE_DATA / "oligodendroglioma_tirosh2016_4000genes.tsv.gz", sep="\t", index_col=0)
