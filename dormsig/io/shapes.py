"""What real files look like once a spreadsheet, R or a counting tool has touched them.

Each function here takes one decision about a table and returns it in words, so that the reader
can report it (``uns["dormsig"]["input"]["decisions"]`` and the summary ``dormsig read`` prints):

- numbers written with thousands separators (``"12,345"``) or decimal commas (``"3,5"``) are read
  when the convention is unambiguous, and refused with the column named when it is not;
- a first column of R row numbers (``write.csv`` with ``row.names=TRUE``) is dropped, never taken
  for gene identifiers;
- htseq-count's ``__no_feature``/``__ambiguous``... and STAR's ``N_unmapped``... rows are dropped;
- gene names that Excel turned into dates (``1-Mar``, ``2-Sep``, ``1-Dec``) are restored when only
  one current gene fits, and otherwise reported and kept apart (never summed with each other).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dormsig.errors import GeneIdError, InputError

N_SHOWN = 5


def shown(items: Sequence[object], n: int = N_SHOWN) -> str:
    """``'a', 'b', 'c' (+7 more)``."""
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(repr(str(i)) for i in items[:n]) + more


def split_line(line: str, sep: str) -> list[str]:
    """Fields of one line, honouring double quotes (``"12,345"`` is one field)."""
    if sep == r"\s+":  # R write.table: blank-separated, names in double quotes
        return [f[1:-1] if len(f) > 1 and f[0] == f[-1] == '"' else f for f in re.split(sep, line.strip())]
    return next(csv.reader(io.StringIO(line), delimiter=sep, quotechar='"'), [])


# --------------------------------------------------------------------------- number formats
_PLAIN = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_PLAIN_INT = re.compile(r"^[+-]?\d+$")
_GROUP_COMMA = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$")  # 12,345  1,234,567.5
_GROUP_DOT = re.compile(r"^[+-]?[1-9]\d{0,2}(\.\d{3})+(,\d+)?$")  # 12.345  1.234.567,5
_GROUP_SPACE = re.compile(r"^[+-]?[1-9]\d{0,2}([ \u00a0\u202f]\d{3})+([.,]\d+)?$")  # 12 345 (French, ISO)
_DEC_COMMA = re.compile(r"^[+-]?\d+,\d+$")  # 3,5  0,125
_MISSING = frozenset({"", "na", "nan", "n/a", "#n/a", "null", "none", "-"})
_INF = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})

US, EU = "thousands ',' / decimal '.'", "thousands '.' / decimal ','"


def _clean(texts: pd.Series) -> pd.Series:
    """Stripped text; missing markers (NA, #N/A, empty...) and infinities dropped."""
    s = texts.astype("string").str.strip()
    low = s.str.lower()
    return s[~(low.isin(_MISSING) | low.isin(_INF)).fillna(True)]


def _numeric(series: pd.Series, num: pd.Series | None) -> pd.Series:
    return pd.to_numeric(series, errors="coerce") if num is None else num


def _candidates(series: pd.Series, num: pd.Series | None = None) -> pd.Series:
    """The cells whose reading depends on the convention: not plain numbers, or plain with a decimal point.

    Plain integers (most cells of a count table) are left out, so the regular expressions below run
    on a few cells only.
    """
    num = _numeric(series, num)
    pick = (num.isna() & series.notna()).to_numpy()
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
        pick |= series.astype("string").str.contains(".", regex=False).fillna(False).to_numpy(dtype=bool)
    else:
        values = num.to_numpy(dtype=np.float64, na_value=np.nan)
        pick |= np.isfinite(values) & (values % 1 != 0)
    return _clean(series[pick])


def _reads(s: pd.Series, conv: str) -> pd.Series:
    """Which texts are numbers in convention ``conv``."""
    def full(pattern: re.Pattern) -> pd.Series:
        return s.str.fullmatch(pattern.pattern).fillna(False).astype(bool)

    if conv == US:
        return full(_PLAIN) | full(_GROUP_COMMA) | (full(_GROUP_SPACE) & ~s.str.contains(",", regex=False).fillna(False))
    return full(_PLAIN_INT) | full(_DEC_COMMA) | full(_GROUP_DOT) | (
        full(_GROUP_SPACE) & ~s.str.contains(".", regex=False).fillna(False))


def formatted_numbers(series: pd.Series, num: pd.Series | None = None) -> bool:
    """True when a text column holds numbers with separators (``12,345``, ``3,5``, ``1.234``, ``12 345``).

    ``num``: ``pd.to_numeric(series, errors="coerce")`` when the caller has it already.
    """
    s = _candidates(series, num)
    if s.empty:
        return False
    plain = s.str.fullmatch(_PLAIN.pattern).astype(bool)
    return bool((~plain).any() and (_reads(s, US) | _reads(s, EU)).all())


def convention(columns: dict[str, pd.Series], sep: str, nums: dict[str, pd.Series] | None = None
               ) -> tuple[str | None, str]:
    """The number convention of a table's formatted text columns: (``US``/``EU``/None, reason).

    Evidence for US: a value only US reads (``1,234,567``, ``1,234.5``, ``0.5``); for EU: a value only EU
    reads (``3,5``, ``0,125``, ``1.234,5``) or a ``;`` separator (European spreadsheets). When every
    formatted value reads both ways (``12,345``), a column whose plain values are all integers below
    1000 is the spreadsheet pattern ``#,##0`` (US); anything else is ambiguous and refused.
    """
    nums = nums or {}
    us_only, eu_only, both = [], [], []
    for name, series in columns.items():
        s = _candidates(series, nums.get(name))
        if s.empty:
            continue
        u, e = _reads(s, US), _reads(s, EU)
        if (u & ~e).any():
            us_only.append(name)
        if (e & ~u).any():
            eu_only.append(name)
        if not (u & ~e).any() and not (e & ~u).any():
            both.append(name)
    if us_only and eu_only:
        raise InputError(f"numbers in two conventions: column {us_only[0]!r} uses {US}, column {eu_only[0]!r} "
                         f"{EU}; save the table again with plain numbers")
    if eu_only:
        return EU, f"decimal commas in column {eu_only[0]!r}"
    if us_only:
        return US, f"thousands separators in column {us_only[0]!r}"
    if sep == ";":
        return EU, "';'-separated (European spreadsheet)"
    if sep == ",":
        return US, "quoted numbers in a ','-separated file can only use ',' as thousands separator"
    for name in both:
        num = _numeric(columns[name], nums.get(name)).dropna()
        grouped = _candidates(columns[name], nums.get(name))
        grouped = grouped[grouped.str.fullmatch(_GROUP_COMMA.pattern).astype(bool)]
        if len(grouped) and not ((num == num.round()) & (num.abs() < 1000)).all():
            g = str(grouped.iloc[0])
            raise InputError(
                f"column {name!r}: {g!r} may mean {float(g.replace(',', '')):g} or {float(g.replace(',', '.')):g}"
                " (thousands separator or decimal comma); save the table again with plain numbers")
    if both:
        return US, f"thousands separators in column {both[0]!r} (all values >= 1000 grouped, none below)"
    return None, ""


def parse_formatted(series: pd.Series, conv: str, num: pd.Series | None = None) -> pd.Series:
    """A text column of formatted numbers as floats (missing values NaN, ``inf`` kept); raises on a cell that does not parse.

    US: plain numbers are read by pandas and only the other cells are parsed here; EU: every cell
    is (``1.000`` is a thousand there).
    """
    num = _numeric(series, num).astype(np.float64)
    todo = series.notna() if conv == EU else (num.isna() & series.notna())
    s = _clean(series[todo])
    bad = ~_reads(s, conv)
    if bad.any():
        raise InputError(f"column {series.name!r}: value {str(s[bad].iloc[0])!r} does not follow the table's number"
                         f" convention ({conv})")
    if conv == US:
        cleaned = s.str.replace(r"[, \u00a0\u202f]", "", regex=True)
    else:
        cleaned = s.str.replace(r"[. \u00a0\u202f]", "", regex=True).str.replace(",", ".", regex=False)
    out = num.copy()
    if conv == EU:  # missing markers and infinities: as pandas read them
        out[todo] = pd.to_numeric(series[todo].astype("string").str.strip().str.lower().where(
            lambda t: t.isin(_INF)), errors="coerce").astype(np.float64)
    out[cleaned.index] = pd.to_numeric(cleaned, errors="coerce").astype(np.float64)
    return pd.Series(out.to_numpy(), index=series.index, name=series.name)


# --------------------------------------------------------------------------- R row numbers
ROW_NUMBER_HEADERS = frozenset({"", "x", "row.names", "rownames", "unnamed: 0", "...1", "index"})


def is_row_numbers(labels: Sequence[str]) -> bool:
    """True when the labels are 1, 2, ..., n (R ``write.csv`` row names, pandas ``to_csv`` index)."""
    n = len(labels)
    if n < 3:
        return False
    first = str(labels[0]).strip()
    if first not in ("0", "1"):
        return False
    start = int(first)
    return all(str(v).strip() == str(start + k) for k, v in enumerate(labels))


# --------------------------------------------------------------------------- tool summary rows
HTSEQ_SPECIAL = ("__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned", "__alignment_not_unique")
STAR_SPECIAL = ("N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous")


def special_rows(labels: Sequence[str]) -> np.ndarray:
    """Mask of htseq-count (``__*``) and STAR (``N_*``) summary rows: read counts, not genes."""
    return np.array([str(v).startswith("__") or str(v) in STAR_SPECIAL for v in labels], dtype=bool)


# --------------------------------------------------------------------------- Excel dates
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_MON = re.compile(r"^(\d{1,2})[-/ ]([A-Za-z]{3})(?:[-/ ](\d{2,4}))?$")  # 1-Mar, 01-Mar-2019
_MON_DAY = re.compile(r"^([A-Za-z]{3})[-/ ](\d{1,2})$")  # Mar-01
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]00:00(?::00)?)?$")  # 2019-03-01 (Excel, then R)

