"""The report says when the groups of a contrast differ in non-tumour content (real CTC data: platelets)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import dormsig
from dormsig.report import write_report
from dormsig.tl.compartment import check_compartments


@pytest.fixture(scope="module")
def ctc():
    adata = dormsig.data.ctc()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # all 29 samples, as before the tumour check (which now leaves the keratin-poor ones out of the groups)
        dormsig.de.define_groups(adata, high="NOTCH2", versus="NOTCH1", key_added="group_NOTCH2_vs_NOTCH1",
                                 tumour_check="none")
        dormsig.tl.score(adata)
        dormsig.tl.rank(adata)
        check_compartments(adata)
    return adata


def test_platelet_rich_samples_are_labelled(ctc) -> None:
    # samples holding platelet RNA (>= 4 of 8 platelet transcripts at >= 100 CPM), counted by hand from the counts
    counts = ctc.to_df("counts")
    cpm = counts.div(counts.sum(axis=1), axis=0) * 1e6
    markers = ["ITGA2B", "PPBP", "PF4", "GP9", "GP1BB", "TUBB1", "CLEC1B", "GP6"]
    present = [g for g in markers if g in cpm]
    needed = max(2, int(np.ceil(0.5 * len(present))))
    by_hand = set(cpm.index[(cpm[present] >= 100).sum(axis=1) >= needed])
    labelled = set(ctc.obs_names[ctc.obs["dormsig_compartment"].astype(str) == "platelet"])
    assert labelled == by_hand and len(labelled) == 8


def test_report_says_the_notch1_group_carries_platelet_rna(ctc, tmp_path) -> None:
    genes = ctc.var_names.astype(str)
    de = pd.DataFrame({"gene": genes, "baseMean": 10.0, "log2FoldChange": 0.0, "lfcSE": 1.0, "stat": 0.0,
                       "pvalue": 0.5, "padj": 0.9})
    out = write_report(tmp_path / "r.html", adata=ctc, de={"NOTCH2_high vs NOTCH1_high": de})
    html = out.read_text()
    section = html.split('id="de-compartments"')[1].split("</section>")[0]
    assert "more NOTCH1_high samples carry platelet RNA (NOTCH2_high 1 of 7, NOTCH1_high 3 of 7)" in section


def test_report_says_which_samples_the_tumour_check_left_out_of_the_groups(tmp_path) -> None:
    adata = dormsig.data.ctc()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dormsig.de.define_groups(adata, high="NOTCH2", versus="NOTCH1")
        dormsig.tl.score(adata)
        dormsig.tl.rank(adata)
        dormsig.tl.check_compartments(adata)  # as dormsig run does before its report
        dormsig.tl.epithelial.check_epithelial(adata)
    html = write_report(tmp_path / "r.html", adata=adata, groupby="dormsig_group").read_text()
    section = html.split('id="input"')[1].split("</section>")[0]
    assert "14 of 29 observations hold little tumour (epithelial) RNA" in section
    assert "form the group no_tumour_rna" in section
    # the calls' section words the way out for every reader, not as a Python argument alone
    calls = html.split('id="compartment"')[1].split("</section>")[0]
    assert "were not called (call no_tumour_rna" in calls
    assert "--tumour-check none on the command line, tumour_check: none in a run config" in calls.replace("&quot;", '"')
    assert "pass tumour_check=none" not in calls
