"""Validate the shipped dormancy indices and signature sets on labelled public datasets.

Scores every shipped set and index with the public API (``dormsig.tl.score``) on the seven datasets of
the validation pack (``/work/shared/data/validation``, README there) and prints one table: AUROC for
quiescent vs proliferating labels, Spearman correlation for depth data, with proliferation alone and
the Wiecek 2023 signature side by side. Every score is oriented so that higher = more quiescent
(sets whose ``direction`` is ``down_in_dormancy`` are negated).

Method: ``method="auto"``, as users get it (dormsig detects the kind of data; UCell with
``max_rank=1500`` on single cells, singscore on bulk); what it chose is printed per dataset. Two
reference scorers of the pack README are recomputed as a cross-check (cohort z-score: Wiecek, and
the 8-gene proliferation score).

Run by hand (not in CI)::

    python benchmarks/validate_indices.py                       # the table
    python benchmarks/validate_indices.py --write               # also rewrite the evidence blocks of
                                                                # signatures/index/*.yaml and docs/evidence.md
    python benchmarks/validate_indices.py --json results.json   # every number, machine-readable

Do not choose index weights or components by looking at this table and then report the table as
evidence: the data would then be training data, not validation data (docs/evidence.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a source checkout: this worktree's dormsig wins

DEFAULT_DATA = Path("/work/shared/data/validation")
PROLIF8 = ["MKI67", "TOP2A", "CCNB1", "MCM2", "PCNA", "CDK1", "BIRC5", "CCNA2"]  # the pack README's -prolif
PROLIF = "DORMSIG_PROLIFERATION_CORE"
DESIGN_FIXED = ("components and weights fixed before evaluation (docs/evidence.md, git commit 357b911); not tuned "
                "on these data")
DESIGNS = {"notch2_niche": DESIGN_FIXED, "quiescence": (
          "version 2026.12.1: the 2026.12.0 design (fixed before evaluation, git commit 357b911) without the "
          "G0-arrest up half and with half the proliferation weight, "
          "chosen among the declared candidates of benchmarks/validate_indices.py on the training "
          "datasets gse83142_lrc and gse124109_ref_depth only; held out: gse75367_ctc, musc_activation, "
          "fibroblast_gqs, nsclc_ccle_g0 (and the specificity sets) (docs/evidence.md)")}
WIECEK = "WIECEK2023_G0_ARREST"


@dataclass(frozen=True)
class Dataset:
    name: str
    assay: str  # "sc" or "bulk"
    values: str  # "log" (already logged), "counts" (raw), "rpkm"
    species: str  # species of the row names (rat data carry mouse orthologue symbols)
    role: str


DATASETS = (
    Dataset("gse83142_lrc", "sc", "log", "human", "primary"),
    Dataset("gse75367_ctc", "sc", "log", "human", "primary, weak label"),
    Dataset("musc_activation", "bulk", "counts", "mouse", "primary, n = 8 (smoke test)"),
    Dataset("fibroblast_gqs", "bulk", "counts", "human", "secondary, doubtful label, n = 2 v 2"),
    Dataset("gse124109_ref_depth", "bulk", "counts", "mouse", "primary, depth"),
    Dataset("nsclc_ccle_g0", "bulk", "rpkm", "human", "secondary, depth-like"),
    Dataset("fibroblast_pd_aux", "bulk", "counts", "human", "auxiliary: senescence (specificity)"),
)


@dataclass(frozen=True)
class Metric:
    """One column: a dataset, a metric over one target, and the samples it uses."""

    key: str  # column header
    dataset: str
    metric: str  # "auroc" or "spearman"
    target: str  # labels.csv column
    positive: str | None = None  # auroc: labels.csv `label` values of the positive class (else is_quiescent)
    negative: str | None = None
    goal: bool = True  # part of the "quiescence index goal"
    note: str = ""
    role: str = ""  # for the columns outside the goal: "specificity" or "extra"
    subset: str | None = None  # a boolean obs column: only these samples (e.g. "epithelial_rna")


METRICS = (
    Metric("LRC", "gse83142_lrc", "auroc", "is_quiescent"),
    Metric("CTC", "gse75367_ctc", "auroc", "is_quiescent"),
    Metric("CTC_epi", "gse75367_ctc", "auroc", "is_quiescent", goal=False, subset="epithelial_rna",
           role="extra: CTCs holding tumour RNA only (EPCAM+KRT8/18/19 >= 1,000 CPM, dormsig's tumour check)"),
    Metric("MuSC", "musc_activation", "auroc", "is_quiescent"),
    Metric("GQS", "fibroblast_gqs", "auroc", "is_quiescent"),
    Metric("REF", "gse124109_ref_depth", "spearman", "depth"),
    Metric("NSCLC", "nsclc_ccle_g0", "spearman", "depth", note="% G0 by EdU"),
    Metric("NSC_pRB", "nsclc_ccle_g0", "spearman", "pct_G0_pRB", goal=False, role="extra: % G0 by phospho-Rb"),
    Metric("NSC_p21", "nsclc_ccle_g0", "spearman", "pct_G0_p21", goal=False, role="extra: % G0 by p21"),
    Metric("Q>sen", "fibroblast_gqs", "auroc", "label", positive="quiescent", negative="senescent,deep_senescent",
           goal=False, role="specificity", note="quiescent vs senescent: high = tells quiescence from senescence"),
    Metric("PD", "fibroblast_pd_aux", "spearman", "depth", goal=False, role="specificity",
           note="population doublings (senescence): high = the score also tracks senescence"),
)


# ------------------------------------------------------------------------------------------ data


def load(root: Path, ds: Dataset):
    """The dataset as AnnData (samples x genes) with labels in obs and X on a log scale."""
    import anndata as ad

    from dormsig.genes import harmonise

    folder = root / ds.name
    counts = pd.read_csv(folder / "counts.csv.gz", index_col=0)
    labels = pd.read_csv(folder / "labels.csv", dtype={"sample_id": str}).set_index("sample_id")
    missing = sorted(set(counts.columns) - set(labels.index))
    if missing:
        raise SystemExit(f"{folder}: samples without labels: {missing[:3]}")
    labels = labels.loc[counts.columns]
    values = counts.to_numpy(dtype=np.float64).T
    adata = ad.AnnData(values, obs=labels.copy(), var=pd.DataFrame(index=counts.index.astype(str)))
    if ds.values == "counts":
        adata.layers["counts"] = values.copy()
        # CPM then log1p: the README's normalisation; rank methods see the same order either way.
        adata.X = np.log1p(values / values.sum(axis=1, keepdims=True) * 1e6)
    elif ds.values == "rpkm":
        adata.X = np.log2(values + 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # old symbols (WHSC1 -> NSD2) and Ensembl IDs -> current symbols; duplicates summed (counts) or
        # the highest-mean row kept (log data); unmapped IDs (rat) keep their names.
        harmonise(adata, species=ds.species, layer="counts")
    if "counts" in adata.layers:  # harmonise may have summed genes: recompute log CPM from the counts
        c = np.asarray(adata.layers["counts"], dtype=np.float64)
        adata.X = np.log1p(c / c.sum(axis=1, keepdims=True) * 1e6)
    # dormsig's tumour check on a linear scale (X is log1p CPM for counts, log2(x + 1) otherwise)
    X = np.asarray(adata.X, dtype=np.float64)
    linear = np.expm1(X) if ds.values == "counts" else np.exp2(X) - 1.0
    from dormsig.tl.epithelial import GENES, MIN_CPM

    cols = [adata.var_names.get_loc(g) for g in GENES if g in adata.var_names]
    lib = linear.sum(axis=1)
    adata.obs["epithelial_rna"] = (linear[:, cols].sum(axis=1) / np.where(lib > 0, lib, 1) * 1e6) >= MIN_CPM
    return adata


def method_for(ds: Dataset, n_genes: int) -> tuple[str, dict]:
    """The scoring method as users get it: ``method="auto"`` with the kind of data detected by dormsig.

    ``score()`` then picks UCell (max_rank 1500) for single cells and singscore for bulk samples; what
    it picked for each dataset is read back from the provenance record and printed.
    """
    return "auto", {}


# ------------------------------------------------------------------------------------------ scoring


def orientation(lib) -> dict[str, int]:
    """+1 when a higher score means more dormant, -1 for sets that are down in dormancy."""
    return {n: (-1 if lib[n].direction == "down_in_dormancy" else 1) for n in lib}


def score_dataset(adata, ds: Dataset, lib, indices: list[str]) -> tuple[pd.DataFrame, dict]:
    """Oriented scores (samples x rows): indices, every library set, and the two README reference scorers."""
    import dormsig.tl as tl
    from dormsig.signatures import load_index

    method, params = method_for(ds, adata.n_vars)
    sign = orientation(lib)
    out = OrderedDict()
    info: dict = {"n_genes": int(adata.n_vars), "n_samples": int(adata.n_obs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sets with no gene in the data (CD177 in some) are NaN, as reported
        for name in indices:
            scored = tl.score(adata, None, method=method, index=name, species=ds.species, copy=True, **params)
            table = scored.obsm["dormsig_scores"]
            out[f"index:{name}"] = (table["dormancy_index"] if "dormancy_index" in table
                                    else pd.Series(np.nan, index=adata.obs_names))
            info[f"index:{name}"] = scored.uns["dormsig"]["score"]["index"]
        scored = tl.score(adata, list(lib), method=method, index=None, species=ds.species, copy=True, **params)
        table = scored.obsm["dormsig_scores"]
        rec = scored.uns["dormsig"]["score"]
        matched = rec["n_genes_matched"]
        info["method"] = str(rec["method"])  # what "auto" chose, and on which kind of data
        info["data_kind"] = str(rec["params"]["data_kind"])
        info["max_rank"] = rec["params"].get("max_rank")
        for name in lib:
            out[name] = sign[name] * table[name]
        info["n_genes_matched"] = {k: int(v) for k, v in dict(matched).items()}
        for name in indices:
            comps = [(c.set, c.sign, c.weight) for c in load_index(name).components]
            present = [c for c in comps if np.isfinite(table[c[0]]).all()]
            combined = tl.combine_index(table, present).to_numpy()
            if len(present) == len(comps):  # cross-check: score(index=...) is the combination of the set scores
                np.testing.assert_allclose(out[f"index:{name}"], combined, rtol=1e-12, atol=1e-12)
            else:  # a component has no gene in the data: score() gives no index; the rest, reweighted
                out[f"present:{name}"] = combined
                info[f"index:{name}"]["missing_components"] = [c[0] for c in comps if c not in present]
        # The README's reference scorers: cohort z-scores (zmean), as published for Wiecek.
        ref = tl.score(adata, {"WIECEK_Z": {"up": list(lib[WIECEK].up), "down": list(lib[WIECEK].down)},
                               "PROLIF8_Z": PROLIF8}, method="zmean", index=None, species=ds.species, copy=True)
        out["ref:wiecek_z"] = ref.obsm["dormsig_scores"]["WIECEK_Z"]
        out["ref:-prolif8_z"] = -ref.obsm["dormsig_scores"]["PROLIF8_Z"]
    frame = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in out.items()}, index=adata.obs_names)
    return frame, info


# ------------------------------------------------------------------------------------------ metrics


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC (ties count one half); NaN when a score is NaN or a class is empty."""
    from scipy.stats import rankdata

    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0 or not np.isfinite(score).all():
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def spearman(score: np.ndarray, target: np.ndarray) -> float:
    from scipy.stats import spearmanr

    score = np.asarray(score, dtype=np.float64)
    if not np.isfinite(score).all() or np.ptp(score) == 0:
        return float("nan")
    return float(spearmanr(score, target).statistic)


