"""Time dormsig's scoring against pyUCell, decoupler ``aucell`` and scanpy ``score_genes``.

Each tool runs in its own subprocess, one at a time, with a timeout; the peak resident memory
of the whole process tree (workers included) is sampled with psutil. The AUROC of each set
score for the planted dormant cells is computed from the scores (down set: negated score).
Prints a markdown table. Run by hand (not in CI)::

    python benchmarks/simulate.py --cells 10000 --out /tmp/sim_10k.h5ad
    python benchmarks/bench_scoring.py /tmp/sim_10k.h5ad --tools dormsig,dormsig_backed,pyucell,scanpy,decoupler
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

TOOLS = ("dormsig", "dormsig_backed", "dormsig_aucell", "dormsig_singscore", "pyucell", "decoupler", "scanpy")


def _sets(adata) -> dict[str, list[str]]:
    return json.loads(adata.uns["gene_sets"])


def _auroc(scores, planted) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    out = {}
    for name in scores.columns:
        s = scores[name].to_numpy()
        out[name] = float(roc_auc_score(planted, -s if name.startswith("DOWN") else s))
    return out


def worker(tool: str, path: str, out_json: str, threads: int) -> None:
    """Load, score, report times and AUROCs (runs inside the subprocess)."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    t0 = time.perf_counter()
    backed = tool == "dormsig_backed"
    adata = ad.read_h5ad(path, backed="r" if backed else None)
    t_read = time.perf_counter() - t0
    sets = _sets(adata)
    planted = adata.obs["planted"].to_numpy()
    t1 = time.perf_counter()
    c1 = time.process_time()
    if tool.startswith("dormsig"):
        import dormsig.tl as tl

        method = {"dormsig_aucell": "aucell", "dormsig_singscore": "singscore"}.get(tool, "ucell")
        # warm the numba cache on a tiny slice so compile time is not counted
        small = ad.AnnData(adata.X[:10] if backed else adata.X[:10].copy())
        small.var_names = adata.var_names
        tl.score(small, sets, method=method, index=None, threads=threads, species="human")
        t1 = time.perf_counter()
        c1 = time.process_time()
        tl.score(adata, sets, method=method, index=None, threads=threads, chunk_size=20000, species="human")
        scores = adata.obsm["dormsig_scores"]
    elif tool == "pyucell":
        import pyucell

        pyucell.compute_ucell_scores(adata, sets, max_rank=1500, n_jobs=threads)
        scores = adata.obs[[f"{k}_UCell" for k in sets]]
        scores.columns = list(sets)
    elif tool == "decoupler":
        import decoupler as dc

        net = pd.DataFrame([(k, g) for k, v in sets.items() for g in v], columns=["source", "target"])
        dc.mt.aucell(adata, net, tmin=1)
        scores = adata.obsm["score_aucell"][list(sets)]
    elif tool == "scanpy":
        import scanpy as sc

        cols = {}
        for k, v in sets.items():
            sc.tl.score_genes(adata, v, random_state=0, score_name=f"s_{k}")
            cols[k] = adata.obs[f"s_{k}"].to_numpy()
        scores = pd.DataFrame(cols, index=adata.obs_names)
    else:
        raise SystemExit(f"unknown tool {tool}")
    t_score = time.perf_counter() - t1
    c_score = time.process_time() - c1  # CPU of this process only (pyUCell workers excluded unless threads=1)
    planted = planted[np.isin(adata.obs_names, scores.index)] if len(scores) != len(planted) else planted
    res = {"tool": tool, "n_cells": int(adata.n_obs), "read_s": t_read, "score_s": t_score,
           "score_cpu_s": c_score, "threads": threads,
           "auroc": _auroc(scores, planted)}
    with open(out_json, "w") as fh:
        json.dump(res, fh)


def run(tool: str, path: str, threads: int, timeout: float) -> dict:
    """Run one tool in a subprocess; return its result with peak RSS of the process tree."""
    import psutil

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out_json = tmp.name
    env = dict(os.environ, JOBLIB_TEMP_FOLDER=tempfile.gettempdir())
    proc = subprocess.Popen([sys.executable, __file__, "--worker", tool, path, "--json", out_json,
                             "--threads", str(threads)], env=env)
    ps = psutil.Process(proc.pid)
    peak, start, status = 0, time.perf_counter(), "ok"
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        if time.perf_counter() - start > timeout:
            for c in ps.children(recursive=True):
                c.kill()
            proc.kill()
            status = f"timeout > {timeout:.0f} s"
            break
        time.sleep(0.2)
    proc.wait()
    res = {"tool": tool, "status": status if proc.returncode == 0 or status != "ok" else f"exit {proc.returncode}"}
    if status == "ok" and proc.returncode == 0:
        with open(out_json) as fh:
            res.update(json.load(fh))
    res["peak_gb"] = peak / 1e9
    res["wall_s"] = time.perf_counter() - start
    os.unlink(out_json)
    return res


def table(rows: list[dict]) -> str:
    lines = ["| tool | cells | threads | status | read s | score s (wall) | score CPU s | peak GB (tree) "
             "| AUROC UP_10/25/50/100, DOWN_150, NULL_200 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        au = r.get("auroc", {})
        aus = ", ".join(f"{au[k]:.3f}" for k in au) if au else "-"
        lines.append(f"| {r['tool']} | {r.get('n_cells', r.get('n', '-'))} | {r.get('threads', '-')} | {r['status']} | "
                     f"{r.get('read_s', float('nan')):.1f} | {r.get('score_s', float('nan')):.1f} | "
                     f"{r.get('score_cpu_s', float('nan')):.1f} | "
                     f"{r['peak_gb']:.2f} | {aus} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+")
    p.add_argument("--tools", default="dormsig,dormsig_backed,pyucell,scanpy,decoupler")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--worker", default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if a.worker:
        worker(a.worker, a.paths[0], a.json, a.threads)
        return
    rows = []
    for path in a.paths:
        for tool in a.tools.split(","):
            r = run(tool, path, a.threads, a.timeout)
            print(json.dumps(r), flush=True)
            rows.append(r)
    print(table(rows))


if __name__ == "__main__":
    main()
