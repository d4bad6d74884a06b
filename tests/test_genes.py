"""Tests for dormsig.genes: detection, resolution, orthologs and AnnData harmonisation.

References: NCBI Gene facts (org.Hs.eg.db 3.16.0) and HGNC/MGI symbols written out by hand, the
signature curation's independent ortholog table (tests/data/genes/curation_orthologs.tsv.gz),
hand-computed count sums, and real data (airway, Aceto 2014 CTC gene list) vendored in
tests/data/genes/ (see README.md there).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dormsig.errors import GeneIdError
from dormsig.genes import (
    detect_id_type,
    detect_species,
    harmonise,
    official_symbols,
    resolve,
    tables,
    to_species,
)

DATA = Path(__file__).parent / "data" / "genes"


def one(name: str, species: str = "human", **kw) -> tuple[str | None, str]:
    row = resolve([name], species, **kw).iloc[0]
    return row["symbol"], row["how"]


# --- resolve: aliases ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "symbol"),
    [("TIE2", "TEK"), ("PERK", "EIF2AK3"), ("CHOP", "DDIT3"), ("GADD153", "DDIT3"), ("NB1", "CD177"), ("CD184", "CXCR4")],
)
def test_seed_aliases_are_unique_ncbi_aliases(alias, symbol):
    # Each is an NCBI alias of exactly one gene, so it resolves in data mode too.
    aliases = tables.human_aliases()
    ncbi = aliases[(aliases["alias"] == alias) & (aliases["source"] == "ncbi")]
    assert list(ncbi["symbol"]) == [symbol]
    assert one(alias) == (symbol, "alias")
    assert one(alias, use_curated_aliases=True) == (symbol, "alias")


def test_p27_is_ambiguous_and_never_cdkn1b_in_data_mode():
    row = resolve(["p27"]).iloc[0]
    assert row["symbol"] is None and row["how"] == "ambiguous"
    assert row["candidates"].split(";") == ["DCTN6", "H3P23", "PSMD9", "TMED7", "ZNRD2"]
    assert "CDKN1B" not in row["candidates"]
    # Case-insensitively p27 is also IFI27's alias "P27": six genes, still not CDKN1B.
    ncbi = tables.human_aliases().query("source == 'ncbi'")
    ci = {s for a, s in zip(ncbi["alias"], ncbi["symbol"], strict=True) if a.upper() == "P27"}
    assert ci == {"DCTN6", "H3P23", "PSMD9", "TMED7", "ZNRD2", "IFI27"}
    # Reading signature text, the curated literature alias p27 -> CDKN1B applies.
    assert one("p27", use_curated_aliases=True) == ("CDKN1B", "curated_alias")


def test_curated_aliases_break_ncbi_ties_only_in_curated_mode():
    # NCBI: BIP is an alias of GDF10 and HSPA5; KIP1 of CDKN1B and CIB1.
    assert resolve(["BIP"]).loc[0, "candidates"] == "GDF10;HSPA5"
    assert one("BIP") == (None, "ambiguous")
    assert one("BIP", use_curated_aliases=True) == ("HSPA5", "curated_alias")
    assert one("KIP1", use_curated_aliases=True) == ("CDKN1B", "curated_alias")
    # Protein names unknown to NCBI resolve only from the curation.
    assert one("Ki-67") == (None, "unmapped")
    assert one("Ki-67", use_curated_aliases=True) == ("MKI67", "curated_alias")
    # 'eIF2a' is the protein EIF2S1 (curator's note), not the EIF2A gene; data mode reads it as EIF2A.
    assert one("eIF2a", use_curated_aliases=True) == ("EIF2S1", "curated_alias")
    assert one("eIF2a") == ("EIF2A", "official")


def test_official_symbol_never_maps_away():
    aliases = tables.human_aliases()
    # ASL (argininosuccinate lyase) is an NCBI alias of ADSL; DAO is an NCBI alias of AOC1.
    for sym, other in (("ASL", "ADSL"), ("DAO", "AOC1")):
        assert ((aliases["alias"] == sym) & (aliases["symbol"] == other)).any()
        assert one(sym) == (sym, "official")
        assert one(sym, use_curated_aliases=True) == (sym, "official")


@pytest.mark.parametrize("species", ["human", "mouse"])
def test_every_official_symbol_resolves_to_itself(species):
    symbols = sorted(official_symbols(species))
    assert len(symbols) > (70000 if species == "human" else 50000)
    res = resolve(symbols, species, id_type="symbol", use_curated_aliases=True)
    assert (res["symbol"] == res["query"]).all()
    assert (res["how"] == "official").all()


def test_previous_symbols_both_ncbi_2022_and_hgnc_2024():
    # NCBI 2022 calls the gene SLC9A3R1, HGNC 2024 NHERF1: both resolve to the current NHERF1.
    assert one("NHERF1") == ("NHERF1", "official")
    assert one("SLC9A3R1") == ("NHERF1", "previous")
    assert one("COX1") == ("MT-CO1", "previous")
    # HGNC previous symbols beat NCBI synonyms: AIM1 was renamed CRYBG1 (NCBI also lists AURKB, SLC45A2).
    assert one("AIM1") == ("CRYBG1", "previous")
    assert one("HN1") == ("JPT1", "previous")
    assert one("IL8") == ("CXCL8", "previous")


def test_case_insensitive_only_when_unique():
    assert one("tp53") == ("TP53", "official")
    assert one("Notch2") == ("NOTCH2", "official")
    assert one("CD34", "mouse") == ("Cd34", "official")
    assert one("BiP") == (None, "ambiguous")  # BIP: GDF10 or HSPA5


def test_resolve_keeps_order_duplicates_and_unknowns():
    df = resolve(["TP53", "nonsense_gene", "TP53", "", "ENSG00000141510"])
    assert list(df.columns) == ["query", "symbol", "how", "candidates", "official"]
    assert isinstance(df.index, pd.RangeIndex)
    assert list(df["query"]) == ["TP53", "nonsense_gene", "TP53", "", "ENSG00000141510"]
    assert list(df["symbol"]) == ["TP53", None, "TP53", None, "TP53"]
    assert list(df["how"]) == ["official", "unmapped", "official", "unmapped", "ensembl"]
    assert resolve([]).empty
    with pytest.raises(GeneIdError):
        resolve(["TP53"], "rat")


# --- resolve: Ensembl / Entrez ----------------------------------------------------------------


def test_ensembl_and_entrez():
    df = resolve(["ENSG00000141510.16", "ENSG00000141510", "ENSG00000002586.20_PAR_Y", "7157", "7010", "ENSG00000000000"])
    assert list(df["symbol"]) == ["TP53", "TP53", "CD99", "TP53", "TEK", None]
    assert list(df["how"]) == ["ensembl", "ensembl", "ensembl", "entrez", "entrez", "unmapped"]
    # A mouse ID is not a human gene.
    assert one("ENSMUSG00000016494") == (None, "unmapped")


def test_ensembl_ids_without_official_symbol_keep_ensembl_name():
    # ENSG00000227232 is the WASH7P pseudogene; ENSG00000238009 has only the clone name RP11-34P13.7 (GRCh37).
    df = resolve(["ENSG00000227232", "ENSG00000238009"])
    assert df.loc[0, "symbol"] == "WASH7P" and bool(df.loc[0, "official"])
    assert df.loc[1, "symbol"] is not None and not bool(df.loc[1, "official"])


def test_mouse_symbols_ensembl_entrez():
    df = resolve(["Cd34", "ENSMUSG00000016494.7", "12490", "Tek", "Cxcr4", "Gm12345"], "mouse")
    assert list(df["symbol"]) == ["Cd34", "Cd34", "Cd34", "Tek", "Cxcr4", "Gm12345"]
    assert list(df["how"]) == ["official", "ensembl", "entrez", "official", "official", "official"]
    assert one("Chop", "mouse") == (None, "unmapped")
    assert one("Chop", "mouse", use_curated_aliases=True) == ("Ddit3", "curated_alias")


# --- detection ------------------------------------------------------------------------------------


def test_detect_id_type():
    assert detect_id_type(["ENSG00000141510.16", "ENSG00000000003"]) == "ensembl"
    assert detect_id_type(["ENSMUSG00000016494"]) == "ensembl"
    assert detect_id_type(["7157", "7010"]) == "entrez"
    assert detect_id_type(["TP53", "C1orf112"]) == "symbol"
    with pytest.warns(UserWarning, match="mixed"):
        assert detect_id_type(["ENSG00000141510", "ENSG00000000003", "TP53"]) == "ensembl"
    with pytest.raises(GeneIdError):
        detect_id_type([])


def test_detect_species():
    assert detect_species(["ENSG00000141510.16", "ENSG00000000003"]) == "human"
    assert detect_species(["ENSMUSG00000016494", "ENSMUSG00000000001"]) == "mouse"
    assert detect_species(["CD34", "TEK", "CXCR4", "NOTCH2"]) == "human"
    assert detect_species(["Cd34", "Tek", "Cxcr4", "Notch2"]) == "mouse"
    assert detect_species(["7157", "7010", "1956"]) == "human"
    assert detect_species(["12490", "21687", "12767"]) == "mouse"
    with pytest.raises(GeneIdError, match="species"):
        detect_species(["not_a_gene_1", "not_a_gene_2"])


def test_official_symbols_cover_the_curated_library():
    cur = pd.read_csv(DATA / "curation_orthologs.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    human = set(cur["human_symbol"]) - {"NA"}  # "NA" is the curation's missing value
    mouse = set(cur["mouse_symbol"]) - {"NA"}
    assert len(human) == 967  # PROVENANCE.md: 967 distinct human symbols
    assert human <= official_symbols("human")
    assert mouse <= official_symbols("mouse")
    assert "SLC9A3R1" not in official_symbols("human")


# --- orthologs ------------------------------------------------------------------------------------


def test_to_species_known_pairs():
    hm = to_species(["CD34", "TEK", "CXCR4", "NHERF1", "SLC9A3R1", "TIE2", "no_such_gene"], "human", "mouse")
    assert list(hm["symbol"]) == ["Cd34", "Tek", "Cxcr4", "Nherf1", "Nherf1", "Tek", None]
    assert list(hm["how"])[:2] == ["one2one", "one2many"]
    assert hm.loc[1, "candidates"].split(";")[:2] == ["Tek", "Tie1"]  # one-to-many reported, best first
    assert hm.loc[6, "how"] == "none" and hm.loc[6, "n_support"] == 0
    assert (hm["n_support"][:6] >= 10).all()
    mh = to_species(["Cd34", "Tek", "Cxcr4", "Nherf1"], "mouse", "human")
    assert list(mh["symbol"]) == ["CD34", "TEK", "CXCR4", "NHERF1"]
    with pytest.raises(GeneIdError):
        to_species(["CD34"], "human", "human")


def test_to_species_agrees_with_curated_ortholog_table():
    cur = pd.read_csv(DATA / "curation_orthologs.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    cur = cur[(cur["human_symbol"] != "NA") & (cur["mouse_symbol"] != "NA")]
    res = to_species(list(cur["human_symbol"]), "human", "mouse")
    differ = sorted(set(cur["human_symbol"][res["symbol"].to_numpy() != cur["mouse_symbol"].to_numpy()]))
    # The curator chose the same-named gene where HCOP's best-supported prediction is a paralogue.
    assert differ == ["IFIT1", "PNP"]
    assert len(cur) == 959


# --- harmonise --------------------------------------------------------------------------------------


def _toy(sparse: bool = False) -> ad.AnnData:
    names = ["SLC9A3R1", "NHERF1", "TIE2", "TEK", "p27", "FOO_UNKNOWN", "CD34"]
    counts = np.array(
        [[1, 2, 3, 4, 5, 6, 7], [10, 20, 30, 40, 50, 60, 70], [0, 0, 1, 0, 2, 0, 3]], dtype=np.int64
    )
    adata = ad.AnnData(
        X=counts.astype(np.float32),
        obs=pd.DataFrame(index=["s1", "s2", "s3"]),
        var=pd.DataFrame({"note": list("abcdefg")}, index=names),
    )
    adata.layers["counts"] = sp.csr_matrix(counts) if sparse else counts
    return adata


@pytest.mark.parametrize("sparse", [False, True])
def test_harmonise_sums_duplicates(sparse):
    adata = _toy(sparse)
    assert harmonise(adata) is None
    assert list(adata.var_names) == ["NHERF1", "TEK", "p27", "FOO_UNKNOWN", "CD34"]
    counts = adata.layers["counts"]
    assert sp.issparse(counts) == sparse
    assert counts.dtype == np.int64
    dense = counts.toarray() if sparse else counts
    expected = np.array([[3, 7, 5, 6, 7], [30, 70, 50, 60, 70], [0, 1, 2, 0, 3]])
    np.testing.assert_array_equal(dense, expected)
    assert list(adata.var["original_id"]) == ["SLC9A3R1;NHERF1", "TIE2;TEK", "p27", "FOO_UNKNOWN", "CD34"]
    assert list(adata.var["id_how"]) == ["previous", "alias", "ambiguous", "unmapped", "official"]
    assert list(adata.var["note"]) == ["a", "c", "e", "f", "g"]  # first occurrence
    # X recomputed from the summed counts (library sizes 28, 280, 6 -> target 1e4).
    lib = expected.sum(axis=1, keepdims=True)
    x = adata.X.toarray() if sp.issparse(adata.X) else adata.X
    np.testing.assert_allclose(x, np.log1p(expected / lib * 1e4), rtol=1e-6)
    rep = adata.uns["dormsig"]["genes"]
    assert rep["id_type"] == "symbol" and rep["species"] == "human"
    assert rep["n_input"] == 7 and rep["n_output"] == 5 and rep["n_collapsed"] == 2
    assert rep["n_by_how"]["official"] == 3 and rep["n_by_how"]["previous"] == 1 and rep["n_by_how"]["alias"] == 1
    assert rep["n_unmapped"] == 1 and rep["n_ambiguous"] == 1
    assert list(rep["ambiguous_examples"]) == ["p27"]
    assert list(rep["collapsed_examples"]) == ["SLC9A3R1;NHERF1 -> NHERF1", "TIE2;TEK -> TEK"]
    assert rep["tables"]["version"] == tables.manifest()["version"]


def test_harmonise_is_idempotent_and_copy_leaves_input():
    adata = _toy()
    before = adata.copy()
    out = harmonise(adata, copy=True)
    assert list(adata.var_names) == list(before.var_names) and "dormsig" not in adata.uns
    snapshot = out.copy()
    assert harmonise(out) is None
    np.testing.assert_array_equal(out.X, snapshot.X)
    np.testing.assert_array_equal(out.layers["counts"], snapshot.layers["counts"])
    pd.testing.assert_frame_equal(out.var, snapshot.var)
    assert out.uns["dormsig"]["genes"]["n_input"] == 7  # the first report is kept


def test_harmonise_ensembl_versions_collapse():
    names = ["ENSG00000141510.16", "ENSG00000141510.15", "ENSG00000010610", "ENSG00000000000"]
    counts = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.int32)
    adata = ad.AnnData(X=counts.astype(np.float32), var=pd.DataFrame(index=names))
    adata.layers["counts"] = counts
    harmonise(adata)
    assert list(adata.var_names) == ["TP53", "CD4", "ENSG00000000000"]
    assert adata.layers["counts"].dtype == np.int32
    np.testing.assert_array_equal(adata.layers["counts"], [[3, 3, 4], [11, 7, 8]])
    assert adata.var.loc["TP53", "original_id"] == "ENSG00000141510.16;ENSG00000141510.15"
    assert adata.uns["dormsig"]["genes"]["id_type"] == "ensembl"


def test_harmonise_without_counts_keeps_highest_mean():
    x = np.array([[1.0, 5.0, 2.0], [3.0, 1.0, 2.0]], dtype=np.float32)  # means 2, 3, 2
    adata = ad.AnnData(X=x, var=pd.DataFrame(index=["SLC9A3R1", "NHERF1", "CD34"]))
    harmonise(adata, species="human")
    assert list(adata.var_names) == ["NHERF1", "CD34"]
    np.testing.assert_array_equal(adata.X, x[:, [1, 2]])
    assert "highest mean" in adata.uns["dormsig"]["genes"]["collapse_method"]


def test_harmonise_rejects_undecidable_species():
    adata = ad.AnnData(X=np.ones((2, 2), dtype=np.float32), var=pd.DataFrame(index=["xx_1", "yy_2"]))
    with pytest.raises(GeneIdError):
        harmonise(adata)


# --- real data ----------------------------------------------------------------------------------------


def test_airway_ensembl_ids_map_to_symbols(tmp_path):
    counts = pd.read_csv(DATA / "airway_counts.csv.gz", index_col=0)
    adata = ad.AnnData(X=counts.T.to_numpy(dtype=np.float32), obs=pd.DataFrame(index=counts.columns),
                       var=pd.DataFrame(index=counts.index))
    adata.layers["counts"] = counts.T.to_numpy()
    nonzero = counts.sum(axis=1).to_numpy() > 0
    res = resolve(list(counts.index))
    mapped = res["symbol"].notna().to_numpy()
    assert nonzero.sum() == 33469
    assert mapped[nonzero].mean() >= 0.95  # measured 0.980
    assert res["official"].to_numpy()[nonzero].mean() >= 0.75  # measured 0.788
    harmonise(adata)
    rep = adata.uns["dormsig"]["genes"]
    assert rep["id_type"] == "ensembl" and rep["species"] == "human"
    assert adata.layers["counts"].sum() == counts.to_numpy().sum()  # merging loses no read
    assert adata.var_names.is_unique
    assert adata.var.loc["TSPAN6", "original_id"] == "ENSG00000000003"
    for gene in ("NOTCH1", "NOTCH2", "DDIT3", "ATF4", "CXCR4", "TEK"):
        assert gene in adata.var_names
    assert rep["n_input"] - rep["n_output"] == rep["n_collapsed"] > 0
    # Idempotent on real data: no harmonised name resolves to anything else.
    again = resolve(list(adata.var_names))
    assert ((again["symbol"] == again["query"]) | again["symbol"].isna()).all()
    var = adata.var.copy()
    harmonise(adata)
    pd.testing.assert_frame_equal(adata.var, var)
    # The report survives an h5ad round trip.
    adata.write_h5ad(tmp_path / "airway.h5ad")
    back = ad.read_h5ad(tmp_path / "airway.h5ad")
    assert back.uns["dormsig"]["genes"]["n_collapsed"] == rep["n_collapsed"]


def test_aceto_ctc_symbols():
    with gzip.open(DATA / "aceto2014_ctc_genes.txt.gz", "rt") as handle:
        genes = handle.read().split()
    assert len(genes) == 16026
    res = resolve(genes)
    how = res["how"].value_counts().to_dict()
    assert how["official"] >= 14000
    assert how["previous"] >= 1000
    assert how.get("unmapped", 0) <= 400 and how.get("ambiguous", 0) <= 30
    by = dict(zip(res["query"], res["how"], strict=True))
    for gene in ("NOTCH1", "NOTCH2", "CXCR4", "DDIT3", "ATF4"):
        assert by[gene] == "official"
    assert "CD177" not in by
