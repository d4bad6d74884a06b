"""Ranking cells by the dormancy index and calling dormant cells: ``dormsig.tl.rank``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig._stats import bh_adjust
from dormsig.errors import InputError, ReferenceMismatchError
from dormsig.provenance import UNS_KEY, attach, record
from dormsig.tl.score import INDEX_COLUMN, OBSM_KEY, _resolve_index, combine_index, score_matrix

RULES = ("quantile", "mixture", "permutation")


def _score_record(adata: AnnData, what: str) -> dict:
    rec = adata.uns.get(UNS_KEY, {}).get("score")
    if rec is None or OBSM_KEY not in adata.obsm:
        raise InputError(f"{what} has no dormsig scores; run dormsig.tl.score first")
    return rec


def _index_values(adata: AnnData, index, what: str) -> tuple[np.ndarray, Any]:
    """The dormancy index of every cell and the (name, version, components) it came from."""
    rec = _score_record(adata, what)
    scores = adata.obsm[OBSM_KEY]
    if index is None:
        stored = rec.get("index")
        if isinstance(stored, str):  # h5ad round trips may leave JSON text
            stored = json.loads(stored) if stored.startswith("{") else None
        if INDEX_COLUMN in scores.columns:
            spec = _resolve_index(stored) if isinstance(stored, dict) and "components" in stored else None
            return scores[INDEX_COLUMN].to_numpy(dtype=np.float64), spec
        raise InputError(f"{what} has no dormancy_index column; pass index= or score with an index")
    spec = _resolve_index(index)
    missing = [s for s, _, _ in spec[2] if s not in scores.columns]
    if missing:
        raise InputError(f"{what}: index {spec[0]!r} needs sets that were not scored: {missing}")
    return combine_index(scores, spec[2]).to_numpy(), spec


def _check_reference(rec: dict, ref_rec: dict) -> None:
    for key in ("method", "library_version"):
        a, b = rec.get(key), ref_rec.get(key)
        if str(a) != str(b):
            raise ReferenceMismatchError(f"reference was scored with {key}={b!r} but the data with {key}={a!r}")
    a, b = rec.get("params", {}).get("max_rank"), ref_rec.get("params", {}).get("max_rank")
    if rec.get("method") == "ucell" and a != b:
        raise ReferenceMismatchError(f"reference was scored with max_rank={b!r} but the data with max_rank={a!r}")


def _percentile(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Percentage of reference values <= each value (mid-rank for ties)."""
    srt = np.sort(ref)
    lo = np.searchsorted(srt, values, side="left")
    hi = np.searchsorted(srt, values, side="right")
    return 100.0 * (lo + hi) / (2.0 * srt.size)


