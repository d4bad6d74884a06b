"""Sets at their floor score, old default (UCell, max_rank=1500) vs the data-following default (issue 12).

For every set of the shipped library, prints the fraction of observations whose score equals the
set's floor (the score of an observation with none of the set's genes detected) on

- the bundled Aceto 2014 CTC counts (29 bulk samples x 16k genes): old = ucell/1500, new = auto
  (singscore on bulk), and uncapped UCell (max_rank = number of genes) for comparison;
- the Tirosh 2016 oligodendroglioma cells when /work/shared/data is there (auto = ucell/1500 on cells,
  so old and new are the same).

    python benchmarks/floor_before_after.py [--shared /work/shared/data]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pandas as pd


def floors(adata, **kwargs) -> pd.Series:
    from dormsig import tl
    from dormsig.signatures import load_library

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(adata, list(load_library().keys()), index=None, **kwargs)
    rec = adata.uns["dormsig"]["score"]
    return pd.Series({k: float(v["fraction"]) for k, v in rec["floor"].items()}, name=rec["method"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="/work/shared/data", help="shared data folder (oligodendroglioma)")
    args = parser.parse_args()
    from dormsig.data import ctc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ctc()
    table = pd.DataFrame({
        "ctc_old_ucell1500": floors(a, method="ucell", max_rank=1500),
        "ctc_ucell_uncapped": floors(a, method="ucell"),
        "ctc_new_auto": floors(a),
    })
    oligo = Path(args.shared) / "sc_oligodendroglioma_tirosh2016" / "oligodendroglioma_expression_downsampled.counts.matrix.gz"
    if oligo.exists():
        from dormsig.io import read

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = read(oligo)
        table["oligo_auto_ucell1500"] = floors(b)
    pd.set_option("display.width", 200)
    table.index = [i[:40] for i in table.index]
    print("fraction of observations at the set's floor score (> 0.5 is warned about)")
    print(table.round(3).to_string())
    print("\nsets with > half at the floor:", (table > 0.5).sum().to_dict())


if __name__ == "__main__":
    main()
