"""Reading and writing signatures: YAML, JSON, plain dicts, GMT, GMX (read) and GMT (write).

Every reader returns a :class:`~dormsig.signatures.model.Library`. Flat formats (GMT, GMX, and
dicts of name -> gene list) merge ``<NAME>_UP`` with ``<NAME>_DN``/``<NAME>_DOWN`` into one
two-part signature ``<NAME>``; a lone suffixed set keeps its genes in the part its suffix names.
Every problem raises :class:`~dormsig.errors.SignatureError` with a one-line message naming the
file (and line) or the set.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from dormsig.errors import MissingInputError, SignatureError
from dormsig.signatures.model import (
    DEFAULT_MIN_GENES,
    PARTS,
    GeneEvidence,
    Library,
    Signature,
    Source,
)
from dormsig.signatures.sources import _load_yaml, parse_sources, shipped_sources

#: Fields every shipped (library) signature file must have.
REQUIRED_LIBRARY_FIELDS = (
    "name", "version", "description", "species", "category", "direction", "licence", "sources", "up", "down",
    "min_genes",
)
_SUFFIX = re.compile(r"^(?P<stem>.+?)_(?P<suffix>UP|DN|DOWN)$", re.IGNORECASE)
_FORMATS = {".gmt": "gmt", ".gmx": "gmx", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}


# -- sources ---------------------------------------------------------------------------------
# -- one signature from a mapping ------------------------------------------------------------
def _gene_entries(entries: Any, part: str, default: Mapping | None, where: str) -> tuple[list[str], list[dict]]:
    if entries is None:
        return [], []
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list | tuple):
        raise SignatureError(f"{where}: '{part}' must be a list of genes")
    genes, records = [], []
    for entry in entries:
        if isinstance(entry, str):
            rec = {"gene": entry}
        elif isinstance(entry, Mapping) and isinstance(entry.get("gene"), str):
            rec = dict(entry)
        else:
            raise SignatureError(f"{where}: each '{part}' entry must be a gene name or a mapping with 'gene', got {entry!r}")
        if default:
            for key in ("source", "evidence", "detail"):
                rec.setdefault(key, default.get(key))
        genes.append(rec["gene"].strip())
        records.append(rec)
    return genes, records


def signature_from_dict(
    doc: Mapping[str, Any],
    *,
    where: str,
    name: str | None = None,
    bibliography: Mapping[str, Source] | None = None,
    strict: bool = False,
    species: str | None = None,
    version: str | None = None,
) -> Signature:
    """Build a :class:`Signature` from its YAML/JSON mapping.

    Parameters
    ----------
    doc
        The mapping (shipped layout, see ``signatures/README.md``).
    where
        File (and set) name used in error messages.
    name
        Name to use when ``doc`` has none (dict format: the key).
    bibliography
        Source entries that ``sources:`` keys resolve against (the shipped bibliography is tried last).
    strict
        Require every field of :data:`REQUIRED_LIBRARY_FIELDS` (shipped library files).
    species, version
        Defaults for user sets without these fields.
    """
    if not isinstance(doc, Mapping):
        raise SignatureError(f"{where}: a signature must be a mapping, got {type(doc).__name__}")
    doc = dict(doc)
    if "genes" in doc and "up" not in doc:
        doc["up"] = doc.pop("genes")
    required = REQUIRED_LIBRARY_FIELDS if strict else ("name",)
    for key in required:
        if key not in doc and not (key == "name" and name):
            raise SignatureError(f"{where}: missing required field {key!r}")
    if not strict and "up" not in doc and "down" not in doc:
        raise SignatureError(f"{where}: missing required field 'up' (or 'down')")
    sig_name = str(doc.get("name") or name)
    where = where if sig_name in where else f"{where} ({sig_name})"

    # Sources: inline mapping, or keys resolved against the given and then the shipped bibliography.
    raw_sources = doc.get("sources") or []
    if isinstance(raw_sources, Mapping):
        sources = list(parse_sources(raw_sources, where=where).values())
    else:
        if isinstance(raw_sources, str):
            raw_sources = [raw_sources]
        bib = dict(bibliography or {})
        sources = []
        for key in raw_sources:
            if key not in bib:
                shipped = shipped_sources()
                if key not in shipped:
                    raise SignatureError(f"{where}: unknown source key {key!r}; known keys: {', '.join(sorted(bib) or sorted(shipped))}")
                bib[key] = shipped[key]
            sources.append(bib[key])
    keys = {s.key for s in sources}

    parts: dict[str, list[str]] = {}
    evidence: list[GeneEvidence] = []
    for part in PARTS:
        default = doc.get(f"{part}_evidence")
        genes, records = _gene_entries(doc.get(part), part, default, where)
        parts[part] = genes
        for rec in records:
            src = rec.get("source")
            if src is None:
                continue
            if src not in keys:
                # A gene citing a key that the set does not list is a curation error, not a lookup miss.
                known = shipped_sources()
                hint = "" if src in known else " (not in the bibliography either)"
                raise SignatureError(f"{where}: gene {rec['gene']!r} cites unknown source key {src!r}{hint}; set sources: {', '.join(sorted(keys)) or 'none'}")
            evidence.append(
                GeneEvidence(
                    gene=rec["gene"].strip(),
                    part=part,
                    source=str(src),
                    kind=str(rec.get("evidence") or "user"),
                    detail=" ".join(str(rec.get("detail") or "").split()),
                    aliases=tuple(str(a) for a in rec.get("aliases") or ()),
                )
            )
    caveats = doc.get("caveats") or ()
    if isinstance(caveats, str):
        caveats = [caveats]
    try:
        min_genes = int(doc.get("min_genes", DEFAULT_MIN_GENES))
    except (TypeError, ValueError):
        raise SignatureError(f"{where}: min_genes must be an integer, got {doc.get('min_genes')!r}") from None
    sig_species = doc.get("species") or species or _guess_species(parts["up"] + parts["down"])
    try:
        return Signature(
            name=sig_name,
            version=str(doc.get("version") or version or "user"),
            description=" ".join(str(doc.get("description") or "").split()),
            species=str(sig_species),
            category=str(doc.get("category") or "user"),
            direction=str(doc.get("direction") or "unspecified"),
            up=parts["up"],
            down=parts["down"],
            evidence=tuple(evidence),
            sources=tuple(sources),
            licence=str(doc.get("licence") or doc.get("license") or "user-supplied"),
            min_genes=min_genes,
            caveats=tuple(str(c) for c in caveats),
            score_in=str(doc.get("score_in") or "tumour"),
            part_directions=tuple((str(k), str(v)) for k, v in (doc.get("part_directions") or {}).items()),
            curation_names=tuple(str(n) for n in doc.get("curation_names") or ()),
            symbol_exceptions=tuple((str(k), str(v)) for k, v in (doc.get("symbol_exceptions") or {}).items()),
        )
    except SignatureError as exc:
        raise SignatureError(f"{where}: {exc}") from None


def _guess_species(genes: list[str]) -> str:
    """Human unless most symbols look like mouse symbols (capitalised: ``Cxcr4``)."""
    if not genes:
        return "human"
    try:
        from dormsig.genes import detect_species

        return str(detect_species(list(genes)))
    except Exception:  # noqa: BLE001 - genes not available or undecidable: fall back to the case rule
        letters = [g for g in genes if any(c.isalpha() for c in g)]
        mouse = sum(1 for g in letters if g[:1].isupper() and any(c.islower() for c in g[1:]))
        return "mouse" if letters and mouse / len(letters) > 0.5 else "human"


# -- flat formats: name -> genes, with _UP/_DN merging -----------------------------------------
def merge_flat(
    entries: Iterable[tuple[str, str, list[str], str]], *, where: str, species: str | None = None
) -> list[Signature]:
    """Turn (name, description, genes, location) rows into signatures, merging _UP/_DN pairs."""
    groups: dict[str, dict[str, tuple[str, list[str], str]]] = {}
    order: list[str] = []
    for name, desc, genes, loc in entries:
        m = _SUFFIX.match(name)
        stem, part = (m.group("stem"), "up" if m.group("suffix").upper() == "UP" else "down") if m else (name, "plain")
        group = groups.setdefault(stem, {})
        if stem not in order:
            order.append(stem)
        if part in group or (part != "plain" and "plain" in group) or (part == "plain" and group):
            other = (group.get(part) or group.get("plain") or next(iter(group.values())))[2]
            raise SignatureError(f"{loc}: gene set {name!r} clashes with the set at {other} (same name after merging _UP/_DN)")
        group[part] = (desc, genes, loc)
    out = []
    for stem in order:
        group = groups[stem]
        if "plain" in group:
            desc, up, loc = group["plain"]
            down: list[str] = []
        else:
            desc = "; ".join(dict.fromkeys(g[0] for g in group.values() if g[0]))
            up = group.get("up", ("", [], ""))[1]
            down = group.get("down", ("", [], ""))[1]
            loc = ", ".join(g[2] for g in group.values())
        try:
            out.append(
                Signature(
                    name=stem,
                    description=desc,
                    up=up,
                    down=down,
                    species=species or _guess_species(up + down),
                    min_genes=DEFAULT_MIN_GENES,
                )
            )
        except SignatureError as exc:
            raise SignatureError(f"{loc}: {exc}") from None
    return out


def _dedupe(genes: list[str], loc: str, name: str) -> list[str]:
    unique = list(dict.fromkeys(genes))
    if len(unique) < len(genes):
        warnings.warn(f"{loc}: gene set {name!r} lists {len(genes) - len(unique)} gene(s) twice; duplicates ignored",
                      UserWarning, stacklevel=3)
    return unique


def read_gmt(path: str | os.PathLike, *, species: str | None = None) -> Library:
    """Read a GMT file (name, description, genes; tab-separated, one set per line)."""
    path = Path(path)
    text = _read_text(path)
    entries, seen = [], {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\r\n").split("\t")
        name = fields[0].strip()
        if len(fields) < 2 or not name:
            raise SignatureError(f"line {lineno}: expected tab-separated name, description and genes", path=path)
        genes = [g.strip() for g in fields[2:] if g.strip()]
        if not genes:
            raise SignatureError(f"line {lineno}: gene set {name!r} has no genes", path=path)
        if name in seen:
            raise SignatureError(f"line {lineno}: duplicate gene set {name!r} (first on line {seen[name]})", path=path)
        seen[name] = lineno
        loc = f"{path}:{lineno}"
        entries.append((name, fields[1].strip(), _dedupe(genes, loc, name), loc))
    if not entries:
        raise SignatureError("no gene sets in file", path=path)
    return Library(merge_flat(entries, where=str(path), species=species), name=path.name, path=str(path))


def read_gmx(path: str | os.PathLike, *, species: str | None = None) -> Library:
    """Read a GMX file (column-wise: row 1 names, row 2 descriptions, then genes)."""
    path = Path(path)
    rows = [line.rstrip("\r\n").split("\t") for line in _read_text(path).splitlines()]
    if len(rows) < 2:
        raise SignatureError("a GMX file needs a name row and a description row", path=path)
    names = rows[0]
    entries, seen = [], {}
    for col, name in enumerate(names, start=1):
        name = name.strip()
        if not name:
            continue
        genes = [r[col - 1].strip() for r in rows[2:] if len(r) >= col and r[col - 1].strip()]
        if not genes:
            raise SignatureError(f"column {col}: gene set {name!r} has no genes", path=path)
        if name in seen:
            raise SignatureError(f"column {col}: duplicate gene set {name!r} (first in column {seen[name]})", path=path)
        seen[name] = col
        desc = rows[1][col - 1].strip() if len(rows[1]) >= col else ""
        loc = f"{path}:column {col}"
        entries.append((name, desc, _dedupe(genes, loc, name), loc))
    if not entries:
        raise SignatureError("no gene sets in file", path=path)
    return Library(merge_flat(entries, where=str(path), species=species), name=path.name, path=str(path))


def _read_text(path: Path) -> str:
    if not path.exists():
        raise MissingInputError("signature file not found", path=path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SignatureError("not a UTF-8 text file", path=path) from None


# -- structured formats: YAML / JSON / dict ----------------------------------------------------
def library_from_obj(
    obj: Any,
    *,
    where: str = "<dict>",
    species: str | None = None,
    path: str | None = None,
) -> Library:
    """A library from a parsed YAML/JSON document or a plain dict.

    Accepted shapes: one signature mapping (``name`` + ``up``/``down``/``genes``); a mapping with
    ``signatures: [...]`` (and optional ``version``, ``name``, ``sources``); a list of signature
    mappings; or a dict ``{name: [genes]}`` / ``{name: {"up": [...], "down": [...], ...}}``.
    """
    bibliography: dict[str, Source] = {}
    version = None
    lib_name = Path(where).name if path else where
    if isinstance(obj, Mapping) and "signatures" in obj:
        if obj.get("sources"):
            bibliography = parse_sources(obj["sources"], where=where)
        version = obj.get("version")
        lib_name = str(obj.get("name") or lib_name)
        items = obj["signatures"]
        if isinstance(items, Mapping):
            obj = items  # {"signatures": {name: genes}} is the dict format
        elif isinstance(items, list):
            obj = items
        else:
            raise SignatureError(f"{where}: 'signatures' must be a list or a mapping")
    if isinstance(obj, Mapping) and isinstance(obj.get("name"), str) and any(k in obj for k in ("up", "down", "genes")):
        obj = [obj]
    sigs: list[Signature] = []
    if isinstance(obj, list):
        for i, doc in enumerate(obj, start=1):
            sigs.append(
                signature_from_dict(doc, where=f"{where} (signature {i})", bibliography=bibliography,
                                    species=species, version=version)
            )
    elif isinstance(obj, Mapping):
        flat, structured = [], []
        for key, value in obj.items():
            if isinstance(value, str | list | tuple):
                genes = [value] if isinstance(value, str) else list(value)
                if not genes:
                    raise SignatureError(f"{where}: gene set {key!r} has no genes")
                flat.append((str(key), "", _dedupe([str(g) for g in genes], where, str(key)), f"{where} ({key})"))
            elif isinstance(value, Mapping):
                structured.append(
                    signature_from_dict(value, where=f"{where} ({key})", name=str(key), bibliography=bibliography,
                                        species=species, version=version)
                )
            else:
                raise SignatureError(f"{where}: gene set {key!r} must be a list of genes or a mapping with up/down")
        sigs = merge_flat(flat, where=where, species=species) + structured
    else:
        raise SignatureError(f"{where}: cannot read signatures from a {type(obj).__name__}")
    if not sigs:
        raise SignatureError(f"{where}: no signatures")
    return Library(sigs, version=str(version or "user"), name=lib_name, sources=bibliography, path=path)


def _load_structured(path: Path, fmt: str) -> Any:
    text = _read_text(path)
    try:
        return yaml.safe_load(text) if fmt == "yaml" else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        msg = " ".join(str(exc).split())
        raise SignatureError(f"cannot parse {fmt.upper()}: {msg}", path=path) from None


def read_library_dir(path: str | os.PathLike) -> Library:
    """Read a library directory (``library.yaml``, ``sources.yaml``, ``sets/*.yaml``) strictly.

    Every file in ``sets/`` must be listed in ``library.yaml`` and vice versa, and each file's
    ``name`` must equal its file name, so that a forgotten or renamed file is caught.
    """
    path = Path(path)
    meta = _load_yaml(path / "library.yaml")
    for key in ("name", "version", "sets"):
        if not isinstance(meta, dict) or key not in meta:
            raise SignatureError(f"missing required field {key!r}", path=path / "library.yaml")
    sources = parse_sources(_load_yaml(path / "sources.yaml") or {}, where=str(path / "sources.yaml"))
    files = {p.stem: p for p in sorted((path / "sets").glob("*.yaml"))}
    listed = [str(n) for n in meta["sets"]]
    unlisted = sorted(set(files) - set(listed))
    if unlisted:
        raise SignatureError(f"set file(s) not listed in library.yaml: {', '.join(unlisted)}", path=path / "sets")
    sigs = []
    for name in listed:
        if name not in files:
            raise SignatureError(f"set {name!r} is listed in library.yaml but sets/{name}.yaml is missing", path=path)
        file = files[name]
        doc = _load_yaml(file)
        sig = signature_from_dict(doc, where=str(file), bibliography=sources, strict=True)
        if sig.name != name:
            raise SignatureError(f"name {sig.name!r} differs from the file name {name!r}", path=file)
        sigs.append(sig)
    return Library(sigs, version=str(meta["version"]), name=str(meta["name"]), sources=sources, path=str(path))


def read_signatures(obj_or_path: Any, *, format: str | None = None, species: str | None = None) -> Library:  # noqa: A002
    """Read signatures from a file, a directory, a dict or signature objects into a :class:`Library`.

    Parameters
    ----------
    obj_or_path
        A path (GMT, GMX, YAML, JSON file, or a library directory with ``library.yaml``), a parsed
        dict/list, a :class:`Signature`, an iterable of them, or a :class:`Library` (returned as is).
    format
        ``"gmt"``, ``"gmx"``, ``"yaml"``, ``"json"``; default: from the file suffix.
    species
        Species of the gene symbols of user sets without a ``species`` field; default: detected.
    """
    if isinstance(obj_or_path, Library):
        return obj_or_path
    if isinstance(obj_or_path, Signature):
        return Library([obj_or_path])
    if isinstance(obj_or_path, str | os.PathLike):
        path = Path(obj_or_path)
        if path.is_dir():
            return read_library_dir(path)
        fmt = (format or _FORMATS.get(path.suffix.lower()) or "").lower()
        if fmt not in ("gmt", "gmx", "yaml", "json"):
            if not path.exists():
                raise MissingInputError("signature file not found", path=path)
            raise SignatureError(
                f"cannot tell the signature format from the suffix {path.suffix!r}; pass format= (gmt, gmx, yaml, json)",
                path=path,
            )
        if fmt == "gmt":
            return read_gmt(path, species=species)
        if fmt == "gmx":
            return read_gmx(path, species=species)
        doc = _load_structured(path, fmt)
        return library_from_obj(doc, where=str(path), species=species, path=str(path))
    if isinstance(obj_or_path, Mapping):
        return library_from_obj(obj_or_path, species=species)
    if isinstance(obj_or_path, Iterable):
        items = list(obj_or_path)
        if items and all(isinstance(s, Signature) for s in items):
            return Library(items)
        return library_from_obj(items, species=species)
    raise SignatureError(f"cannot read signatures from a {type(obj_or_path).__name__}")


# -- writing -----------------------------------------------------------------------------------
def gmt_lines(library: Library | Iterable[Signature]) -> list[str]:
    """GMT lines: a one-part set as ``NAME`` (``NAME_DN`` if down-only), a two-part set as ``NAME_UP`` + ``NAME_DN``."""
    lines = []
    sigs = library.values() if isinstance(library, Mapping) else library
    for sig in sigs:
        desc = " ".join(sig.description.split()) or "na"
        if sig.up and sig.down:
            lines.append("\t".join([f"{sig.name}_UP", desc, *sig.up]))
            lines.append("\t".join([f"{sig.name}_DN", desc, *sig.down]))
        elif sig.up:
            lines.append("\t".join([sig.name, desc, *sig.up]))
        else:
            lines.append("\t".join([f"{sig.name}_DN", desc, *sig.down]))
    return lines


def write_gmt(library: Library | Signature | Iterable[Signature], path: str | os.PathLike, *, force: bool = False,
              provenance: bool = True) -> Path:
    """Write signatures to a GMT file atomically (plus ``<path>.provenance.json`` unless ``provenance=False``)."""
    from dormsig.io.write import atomic_path, check_output, write_provenance
    from dormsig.provenance import record

    if isinstance(library, Signature):
        library = Library([library])
    elif not isinstance(library, Library):
        library = Library(list(library))
    path = check_output(path, force=force)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(gmt_lines(library)) + "\n")
    if provenance:
        write_provenance(path, record("signatures.write_gmt", params={"path": str(path)}, library=library.provenance()))
    return path
