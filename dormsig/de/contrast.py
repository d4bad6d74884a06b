"""A pairwise contrast: the test level against the reference level of an ``obs`` column.

One place for the naming of contrasts: the group column and levels that
:func:`dormsig.de.define_groups` writes for ``high``/``versus`` genes, the file stem of a contrast's
tables, and the label people read. ``dormsig run``, the Snakemake workflow and ``deseq`` use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dormsig.errors import DesignError


@dataclass(frozen=True)
class Contrast:
    """``test`` vs ``reference`` levels of the ``obs`` column ``factor``; log2 fold change > 0 = higher in ``test``."""

    factor: str
    test: str
    reference: str

    def __post_init__(self) -> None:
        if self.test == self.reference:
            raise DesignError(f"contrast on {self.factor!r}: test and reference are the same level {self.test!r}")

    @classmethod
    def of_groups(cls, high: str, versus: str, factor: str | None = None) -> Contrast:
        """The contrast of groups defined by genes: ``<high>_high`` vs ``<versus>_high``, or vs ``<high>_low``.

        ``factor`` defaults to the column ``dormsig run`` gives each contrast (``group_<high>_vs_<versus>``
        or ``group_<high>_high_vs_low``); the CLI's ``dormsig groups`` writes ``dormsig_group``.
        """
        if versus == "low":
            return cls(factor or f"group_{high}_high_vs_low", f"{high}_high", f"{high}_low")
        return cls(factor or f"group_{high}_vs_{versus}", f"{high}_high", f"{versus}_high")

    @property
    def name(self) -> str:
        """File-name stem of the contrast's tables (``de_<name>.tsv``)."""
        return f"{self.test}_vs_{self.reference}"

    @property
    def label(self) -> str:
        """For people: ``NOTCH2_high vs NOTCH1_high``."""
        return f"{self.test} vs {self.reference}"
