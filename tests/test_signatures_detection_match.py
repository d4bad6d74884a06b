"""Detection-aware matching: present is not detected.

Real data: the bundled CTC counts (29 samples; detection counted here from the raw counts) and the
oligodendroglioma cells (tests/data/score: CD38 and CD244 are in the table with zero counts in all
184 cells). The CD177 case of issue 12 (a 10x tumour where CD177 is in the table with no count in any
cell) is rebuilt on the CTC counts by adding CD177 as an all-zero gene.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dormsig import tl
from dormsig.signatures import MatchWarning, Signature, match
from dormsig.signatures.model import Library

DATA = Path(__file__).parent / "data"
CD177_SET = Signature(name="CD177_MARKER", up=("CD177", "NOTCH2", "CXCR4", "CD34"))  # as shipped in 2026.11.0


@pytest.fixture(scope="module")
def ctc() -> ad.AnnData:
    from dormsig.data import ctc as load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load()


@pytest.fixture(scope="module")
def ctc_with_cd177(ctc) -> ad.AnnData:
    """CTC counts plus CD177 with zero counts in every sample (as in the 302-cell tumour of issue 12)."""
    counts = sp.hstack([sp.csr_matrix(ctc.layers["counts"]), sp.csr_matrix((ctc.n_obs, 1))]).tocsr()
    var = pd.DataFrame(index=[*ctc.var_names, "CD177"])
    a = ad.AnnData(X=counts.astype(np.float64), obs=ctc.obs.copy(), var=var, layers={"counts": counts})
    return a


@pytest.fixture(scope="module")
def oligo() -> ad.AnnData:
    df = pd.read_csv(DATA / "score" / "oligodendroglioma_tirosh2016_4000genes.tsv.gz", sep="\t", index_col=0)
    return ad.AnnData(X=sp.csr_matrix(df.T.to_numpy(dtype=np.float32)), obs=pd.DataFrame(index=df.columns),
                      var=pd.DataFrame(index=df.index))


def _detection(adata) -> pd.Series:
    c = adata.layers["counts"] if "counts" in adata.layers else adata.X
    frac = np.asarray((c != 0).mean(axis=0)).ravel()
    return pd.Series(frac, index=adata.var_names)


def test_cd177_present_but_never_counted_is_not_detected(ctc_with_cd177):
    a = ctc_with_cd177
    with pytest.warns(MatchWarning, match=r"CD177_MARKER: CD177 \(3 of 4 detected, ok\)"):
        rep = match(Library([CD177_SET]), a.var_names, detection=_detection(a), n_obs=a.n_obs)
    s = rep["CD177_MARKER"]
    assert (s.n_present, s.n_detected, len(s.missing)) == (4, 3, 0)
    assert s.undetected == ("CD177",) and s.coverage == pytest.approx(0.75) and s.present_coverage == 1.0
    assert s.summary() == "present 4/4, detected 3/4 (undetected: CD177), missing 0, coverage 0.75, ok"
    # without the duplicated HSC genes (CD177 + NOTCH2), CD177 alone undetected fails the set
    pair = Signature(name="CD177_PAIR", up=("CD177", "NOTCH2"))
    with pytest.warns(MatchWarning, match="CD177_PAIR: CD177 .1 of 2 detected, not_detected"):
        rep = match(Library([pair]), a.var_names, detection=_detection(a), n_obs=a.n_obs)
    assert rep["CD177_PAIR"].status == "not_detected"


def test_score_records_present_detected_missing(ctc_with_cd177):
    a = ctc_with_cd177.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(a, {"CD177_MARKER": list(CD177_SET.up), "HSC": ["CXCR4", "CD34", "TEK"]}, index=None)
    rec = a.uns["dormsig"]["score"]
    assert rec["match_summary"]["CD177_MARKER"].startswith("present 4/4, detected 3/4 (undetected: CD177)")
    m = rec["match"]["sets"]["CD177_MARKER"]
    assert m["n_present"] == 4 and m["n_detected"] == 3 and m["n_missing"] == 0 and list(m["undetected"]) == ["CD177"]
    assert rec["match"]["params"]["min_detection"] == 0.05 and rec["params"]["min_detection"] == 0.05
    assert any("CD177" in w and "not detected" in w for w in rec["warnings"])


def test_detection_threshold_on_real_ctc(ctc):
    """TEK has a count in 1 of the 29 samples, CD34 in 2, CXCR4 in 8 (counted from the raw counts)."""
    det = _detection(ctc)
    n = (det[["TEK", "CD34", "CXCR4"]] * 29).round().astype(int).tolist()
    assert n == [1, 2, 8]
    hsc = Library([Signature(name="HSC", up=("CXCR4", "CD34", "TEK"))])
    expect = {0.03: ("CXCR4", "CD34", "TEK"), 0.05: ("CXCR4", "CD34"), 0.1: ("CXCR4",), 0.5: ()}
    for frac, detected in expect.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MatchWarning)
            rep = match(hsc, ctc.var_names, detection=det, min_detection=frac, n_obs=29)
        assert rep["HSC"].up.detected == detected, frac
        assert rep["HSC"].status == ("ok" if len(detected) == 3 else "not_detected")
        assert rep.to_dict()["params"]["min_detection"] == frac


def test_genes_with_zero_counts_in_every_cell(oligo):
    x = oligo.X.toarray()
    zero = oligo.var_names[(x != 0).sum(axis=0) == 0]
    assert {"CD38", "CD244"} <= set(zero)
    sets = Library([Signature(name="ZERO", up=("CD38", "CD244")),
                    Signature(name="MIXED", up=("CD38", "CXCR4", "PTPRC", "NOTCH2"))])
    with pytest.warns(MatchWarning, match=r"ZERO: CD38, CD244 \(0 of 2 detected, not_detected\)"):
        rep = match(sets, oligo.var_names, detection=_detection(oligo), n_obs=oligo.n_obs)
    assert rep["ZERO"].status == "not_detected" and rep["ZERO"].coverage == 0 and rep["ZERO"].present_coverage == 1
    assert rep["MIXED"].undetected == ("CD38",) and rep["MIXED"].status == "ok"
    frame = rep.to_frame()
    assert frame.loc["ZERO", ["n_present", "n_detected", "n_missing"]].tolist() == [2, 0, 0]
    assert frame.loc["MIXED", "undetected"] == "CD38" and frame.loc["MIXED", "coverage"] == 0.75
    json.dumps(rep.to_dict())


def test_without_detection_status_rests_on_presence(ctc):
    rep = match(Library([CD177_SET]), list(ctc.var_names) + ["CD177"], species="human")
    s = rep["CD177_MARKER"]
    assert s.status == "ok" and s.n_detected == s.n_present == 4 and s.up.detected is None
    assert rep.to_dict()["params"]["detection"] == "not assessed"
    assert rep.to_dict()["sets"]["CD177_MARKER"]["up"]["detection_assessed"] is False


def test_shared_genes_between_sets():
    hsc = Signature(name="HSC", up=("CXCR4", "CD34", "TEK"))
    rep = match(Library([hsc, CD177_SET]), ["CXCR4", "CD34", "TEK", "CD177", "NOTCH2", "GAPDH"], species="human")
    assert rep.shared_genes(["HSC", "CD177_MARKER"]) == {"CXCR4": ["HSC", "CD177_MARKER"],
                                                          "CD34": ["HSC", "CD177_MARKER"]}
    assert rep.shared_genes(["HSC"]) == {}


def test_min_detection_must_be_a_fraction(ctc):
    from dormsig.errors import InputError, SignatureError

    with pytest.raises(SignatureError, match="min_detection"):
        match(Library([CD177_SET]), ctc.var_names, detection=_detection(ctc), min_detection=5)
    with pytest.raises(InputError, match="min_detection"):
        tl.score(ctc.copy(), {"A": ["CXCR4"]}, index=None, min_detection=-0.1)
