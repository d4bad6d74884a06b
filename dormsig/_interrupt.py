"""The signal that interrupted a command, kept where the ``KeyboardInterrupt`` its handler raises may be lost.

Python prints and drops an exception raised inside a ctypes callback (numba compiling a kernel calls back
into llvmlite), a finaliser or a thread, so a Ctrl-C or SIGTERM that lands there would let the command
run on and end as if nothing happened. The CLI's handler records the signal here; long runs call
:func:`checkpoint` between steps and before they move outputs into place, which raises the interrupt again.
"""

from __future__ import annotations

_SIGNAL = 0


def note(signum: int) -> None:
    """Record that signal ``signum`` asked the command to stop."""
    global _SIGNAL
    _SIGNAL = int(signum)


def clear() -> None:
    """Forget any recorded signal (a new command starts)."""
    global _SIGNAL
    _SIGNAL = 0


def pending() -> int:
    """The recorded signal number, 0 if none."""
    return _SIGNAL


def checkpoint() -> None:
    """Raise ``KeyboardInterrupt`` if a signal was recorded (its first interrupt may have been swallowed)."""
    if _SIGNAL:
        raise KeyboardInterrupt