#: Gene families Excel turns into dates, by month: (human prefix, mouse prefix) of current symbols.
#: SEPT* became SEPTIN* (2019), MARCH* MARCHF* (2019), MARC1/2 MTARC1/2 (2020), DEC1 DELEC1 (2020).
DATE_FAMILIES = {
    "sep": (("SEPTIN", "Septin"),),
    "mar": (("MARCHF", "Marchf"), ("MTARC", "Mtarc")),
    "dec": (("DELEC", "Delec"),),
}


def date_parts(name: str) -> tuple[str, int] | None:
    """``("mar", 1)`` for ``1-Mar``/``Mar-01``/``01-Mar-2019``; None for anything that is not a date."""
    name = str(name).strip()
    m = _DAY_MON.match(name)
    if m and m.group(2).lower() in _MONTHS:
        return m.group(2).lower(), int(m.group(1))
    m = _MON_DAY.match(name)
    if m and m.group(1).lower() in _MONTHS:
        return m.group(1).lower(), int(m.group(2))
    m = _ISO_DATE.match(name)
    if m:
        return _MONTHS[int(m.group(2)) - 1] if 1 <= int(m.group(2)) <= 12 else "?", int(m.group(3))
    return None


def restore_dates(names: Sequence[str], species: str) -> tuple[list[str], dict[str, str], list[str]]:
    """Restore Excel date-mangled gene names.

    Returns (names, restored ``{date: symbol}``, unrestorable dates). A date is restored when exactly
    one current official symbol of ``species`` fits it and no other row of the table already carries
    that symbol or the same date; otherwise it stays as written (and is not merged with anything).
    """
    from dormsig.genes.resolve import official_symbols

    official = official_symbols(species)
    k = 0 if species == "human" else 1
    present = set(map(str, names))
    dates = {i: date_parts(n) for i, n in enumerate(names)}
    dates = {i: d for i, d in dates.items() if d is not None}
    if not dates:
        return list(names), {}, []
    count = pd.Series([str(names[i]) for i in dates]).value_counts()
    out = [str(n) for n in names]
    restored: dict[str, str] = {}
    unresolved: list[str] = []
    for i, (month, day) in dates.items():
        name = str(names[i])
        candidates = [f"{fam[k]}{day}" for fam in DATE_FAMILIES.get(month, ()) if f"{fam[k]}{day}" in official]
        free = [c for c in candidates if c not in present]
        if len(free) == 1 and count[name] == 1:
            out[i] = free[0]
            restored[name] = free[0]
        else:
            unresolved.append(name)
    return out, restored, unresolved


