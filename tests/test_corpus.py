"""The bad-input corpus: one parametrized test driven by ``tests/corpus/cases.yaml``.

Every CLI case runs the ``dormsig`` console script (next to ``sys.executable``) as a subprocess;
the CLI cases run a few at a time in one session fixture to keep the suite fast. Each case asserts
the exit code (or exception type), the one-line message, no traceback, no partial output, no
``.tmp`` leftover, and unchanged input checksums. See ``tests/corpus/README.md`` for the table.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import dormsig.errors

CORPUS = Path(__file__).resolve().parent / "corpus"
sys.path.insert(0, str(CORPUS))
from generate import generate  # noqa: E402

CASES: list[dict] = yaml.safe_load((CORPUS / "cases.yaml").read_text())
DORMSIG = Path(sys.executable).parent / "dormsig"
PLACEHOLDER = re.compile(r"\{f:([^}]+)\}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fill(value: Any, files: dict[str, Path], out: Path) -> Any:
    """Replace ``{f:NAME}`` by the corpus file and ``{out}`` by the case's output directory."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: str(files[m.group(1)]), value).replace("{out}", str(out))
    if isinstance(value, list):
        return [_fill(v, files, out) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, files, out) for k, v in value.items()}
    return value


def _named_files(case: dict, files: dict[str, Path]) -> list[Path]:
    text = yaml.safe_dump({k: case.get(k) for k in ("args", "params")})
    return [files[name] for name in dict.fromkeys(PLACEHOLDER.findall(text)) if files[name].is_file()]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def corpus_sha(corpus) -> dict[Path, str]:
    return {p: _sha(p) for p in corpus.values() if p.is_file()}


def _prepare_cli(case: dict, files: dict[str, Path], root: Path) -> dict:
    out = root / case["id"]
    out.mkdir(parents=True)
    for p in _fill(case.get("precreate", []), files, out):
        Path(p).write_text("an earlier output\n")
    args = [str(a) for a in _fill(case["args"], files, out)]
    env = {k: str(v) for k, v in (case.get("env") or {}).items()}
    return {"id": case["id"], "args": args, "env": env, "cwd": str(out), "out": out}


def _run_console(job: dict) -> dict:
    """The real console script, one process per case."""
    env = dict(os.environ)
    env.pop("DORMSIG_MAX_TABLE_BYTES", None)
    env.update(job["env"])
    proc = subprocess.run([str(DORMSIG), *job["args"]], capture_output=True, text=True, env=env, cwd=job["cwd"],
                          timeout=600)
    return {job["id"]: {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}}


def _run_batch(jobs: list[dict], root: Path, k: int) -> dict:
    """Many cases through dormsig.cli.main in one subprocess (see corpus/cli_batch.py)."""
    todo, done = root / f"batch{k}.json", root / f"batch{k}.out.json"
    todo.write_text(json.dumps([{key: j[key] for key in ("id", "args", "env", "cwd")} for j in jobs]))
    env = dict(os.environ)
    env.pop("DORMSIG_MAX_TABLE_BYTES", None)
    proc = subprocess.run([sys.executable, str(CORPUS / "cli_batch.py"), str(todo), str(done)], capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return json.loads(done.read_text())


@pytest.fixture(scope="session")
def cli_results(corpus, corpus_sha, tmp_path_factory) -> dict[str, dict]:
    """Run every CLI case once, keyed by case id.

    Cases marked ``console: true`` run through the real ``dormsig`` script (one process each);
    the others through two batch processes calling ``dormsig.cli.main`` (the script's entry point).
    """
    root = tmp_path_factory.mktemp("cli_out")
    cli = [c for c in CASES if c["kind"] == "cli"]
    jobs = {c["id"]: _prepare_cli(c, corpus, root) for c in cli}
    console = [jobs[c["id"]] for c in cli if c.get("console")]
    batch = [jobs[c["id"]] for c in cli if not c.get("console")]
    results: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_run_batch, batch[k::2], root, k) for k in range(2)]
        futures += [pool.submit(_run_console, job) for job in console]
        for fut in futures:
            results.update(fut.result())
    for key, res in results.items():
        res["out"] = jobs[key]["out"]
    return results


