"""Both NOTCH contrasts end to end on real data: bulk CTCs (Aceto 2014) and single-cell
oligodendroglioma (Tirosh 2016) through pseudobulk. Gene subsets (see tests/data/de/README.md)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from dormsig.de import define_groups, deseq, enrich, pseudobulk
from dormsig.errors import DesignError
from dormsig.pp import normalise

DATA = Path(__file__).parent / "data" / "de"


def _ctc() -> ad.AnnData:
    counts = pd.read_csv(DATA / "ctc_counts_subset.csv.gz", index_col=0).T
    meta = pd.read_csv(DATA / "ctc_metadata.txt", sep="\t", header=None, index_col=0,
                       names=["gsm", "patient", "id", "type"])
    adata = ad.AnnData(X=counts.to_numpy(dtype=np.float64), obs=meta.loc[counts.index],
                       var=pd.DataFrame(index=counts.columns))
    adata.layers["counts"] = adata.X.copy()
    normalise(adata)
    return adata


def _oligo_malignant() -> ad.AnnData:
    counts = pd.read_csv(DATA / "oligo_counts_subset_rounded.csv.gz", index_col=0).T
    ann = pd.read_csv(DATA / "oligo_annotations.txt", sep="\t", header=None, index_col=0, names=["cell", "type"])
    adata = ad.AnnData(X=counts.to_numpy(dtype=np.float64), var=pd.DataFrame(index=counts.columns),
                       obs=pd.DataFrame({"type": ann.loc[counts.index, "type"]}, index=counts.index))
    adata.obs["tumour"] = [c.split("_")[0] for c in adata.obs_names]
    adata = adata[adata.obs["type"].str.startswith("malignant")].copy()
    adata.layers["counts"] = adata.X.copy()
    normalise(adata)
    return adata


def _run_with_patient(adata, test, reference, key):
    try:
        return deseq(adata, group_key=key, test=test, reference=reference, covariates=["patient"],
                     size_factors="poscounts"), True
    except DesignError as exc:
        assert "patient" in str(exc) or "replicate" in str(exc)
        return deseq(adata, group_key=key, test=test, reference=reference, size_factors="poscounts",
                     ), False


@pytest.mark.slow
def test_ctc_bulk_both_contrasts():
    adata = _ctc()
    define_groups(adata, "NOTCH2", "NOTCH1", key_added="g21")
    define_groups(adata, "NOTCH2", "low", key_added="g2")
    n21 = adata.obs["g21"].value_counts()
    assert n21.sum() == 29 and n21["NOTCH2_high"] >= 2 and n21["NOTCH1_high"] >= 2
    res21, _ = _run_with_patient(adata, "NOTCH2_high", "NOTCH1_high", "g21")
    # NOTCH2 defines the test group, so it must come out up (and NOTCH1 down)
    assert res21.loc["NOTCH2", "log2FoldChange"] > 1 and res21.loc["NOTCH1", "log2FoldChange"] < -1
    res2 = deseq(adata, group_key="g2", test="NOTCH2_high", reference="NOTCH2_low", size_factors="poscounts",
                 key_added="de2")
    assert res2.loc["NOTCH2", "log2FoldChange"] > 1 and res2.loc["NOTCH2", "pvalue"] < 0.05
    assert {"normalised", "vst"} <= set(adata.layers)
    enr = enrich(res21, {"UPR": pd.read_csv(DATA / "h.all.v7.0.symbols.gmt", sep="\t", header=None, index_col=0)
                         .loc["HALLMARK_UNFOLDED_PROTEIN_RESPONSE"].dropna().iloc[1:].tolist(),
                         "NOTCH2_ONLY": ["NOTCH2"]}, permutations=100)
    assert set(enr["method"]) == {"gsea_prerank", "rank_position"}
    assert enr.set_index("set").loc["NOTCH2_ONLY", "direction"] == "up"


@pytest.mark.slow
def test_oligodendroglioma_pseudobulk_both_contrasts():
    adata = _oligo_malignant()
    assert sorted(set(adata.obs["tumour"])) == ["93", "97", "MGH36", "MGH53"]
    define_groups(adata, "NOTCH2", "NOTCH1", by="tumour", key_added="g21")
    define_groups(adata, "NOTCH2", "low", by="tumour", key_added="g2")
    for key, test, ref in (("g21", "NOTCH2_high", "NOTCH1_high"), ("g2", "NOTCH2_high", "NOTCH2_low")):
        pb = pseudobulk(adata, sample_key="tumour", group_key=key, min_cells=3, min_counts=1000)
        assert pb.obs["n_cells"].sum() + sum(
            d for d in [pb.uns["dormsig"]["pseudobulk"]["n_cells_in"] - pb.uns["dormsig"]["pseudobulk"]["n_cells_used"]]
        ) == adata.n_obs
        res = deseq(pb, group_key=key, test=test, reference=ref, covariates=["tumour"], size_factors="poscounts",
                    )
        assert res.loc["NOTCH2", "log2FoldChange"] > 0.5, key
        assert pb.uns["dormsig"]["dormsig_de"]["formula"] == f"~ tumour + {key}"
    # cells as replicates are refused on the same data
    with pytest.raises(DesignError, match="single cells"):
        big = ad.concat([adata] * 2, index_unique="-")
        deseq(big, group_key="g2", test="NOTCH2_high", reference="NOTCH2_low", size_factors="poscounts",
              inference="pydeseq2")