def metric_samples(obs: pd.DataFrame, m: Metric) -> tuple[np.ndarray, np.ndarray]:
    """(mask of samples used, target values on them) for a metric."""
    if m.metric == "auroc" and m.positive is not None:
        pos, neg = set(m.positive.split(",")), set(m.negative.split(","))
        lab = obs[m.target].astype(str)
        mask = lab.isin(pos | neg).to_numpy()
        return mask, lab[mask].isin(pos).to_numpy()
    target = pd.to_numeric(obs[m.target], errors="coerce")
    mask = target.notna().to_numpy()
    if m.subset is not None:
        mask &= obs[m.subset].to_numpy(dtype=bool)
    values = target[mask].to_numpy()
    return mask, (values == 1) if m.metric == "auroc" else values


def evaluate(score: np.ndarray, obs: pd.DataFrame, m: Metric) -> float:
    mask, target = metric_samples(obs, m)
    s = np.asarray(score)[mask]
    return auroc(s, target) if m.metric == "auroc" else spearman(s, target)


def bootstrap_ci(score: np.ndarray, obs: pd.DataFrame, m: Metric, *, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile 95% CI; AUROC resamples within each class (stratified), Spearman resamples pairs."""
    mask, target = metric_samples(obs, m)
    s = np.asarray(score, dtype=np.float64)[mask]
    if not np.isfinite(s).all():
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        if m.metric == "auroc":
            pos, neg = np.flatnonzero(target), np.flatnonzero(~target)
            idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
            vals.append(auroc(s[idx], target[idx]))
        else:
            idx = rng.integers(0, s.size, s.size)
            vals.append(spearman(s[idx], target[idx]))
    vals = np.asarray(vals)
    vals = vals[np.isfinite(vals)]
    return (float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))) if vals.size else (np.nan, np.nan)


# ------------------------------------------------------------------------------------------ post hoc analyses

# Added after the primary result was seen (docs/evidence.md): how much the method and the weight of the
# proliferation arm matter. Nothing here chose the shipped indices.
SENS_METHODS = ("primary", "ucell_all_genes", "aucell", "singscore", "zmean")
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, float("inf"))  # proliferation arm weight; G0-arrest down half weight 1
G0_UP, G0_DOWN = "WIECEK2023_G0_ARREST_UPREGULATED", "WIECEK2023_G0_ARREST_DOWNREGULATED"

# Index designs declared before the choice of version 2026.12.1, each with its reason. The choice uses the
# TRAIN datasets only (criterion: mean of 2 AUROC - 1 and Spearman rho), among the designs that keep both
# arms of the definition (proliferation down plus G0 arrest); the other goal datasets are held out.
TRAIN = ("LRC", "REF")
CANDIDATES = OrderedDict([
    ("2026.12.0: P1 U.5 D.5", ([(PROLIF, -1, 1.0), (G0_UP, 1, 0.5), (G0_DOWN, -1, 0.5)], True,
                               "design fixed before evaluation")),
    ("P1 D1 (no G0 up half)", ([(PROLIF, -1, 1.0), (G0_DOWN, -1, 1.0)], True,
                               "under in-sample ranks a few of the 27 up genes move by thousands of ranks")),
    ("P1 U.25 D.75", ([(PROLIF, -1, 1.0), (G0_UP, 1, 0.25), (G0_DOWN, -1, 0.75)], True,
                      "halves weighted by their size (27 and 112 genes)")),
    ("P.5 U.5 D.5", ([(PROLIF, -1, 0.5), (G0_UP, 1, 0.5), (G0_DOWN, -1, 0.5)], True,
                     "G0 arm first: S/G2M markers are low in cycling G1 cells")),
    ("P.5 D1", ([(PROLIF, -1, 0.5), (G0_DOWN, -1, 1.0)], True, "both changes above")),
    ("U.5 D.5 (Wiecek halves)", ([(G0_UP, 1, 0.5), (G0_DOWN, -1, 0.5)], False, "no proliferation arm")),
    ("D1 (G0 down half alone)", ([(G0_DOWN, -1, 1.0)], False, "no proliferation arm, one half of a set")),
])


def sensitivity_scores(adata, ds: Dataset) -> dict[str, pd.DataFrame]:
    """Per method: oriented scores of the quiescence index, its arms and Wiecek (two-part and halves)."""
    import dormsig.tl as tl
    from dormsig.signatures import load_index

    comps = [(c.set, c.sign, c.weight) for c in load_index("quiescence").components]
    out = {}
    for label in SENS_METHODS:
        if label == "primary":
            method, params = method_for(ds, adata.n_vars)
        elif label == "ucell_all_genes":  # the previous harness's bulk setting: ranks over all genes
            method, params = "ucell", {"max_rank": int(adata.n_vars)}
        else:
            method, params = label, {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = tl.score(adata, [PROLIF, G0_UP, G0_DOWN, WIECEK], method=method, index=None, species=ds.species,
                         copy=True, **params).obsm["dormsig_scores"]
        frame = pd.DataFrame({
            "quiescence": tl.combine_index(t, comps),
            "-proliferation": -t[PROLIF],
            "Wiecek halves (up - down)": t[G0_UP] - t[G0_DOWN],
            "Wiecek two-part": t[WIECEK],
            "Wiecek down half (negated)": -t[G0_DOWN],
        })
        if label == "primary":
            for name, (cand, _, _) in CANDIDATES.items():
                frame[f"cand:{name}"] = tl.combine_index(t, cand)
            for w in WEIGHTS:
                frame[f"w_prolif={w:g}"] = (-t[PROLIF] if np.isinf(w)
                                            else tl.combine_index(t, [(PROLIF, -1, w), (G0_DOWN, -1, 1.0)]))
        out[label] = frame
    return out


def rank_spread(adata, lib) -> dict:
    """Within-sample ranks (1 = highest) of the G0-arrest halves' genes: how many matched, the median over genes
    of each gene's rank standard deviation across samples, and the up genes that move most."""
    from scipy.stats import rankdata

    x = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X, dtype=np.float64)
    ranks = np.apply_along_axis(rankdata, 1, -x)
    where = {str(g).upper(): i for i, g in enumerate(adata.var_names)}  # rat/mouse symbols are title case
    out = {}
    for half, name in (("up", G0_UP), ("down", G0_DOWN)):
        cols = [where[g] for g in lib[name].genes if g in where]
        sd = ranks[:, cols].std(axis=0)
        out[half] = {"n": len(cols), "median_sd": float(np.median(sd)),
                     "top": [(str(adata.var_names[cols[i]]), float(sd[i])) for i in np.argsort(-sd)[:3]]}
    return out