def rank(
    adata: AnnData,
    *,
    index: Any = None,
    rule: str = "quantile",
    quantile: float = 0.9,
    reference: AnnData | None = None,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    n_bins: int = 25,
    seed: int = 0,
    cells: Any = None,
    tumour_check: str = "auto",
    min_epithelial_cpm: float = 1000.0,
) -> None:
    """Rank cells by the dormancy index and call the dormant ones.

    The index is ``sum(sign * weight * score) / sum(weight)`` of the raw set scores (computed by
    :func:`dormsig.tl.score`; recomputed here when ``index`` is given).

    Parameters
    ----------
    adata
        AnnData scored by :func:`dormsig.tl.score`.
    index
        ``None``: the ``dormancy_index`` column written by ``score``. Otherwise an index spec (name,
        path, ``DormancyIndex`` or dict) whose sets were scored.
    rule
        ``"quantile"``: dormant when the index exceeds the ``quantile`` of the reference's index.
        ``"mixture"``: 2-component Gaussian mixture fitted to the reference index (``seed``); dormant when
        the posterior of the higher-mean component exceeds 0.5.
        ``"permutation"``: empirical p-value of each cell's index against ``n_permutations`` random
        indices whose sets are drawn gene by gene from the same mean-expression bin (``n_bins`` quantile
        bins over the data), same sizes; dormant when the BH-adjusted p < ``alpha``.
    quantile
        Quantile for the ``"quantile"`` rule.
    reference
        An AnnData scored earlier with the same method and library version: thresholds and percentiles
        are taken from it. ``None``: the data itself. Mismatch raises ``ReferenceMismatchError``.
    n_permutations, alpha, n_bins
        Options of the ``"permutation"`` rule.
    seed
        Seed of the mixture fit and of the random sets; recorded.
    cells
        Rank and call only these observations (``obs`` column and value(s), see :mod:`dormsig.tl.cells`).
        By default, the observations ``score`` was restricted to (all when it was not). Others get
        NaN ranks and the call ``"not_scored"``; thresholds come from the called ones only.
    tumour_check
        ``"auto"`` (default), ``"epithelial"`` or ``"none"``: observations whose EPCAM + KRT8 + KRT18 + KRT19
        hold fewer than ``min_epithelial_cpm`` counts per million hold no tumour RNA and are not called
        (call ``"no_tumour_rna"``, NaN rank, not part of the threshold). ``"auto"`` skips the check when
        ``cells=`` chose the observations, on log-scale data without counts, and when fewer than 5% of
        the observations hold epithelial RNA (non-epithelial tumours); see :mod:`dormsig.tl.epithelial`.
        With a ``reference``, its observations without tumour RNA are left out of the threshold too.
    min_epithelial_cpm
        The tumour check's threshold.

    Writes ``obs["dormsig_index"]``, ``obs["dormsig_rank"]`` (1 = highest index), ``obs["dormsig_percentile"]``
    (in the reference, 0-100), ``obs["dormsig_call"]`` (``"dormant"``/``"not_dormant"``), for the
    permutation rule ``obs["dormsig_pvalue"]``/``obs["dormsig_padj"]``, and ``uns["dormsig"]["rank"]``.
    """
    if rule not in RULES:
        raise InputError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    values, spec = _index_values(adata, index, "AnnData")
    rec = _score_record(adata, "AnnData")
    from dormsig.tl.cells import call_labels, expand, rank_mask
    from dormsig.tl.epithelial import NO_TUMOUR_RNA, tumour_gate

    keep, cells_rec = rank_mask(adata, cells)
    among = keep  # the observations the tumour check looks at
    gate = tumour_gate(adata, tumour_check, min_cpm=min_epithelial_cpm, among=keep, cells_chosen=cells_rec is not None,
                       require_any=reference is None)
    no_tumour = gate.excluded(among)
    if gate.applied:
        keep = gate.holds if keep is None else keep & gate.holds
    if keep is not None:
        values = np.where(keep, values, np.nan)
    if reference is not None:
        ref_rec = _score_record(reference, "reference AnnData")
        _check_reference(rec, ref_rec)
        ref_values, _ = _index_values(reference, index, "reference AnnData")
        if "dormsig_call" in reference.obs:  # the reference's samples without tumour RNA set no threshold
            ref_values = np.where(reference.obs["dormsig_call"].astype(str).to_numpy() == NO_TUMOUR_RNA,
                                  np.nan, ref_values)
    else:
        ref_values = values
    finite = np.isfinite(ref_values)
    if not finite.any():
        raise InputError("the reference dormancy index has no finite value")
    ref_values = ref_values[finite]

    extra: dict[str, Any] = {}
    params: dict[str, Any] = {"rule": rule, "seed": seed, "tumour_check": gate.mode,
                              "min_epithelial_cpm": float(min_epithelial_cpm)}
    if rule == "quantile":
        if not 0 < quantile < 1:
            raise InputError(f"quantile must be in (0, 1), got {quantile}")
        threshold = float(np.quantile(ref_values, quantile))
        dormant = values > threshold
        params["quantile"] = quantile
        extra["threshold"] = threshold
    elif rule == "mixture":
        dormant, threshold = _mixture(values, ref_values, seed)
        extra["threshold"] = threshold
    else:
        sub = adata if keep is None else adata[keep]  # null sets and expression bins from the called cells only
        pval = expand(_permutation_pvalues(sub, rec, spec, values if keep is None else values[keep],
                                           n_permutations, n_bins, seed), keep)
        padj = bh_adjust(pval)
        adata.obs["dormsig_pvalue"] = pval
        adata.obs["dormsig_padj"] = padj
        dormant = padj < alpha
        params.update(n_permutations=n_permutations, alpha=alpha, n_bins=n_bins)

    adata.obs["dormsig_index"] = values
    ranks = pd.Series(-values).rank(method="min").to_numpy()  # NaN index (unscored set) -> NaN rank
    adata.obs["dormsig_rank"] = ranks.astype(np.int64) if np.isfinite(ranks).all() else ranks
    pct = _percentile(values, ref_values)
    adata.obs["dormsig_percentile"] = np.where(np.isfinite(values), pct, np.nan)
    adata.obs["dormsig_call"] = call_labels(dormant, keep, {NO_TUMOUR_RNA: no_tumour} if no_tumour.any() else None)
    ref_info = None
    if reference is not None:
        ref_info = {"n_obs": int(reference.n_obs), "method": rec.get("method"),
                    "library_version": rec.get("library_version")}
    attach(adata, "rank", record("rank", method=rule, params=params, reference=ref_info,
                                 index=None if spec is None else {"name": spec[0], "version": spec[1]},
                                 n_dormant=int(np.sum(dormant)), cells=cells_rec,
                                 tumour_check=gate.to_dict(adata.obs_names, among), **extra))


