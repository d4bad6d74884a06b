"""Every reader's output can be written as h5ad and read back unchanged; harmonise gets duplicated IDs merged."""

from __future__ import annotations

import anndata
import numpy as np
import pytest
import scipy.sparse as sp
from io_fixtures import IO_DATA

from dormsig.data import CTC_COUNTS, CTC_SAMPLES, example_path
from dormsig.io import read, write_h5ad

CASES = {
    "table_annotated": (IO_DATA / "tables" / "annotated_genes_x_samples.tsv", {}),
    "ctc_with_sheet": (example_path(CTC_COUNTS), {"sample_sheet": example_path(CTC_SAMPLES)}),
    "featurecounts": (IO_DATA / "featurecounts" / "counts.txt", {}),
    "star": (IO_DATA / "star_reverse", {}),
    "salmon": (IO_DATA / "salmon", {"tx2gene": IO_DATA / "tx2gene.tsv"}),
    "kallisto": (IO_DATA / "kallisto", {"tx2gene": IO_DATA / "tx2gene.tsv"}),
    "rsem": (IO_DATA / "rsem", {}),
    "tenx_v3": (IO_DATA / "tenx_v3", {}),
    "oligodendroglioma": (IO_DATA / "oligodendroglioma_300genes.counts.matrix.gz", {}),
}


def _dense(m):
    return m.toarray() if sp.issparse(m) else np.asarray(m)


@pytest.mark.parametrize("case", sorted(CASES))
def test_h5ad_roundtrip(tmp_path, case):
    path, kwargs = CASES[case]
    adata = read(path, harmonise=False, **kwargs)
    out = tmp_path / "x.h5ad"
    write_h5ad(adata, out)
    back = anndata.read_h5ad(out)
    assert list(back.obs_names) == list(adata.obs_names) and list(back.var_names) == list(adata.var_names)
    np.testing.assert_array_equal(_dense(back.layers["counts"]), _dense(adata.layers["counts"]))
    assert back.layers["counts"].dtype == adata.layers["counts"].dtype
    assert back.uns["dormsig"]["input"]["sha256"] == adata.uns["dormsig"]["input"]["sha256"]


def test_duplicated_ids_are_merged_by_harmonise(tmp_path):
    path = tmp_path / "dup.tsv"
    path.write_text("gene\tS1\tS2\nTP53\t1\t2\nGAPDH\t3\t4\nTP53\t5\t6\n")
    adata = read(path)  # harmonise=True: duplicated TP53 rows are summed, not left as TP53__1
    assert sorted(adata.var_names) == ["GAPDH", "TP53"]
    tp53 = list(adata.var_names).index("TP53")
    np.testing.assert_array_equal(adata.layers["counts"][:, tp53], [6, 8])
    assert "id_in_file" not in adata.var