def _util(table: pd.DataFrame, row: str, ms: list[Metric]) -> float:
    """Mean agreement over metrics: 2 AUROC - 1 (so that chance is 0, like rho) and Spearman rho."""
    return float(np.mean([(2 * table.loc[row, m.key] - 1) if m.metric == "auroc" else table.loc[row, m.key]
                          for m in ms]))


def choose_candidate(table: pd.DataFrame, metrics: list[Metric]) -> str:
    """The declared candidate with both arms that agrees best with the TRAIN datasets (nothing else is read)."""
    train = [m for m in metrics if m.key in TRAIN]
    both = [n for n, (_, arms, _) in CANDIDATES.items() if arms]
    return max(both, key=lambda n: _util(table, f"cand:{n}", train))


def lodo(table: pd.DataFrame, metrics: list[Metric]) -> pd.DataFrame:
    """Leave one dataset out: pick the proliferation weight on the other goal datasets, report it on the left-out one.

    Criterion: mean of (2 AUROC - 1) and Spearman rho over the training datasets; ties go to the shipped weight.
    """
    from dormsig.signatures import load_index

    goal = [m for m in metrics if m.goal]
    cand = [f"w_prolif={w:g}" for w in WEIGHTS]
    shipped = next(f"w_prolif={c.weight:g}" for c in load_index("quiescence").components if c.set == PROLIF)
    order = sorted(cand, key=lambda c: (c != shipped, cand.index(c)))
    rows = []
    for held in goal:
        train = [m for m in goal if m.key != held.key]
        best = max(order, key=lambda c: _util(table, c, train))
        rows.append({"held out": held.key, "chosen": best, "held-out value": table.loc[best, held.key],
                     "shipped": table.loc[shipped, held.key], "shipped weight": shipped})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ the run


