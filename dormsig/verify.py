"""``dormsig verify``: does an output still match the inputs and signature library it was made from?"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dormsig.errors import InputError
from dormsig.get import library_version
from dormsig.io.write import PROVENANCE_SUFFIX
from dormsig.provenance import sha256


def _library_version() -> str | None:
    from dormsig.signatures import load_library

    return load_library().version


def verify(output: str | os.PathLike) -> tuple[bool, list[str]]:
    """Recompute the checksums named in ``<output>.provenance.json``.

    Returns
    -------
    (ok, lines)
        ``ok`` is True when the output, every input and the signature library version still match;
        ``lines`` says what was checked, one line each.
    """
    output = Path(output)
    side = Path(f"{output}{PROVENANCE_SUFFIX}")
    if output.is_dir():
        raise InputError("is a directory; give an output file that has a .provenance.json beside it", path=output)
    if not side.exists():
        raise InputError(f"no provenance file beside it (expected {side.name})", path=output)
    if not side.is_file():
        raise InputError("provenance record is not a file", path=side)
    try:
        rec = json.loads(side.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("provenance file is not UTF-8 JSON (binary or another encoding)", path=side) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"provenance file is not valid JSON (line {exc.lineno})", path=side) from None
    if not isinstance(rec, dict):
        raise InputError(f"provenance file holds a JSON {type(rec).__name__}, not a dormsig record (an object)",
                         path=side)
    if not isinstance(rec.get("inputs", {}), dict) or not isinstance(rec.get("output", {}), dict):
        raise InputError("provenance file is not a dormsig record ('inputs'/'output' are not objects)", path=side)
    lines: list[str] = []
    ok = True
    out_rec = rec.get("output", {})
    if out_rec.get("sha256"):
        same = sha256(output) == out_rec["sha256"]
        ok &= same
        lines.append(f"{'ok' if same else 'CHANGED'}  output {output}")
    for path, digest in sorted(rec.get("inputs", {}).items()):
        if not Path(path).exists():
            ok = False
            lines.append(f"MISSING input {path}")
            continue
        same = sha256(path) == digest
        ok &= same
        lines.append(f"{'ok' if same else 'CHANGED'}  input {path}")
    recorded = library_version(rec)
    if recorded is not None:
        current = _library_version()
        same = recorded == current
        ok &= same
        lines.append(f"{'ok' if same else 'CHANGED'}  signature library {recorded}"
                     + ("" if same else f" (installed: {current})"))
    lines.append("verified: output matches its inputs" if ok else "NOT verified: something changed since this output was made")
    return ok, lines
