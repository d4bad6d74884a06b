"""Declared inputs and outputs of a command: see :mod:`dormsig._paths` (kept outside ``dormsig.io`` so that
the command line can check paths without importing the readers)."""

from dormsig._paths import PROVENANCE_SUFFIX, Entry, PathPlan, check_output

__all__ = ["PROVENANCE_SUFFIX", "Entry", "PathPlan", "check_output"]
