"""Sample sheets: a CSV/TSV (with or without a header) or a DataFrame, joined into ``obs``."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from anndata import AnnData

from dormsig.errors import InputError
from dormsig.io.detect import GZ_ERRORS, check_exists, head_lines, is_gzip

#: How many missing samples an error message names on each side.
N_SHOWN = 5


def _shape(value: str) -> str:
    """Letters -> A, digit runs -> 9, everything else kept: ``GSM1253375`` -> ``A9``, ``CL#1`` -> ``A#9``."""
    return re.sub(r"[A-Za-z]+", "A", re.sub(r"\d+", "9", value))


def _looks_headerless(raw: pd.DataFrame) -> bool:
    """True when every cell of the first row has the shape most common in the rest of its column."""
    if len(raw) < 2:
        return False
    for col in raw.columns:
        rest = raw[col].iloc[1:].dropna().astype(str).map(_shape)
        if rest.empty:
            return False
        if _shape(str(raw[col].iloc[0])) != rest.mode().iloc[0]:
            return False
    return True


def _infer_types(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        try:
            out[col] = pd.to_numeric(out[col])
        except (TypeError, ValueError):
            pass
    return out


def read_sample_sheet(
    sheet: str | os.PathLike | pd.DataFrame,
    *,
    sample_column: str | None = None,
    columns: Sequence[str] | None = None,
    header: bool | None = None,
    sample_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a sample sheet into a DataFrame indexed by sample name.

    Parameters
    ----------
    sheet
        CSV/TSV path (separator sniffed, optionally gzipped) or a DataFrame (its first column, or
        ``sample_column``, or a non-default index names the samples).
    sample_column
        Column holding the sample names; default the first column.
    columns
        Names for the columns of a headerless sheet (the default is ``column_1``, ``column_2`` ...).
    header
        Whether the first line is a header; ``None`` detects it: headerless when a first-line value
        is one of ``sample_names`` or, without those, when every first-line value has the same shape
        (letters/digits) as the rest of its column.
    sample_names
        The data's sample names, used to detect a headerless sheet.
    """
    path: Path | None = None
    if isinstance(sheet, pd.DataFrame):
        df = sheet.copy()
        if sample_column is None and not isinstance(df.index, pd.RangeIndex):
            df.index = df.index.astype(str)
            return _finish(df, df.index.name or "sample", None)
        df.columns = [str(c) for c in df.columns]
    else:
        path = check_exists(sheet)
        if path.is_dir():
            raise InputError("sample sheet is a directory; give a CSV/TSV file", path=path)
        if path.stat().st_size == 0:
            raise InputError("sample sheet is empty", path=path)
        lines = [ln for ln in head_lines(path, 3) if ln.strip()]
        if not lines:
            raise InputError("sample sheet is empty", path=path)
        sep = "\t" if "\t" in lines[0] else ("," if "," in lines[0] else (";" if ";" in lines[0] else r"\s+"))
        try:
            raw = pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False, na_values=[""],
                              encoding="utf-8-sig",
                              compression="gzip" if is_gzip(path) else None, engine="c")
        except GZ_ERRORS as exc:
            raise InputError(f"truncated or corrupt gzip file ({exc})", path=path) from None
        except pd.errors.ParserError as exc:
            raise InputError(f"malformed sample sheet ({' '.join(str(exc).split())})", path=path) from None
        except UnicodeDecodeError:
            raise InputError("sample sheet is not a UTF-8 text file", path=path) from None
        raw = raw.apply(lambda s: s.str.strip())
        if header is None:
            if columns is not None:
                header = False
            elif sample_names is not None:
                names = set(map(str, sample_names))
                header = not any(str(v) in names for v in raw.iloc[0])
            else:
                header = not _looks_headerless(raw)
        if header:
            names_row = [str(v) if isinstance(v, str) else "" for v in raw.iloc[0]]
            dup = sorted({n for n in names_row if n and names_row.count(n) > 1})
            if dup:
                raise InputError(f"sample sheet has duplicated column names: {', '.join(map(repr, dup[:N_SHOWN]))};"
                                 " rename them", path=path)
            for k, n in enumerate(names_row):
                if n or k == 0:
                    continue  # the first column may be unnamed (R write.csv row names)
                if raw.iloc[1:, k].isna().all():
                    continue  # an empty trailing column (spreadsheet export): dropped below
                raise InputError(f"sample sheet column {k + 1} has no name in the header but holds values", path=path)
            empty = [k for k, n in enumerate(names_row) if not n and k > 0]
            raw = raw.drop(columns=raw.columns[empty])
            names_row = [n for k, n in enumerate(names_row) if k not in empty]
            if not names_row[0]:
                names_row[0] = "sample"
            df = raw.iloc[1:].reset_index(drop=True)
            df.columns = names_row
        else:
            df = raw
            if columns is not None:
                if len(columns) != raw.shape[1]:
                    raise InputError(f"columns= has {len(columns)} names but the sheet has {raw.shape[1]} columns",
                                     path=path)
                df.columns = [str(c) for c in columns]
            else:
                df.columns = [f"column_{k + 1}" for k in range(raw.shape[1])]
        # numbers become numbers, except the sample names ("01" stays "01")
        key = sample_column if sample_column in df.columns else df.columns[0]
        df = pd.concat([df[[key]], _infer_types(df.drop(columns=[key]))], axis=1)[list(df.columns)]
    if df.empty:
        raise InputError("sample sheet has no rows", path=path or "sample_sheet")
    if sample_column is None:
        sample_column = str(df.columns[0])
    if sample_column not in df.columns:
        raise InputError(f"sample sheet has no column {sample_column!r} (columns: {', '.join(map(str, df.columns))})",
                         path=path or "sample_sheet")
    df[sample_column] = df[sample_column].astype(str)
    df = df.set_index(sample_column)
    return _finish(df, sample_column, path)


def _finish(df: pd.DataFrame, index_name: str, path: Path | None) -> pd.DataFrame:
    df.index.name = index_name
    dup = df.index[df.index.duplicated()].unique().tolist()
    if dup:
        raise InputError(f"sample sheet lists samples more than once: {', '.join(map(repr, dup[:N_SHOWN]))}",
                         path=path or "sample_sheet")
    return df


def join_sample_sheet(adata: AnnData, sheet: pd.DataFrame, *, source: str | os.PathLike = "sample_sheet") -> None:
    """Join a sheet (indexed by sample) into ``adata.obs``; every sample must be on both sides."""
    data_samples = list(map(str, adata.obs_names))
    sheet_samples = list(map(str, sheet.index))
    in_sheet = set(sheet_samples)
    in_data = set(data_samples)
    missing_in_sheet = [s for s in data_samples if s not in in_sheet]
    missing_in_data = [s for s in sheet_samples if s not in in_data]

    def show(names: list[str]) -> str:
        more = f" (+{len(names) - N_SHOWN} more)" if len(names) > N_SHOWN else ""
        return ", ".join(names[:N_SHOWN]) + more

    if len(missing_in_sheet) == len(data_samples):
        raise InputError(
            f"sample sheet matches no sample of the data (data: {show(data_samples)}; sheet: {show(sheet_samples)})",
            path=source,
        )
    if missing_in_sheet or missing_in_data:
        parts = []
        if missing_in_sheet:
            parts.append(f"{len(missing_in_sheet)} data sample(s) missing from the sheet: {show(missing_in_sheet)}")
        if missing_in_data:
            parts.append(f"{len(missing_in_data)} sheet sample(s) missing from the data: {show(missing_in_data)}")
        raise InputError("sample sheet does not match the data: " + "; ".join(parts), path=source)
    aligned = sheet.reindex(data_samples)
    for col in aligned.columns:
        adata.obs[str(col)] = aligned[col].to_numpy()
