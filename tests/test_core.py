"""Errors, provenance, atomic writers, normalisation and the lazy top-level import."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

import dormsig
from dormsig import errors
from dormsig.io.write import OutputSet, atomic_path, check_output, write_json
from dormsig.pp import normalise
from dormsig.provenance import attach, jsonable, record, sha256


def test_import_is_lazy_and_exposes_version_and_namespaces():
    code = (
        "import sys, dormsig; heavy = [m for m in ('scanpy', 'numba', 'pydeseq2', 'gseapy', 'seaborn') if m in sys.modules];"
        "print(dormsig.__version__, heavy, sorted(n for n in dir(dormsig) if not n.startswith('_')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith(dormsig.__version__ + " [] ")
    for ns in ("io", "genes", "pp", "signatures", "tl", "de", "pl", "report"):
        assert f"'{ns}'" in out


def test_errors_are_one_line_name_the_path_and_are_builtin_types():
    err = errors.InputError("bad\nvalue   here", path="x/counts.tsv")
    assert str(err) == "x/counts.tsv: bad value here"
    assert isinstance(err, ValueError) and isinstance(err, errors.DormsigError)
    assert isinstance(errors.MissingInputError("gone", path="a"), FileNotFoundError)
    assert isinstance(errors.OutputError("no"), OSError)


def test_sha256_of_file_and_directory(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"dormsig")
    assert sha256(f) == hashlib.sha256(b"dormsig").hexdigest()
    d = tmp_path / "d"
    d.mkdir()
    (d / "x").write_text("1")
    first = sha256(d)
    (d / "x").write_text("2")
    assert sha256(d) != first


def test_record_is_jsonable_and_has_no_timestamp():
    rec = record("score", method="ucell", params={"seed": np.int64(3), "sets": ("A", "B"), "x": np.arange(2)})
    assert rec == {"dormsig_version": dormsig.__version__, "step": "score", "method": "ucell",
                   "params": {"seed": 3, "sets": ["A", "B"], "x": [0, 1]}}
    json.dumps(rec)
    assert jsonable(float("nan")) == "nan"


def test_attach_survives_h5ad_roundtrip(tmp_path):
    import anndata as ad

    a = AnnData(np.ones((2, 2), dtype=np.float32))
    attach(a, "score", {"params": {"none": None, "empty": [], "names": ["A", "B"], "nested": [{"a": 1}]},
                        "inputs": {"/tmp/x.csv": "abc"}})
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad")
    params = b.uns["dormsig"]["score"]["params"]
    assert list(params["names"]) == ["A", "B"]
    assert json.loads(params["nested"]) == [{"a": 1}]
    assert dict(b.uns["dormsig"]["score"]["inputs"]) == {"%2Ftmp%2Fx.csv": "abc"}


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done" and len(list(tmp_path.iterdir())) == 1


def test_check_output_refuses_existing_inputs_and_unwritable(tmp_path):
    existing = tmp_path / "x.tsv"
    existing.write_text("1")
    with pytest.raises(errors.OutputError, match="exists"):
        check_output(existing)
    assert check_output(existing, force=True) == existing
    with pytest.raises(errors.OutputError, match="input"):
        check_output(existing, force=True, inputs=[existing])
    # A directory that cannot be created (its parent is a file): root cannot get past this either.
    with pytest.raises(errors.OutputError, match="cannot create output directory"):
        check_output(existing / "sub" / "a.tsv")


def test_output_set_writes_sidecars_with_checksums(tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("a,b\n")
    outs = OutputSet("test", {"k": 1}, [inp, None])
    out = outs.add(tmp_path / "o.json")
    write_json(out, {"x": 1})
    (side,) = outs.finish()
    rec = json.loads(side.read_text())
    assert rec["inputs"] == {str(inp): hashlib.sha256(b"a,b\n").hexdigest()}
    assert rec["output"]["sha256"] == sha256(out)
    with pytest.raises(errors.MissingInputError):
        OutputSet("test", {}, [tmp_path / "nope"])


@pytest.mark.parametrize("sparse", [False, True])
def test_normalise_matches_hand_computation(sparse):
    counts = np.array([[1, 0, 3], [0, 0, 0], [2, 2, 0]], dtype=np.int64)
    a = AnnData(np.zeros((3, 3), dtype=np.float32))
    a.layers["counts"] = sp.csr_matrix(counts) if sparse else counts
    normalise(a, target_sum=100)
    x = a.X.toarray() if sparse else a.X
    expected = np.log1p(np.array([[25, 0, 75], [0, 0, 0], [50, 50, 0]], dtype=float))
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    rec = a.uns["dormsig"]["normalise"]
    assert rec["params"]["target_sum"] == 100 and rec["n_zero_library"] == 1


def test_normalise_default_scale_is_per_sample_not_cohort():
    counts = np.array([[10, 30], [1, 3]], dtype=np.int64)
    a = AnnData(np.zeros((2, 2), dtype=np.float32), layers={"counts": counts})
    normalise(a)
    # Same proportions give the same values, whatever the depth: no cohort median involved.
    np.testing.assert_allclose(a.X[0], a.X[1])
    assert a.uns["dormsig"]["normalise"]["params"]["target_sum"] == 1e4
