"""Write the counts and colData that R DESeq2 is run on for the multi-factor concordance tests.

Run from the repository root: ``python tests/data/de/r_reference/make_inputs.py``; then
``Rscript tests/data/de/r_reference/make_references.R`` (Debian ``r-bioc-deseq2``).

Designs (each written as ``<name>_counts.csv.gz`` genes x samples and ``<name>_coldata.csv``):

- ``ctc``: the bundled Aceto 2014 CTC counts (29 samples, read and harmonised by ``dormsig.io.read``),
  groups ``NOTCH2`` vs ``NOTCH1`` and ``NOTCH2`` high vs low over all 29 samples (``group_*``: the demo's
  groups before the tumour check, 7 v 7), and exactly as ``dormsig demo`` defines them since the tumour
  check (``tumour_group_*``: the 10 samples without epithelial RNA form their own level ``no_tumour_rna``;
  NOTCH2_high 3 v NOTCH1_high 3, NOTCH2_high 9 v NOTCH2_low 10), design ``~ patient + group``.
- ``sim_wide``: simulated negative-binomial counts, 40 samples, ``~ batch + condition`` with 6 batches and 8
  conditions (14 coefficients); some genes have zero counts in whole conditions (complete separation).
- ``sim_cont``: simulated, 16 samples, ``~ age + condition`` with a continuous covariate.
- ``oligo_pb``: pseudobulk of the oligodendroglioma single cells (tumour x malignant/non-malignant), ``~ tumour + cell_class``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent


def write(name: str, counts: pd.DataFrame, coldata: pd.DataFrame) -> None:
    counts.T.to_csv(OUT / f"{name}_counts.csv.gz", index_label="gene")  # genes x samples
    coldata.to_csv(OUT / f"{name}_coldata.csv", index_label="sample")
    print(name, counts.shape, coldata.columns.tolist())


def ctc() -> None:
    from dormsig.data import ctc as load_ctc
    from dormsig.de.groups import define_groups

    adata = load_ctc()
    cols = {}
    for prefix, check in (("", "none"), ("tumour_", "auto")):
        for high, versus, key in (("NOTCH2", "NOTCH1", "group_NOTCH2_vs_NOTCH1"),
                                  ("NOTCH2", "low", "group_NOTCH2_high_vs_low")):
            define_groups(adata, high=high, versus=versus, key_added=prefix + key, tumour_check=check)
            cols[prefix + key] = adata.obs[prefix + key].astype(str)
    counts = pd.DataFrame(np.asarray(adata.layers["counts"].todense() if hasattr(adata.layers["counts"], "todense")
                                     else adata.layers["counts"]).astype(np.int64),
                          index=adata.obs_names, columns=adata.var_names)
    coldata = pd.DataFrame({"patient": adata.obs["patient"].astype(str), **cols}, index=adata.obs_names)
    write("ctc", counts, coldata)


def _nb(rng, mu, disp):
    return rng.negative_binomial(1 / disp, 1 / (1 + mu * disp))


def sim_wide(seed: int = 11) -> None:
    rng = np.random.default_rng(seed)
    n_genes, batches, conds = 1500, 6, 8
    cond = np.repeat([f"c{i}" for i in range(conds)], 5)
    batch = np.array([f"b{i % batches}" for i in range(cond.size)])
    base = np.exp(rng.normal(3.5, 2.0, n_genes))
    disp = 0.05 + 2.0 / base
    eff_c = rng.normal(0, 1.0, (conds, n_genes)) * (rng.random((conds, n_genes)) < 0.2)
    eff_c[0] = 0
    eff_b = rng.normal(0, 0.4, (batches, n_genes))
    sf = np.exp(rng.normal(0, 0.3, cond.size))
    ci = np.array([int(c[1:]) for c in cond])
    bi = np.array([int(b[1:]) for b in batch])
    mu = sf[:, None] * base[None, :] * np.exp(eff_c[ci] + eff_b[bi])
    counts = _nb(rng, mu, disp[None, :])
    # complete separation: genes silent in whole conditions (incl. both levels of one contrast)
    sep = rng.choice(n_genes, 60, replace=False)
    for k, g in enumerate(sep):
        counts[np.isin(ci, [k % conds, (k + 3) % conds] if k % 2 else [k % conds]), g] = 0
    names = [f"s{i:02d}" for i in range(cond.size)]
    write("sim_wide", pd.DataFrame(counts, index=names, columns=[f"g{i:04d}" for i in range(n_genes)]),
          pd.DataFrame({"batch": batch, "condition": cond}, index=names))


def sim_cont(seed: int = 12) -> None:
    rng = np.random.default_rng(seed)
    n_genes, n = 1500, 16
    cond = np.repeat(["A", "B"], n // 2)
    age = np.round(rng.uniform(20, 80, n), 1)
    base = np.exp(rng.normal(4, 1.8, n_genes))
    disp = 0.03 + 1.5 / base
    eff = rng.normal(0, 1.2, n_genes) * (rng.random(n_genes) < 0.15)
    slope = rng.normal(0, 0.02, n_genes) * (rng.random(n_genes) < 0.3)
    mu = base[None, :] * np.exp(np.outer(cond == "B", eff) + np.outer(age - 50, slope))
    counts = _nb(rng, mu * np.exp(rng.normal(0, 0.2, n))[:, None], disp[None, :])
    names = [f"s{i:02d}" for i in range(n)]
    write("sim_cont", pd.DataFrame(counts, index=names, columns=[f"g{i:04d}" for i in range(n_genes)]),
          pd.DataFrame({"age": age, "condition": cond}, index=names))


def oligo_pb(min_cells: int = 2) -> None:
    """Pseudobulk: RSEM expected counts rounded, summed per (plate, cell class) with >= ``min_cells`` cells."""
    shared = Path("/work/shared/data/sc_oligodendroglioma_tirosh2016")
    ann = pd.read_csv(shared / "oligodendroglioma_annotations_downsampled.txt", sep="\t", header=None, index_col=0)[1]
    expr = pd.read_csv(shared / "oligodendroglioma_expression_downsampled.counts.matrix.gz", sep="\t", index_col=0)
    expr = np.round(expr[ann.index]).astype(np.int64).T  # cells x genes
    cls = np.where(ann.str.startswith("malignant"), "malignant",
                   np.where(ann.str.startswith("Micro"), "immune", "oligodendrocyte"))
    cells = ann.index.to_series()
    key = pd.DataFrame({"plate": cells.str.split("_").str[:2].str.join("_").to_numpy(), "cell_class": cls},
                       index=ann.index)
    sums = expr.groupby([key["plate"], key["cell_class"]]).sum()
    n = key.groupby(["plate", "cell_class"]).size()
    sums = sums[n.loc[sums.index].to_numpy() >= min_cells]
    names = [f"{p}_{c}" for p, c in sums.index]
    coldata = pd.DataFrame({"patient": [p.split("_")[0] for p, _ in sums.index],
                            "cell_class": [c for _, c in sums.index]}, index=names)
    sums.index = names
    sums = sums.loc[:, sums.sum(axis=0) > 0]
    write("oligo_pb", sums, coldata)


if __name__ == "__main__":
    ctc()
    sim_wide()
    sim_cont()
    oligo_pb()
