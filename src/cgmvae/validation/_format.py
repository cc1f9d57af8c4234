"""How the checks show values and keys in their messages (private helpers)."""

from __future__ import annotations

import difflib

import numpy as np

PREVIEW = 5


def _preview(values, n: int = PREVIEW) -> str:
    """Return the first ``n`` values quoted, and how many more there are."""
    values = list(values)
    shown = ", ".join(repr(str(v)) for v in values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


def _show(value: object) -> str:
    """Return ``repr(value)``, with NumPy scalars shown as Python numbers (``1.5``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _message(text: str, hint: str) -> str:
    return f"{text}; {hint}" if hint else text


def _close_matches(key: str, options) -> str:
    matches = difflib.get_close_matches(str(key), [str(o) for o in options], n=3, cutoff=0.5)
    return f" Did you mean {', '.join(map(repr, matches))}?" if matches else ""