def run(data: Path, *, datasets: tuple[str, ...] | None = None, n_boot: int = 2000, seed: int = 0,
        sensitivity: bool = False) -> dict:
    """Score and evaluate; returns {"table": rows x metrics, "ci": ..., "n": ..., "info": ...}."""
    from dormsig.signatures import list_indices, load_library

    lib = load_library()
    indices = list_indices()
    chosen = [d for d in DATASETS if datasets is None or d.name in datasets]
    metrics = [m for m in METRICS if any(d.name == m.dataset for d in chosen)]
    table, ci, n, info, scores, sens = {}, {}, {}, {}, {}, {}
    for ds in chosen:
        t0 = time.perf_counter()
        adata = load(data, ds)
        frame, meta = score_dataset(adata, ds, lib, indices)
        meta["seconds"] = round(time.perf_counter() - t0, 1)
        info[ds.name], scores[ds.name] = meta, frame
        by_method = sensitivity_scores(adata, ds) if sensitivity else {}
        if sensitivity:
            meta["rank_spread"] = rank_spread(adata, lib)
        for m in (m for m in metrics if m.dataset == ds.name):
            for label, sframe in by_method.items():
                for row in sframe.columns:
                    sens.setdefault(label, {}).setdefault(m.key, {})[row] = evaluate(sframe[row].to_numpy(),
                                                                                     adata.obs, m)
            mask, _ = metric_samples(adata.obs, m)
            n[m.key] = int(mask.sum())
            table[m.key] = {row: evaluate(frame[row].to_numpy(), adata.obs, m) for row in frame.columns}
            headline = [f"index:{i}" for i in indices] + [PROLIF, WIECEK, "ref:wiecek_z"]
            ci[m.key] = {row: bootstrap_ci(frame[row].to_numpy(), adata.obs, m, n_boot=n_boot, seed=seed)
                         for row in headline} if n_boot else {}
    frame = pd.DataFrame(table)[[m.key for m in metrics if m.key in table]]
    goal_auc = [m.key for m in metrics if m.goal and m.metric == "auroc"]
    goal_rho = [m.key for m in metrics if m.goal and m.metric == "spearman"]
    if goal_auc:
        frame["meanAUC"] = frame[goal_auc].mean(axis=1, skipna=False)
    if goal_rho:
        frame["mean_rho"] = frame[goal_rho].mean(axis=1, skipna=False)
    sens = {label: pd.DataFrame(v)[[m.key for m in metrics if m.key in v]] for label, v in sens.items()}
    for sframe in sens.values():
        if goal_auc:
            sframe["meanAUC"] = sframe[goal_auc].mean(axis=1, skipna=False)
        if goal_rho:
            sframe["mean_rho"] = sframe[goal_rho].mean(axis=1, skipna=False)
    return {"table": frame, "ci": ci, "n": n, "info": info, "metrics": metrics, "library": lib,
            "indices": indices, "scores": scores, "seed": seed, "n_boot": n_boot, "sensitivity": sens}


