"""Scoring gene sets in an AnnData: ``dormsig.tl.score`` and the matrix-level ``score_matrix``."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from dormsig import _keys as K
from dormsig.errors import InputError, MatchError
from dormsig.provenance import attach, record
from dormsig.signatures import Library, as_library, load_index, load_library, match
from dormsig.tl import _data, _registry
from dormsig.tl._matrix import shape
from dormsig.tl.methods import IndexSets, MethodResult

#: A set whose score sits at its floor in more than this fraction of the observations is warned about.
FLOOR_WARN_FRACTION = 0.5
#: Default ``min_detection`` of :func:`score` (same as :data:`dormsig.signatures.match.DEFAULT_MIN_DETECTION`).
MIN_DETECTION = 0.05
#: Cohort-dependent methods score a sample against the others: refused below MIN_COHORT_SAMPLES
#: (z-scores of 1-2 samples are 0 or +-0.71 whatever the data), warned below WARN_COHORT_SAMPLES.
MIN_COHORT_SAMPLES = 3
WARN_COHORT_SAMPLES = 10

OBSM_KEY = K.SCORES
OBS_PREFIX = K.OBS_PREFIX
INDEX_COLUMN = K.INDEX


def score_matrix(
    X,
    sets: IndexSets,
    *,
    method: str = "ucell",
    var_names: Sequence[str] | None = None,
    obs_names: Sequence[str] | None = None,
    threads: int | None = None,
    chunk_size: int = 20000,
    seed: int = 0,
    max_rank: int = 1500,
    compute: bool = True,
    **method_kwargs: Any,
) -> pd.DataFrame:
    """Score gene sets given as column indices on a cells x genes matrix.

    Parameters
    ----------
    X
        Cells x genes: numpy array, scipy sparse, anndata backed dataset, h5py dataset or dask array.
    sets
        ``{name: (up_indices, down_indices)}``; indices are columns of ``X``.
    method
        A registered method (see :func:`dormsig.tl.methods`).
    var_names, obs_names
        Names used in messages (and by the gseapy/scanpy methods); optional.
    threads
        numba threads for the kernels (all available when None); restored afterwards.
    chunk_size
        Cells per chunk read and scored at once.
    seed
        Seed of any random step (AUCell tie order, scanpy control genes, gseapy).
    max_rank
        UCell rank cap.
    compute
        For a dask ``X`` and a single-sample method (ucell, aucell, singscore): ``False`` returns
        the lazy dask array of scores (cells x sets, one task per row block of ``X``) to compute on
        any scheduler; ``True`` computes it with the active scheduler. Ignored otherwise.
    **method_kwargs
        Method options (``w_neg`` for ucell, ``n_up`` for aucell, ``centre`` for singscore...).

    Returns
    -------
    DataFrame of cells x sets (float64). Extra outputs (singscore dispersion) are in
    ``result.attrs["extra"]`` and the method's effective parameters in ``result.attrs["params"]``.
    """
    res = _compute(X, sets, method=method, var_names=var_names, obs_names=obs_names, threads=threads,
                   chunk_size=chunk_size, seed=seed, max_rank=max_rank, **method_kwargs)
    if res.lazy and not compute:
        return res.scores
    res = _computed(res, obs_names)
    index = pd.Index(obs_names) if obs_names is not None else pd.RangeIndex(shape(X)[0])
    df = pd.DataFrame(res.scores, index=index, columns=list(sets))
    df.attrs["extra"] = {k: pd.DataFrame(v, index=index, columns=list(sets)) for k, v in res.extra.items()}
    df.attrs["params"] = res.params
    return df


def _computed(res: MethodResult, obs_names) -> MethodResult:
    """``res`` computed (dask: with the active scheduler); a bad row is named by its obs name."""
    from dormsig.tl.methods import NonFiniteRow

    try:
        return res.compute()
    except NonFiniteRow as exc:
        text = str(exc)
        row = int(text.split("row ", 1)[1].split(" ", 1)[0])
        name = obs_names[row] if obs_names is not None else f"row {row}"
        raise InputError(f"cell {name!s} has NaN or infinite values; rank methods need finite expression") from None


def _compute(X, sets: IndexSets, *, method: str, **kwargs: Any) -> MethodResult:
    mod = _registry.module(method)
    clean = {k: (np.asarray(u, dtype=np.int64), np.asarray(d, dtype=np.int64)) for k, (u, d) in sets.items()}
    return mod.compute(X, clean, **kwargs)


# ---------------------------------------------------------------------------------------------
# signatures -> gene names in the data


def _match(signatures, var_names: pd.Index, min_genes: int | None, species: str | None = None,
           detection: pd.Series | None = None, min_detection: float = MIN_DETECTION):
    """The match report, the set names and the library version of any signature specification."""
    library = as_library(signatures)
    with warnings.catch_warnings():
        # a set with no gene is reported by score() (NaN column + warning), once
        warnings.filterwarnings("ignore", message="no gene in the data for")
        kw = {} if detection is None else {"detection": detection, "min_detection": min_detection,
                                             "n_obs": detection.attrs.get("n_obs")}
        report = match(library, var_names, species=species, min_genes=min_genes, on_empty="warn", **kw)
    return report, report.names, report.library.get("version")


def _resolve_index(index):
    """(name, version, [(set, sign, weight), ...]) of an index spec, or None."""
    if index is None:
        return None
    if isinstance(index, str | bytes) or hasattr(index, "__fspath__"):
        index = load_index(None if index == "default" else index)
    if isinstance(index, Mapping):
        raw = index["components"]
        if isinstance(raw, str):  # provenance stores lists of dicts as JSON text
            raw = json.loads(raw)
        comps = [(str(c["set"]), int(c.get("sign", 1)), float(c.get("weight", 1.0))) for c in raw]
        return str(index.get("name", "custom")), str(index.get("version", "")), comps
    comps = [(str(c.set), int(c.sign), float(c.weight)) for c in index.components]
    return str(index.name), str(getattr(index, "version", "")), comps


def combine_index(scores: pd.DataFrame, components: Sequence[tuple[str, int, float]]) -> pd.Series:
    """The dormancy index: ``sum(sign * weight * score) / sum(weight)`` over the index's sets.

    Raw set scores are combined (no cohort standardisation), so a sample's index depends only on
    that sample when the method is single-sample.
    """
    total = np.zeros(len(scores))
    wsum = 0.0
    for name, sign, weight in components:
        total += sign * weight * scores[name].to_numpy(dtype=np.float64)
        wsum += abs(weight)
    if wsum == 0:
        raise InputError("dormancy index has zero total weight")
    return pd.Series(total / wsum, index=scores.index, name=INDEX_COLUMN)


def _transposed_error(signatures, adata: AnnData, species: str | None) -> InputError | None:
    """Genes x cells input: the signature genes are found in obs_names (not in var_names)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep, names, _ = _match(signatures, pd.Index(adata.obs_names.astype(str)), None, species)
        hits = sum(len(rep.matched(n)[0]) + len(rep.matched(n)[1]) for n in names)
    except Exception:  # noqa: BLE001 - only a diagnostic
        hits = 0
    if hits == 0:
        return None
    return InputError(
        f"AnnData with {adata.n_obs} obs x {adata.n_vars} vars looks transposed: signature genes are in "
        "obs_names, not var_names; pass adata.T (cells/samples x genes)"
    )


