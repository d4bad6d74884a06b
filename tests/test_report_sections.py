"""The report as a registry of sections, every contrast of a run shown."""

from __future__ import annotations

import re
import sys
import types

import numpy as np
import pandas as pd
import pytest
from test_report import _adata, _de, _enrichment, _headings, _images

from dormsig.report import SECTIONS, ReportContext, write_report
from dormsig.report import sections as registry_module
from dormsig.report.sections import MODULES, registry


def test_registry_lists_every_section_once():
    sections = registry()
    assert [(s.anchor, s.heading) for s in sections] == list(SECTIONS)
    assert len({s.anchor for s in sections}) == len(MODULES) == len(sections)
    assert [s.anchor for s in sections][:2] == ["input", "findings"] and sections[-1].anchor == "provenance"


def test_a_new_section_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    # what a new module defines: ANCHOR, HEADING, render(ctx) -> HTML; here made in memory
    mod = types.ModuleType("dormsig.report.sections.n_obs")
    mod.ANCHOR, mod.HEADING = "n-obs", "Observations per call"

    def render(ctx: ReportContext) -> str:
        return f"<p>{ctx.adata.n_obs} observations, {len(ctx.de)} contrasts</p>"

    mod.render = render
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(registry_module, "MODULES", (*MODULES[:-1], "n_obs", MODULES[-1]))
    registry.cache_clear()
    try:
        text = write_report(tmp_path / "r.html", adata=_adata(tmp_path), de={"a": _de()}).read_text()
    finally:
        registry.cache_clear()
    assert _headings(text)[-2:] == ["Observations per call", "Provenance"]
    assert '<section id="n-obs">' in text and "<p>16 observations, 1 contrasts</p>" in text
    assert '<li><a href="#n-obs">Observations per call</a></li>' in text


def test_every_contrast_is_shown(tmp_path):
    adata = _adata(tmp_path)
    tables = {"NOTCH2_high vs NOTCH1_high": _de(seed=1), "NOTCH2_high vs low": _de(seed=2)}
    # one given as a file (read back through dormsig.get.de_table), one as a table
    path = tmp_path / "de_low.tsv"
    tables["NOTCH2_high vs low"].to_csv(path, sep="\t", index=False)
    enr2 = _enrichment().assign(fdr=[0.3, 0.9])
    out = write_report(tmp_path / "r.html", adata=adata, groupby="dormsig_group",
                       de={"NOTCH2_high vs NOTCH1_high": tables["NOTCH2_high vs NOTCH1_high"], "NOTCH2_high vs low": path},
                       enrichment={"NOTCH2_high vs NOTCH1_high": _enrichment(), "NOTCH2_high vs low": enr2})
    text = out.read_text()
    assert _headings(text) == [h for _, h in SECTIONS]
    de_html = text.split('<section id="de">')[1].split("</section>")[0]
    # contrasts in the given order, each with its own counts (hand-counted) and figures
    assert de_html.index("<h3 id=\"de-NOTCH2_high_vs_NOTCH1_high\">") < de_html.index("<h3 id=\"de-NOTCH2_high_vs_low\">")
    blocks = re.split(r"<h3 id=\"de-", de_html)[1:]
    for block, table in zip(blocks, tables.values(), strict=True):
        n_sig = int((table["padj"] < 0.05).sum())
        n_up = int(((table["padj"] < 0.05) & (table["log2FoldChange"] > 0)).sum())
        assert f"<tr><th>padj &lt; 0.05</th><td>{n_sig}</td></tr>" in block
        assert f"<tr><th>up (padj &lt; 0.05, log2FC &gt; 0)</th><td>{n_up}</td></tr>" in block
    # the overview table has one row per contrast
    overview = de_html.split("<h3")[0]
    assert overview.count("<tr>") == 3
    figures = tmp_path / "r_figures"
    for stem in ("volcano_NOTCH2_high_vs_NOTCH1_high", "ma_NOTCH2_high_vs_NOTCH1_high", "volcano_NOTCH2_high_vs_low",
                 "ma_NOTCH2_high_vs_low"):
        assert (figures / f"{stem}.png").is_file() and (figures / f"{stem}.svg").is_file()
    assert len(_images(text)) == 4 + 3 * 2  # + volcano, MA and p-value histogram per contrast
    enr_html = text.split('<section id="enrichment">')[1].split("</section>")[0]
    assert "1 of 2 sets with FDR &lt; 0.05" in enr_html and "0 of 2 sets with FDR &lt; 0.05" in enr_html
    # a single table (as `dormsig report --de x.tsv` passes) has no contrast heading and plain figure names;
    # the figures of the two contrasts above are gone
    text = write_report(tmp_path / "r.html", adata=adata, de=path, groupby="dormsig_group").read_text()
    assert "<h3 id=\"de-" not in text
    assert sorted(p.stem for p in figures.glob("*.png") if p.stem.startswith(("volcano", "ma_", "pvalues")) or p.stem == "ma") \
        == ["ma", "pvalues", "volcano"]


def test_skipped_contrasts_are_named_with_their_reason(tmp_path):
    adata = _adata(tmp_path)
    adata.uns["dormsig"]["skipped_contrasts"] = {"NOTCH2_high vs low": "group 'low' has 1 sample (needs 2)"}
    text = write_report(tmp_path / "r.html", adata=adata).read_text()
    assert "no DE run (dormsig de): contrasts skipped (NOTCH2_high vs low: group &#x27;low&#x27; has 1 sample" in text
    text = write_report(tmp_path / "r.html", adata=adata, de={"NOTCH2_high vs NOTCH1_high": _de()}).read_text()
    assert "contrasts skipped: NOTCH2_high vs low" in text


def test_a_bad_table_among_contrasts_is_named_and_nothing_is_written(tmp_path):
    adata = _adata(tmp_path)
    bad = pd.DataFrame({"gene": ["a"], "pvalue": [0.1]})
    with pytest.raises(Exception, match="DE table 'B vs A' lacks column"):
        write_report(tmp_path / "x.html", adata=adata, de={"A": _de(), "B vs A": bad})
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "x_figures").exists()


def test_the_heatmap_drops_genes_without_counts_and_says_so(tmp_path):
    adata = _adata(tmp_path)
    adata.X[:, [3, 11]] = 0.0  # G3 (set_a) and G11 (set_b) have no counts
    text = write_report(tmp_path / "r.html", adata=adata, groupby="dormsig_group").read_text()
    heat = text.split('<section id="heatmap">')[1].split("</section>")[0]
    assert "2 of 12 matched signature genes have no counts (or the same value) in every observation and are not " \
           "shown: G3, G11." in heat
    assert "of 10 matched signature genes; rows coloured by gene set, columns grouped by dormsig_group" in heat
    assert np.isfinite(adata.X).all()