def published_rows(lib) -> list[str]:
    """Single published signatures: the f_published sets and the published proliferation sets, plus the
    README's Wiecek z-score (the published scorer)."""
    rows = [n for n in lib if lib[n].category == "f_published" and not n.startswith("WIECEK2023_G0_ARREST_")]
    rows += [n for n in lib if n.startswith(("HALLMARK_E2F", "HALLMARK_G2M", "TIROSH_"))]
    return rows + ["ref:wiecek_z"]


# ------------------------------------------------------------------------------------------ output


ROW_LABELS = {
    PROLIF: "-proliferation (DORMSIG_PROLIFERATION_CORE)",
    WIECEK: "Wiecek 2023 (WIECEK2023_G0_ARREST)",
    "ref:wiecek_z": "ref: Wiecek z-score (cohort)",
    "ref:-prolif8_z": "ref: -prolif 8 genes z-score",
}


def headline_rows(res: dict) -> list[str]:
    rows = []
    for name in res["indices"]:
        rows.append(f"index:{name}")
        ROW_LABELS.setdefault(f"index:{name}", f"index {name}")
        if f"present:{name}" in res["table"].index:
            rows.append(f"present:{name}")
            ROW_LABELS.setdefault(f"present:{name}", f"  {name}, components with genes")
    return rows + [PROLIF, WIECEK, "ref:wiecek_z", "ref:-prolif8_z"]


def _fmt(v: float) -> str:
    return "   n/a" if not np.isfinite(v) else f"{v:6.3f}"


