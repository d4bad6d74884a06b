"""R's lowess and independent filtering (dormsig.de.r_filter) against R's own outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydeseq2.utils import lowess as pydeseq2_lowess

from dormsig.de.r_filter import r_lowess

DATA = Path(__file__).parent / "data" / "de" / "lowess"


@pytest.mark.parametrize("case", ["flat", "peak", "steps", "outliers"])
def test_lowess_equals_r(case: str) -> None:
    """R 4.2 ``lowess(theta, y, f = 1/5)`` (make_lowess.R), the smoother of R's independent filtering."""
    t = pd.read_csv(DATA / "r_lowess.csv")
    np.testing.assert_allclose(r_lowess(t["theta"].to_numpy(), t[case].to_numpy(), f=1 / 5), t[f"{case}_fit"],
                               rtol=1e-10, atol=1e-9)


def test_pydeseq2_lowess_is_not_rs() -> None:
    # why this module exists: pydeseq2's smoother differs from R's on the same numbers
    t = pd.read_csv(DATA / "r_lowess.csv")
    diff = np.abs(pydeseq2_lowess(t["theta"].to_numpy(), t["flat"].to_numpy().astype(float), frac=1 / 5) - t["flat_fit"])
    assert diff.max() > 0.1