# ----------------------------------------------------------------------------- library calls
def _load(path: str):
    import anndata as ad

    from dormsig.io import read

    return ad.read_h5ad(path) if path.endswith(".h5ad") else read(path)


def _call_read(path: str, **kw):
    from dormsig.io import read

    return read(path, **kw)


def _call_score(path: str, signatures=None, method: str = "ucell"):
    from dormsig.signatures import read_signatures
    from dormsig.tl import score

    adata = _load(path)
    if isinstance(signatures, str):
        signatures = read_signatures(signatures)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score(adata, signatures, method=method)
    return adata


def _call_score_all_methods(path: str) -> dict[str, pd.DataFrame]:
    from dormsig.tl import score

    adata = _load(path)
    out = {}
    # every built-in method except the gseapy-backed ssgsea/gsva (slow to import; cohort methods)
    for method in ("ucell", "aucell", "singscore", "zmean", "scanpy"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score(adata, None, method=method)
        out[method] = adata.obsm["dormsig_scores"].copy()
    return out


def _call_read_signatures(path: str):
    from dormsig.signatures import read_signatures

    return read_signatures(path)


def _call_groups(path: str, **kw):
    from dormsig.de import define_groups

    adata = _load(path)
    define_groups(adata, **kw)
    return adata


def _call_de(path: str, all_in: str | None = None, confound: bool = False, group_key: str = "g"):
    from dormsig.de import define_groups
    from dormsig.de.run import run_de

    adata = _load(path)
    define_groups(adata, key_added="g")
    covariates: tuple[str, ...] = ()
    if all_in is not None:
        adata.obs["g"] = all_in
    if confound:
        adata.obs["batch"] = adata.obs["g"].astype(str).to_numpy()
        covariates = ("batch",)
    return run_de(adata, group_key=group_key, test="NOTCH2_high", reference="NOTCH1_high", covariates=covariates)


def _call_rank_with_reference(path: str, reference: str):
    import anndata as ad

    from dormsig.tl import rank, score

    adata = _load(path)
    score(adata)
    rank(adata, reference=ad.read_h5ad(reference))
    return adata


def _call_check_output(path: str):
    from dormsig.io import check_output

    return check_output(path)


def _call_load_config(path: str):
    from dormsig.pipeline import load_config

    return load_config(path)


def _call_check_output_inputs(path: str, inputs: list[str]):
    from dormsig.io import check_output

    return check_output(path, inputs=inputs)


def _call_make_reference(path: str):
    from dormsig.tl import rank
    from dormsig.tl.reference import make_reference

    adata = _call_score(path)
    rank(adata)
    return make_reference(adata)


def _call_read_sample_sheet(path: str):
    from dormsig.io import read_sample_sheet

    return read_sample_sheet(path)


CALLS = {
    "read": _call_read,
    "score": _call_score,
    "score_all_methods": _call_score_all_methods,
    "read_signatures": _call_read_signatures,
    "groups": _call_groups,
    "de": _call_de,
    "rank_with_reference": _call_rank_with_reference,
    "check_output": _call_check_output,
    "load_config": _call_load_config,
    "check_output_inputs": _call_check_output_inputs,
    "make_reference": _call_make_reference,
    "read_sample_sheet": _call_read_sample_sheet,
}


# ----------------------------------------------------------------------------- checks of cases that work
def _good_counts(files) -> pd.DataFrame:
    """The good table read independently of dormsig (pandas): genes x samples."""
    return pd.read_csv(files["good.tsv"], sep="\t", index_col=0)


def _counts(adata) -> np.ndarray:
    import scipy.sparse as sp

    c = adata.layers["counts"]
    return c.toarray() if sp.issparse(c) else np.asarray(c)


def check_same_as_good(result, files, out):
    import anndata as ad

    adata = ad.read_h5ad(out / "x.h5ad")
    good = _good_counts(files)
    assert list(adata.obs_names) == list(good.columns)
    np.testing.assert_array_equal(_counts(adata)[:, adata.var_names.get_loc("NOTCH2")], good.loc["NOTCH2"].to_numpy())
    assert _counts(adata).sum() == good.to_numpy().sum()


def check_float_counts(adata, files, out):
    good = _good_counts(files)
    assert adata.layers["counts"].dtype.kind == "f"
    np.testing.assert_allclose(_counts(adata)[:, adata.var_names.get_loc("NOTCH2")], good.loc["NOTCH2"] + 0.25)


def check_notch2_doubled(adata, files, out):
    good = _good_counts(files)
    assert adata.var_names.is_unique
    np.testing.assert_array_equal(_counts(adata)[:, adata.var_names.get_loc("NOTCH2")], 2 * good.loc["NOTCH2"].to_numpy())
    np.testing.assert_array_equal(_counts(adata)[:, adata.var_names.get_loc("NOTCH1")], good.loc["NOTCH1"].to_numpy())


def check_zero_sample_finite(result, files, out):
    for method, table in result.items():
        assert np.isfinite(table.to_numpy()).all(), method
    assert (result["ucell"].iloc[0] == 0).all()  # UCell's documented value for an all-zero cell


def check_all_scores_zero(adata, files, out):
    table = adata.obsm["dormsig_scores"]
    assert table.shape[0] == 29
    assert (table.to_numpy() == 0).all()


def check_scores_finite(result, files, out):
    table = pd.read_csv(out / "s.tsv", sep="\t", index_col=0)
    assert len(table) == 29
    assert "dormancy_index" in table
    numeric = table.select_dtypes("number")
    assert np.isfinite(numeric.to_numpy()).all()
    assert numeric["dormancy_index"].std() > 0  # really scored, not a constant


def check_mouse_set_equals_human_set(adata, files, out):
    human = _call_score(str(files["good.tsv"]), signatures=str(files["sig_human.gmt"]))
    np.testing.assert_array_equal(adata.obsm["dormsig_scores"]["MOUSE_SET"].to_numpy(),
                                  human.obsm["dormsig_scores"]["HUMAN_SET"].to_numpy())


# --- real-world shapes: the values read must be the values written (independent reference: pandas on good.tsv)
def _summary(adata) -> list[str]:
    from dormsig.io import read_summary

    return read_summary(adata)


def _gene_counts(adata, gene: str) -> np.ndarray:
    return _counts(adata)[:, adata.var_names.get_loc(gene)]


def _read_h5ad_out(out):
    import anndata as ad

    return ad.read_h5ad(out / "x.h5ad")


def check_counts_equal_good(adata, files, out):
    good = _good_counts(files)
    ref = _call_read(str(files["good.tsv"]))
    assert list(adata.obs_names) == list(good.columns)
    assert list(adata.var_names) == list(ref.var_names)
    np.testing.assert_array_equal(_counts(adata), _counts(ref))
    assert _counts(adata).dtype.kind == "i"


def check_same_as_good_with_thousands(result, files, out):
    adata = _read_h5ad_out(out)
    check_counts_equal_good(adata, files, out)
    good = _good_counts(files)
    wide = str((good >= 1000).sum().idxmax())
    assert good[wide].max() >= 10_000  # a column that really had "12,345" cells
    lines = _summary(adata)
    assert any("dropped 2 empty column(s) without a name" in ln for ln in lines), lines
    assert any("numbers read with thousands ','" in ln and "in 1 column(s)" in ln for ln in lines), lines


def check_european_values(adata, files, out):
    good = _good_counts(files)
    assert adata.layers["counts"].dtype.kind == "f"
    notch2 = _gene_counts(adata, "NOTCH2")
    np.testing.assert_allclose(notch2, good.loc["NOTCH2"].to_numpy() + 0.25)
    big = good.to_numpy().max()
    assert big >= 1000 and np.isclose(_counts(adata).max(), big + 0.25)  # "1.234,25"-style values
    assert any("decimal ','" in ln for ln in _summary(adata))


def check_same_as_good_r(result, files, out):
    adata = _read_h5ad_out(out)
    check_counts_equal_good(adata, files, out)
    good = _good_counts(files)
    for gene in ("NOTCH1", "NOTCH2", "A1BG"):  # not Entrez IDs 1, 2, 3...
        np.testing.assert_array_equal(_gene_counts(adata, gene), good.loc[gene].to_numpy())
    assert adata.var["original_id"].str.fullmatch(r"\d+").sum() == 0
    assert any(f"row numbers 1..{len(good)}" in ln for ln in _summary(adata))


def check_htseq_counts(result, files, out):
    adata = _read_h5ad_out(out)
    good = _good_counts(files)
    assert list(adata.obs_names) == list(good.columns[:4])
    assert not any(str(v).startswith("__") for v in adata.var_names)
    np.testing.assert_array_equal(_gene_counts(adata, "NOTCH2"), good.loc["NOTCH2"].to_numpy()[:4])
    assert _counts(adata).sum() == good.iloc[:, :4].to_numpy().sum()  # the __ reads are not counted
    lines = _summary(adata)
    assert any("__no_feature 10,000" in ln for ln in lines), lines  # 1000 + 2000 + 3000 + 4000


def check_htseq_one(adata, files, out):
    good = _good_counts(files)
    assert adata.n_obs == 1 and adata.obs_names[0] == good.columns[0]
    assert adata.n_vars == len(good) and "__ambiguous" not in adata.var_names
    assert any("__alignment_not_unique 1,068" in ln for ln in _summary(adata))


def check_htseq_merged(adata, files, out):
    good = _good_counts(files)
    assert not any(str(v).startswith("__") for v in adata.var_names)
    assert _counts(adata).sum() == good.iloc[:, :4].to_numpy().sum()
    assert any("dropped 5 counting-tool summary row(s)" in ln for ln in _summary(adata))


def check_transcripts_summed(adata, files, out):
    tx = pd.read_csv(files["transcripts_x_samples.tsv"], sep="\t", index_col=0)
    t2g = pd.read_csv(files["tx2gene.tsv"], sep="\t", index_col=0)["GENEID"]
    expected = tx.groupby(t2g.reindex(tx.index).to_numpy()).sum()  # pandas, independently
    assert sorted(adata.var_names) == sorted(expected.index)
    for gene in expected.index:
        np.testing.assert_allclose(_gene_counts(adata, gene), expected.loc[gene].to_numpy())
    assert any("summed 6 transcripts into 4 genes" in ln for ln in _summary(adata))


def check_dates_restored(result, files, out):
    adata = _read_h5ad_out(out)
    truth = pd.read_csv(files["dates_truth.tsv"], sep="\t", index_col=0)
    for old, new in (("SEPT2", "SEPTIN2"), ("SEPT9", "SEPTIN9"), ("MARCH3", "MARCHF3"), ("MARCH11", "MARCHF11"),
                     ("DEC1", "DELEC1")):
        np.testing.assert_array_equal(_gene_counts(adata, new), truth.loc[old].to_numpy())
    # MARCH1 and MARC1 both became "1-Mar": never summed into one gene
    kept = [v for v in adata.var_names if str(v).startswith("1-Mar")]
    assert len(kept) == 2, kept
    sums = sorted(int(_gene_counts(adata, v).sum()) for v in kept)
    assert sums == sorted(int(truth.loc[g].sum()) for g in ("MARCH1", "MARC1"))
    assert "MARCHF1" not in adata.var_names and "MTARC1" not in adata.var_names


def check_dates_in_summary(adata, files, out):
    lines = _summary(adata)
    assert any(ln.startswith("restored 23 gene name(s)") and "1-Dec -> DELEC1" in ln for ln in lines), lines
    assert any("4 gene name(s) are Excel dates that fit no single gene" in ln and "'1-Mar', '2-Mar'" in ln
               for ln in lines), lines


def check_sheet_joined(result, files, out):
    adata = _read_h5ad_out(out)
    sheet = pd.read_csv(files["samples.csv"]).set_index("sample")
    assert list(adata.obs["patient"].astype(str)) == list(sheet.loc[adata.obs_names, "patient"].astype(str))
    assert not [c for c in adata.obs.columns if str(c).startswith("Unnamed") or not str(c)]


def check_mouse_mapped(adata, files, out):
    good = _good_counts(files)
    assert adata.uns["dormsig"]["genes"]["species"] == "mouse"
    assert "Notch2" in adata.var_names
    np.testing.assert_array_equal(_gene_counts(adata, "Notch2"), good.loc["NOTCH2"].to_numpy())


def check_sets_out_not_written(result, files, out):
    assert not files["sheet_out"].exists()


CHECKS = {name.removeprefix("check_"): fn for name, fn in globals().items() if name.startswith("check_")}


# ----------------------------------------------------------------------------- the test
def _params():
    for case in CASES:
        marks = []
        if case.get("xfail"):
            marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
        yield pytest.param(case, id=case["id"], marks=marks)


def test_table_is_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 150
    for c in CASES:
        assert c["kind"] in ("cli", "library"), c["id"]
        assert c.get("what") and c.get("category"), c["id"]
        if c["kind"] == "cli":
            assert "exit" in c and "args" in c and "outputs" in c, c["id"]
        else:
            assert c["call"] in CALLS and "raises" in c, c["id"]
            assert c["raises"] is None or c.get("message"), c["id"]
        assert c.get("check") is None or c["check"] in CHECKS, c["id"]
    readme = (CORPUS / "README.md").read_text()
    assert all(f"`{i}`" in readme for i in ids), "tests/corpus/README.md is out of date (make_readme.py)"


@pytest.mark.parametrize("case", list(_params()))
def test_case(case, corpus, corpus_sha, request):
    files = corpus
    if case["kind"] == "cli":
        res = request.getfixturevalue("cli_results")[case["id"]]
        out, stderr = res["out"], res["stderr"]
        assert res["rc"] == case["exit"], f"exit {res['rc']} != {case['exit']}\nstderr: {stderr}"
        assert "Traceback" not in stderr
        outputs = [Path(p) for p in _fill(case["outputs"], files, out)]
        if case["exit"] == 0:
            assert case["message"] in res["stdout"], res["stdout"]
            for p in outputs:
                assert p.exists() and Path(f"{p}.provenance.json").exists(), p
        else:
            errors = [ln for ln in stderr.splitlines() if ln.startswith("dormsig: error:")]
            assert len(errors) == 1, stderr
            assert case["message"] in errors[0], errors[0]
            assert len(errors[0]) - len("dormsig: error: ") <= 200, errors[0]
            for fragment in case.get("not_in", []):
                assert fragment not in stderr, stderr
            for p in outputs:
                assert not p.exists() and not Path(f"{p}.provenance.json").exists(), p
            for p in _fill(case.get("precreate", []), files, out):
                assert Path(p).read_text() == "an earlier output\n"
        leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
        assert not leftovers, leftovers
        result = res
    else:
        fn = CALLS[case["call"]]
        params = _fill(case.get("params", {}), files, Path("."))
        out = None
        if case["raises"] is None:
            result = fn(**params)
        else:
            exc_type = getattr(dormsig.errors, case["raises"])
            with pytest.raises(exc_type) as info:
                fn(**params)
            message = str(info.value)
            assert "\n" not in message
            assert case["message"] in message, message
            for fragment in case.get("not_in", []):
                assert fragment not in message, message
            result = None
    if case.get("check"):
        CHECKS[case["check"]](result, files, out)
    for p in _named_files(case, files):
        assert _sha(p) == corpus_sha[p], f"input {p.name} changed"
    assert not [p for p in next(iter(files.values())).parent.glob(".*.tmp")], "a .tmp leftover in the corpus dir"


# ----------------------------------------------------------------------------- provenance: dormsig verify
@pytest.fixture(scope="module")
def scored(corpus, tmp_path_factory) -> dict[str, Path]:
    """`dormsig score` of a private copy of good.h5ad (so that the copy can be edited), run once."""
    import shutil

    d = tmp_path_factory.mktemp("verify")
    inp = d / "input.h5ad"
    shutil.copyfile(corpus["good.h5ad"], inp)
    proc = subprocess.run([str(DORMSIG), "score", "input.h5ad", "--out", "scores.tsv"], cwd=d, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return {"dir": d, "input": inp, "output": d / "scores.tsv", "side": d / "scores.tsv.provenance.json"}


def _verify(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(DORMSIG), "verify", str(path)], cwd=cwd, capture_output=True, text=True, timeout=300)


def _restore(files: dict[str, Path], snapshot: dict[Path, bytes]) -> None:
    for p, content in snapshot.items():
        p.write_bytes(content)


@pytest.fixture
def pristine(scored):
    keep = {p: p.read_bytes() for p in (scored["input"], scored["output"], scored["side"])}
    yield scored
    _restore(scored, keep)


def test_verify_sidecar_names_input_checksums_and_library(pristine, tmp_path):
    from dormsig.signatures import load_library

    side = json.loads(pristine["side"].read_text())
    assert side["inputs"] == {str(pristine["input"].resolve()): _sha(pristine["input"])}
    assert side["output"]["sha256"] == _sha(pristine["output"])
    assert side["score"]["library_version"] == load_library().version
    res = _verify(pristine["output"], tmp_path)  # from another directory: recorded paths are absolute
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1] == "verified: output matches its inputs"
    assert f"ok  signature library {load_library().version}" in res.stdout


