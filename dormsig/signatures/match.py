"""Match signatures to the genes of a dataset.

For each signature gene, in order:

1. the gene itself is a data ``var_name`` (same species) -> ``exact``;
2. the signature text is resolved to the current official symbol with the curated literature
   aliases allowed (``p27`` -> CDKN1B; signature side only) -> ``alias`` when that differs;
3. if the data species differs, the symbol is translated through HCOP orthologs -> ``ortholog``;
4. the symbol is looked up among the data ``var_names``, directly or after resolving the data
   side *without* curated aliases (Ensembl/Entrez IDs -> ``ensembl``/``entrez``; outdated data
   symbols -> ``alias``). Several data IDs for one symbol: the first in data order is used.

The result is a :class:`MatchReport` with, per set and part, the genes *present* in the data
(matched ``var_names``), those *detected* (non-zero in at least ``min_detection`` of the cells or
samples, when the data's detection rates are given), the *missing* genes (with the reason) and
how each gene was matched. A gene present with zero counts everywhere is present, not detected.
Status per set:

``ok``
    every non-empty part has at least ``min(part size, min_genes)`` detected genes (present genes
    when detection is not assessed);
``not_detected``
    enough genes are present but some part has fewer detected genes than that: the set is kept
    and scored with a :class:`MatchWarning` (its score rests on genes the data barely measure);
``below_min_genes``
    some part has fewer present genes: the set is kept (scores are computed) and a :class:`MatchWarning` is
    issued, so that 1-3 gene marker sets stay usable on shallow data;
``no_overlap``
    no gene matched: :class:`~dormsig.errors.MatchError` (naming the set and the first missing
    genes), unless ``on_empty="warn"`` (library-wide runs), where the set stays in the report
    with this status and a warning; it is never dropped silently.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dormsig.errors import DormsigError, MatchError, SignatureError
from dormsig.signatures.model import PARTS, Library, Signature
from dormsig.signatures.spec import as_library

STATUSES = ("ok", "not_detected", "below_min_genes", "no_overlap")
#: Default ``min_detection``: a gene counts as detected when it is non-zero in at least 5% of the
#: cells or samples (and in at least one). Below that it moves the scores of too few observations
#: to separate them: in 29 bulk CTC samples, TEK (non-zero in 1) is present but not detected.
DEFAULT_MIN_DETECTION = 0.05
#: Undetected genes are warned about when the set falls below min_genes detected, or when they are at
#: least this fraction of its present genes (3 of 200 Hallmark genes are only listed in the report).
UNDETECTED_WARN_FRACTION = 0.25
#: Orthologs backed by fewer HCOP sources are used only when they share the gene's name, the
#: curation's rule (it rejects e.g. CXCL8 -> Cxcl15 and GABARAPL3 -> Gabarapl1 but keeps
#: NEAT1 -> Neat1, whose lncRNA orthology has little support).
ORTHOLOG_MIN_SUPPORT = 3
_N_MISSING_IN_MESSAGE = 5


class MatchWarning(UserWarning):
    """A gene set matched fewer genes than its ``min_genes`` or none at all (``on_empty="warn"``)."""


@dataclass(frozen=True)
class PartMatch:
    """The match of one part (``up`` or ``down``) of a signature."""

    part: str
    genes: tuple[str, ...]
    matched: tuple[str, ...]  # data var_names, in signature order
    matched_genes: tuple[str, ...]  # the signature genes they came from
    how: tuple[str, ...]  # per matched gene: exact / alias / ortholog / ensembl / entrez (joined with +)
    missing: tuple[str, ...]
    missing_reason: tuple[str, ...]
    min_required: int
    detected: tuple[str, ...] | None = None  # matched var_names detected in the data; None: not assessed

    @property
    def n_total(self) -> int:
        return len(self.genes)

    @property
    def n_matched(self) -> int:
        """Genes present in the data (same as :attr:`n_present`)."""
        return len(self.matched)

    @property
    def n_present(self) -> int:
        return len(self.matched)

    @property
    def n_detected(self) -> int:
        """Detected genes; the present ones when detection was not assessed."""
        return self.n_present if self.detected is None else len(self.detected)

    @property
    def undetected(self) -> tuple[str, ...]:
        """Genes present in the data but not detected (var_names)."""
        return () if self.detected is None else tuple(g for g in self.matched if g not in set(self.detected))

    @property
    def coverage(self) -> float:
        """Detected genes / genes of the part (present genes when detection was not assessed)."""
        return self.n_detected / self.n_total if self.n_total else float("nan")

    @property
    def present_coverage(self) -> float:
        return self.n_present / self.n_total if self.n_total else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_total": self.n_total,
            "n_matched": self.n_matched,
            "n_present": self.n_present,
            "n_detected": self.n_detected,
            "n_missing": len(self.missing),
            "coverage": None if not self.n_total else round(self.coverage, 6),
            "present_coverage": None if not self.n_total else round(self.present_coverage, 6),
            "detection_assessed": self.detected is not None,
            "min_required": self.min_required,
            "matched": list(self.matched),
            "matched_genes": list(self.matched_genes),
            "how": list(self.how),
            "detected": list(self.matched if self.detected is None else self.detected),
            "undetected": list(self.undetected),
            "missing": list(self.missing),
            "missing_reason": list(self.missing_reason),
        }


@dataclass(frozen=True)
class SetMatch:
    """The match of one signature: status, ``min_genes`` used and both parts."""

    name: str
    status: str
    min_genes: int
    up: PartMatch
    down: PartMatch
    signature_species: str
    signature_version: str

    @property
    def n_total(self) -> int:
        return self.up.n_total + self.down.n_total

    @property
    def n_matched(self) -> int:
        """Genes present in the data (same as :attr:`n_present`)."""
        return self.up.n_matched + self.down.n_matched

    @property
    def n_present(self) -> int:
        return self.n_matched

    @property
    def n_detected(self) -> int:
        return self.up.n_detected + self.down.n_detected

    @property
    def coverage(self) -> float:
        """Detected genes / genes of the set (present genes when detection was not assessed)."""
        return self.n_detected / self.n_total

    @property
    def present_coverage(self) -> float:
        return self.n_present / self.n_total

    @property
    def missing(self) -> tuple[str, ...]:
        return self.up.missing + self.down.missing

    @property
    def undetected(self) -> tuple[str, ...]:
        return self.up.undetected + self.down.undetected

    def summary(self) -> str:
        """One line: ``present 4/4, detected 3/4 (undetected: CD177), missing 0, coverage 0.75, ok``."""
        und = f" (undetected: {', '.join(self.undetected)})" if self.undetected else ""
        return (f"present {self.n_present}/{self.n_total}, detected {self.n_detected}/{self.n_total}{und}, "
                f"missing {len(self.missing)}, coverage {self.coverage:.2f}, {self.status}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "min_genes": self.min_genes,
            "signature_species": self.signature_species,
            "signature_version": self.signature_version,
            "n_total": self.n_total,
            "n_matched": self.n_matched,
            "n_present": self.n_present,
            "n_detected": self.n_detected,
            "n_missing": len(self.missing),
            "coverage": round(self.coverage, 6),
            "present_coverage": round(self.present_coverage, 6),
            "undetected": list(self.undetected),
            "up": self.up.to_dict(),
            "down": self.down.to_dict(),
        }


class MatchReport:
    """Per-set match results; see :func:`match`.

    Attributes
    ----------
    data_species, id_type
        Species and identifier type of the data ``var_names``.
    n_vars
        Number of data genes.
    library
        ``{"name", "version"}`` of the signatures matched.
    """

    def __init__(self, sets: Sequence[SetMatch], *, data_species: str, id_type: str, n_vars: int,
                 library: dict[str, str], min_genes: int | None, on_empty: str,
                 min_detection: float | None = None, n_obs: int | None = None) -> None:
        self._sets = {s.name: s for s in sets}
        self.data_species = data_species
        self.id_type = id_type
        self.n_vars = n_vars
        self.library = dict(library)
        self.min_genes = min_genes
        self.on_empty = on_empty
        self.min_detection = min_detection  # None: detection not assessed
        self.n_obs = n_obs

    def __getitem__(self, name: str) -> SetMatch:
        try:
            return self._sets[name]
        except KeyError:
            raise SignatureError(
                f"match report: unknown set {name!r}; sets: {', '.join(self._sets)}"
            ) from None

    def __iter__(self) -> Iterator[SetMatch]:
        return iter(self._sets.values())

    def __len__(self) -> int:
        return len(self._sets)

    def __contains__(self, name: object) -> bool:
        return name in self._sets

    def __repr__(self) -> str:
        counts = Counter(s.status for s in self)
        return f"<MatchReport {len(self)} sets on {self.n_vars} {self.data_species} {self.id_type} genes: {dict(counts)}>"

    @property
    def names(self) -> list[str]:
        return list(self._sets)

    @property
    def usable(self) -> list[str]:
        """Sets with at least one matched gene (status ``ok`` or ``below_min_genes``)."""
        return [s.name for s in self if s.status != "no_overlap"]

    def matched(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(up_var_names, down_var_names)`` of one set, in signature order."""
        s = self[name]
        return s.up.matched, s.down.matched

    def shared_genes(self, names: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Data genes matched by more than one of the sets ``names`` (all sets when None): ``{gene: [sets]}``.

        Use it on the components of an index: a gene in two components counts twice in the index.
        """
        owners: dict[str, list[str]] = {}
        for name in (self.names if names is None else names):
            if name not in self._sets:
                continue
            s = self._sets[name]
            for gene in dict.fromkeys(s.up.matched + s.down.matched):
                owners.setdefault(gene, []).append(name)
        return {g: sets for g, sets in owners.items() if len(sets) > 1}

    def to_frame(self):
        """One row per set: status, sizes, present / detected / missing counts, coverage (detected), how genes
        matched, the undetected and the missing genes."""
        import pandas as pd

        rows = []
        for s in self:
            how = Counter(h for part in (s.up, s.down) for h in part.how)
            rows.append(
                {
                    "name": s.name,
                    "status": s.status,
                    "n_up": s.up.n_total,
                    "n_up_matched": s.up.n_matched,
                    "n_down": s.down.n_total,
                    "n_down_matched": s.down.n_matched,
                    "n_total": s.n_total,
                    "n_matched": s.n_matched,
                    "n_present": s.n_present,
                    "n_detected": s.n_detected,
                    "n_missing": len(s.missing),
                    "coverage": s.coverage,
                    "present_coverage": s.present_coverage,
                    "min_genes": s.min_genes,
                    "how": ";".join(f"{k}:{v}" for k, v in sorted(how.items())),
                    "undetected": ",".join(s.undetected),
                    "missing": ",".join(s.missing),
                }
            )
        columns = ["name", "status", "n_up", "n_up_matched", "n_down", "n_down_matched", "n_total", "n_matched",
                   "n_present", "n_detected", "n_missing", "coverage", "present_coverage", "min_genes", "how",
                   "undetected", "missing"]
        return pd.DataFrame(rows, columns=columns).set_index("name")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (for ``uns["dormsig"]`` and provenance sidecars)."""
        return {
            "library": self.library,
            "data": {"species": self.data_species, "id_type": self.id_type, "n_vars": self.n_vars,
                     "n_obs": self.n_obs},
            "params": {"min_genes": self.min_genes, "on_empty": self.on_empty,
                       "ortholog_min_support": ORTHOLOG_MIN_SUPPORT, "min_detection": self.min_detection,
                       "detection": "not assessed" if self.min_detection is None else
                       f"non-zero in >= {self.min_detection:g} of {self.n_obs} observations (and in >= 1)"},
            "sets": {s.name: s.to_dict() for s in self},
        }

    @classmethod
    def from_dict(cls, rec: Mapping[str, Any]) -> MatchReport:
        """The report back from :meth:`to_dict` (as stored in ``uns["dormsig"]["score"]["match"]``).

        The order of a part's signature genes is not stored: they come back as matched, then missing.
        """
        def part(name: str, d: Mapping[str, Any]) -> PartMatch:
            matched = tuple(map(str, d.get("matched", ())))
            missing = tuple(map(str, d.get("missing", ())))
            matched_genes = tuple(map(str, d.get("matched_genes", matched)))
            detected = tuple(map(str, d.get("detected", matched))) if d.get("detection_assessed") else None
            return PartMatch(part=name, genes=matched_genes + missing, matched=matched, matched_genes=matched_genes,
                             how=tuple(map(str, d.get("how", ()))), missing=missing,
                             missing_reason=tuple(map(str, d.get("missing_reason", ()))),
                             min_required=int(d.get("min_required", 0)), detected=detected)

        sets = [SetMatch(name=str(name), status=str(d["status"]), min_genes=int(d["min_genes"]),
                         up=part("up", d["up"]), down=part("down", d["down"]),
                         signature_species=str(d.get("signature_species", "human")),
                         signature_version=str(d.get("signature_version", "")))
                for name, d in dict(rec.get("sets", {})).items()]
        data = dict(rec.get("data", {}))
        params = dict(rec.get("params", {}))
        n_obs = data.get("n_obs")
        min_detection = params.get("min_detection")
        return cls(sets, data_species=str(data.get("species", "human")), id_type=str(data.get("id_type", "symbol")),
                   n_vars=int(data.get("n_vars", 0)), library=dict(rec.get("library", {})),
                   min_genes=None if params.get("min_genes") is None else int(params["min_genes"]),
                   on_empty=str(params.get("on_empty", "raise")),
                   min_detection=None if min_detection is None else float(min_detection),
                   n_obs=None if n_obs is None else int(n_obs))

    def to_library(self) -> Library:
        """The usable sets with their genes replaced by the matched data ``var_names``."""
        sigs = []
        for s in self:
            if s.status == "no_overlap":
                continue
            sigs.append(Signature(name=s.name, version=s.signature_version, up=s.up.matched, down=s.down.matched,
                                  species=self.data_species))
        return Library(sigs, version=self.library.get("version", "user"), name=self.library.get("name", "user"))


class _DataIndex:
    """Lookups from official symbols to the data's var_names (built lazily; data-side resolution is slow-ish)."""

    def __init__(self, var_names: Sequence[str], species: str) -> None:
        self.var_names = var_names
        self.species = species
        self.exact: dict[str, str] = {}
        for v in var_names:
            self.exact.setdefault(v, v)
        self._resolved: dict[str, tuple[str, str]] | None = None

    def resolved(self) -> dict[str, tuple[str, str]]:
        if self._resolved is None:
            from dormsig.genes import resolve

            table = resolve(list(self.var_names), self.species, use_curated_aliases=False)
            out: dict[str, tuple[str, str]] = {}
            for query, symbol, how in zip(table["query"], table["symbol"], table["how"], strict=True):
                if symbol is None or symbol in self.exact:
                    continue  # an exact var_name always wins over a renamed/ID one
                label = how if how in ("ensembl", "entrez") else "alias"
                out.setdefault(symbol, (query, label))
            self._resolved = out
        return self._resolved

    def lookup(self, symbol: str) -> tuple[str, str] | None:
        if symbol in self.exact:
            return self.exact[symbol], ""
        return self.resolved().get(symbol)


def _signature_targets(genes: list[str], sig_species: str, data_species: str) -> dict[str, tuple[str | None, str, str]]:
    """Signature gene -> (symbol in the data species or None, how, reason if None)."""
    from dormsig.genes import resolve, to_species

    out: dict[str, tuple[str | None, str, str]] = {}
    if not genes:
        return out
    res = resolve(genes, sig_species, use_curated_aliases=True)
    symbols = {}
    for query, symbol, how, cand in zip(res["query"], res["symbol"], res["how"], res["candidates"], strict=True):
        if symbol is None:
            # Unknown to the gene tables: keep the text, it may still be a data var_name.
            symbols[query] = (query, "", f"{how} in {sig_species} gene tables" + (f" ({cand})" if cand else ""))
        else:
            symbols[query] = (symbol, "alias" if symbol != query else "", "")
    if sig_species == data_species:
        return {g: (s, how, reason) for g, (s, how, reason) in symbols.items()}
    src = [symbols[g][0] for g in genes]
    orth = to_species(src, sig_species, data_species)
    for gene, target, n_support in zip(genes, orth["symbol"], orth["n_support"], strict=True):
        symbol, how, _ = symbols[gene]
        if target is not None and n_support < ORTHOLOG_MIN_SUPPORT and target.lower() != symbol.lower():
            target = None
        if target is None:
            out[gene] = (None, "", f"no {data_species} ortholog (HCOP: none, or a differently named one "
                                   f"with < {ORTHOLOG_MIN_SUPPORT} sources)")
        else:
            out[gene] = (target, "+".join(h for h in (how, "ortholog") if h), "")
    return out


def _match_one(sig: Signature, data: _DataIndex, targets: dict, min_genes: int | None,
               detected: set[str] | None = None) -> SetMatch:
    used: dict[str, str] = {}  # var_name -> signature gene that claimed it
    parts = {}
    for part in PARTS:
        genes = sig.part(part)
        matched, matched_genes, hows, missing, reasons = [], [], [], [], []
        for gene in genes:
            hit = None
            if gene in data.exact and sig.species == data.species:
                hit = (data.exact[gene], "exact")
            else:
                symbol, how, reason = targets[gene]
                if symbol is None:
                    missing.append(gene)
                    reasons.append(reason)
                    continue
                found = data.lookup(symbol)
                if found is None:
                    missing.append(gene)
                    reasons.append(f"{symbol} not in data" if symbol != gene else "not in data")
                    continue
                var, data_how = found
                label = "+".join(h for h in (how, data_how) if h) or "exact"
                hit = (var, label)
            var, label = hit
            if var in used:
                missing.append(gene)
                reasons.append(f"same data gene {var} as {used[var]}")
                continue
            used[var] = gene
            matched.append(var)
            matched_genes.append(gene)
            hows.append(label)
        parts[part] = PartMatch(
            part=part,
            genes=genes,
            matched=tuple(matched),
            matched_genes=tuple(matched_genes),
            how=tuple(hows),
            missing=tuple(missing),
            missing_reason=tuple(reasons),
            min_required=sig.min_for(part, min_genes),
            detected=None if detected is None else tuple(g for g in matched if g in detected),
        )
    up, down = parts["up"], parts["down"]
    if up.n_matched + down.n_matched == 0:
        status = "no_overlap"
    elif any(p.n_total and p.n_matched < p.min_required for p in (up, down)):
        status = "below_min_genes"
    elif any(p.n_total and p.n_detected < p.min_required for p in (up, down)):
        status = "not_detected"
    else:
        status = "ok"
    return SetMatch(
        name=sig.name,
        status=status,
        min_genes=sig.min_genes if min_genes is None else min_genes,
        up=up,
        down=down,
        signature_species=sig.species,
        signature_version=sig.version,
    )


def _first(genes: Sequence[str]) -> str:
    shown = ", ".join(genes[:_N_MISSING_IN_MESSAGE])
    return shown + (f" and {len(genes) - _N_MISSING_IN_MESSAGE} more" if len(genes) > _N_MISSING_IN_MESSAGE else "")


def match(
    signatures: Any,
    var_names: Iterable[str],
    *,
    species: str | None = None,
    min_genes: int | None = None,
    on_empty: str = "raise",
    detection: Mapping[str, float] | None = None,
    min_detection: float = DEFAULT_MIN_DETECTION,
    n_obs: int | None = None,
) -> MatchReport:
    """Match signatures to data genes.

    Parameters
    ----------
    signatures
        A :class:`Library`, a :class:`Signature`, shipped set name(s), or anything
        :func:`~dormsig.signatures.read_signatures` accepts (a file path, a dict).
    var_names
        The data's gene identifiers (``adata.var_names``): symbols, Ensembl or Entrez IDs.
    species
        Species of the data; default: detected from ``var_names``.
    min_genes
        Override every set's ``min_genes`` (a part of n genes needs ``min(n, min_genes)`` matches).
    on_empty
        ``"raise"`` (default): a set with no gene in the data raises :class:`MatchError`;
        ``"warn"``: it is reported with status ``no_overlap`` and a :class:`MatchWarning`.
    detection
        Fraction of the cells or samples in which each data gene is non-zero (``{var_name: fraction}`` or
        a Series indexed by ``var_names``; :func:`dormsig.tl.score` computes it from the data). Without
        it, detection is not assessed and the status rests on presence alone.
    min_detection
        A present gene is *detected* when non-zero in at least this fraction of the observations
        (and in at least one); recorded in the report.
    n_obs
        Number of observations the fractions come from (for the record and messages).

    Returns
    -------
    MatchReport

    Examples
    --------
    >>> frac = pd.Series(np.asarray((adata.layers["counts"] != 0).mean(axis=0)).ravel(), index=adata.var_names)
    >>> report = match(lib, adata.var_names, detection=frac, n_obs=adata.n_obs)  # doctest: +SKIP
    >>> report["DORMSIG_CD177_MARKER"].summary()  # doctest: +SKIP
    'present 4/4, detected 3/4 (undetected: CD177), missing 0, coverage 0.75, ok'
    """
    if on_empty not in ("raise", "warn"):
        raise SignatureError(f"on_empty must be 'raise' or 'warn', got {on_empty!r}")
    if min_genes is not None and (isinstance(min_genes, bool) or not isinstance(min_genes, int) or min_genes < 1):
        raise SignatureError(f"min_genes must be a positive integer, got {min_genes!r}")
    if detection is not None:
        if isinstance(min_detection, bool) or not isinstance(min_detection, int | float) or not 0 <= min_detection <= 1:
            raise SignatureError(f"min_detection must be a fraction between 0 and 1, got {min_detection!r}")
    library = as_library(signatures)
    var = [str(v) for v in var_names]
    detected = None
    if detection is not None:
        rates = dict(detection.items())
        detected = {str(g) for g, f in rates.items() if f > 0 and f >= min_detection}
    if not var:
        raise MatchError("the data have no genes (empty var_names)")
    try:
        from dormsig.genes import detect_id_type, detect_species

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # mixed-type warning: resolve() handles each ID
            id_type = detect_id_type(var)
        data_species = species or detect_species(var)
    except DormsigError as exc:
        raise MatchError(f"cannot match signatures to the data genes: {exc}") from None
    data = _DataIndex(var, data_species)

    # Resolve the signature genes once per signature species, only for genes that miss exactly.
    targets: dict[str, dict] = {}
    for sp in sorted({s.species for s in library.values()}):
        need = sorted({g for s in library.values() if s.species == sp for g in s.genes
                       if not (sp == data_species and g in data.exact)})
        targets[sp] = _signature_targets(need, sp, data_species)

    results = [_match_one(sig, data, targets[sig.species], min_genes, detected) for sig in library.values()]
    report = MatchReport(results, data_species=data_species, id_type=id_type, n_vars=len(var),
                         library={"name": library.name, "version": library.version}, min_genes=min_genes,
                         on_empty=on_empty, min_detection=None if detection is None else float(min_detection),
                         n_obs=n_obs)

    empty = [s for s in results if s.status == "no_overlap"]
    if empty:
        first = empty[0]
        shown = ", ".join(first.missing[:_N_MISSING_IN_MESSAGE]) + (", ..." if len(first.missing) > _N_MISSING_IN_MESSAGE else "")
        others = f" ({len(empty) - 1} other set(s) also empty)" if len(empty) > 1 else ""
        msg = (f"gene set {first.name!r}: none of its {first.n_total} genes is in the data "
               f"({len(var)} {data_species} {id_type} IDs); missing: {shown}{others}")
        if on_empty == "raise":
            from dormsig.signatures.library import shipped_path

            # Name the user's file too, so the CLI message points at what to fix.
            user_file = library.path if library.path and library.path != str(shipped_path()) else None
            raise MatchError(msg, path=user_file)
        text = "no gene in the data for: " + ", ".join(s.name for s in empty)
        warnings.warn(text, MatchWarning, stacklevel=2)
    low = [s for s in results if s.status == "below_min_genes"]
    if low:
        text = "gene sets kept with fewer matched genes than min_genes: " + "; ".join(
            f"{s.name} ({'/'.join(f'{p.part} {p.n_matched} of {p.n_total}, need {p.min_required}' for p in (s.up, s.down) if p.n_total)})"
            for s in low
        )
        warnings.warn(text, MatchWarning, stacklevel=2)
    # Warn when the undetected genes matter: too few detected, or a quarter or more of the present genes.
    quiet = [s for s in results if s.undetected and (s.status == "not_detected"
                                                     or len(s.undetected) >= UNDETECTED_WARN_FRACTION * s.n_present)]
    if quiet:
        where = f"{n_obs} observations" if n_obs else "the observations"
        text = (f"genes present but not detected (non-zero in < {min_detection:g} of {where}): " + "; ".join(
            f"{s.name}: {_first(s.undetected)} ({s.n_detected} of {s.n_total} detected, {s.status})" for s in quiet))
        warnings.warn(text, MatchWarning, stacklevel=2)
    return report