def render(res: dict) -> str:
    frame, lib, n = res["table"], res["library"], res["n"]
    cols = list(frame.columns)
    sign = orientation(lib)
    claim = {n_: lib[n_].direction in ("up_in_dormancy", "up_in_dormancy_weak_prior", "down_in_dormancy") for n_ in lib}
    head_rows = headline_rows(res)
    label = ROW_LABELS
    width = 46
    lines = []
    lines.append(f"{'row':<{width}}" + "".join(f"{c:>9}" for c in cols))
    lines.append(f"{'(metric; n)':<{width}}" + "".join(
        f"{(('AUC' if any(m.key == c and m.metric == 'auroc' for m in res['metrics']) else 'rho') + ';' + str(n[c])) if c in n else 'mean':>9}"
        for c in cols))
    lines.append("-" * (width + 9 * len(cols)))

    def row(key, name):
        lines.append(f"{name[:width - 1]:<{width}}" + "".join(f"{_fmt(frame.loc[key, c]):>9}" for c in cols))

    for key in head_rows:
        row(key, label.get(key, key))
    lines.append("-" * (width + 9 * len(cols)))
    for key in lib:
        if key in (PROLIF, WIECEK):
            continue
        mark = "-" if sign[key] < 0 else ""
        row(key, f"{mark}{key}" + ("" if claim[key] else " (*)"))
    lines.append("")
    lines.append("(*) no dormancy direction claimed by the set: raw score. '-': set is down in dormancy, negated.")
    lines.append("Columns: " + "; ".join(f"{m.key} = {m.dataset} {m.metric} vs {m.target}"
                                          + (f" ({m.note})" if m.note else "") for m in res["metrics"]))
    lines.append("meanAUC = mean of the binary quiescent-vs-proliferating AUROCs; mean_rho = mean of REF and NSCLC (EdU).")
    lines.extend(goal_lines(res))
    return "\n".join(lines)


def render_sensitivity(res: dict) -> str:
    """The post hoc tables: method sensitivity, proliferation weight, leave-one-dataset-out choice."""
    sens = res.get("sensitivity") or {}
    if not sens:
        return ""
    lines = ["POST HOC (after the 2026.12.0 result was seen). Only the 'Declared index designs' table chose anything "
             "(quiescence 2026.12.1, on its training columns); the rest chose nothing.", ""]
    primary = sens["primary"]
    cols = list(primary.columns)
    width = 46
    lines.append(f"{'method / row':<{width}}" + "".join(f"{c:>9}" for c in cols))
    for label, frame in sens.items():
        rows = [r for r in frame.index if not r.startswith(("w_prolif=", "cand:"))]
        for r in rows:
            name = f"{label if label != 'primary' else 'auto (primary)'}: {r}"
            lines.append(f"{name[:width - 1]:<{width}}" + "".join(f"{_fmt(frame.loc[r, c]):>9}" for c in cols))
    lines.append("")
    lines.append(f"Declared index designs (primary method; P = -{PROLIF}, U = {G0_UP}, D = -{G0_DOWN}, with weights).")
    lines.append(f"Chosen on {' and '.join(TRAIN)} only (mean of 2 AUROC - 1 and rho), among designs with both arms; "
                 "the other columns are held out:")
    lines.append(f"{'design (train: ' + ', '.join(TRAIN) + ')':<{width}}" + "".join(
        f"{(c + '*' if c in TRAIN else c):>9}" for c in cols) + "    train")
    train = [m for m in res["metrics"] if m.key in TRAIN]
    chosen = choose_candidate(primary, res["metrics"]) if len(train) == len(TRAIN) else None
    for name in CANDIDATES:
        r = f"cand:{name}"
        mark = " <- chosen" if name == chosen else ("" if CANDIDATES[name][1] else " (one arm)")
        lines.append(f"{name[:width - 1]:<{width}}" + "".join(f"{_fmt(primary.loc[r, c]):>9}" for c in cols)
                     + (f"  {_util(primary, r, train):7.3f}" if chosen else "") + mark)
    lines.append("  reasons: " + "; ".join(f"{n}: {why}" for n, (_, _, why) in CANDIDATES.items()))
    lines.append("")
    lines.append("Within-sample rank spread of the G0-arrest halves (genes matched; median over genes of the rank sd "
                 "across samples; the up genes that move most):")
    for ds, meta in res["info"].items():
        if "rank_spread" in meta:
            up, down = meta["rank_spread"]["up"], meta["rank_spread"]["down"]
            lines.append(f"  {ds:<20} up {up['n']:>3} genes, sd {up['median_sd']:6.0f}; down {down['n']:>3} genes, "
                         f"sd {down['median_sd']:6.0f}; up, most: "
                         + ", ".join(f"{g} {v:.0f}" for g, v in up["top"]))
    lines.append("")
    lines.append("Proliferation arm weight (primary method; G0-arrest down half weight 1; inf = proliferation alone):")
    for r in (r for r in primary.index if r.startswith("w_prolif=")):
        lines.append(f"{r:<{width}}" + "".join(f"{_fmt(primary.loc[r, c]):>9}" for c in cols))
    lines.append("")
    lines.append("Leave one dataset out (weight chosen on the other goal datasets, value on the left-out one):")
    for _, row in lodo(primary, res["metrics"]).iterrows():
        lines.append(f"  {row['held out']:<6} chosen {row['chosen']:<15} held-out {_fmt(row['held-out value'])}  "
                     f"shipped ({row['shipped weight']}) {_fmt(row['shipped'])}")
    return "\n".join(lines)


