"""Readers into AnnData and atomic writers.

The main entry point is :func:`read`, which detects the format of a file or directory.
"""

from dormsig.io.write import (
    atomic_path,
    check_output,
    write_h5ad,
    write_json,
    write_provenance,
    write_table,
)

__all__ = ["atomic_path", "check_output", "write_h5ad", "write_json", "write_provenance", "write_table"]
