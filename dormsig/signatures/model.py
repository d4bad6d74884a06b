"""The signature model: :class:`Signature`, :class:`Library`, their evidence and sources.

A signature is one biological programme with an ``up`` part and a ``down`` part (either may be
empty). ``up`` holds the genes whose higher expression raises the programme's score, ``down`` the
genes whose lower expression raises it (a scoring method combines them, e.g. ``S(up) - S(down)``).
The separate ``direction`` field says how the programme relates to dormancy: the proliferation
programme has its genes in ``up`` and ``direction: down_in_dormancy``, so a dormancy index uses it
with sign -1; WIECEK2023_G0_ARREST has 27 genes in ``up`` and 112 in ``down`` and
``direction: up_in_dormancy``.

All objects are immutable (frozen dataclasses of tuples) so that a loaded library can be cached
and shared safely.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dormsig.errors import SignatureError

#: Direction vocabulary of the curation (how a programme relates to dormancy).
DIRECTIONS = (
    "up_in_dormancy",
    "down_in_dormancy",
    "up_in_dormancy_weak_prior",
    "not_associated_with_dormancy",
    "niche_cells_not_tumour",
    "context_not_perk_arm",
    "context",
    "pathway_required_for_dormant_cell_survival",
    "target_pathway_no_fixed_direction",
    "unspecified",
)
#: Where a signature is meant to be scored.
SCORE_IN = ("tumour", "stromal", "any")
SPECIES = ("human", "mouse")
EVIDENCE_KINDS = ("seed", "paper", "database", "user")
PARTS = ("up", "down")
#: Default ``min_genes`` for user-supplied sets (a part of n genes needs min(n, min_genes) matches).
DEFAULT_MIN_GENES = 3


@dataclass(frozen=True)
class Source:
    """One bibliography entry: a key used by gene evidence, the citation and identifiers."""

    key: str
    citation: str
    doi: str | None = None
    pmid: str | None = None
    url: str | None = None
    note: str | None = None
    licence: str | None = None

    def short(self) -> str:
        """The key with its DOI or PMID, e.g. ``SEED2026 (doi:10.1038/...)``."""
        ident = f"doi:{self.doi}" if self.doi else f"PMID {self.pmid}" if self.pmid else self.url or "no DOI"
        return f"{self.key} ({ident})"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class GeneEvidence:
    """Why a gene is in a signature: source key, evidence class and detail (table, figure, database set)."""

    gene: str
    part: str
    source: str
    kind: str = "user"
    detail: str = ""
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gene": self.gene, "source": self.source, "evidence": self.kind, "detail": self.detail}
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out


def _as_genes(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    genes = []
    for gene in value:
        if not isinstance(gene, str) or not gene.strip():
            raise SignatureError(f"{what}: gene names must be non-empty strings, got {gene!r}")
        genes.append(gene.strip())
    return tuple(genes)


@dataclass(frozen=True)
class Signature:
    """One gene-set programme with ``up`` and ``down`` parts, provenance and usage notes.

    Parameters
    ----------
    name
        Unique name (the GMT set name; ``_UP``/``_DN`` are added on export for two-part sets).
    version
        Version of this signature's content (the library version for shipped sets).
    description
        What the programme is.
    species
        ``"human"`` or ``"mouse"``: the species of the gene symbols.
    category
        Grouping label (e.g. ``b_upr_perk``).
    direction
        How the programme relates to dormancy (see :data:`DIRECTIONS`).
    up, down
        Gene symbols whose high (``up``) or low (``down``) expression raises the score.
    evidence
        Per-gene evidence records (source key + detail).
    sources
        Resolved bibliography entries for every source key used.
    licence
        Licence of the derived content.
    min_genes
        A part of n genes needs ``min(n, min_genes)`` genes in the data to be trusted; fewer gives
        the ``below_min_genes`` status (kept, with a warning).
    caveats
        Known problems (direction conflicts between sources, activity vs mRNA, ...).
    score_in
        ``"tumour"`` (default), ``"stromal"`` (niche sets: not for tumour cells) or ``"any"``.
    part_directions
        For two-part programmes, the source's direction of each part.
    curation_names
        Names of the curation sets this programme was built from (accepted by :meth:`Library.select`).
    symbol_exceptions
        Documented ``(gene, reason)`` pairs for genes that are not current symbols of the reference.
    """

    name: str
    version: str = "user"
    description: str = ""
    species: str = "human"
    category: str = "user"
    direction: str = "unspecified"
    up: tuple[str, ...] = ()
    down: tuple[str, ...] = ()
    evidence: tuple[GeneEvidence, ...] = ()
    sources: tuple[Source, ...] = ()
    licence: str = "user-supplied"
    min_genes: int = DEFAULT_MIN_GENES
    caveats: tuple[str, ...] = ()
    score_in: str = "tumour"
    part_directions: tuple[tuple[str, str], ...] = ()
    curation_names: tuple[str, ...] = ()
    symbol_exceptions: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        what = f"signature {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip() or any(c in self.name for c in "\t\n"):
            raise SignatureError(f"signature name must be a non-empty single-line string, got {self.name!r}")
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "up", _as_genes(self.up, what))
        set_(self, "down", _as_genes(self.down, what))
        set_(self, "caveats", tuple(self.caveats))
        set_(self, "evidence", tuple(self.evidence))
        set_(self, "sources", tuple(self.sources))
        set_(self, "curation_names", tuple(self.curation_names))
        set_(self, "part_directions", tuple(tuple(p) for p in self.part_directions))
        set_(self, "symbol_exceptions", tuple(tuple(p) for p in self.symbol_exceptions))
        set_(self, "version", str(self.version))
        if not self.up and not self.down:
            raise SignatureError(f"{what} has no genes (both up and down are empty)")
        for part in PARTS:
            genes = getattr(self, part)
            seen: set[str] = set()
            dups = [g for g in genes if g in seen or seen.add(g)]
            if dups:
                raise SignatureError(f"{what}: duplicate gene(s) in {part}: {', '.join(dict.fromkeys(dups))}")
        both = sorted(set(self.up) & set(self.down))
        if both:
            raise SignatureError(f"{what}: gene(s) in both up and down: {', '.join(both)}")
        if self.species not in SPECIES:
            raise SignatureError(f"{what}: species must be one of {', '.join(SPECIES)}, got {self.species!r}")
        if self.direction not in DIRECTIONS:
            raise SignatureError(f"{what}: unknown direction {self.direction!r}; valid: {', '.join(DIRECTIONS)}")
        if self.score_in not in SCORE_IN:
            raise SignatureError(f"{what}: score_in must be one of {', '.join(SCORE_IN)}, got {self.score_in!r}")
        if isinstance(self.min_genes, bool) or not isinstance(self.min_genes, int) or self.min_genes < 1:
            raise SignatureError(f"{what}: min_genes must be a positive integer, got {self.min_genes!r}")
        keys = {s.key for s in self.sources}
        members = {"up": set(self.up), "down": set(self.down)}
        for ev in self.evidence:
            if ev.part not in PARTS or ev.gene not in members[ev.part]:
                raise SignatureError(f"{what}: evidence for {ev.gene!r} ({ev.part}) but the gene is not in that part")
            if ev.source not in keys:
                raise SignatureError(f"{what}: evidence for {ev.gene!r} cites unknown source key {ev.source!r}")

    # -- convenience -------------------------------------------------------------------------
    @property
    def genes(self) -> tuple[str, ...]:
        """All genes, up then down."""
        return self.up + self.down

    @property
    def is_bidirectional(self) -> bool:
        return bool(self.up) and bool(self.down)

    def part(self, part: str) -> tuple[str, ...]:
        if part not in PARTS:
            raise SignatureError(f"signature {self.name!r}: part must be 'up' or 'down', got {part!r}")
        return getattr(self, part)

    def min_for(self, part: str, min_genes: int | None = None) -> int:
        """Matched genes a part needs: ``min(part size, min_genes)`` (0 for an empty part)."""
        return min(len(self.part(part)), self.min_genes if min_genes is None else min_genes)

    def evidence_for(self, gene: str) -> tuple[GeneEvidence, ...]:
        return tuple(ev for ev in self.evidence if ev.gene == gene)

    def source(self, key: str) -> Source:
        for src in self.sources:
            if src.key == key:
                return src
        raise SignatureError(f"signature {self.name!r}: unknown source key {key!r}")

    def with_genes(self, up: Iterable[str] = (), down: Iterable[str] = ()) -> Signature:
        """A copy with other genes (evidence of removed genes dropped)."""
        up, down = tuple(up), tuple(down)
        keep = {"up": set(up), "down": set(down)}
        evidence = tuple(ev for ev in self.evidence if ev.gene in keep[ev.part])
        return replace(self, up=up, down=down, evidence=evidence)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-able dict in the shipped YAML layout (sources as keys, evidence per gene)."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "species": self.species,
            "category": self.category,
            "direction": self.direction,
        }
        if self.part_directions:
            out["part_directions"] = dict(self.part_directions)
        out.update(score_in=self.score_in, min_genes=self.min_genes, licence=self.licence)
        out["sources"] = [s.key for s in self.sources]
        out["caveats"] = list(self.caveats)
        if self.curation_names:
            out["curation_names"] = list(self.curation_names)
        for part in PARTS:
            entries = []
            for gene in self.part(part):
                evs = [ev for ev in self.evidence if ev.gene == gene and ev.part == part]
                if evs:
                    entries.extend(ev.to_dict() for ev in evs)
                else:
                    entries.append(gene)
            out[part] = entries
        if self.symbol_exceptions:
            out["symbol_exceptions"] = dict(self.symbol_exceptions)
        return out

    def show(self, *, width: int = 100) -> str:
        """Plain-text rendering: metadata, caveats, genes with evidence, citations."""
        wrap = textwrap.TextWrapper(width=width, subsequent_indent="    ")
        lines = [f"{self.name}  (version {self.version}, {self.species}, {self.category})"]
        lines += wrap.wrap(self.description) if self.description else []
        lines.append(f"direction: {self.direction}; score in: {self.score_in}; min_genes: {self.min_genes}")
        if self.part_directions:
            lines.append("parts: " + ", ".join(f"{p} = {d}" for p, d in self.part_directions))
        lines.append(f"licence: {self.licence}")
        for cav in self.caveats:
            lines += wrap.wrap(f"caveat: {cav}")
        for part in PARTS:
            genes = self.part(part)
            if not genes:
                continue
            lines.append("")
            lines.append(f"{part.upper()} ({len(genes)} genes)")
            for gene in genes:
                evs = [ev for ev in self.evidence if ev.gene == gene and ev.part == part]
                if not evs:
                    lines.append(f"  {gene}")
                    continue
                ev = evs[0]
                alias = f" [{', '.join(ev.aliases)}]" if ev.aliases else ""
                lines.append(f"  {gene}{alias}  {ev.kind}: {ev.source}, {ev.detail}".rstrip(", "))
        if self.sources:
            lines.append("")
            lines.append("sources")
            for src in self.sources:
                ident = f" doi:{src.doi}" if src.doi else ""
                ident += f" PMID {src.pmid}" if src.pmid and src.pmid not in src.citation else ""
                lines += wrap.wrap(f"  {src.key}: {src.citation}{ident}")
        return "\n".join(lines)


class Library(Mapping[str, Signature]):
    """An ordered, immutable collection of signatures with a version and a bibliography.

    Parameters
    ----------
    signatures
        The signatures, in display order; names must be unique.
    version
        Library version (recorded in every score's provenance).
    name
        Library name (``"dormsig"`` for the shipped one, else the file it came from).
    sources
        Bibliography (key -> :class:`Source`).
    path
        Where the library was read from, if anywhere.
    """

    def __init__(
        self,
        signatures: Iterable[Signature],
        *,
        version: str = "user",
        name: str = "user",
        sources: Mapping[str, Source] | None = None,
        path: str | None = None,
    ) -> None:
        sigs: dict[str, Signature] = {}
        for sig in signatures:
            if not isinstance(sig, Signature):
                raise SignatureError(f"library {name!r}: expected Signature objects, got {type(sig).__name__}")
            if sig.name in sigs:
                raise SignatureError(f"library {name!r}: duplicate signature name {sig.name!r}")
            sigs[sig.name] = sig
        self._sigs = sigs
        self.version = str(version)
        self.name = name
        self.path = path
        merged: dict[str, Source] = dict(sources or {})
        for sig in sigs.values():
            for src in sig.sources:
                merged.setdefault(src.key, src)
        self.sources: Mapping[str, Source] = merged

    def __getitem__(self, key: str) -> Signature:
        try:
            return self._sigs[key]
        except KeyError:
            alias = self._curation_alias(key)
            if alias is not None:
                return self._sigs[alias]
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._sigs)

    def __len__(self) -> int:
        return len(self._sigs)

    def __repr__(self) -> str:
        return f"<Library {self.name!r} version {self.version}: {len(self)} signatures>"

    def _curation_alias(self, key: str) -> str | None:
        for sig in self._sigs.values():
            if key in sig.curation_names:
                return sig.name
        return None

    def resolve_name(self, key: str) -> str:
        """The library name for ``key`` (a signature name or a curation name)."""
        if key in self._sigs:
            return key
        alias = self._curation_alias(key)
        if alias is None:
            raise SignatureError(
                f"library {self.name!r}: unknown signature {key!r}; valid names: {', '.join(self._sigs)}"
            )
        return alias

    def select(self, names: str | Iterable[str]) -> Library:
        """A library with only ``names`` (in the given order); unknown names raise SignatureError."""
        if isinstance(names, str):
            names = [names]
        names = list(names)
        unknown = [n for n in names if n not in self._sigs and self._curation_alias(n) is None]
        if unknown:
            raise SignatureError(
                f"library {self.name!r}: unknown signature(s) {', '.join(unknown)}; valid names: {', '.join(self._sigs)}"
            )
        chosen = list(dict.fromkeys(self.resolve_name(n) for n in names))
        return Library(
            (self._sigs[n] for n in chosen), version=self.version, name=self.name, sources=self.sources, path=self.path
        )

    def to_frame(self):
        """One row per signature: sizes, direction, category, score_in, sources, licence."""
        import pandas as pd

        rows = []
        for sig in self._sigs.values():
            rows.append(
                {
                    "name": sig.name,
                    "category": sig.category,
                    "direction": sig.direction,
                    "score_in": sig.score_in,
                    "species": sig.species,
                    "n_up": len(sig.up),
                    "n_down": len(sig.down),
                    "min_genes": sig.min_genes,
                    "sources": ";".join(s.key for s in sig.sources),
                    "licence": sig.licence,
                    "version": sig.version,
                    "description": sig.description,
                }
            )
        columns = ["name", "category", "direction", "score_in", "species", "n_up", "n_down", "min_genes",
                   "sources", "licence", "version", "description"]
        return pd.DataFrame(rows, columns=columns).set_index("name")

    def provenance(self) -> dict[str, Any]:
        """What a score's provenance records about the library: name, version, path, sha256, sets."""
        from dormsig.provenance import sha256

        out: dict[str, Any] = {"name": self.name, "version": self.version, "sets": list(self._sigs)}
        if self.path is not None:
            out["path"] = self.path
            try:
                out["sha256"] = sha256(self.path)
            except OSError:  # pragma: no cover - path vanished after loading
                pass
        return out

    def show(self, name: str, *, width: int = 100) -> str:
        """Plain-text rendering of one signature (see :meth:`Signature.show`)."""
        return self[self.resolve_name(name)].show(width=width)
