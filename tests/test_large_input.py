"""Large inputs: backed scoring without loading the matrix, and the size limit on text tables.

(a) A 1,000,000-cell ``.h5ad`` belongs to the scoring benchmark, not CI; here the mechanism is
    tested at small scale: scoring ``read_h5ad(path, backed="r")`` keeps the AnnData backed, gives
    the in-memory numbers bitwise, and its peak Python/numpy memory stays far below the matrix size.
(b) Text tables are parsed whole into memory, so ``dormsig.io.read`` refuses one above
    ``DORMSIG_MAX_TABLE_BYTES`` (default 1 GiB, uncompressed size; gzip ISIZE trailer, confirmed by
    a streamed count) with a message naming the limit and the alternatives.
"""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dormsig.errors import InputError
from dormsig.io import read
from dormsig.io.detect import MAX_TABLE_BYTES, check_table_size, uncompressed_size

N_CELLS, N_GENES = 20000, 400  # float32 dense: 32 MB on disk and in memory


@pytest.fixture(scope="module")
def dense_h5ad(tmp_path_factory) -> tuple[Path, dict]:
    import anndata as ad

    from dormsig.genes.tables import _read

    genes = _read("human_genes.tsv.gz")["symbol"].drop_duplicates().iloc[:N_GENES].tolist()
    rng = np.random.default_rng(0)
    X = rng.gamma(0.6, 2.0, size=(N_CELLS, N_GENES)).astype(np.float32)
    X[rng.random(X.shape) < 0.6] = 0
    adata = ad.AnnData(X=X, var=pd.DataFrame(index=genes), obs=pd.DataFrame(index=[f"c{i}" for i in range(N_CELLS)]))
    path = tmp_path_factory.mktemp("backed") / "dense.h5ad"
    adata.write_h5ad(path)
    sigs = {"A": {"up": genes[:15], "down": genes[100:110]}, "B": {"up": genes[200:240]}}
    return path, sigs


@pytest.mark.parametrize("method", ["ucell", "aucell", "singscore"])
def test_backed_scoring_does_not_load_the_matrix(dense_h5ad, method):
    import anndata as ad

    from dormsig.tl import score

    path, sigs = dense_h5ad
    backed = ad.read_h5ad(path, backed="r")
    matrix_bytes = N_CELLS * N_GENES * 4
    # warm-up on 3 cells: numba compiles the kernels on first use (compiler memory is not the matrix)
    score(ad.read_h5ad(path, backed="r")[:3].to_memory(), sigs, method=method, index=None, species="human")
    tracemalloc.start()
    try:
        score(backed, sigs, method=method, index=None, species="human", chunk_size=500, threads=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert backed.isbacked
    # one chunk is 500 x 400 (float64 after conversion: 1.6 MB); the whole matrix would be 32 MB
    assert peak < matrix_bytes / 4, f"peak {peak / 1e6:.1f} MB for a {matrix_bytes / 1e6:.0f} MB matrix"
    in_memory = ad.read_h5ad(path)
    score(in_memory, sigs, method=method, index=None, species="human")
    pd.testing.assert_frame_equal(backed.obsm["dormsig_scores"], in_memory.obsm["dormsig_scores"], check_exact=True)
    backed.file.close()


# ------------------------------------------------------------------------------------------ size limit
@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("limit")
    df = pd.DataFrame(np.arange(60).reshape(20, 3), index=[f"GENE{k}" for k in range(20)],
                      columns=["GSM1", "GSM2", "GSM3"])
    df.index = ["ACTB", "GAPDH", "TP53", "MYC", "EGFR", *df.index[5:]]
    path = d / "t.tsv"
    df.to_csv(path, sep="\t", index_label="gene")
    (d / "t.tsv.gz").write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    return path


def test_default_limit_is_one_gib():
    assert MAX_TABLE_BYTES == 1 << 30


def test_limit_from_environment(table, monkeypatch):
    size = table.stat().st_size
    monkeypatch.setenv("DORMSIG_MAX_TABLE_BYTES", str(size - 1))
    with pytest.raises(InputError) as info:
        read(table)
    msg = str(info.value)
    assert msg.startswith(f"{table}: table is ")
    assert f"above the {size - 1} bytes limit for text tables" in msg
    assert "convert it to .h5ad / 10x .mtx (e.g. with scanpy) or raise the limit with DORMSIG_MAX_TABLE_BYTES" in msg
    monkeypatch.setenv("DORMSIG_MAX_TABLE_BYTES", str(size))
    assert read(table, harmonise=False).shape == (3, 20)  # exactly at the limit: read


def test_gzip_limit_uses_uncompressed_size(table, monkeypatch):
    gz = table.with_name("t.tsv.gz")
    size = table.stat().st_size
    assert gz.stat().st_size < size == uncompressed_size(gz)
    monkeypatch.setenv("DORMSIG_MAX_TABLE_BYTES", str(gz.stat().st_size + 1))  # above compressed, below text
    with pytest.raises(InputError, match="above the .* limit for text tables"):
        read(gz)
    # an explicit argument wins over the environment
    assert read(gz, harmonise=False, max_table_bytes=size).n_obs == 3


@pytest.mark.parametrize("value", ["lots", "-5", "0"])
def test_bad_limit_in_environment(table, monkeypatch, value):
    monkeypatch.setenv("DORMSIG_MAX_TABLE_BYTES", value)
    with pytest.raises(InputError, match="DORMSIG_MAX_TABLE_BYTES"):
        read(table)


def test_truncated_gzip_with_garbage_trailer_is_not_called_too_big():
    """A truncated .gz ends in arbitrary bytes: its 'ISIZE' must not be taken for a size."""
    static = Path(__file__).resolve().parent / "corpus" / "static" / "truncated.tsv.gz"
    assert uncompressed_size(static) > MAX_TABLE_BYTES  # the trailer bytes claim gigabytes
    with pytest.raises(InputError, match="truncated or corrupt gzip file"):
        check_table_size(static)


def test_two_gb_gzip_table_refused_with_bounded_memory(tmp_path):
    """A real 2 GiB (uncompressed) gzip table under the default limit: refused before parsing, while
    holding at most one 1 MiB block (the ISIZE check is confirmed by a streamed count up to the limit)."""
    path = tmp_path / "huge.tsv.gz"
    line = b"ACTB\t" + b"\t".join(b"0" for _ in range(100)) + b"\n"
    block = line * ((1 << 20) // len(line))
    total = 0
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip container
    with open(path, "wb") as handle:
        handle.write(comp.compress(b"gene\t" + b"\t".join(b"S%d" % k for k in range(100)) + b"\n"))
        while total < 2 << 30:
            handle.write(comp.compress(block))
            total += len(block)
        handle.write(comp.flush())
    assert path.stat().st_size < 64 << 20  # ~24 MB on disk
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as info:
            read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "table is 2.0 GiB, above the 1.0 GiB limit for text tables" in str(info.value)
    assert peak < 16 << 20
