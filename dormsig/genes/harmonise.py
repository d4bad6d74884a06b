"""Rename an AnnData's genes to current official symbols and merge duplicates."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from dormsig.errors import GeneIdError, InputError
from dormsig.genes.detect import detect_species, id_type_counts
from dormsig.genes.resolve import HOWS, check_species, resolve
from dormsig.genes.tables import table_versions
from dormsig.provenance import UNS_KEY, attach, record

N_EXAMPLES = 20


def _sum_columns(mat, groups: sp.csr_matrix):
    """Sum the columns of ``mat`` (obs x var) within groups; keeps sparsity, format and dtype."""
    agg = groups.astype(mat.dtype)
    if sp.issparse(mat):
        fmt = mat.format
        out = (sp.csr_matrix(mat) @ agg).asformat(fmt)
        return out.astype(mat.dtype, copy=False)
    return np.asarray(agg.T @ np.asarray(mat).T).T.astype(mat.dtype, copy=False)


def _column_means(mat) -> np.ndarray:
    return np.asarray(mat.mean(axis=0), dtype=np.float64).ravel()


def harmonise(
    adata: AnnData,
    *,
    species: str | None = None,
    layer: str = "counts",
    copy: bool = False,
) -> AnnData | None:
    """Map ``var_names`` to current official symbols and merge genes that become duplicates.

    Identifiers are resolved with :func:`dormsig.genes.resolve` in data mode (never with the
    curated literature aliases). Unmapped and ambiguous IDs keep their original name, so no
    gene is lost. ``var["original_id"]`` keeps what the file said (``";"``-joined when genes
    were merged) and ``var["id_how"]`` how each name was obtained.

    Genes mapping to the same symbol are merged by summing their columns in ``layers[layer]``
    (and in every other layer; sparsity and integer dtype kept); ``X`` is then recomputed with
    :func:`dormsig.pp.normalise` using the ``target_sum`` recorded by an earlier normalisation,
    if any. Without the counts layer (already-normalised data) the gene with the highest mean
    in ``X`` is kept for each symbol. Other ``var`` columns and ``varm`` rows come from the
    first gene of each group.

    Harmonising twice changes nothing. The report is stored in ``uns["dormsig"]["genes"]``.

    Parameters
    ----------
    adata
        The AnnData (obs x genes).
    species
        ``"human"`` or ``"mouse"``; detected from ``var_names`` when ``None``.
    layer
        Layer holding raw counts.
    copy
        Return a harmonised copy instead of modifying ``adata`` in place.

    Raises
    ------
    GeneIdError
        When the species cannot be detected or is not supported.
    """
    if adata.is_view:
        raise InputError("harmonise: adata is a view; pass adata.copy() or a real AnnData")
    if copy:
        # Work on a full copy, then proceed as in place: nothing is shared with the caller's object.
        out = adata.copy()
        harmonise(out, species=species, layer=layer, copy=False)
        return out
    if adata.n_vars == 0:
        raise GeneIdError("harmonise: adata has no genes (n_vars == 0)")
    original = [str(v) for v in adata.var_names]
    detected = species is None
    try:
        species = detect_species(original) if species is None else check_species(species)
    except GeneIdError as exc:
        raise GeneIdError(f"adata.var_names: {exc}") from None
    counts_by_type = id_type_counts(original)
    id_type = max(counts_by_type, key=lambda t: counts_by_type[t])

    res = resolve(original, species)  # data mode: per-ID type, no curated aliases
    hows = res["how"].to_numpy(dtype=object)
    new_names = np.where(res["symbol"].isna(), np.asarray(original, dtype=object), res["symbol"].to_numpy(dtype=object))
    codes, uniques = pd.factorize(pd.Series(new_names, dtype=object))
    n_new = len(uniques)
    renamed = any(a != b for a, b in zip(original, new_names, strict=True))
    collapsed = n_new < len(original)
    previous = adata.uns.get(UNS_KEY, {}).get("genes") if isinstance(adata.uns.get(UNS_KEY), dict) else None
    if not renamed and not collapsed and previous is not None and "original_id" in adata.var:
        return None  # already harmonised: leave everything (X, var, uns) untouched

    # --- var annotation -----------------------------------------------------------------
    prior_ids = (
        adata.var["original_id"].astype(str).to_numpy() if "original_id" in adata.var else np.asarray(original, dtype=object)
    )
    prior_how = adata.var["id_how"].astype(str).to_numpy() if "id_how" in adata.var else None
    # A name that maps to itself keeps the earlier "how" (so a second run does not relabel it).
    id_how = np.array(
        [p if (prior_how is not None and o == n) else h for p, o, n, h in
         zip(prior_how if prior_how is not None else hows, original, new_names, hows, strict=True)],
        dtype=object,
    )
    first = np.unique(codes, return_index=True)[1]  # factorize codes are in order of first appearance
    members: list[list[int]] = [[] for _ in range(n_new)]
    for i, c in enumerate(codes):
        members[c].append(i)
    joined_ids = [";".join(str(prior_ids[i]) for i in m) for m in members]

    has_counts = layer in adata.layers
    collapse_method = None
    examples: list[str] = []
    if collapsed:
        examples = [f"{';'.join(original[i] for i in m)} -> {uniques[c]}" for c, m in enumerate(members) if len(m) > 1]
    if not collapsed:
        adata_out = adata
        adata_out.var_names = pd.Index(list(uniques), dtype=object)
        adata_out.var["original_id"] = joined_ids
        adata_out.var["id_how"] = id_how
    else:
        groups = sp.csr_matrix(
            (np.ones(len(codes), dtype=np.int8), (np.arange(len(codes)), codes)), shape=(len(codes), n_new)
        )
        var = adata.var.iloc[first].copy()
        var.index = pd.Index(list(uniques), dtype=object)
        var["original_id"] = joined_ids
        var["id_how"] = id_how[first]
        if has_counts:
            collapse_method = f"sum of layers[{layer!r}]"
            layers = {k: _sum_columns(v, groups) for k, v in adata.layers.items()}
            x = layers[layer].copy()
            keep = first
        else:
            # No raw counts: summing normalised values is meaningless, keep the most expressed gene.
            collapse_method = "highest mean of X (no counts layer)"
            means = _column_means(adata.X) if adata.X is not None else np.zeros(len(codes))
            keep = np.array([m[int(np.argmax(means[m]))] for m in members])
            layers = {k: v[:, keep] for k, v in adata.layers.items()}
            x = adata.X[:, keep] if adata.X is not None else None
        new = AnnData(
            X=x,
            obs=adata.obs.copy(),
            var=var,
            uns=adata.uns,
            obsm=dict(adata.obsm.items()),
            obsp=dict(adata.obsp.items()),
            varm={k: (v.iloc[keep] if isinstance(v, pd.DataFrame) else v[keep]) for k, v in adata.varm.items()},
            varp={k: v[keep][:, keep] for k, v in adata.varp.items()},
            layers=layers,
        )
        if adata.raw is not None:
            new.raw = adata.raw.to_adata()
        adata._init_as_actual(new)  # the same in-place replacement anndata uses in _inplace_subset_var
        adata_out = adata
        if has_counts:
            from dormsig._normalise import normalise

            norm = adata_out.uns.get(UNS_KEY, {}).get("normalise", {})
            target_sum = norm.get("params", {}).get("target_sum") if isinstance(norm, dict) else None
            normalise(adata_out, layer=layer, target_sum=target_sum)

    how_counts = Counter(hows)
    ambiguous = [q for q, h in zip(original, hows, strict=True) if h == "ambiguous"]
    unmapped = [q for q, h in zip(original, hows, strict=True) if h == "unmapped"]
    rec = record(
        "genes",
        method="resolve",
        params={"species": species, "layer": layer, "use_curated_aliases": False},
        species=species,
        species_detected=detected,
        id_type=id_type,
        id_type_counts=counts_by_type,
        n_input=len(original),
        n_output=n_new,
        n_by_how={h: int(how_counts.get(h, 0)) for h in HOWS},
        n_mapped=int(sum(how_counts.get(h, 0) for h in HOWS if h not in ("unmapped", "ambiguous"))),
        n_renamed=int(sum(a != b for a, b in zip(original, new_names, strict=True))),
        n_unmapped=len(unmapped),
        unmapped_examples=unmapped[:N_EXAMPLES],
        n_ambiguous=len(ambiguous),
        ambiguous_examples=ambiguous[:N_EXAMPLES],
        n_collapsed=len(original) - n_new,
        collapsed_examples=examples[:N_EXAMPLES],
        collapse_method=collapse_method,
        recomputed_X=bool(collapsed and has_counts),
        tables=table_versions(),
    )
    attach(adata_out, "genes", rec)
    return None