def _mixture(values: np.ndarray, ref: np.ndarray, seed: int) -> tuple[np.ndarray, float | None]:
    from sklearn.mixture import GaussianMixture

    if ref.size < 4:
        raise InputError(f"the mixture rule needs at least 4 reference values, got {ref.size}")
    gm = GaussianMixture(n_components=2, random_state=seed).fit(ref.reshape(-1, 1))
    high = int(np.argmax(gm.means_.ravel()))
    post = np.full(values.size, np.nan)
    ok = np.isfinite(values)
    post[ok] = gm.predict_proba(values[ok].reshape(-1, 1))[:, high]
    dormant = np.nan_to_num(post) > 0.5
    # threshold: where the posterior crosses 0.5 between the two means (for the record)
    lo, hi = np.sort(gm.means_.ravel())
    grid = np.linspace(lo, hi, 2001)
    pg = gm.predict_proba(grid.reshape(-1, 1))[:, high]
    cross = np.nonzero(pg > 0.5)[0]
    threshold = float(grid[cross[0]]) if cross.size else None
    return dormant, threshold


def _stored_sets(rec: dict) -> dict[str, tuple[list[str], list[str]]]:
    genes = rec.get("genes")
    if isinstance(genes, str):
        genes = json.loads(genes)
    if not genes:
        raise InputError("the score record has no gene lists; re-run dormsig.tl.score")
    return {n: (list(g.get("up", [])), list(g.get("down", []))) for n, g in genes.items()}


def _permutation_pvalues(adata, rec, spec, values, n_permutations, n_bins, seed) -> np.ndarray:
    if spec is None:
        raise InputError("the permutation rule needs the index definition; pass index=")
    if n_permutations < 1:
        raise InputError(f"n_permutations must be >= 1, got {n_permutations}")
    params = {k: (None if v == "None" else v) for k, v in rec.get("params", {}).items()}
    method = rec.get("method", "ucell")
    layer = params.get("layer")
    X = adata.layers[layer] if layer is not None else adata.X
    var = pd.Index(adata.var_names.astype(str))
    sets = _stored_sets(rec)
    from dormsig.tl._matrix import iter_csr_chunks

    mean = np.zeros(adata.n_vars)
    for _, _, block in iter_csr_chunks(X, int(params.get("chunk_size", 20000))):
        mean += np.asarray(block.sum(axis=0)).ravel()
    mean /= max(adata.n_obs, 1)
    # quantile bins of mean expression (as in scanpy.tl.score_genes)
    ranks = pd.Series(mean).rank(method="min").to_numpy()
    bins = np.minimum((ranks - 1) * n_bins // adata.n_vars, n_bins - 1).astype(np.int64)
    members = {b: np.nonzero(bins == b)[0] for b in np.unique(bins)}
    rng = np.random.default_rng(seed)
    kw = {k: params[k] for k in ("max_rank", "w_neg", "n_up", "centre") if params.get(k) is not None}
    kw.setdefault("max_rank", 1500)

    def draw(genes: list[str]) -> np.ndarray:
        idx = var.get_indexer(genes)
        out = np.empty(idx.size, dtype=np.int64)
        for k, g in enumerate(idx):
            out[k] = rng.choice(members[bins[g]])
        return out

    exceed = np.zeros(adata.n_obs)
    batch = max(1, min(n_permutations, 100))
    done = 0
    while done < n_permutations:
        n_b = min(batch, n_permutations - done)
        rand_sets = {}
        for p in range(n_b):
            for s, _, _ in spec[2]:
                up, down = sets[s]
                rand_sets[f"{p}|{s}"] = (draw(up), draw(down))
        sc = score_matrix(X, rand_sets, method=method, threads=params.get("threads"),
                          chunk_size=int(params.get("chunk_size", 20000)), seed=int(params.get("seed", 0)),
                          **kw)
        for p in range(n_b):
            cols = sc[[f"{p}|{s}" for s, _, _ in spec[2]]]
            cols.columns = [s for s, _, _ in spec[2]]
            null = combine_index(cols, spec[2]).to_numpy()
            exceed += null >= values
        done += n_b
    return (1.0 + exceed) / (1.0 + n_permutations)