def test_verify_detects_changed_input(pristine):
    with open(pristine["input"], "ab") as handle:
        handle.write(b"\0")
    res = _verify(pristine["output"], pristine["dir"])
    assert res.returncode == 3, res.stdout + res.stderr
    assert f"CHANGED  input {pristine['input'].resolve()}" in res.stdout
    assert "ok  output" in res.stdout


def test_verify_detects_changed_output(pristine):
    pristine["output"].write_text(pristine["output"].read_text().replace("0.", "1.", 1))
    res = _verify(pristine["output"], pristine["dir"])
    assert res.returncode == 3
    assert "CHANGED  output" in res.stdout
    assert f"ok  input {pristine['input'].resolve()}" in res.stdout


def test_verify_detects_other_signature_library_version(pristine):
    side = json.loads(pristine["side"].read_text())
    side["score"]["library_version"] = "1999.1.0"
    pristine["side"].write_text(json.dumps(side))
    res = _verify(pristine["output"], pristine["dir"])
    assert res.returncode == 3
    assert "CHANGED  signature library 1999.1.0 (installed:" in res.stdout


def test_verify_detects_missing_input(pristine):
    content = pristine["input"].read_bytes()
    pristine["input"].unlink()
    try:
        res = _verify(pristine["output"], pristine["dir"])
    finally:
        pristine["input"].write_bytes(content)
    assert res.returncode == 3
    assert "MISSING input" in res.stdout


def test_verify_corrupt_sidecar_is_bad_input(pristine):
    pristine["side"].write_text("{not json")
    res = _verify(pristine["output"], pristine["dir"])
    assert res.returncode == 2
    assert res.stderr.startswith("dormsig: error:") and "provenance file is not valid JSON (line 1)" in res.stderr
    assert "Traceback" not in res.stderr