def goal_lines(res: dict) -> list[str]:
    frame, lib = res["table"], res["library"]
    if "index:quiescence" not in frame.index:
        return []
    pub = published_rows(lib)
    out = ["", "Goal (issue 12): quiescence index >= best single published signature on every labelled dataset, "
           "and > proliferation alone on average."]
    met = same = 0
    goal_cols = [m.key for m in res["metrics"] if m.goal]
    for c in goal_cols:
        best = frame.loc[pub, c].astype(float)
        best_same = frame.loc[[r for r in pub if not r.startswith("ref:")], c].astype(float)
        q = frame.loc["index:quiescence", c]
        ok, ok_same = q >= best.max() - 1e-12, q >= best_same.max() - 1e-12
        met, same = met + ok, same + ok_same
        out.append(f"  {c:<6} quiescence {_fmt(q)}  best published {_fmt(best.max())} ({best.idxmax()}) "
                   f"{'met' if ok else 'NOT met'}; same method {_fmt(best_same.max())} ({best_same.idxmax()}) "
                   f"{'met' if ok_same else 'NOT met'}")
    out.append(f"  met on {met} of {len(goal_cols)} datasets (on {same} against the same-method published sets)")
    for c in ("meanAUC", "mean_rho"):
        if c in frame:
            q, p = frame.loc["index:quiescence", c], frame.loc[PROLIF, c]
            out.append(f"  {c}: quiescence {_fmt(q)} vs -proliferation {_fmt(p)}  {'better' if q > p else 'NOT better'}")
    return out


def evidence_block(res: dict, index: str) -> OrderedDict:
    """The ``evidence:`` mapping of one index's YAML."""
    from dormsig import __version__

    key = f"index:{index}"
    frame, ci = res["table"], res["ci"]
    roles = {d.name: d.role for d in DATASETS}
    results = []
    for m in res["metrics"]:
        row = OrderedDict(dataset=m.dataset, metric=m.metric, value=_round(frame.loc[key, m.key]), n=res["n"][m.key],
                          target=m.target if m.positive is None else f"{m.target}: {m.positive} vs {m.negative}",
                          role=roles[m.dataset] if m.goal else m.role)
        if ci.get(m.key, {}).get(key) is not None and np.isfinite(ci[m.key][key][0]):
            row["ci95"] = [_round(ci[m.key][key][0]), _round(ci[m.key][key][1])]
        row["proliferation"] = _round(frame.loc[PROLIF, m.key])
        row["wiecek"] = _round(frame.loc[WIECEK, m.key])
        row["wiecek_zscore"] = _round(frame.loc["ref:wiecek_z", m.key])
        notes = [m.note] if m.note else []
        missing = res["info"][m.dataset].get(key, {}).get("missing_components")
        if missing:
            present = frame.loc[f"present:{index}", m.key]
            notes.append(f"no index: {', '.join(missing)} has no gene in the data; the other components, "
                         f"reweighted: {_fmt(present).strip()}")
        if notes:
            row["note"] = "; ".join(notes)
        results.append(row)
    return OrderedDict(
        computed_by="benchmarks/validate_indices.py (dormsig " + __version__ + ")",
        method=(f"dormsig.tl.score, method auto as users get it ({_chosen(res)}); higher = more quiescent; 95% CI: {res['n_boot']} bootstrap "
                f"resamples (AUROC stratified by class), seed {res['seed']}. proliferation = -{PROLIF}, wiecek = "
                f"{WIECEK}, same method; wiecek_zscore = {WIECEK} scored as published (cohort z-scores, "
                f"method zmean)."),
        data=("validation pack /work/shared/data/validation (secrierlab/CancerG0Arrest 762e83d6, micw42/QDSWorkflow "
              "dd79af68; README there)"),
        library_version=str(res["library"].version),
        design=DESIGNS.get(index, DESIGN_FIXED),
        results=results,
    )


def _chosen(res: dict) -> str:
    """What method="auto" chose on each dataset, e.g. 'gse83142_lrc: singscore (bulk)'."""
    return "; ".join(f"{k}: {v['method']}" + (f" max_rank={v['max_rank']}" if v.get("max_rank") not in (None, "None")
                                              else "")
                     + f" ({v['data_kind']})" for k, v in res["info"].items())


def _round(v) -> float | None:
    v = float(v)
    return round(v, 4) if np.isfinite(v) else None


def write_index_evidence(res: dict, index_dir: Path) -> list[Path]:
    """Rewrite the evidence block of each shipped index YAML (the rest of the file is kept as data)."""
    import yaml

    sys.path.insert(0, str(ROOT / "scripts"))
    from build_signatures import _Dumper  # the library's YAML style

    written = []
    for name in res["indices"]:
        path = index_dir / f"{name}.yaml"
        text = path.read_text()
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        doc = yaml.safe_load(text)
        doc = OrderedDict((k, v) for k, v in doc.items() if k != "evidence")
        doc["components"] = [OrderedDict(c) for c in doc["components"]]
        doc["evidence"] = evidence_block(res, name)
        body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)
        path.write_text(header + body)
        written.append(path)
    return written