# ---------------------------------------------------------------------------------------------


def score(
    adata: AnnData,
    signatures=None,
    *,
    method: str = "auto",
    index: Any = "default",
    layer: str | None = None,
    threads: int | None = None,
    chunk_size: int = 20000,
    seed: int = 0,
    min_genes: int | None = None,
    max_rank: int | None = None,
    species: str | None = None,
    copy: bool = False,
    data_kind: str = "auto",
    min_detection: float = MIN_DETECTION,
    cells: Any = None,
    **method_kwargs: Any,
) -> AnnData | None:
    """Score gene sets in every cell or sample.

    Parameters
    ----------
    adata
        Cells (or samples) x genes; in memory, backed (``read_h5ad(path, backed="r")``, read in
        chunks) or with a dask ``X``. Rank methods read ``X`` (or ``layer``) as is: raw counts and
        log1p-normalised values give the same ucell/aucell/singscore scores (same order, same zeros).
    signatures
        ``None`` (the sets of the dormancy index), names from the shipped library, a
        ``dormsig.signatures.Library``, or a dict ``{name: genes}`` / ``{name: {"up": [...], "down": [...]}}``.
    method
        ``"auto"`` (default: follows the data, see Notes), ``"ucell"``, ``"aucell"``, ``"singscore"``
        (single-sample); ``"scanpy"``, ``"zmean"``, ``"ssgsea"``, ``"gsva"`` (cohort-dependent: scores
        change with the samples scored together).
    index
        Dormancy index (name, path, ``DormancyIndex`` or ``{"name", "version", "components": [{"set",
        "sign", "weight"}]}``); its value is added as column ``dormancy_index`` when all its sets are scored.
        ``None`` for no index.
    layer
        Layer to score instead of ``X``.
    threads
        numba threads (all available when None).
    chunk_size
        Cells per chunk.
    seed
        Seed of random steps; recorded.
    min_genes
        Sets with fewer matched genes are scored with a warning.
    max_rank
        UCell rank cap; ``None`` follows the data: 1500 on single cells (UCell's default), the number
        of genes on bulk samples.
    species
        Species of the data for matching (``"human"``/``"mouse"``); detected from ``var_names`` when None.
    copy
        Return a scored copy instead of writing into ``adata``.
    data_kind
        ``"auto"`` (detected: the rule of :mod:`dormsig.tl._data`, the one DE uses), ``"bulk"`` or
        ``"single_cell"``.
    min_detection
        A signature gene counts as detected when non-zero in at least this fraction of the observations
        (and in one); the match report gives present, detected and missing genes, and a set is ``ok``
        only with enough detected genes.
    cells
        Score only these observations: an ``obs`` column and value(s), e.g. ``"cell_type=malignant"``,
        ``{"cell_type": ["a", "b"]}`` (see :mod:`dormsig.tl.cells`). Others get NaN scores;
        ``obs["dormsig_scored"]`` marks the selection and the score record stores it (``"cells"``).
    **method_kwargs
        Passed to the method (``w_neg``, ``n_up``, ``centre``...).

    Returns
    -------
    The scored copy with ``copy=True``, else ``None``. Writes ``obsm["dormsig_scores"]`` (cells x sets
    and ``dormancy_index``), ``obs["dormsig_<set>"]`` and ``uns["dormsig"]["score"]`` (provenance:
    method and why it was chosen, the data profile, its metadata record, parameters incl.
    seed/max_rank/threads, library version, index name/version and genes its components share,
    the match report and the matched genes, the fraction of observations at each set's floor, and
    the warnings). singscore also writes ``obsm["dormsig_singscore_dispersion"]``.

    Notes
    -----
    - ``method="auto"``: UCell (max_rank 1500) on single cells; singscore on bulk samples. On bulk
      every gene is expressed, and UCell's single-cell cap ranks most set genes beyond it: on the 29
      CTC samples (16k genes) the 3-gene HSC-mimicry set scored 0 in 28 samples and the CD177 set in
      27. Uncapped (max_rank = number of genes) UCell and singscore agree on one-sided sets (Spearman
      >= 0.98 on CTC, the same samples at the floor), but UCell clips signed sets at
      ``max(0, up - down)`` (WIECEK2023_G0_ARREST at 0 in 9 of 29 samples, DORMANCY_KIM2012 in 20)
      where singscore, made for bulk samples (Foroutan et al. 2018), keeps the difference. The choice
      and its reason are in ``uns["dormsig"]["score"]["params"]``.
    - A set whose score equals its floor in more than half of the observations gets a warning (and
      ``warnings`` in the record): the floor is the score of an observation with none of the set's
      genes detected (ucell, singscore), or the lowest score observed (other methods). Those
      observations are tied, not low.
    - Index components that share genes are warned about: such a gene counts twice in the index.
    - NaN or infinite values raise :class:`~dormsig.errors.InputError` naming the first such cell.
    - All-zero cells are scored, never NaN: ucell gives 0 (every gene at ``max_rank``), aucell the
      value implied by its fixed tie order, singscore the lowest up / highest down part.
    - Rank methods expect non-negative expression (counts or log1p-normalised values); negative values
      are ranked as values (ucell follows pyUCell: below positives, above zeros).
    - A set with no gene in the data gets NaN scores and a warning; the index then is not computed.
    - Input that looks genes x cells (signature genes found in ``obs_names``) raises ``InputError``.
    - A dask ``X`` (e.g. ``anndata.experimental.read_elem_lazy`` on a zarr/h5ad store) is scored as a dask
      graph, one task per row block (its row chunks; ``chunk_size`` is not used), computed with the
      active scheduler (a ``distributed.Client`` when one is open); the data profile is computed the same
      way. Results equal the in-memory ones bit for bit. ``threads`` is then numba threads per task (1 by
      default). For a lazy result use :func:`score_matrix` with ``compute=False``.
    """
    if cells is not None:  # score the selection as its own AnnData, then write back (NaN elsewhere)
        from dormsig.tl.cells import score_restricted

        params = {k: v for k, v in locals().items() if k not in ("adata", "cells", "copy", "method_kwargs")}
        full = None
        if data_kind == "auto":  # the kind of data is that of all observations: 40 tumour cells are still cells
            full = _data.profile(adata, layer=layer, chunk_size=chunk_size)
            params["data_kind"] = full.kind
        out = score_restricted(score, adata, cells, copy=copy, kwargs={**params, **method_kwargs})
        if full is not None:
            target = out if copy else adata
            target.uns["dormsig"]["score"]["data"]["reason"] = f"all {full.n_obs} observations: {full.reason}"
        return out
    if method != "auto":
        info = _registry.info(method)  # an unknown method fails before the data are read
        if info.cohort_dependent and adata.n_obs < MIN_COHORT_SAMPLES:
            raise InputError(f"method {method!r} scores each sample against the others and needs at least "
                             f"{MIN_COHORT_SAMPLES} samples, got {adata.n_obs}; use ucell, aucell or singscore")
        if info.cohort_dependent and adata.n_obs < WARN_COHORT_SAMPLES:
            warnings.warn(f"method {method!r} scores each sample against the other {adata.n_obs - 1}: with fewer "
                          f"than {WARN_COHORT_SAMPLES} samples its scores are unstable", UserWarning, stacklevel=2)
    if copy and adata.isbacked:
        raise InputError(f"{adata.filename}: copy=True is not supported for backed AnnData; score in place")
    adata = adata.copy() if copy else adata
    var_names = pd.Index(adata.var_names.astype(str))
    if not var_names.is_unique:
        raise InputError("AnnData var_names are not unique; run adata.var_names_make_unique() or dormsig.pp.harmonise_genes")
    if layer is not None and layer not in adata.layers:
        raise InputError(f"layer {layer!r} not found (layers: {sorted(adata.layers)})")
    if isinstance(min_detection, bool) or not isinstance(min_detection, int | float) or not 0 <= min_detection <= 1:
        raise InputError(f"min_detection must be a fraction between 0 and 1, got {min_detection!r}")
    profile = _data.profile(adata, layer=layer, kind=data_kind, chunk_size=chunk_size)
    requested = method
    if method == "auto":
        method, method_reason = _registry.default_method(profile.kind)
    else:
        method_reason = "given"
    info = _registry.info(method)
    if max_rank is None:
        max_rank, max_rank_reason = _registry.default_max_rank(profile.kind, adata.n_vars)
    else:
        max_rank_reason = "given"
    idx_spec = _resolve_index(index)
    if signatures is None:
        if idx_spec is None:
            raise InputError("signatures=None needs a dormancy index to take the sets from (index is None)")
        signatures = _index_signatures(idx_spec)
    elif isinstance(signatures, list | tuple) and all(isinstance(s, str) for s in signatures):
        signatures = _library_subset(list(signatures))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report, names, lib_version = _match(signatures, var_names, min_genes, species, profile.detection,
                                                min_detection)
        except MatchError as exc:
            err = _transposed_error(signatures, adata, species)
            raise (err or exc) from None
    notes = [str(w.message) for w in caught]
    for w in caught:  # passed on to the caller (the CLI prints them)
        warnings.warn_explicit(w.message, w.category, __file__, 0)
    if isinstance(signatures, Mapping):  # keep the caller's order
        order = {str(k): i for i, k in enumerate(signatures)}
        names = sorted(names, key=lambda n: order.get(n, len(order)))
    matched = {n: tuple(report.matched(n)) for n in names}
    sizes = {n: len(u) + len(d) for n, (u, d) in matched.items()}
    if sum(sizes.values()) == 0:
        err = _transposed_error(signatures, adata, species)
        raise err or MatchError("no signature gene is found in var_names; check the gene identifiers "
                                "(dormsig.pp.harmonise_genes) or pass species=")
    for n, k in sizes.items():
        if k == 0:
            notes.append(_warn(f"signature {n!r} has no gene in the data; its score is NaN"))
    scored = [n for n in names if sizes[n] > 0]
    sets = {n: (var_names.get_indexer(matched[n][0]), var_names.get_indexer(matched[n][1])) for n in scored}

    X = adata.layers[layer] if layer is not None else adata.X
    if X is None:
        raise InputError("AnnData has no X to score")
    obs_names = adata.obs_names
    res = _compute(X, sets, method=method, var_names=var_names, obs_names=obs_names, threads=threads,
                   chunk_size=chunk_size, seed=seed, max_rank=max_rank, **method_kwargs)
    res = _computed(res, obs_names)  # a dask matrix: one graph on the active scheduler
    table = pd.DataFrame(np.nan, index=adata.obs_names, columns=names, dtype=np.float64)
    if scored:
        table.loc[:, scored] = res.scores
    floors = _floors(table[scored], sets, method, adata.n_vars, max_rank=max_rank, **method_kwargs)
    low = {n: f for n, f in floors.items() if f["fraction"] > FLOOR_WARN_FRACTION}
    if low:
        what = "samples" if profile.kind == "bulk" else "cells"
        notes.append(_warn(
            f"sets at their floor score (no gene of the set detected, or tied at the lowest value) in more than "
            f"half of the {adata.n_obs} {what}, whose scores are then tied, not low: "
            + "; ".join(f"{n} {f['n']}/{adata.n_obs} at {f['value']:.4g}" for n, f in low.items())))
    index_rec = None
    if idx_spec is not None:
        name, version, comps = idx_spec
        index_rec = {"name": name, "version": version,
                     "components": [{"set": s, "sign": sg, "weight": w} for s, sg, w in comps]}
        shared = _shared_genes(matched, [s for s, _, _ in comps])
        index_rec["shared_genes"] = shared
        if shared:
            notes.append(_warn(f"index {name!r}: components share genes, which the index counts more than once: "
                               + "; ".join(f"{g} ({', '.join(owners)})" for g, owners in shared.items())))
        if all(s in scored for s, _, _ in comps):
            table[INDEX_COLUMN] = combine_index(table, comps).to_numpy()
            index_rec["computed"] = True
        else:
            index_rec["computed"] = False
    adata.obsm[OBSM_KEY] = table
    for col in table.columns:
        adata.obs[f"{OBS_PREFIX}{col}"] = table[col].to_numpy()
    for key, values in res.extra.items():
        extra = pd.DataFrame(np.nan, index=adata.obs_names, columns=names, dtype=np.float64)
        if scored:
            extra.loc[:, scored] = values
        adata.obsm[f"dormsig_{method}_{key}"] = extra
    params = {"method": method, "method_requested": requested, "method_reason": method_reason,
              "data_kind": profile.kind, "layer": layer, "threads": threads, "chunk_size": chunk_size,
              "seed": seed, "min_genes": min_genes, "min_detection": float(min_detection),
              "max_rank": int(max_rank) if method == "ucell" else None,
              "max_rank_reason": max_rank_reason if method == "ucell" else "not used",
              **{k: _plain(v) for k, v in method_kwargs.items()}, **res.params}
    summaries = {n: report[n].summary() for n in names if hasattr(report, "__getitem__")}
    rec = record("score", method=method, params=params, method_info=info.to_dict(), data=profile.to_dict(),
                 library_version=None if lib_version is None else str(lib_version), index=index_rec,
                 match=report.to_dict(), match_summary=summaries, sets=names, n_genes_matched=sizes,
                 floor={n: {"fraction": round(f["fraction"], 6), "value": f["value"]} for n, f in floors.items()},
                 warnings=notes,
                 genes={n: {"up": list(map(str, matched[n][0])), "down": list(map(str, matched[n][1]))} for n in names})
    attach(adata, "score", rec)
    return adata if copy else None


