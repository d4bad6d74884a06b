"""Reading back dormsig's own result tables (DE, enrichment) for the report, refusing anything else.

A count table, a GMT or a binary file given where a DE or enrichment table is expected would
otherwise be rendered as a section of the report; here it is refused with the columns that are
missing and what the file looks like instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dormsig.errors import FormatError, InputError
from dormsig.io.detect import GZ_ERRORS, head_lines, is_gzip

#: Columns each kind of table must have, and the command that writes it.
REQUIRED = {
    "de": (("log2FoldChange", "pvalue", "padj", "baseMean"), "dormsig de"),
    "enrichment": (("set", "pvalue", "fdr"), "dormsig enrich"),
}


def _looks_like(frame: pd.DataFrame) -> str:
    numeric = frame.select_dtypes("number")
    if frame.shape[1] >= 2 and numeric.shape[1] >= frame.shape[1] - 1:
        values = numeric.to_numpy()
        if values.size and (values >= 0).all() and (values == values.round()).all():
            return "; it looks like a count table"
    return ""


def read_result_table(path: str | os.PathLike, kind: str, *, label: str = "") -> pd.DataFrame:
    """Read a table written by ``dormsig de`` (``kind="de"``) or ``dormsig enrich`` (``kind="enrichment"``).

    Raises
    ------
    FormatError
        Not a UTF-8 text table, or a table without the columns of that kind (named in the message).
    """
    path = Path(path)
    name = f"{label} {path}" if label else str(path)
    required, writer = REQUIRED[kind]
    try:
        lines = [ln for ln in head_lines(path, 3) if ln.strip()]
    except InputError as exc:  # binary, corrupt gzip: say which option the file came from
        raise type(exc)(f"{name}: {str(exc).split(': ', 1)[-1]}") from None
    if not lines:
        raise InputError(f"{name}: file is empty")
    sep = "\t" if "\t" in lines[0] else ","
    try:
        frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", compression="gzip" if is_gzip(path) else None)
    except GZ_ERRORS as exc:
        raise InputError(f"{name}: truncated or corrupt gzip file ({exc})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FormatError(f"{name}: not a readable table ({type(exc).__name__})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise FormatError(f"{name}: not {'an' if kind[0] in 'aeiou' else 'a'} {kind} table from '{writer}': no column {', '.join(missing)}"
                          f"{_looks_like(frame)}")
    if frame.empty:
        raise InputError(f"{name}: {kind} table has no rows")
    return frame
