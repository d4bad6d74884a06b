"""The HTML report: sections, embedded images, no network references, figure files, escaping."""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dormsig.errors import InputError
from dormsig.provenance import attach, record
from dormsig.report import SECTIONS, write_report
from dormsig.signatures.match import MatchReport, PartMatch, SetMatch

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("match_coverage", "scores_by_group", "waterfall", "heatmap", "volcano", "ma")


def _adata(tmp_path: Path, n: int = 16, n_genes: int = 30, seed: int = 0) -> ad.AnnData:
    """A scored, ranked AnnData shaped like dormsig.tl.score/rank output, after an h5ad round trip."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    adata = ad.AnnData(np.log1p(rng.poisson(5, (n, n_genes))).astype(np.float32), var=pd.DataFrame(index=genes))
    adata.obs_names = [f"S{i}" for i in range(n)]
    adata.obs["dormsig_group"] = pd.Categorical(np.where(np.arange(n) < n // 2, "NOTCH2_high", "NOTCH1_high"))
    table = pd.DataFrame(
        {"set_a": rng.random(n), "set_b": rng.random(n), "dormancy_index": rng.normal(size=n)}, index=adata.obs_names
    )
    adata.obsm["dormsig_scores"] = table
    adata.obs["dormsig_call"] = np.where(table["dormancy_index"] > 0.5, "dormant", "not_dormant")
    attach(adata, "input", record("input", params={"path": "counts.tsv"}, sha256="ab" * 32))
    attach(adata, "genes", record("genes", n_mapped=28, n_unmapped=2))
    match = _match_record({"set_a": ([f"G{i}" for i in range(10)], ["X1", "X2"], [], []),
                           "set_b": (["G10", "G11"], ["Y1", "Y2", "Y3"], [], [])})
    attach(adata, "score", record("score", method="ucell", match=match,
                                  genes={"set_a": {"up": genes[:10], "down": []}, "set_b": {"up": genes[10:12], "down": []}}))
    attach(adata, "rank", record("rank", method="fixed", params={"threshold": 0.5}))
    adata.write_h5ad(tmp_path / "scored.h5ad")
    return ad.read_h5ad(tmp_path / "scored.h5ad")


def _match_record(sets: dict[str, tuple[list, list, list, list]]) -> dict:
    """What dormsig.tl.score records: MatchReport.to_dict() of sets given as (up matched, up missing,
    down matched, down missing)."""
    def part(name: str, matched: list, missing: list) -> PartMatch:
        return PartMatch(part=name, genes=tuple(matched + missing), matched=tuple(matched), matched_genes=tuple(matched),
                         how=("exact",) * len(matched), missing=tuple(missing),
                         missing_reason=("not in data",) * len(missing), min_required=1)

    report = MatchReport(
        [SetMatch(name=n, status="ok" if len(um) + len(dm) >= 5 else "below_min_genes", min_genes=5,
                  up=part("up", um, ux), down=part("down", dm, dx), signature_species="human", signature_version="1")
         for n, (um, ux, dm, dx) in sets.items()],
        data_species="human", id_type="symbol", n_vars=30, library={"name": "test", "version": "x"}, min_genes=None,
        on_empty="raise")
    return report.to_dict()


def _de(n_genes: int = 30, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.random(n_genes) ** 3
    return pd.DataFrame({
        "gene": [f"G{i}" for i in range(n_genes)], "baseMean": rng.random(n_genes) * 100,
        "log2FoldChange": rng.normal(size=n_genes), "lfcSE": 0.2, "stat": rng.normal(size=n_genes),
        "pvalue": p, "padj": np.minimum(p * 3, 1.0),
    })


def _enrichment() -> pd.DataFrame:
    return pd.DataFrame({
        "set": ["set_a", "set_b"], "method": ["gsea", "gsea"], "size": [12, 5], "n_matched": [10, 2],
        "nes_or_effect": [1.8, -0.4], "pvalue": [0.001, 0.6], "fdr": [0.002, 0.6],
        "leading_edge": ["G1;G2;G3", ""], "direction": ["up", "down"],
    })


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def _headings(text: str) -> list[str]:
    return re.findall(r"<h2>([^<]*)</h2>", text)


def _assert_offline(text: str) -> None:
    # No resource or link may point at the network; no script at all.
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', text, flags=re.I)
    assert refs, "expected some src/href attributes"
    assert not [r for r in refs if re.match(r"\s*(https?:)?//", r, flags=re.I)]
    assert "<script" not in text.lower()
    assert "@import" not in text and "url(" not in text


def test_report_with_de(tmp_path):
    adata = _adata(tmp_path)
    de = _de()
    out = write_report(tmp_path / "report.html", adata=adata, de=de, enrichment=_enrichment(), groupby="dormsig_group")
    assert out == tmp_path / "report.html"
    text = out.read_text()
    assert _headings(text) == [h for _, h in SECTIONS]
    _assert_offline(text)
    images = _images(text)
    assert len(images) == len(FIGURES)
    for data in images:
        assert data.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    figures = tmp_path / "report_figures"
    for name in FIGURES:
        png, svg = figures / f"{name}.png", figures / f"{name}.svg"
        assert png.read_bytes().startswith(PNG_MAGIC)
        assert ET.parse(svg).getroot().tag.endswith("svg")
    # The embedded images are the saved PNGs.
    assert sorted(images) == sorted((figures / f"{n}.png").read_bytes() for n in FIGURES)
    # DE summary counts match a hand count.
    n_sig = int((de["padj"] < 0.05).sum())
    assert f"<tr><th>padj &lt; 0.05</th><td>{n_sig}</td></tr>" in text
    # Input record and provenance.
    assert "ab" * 32 in text
    assert "&quot;dormsig_version&quot;" in text
    # The heatmap uses the 12 matched signature genes from uns["dormsig"]["score"]["genes"].
    assert "of 12 matched signature genes" in text
    assert "no DE run" not in text


def test_report_without_de(tmp_path):
    adata = _adata(tmp_path)
    out = write_report(tmp_path / "sub" / "r.html", adata=adata, groupby="dormsig_group")
    text = out.read_text()
    assert _headings(text) == [h for _, h in SECTIONS]
    _assert_offline(text)
    assert "no DE run" in text
    assert "no enrichment run" in text
    figures = tmp_path / "sub" / "r_figures"
    assert sorted(p.name for p in figures.iterdir()) == sorted(
        f"{n}.{s}" for n in ("match_coverage", "scores_by_group", "waterfall", "heatmap") for s in ("png", "svg")
    )
    assert all(d.startswith(PNG_MAGIC) for d in _images(text))


def test_report_bare_anndata_says_what_is_missing(tmp_path):
    adata = ad.AnnData(np.zeros((3, 2), dtype=np.float32))
    text = write_report(tmp_path / "bare.html", adata=adata).read_text()
    assert _headings(text) == [h for _, h in SECTIONS]
    for phrase in ("no input record", "no gene harmonisation record", "no signature match report", "no scores",
                   "no dormancy index", "no signature genes", "no DE run", "no enrichment run"):
        assert phrase in text, phrase
    assert _images(text) == []


def test_report_escapes_text(tmp_path):
    adata = _adata(tmp_path)
    adata.obsm["dormsig_scores"] = adata.obsm["dormsig_scores"].rename(columns={"set_b": "<script>x</script>"})
    adata.obs["dormsig_group"] = adata.obs["dormsig_group"].cat.rename_categories({"NOTCH1_high": 'a"b<i>'})
    text = write_report(tmp_path / "e.html", adata=adata, groupby="dormsig_group", title="T <b>&</b>").read_text()
    assert "<script>" not in text and "<i>" not in text and "<b>&" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text
    assert "a&quot;b&lt;i&gt;" in text
    assert "<title>T &lt;b&gt;&amp;&lt;/b&gt;</title>" in text


def test_report_reads_tables_and_is_deterministic(tmp_path):
    adata = _adata(tmp_path)
    _de().to_csv(tmp_path / "de.tsv", sep="\t", index=False)
    _enrichment().to_csv(tmp_path / "enr.tsv", sep="\t")  # with an index column, as write_table does
    kwargs = {"adata": adata, "de": tmp_path / "de.tsv", "enrichment": str(tmp_path / "enr.tsv"),
              "groupby": "dormsig_group", "figures_dir": tmp_path / "figs"}
    first = write_report(tmp_path / "a.html", **kwargs).read_bytes()
    svg = (tmp_path / "figs" / "volcano.svg").read_bytes()
    second = write_report(tmp_path / "a.html", **kwargs).read_bytes()
    assert first == second
    assert svg == (tmp_path / "figs" / "volcano.svg").read_bytes()
    assert b"leading_edge" in first and b"Unnamed" not in first
    assert not list(tmp_path.glob(".a.html.*"))  # no temporary files left behind


def test_report_errors(tmp_path):
    adata = _adata(tmp_path)
    with pytest.raises(InputError, match="no column 'nope'"):
        write_report(tmp_path / "x.html", adata=adata, groupby="nope")
    with pytest.raises(InputError, match="not found"):
        write_report(tmp_path / "x.html", adata=adata, de=tmp_path / "missing.tsv")
    with pytest.raises(InputError, match="lacks column"):
        write_report(tmp_path / "x.html", adata=adata, de=pd.DataFrame({"gene": ["a"], "pvalue": [0.1]}))
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "x_figures").exists()


def test_rerun_without_de_removes_stale_de_figures(tmp_path):
    adata = _adata(tmp_path)
    write_report(tmp_path / "r.html", adata=adata, de=_de(), groupby="dormsig_group")
    assert (tmp_path / "r_figures" / "volcano.svg").exists()
    write_report(tmp_path / "r.html", adata=adata, groupby="dormsig_group")
    assert not (tmp_path / "r_figures" / "volcano.svg").exists()
    assert not (tmp_path / "r_figures" / "ma.png").exists()
    assert (tmp_path / "r_figures" / "waterfall.png").exists()


def test_report_match_table(tmp_path):
    # The report reads the match report through dormsig.get.match_report (a MatchReport), after an h5ad round trip.
    adata = _adata(tmp_path)
    attach(adata, "score", record("score", method="ucell", match=_match_record({
        "set_a": (["G0", "G1", "G2", "G3"], ["M1"], ["G4", "G5"], ["M2"]),
        "set_b": (["G6"], ["M3", "M4", "M5"], [], []),
    })))
    adata.write_h5ad(tmp_path / "m.h5ad")
    text = write_report(tmp_path / "n.html", adata=ad.read_h5ad(tmp_path / "m.h5ad")).read_text()
    table = text.split('id="signatures"')[1].split("</table>")[0]
    assert table.count("<tr>") == 3  # header + 2 sets
    assert "<td>up 4/5, down 2/3</td>" in table and "<td>up 1/4</td>" in table
    assert "<td>M1, M2</td>" in table and "<td>M3, M4, M5</td>" in table


@pytest.mark.slow
def test_report_on_scored_example_data(tmp_path):
    """End to end on the shipped CTC data: read, groups, score, rank, then the report."""
    import warnings

    import dormsig.data
    import dormsig.tl
    from dormsig.de.groups import define_groups

    adata = dormsig.data.ctc()
    define_groups(adata, high="NOTCH2", versus="NOTCH1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dormsig.tl.score(adata, index="default")
        dormsig.tl.rank(adata)
    text = write_report(tmp_path / "ctc.html", adata=adata, groupby="dormsig_group").read_text()
    _assert_offline(text)
    n_sets = len(adata.uns["dormsig"]["score"]["sets"])
    table = text.split('id="signatures"')[1].split("</table>")[0]
    assert table.count("<tr>") == n_sets + 1
    genes = adata.uns["dormsig"]["score"]["genes"]
    matched = {g for parts in genes.values() for part in parts.values() for g in part} & set(adata.var_names)
    assert f"of {len(matched)} matched signature genes" in text
    n_calls = adata.obs["dormsig_call"].value_counts()
    for call, n in n_calls.items():
        assert f"<tr><th>{call}</th><td class=\"num\">{n}</td></tr>" in text
    assert len(_images(text)) == 4  # coverage, scores, waterfall, heatmap; no DE figures
    assert "no DE run" in text


def test_long_cells_are_truncated_with_full_text_on_hover(tmp_path):
    adata = _adata(tmp_path)
    enr = _enrichment()
    long = ";".join(f"GENE{i}" for i in range(40))
    enr.loc[0, "leading_edge"] = long
    text = write_report(tmp_path / "t.html", adata=adata, enrichment=enr).read_text()
    assert f'<td title="{long}">{long[:80]}…</td>' in text
