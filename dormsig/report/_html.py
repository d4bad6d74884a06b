"""HTML building blocks of the report: escaping, number formatting, tables, figures.

Every piece of text from the data goes through :func:`e`. Figures come from :mod:`dormsig.pl`
(a section passes a drawing function); :class:`Figures` saves each as PNG and SVG and embeds
the PNG.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dormsig.io.write import atomic_path

MAX_CELL = 80  # longest text shown in a table cell (the full text on hover)
MAX_LIST = 8  # genes of a gene list shown in a table cell


def e(value: Any) -> str:
    """HTML-escaped text."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A short, readable cell: NA for missing, 4 significant digits, scientific below 1e-3."""
    if isinstance(value, list | tuple | np.ndarray):
        items = [str(v) for v in value]
        return ", ".join(items[:12]) + (f", … (+{len(items) - 12})" if len(items) > 12 else "")
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return "NA"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(value)


def absent(message: str) -> str:
    """A visible "not run / nothing to show" note, so a reader can tell it from "nothing found"."""
    return f'<p class="absent">{e(message)}</p>'


def note(message: str) -> str:
    return f'<p class="note">{e(message)}</p>'


def slug(label: str) -> str:
    """A file-name and anchor-safe form of a contrast label ("" stays "")."""
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")


def _gene_list(text: str) -> str | None:
    """A shortened gene list ("A;B;C;…" -> first MAX_LIST genes, "+N"), None when ``text`` is not one."""
    for sep in (";", ", ", ",", "/"):
        items = [t.strip() for t in text.split(sep)]
        if len(items) > MAX_LIST and all(t and " " not in t for t in items):
            return sep.join(items[:MAX_LIST]) + f"{sep}… (+{len(items) - MAX_LIST})"
    return None


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)
    text = fmt(value)
    short = _gene_list(text) if not numeric else None
    if short is None and len(text) > MAX_CELL:
        short = text[:MAX_CELL] + "…"
    if short is not None:  # e.g. leading-edge gene lists: the full text on hover
        return f'<td title="{e(text)}">{e(short)}</td>'
    return f'<td class="num">{e(text)}</td>' if numeric else f"<td>{e(text)}</td>"


def table(frame: pd.DataFrame, *, max_rows: int, index: bool = False) -> str:
    """A table of at most ``max_rows`` rows, in a box that scrolls sideways rather than overflow the page."""
    shown = frame.head(max_rows)
    cols = list(shown.columns)
    head = "".join(f"<th>{e(c)}</th>" for c in ([shown.index.name or ""] if index else []) + cols)
    rows = []
    for idx, row in shown.iterrows():
        cells = [f"<th>{e(idx)}</th>"] if index else []
        cells += [_cell(row[c]) for c in cols]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="note">First {max_rows} of {len(frame)} rows.</p>' if len(frame) > max_rows else ""
    return ('<div class="table-wrap"><table>\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>" + more)


def kv_table(items: Mapping[str, Any]) -> str:
    rows = "\n".join(f"<tr><th>{e(k)}</th><td>{e(fmt(v))}</td></tr>" for k, v in items.items())
    return f"<table>\n<tbody>\n{rows}\n</tbody></table>"


class Figures:
    """Renders figures drawn by :mod:`dormsig.pl`: PNG + SVG to the figures directory, PNG embedded in the HTML."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.drawn: list[str] = []

    def figure(self, name: str, draw: Callable[[Axes], Any], *, figsize: tuple[float, float], caption: str) -> str:
        # A bare Figure with an Agg canvas: no pyplot state, no GUI backend, nothing to leak.
        fig = Figure(figsize=figsize, dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        draw(ax)
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png")
        svg = io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None})
        fig.clear()
        self.directory.mkdir(parents=True, exist_ok=True)
        for suffix, buffer in (("png", png), ("svg", svg)):
            with atomic_path(self.directory / f"{name}.{suffix}") as tmp:
                tmp.write_bytes(buffer.getvalue())
        self.drawn.append(name)
        data = base64.b64encode(png.getvalue()).decode("ascii")
        return (
            f'<figure id="fig-{e(name)}"><img alt="{e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{e(caption)} (also <code>{e(name)}.png</code> / <code>{e(name)}.svg</code> "
            f"in <code>{e(self.directory.name)}/</code>)</figcaption></figure>"
        )
