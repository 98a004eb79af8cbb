"""Bounded echoes of config values in error messages.

An error shows what was given so the user can find it, never all of it: a 100 MB
``name`` or an alias-expanded tree prints as a few dozen characters. ``short`` is the
only way config code turns a user's value into message text.
"""

from __future__ import annotations

import reprlib
from typing import Any

MAX_ECHO = 60  # characters of a value shown in a message
MAX_LINE = 300  # characters of one error line, whatever produced it

_repr = reprlib.Repr()
_repr.maxstring = MAX_ECHO
_repr.maxother = MAX_ECHO
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4
_repr.maxlevel = 2


def short(value: Any) -> str:
    """``repr(value)`` cut to about ``MAX_ECHO`` characters, with ``...`` where cut and the
    full length of a long string, so cost and output stay small for any input."""
    text = _repr.repr(value)
    if len(text) > 2 * MAX_ECHO:  # nested values: each part was cut, cut the whole too
        text = text[: 2 * MAX_ECHO - 3] + "..."
    if isinstance(value, str) and len(value) > MAX_ECHO:
        text += f" ({len(value):,} characters)"
    return text


def clip(line: str) -> str:
    """One message line cut to ``MAX_LINE`` characters."""
    if len(line) <= MAX_LINE:
        return line
    return line[: MAX_LINE - 3] + "..."
