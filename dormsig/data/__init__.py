"""Example data shipped inside the package (see ``dormsig/data/README.md`` for sources and licences)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anndata import AnnData

from dormsig.errors import MissingInputError

DATA_DIR = Path(__file__).resolve().parent

#: Files of the bundled Aceto et al. 2014 CTC example.
CTC_COUNTS = "aceto2014_ctc/GSE51827_data.txt.gz"
CTC_SAMPLES = "aceto2014_ctc/samples.csv"

__all__ = ["CTC_COUNTS", "CTC_SAMPLES", "DATA_DIR", "ctc", "example_path", "load_example"]


def example_path(name: str) -> Path:
    """Path of a bundled example folder or file, e.g. ``"aceto2014_ctc"`` or ``"aceto2014_ctc/samples.csv"``."""
    path = DATA_DIR / name
    if not path.exists() or DATA_DIR not in path.resolve().parents:
        available = sorted(p.name for p in DATA_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise MissingInputError(f"no bundled example {name!r} (available: {', '.join(available)})", path=path)
    return path


def ctc(**kwargs: Any) -> AnnData:
    """The Aceto et al. 2014 breast-cancer CTC counts (29 samples x 16,026 genes) with the sample sheet in ``obs``.

    Keyword arguments go to :func:`dormsig.io.read` (e.g. ``harmonise=False``).
    """
    from dormsig.io import read

    kwargs.setdefault("sample_sheet", example_path(CTC_SAMPLES))
    return read(example_path(CTC_COUNTS), **kwargs)


def load_example(name: str, **kwargs: Any) -> AnnData:
    """Load a bundled example by name (``"aceto2014_ctc"`` or ``"ctc"``) through :func:`dormsig.io.read`."""
    loaders = {"aceto2014_ctc": ctc, "ctc": ctc}
    if name not in loaders:
        raise MissingInputError(f"no bundled example {name!r} (available: {', '.join(sorted(loaders))})")
    return loaders[name](**kwargs)
