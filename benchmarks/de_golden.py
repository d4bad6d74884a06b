"""Bit-identity guard and timing for dormsig's R-faithful DESeq2 kernels (``dormsig.de.r_inference``).

Runs the DE of ``dormsig demo`` (both contrasts of the bundled CTC counts, ``~ patient + group``, with
the demo's exact inputs and parameters) and the designs of tests/test_de_r_concordance.py, and keeps
every numeric output: the results tables, the fitted AnnData's layers/var, and the outputs of every
kernel call made by :class:`dormsig.de.r_inference.RInference` (betas, covariances, hat diagonals,
iterations, L-BFGS-B coefficients and status, dispersions, apeglm fits), in call order.

Run by hand (not in CI), from the repository root::

    PYTHONPATH=$PWD python benchmarks/de_golden.py --capture          # once: the demo's DE inputs
    PYTHONPATH=$PWD python benchmarks/de_golden.py --save             # golden .npz (on the reference code)
    PYTHONPATH=$PWD python benchmarks/de_golden.py --check            # compare a run with the golden
    PYTHONPATH=$PWD python benchmarks/de_golden.py --time [--label X] # demo DE times (wall, CPU, per kernel)
    PYTHONPATH=$PWD python benchmarks/de_golden.py --dump-calls       # once: each demo kernel call's arguments
    PYTHONPATH=$PWD python benchmarks/de_golden.py --kernels [NAME..] # re-run them: time + compare with golden

``--capture`` runs ``dormsig demo``'s pipeline once (about a minute and a half) with ``run_de`` wrapped
to store its AnnData and arguments under ``--dir``. ``--check`` compares every array with
``np.array_equal(..., equal_nan=True)`` (dtype and shape too) and exits 1 on any difference.
``--only demo`` / ``--only concordance`` restricts the designs. ``--time`` appends a row per run to
``<dir>/times.json`` and prints every row recorded so far as one table (with ``uptime`` beside); to
time another checkout, run this script with ``PYTHONPATH`` at that checkout. ``--kernels`` replays the
dumped calls (1 BLAS thread, ``--threads`` numba threads) and checks each output against the golden: a
quick check while editing one kernel; ``--check`` remains the proof.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ("fit_beta", "sandwich", "fit_disp", "fit_disp_grid", "fit_beta_box", "ape_shrink")


class Recorder:
    """Wraps the kernels RInference calls; keeps their outputs (in call order) and wall time per kernel."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.dump: Path | None = None  # directory receiving each call's arguments (kernel benchmarks)
        self.calls: dict[str, int] = defaultdict(int)
        self.prefix = ""
        self.n = 0
        self.keep = True

    def wrap(self, name: str, fn):
        def wrapped(*args, **kwargs):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(*args, **kwargs)
            self.seconds[f"{self.prefix}{name}"] += time.perf_counter() - t0
            self.cpu[f"{self.prefix}{name}"] += time.process_time() - c0
            if self.dump is not None:
                with open(self.dump / f"{self.prefix.strip('/')}_{self.n:03d}_{name}.pkl", "wb") as fh:
                    pickle.dump((args, kwargs), fh)
            self.calls[f"{self.prefix}{name}"] += 1
            if self.keep:
                outs = out if isinstance(out, tuple) else (out,)
                for k, a in enumerate(outs):
                    self.arrays[f"{self.prefix}k{self.n:03d}_{name}_{k}"] = np.array(a, copy=True)
                self.n += 1
            return out

        return wrapped

    def install(self) -> None:
        from dormsig.de import _r_kernels as RK
        from dormsig.de import r_inference

        for name in KERNELS:
            setattr(RK, name, self.wrap(name, getattr(RK, name)))
        r_inference.optim_refit_genes = self.wrap("optim_refit_genes", r_inference.optim_refit_genes)

    def start(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0


def _frame_arrays(df, prefix: str) -> dict[str, np.ndarray]:
    import pandas as pd

    out = {}
    for col in df.columns:
        v = df[col]
        if not (pd.api.types.is_numeric_dtype(v) or pd.api.types.is_bool_dtype(v)):
            out[f"{prefix}{col}"] = np.asarray(v.astype(str).to_numpy(), dtype=str)
        else:
            out[f"{prefix}{col}"] = np.asarray(v.to_numpy(dtype=float, na_value=np.nan))
    out[f"{prefix}__index"] = np.asarray(df.index.astype(str), dtype=str)
    return out


def _adata_arrays(bulk, prefix: str) -> dict[str, np.ndarray]:
    import scipy.sparse as sp

    out = {}
    for name, layer in bulk.layers.items():
        out[f"{prefix}layer_{name}"] = np.asarray(layer.toarray() if sp.issparse(layer) else layer)
    out.update(_frame_arrays(bulk.var, f"{prefix}var_"))
    for name, a in bulk.varm.items():
        if hasattr(a, "to_numpy"):
            out.update(_frame_arrays(a, f"{prefix}varm_{name}_"))
        else:
            out[f"{prefix}varm_{name}"] = np.asarray(a)
    return out


# ----------------------------------------------------------------------------- inputs


def capture(d: Path) -> None:
    """Run the demo's pipeline once and store the AnnData and arguments of each ``run_de`` call."""
    import dormsig.de.run as run_mod
    from dormsig.pipeline import demo_config, run_pipeline

    d.mkdir(parents=True, exist_ok=True)
    real = run_mod.run_de
    calls = []

    def spy(adata, **kwargs):
        calls.append((adata.copy(), dict(kwargs)))
        return real(adata, **kwargs)

    run_mod.run_de = spy
    cfg = demo_config()
    with tempfile.TemporaryDirectory() as tmp:
        run_pipeline(cfg, Path(tmp) / "out")
    run_mod.run_de = real
    for i, (adata, kwargs) in enumerate(calls):
        adata.write_h5ad(d / f"demo_input_{i}.h5ad")
        with open(d / f"demo_input_{i}.pkl", "wb") as fh:
            pickle.dump(kwargs, fh)
    print(f"captured {len(calls)} run_de calls into {d}: "
          + "; ".join(f"{k['test']} vs {k['reference']}" for _, k in calls))


def demo_inputs(d: Path):
    import anndata as ad

    out = []
    for h5 in sorted(d.glob("demo_input_*.h5ad")):
        with open(h5.with_suffix(".pkl"), "rb") as fh:
            kwargs = pickle.load(fh)
        out.append((f"demo_{kwargs['test']}_vs_{kwargs['reference']}", ad.read_h5ad(h5), kwargs))
    if not out:
        sys.exit(f"no demo inputs in {d}: run with --capture first")
    return out


def run_demo(d: Path, rec: Recorder, arrays: dict, times: dict | None = None, genes: int | None = None) -> None:
    from dormsig.de.run import run_de

    for tag, adata, kwargs in demo_inputs(d):
        if genes is not None:
            adata = adata[:, :genes].copy()
        rec.start(f"{tag}/")
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table, bulk = run_de(adata, **kwargs)
        if times is not None:
            times[tag] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
        arrays.update(_frame_arrays(table, f"{tag}/table_"))
        arrays.update(_adata_arrays(bulk, f"{tag}/adata_"))


def run_concordance(rec: Recorder, arrays: dict) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_de_r_concordance as T

    for tag in T.DESIGNS:
        rec.start(f"conc_{tag}/")
        ours, _ = T._fit(tag)
        arrays.update(_frame_arrays(ours, f"conc_{tag}/table_"))


# ----------------------------------------------------------------------------- modes


def compare(golden: dict, new: dict) -> int:
    bad = 0
    for key in sorted(set(golden) | set(new)):
        if key not in golden or key not in new:
            print(f"MISSING {key}: in {'new' if key in new else 'golden'} only")
            bad += 1
            continue
        a, b = golden[key], new[key]
        if a.dtype != b.dtype or a.shape != b.shape:
            print(f"DIFF {key}: dtype/shape {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
            bad += 1
            continue
        same = np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        if not same:
            nd = int(np.sum(~((a == b) | (np.isnan(a) & np.isnan(b))))) if a.dtype.kind in "fc" else int(np.sum(a != b))
            extra = ""
            if a.dtype.kind in "fc":
                with np.errstate(invalid="ignore"):
                    extra = f", max |diff| {np.nanmax(np.abs(a.astype(float) - b.astype(float))):.3g}"
            print(f"DIFF {key}: {nd} of {a.size} elements differ{extra}")
            bad += 1
    n_el = sum(a.size for a in new.values())
    print(f"compared {len(new)} arrays ({n_el:,} values): {'ALL BIT-IDENTICAL' if not bad else f'{bad} differ'}")
    return bad


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def time_demo(d: Path, label: str, threads: int) -> None:
    import numba

    numba.set_num_threads(threads)
    rec = Recorder()
    rec.install()
    rec.keep = False
    run_demo(d, rec, {}, genes=300)  # JIT/cache load outside the timing
    rec.seconds.clear()
    rec.cpu.clear()
    load0 = uptime()
    times: dict = {}
    run_demo(d, rec, {}, times)
    row = {"label": label, "uptime_before": load0, "uptime_after": uptime(), "threads": threads,
           "contrasts": times, "kernels": dict(rec.seconds),
           "kernels_cpu": dict(rec.cpu)}
    log = d / "times.json"
    rows = json.loads(log.read_text()) if log.exists() else []
    rows.append(row)
    log.write_text(json.dumps(rows, indent=1))
    print_table(rows)


def bench_kernels(d: Path, names: list[str], threads: int) -> None:
    """Re-run each dumped kernel call with the current code: wall/CPU per kernel, outputs vs the golden."""
    import numba

    from dormsig.de import _r_kernels as RK
    from dormsig.de import r_inference

    numba.set_num_threads(threads)
    fns = {k: getattr(RK, k) for k in KERNELS}
    fns["optim_refit_genes"] = r_inference.optim_refit_genes
    with np.load(d / "golden.npz") as z:
        golden = {k: z[k] for k in z.files if k.startswith("demo_")}
    calls = sorted((d / "calls").glob("*.pkl"))
    warmed: set[str] = set()
    wall: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    bad: dict[str, int] = defaultdict(int)
    load0 = uptime()
    from threadpoolctl import threadpool_limits

    for path in calls:
        tag, n, name = "", "", ""
        parts = path.stem.split("_")
        # <tag>_<nnn>_<kernel>: the tag contains underscores, the number is the first 3-digit field from the end
        for i in range(len(parts) - 1, -1, -1):
            if len(parts[i]) == 3 and parts[i].isdigit():
                tag, n, name = "_".join(parts[:i]), parts[i], "_".join(parts[i + 1:])
                break
        if names and name not in names:
            continue
        with open(path, "rb") as fh:
            a, kw = pickle.load(fh)
        with threadpool_limits(limits=1):
            if name not in warmed:
                fns[name](*a, **kw)
                warmed.add(name)
            t0, c0 = time.perf_counter(), time.process_time()
            out = fns[name](*a, **kw)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
        outs = out if isinstance(out, tuple) else (out,)
        for k, o in enumerate(outs):
            g = golden[f"{tag}/k{n}_{name}_{k}"]
            if not (g.shape == np.shape(o) and np.array_equal(g, np.asarray(o), equal_nan=g.dtype.kind == "f")):
                bad[name] += 1
                print(f"DIFF {tag} call {n} {name} output {k}")
    print(f"uptime: {load0} -> {uptime()}")
    print("kernel | wall s | cpu s | outputs differing from golden")
    for name in wall:
        print(f"{name} | {wall[name]:.2f} | {cpu[name]:.2f} | {bad[name]}")


def print_table(rows: list[dict]) -> None:
    tags = sorted({t for r in rows for t in r["contrasts"]})
    short = {t: t.replace("demo_", "").replace("_high", "") for t in tags}
    head = ["label", *(f"{short[t]} wall/cpu s" for t in tags), "DE wall", *(f"{k} wall/cpu" for k in ("fit_beta",
            "optim_refit_genes", "fit_disp", "fit_disp_grid", "sandwich", "ape_shrink")), "load 1m"]
    print(" | ".join(head))
    for r in rows:
        cells = [r["label"]]
        for t in tags:
            c = r["contrasts"].get(t)
            cells.append(f"{c['wall']:.1f} / {c['cpu']:.1f}" if c else "-")
        cells.append(f"{sum(c['wall'] for c in r['contrasts'].values()):.1f}")
        for k in ("fit_beta", "optim_refit_genes", "fit_disp", "fit_disp_grid", "sandwich", "ape_shrink"):
            w = sum(v for kk, v in r["kernels"].items() if kk.endswith("/" + k))
            c = sum(v for kk, v in r.get("kernels_cpu", {}).items() if kk.endswith("/" + k))
            cells.append(f"{w:.1f} / {c:.1f}" if c else f"{w:.1f}")
        load = r["uptime_before"].split("load average:")[-1].split(",")[0].strip()
        load2 = r["uptime_after"].split("load average:")[-1].split(",")[0].strip()
        cells.append(f"{load} -> {load2}")
        print(" | ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--capture", action="store_true")
    g.add_argument("--save", action="store_true")
    g.add_argument("--check", action="store_true")
    g.add_argument("--time", action="store_true")
    g.add_argument("--table", action="store_true", help="print the recorded times")
    g.add_argument("--dump-calls", action="store_true", help="store the demo's kernel calls' arguments")
    g.add_argument("--kernels", nargs="*", help="time the dumped kernel calls (all, or these kernels) and "
                   "compare their outputs with the golden")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/de_golden"))
    ap.add_argument("--only", choices=["demo", "concordance"])
    ap.add_argument("--label", default="run")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    if args.capture:
        capture(args.dir)
        return
    if args.time:
        time_demo(args.dir, args.label, args.threads)
        return
    if args.kernels is not None:
        bench_kernels(args.dir, args.kernels, args.threads)
        return
    if args.table:
        print_table(json.loads((args.dir / "times.json").read_text()))
        return
    rec = Recorder()
    rec.install()
    arrays: dict[str, np.ndarray] = {}
    if args.dump_calls:
        rec.dump = args.dir / "calls"
        rec.dump.mkdir(exist_ok=True)
        run_demo(args.dir, rec, arrays)
        return
    if args.only in (None, "demo"):
        run_demo(args.dir, rec, arrays)
    if args.only in (None, "concordance"):
        run_concordance(rec, arrays)
    arrays.update(rec.arrays)
    path = args.dir / "golden.npz"
    if args.save:
        if args.only:
            sys.exit("--save runs every design (no --only)")
        np.savez(path, **arrays)
        print(f"saved {len(arrays)} arrays to {path}")
        return
    with np.load(path) as z:
        prefix = {"demo": "demo_", "concordance": "conc_"}.get(args.only, "")
        golden = {k: z[k] for k in z.files if k.startswith(prefix)}
    sys.exit(1 if compare(golden, arrays) else 0)


if __name__ == "__main__":
    main()