def evidence_markdown(res: dict, command: str, uptime: str) -> str:
    """The generated part of docs/evidence.md."""
    frame, lib, ci, n = res["table"], res["library"], res["ci"], res["n"]
    out = [f"Generated by `{command}` (dormsig library {lib.version}; load: `{uptime}`).", ""]
    out.append("### Headline: both indices, proliferation alone and Wiecek 2023, same method")
    out.append("")
    cols = list(frame.columns)
    out.append("| row | " + " | ".join(cols) + " |")
    out.append("|---|" + "---|" * len(cols))
    out.append("| n | " + " | ".join(str(n.get(c, "")) for c in cols) + " |")
    heads = headline_rows(res)
    names = ROW_LABELS
    for key in heads:
        cells = []
        for c in cols:
            v = frame.loc[key, c]
            lo_hi = ci.get(c, {}).get(key)
            txt = _fmt(v).strip()
            if lo_hi is not None and np.isfinite(lo_hi[0]):
                txt += f" ({lo_hi[0]:.2f}-{lo_hi[1]:.2f})"
            cells.append(txt)
        out.append(f"| {names[key].strip()} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("95% bootstrap CI in brackets. Columns: " + "; ".join(
        f"{m.key} = `{m.dataset}` {m.metric} vs `{m.target}`" + (f" ({m.note})" if m.note else "")
        for m in res["metrics"]) + ". meanAUC: LRC, CTC, MuSC, GQS; mean_rho: REF, NSCLC.")
    out.append("")
    out.append("### Goal check")
    out.append("")
    out.append("```")
    out.extend(line.strip() for line in goal_lines(res)[1:])
    out.append("```")
    out.append("")
    post = render_sensitivity(res)
    if post:
        out.append("### Post hoc: method, declared designs, proliferation weight, leave one dataset out")
        out.append("")
        out.append("Added after the 2026.12.0 result was seen. The declared-designs table chose quiescence 2026.12.1 "
                   "on its training columns (marked *); nothing else here chose anything.")
        out.append("")
        out.append("```")
        out.extend(post.splitlines()[2:])
        out.append("```")
        out.append("")
    out.append("### Every shipped set (same method)")
    out.append("")
    out.append("| set | direction | " + " | ".join(cols) + " |")
    out.append("|---|---|" + "---|" * len(cols))
    for key in lib:
        out.append(f"| {key} | {lib[key].direction} | " + " | ".join(_fmt(frame.loc[key, c]).strip() for c in cols)
                   + " |")
    return "\n".join(out) + "\n"


def write_docs(res: dict, path: Path, command: str, uptime: str) -> None:
    begin, end = "<!-- validate_indices:begin -->", "<!-- validate_indices:end -->"
    text = path.read_text()
    block = begin + "\n" + evidence_markdown(res, command, uptime) + end
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="validation pack folder")
    parser.add_argument("--datasets", default=None, help="comma-separated subset of the datasets")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the CIs (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true",
                        help="rewrite the evidence blocks of signatures/index/*.yaml and the results in docs/evidence.md")
    parser.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    parser.add_argument("--sensitivity", action="store_true",
                        help="also print the post hoc tables (method, proliferation weight, leave-one-dataset-out)")
    args = parser.parse_args(argv)
    if not (args.data / "manifest.json").is_file():
        raise SystemExit(f"--data {args.data}: no validation pack there (manifest.json missing)")
    t0 = time.perf_counter()
    res = run(args.data, datasets=tuple(args.datasets.split(",")) if args.datasets else None,
              n_boot=args.bootstrap, seed=args.seed, sensitivity=args.sensitivity or args.write)
    elapsed = time.perf_counter() - t0
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    uptime = f"load average {', '.join(load)}"
    print(render(res))
    if args.sensitivity:
        print("\n" + render_sensitivity(res))
    print(f"\n{elapsed:.0f} s; {uptime}; per dataset: " + ", ".join(
        f"{k} {v['seconds']} s ({v['method']}" + (f" max_rank={v['max_rank']}" if v.get('max_rank') not in (None, "None")
                                                 else "")
        + f", {v['data_kind']}, {v['n_samples']} x {v['n_genes']})"
        for k, v in res["info"].items()))
    if args.json:
        payload = {"table": json.loads(res["table"].to_json()), "n": res["n"], "ci": res["ci"],
                   "info": res["info"], "seed": args.seed, "bootstrap": args.bootstrap}
        args.json.write_text(json.dumps(payload, indent=1, default=str))
    if args.write:
        if args.datasets:
            raise SystemExit("--write needs all datasets (drop --datasets)")
        from dormsig.signatures import shipped_path

        for path in write_index_evidence(res, shipped_path() / "index"):
            print(f"wrote {path}")
        command = "python benchmarks/validate_indices.py --write"
        write_docs(res, ROOT / "docs" / "evidence.md", command, uptime)
        print(f"wrote {ROOT / 'docs' / 'evidence.md'}")


if __name__ == "__main__":
    main()
