"""Property test: any integer count table written by pandas in either orientation reads back exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dormsig.io import read


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_genes=st.integers(1, 12),
    n_samples=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    transpose=st.booleans(),
    sep=st.sampled_from([",", "\t"]),
    gz=st.booleans(),
    index_label=st.sampled_from([None, "gene_id", False]),  # False: R write.table short header
)
def test_table_roundtrip(tmp_path_factory, n_genes, n_samples, seed, transpose, sep, gz, index_label):
    rng = np.random.default_rng(seed)
    counts = rng.negative_binomial(2, 0.05, size=(n_samples, n_genes))  # samples x genes
    genes = [f"ENSG{k:011d}" for k in rng.choice(10**6, n_genes, replace=False)]
    samples = [f"GSM{k}" for k in rng.choice(10**6, n_samples, replace=False)]
    df = pd.DataFrame(counts.T, index=genes, columns=samples)
    if transpose:
        df = df.T
    path = tmp_path_factory.mktemp("t") / ("x" + (".csv" if sep == "," else ".tsv") + (".gz" if gz else ""))
    df.to_csv(path, sep=sep, index_label=index_label)
    adata = read(path, harmonise=False)
    assert list(adata.obs_names) == samples and list(adata.var_names) == genes
    np.testing.assert_array_equal(adata.layers["counts"], counts)
    assert np.issubdtype(adata.layers["counts"].dtype, np.integer)
