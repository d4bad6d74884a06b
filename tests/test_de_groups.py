"""dormsig.de.define_groups: labels, per-sample thresholds, recorded counts, refusals."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from dormsig.de import define_groups
from dormsig.de.groups import _mixture_threshold
from dormsig.errors import DesignError, InputError


def _toy() -> ad.AnnData:
    # 8 cells in 2 samples; normalised NOTCH2 / NOTCH1 values chosen by hand (halves: not raw counts).
    x = 0.5 * np.array([
        [5, 0], [4, 1], [0, 5], [1, 4],   # sample A: medians NOTCH2 1.25, NOTCH1 1.25
        [9, 9], [8, 1], [1, 8], [0, 0],   # sample B: medians NOTCH2 2.25, NOTCH1 2.25
    ], dtype=np.float64)
    obs = pd.DataFrame({"sample": ["A"] * 4 + ["B"] * 4}, index=[f"c{i}" for i in range(8)])
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=["NOTCH2", "NOTCH1"]))


def test_two_gene_labels_within_samples():
    adata = _toy()
    define_groups(adata, "NOTCH2", "NOTCH1", by="sample")
    assert adata.obs["dormsig_group"].tolist() == [
        "NOTCH2_high", "NOTCH2_high", "NOTCH1_high", "NOTCH1_high",
        "double_high", "NOTCH2_high", "NOTCH1_high", "double_low",
    ]
    rec = adata.uns["dormsig"]["groups"]
    assert rec["thresholds"]["A"]["NOTCH2"] == 1.25 and rec["thresholds"]["B"]["NOTCH1"] == 2.25
    assert rec["counts"] == {"NOTCH2_high": 3, "NOTCH1_high": 3, "double_high": 1, "double_low": 1}
    assert rec["counts_per_sample"]["B"] == {"NOTCH2_high": 1, "NOTCH1_high": 1, "double_high": 1, "double_low": 1}
    assert isinstance(adata.obs["dormsig_group"].dtype, pd.CategoricalDtype)


def test_pooled_threshold_differs_from_per_sample():
    adata = _toy()
    define_groups(adata, "NOTCH2", "low")  # pooled median of NOTCH2 = 1.5
    assert adata.obs["dormsig_group"].tolist() == ["NOTCH2_high", "NOTCH2_high", "NOTCH2_low", "NOTCH2_low",
                                                   "NOTCH2_high", "NOTCH2_high", "NOTCH2_low", "NOTCH2_low"]


def test_fixed_threshold_and_from_column():
    adata = _toy()
    define_groups(adata, "NOTCH2", "NOTCH1", method="threshold", threshold={"NOTCH2": 1.75, "NOTCH1": 3.75})
    assert adata.obs["dormsig_group"].tolist()[:5] == ["NOTCH2_high", "NOTCH2_high", "double_low", "double_low",
                                                      "double_high"]
    adata.obs["population"] = ["N2", "N1"] * 4
    define_groups(adata, from_column="population", key_added="pop")
    assert adata.obs["pop"].tolist() == ["N2", "N1"] * 4
    assert adata.uns["dormsig"]["groups"]["method"] == "from_column"


def test_mixture_threshold_separates_two_modes():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 0.3, 300), rng.normal(4, 0.3, 100)])
    t = _mixture_threshold(x)
    assert 1.0 < t < 3.0  # equal-posterior point of the two components lies between them
    assert ((x > t) == (np.arange(400) >= 300)).all()


def test_every_cell_labelled_on_real_ctc():
    from pathlib import Path

    counts = pd.read_csv(Path(__file__).parent / "data" / "de" / "ctc_counts_subset.csv.gz", index_col=0).T
    adata = ad.AnnData(X=np.log1p(counts.to_numpy(dtype=np.float64)), var=pd.DataFrame(index=counts.columns),
                       obs=pd.DataFrame(index=counts.index))
    define_groups(adata, "NOTCH2", "NOTCH1", method="threshold", threshold=0.0)
    assert adata.obs["dormsig_group"].notna().all()
    # NOTCH1 and NOTCH2 are each detected in 18 of the 29 samples (PROVENANCE.md)
    high2 = adata.obs["dormsig_group"].isin(["NOTCH2_high", "double_high"]).sum()
    high1 = adata.obs["dormsig_group"].isin(["NOTCH1_high", "double_high"]).sum()
    assert (high2, high1) == (18, 18)


def test_refusals():
    adata = _toy()
    with pytest.raises(InputError, match="'NOTCH9'.*identifiers"):
        define_groups(adata, "NOTCH9", "NOTCH1")
    with pytest.raises(InputError, match="did you mean 'NOTCH2'"):
        define_groups(adata, "Notch2", "NOTCH1")
    with pytest.raises(DesignError, match="empty"):
        define_groups(adata, "NOTCH2", "NOTCH1", method="threshold", threshold=100.0)
    with pytest.raises(InputError, match="by='patient'"):
        define_groups(adata, "NOTCH2", "NOTCH1", by="patient")


# ------------------------------------------------------------------------ groups people can defend (real data)
DE_DATA = Path(__file__).parent / "data" / "de"


@pytest.fixture(scope="module")
def oligo_counts() -> ad.AnnData:
    """Tirosh 2016 oligodendroglioma: 184 cells x 601 genes, rounded counts in X (not normalised)."""
    counts = pd.read_csv(DE_DATA / "oligo_counts_subset_rounded.csv.gz", index_col=0).T
    return ad.AnnData(X=counts.to_numpy(dtype=np.float64), obs=pd.DataFrame(index=counts.index),
                      var=pd.DataFrame(index=counts.columns))


@pytest.fixture(scope="module")
def ctc_full() -> ad.AnnData:
    from dormsig.data import ctc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ctc()


def test_threshold_zero_warned_on_real_oligodendroglioma(oligo_counts):
    """NOTCH2 has counts in 60 of the 184 cells (rounded): its median, the default threshold, is 0."""
    a = oligo_counts.copy()
    x = a.X
    n2 = x[:, a.var_names.get_loc("NOTCH2")]
    assert int((n2 > 0).sum()) == 60
    with pytest.warns(UserWarning, match=r"NOTCH2 threshold is 0: NOTCH2 is non-zero in 33% .* any count at all"):
        define_groups(a, "NOTCH2", "NOTCH1")
    rec = a.uns["dormsig"]["groups"]
    assert rec["thresholds"]["all"]["NOTCH2"] == 0.0
    # thresholds are on normalised expression: X held raw counts, normalised here as dormsig.pp.normalise does
    lib = x.sum(axis=1)
    n1 = np.log1p(x[:, a.var_names.get_loc("NOTCH1")] / lib * 1e4)
    assert rec["thresholds"]["all"]["NOTCH1"] == pytest.approx(float(np.median(n1)))
    assert rec["values"].startswith("log1p(X counts / library size * 10000)")
    assert rec["detection"]["NOTCH2"] == pytest.approx(60 / 184)
    assert len(rec["warnings"]) == 1


def test_library_size_imbalance_warned_on_real_ctc(ctc_full):
    """ATF4-high and ATF4-low CTC samples differ 1.75x in median library size (counted from the counts)."""
    a = ctc_full.copy()
    with pytest.warns(UserWarning, match=r"ATF4_high and ATF4_low differ in median library size .*1\.75x"):
        define_groups(a, "ATF4", "low", tumour_check="none")  # all 29 samples (the tumour check: see below)
    rec = a.uns["dormsig"]["groups"]
    lib = np.asarray(a.layers["counts"].sum(axis=1)).ravel()
    high = (a.obs["dormsig_group"] == "ATF4_high").to_numpy()
    expected = {"ATF4_high": float(np.median(lib[high])), "ATF4_low": float(np.median(lib[~high]))}
    assert rec["library_size"]["median_per_group"] == pytest.approx(expected)
    assert rec["library_size"]["ratio"] == pytest.approx(expected["ATF4_high"] / expected["ATF4_low"], rel=1e-4)
    assert rec["single_cell"] is False
    # negative control: the NOTCH2/NOTCH1 groups of the same samples are within 1.5x, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        define_groups(a, "NOTCH2", "NOTCH1", tumour_check="none")
    assert a.uns["dormsig"]["groups"]["library_size"]["ratio"] < 1.5 and len(a.uns["dormsig"]["groups"]["warnings"]) == 0


def test_min_detection_refuses_a_gene_the_data_barely_measure(ctc_full):
    a = ctc_full.copy()
    with pytest.raises(DesignError, match=r"CD34 is non-zero in 6\.9% of the 29 observations"):
        define_groups(a, "CD34", "low", tumour_check="none")  # counts in 2 of the 29 samples
    with pytest.warns(UserWarning, match="CD34 threshold is 0"):
        define_groups(a, "CD34", "low", min_detection=0.05, tumour_check="none")
    assert a.uns["dormsig"]["groups"]["counts"] == {"CD34_high": 2, "CD34_low": 27}
    assert a.uns["dormsig"]["groups"]["params"]["min_detection"] == 0.05


def _oligo_cells(tmp_path: Path) -> Path:
    """The 4,000-gene oligodendroglioma cells as a dormsig .h5ad (counts layer + normalised X)."""
    from dormsig.io import write_h5ad
    from dormsig.pp import normalise

    df = pd.read_csv(Path(__file__).parent / "data" / "score" / "oligodendroglioma_tirosh2016_4000genes.tsv.gz",
                     sep="\t", index_col=0)
    counts = np.round(df.T.to_numpy(dtype=np.float64))
    a = ad.AnnData(X=counts.copy(), obs=pd.DataFrame(index=df.columns), var=pd.DataFrame(index=df.index),
                   layers={"counts": counts})
    a.obs["tumour"] = [c.split("_")[0] for c in a.obs_names]
    normalise(a)
    path = tmp_path / "oligo.h5ad"
    write_h5ad(a, path)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dormsig.cli", *args], capture_output=True, text=True)


def test_cli_names_the_pseudobulk_flag_on_single_cells(tmp_path):
    path = _oligo_cells(tmp_path)
    res = _cli("groups", str(path), "--high", "NOTCH2", "--versus", "low", "--out", str(tmp_path / "g.h5ad"))
    assert res.returncode == 0, res.stderr
    assert "look like single cells" in res.stderr and "--sample-key" in res.stderr
    assert "warning: define_groups: the NOTCH2 threshold is 0" in res.stderr
    assert "sample_key=" not in res.stderr and ".py:" not in res.stderr  # CLI flags, no Python names or files
    res = _cli("de", str(tmp_path / "g.h5ad"), "--test", "NOTCH2_high", "--reference", "NOTCH2_low",
               "--out", str(tmp_path / "de.tsv"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert len(res.stderr.replace(str(tmp_path / "g.h5ad"), "g.h5ad")) <= 200
    assert "--sample-key" in res.stderr and "--allow-cells-as-replicates" in res.stderr
    assert "force=True" not in res.stderr and "pseudobulk(" not in res.stderr
    assert not (tmp_path / "de.tsv").exists()


@pytest.mark.slow
def test_deseq_records_cells_as_replicates_on_real_cells():
    """184 oligodendroglioma cells (151 genes detected in >= 20 cells, rounded counts) forced through DESeq2."""
    from dormsig.de import deseq

    df = pd.read_csv(Path(__file__).parent / "data" / "score" / "oligodendroglioma_tirosh2016_4000genes.tsv.gz",
                     sep="\t", index_col=0)
    genes = [*df.index[(df > 0).sum(axis=1) >= 20][:150], "NOTCH2"]
    counts = np.round(df.loc[genes].T.to_numpy(dtype=np.float64))
    a = ad.AnnData(X=counts.copy(), obs=pd.DataFrame(index=df.columns), var=pd.DataFrame(index=genes),
                   layers={"counts": counts})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        define_groups(a, "NOTCH2", "low")
    assert a.uns["dormsig"]["groups"]["single_cell"] is True
    with pytest.raises(DesignError, match="single cells"):
        deseq(a, group_key="dormsig_group", test="NOTCH2_high", reference="NOTCH2_low", size_factors="poscounts")
    deseq(a, group_key="dormsig_group", test="NOTCH2_high", reference="NOTCH2_low", size_factors="poscounts",
          force=True)
    rec = a.uns["dormsig"]["dormsig_de"]
    assert rec["cells_as_replicates"] is True and rec["params"]["force"] is True


def test_groups_are_formed_among_samples_holding_tumour_rna(ctc_full):
    """Real CTC data: 14 of 29 samples hold little epithelial RNA (< 1,000 CPM: platelet-rich, keratin-poor); they
    get the label no_tumour_rna and the NOTCH2/NOTCH1 medians are taken over the other 15 (by hand)."""
    a = ctc_full.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        define_groups(a, "NOTCH2", "NOTCH1")
    counts = a.to_df("counts")
    lib = counts.sum(axis=1)
    epi = counts[["EPCAM", "KRT8", "KRT18", "KRT19"]].sum(axis=1) / lib * 1e6
    tumour = (epi >= 1000).to_numpy()
    labels = a.obs["dormsig_group"].astype(str).to_numpy()
    assert set(np.flatnonzero(labels == "no_tumour_rna")) == set(np.flatnonzero(~tumour)) and (~tumour).sum() == 14
    rec = a.uns["dormsig"]["groups"]
    assert rec["values"] == "X as given (normalised expression)"
    for gene in ("NOTCH2", "NOTCH1"):
        values = a.to_df()[gene].to_numpy()
        assert rec["thresholds"]["all"][gene] == pytest.approx(float(np.median(values[tumour])), rel=1e-9)
    assert rec["tumour_check"]["applied"] and rec["params"]["tumour_check"] == "epithelial"
    assert rec["counts"]["no_tumour_rna"] == 14 and sum(rec["counts"].values()) == 29
    # groups from a sample sheet are the user's: the check steps aside
    a.obs["sorted"] = np.where(np.arange(29) % 2 == 0, "x", "y")
    define_groups(a, from_column="sorted", key_added="s")
    assert set(a.obs["s"].astype(str)) == {"x", "y"} and not a.uns["dormsig"]["groups"]["tumour_check"]["applied"]