# --------------------------------------------------------------------------- species
def species_counts(ids: Sequence[str]) -> dict[str, int]:
    """How many IDs are human and how many mouse: Ensembl prefixes, else official symbols (case-sensitive)."""
    from dormsig.genes.detect import classify
    from dormsig.genes.resolve import official_symbols

    ids = [str(i).strip() for i in ids]
    kinds = [classify(i) for i in ids]
    ens = [i for i, t in zip(ids, kinds, strict=True) if t == "ensembl"]
    syms = [i for i, t in zip(ids, kinds, strict=True) if t == "symbol"]
    human, mouse = official_symbols("human"), official_symbols("mouse")
    return {
        "ensembl_human": sum(i.startswith("ENSG") for i in ens),
        "ensembl_mouse": sum(i.startswith("ENSMUSG") for i in ens),
        "symbol_human": sum(s in human and s not in mouse for s in syms),
        "symbol_mouse": sum(s in mouse and s not in human for s in syms),
        "n": len(ids),
    }


#: Both species must hold at least this fraction of the identifiers for a table to count as mixed.
MIXED_FRACTION = 0.10


def check_species(ids: Sequence[str], species: str | None, *, source: str = "") -> dict[str, int]:
    """Refuse a table whose IDs mix human and mouse, or contradict ``species``; return the counts.

    Ensembl IDs decide by prefix (``ENSG``/``ENSMUSG``), symbols by the current official symbols of
    one species only (``TP53`` is human, ``Trp53`` mouse; names shared by both count for neither).
    """
    c = species_counts(ids)
    human = c["ensembl_human"] + c["symbol_human"]
    mouse = c["ensembl_mouse"] + c["symbol_mouse"]
    where = f"{source}: " if source else ""
    if human >= MIXED_FRACTION * c["n"] and mouse >= MIXED_FRACTION * c["n"]:
        raise GeneIdError(f"{where}gene IDs mix species: {human:,} human and {mouse:,} mouse of {c['n']:,}; split "
                          "the table by species (e.g. a xenograft) and read each part with species=")
    if species == "human" and mouse > max(human, 0) and mouse >= MIXED_FRACTION * c["n"]:
        raise GeneIdError(f"{where}species='human' given, but {mouse:,} gene IDs are mouse and {human:,} human;"
                          " pass species='mouse' (or no species, to detect it)")
    if species == "mouse" and human > max(mouse, 0) and human >= MIXED_FRACTION * c["n"]:
        raise GeneIdError(f"{where}species='mouse' given, but {human:,} gene IDs are human and {mouse:,} mouse;"
                          " pass species='human' (or no species, to detect it)")
    return c
