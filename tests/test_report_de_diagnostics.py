"""The DE diagnostics section (an example of a section added with one module and one registry line)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_report import _adata, _headings

from dormsig.report import SECTIONS, write_report


def test_de_diagnostics_per_contrast(tmp_path):
    p = [0.01, 0.02, 0.03, 0.2, 0.4, 0.6, 0.9, np.nan]
    de = pd.DataFrame({"gene": [f"G{i}" for i in range(8)], "baseMean": 10.0,
                       "log2FoldChange": [12.0, -1, 1, 0, 0, 0, 0, np.nan], "pvalue": p,
                       "padj": [0.07, 0.07, 0.07, np.nan, 0.56, 0.7, 0.9, np.nan]})
    null = de.assign(pvalue=np.linspace(0.05, 1, 8), padj=1.0, log2FoldChange=0.0)
    zero = de.assign(contrast_all_zero=[False] * 6 + [True, False])  # G6 (p 0.9, as R gives p 1) is not tested
    text = write_report(tmp_path / "r.html", adata=_adata(tmp_path),
                        de={"B vs A": de, "C vs A": null, "D vs A": zero}).read_text()
    assert "DE diagnostics" in _headings(text) and ("de-diagnostics", "DE diagnostics") in SECTIONS
    block = text.split('<section id="de-diagnostics">')[1].split("</section>")[0]
    rows = block.split("<tr>")[2:]
    # 7 genes with a p-value, 1 filtered (G3), 3/7 = 42.9 % below 0.05, pi0 = (2/7) / 0.5 = 0.571, one |LFC| > 10
    cells = ['<td>B vs A</td>', '<td class="num">7</td>', '<td class="num">1</td>', "<td>42.9 %</td>",
             "<td>0.571</td>", '<td class="num">1</td>']
    assert "".join(cells) in rows[0].replace("\n", "")
    # 8 uniform p-values from 0.05 to 1: none below 0.05, 4 above 0.5 -> pi0 = min(1, 4/8/0.5) = 1
    assert "<td>0.0 %</td><td>1.000</td>" in rows[1]
    # 6 tested, 3/6 below 0.05, pi0 = (1/6) / 0.5
    assert '<td class="num">6</td><td class="num">1</td><td>50.0 %</td><td>0.333</td>' in rows[2]
    # one p-value histogram per contrast, the genes tested counted in its axis label
    assert (tmp_path / "r_figures" / "pvalues_B_vs_A.png").is_file() and (tmp_path / "r_figures" / "pvalues_C_vs_A.svg").is_file()
    assert "no DE run" in write_report(tmp_path / "s.html", adata=_adata(tmp_path)).read_text().split(
        'id="de-diagnostics"')[1].split("</section>")[0]
