"""One exception hierarchy for everything a user can cause.

Every message is one line that names the file (or object) and the problem, so the CLI
can print it as is and exit with code 2. Each class also derives from the built-in
exception a Python user would expect to catch (``ValueError``, ``FileNotFoundError``...).
"""

from __future__ import annotations

from os import PathLike


class DormsigError(Exception):
    """Base class for errors caused by the user's input, options or environment."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | PathLike | None = None) -> None:
        message = " ".join(str(message).split())  # always one line
        if path is not None and not message.startswith(str(path)):
            message = f"{path}: {message}"
        self.path = None if path is None else str(path)
        super().__init__(message)


class InputError(DormsigError, ValueError):
    """An input file or matrix is malformed, empty or has impossible values."""


class FormatError(InputError):
    """The format of an input file cannot be detected or is not supported."""


class MissingInputError(DormsigError, FileNotFoundError):
    """An input path does not exist."""


class GeneIdError(DormsigError, ValueError):
    """Gene identifiers cannot be detected, mapped or translated."""


class SignatureError(DormsigError, ValueError):
    """A signature file or gene set is invalid."""


class MatchError(SignatureError):
    """A gene set has no (or too few) genes in the data."""


class DesignError(DormsigError, ValueError):
    """A grouping or DE design cannot be fitted (one group, rank deficiency, too few replicates)."""


class ConfigError(DormsigError, ValueError):
    """A configuration file fails its schema."""


class OutputError(DormsigError, OSError):
    """An output cannot be written (exists without --force, unwritable directory, would overwrite an input)."""


class ReferenceError_(DormsigError, ValueError):
    """A stored reference does not fit the current run (other signature version, other method)."""


# A readable public name that does not shadow the built-in ReferenceError.
ReferenceMismatchError = ReferenceError_
