"""Points at which R DESeq2's optim objective and R optim's finite-difference gradient are evaluated.

CTC design ``~ patient + group`` (NOTCH2_high vs NOTCH1_high), counts of genes R refits with optim
(not betaConv or |LFC| near 30), R's dispersions and size factors; coefficient vectors random around
R's fit, some coordinates at or within 1e-3 of the +-30 bound (where R shortens the step).
Run from the repository root: python tests/data/de/r_optim_objective/make_cases.py, then
Rscript tests/data/de/r_optim_objective/make_objective.R. Floats are C99 hex, so R reads Python's doubles.
"""
from pathlib import Path

import numpy as np
import pandas as pd

ref = Path("tests/data/de/r_reference")
out = Path("tests/data/de/r_optim_objective")
rng = np.random.default_rng(11)
counts = pd.read_csv(ref / "ctc_counts.csv.gz", index_col=0)
cd = pd.read_csv(ref / "ctc_coldata.csv", index_col=0).loc[counts.columns]
r = pd.read_csv(ref / "ctc_n2_vs_n1_r_results.csv.gz", index_col=0).loc[counts.index]
sf = pd.read_csv(ref / "ctc_n2_vs_n1_r_size_factors.csv", index_col=0)["size_factor"].loc[counts.columns].to_numpy()
pat = pd.get_dummies(cd["patient"], dtype=float).iloc[:, 1:]
grp = pd.Categorical(cd["group_NOTCH2_vs_NOTCH1"])
levels = ["NOTCH1_high"] + [lv for lv in grp.categories if lv != "NOTCH1_high"]
gd = pd.get_dummies(pd.Categorical(cd["group_NOTCH2_vs_NOTCH1"], categories=levels), dtype=float).iloc[:, 1:]
x = np.column_stack([np.ones(len(cd)), pat.to_numpy(), gd.to_numpy()])
cand = np.flatnonzero(((~r["betaConv"].astype(bool)) | (r["log2FoldChange"].abs() > 20)).to_numpy()
                      & (r["baseMean"] > 0).to_numpy())
genes = rng.choice(cand, 150, replace=False)
rows = []
for g in genes:
    k = counts.to_numpy()[g].astype(float)
    base = np.log2(np.maximum(k, 0.5) / sf).mean()
    for j in range(4):
        p = np.r_[base, rng.normal(0, 4, x.shape[1] - 1)]
        if j == 1:
            p[rng.integers(1, x.shape[1])] = -30.0 + rng.uniform(0, 2e-3)
        if j == 2:
            p[rng.integers(1, x.shape[1])] = 30.0
        if j == 3:
            p[1:] = np.clip(p[1:] * 6, -30, 30)
        rows.append({"gene": counts.index[g], "alpha": r["dispersion"].iloc[g].hex(),
                     "k": ";".join(v.hex() for v in k), "p": ";".join(v.hex() for v in p)})
pd.DataFrame(rows).to_csv(out / "cases.csv.gz", index=False)
pd.DataFrame(x).map(float.hex).to_csv(out / "design.csv", index=False)
pd.DataFrame({"nf": [v.hex() for v in sf]}).to_csv(out / "nf.csv", index=False)