def _warn(text: str) -> str:
    warnings.warn(text, UserWarning, stacklevel=3)
    return text


def _floors(table: pd.DataFrame, sets: IndexSets, method: str, n_genes: int, **kwargs: Any) -> dict[str, dict]:
    """Per set: its floor score and the number/fraction of observations there.

    The floor of ucell and singscore is the score of an observation with no set gene detected (an
    all-zero row, scored by the method itself); for the other methods it is the lowest score observed.
    """
    if table.empty or not len(table):
        return {}
    if method in ("ucell", "singscore"):
        import scipy.sparse as sp

        zero = _compute(sp.csr_matrix((1, n_genes), dtype=np.float64), sets, method=method, **kwargs).scores[0]
        floor = dict(zip(table.columns, zero.tolist(), strict=True))
    elif len(table) < 2:
        return {}  # a lowest value needs at least two observations
    else:
        floor = table.min().to_dict()
    out = {}
    for name in table.columns:
        values = table[name].to_numpy(dtype=np.float64)
        at = np.isclose(values, floor[name], rtol=0, atol=1e-12)
        out[name] = {"value": float(floor[name]), "n": int(at.sum()), "fraction": float(at.mean())}
    return out


def _shared_genes(matched: Mapping[str, tuple], components: Sequence[str]) -> dict[str, list[str]]:
    """``{gene: [components]}`` for the data genes matched by more than one index component."""
    owners: dict[str, list[str]] = {}
    for name in components:
        if name not in matched:
            continue
        up, down = matched[name]
        for gene in dict.fromkeys([*up, *down]):
            owners.setdefault(str(gene), []).append(name)
    return {g: o for g, o in owners.items() if len(o) > 1}


def _plain(value):
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def _index_signatures(idx_spec):
    """The library sets an index is made of (needs dormsig.signatures)."""
    return _library_subset([s for s, _, _ in idx_spec[2]])


def _library_subset(names: list[str]) -> Library:
    return load_library().select(names)
