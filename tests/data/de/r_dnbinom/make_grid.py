"""Grid of (x, size, mu) for R's dnbinom, drawn from the CTC counts and R's dispersions (tests/test_nbinom.py).

Run from the repository root: python tests/data/de/r_dnbinom/make_grid.py, then Rscript .../make_dnbinom.R.
Values are written as C99 hex floats so that R reads exactly the doubles Python wrote.
"""
from pathlib import Path

import numpy as np
import pandas as pd

ref = Path("tests/data/de/r_reference")
out = Path("tests/data/de/r_dnbinom")
rng = np.random.default_rng(11)
counts = pd.read_csv(ref / "ctc_counts.csv.gz", index_col=0)
r = pd.read_csv(ref / "ctc_n2_vs_n1_r_results.csv.gz", index_col=0).loc[counts.index]
sf = pd.read_csv(ref / "ctc_n2_vs_n1_r_size_factors.csv", index_col=0)["size_factor"].loc[counts.columns].to_numpy()
n = 4000
gi = rng.integers(0, counts.shape[0], n)
si = rng.integers(0, counts.shape[1], n)
x = counts.to_numpy()[gi, si].astype(float)
x[: n // 4] = rng.integers(1, 40, n // 4)  # small non-zero counts: stirlerr from lgamma
size = 1.0 / r["dispersion"].to_numpy()[gi]
mu = sf[si] * r["baseMean"].to_numpy()[gi] * 2.0 ** rng.uniform(-8, 8, n)
mu[::7] = np.maximum(x[::7], 0.5) * 2.0 ** rng.normal(0, 0.05, len(mu[::7]))  # near x: bd0's series
mu[::11] = sf[si[::11]] * 2.0 ** rng.uniform(-30, 30, len(mu[::11]))  # fold changes at R's +-30 bound
pd.DataFrame({"x": [v.hex() for v in x], "size": [v.hex() for v in size], "mu": [v.hex() for v in mu]}).to_csv(
    out / "grid.csv.gz", index=False)
